"""Clustered exemplars with heuristic correction (New-Fine-tune-CoT, algorithm 1)."""

from __future__ import annotations

import numpy as np

from cotdistill.methods.new_fine_tune_cot.embeddings import embed
from cotdistill.methods.new_fine_tune_cot.exemplars import (
    cluster_order,
    pick_exemplars,
    select_exemplars,
)
from cotdistill.records import PreparedExample, TeacherCompletion


def example(i: int, question: str | None = None, dataset: str = "d") -> PreparedExample:
    return PreparedExample(id=f"{dataset}-{i}", dataset=dataset, split="train",
                           question=question or f"question {i}", answer="1", answer_type="number")


def completion(i: int, correct: bool, rationale: str = "because", dataset: str = "d",
               sample: int = 0) -> TeacherCompletion:
    return TeacherCompletion(id=f"{dataset}-{i}", dataset=dataset, sample=sample, backend="t",
                             model="m", prompt_id="p", sampling={}, rationale=rationale,
                             answer_text="1", prediction="1" if correct else "2", correct=correct)


# two tight clusters: rows 0-2 around (0, 0), rows 3-5 around (10, 10); row 1 / row 4 central
POINTS = np.array([[0.5, 0.0], [0.0, 0.0], [-0.6, 0.0], [10.0, 10.7], [10.0, 10.0], [10.0, 9.2]])


def test_clusters_are_ordered_by_distance_to_their_centre():
    clusters = cluster_order(POINTS, k=2, seed=0)
    rows = sorted([row for row, _ in members] for members in clusters)
    assert rows == [[1, 0, 2], [4, 3, 5]]
    for members in clusters:
        distances = [distance for _, distance in members]
        assert distances == sorted(distances)


def test_the_nearest_question_with_a_correct_teacher_answer_is_chosen():
    examples = [example(i) for i in range(6)]
    completions = [completion(i, correct=i not in (1, 4)) for i in range(6)]
    chosen = pick_exemplars(examples, completions, cluster_order(POINTS, k=2, seed=0))
    assert sorted(e.id for e in chosen) == ["d-0", "d-3"]  # the central 1 and 4 were wrong
    assert {e.rank for e in chosen} == {1}
    assert all(e.source == f"{e.id}#0" for e in chosen)


def test_a_cluster_without_a_correct_answer_gives_no_exemplar():
    examples = [example(i) for i in range(6)]
    completions = [completion(i, correct=i >= 3) for i in range(6)]
    chosen = pick_exemplars(examples, completions, cluster_order(POINTS, k=2, seed=0))
    assert [e.id for e in chosen] == ["d-4"]


def test_length_limits_skip_long_questions_and_rationales():
    examples = [example(0, "short"), example(1, "a much longer question"), example(2, "short")]
    examples += [example(i) for i in range(3, 6)]
    completions = [completion(0, True, rationale="x" * 50), completion(1, True),
                   completion(2, True, rationale="ok")] + [completion(i, True) for i in (3, 4, 5)]
    chosen = pick_exemplars(examples, completions, cluster_order(POINTS, k=2, seed=0),
                            max_question_chars=10, max_rationale_chars=20)
    assert sorted(e.id for e in chosen) == ["d-2", "d-4"]


def test_each_dataset_is_clustered_on_its_own():
    examples = [example(i, dataset="a") for i in range(6)] + [example(i, dataset="b") for i in range(6)]
    completions = [completion(i, True, dataset=d) for d in "ab" for i in range(6)]
    chosen = select_exemplars(examples, completions, np.vstack([POINTS, POINTS]), k=2, seed=0)
    assert sorted((e.dataset, e.id) for e in chosen) == [
        ("a", "a-1"), ("a", "a-4"), ("b", "b-1"), ("b", "b-4")]


def test_sentence_bert_embeds_offline_and_groups_similar_questions():
    questions = ["A coin is heads up. Ann flips the coin. Is the coin still heads up?",
                 "A coin is heads up. Bob does not flip the coin. Is the coin still heads up?",
                 'Take the last letters of each words in "Ann Bob" and concatenate them.',
                 'Take the last letters of each words in "Cy Dee" and concatenate them.']
    vectors = embed(questions, "builtin:all-MiniLM-L6-v2", "exemplars.embedder")
    assert vectors.shape == (4, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    clusters = cluster_order(vectors, k=2, seed=0)
    assert sorted(sorted(row for row, _ in members) for members in clusters) == [[0, 1], [2, 3]]
