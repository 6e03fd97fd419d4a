"""The ``cotdistill`` command: one sub-command per pipeline stage (see dvc.yaml), plus tools.

This module only parses arguments and dispatches: each stage's work is the typed ``run`` of
its module in :mod:`cotdistill.stages`. Every command reads ``params.yaml`` (``--params`` to
point elsewhere), validates it once, and turns any :class:`CotdistillError` into one ``error:``
line on stderr with exit status 1.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Annotated

import typer

from cotdistill import __version__
from cotdistill.errors import CotdistillError
from cotdistill.params.evaluate import BASELINES
from cotdistill.params.train import METHOD_NAMES

app = typer.Typer(
    help="Chain-of-thought distillation: teacher rationales -> curated data -> students.",
    no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    rich_markup_mode="markdown",  # docstring paragraphs re-wrap to the terminal width
)

ParamsOption = Annotated[Path, typer.Option("--params", help="The params file to read.")]
StudentOption = Annotated[str, typer.Option(help="A student name from the students section.")]
# help texts name what params accepts, so a new method shows up without editing this file
MethodOption = Annotated[str, typer.Option(help=f"A training method: {', '.join(METHOD_NAMES)}.")]
BaselineOption = Annotated[str, typer.Option(
    "--method", help=f"A prompting baseline: {', '.join(BASELINES)}.")]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"cotdistill {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """Chain-of-thought distillation: teacher rationales -> curated data -> students."""
SocraticStudentOption = Annotated[
    str | None,
    typer.Option("--student", help="A student name from the students section (default: "
                                   "socratic.qg_student for qg, else socratic.qa_student)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _run(work: Callable[[], None]) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        work()
    except CotdistillError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


def _load(path: Path):
    from cotdistill.params import load_params

    return load_params(path)


def _check_choice(kind: str, name: str, known: Iterable[str]) -> None:
    if name not in known:
        raise CotdistillError(f"unknown {kind} {name!r} (known: {', '.join(sorted(known))})")


def _check_method(method: str) -> None:
    _check_choice("method", method, METHOD_NAMES)


@app.command()
def prepare(params: ParamsOption = Path("params.yaml")) -> None:
    """Build the datasets and write seeded train / val / test splits to data/prepared/."""
    from cotdistill.stages import prepare as stage

    _run(lambda: stage.run(_load(params), params_file=params))


@app.command()
def teacher(params: ParamsOption = Path("params.yaml")) -> None:
    """Ask the teacher for D zero-shot-CoT rationales per training question.

    Exits 1 without writing completions when any request failed or teacher.max_usd stopped
    the run; everything bought is cached, so the next run asks only for what is missing.
    """
    from cotdistill.stages import teacher as stage

    _run(lambda: stage.run(_load(params)))


@app.command()
def estimate(params: ParamsOption = Path("params.yaml"), json_output: JsonOption = False) -> None:
    """Print the calls, tokens and dollars the teacher stage would spend now (nothing is sent)."""

    def work() -> None:
        import json

        from cotdistill.stages import teacher as stage

        result = stage.estimate(_load(params))
        typer.echo(json.dumps(result.as_dict(), indent=2) if json_output
                   else "\n".join(result.lines()))

    _run(work)


@app.command()
def exemplars(params: ParamsOption = Path("params.yaml")) -> None:
    """Cluster training questions; per cluster pick the nearest one the teacher got right."""
    from cotdistill.stages import exemplars as stage

    _run(lambda: stage.run(_load(params)))


@app.command("teacher-fewshot")
def teacher_fewshot(params: ParamsOption = Path("params.yaml")) -> None:
    """New-Fine-tune-CoT's teacher pass: few-shot-CoT from the exemplars, adaptive answers.

    Writes data/teacher/fewshot_completions.jsonl and reports/teacher_fewshot.json (calls per
    question, adaptive vs always two-step). Exits 1 without writing completions when any
    request failed or teacher.max_usd stopped the run, like ``teacher``.
    """
    from cotdistill.stages import teacher_fewshot as stage

    _run(lambda: stage.run(_load(params)))


@app.command()
def curate(params: ParamsOption = Path("params.yaml")) -> None:
    """Keep correct rationales; write each method's training examples and statistics."""
    from cotdistill.stages import curate as stage

    _run(lambda: stage.run(_load(params)))


