"""The ``teacher`` stage: D zero-shot-CoT rationales per training question, from the backend
``teacher.backend`` names (or its published completions, for ``replay``).

Writes ``data/teacher/completions.jsonl`` and ``reports/teacher.json`` (for a replay: what was
matched, per dataset, including log entries with no prepared question and prepared questions
with no entry, and for Kojima et al.'s logs which splits each covers; for a model: calls,
tokens, dollars, cache hits). When any request failed or ``teacher.max_usd`` stopped the run
it raises :class:`~cotdistill.teachers.engine.TeacherIncomplete` and writes
nothing; everything bought is cached, so the next run asks only for what is missing.
:func:`estimate` prices the stage before anything is sent (``cotdistill estimate``).

Usage: ``cotdistill teacher``.
"""

from __future__ import annotations

import json
import logging
from typing import get_args

from cotdistill import layout
from cotdistill.atomic import publish, write_text
from cotdistill.datasets.sources import FileSource
from cotdistill.datasets.splits import first_per_dataset
from cotdistill.errors import CotdistillError
from cotdistill.jsonl import read_records, write_records
from cotdistill.lm.store import cache_home
from cotdistill.params import Params, TeacherParams
from cotdistill.layout import from_root, teacher_cache
from cotdistill.records import PreparedExample, Split, TeacherCompletion
from cotdistill.teachers.engine import quiet_http_logs
from cotdistill.teachers.estimate import Estimate
from cotdistill.teachers.estimate import estimate as price_run
from cotdistill.teachers.estimate import nothing_to_pay
from cotdistill.teachers.registry import make_backend
from cotdistill.teachers.zero_shot_cot import run_teacher

log = logging.getLogger(__name__)


def teacher_examples(settings: TeacherParams) -> list[PreparedExample]:
    """The training questions sent to the teacher: ``teacher.max_questions`` per dataset."""
    path = layout.prepared("train")
    if not path.is_file():
        raise CotdistillError(f"{path}: not found: run `dvc repro prepare` (or `cotdistill "
                              "prepare`) first")
    return first_per_dataset(read_records(path, PreparedExample), settings.max_questions)


def prepared_questions() -> list[PreparedExample]:
    """Every prepared question of every split: a replay matches published entries against them
    to report which splits a log covers (only :func:`teacher_examples` get records)."""
    paths = [layout.prepared(split) for split in get_args(Split)]
    return [example for path in paths if path.is_file()
            for example in read_records(path, PreparedExample, allow_empty=True)]


def previous_completions() -> list[TeacherCompletion]:
    """The stage's last output, if any: its records are responses already paid for (dvc.yaml
    declares it ``persist: true``, so ``dvc repro`` leaves it in place for this)."""
    if not layout.COMPLETIONS.is_file():
        return []
    return read_records(layout.COMPLETIONS, TeacherCompletion, allow_empty=True)


def run(params: Params) -> list[TeacherCompletion]:
    settings = params.teacher
    examples = teacher_examples(settings)
    backend = make_backend(settings, teacher_cache())
    if not backend.asks_model:
        mirror = params.prepare.mirror
        files = FileSource(from_root(mirror) if mirror else None, cache_home() / "data")
        records, report = backend.replay(examples, files, prepared_questions())
        if "files" in report:
            log.info("replay: %d completions imported from %d file(s); %d for other questions, "
                     "%d beyond teacher.samples", report["imported"], report["files"],
                     report["entries_for_other_questions"], report["beyond_samples"])
        for dataset, figures in report.get("datasets", {}).items():
            log.info("replay: %s: %d of %d questions answered by %s; %d questions without an "
                     "entry, %d entries for other questions; the log covers %s%s", dataset,
                     figures["imported"], figures["imported"] + figures["questions_without_entry"],
                     figures["log"], figures["questions_without_entry"],
                     figures["entries_for_other_questions"], figures.get("covers", "?"),
                     f" ({figures['note']})" if "note" in figures else "")
    else:
        quiet_http_logs()
        records, stats = run_teacher(examples, settings, backend, teacher_cache(),
                                     previous=previous_completions(),
                                     tasks=params.prepare.tasks())
        if stats.restored:
            log.info("teacher: %d response(s) restored into the cache from %s",
                     stats.restored, layout.COMPLETIONS)
        log.info("teacher: %d model calls (%d prompt + %d completion tokens, $%.4f), "
                 "%d answered from the cache (%d bought meanwhile by another run)",
                 stats.generated, stats.prompt_tokens, stats.completion_tokens, stats.usd,
                 stats.cached, stats.shared)
        report = {"source": backend.name, "model": backend.model, "calls": stats.generated,
                  "cached": stats.cached, "restored": stats.restored, "shared": stats.shared,
                  "prompt_tokens": stats.prompt_tokens,
                  "completion_tokens": stats.completion_tokens, "usd": round(stats.usd, 6)}
    report.update(questions=len(examples), completions=len(records),
                  correct=sum(record.correct for record in records))
    with publish() as out:  # both or neither
        write_records(out.file(layout.COMPLETIONS), records)
        write_text(out.file(layout.TEACHER_REPORT), json.dumps(report, indent=2) + "\n")
    log.info("teacher: %d completions for %d questions, %d correct", len(records),
             len(examples), sum(record.correct for record in records))
    return records


def estimate(params: Params) -> Estimate:
    """The calls, tokens and dollars the stage would spend now; nothing is sent."""
    settings = params.teacher
    backend = make_backend(settings, teacher_cache())
    if not backend.asks_model:  # before the data is read: a replay needs no prepared split
        return nothing_to_pay(backend)
    return price_run(teacher_examples(settings), settings, backend, teacher_cache(),
                     tasks=params.prepare.tasks())
