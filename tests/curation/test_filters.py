"""Rationale quality filters and the diversity measure used by curate."""

from __future__ import annotations

import pytest

from cotdistill.curation.filters import (
    FilterReport,
    FilterSettings,
    filter_question,
    is_truncated,
    mean_pairwise_similarity,
    states_answer_first,
)
from cotdistill.curation.select import diversity, select_rationales
from cotdistill.params import CurateParams
from cotdistill.records import PreparedExample, TeacherCompletion


def sample(rationale: str, index: int = 0, correct: bool = True, qid: str = "q-1",
           prediction: str | None = "yes") -> TeacherCompletion:
    return TeacherCompletion(id=qid, dataset="d", sample=index, backend="t", model="m",
                             prompt_id="p", sampling={}, rationale=rationale, answer_text="yes",
                             prediction=prediction, correct=correct)


@pytest.mark.parametrize(("text", "truncated"), [
    ("Ann flips the coin once, so it is tails.", False),
    ("So the answer is 12", False),
    ('She says "no."', False),
    ("Ann flips the coin once, so it", True),
    ("The coin was flipped by Ben and", True),
])
def test_truncation_is_a_rationale_that_stops_mid_sentence(text, truncated):
    assert is_truncated(text) is truncated


@pytest.mark.parametrize(("text", "first"), [
    ("The answer is yes. Ann flips twice.", True),
    ("Yes, because Ann flips twice.", True),
    ("(B) is right since ...", True),
    ("Ann flips twice, so the answer is yes.", False),
    ("Nobody flips it.", False),
])
def test_answer_first_is_an_answer_before_any_reasoning(text, first):
    assert states_answer_first(text) is first


def test_near_duplicate_samples_of_a_question_are_dropped_keeping_the_first():
    samples = [sample("Ann flips the coin once so the coin is tails now.", 0),
               sample("Ann flips the coin once so the coin is tails now!", 1),
               sample("Counting flips: one flip by Ann makes it tails.", 2)]
    report = FilterReport()
    kept = filter_question(samples, FilterSettings(dedupe_threshold=0.9, drop_truncated=False,
                                                   drop_answer_first=False), report)
    assert [s.sample for s in kept] == [0, 2]
    assert report.as_dict() == {"near_duplicate": 1}


def test_each_check_drops_and_counts_its_own_reason():
    samples = [sample("The answer is yes. Because.", 0), sample("Ann flips it and", 1),
               sample("Short.", 2), sample(" ".join(["word"] * 30) + ".", 3),
               sample("Fine reasoning here, so yes.", 4), sample("Lost answer.", 5, prediction=None)]
    report = FilterReport()
    settings = FilterSettings(min_words=2, max_words=20, drop_answer_first=True,
                              drop_truncated=True)
    kept = filter_question(samples, settings, report)
    assert [s.sample for s in kept] == [4]
    assert report.as_dict() == {"answer_first": 1, "no_answer": 1, "too_long": 1,
                                "too_short": 1, "truncated": 1}


def test_diversity_is_mean_pairwise_similarity_over_questions_with_two_samples():
    assert mean_pairwise_similarity([["same words here", "same words here"]]) == pytest.approx(1.0)
    assert mean_pairwise_similarity([["alpha beta", "gamma delta"]]) == pytest.approx(0.0)
    assert mean_pairwise_similarity([["only one"]]) is None


def test_dedupe_lowers_the_measured_similarity():
    example = PreparedExample(id="q-1", dataset="d", split="train", question="q", answer="yes",
                              answer_type="yes_no")
    samples = [sample("Ann flips the coin once so it is tails.", 0),
               sample("Ann flips the coin once so it is tails.", 1),
               sample("One flip by Ann reverses the coin.", 2)]
    params = CurateParams(dedupe_threshold=0.9)
    kept = select_rationales([example], samples, params)
    figures = diversity(samples, kept)
    assert [s.sample for s in kept["q-1"]] == [0, 2]
    assert figures["similarity_after"] < figures["similarity_before"]