@app.command()
def train(
    student: StudentOption, method: MethodOption, params: ParamsOption = Path("params.yaml")
) -> None:
    """Fine-tune one student with one method; save it under models/ and log it to MLflow."""

    def work() -> None:
        from cotdistill.stages import train as stage

        settings = _load(params)
        _check_method(method)
        settings.student(student)
        status = stage.run_or_launch(settings, student, method, params)
        if status:  # the multi-GPU launcher's ranks failed
            raise typer.Exit(status)

    _run(work)


@app.command()
def evaluate(
    student: StudentOption, method: MethodOption, params: ParamsOption = Path("params.yaml")
) -> None:
    """Score one trained student on the test split; predictions and metrics to reports/eval/."""

    def work() -> None:
        from cotdistill.stages import evaluate as stage

        settings = _load(params)
        _check_method(method)
        stage.run(settings, student, method)

    _run(work)


@app.command()
def predict(
    model: Annotated[str, typer.Argument(
        metavar="MODEL", help="A trained student: models/STUDENT/METHOD, or a registered one, e.g. "
             "models:/cotdistill-student@champion.", show_default=False)],
    questions: Annotated[list[str], typer.Argument(
        metavar="QUESTION...", help="Questions to answer (choice tasks: the stem).",
        show_default=False)],
    dataset: Annotated[str | None, typer.Option(
        metavar="NAME", help="The task, a name in prepare.datasets (default: the only one there); it decides "
             "the prompts and how the answer is read.", show_default=False)] = None,
    choice: Annotated[list[str] | None, typer.Option(
        "--choice", metavar="TEXT",
        help="Multiple-choice tasks: one option; repeat --choice for each, in order.",
        show_default=False)] = None,
    max_new_tokens: Annotated[int | None, typer.Option(
        min=1, metavar="N", help="Most tokens generated per answer (default: evaluate.max_new_tokens).",
        show_default=False)] = None,
    json_output: Annotated[bool, typer.Option(
        "--json", help="Print one JSON object per question: question, output, rationale, "
                       "answer.")] = False,
    calculator: Annotated[bool | None, typer.Option(
        "--calculator/--no-calculator",
        help="Decode number answers with the calculator, or not (default: as the student was "
             "trained: on for fine_tune_cot_calc).", show_default=False)] = None,
    params: ParamsOption = Path("params.yaml"),
) -> None:
    """Answer questions with a trained student: its rationale and answer, read as evaluate reads
    them (the same prompt, greedy decoding and answer reader)."""

    def work() -> None:
        from cotdistill.student import predict as predicting

        settings = _load(params)
        task = predicting.task_of(settings, dataset, choice)  # before the model is loaded
        student, tokenizer, method = predicting.load_student(model, settings)
        results = predicting.predict(
            student, tokenizer, method, questions, answer_type=task.answer_type,
            choices=task.choices, task=task.prompts,
            max_new_tokens=max_new_tokens or settings.evaluate.max_new_tokens,
            batch_size=settings.evaluate.batch_size, calculator=calculator)
        for number, result in enumerate(results):
            typer.echo(result.as_json() if json_output
                       else ("\n" if number else "") + result.as_text())

    _run(work)


@app.command()
def baseline(
    student: StudentOption,
    method: BaselineOption,
    params: ParamsOption = Path("params.yaml"),
) -> None:
    """Score an untrained student with a prompting baseline, for comparison."""

    def work() -> None:
        from cotdistill.stages import baseline as stage

        settings = _load(params)
        _check_choice("baseline", method, BASELINES)
        settings.student(student)
        stage.run(settings, student, method)

    _run(work)


@app.command()
def decompose(params: ParamsOption = Path("params.yaml")) -> None:
    """Decompose training questions into (sub-question, sub-answer) pairs: teacher and/or gold.

    Teacher decompositions go through the teacher stage's backend and response cache (a re-run
    asks nothing twice); malformed outputs are counted in reports/socratic/decompose.json and
    dropped.
    """
    from cotdistill.stages import decompose as stage

    _run(lambda: stage.run(_load(params)))


