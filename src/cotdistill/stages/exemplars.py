"""The ``exemplars`` stage: New-Fine-tune-CoT's clustered, heuristic-corrected exemplars.

Embeds the training questions (Sentence-BERT, ``exemplars.embedder``), clusters each dataset
into ``exemplars.k`` groups, and keeps per cluster the question nearest the centre whose
zero-shot-CoT answer was right. Writes ``data/exemplars.jsonl``.

Usage: ``cotdistill exemplars``.
"""

from __future__ import annotations

import logging

from cotdistill import layout
from cotdistill.jsonl import read_records, write_records
from cotdistill.methods.new_fine_tune_cot.embeddings import embed
from cotdistill.methods.new_fine_tune_cot.exemplars import Exemplar, select_exemplars
from cotdistill.params import Params
from cotdistill.records import PreparedExample, TeacherCompletion

log = logging.getLogger(__name__)


def run(params: Params) -> list[Exemplar]:
    settings = params.exemplars
    examples = read_records(layout.prepared("train"), PreparedExample)
    completions = read_records(layout.COMPLETIONS, TeacherCompletion)
    vectors = embed([example.question for example in examples], settings.embedder,
                    "exemplars.embedder")
    chosen = select_exemplars(
        examples, completions, vectors, k=settings.k, seed=settings.seed,
        max_question_chars=settings.max_question_chars,
        max_rationale_chars=settings.max_rationale_chars,
    )
    write_records(layout.EXEMPLARS, chosen)
    for dataset in dict.fromkeys(example.dataset for example in examples):
        count = sum(exemplar.dataset == dataset for exemplar in chosen)
        log.info("exemplars: %s: %d of %d clusters have a correct exemplar", dataset, count,
                 settings.k)
    return chosen
