"""The ``teacher_fewshot`` stage: New-Fine-tune-CoT's few-shot-CoT teacher pass over the
training questions, with the ``exemplars`` stage's exemplars and adaptive answers
(:mod:`cotdistill.methods.new_fine_tune_cot.fewshot_teacher`).

Writes ``data/teacher/fewshot_completions.jsonl`` and ``reports/teacher_fewshot.json`` (calls
per question, adaptive vs always two-step). Like ``teacher``, it writes nothing when a request
failed or ``teacher.max_usd`` stopped the run. A backend that calls no model (replay) has no
few-shot pass: the stage says so, writes no completions and a report with the reason.

Usage: ``cotdistill teacher-fewshot``.
"""

from __future__ import annotations

import json
import logging

from cotdistill import layout
from cotdistill.atomic import publish, write_text
from cotdistill.datasets.splits import first_per_dataset
from cotdistill.errors import CotdistillError
from cotdistill.jsonl import read_records, write_records
from cotdistill.methods.new_fine_tune_cot.fewshot_teacher import run_teacher_fewshot
from cotdistill.params import Params
from cotdistill.layout import teacher_cache
from cotdistill.records import ClusteredExemplar, PreparedExample, TeacherCompletion
from cotdistill.teachers.engine import quiet_http_logs
from cotdistill.teachers.registry import make_backend

log = logging.getLogger(__name__)


def run(params: Params) -> dict:
    """The pass; returns the run report written to reports/teacher_fewshot.json."""
    settings, fewshot = params.teacher, params.teacher_fewshot
    backend = make_backend(settings, teacher_cache())
    if not backend.asks_model:
        # Published completions have no few-shot pass to replay: say so and leave
        # new_fine_tune_cot without data rather than fail the whole pipeline.
        reason = f"teacher.backend is {backend.name}: no model to run the few-shot pass with"
        log.warning("teacher-fewshot: skipped (%s)", reason)
        summary = {"skipped": reason}
        with publish() as out:
            write_records(out.file(layout.FEWSHOT_COMPLETIONS), [])
            write_text(out.file(layout.FEWSHOT_REPORT), json.dumps(summary, indent=2) + "\n")
        return summary
    if not layout.EXEMPLARS.is_file():
        raise CotdistillError(f"{layout.EXEMPLARS}: not found (run `cotdistill exemplars`)")
    limit = fewshot.max_questions if fewshot.max_questions is not None \
        else settings.max_questions
    examples = first_per_dataset(read_records(layout.prepared("train"), PreparedExample), limit)
    shots = read_records(layout.EXEMPLARS, ClusteredExemplar, allow_empty=True)
    quiet_http_logs()
    # the last output (persist: true) holds responses already paid for: restored if the
    # cache lost them
    previous = (read_records(layout.FEWSHOT_COMPLETIONS, TeacherCompletion, allow_empty=True)
                if layout.FEWSHOT_COMPLETIONS.is_file() else [])
    records, run_ = run_teacher_fewshot(examples, shots, settings, backend, teacher_cache(),
                                        hint_wrong=fewshot.hints, fewshot=fewshot,
                                        tasks=params.prepare.tasks(), previous=previous)
    if run_.stats.restored:
        log.info("teacher-fewshot: %d response(s) restored into the cache from %s",
                 run_.stats.restored, layout.FEWSHOT_COMPLETIONS)
    summary = run_.report(records)
    with publish() as out:  # both or neither
        write_records(out.file(layout.FEWSHOT_COMPLETIONS), records)
        write_text(out.file(layout.FEWSHOT_REPORT), json.dumps(summary, indent=2) + "\n")
    log.info("teacher-fewshot: %d completions for %d questions, accuracy %.1f%%; calls per "
             "question %.2f adaptive vs %.2f two-step; %d hinted; %d model calls, %d cached",
             summary["completions"], summary["questions"], 100 * summary["accuracy"],
             summary["calls"]["adaptive_per_question"],
             summary["calls"]["two_step_per_question"], summary["hinted"],
             run_.stats.generated, run_.stats.cached)
    return summary