@app.command("socratic-train")
def socratic_train(
    role: Annotated[str, typer.Option(help="qg (question generator), qa (sub-question solver) "
                                           "or unified.")],
    student: SocraticStudentOption = None,
    params: ParamsOption = Path("params.yaml"),
) -> None:
    """Train one Socratic CoT student on the decompositions; models/STUDENT/socratic_ROLE."""

    def work() -> None:
        from cotdistill.methods.socratic.students import ROLES
        from cotdistill.stages import socratic_train as stage

        settings = _load(params)
        _check_choice("role", role, ROLES)
        name = student or settings.socratic.student_for(role)
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

    --student is the QA (or unified) student and names the results
    (reports/eval/STUDENT/socratic); the QG is socratic.qg_student's.
    """

    def work() -> None:
        from cotdistill.stages import socratic_evaluate as stage

        settings = _load(params)
        name = student or settings.socratic.qa_student
        settings.student(name)
        stage.run(settings, name, unified=unified)

    _run(work)


@app.command()
def report(params: ParamsOption = Path("params.yaml")) -> None:
    """Write reports/summary.md, reports/accuracy.png and reports/metrics.json."""
    from cotdistill.stages import report as stage

    _run(lambda: stage.run(_load(params)))


@app.command("params")
def show_params(
    section: Annotated[str | None, typer.Argument(help="One section, e.g. teacher (default: "
                                                       "all).")] = None,
    params: ParamsOption = Path("params.yaml"),
) -> None:
    """Print every key of a params section: type, default, value in --params, description."""

    def work() -> None:
        import shutil

        from cotdistill.params.describe import describe_params, render_params

        if not params.is_file() and params != Path("params.yaml"):  # a --params file given
            raise CotdistillError(f"{params}: params file not found")
        path = params if params.is_file() else None  # outside a repository: the defaults only
        width = min(shutil.get_terminal_size((100, 24)).columns, 100)
        typer.echo(render_params(describe_params(section, path), width=width))

    _run(work)


@app.command()
def score(
    files: Annotated[list[Path], typer.Argument(help="CompletionDataset JSON files to score.")],
    json_output: JsonOption = False,
) -> None:
    """Score teacher completions (reasoning-teacher CompletionDataset files) with our extractor."""

    def work() -> None:
        import json

        from cotdistill.teachers.score import score_file

        scores = [score_file(path) for path in files]  # all read before anything is printed
        typer.echo(json.dumps([item.as_dict() for item in scores], indent=2) if json_output
                   else "\n".join(item.line() for item in scores))

    _run(work)


@app.command()
def serve(
    model: Annotated[str, typer.Option("--model", help="Model spec: builtin:NAME, a directory, "
                                                       "or a hub id.")],
    host: Annotated[str, typer.Option(
        help="Interface to listen on. Anything but loopback needs --api-key.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    max_batch: Annotated[int, typer.Option(help="Most rows per generate call.")] = 8,
    api_key: Annotated[str | None, typer.Option(
        envvar="COTDISTILL_SERVE_API_KEY", show_default=False,
        help="Require 'Authorization: Bearer KEY' on every request (401 otherwise). Without "
             "it the server has NO authentication.")] = None,
    max_body_bytes: Annotated[int, typer.Option(
        help="Largest request body (413 beyond).")] = 1 << 20,
    max_file_bytes: Annotated[int, typer.Option(
        help="Largest Batch API upload, POST /v1/files (413 beyond).")] = 64 << 20,
    max_request_rows: Annotated[int, typer.Option(
        help="Most prompts x n in one request (400 beyond).")] = 128,
    max_queued_rows: Annotated[int, typer.Option(
        help="Most rows queued or running, all clients (429 beyond).")] = 512,
    max_connections: Annotated[int, typer.Option(
        help="Most open connections and requests (503 beyond).")] = 256,
) -> None:
    """Serve a local model over the OpenAI API (completions, chat, Batch API) until Ctrl-C.

    No authentication unless --api-key is set; any --host but loopback needs a key.
    """

    def work() -> None:
        from cotdistill.serve.app import serve as serve_forever
        from cotdistill.serve.guard import Limits

        limits = Limits(max_body_bytes=max_body_bytes, max_file_bytes=max_file_bytes,
                        max_request_rows=max_request_rows, max_queued_rows=max_queued_rows,
                        max_connections=max_connections)
        serve_forever(model, host=host, port=port, max_batch=max_batch, limits=limits,
                      api_key=api_key)

    _run(work)


def main() -> None:  # pragma: no cover - `python -m cotdistill`
    app(prog_name="cotdistill")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
