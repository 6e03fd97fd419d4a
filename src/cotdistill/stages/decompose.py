"""The ``decompose`` stage (Socratic CoT): training questions as (sub-question, sub-answer)
pairs, from the teacher and/or GSM8K's gold decompositions.

Teacher decompositions go through the teacher's backend and response cache (a re-run asks
nothing twice); malformed outputs are counted in ``reports/socratic/decompose.json`` and
dropped from the decompositions. Writes ``data/socratic/decompositions.jsonl`` and
``data/socratic/teacher_responses.jsonl``: every teacher response with its cache key, malformed
ones included, which the next run restores into the cache first (both persist under DVC), so
that a lost cache costs nothing.

Usage: ``cotdistill decompose``.
"""

from __future__ import annotations

import json
import logging

from cotdistill import layout
from cotdistill.atomic import publish, write_text
from cotdistill.datasets.sources import FileSource
from cotdistill.jsonl import read_records, write_records
from cotdistill.lm.store import cache_home
from cotdistill.methods.socratic.decomposition_teacher import (
    decompose,
    select_examples,
    teacher_ask,
)
from cotdistill.methods.socratic.decompositions import load_exemplars
from cotdistill.params import Params
from cotdistill.layout import from_root, teacher_cache
from cotdistill.records import PreparedExample, TeacherResponse
from cotdistill.teachers.registry import make_backend

log = logging.getLogger(__name__)


def run(params: Params) -> dict:
    """Decompose; return the report written to reports/socratic/decompose.json."""
    socratic = params.socratic
    examples = select_examples(read_records(layout.prepared("train"), PreparedExample),
                               socratic.datasets, socratic.max_questions,
                               where=str(layout.prepared("train")))
    exemplars = load_exemplars(
        from_root(socratic.exemplars_path) if socratic.exemplars_path else None,
        socratic.exemplars)
    ask = None
    teacher = socratic.teacher or params.teacher
    if socratic.source != "gold":
        backend = make_backend(teacher, teacher_cache())
        previous = (read_records(layout.DECOMPOSE_RESPONSES, TeacherResponse, allow_empty=True)
                    if layout.DECOMPOSE_RESPONSES.is_file() else [])
        ask = teacher_ask(backend, teacher, socratic, teacher_cache(), previous)
    mirror = params.prepare.mirror
    source = FileSource(from_root(mirror) if mirror else None, cache_home() / "data")
    found, report = decompose(examples, socratic, ask=ask, exemplars=exemplars,
                              gold_source=source)
    report["teacher_model"] = ({"backend": teacher.backend, "model": teacher.model}
                               if socratic.source != "gold" else None)
    if ask is not None:
        report["teacher_responses"] = {"written": len(ask.responses), "restored": ask.restored}
    with publish() as out:  # all or none
        write_records(out.file(layout.DECOMPOSITIONS), found)
        write_records(out.file(layout.DECOMPOSE_RESPONSES),
                      list(ask.responses.values()) if ask is not None else [])
        write_text(out.file(layout.DECOMPOSE_STATS), json.dumps(report, indent=2) + "\n")
    log.info("decompose: %d questions, %d decompositions (%s correct by source)",
             len(examples), len(found), report["kept"])
    return report
