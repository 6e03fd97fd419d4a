"""The ``exemplars`` stage: clustered few-shot exemplars with heuristic correction.

New-Fine-tune-CoT (Li et al. 2024, algorithm 1 and section 2.2): embed the training questions
with Sentence-BERT, split them into k clusters with k-means, order each cluster by distance to
its centre, and take the nearest question whose zero-shot-CoT teacher answer was correct
(*heuristic correction*: a wrong rationale would teach the few-shot teacher a wrong method),
optionally under length limits on question and rationale. The k exemplars (per dataset) become
the few-shot-CoT prompt of the ``teacher_fewshot`` stage.

Usage: ``cotdistill exemplars`` (writes ``data/exemplars.jsonl``).
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
from cotdistill.records import ClusteredExemplar, PreparedExample, TeacherCompletion


def cluster_order(embeddings: np.ndarray, k: int, seed: int) -> list[list[tuple[int, float]]]:
    """For each of k clusters: (row, distance to centre) of its members, nearest first."""
    from sklearn.cluster import KMeans

    k = min(k, len(embeddings))
    kmeans = KMeans(n_clusters=k, random_state=seed, n_init=10).fit(embeddings)
    distances = np.linalg.norm(embeddings - kmeans.cluster_centers_[kmeans.labels_], axis=1)
    clusters: list[list[tuple[int, float]]] = [[] for _ in range(k)]
    for row, (label, distance) in enumerate(zip(kmeans.labels_, distances)):
        clusters[label].append((row, float(distance)))
    return [sorted(members, key=lambda m: (m[1], m[0])) for members in clusters]


def pick_exemplars(
    examples: list[PreparedExample], completions: list[TeacherCompletion],
    clusters: list[list[tuple[int, float]]], *, max_question_chars: int | None = None,
    max_rationale_chars: int | None = None,
) -> list[ClusteredExemplar]:
    """Per cluster, the nearest question with a correct teacher rationale within the limits."""
    correct: dict[str, list[TeacherCompletion]] = defaultdict(list)
    for completion in sorted(completions, key=lambda c: c.sample):
        if completion.correct and completion.rationale:
            correct[completion.id].append(completion)
    chosen = []
    for cluster, members in enumerate(clusters):
        for rank, (row, distance) in enumerate(members):
            example = examples[row]
            if max_question_chars is not None and len(example.question) > max_question_chars:
                continue
            fitting = [c for c in correct.get(example.id, [])
                       if max_rationale_chars is None or len(c.rationale) <= max_rationale_chars]
            if not fitting:
                continue
            source = fitting[0]
            chosen.append(ClusteredExemplar(
                dataset=example.dataset, cluster=cluster, rank=rank, distance=round(distance, 6),
                id=example.id, question=example.question, rationale=source.rationale,
                answer=example.answer, source=f"{source.id}#{source.sample}",
            ))
            break
    return chosen


def select_exemplars(
    examples: list[PreparedExample], completions: list[TeacherCompletion], embeddings: np.ndarray,
    *, k: int, seed: int, max_question_chars: int | None = None,
    max_rationale_chars: int | None = None,
) -> list[ClusteredExemplar]:
    """Exemplars for every dataset: each clustered on its own (rows of ``embeddings`` follow
    ``examples``)."""
    asked = {completion.id for completion in completions}
    out = []
    for dataset in dict.fromkeys(example.dataset for example in examples):
        rows = [i for i, e in enumerate(examples) if e.dataset == dataset and e.id in asked]
        if not rows:
            continue
        clusters = cluster_order(embeddings[rows], k, seed)
        out += pick_exemplars([examples[i] for i in rows], completions, clusters,
                              max_question_chars=max_question_chars,
                              max_rationale_chars=max_rationale_chars)
    return out
