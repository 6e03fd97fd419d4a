"""The Socratic CoT commands, registered on the ``cotdistill`` Typer app.

``cotdistill.cli`` imports this module at its end, so the commands appear beside the other
stages: ``decompose``, ``socratic-train`` and ``socratic-evaluate`` (see each one's help).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cotdistill.cli import ParamsOption, _check_choice, _load, _run, app, log
from cotdistill.errors import CotdistillError

SocraticStudentOption = Annotated[
    str | None,
    typer.Option("--student", help="A student name from the students section (default: "
                                   "socratic.qg_student for qg, else socratic.qa_student)."),
]


def _unified_enabled(settings, wanted: bool) -> None:
    """The unified model is part of an experiment only when params say so (and so the report
    and the DVC stages agree with what was trained)."""
    if wanted and not settings.socratic.unified:
        raise CotdistillError("socratic.unified is false: set it to true to train or evaluate "
                              "the unified model")


@app.command()
def decompose(params: ParamsOption = Path("params.yaml")) -> None:
    """Decompose training questions into (sub-question, sub-answer) pairs: teacher and/or gold.

    Teacher decompositions go through the teacher stage's backend and response cache (a re-run
    asks nothing twice); malformed outputs are counted in reports/socratic/decompose.json and
    dropped.
    """

    def work() -> None:
        import json

        from cotdistill import layout
        from cotdistill.atomic import write_text
        from cotdistill.cli import _teacher_cache
        from cotdistill.datasets.sources import FileSource
        from cotdistill.methods.socratic.decompose import (
            DECOMPOSE_STATS,
            DECOMPOSITIONS,
            decompose,
            select_examples,
            teacher_ask,
        )
        from cotdistill.methods.socratic.decompositions import load_exemplars
        from cotdistill.jsonl import read_records, write_records
        from cotdistill.lm.store import cache_home
        from cotdistill.paths import from_root
        from cotdistill.records import PreparedExample

        settings = _load(params)
        socratic = settings.socratic
        examples = select_examples(read_records(layout.prepared("train"), PreparedExample),
                                   socratic.datasets, socratic.max_questions,
                                   where=str(layout.prepared("train")))
        exemplars = load_exemplars(
            from_root(socratic.exemplars_path) if socratic.exemplars_path else None,
            socratic.exemplars)
        ask = (teacher_ask(settings.teacher, socratic, _teacher_cache())
               if socratic.source != "gold" else None)
        mirror = settings.prepare.mirror
        source = FileSource(from_root(mirror) if mirror else None, cache_home() / "data")
        found, report = decompose(examples, socratic, ask=ask, exemplars=exemplars,
                                  gold_source=source)
        write_records(DECOMPOSITIONS, found)
        write_text(DECOMPOSE_STATS, json.dumps(report, indent=2) + "\n")
        log.info("decompose: %d questions, %d decompositions (%s correct by source)",
                 len(examples), len(found), report["kept"])

    _run(work)


@app.command("socratic-train")
def socratic_train(
    role: Annotated[str, typer.Option(help="qg (question generator), qa (sub-question solver) "
                                           "or unified.")],
    student: SocraticStudentOption = None,
    params: ParamsOption = Path("params.yaml"),
) -> None:
    """Train one Socratic CoT student on the decompositions; models/<student>/socratic_<role>."""

    def work() -> None:
        from cotdistill.stages import socratic_train as stage
        from cotdistill.methods.socratic.students import ROLES

        settings = _load(params)
        _check_choice("role", role, ROLES)
        _unified_enabled(settings, role == "unified")
        name = student or (settings.socratic.qg_student if role == "qg"
                           else settings.socratic.qa_student)
        settings.student(name)
        stage.run(settings, name, role)  # type: ignore[arg-type]

    _run(work)


@app.command("socratic-evaluate")
def socratic_evaluate(
    student: SocraticStudentOption = None,
    unified: Annotated[bool, typer.Option(
        "--unified", help="Evaluate the unified model instead of the QG + QA pair.")] = False,
    params: ParamsOption = Path("params.yaml"),
) -> None:
    """Run the Socratic loop (QG proposes, QA answers) on the test split; score and record.

    --student is the QA (or unified) student and names the results (reports/eval/<student>/
    socratic); the QG is socratic.qg_student's.
    """

    def work() -> None:
        from cotdistill.stages import socratic_evaluate as stage

        settings = _load(params)
        _unified_enabled(settings, unified)
        name = student or settings.socratic.qa_student
        settings.student(name)
        stage.run(settings, name, unified=unified)

    _run(work)
