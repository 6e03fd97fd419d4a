"""The ``exemplars`` stage: New-Fine-tune-CoT's clustered, heuristic-corrected exemplars.

Embeds the training questions (Sentence-BERT, ``exemplars.embedder``), clusters each dataset
into ``exemplars.k`` groups, and keeps per cluster the question nearest the centre whose
zero-shot-CoT answer was right. A dataset whose prompts give exemplars of their own
(``prepare.datasets[].prompts.exemplars``) gets those instead, unclustered. Writes
``data/exemplars.jsonl``.

Usage: ``cotdistill exemplars``.
"""

from __future__ import annotations

import logging

from cotdistill import layout
from cotdistill.jsonl import read_records, write_records
from cotdistill.methods.new_fine_tune_cot.embeddings import embed
from cotdistill.methods.new_fine_tune_cot.exemplars import select_exemplars
from cotdistill.params import Params
from cotdistill.records import ClusteredExemplar, PreparedExample, TeacherCompletion

log = logging.getLogger(__name__)


def run(params: Params) -> list[ClusteredExemplar]:
    settings = params.exemplars
    tasks = params.prepare.tasks()
    given = {name: task.exemplars for name, task in tasks.items() if task.exemplars}
    examples = read_records(layout.prepared("train"), PreparedExample)
    clustered = [example for example in examples if example.dataset not in given]
    chosen = []
    if clustered:
        completions = read_records(layout.COMPLETIONS, TeacherCompletion)
        vectors = embed([example.question for example in clustered], settings.embedder,
                        "exemplars.embedder")
        chosen = select_exemplars(
            clustered, completions, vectors, k=settings.k, seed=settings.seed,
            max_question_chars=settings.max_question_chars,
            max_rationale_chars=settings.max_rationale_chars,
        )
    for dataset in dict.fromkeys(example.dataset for example in examples):
        if dataset in given:
            chosen += [ClusteredExemplar(dataset=dataset, cluster=i, rank=0, distance=0.0,
                                id=f"{dataset}-exemplar-{i}", source="params", **shot)
                       for i, shot in enumerate(given[dataset])]
            log.info("exemplars: %s: %d given in its prompts", dataset, len(given[dataset]))
            continue
        count = sum(exemplar.dataset == dataset for exemplar in chosen)
        log.info("exemplars: %s: %d of %d clusters have a correct exemplar", dataset, count,
                 settings.k)
    write_records(layout.EXEMPLARS, chosen)
    return chosen
