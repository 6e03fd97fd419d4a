"""The ``decompose`` stage (Socratic CoT): training questions as (sub-question, sub-answer)
pairs, from the teacher and/or GSM8K's gold decompositions.

Teacher decompositions go through the teacher's backend and response cache (a re-run asks
nothing twice); malformed outputs are counted in ``reports/socratic/decompose.json`` and
dropped. Writes ``data/socratic/decompositions.jsonl``.

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
from cotdistill.records import PreparedExample
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
        ask = teacher_ask(backend, teacher, socratic, teacher_cache())
    mirror = params.prepare.mirror
    source = FileSource(from_root(mirror) if mirror else None, cache_home() / "data")
    found, report = decompose(examples, socratic, ask=ask, exemplars=exemplars,
                              gold_source=source)
    report["teacher_model"] = ({"backend": teacher.backend, "model": teacher.model}
                               if socratic.source != "gold" else None)
    with publish() as out:  # both or neither
        write_records(out.file(layout.DECOMPOSITIONS), found)
        write_text(out.file(layout.DECOMPOSE_STATS), json.dumps(report, indent=2) + "\n")
    log.info("decompose: %d questions, %d decompositions (%s correct by source)",
             len(examples), len(found), report["kept"])
    return report
