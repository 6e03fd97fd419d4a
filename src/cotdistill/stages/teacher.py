"""The ``teacher`` stage: D zero-shot-CoT rationales per training question, from the backend
``teacher.backend`` names (or its published completions, for ``replay``).

Writes ``data/teacher/completions.jsonl``. When any request failed or ``teacher.max_usd``
stopped the run it raises :class:`~cotdistill.teachers.engine.TeacherIncomplete` and writes
nothing; everything bought is cached, so the next run asks only for what is missing.
:func:`estimate` prices the stage before anything is sent (``cotdistill estimate``).

Usage: ``cotdistill teacher``.
"""

from __future__ import annotations

import logging

from cotdistill import layout
from cotdistill.datasets.splits import first_per_dataset
from cotdistill.jsonl import read_records, write_records
from cotdistill.params import Params, TeacherParams
from cotdistill.paths import teacher_cache
from cotdistill.records import PreparedExample, TeacherCompletion
from cotdistill.teachers.estimate import Estimate
from cotdistill.teachers.estimate import estimate as price_run
from cotdistill.teachers.engine import quiet_http_logs
from cotdistill.teachers.registry import make_backend
from cotdistill.teachers.zero_shot_cot import run_teacher

log = logging.getLogger(__name__)


def teacher_examples(settings: TeacherParams) -> list[PreparedExample]:
    """The training questions sent to the teacher: ``teacher.max_questions`` per dataset."""
    return first_per_dataset(read_records(layout.prepared("train"), PreparedExample),
                             settings.max_questions)


def run(params: Params) -> list[TeacherCompletion]:
    settings = params.teacher
    examples = teacher_examples(settings)
    backend = make_backend(settings, teacher_cache())
    if not backend.asks_model:
        records, replayed = backend.replay(examples)
        log.info("replay: %d completions imported from %d file(s); %d for other questions, "
                 "%d beyond teacher.samples", replayed.imported, replayed.files,
                 replayed.not_asked, replayed.beyond_samples)
    else:
        quiet_http_logs()
        records, stats = run_teacher(examples, settings, backend, teacher_cache())
        log.info("teacher: %d model calls (%d prompt + %d completion tokens, $%.4f), "
                 "%d answered from the cache", stats.generated, stats.prompt_tokens,
                 stats.completion_tokens, stats.usd, stats.cached)
    write_records(layout.COMPLETIONS, records)
    log.info("teacher: %d completions for %d questions, %d correct", len(records),
             len(examples), sum(record.correct for record in records))
    return records


def estimate(params: Params) -> Estimate:
    """The calls, tokens and dollars the stage would spend now; nothing is sent."""
    settings = params.teacher
    backend = make_backend(settings, teacher_cache())
    return price_run(teacher_examples(settings), settings, backend, teacher_cache())
