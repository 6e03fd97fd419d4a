"""Mixed-format Fine-tune-CoT (Fu et al. 2023): each correct rationale is trained in the
zero-shot-CoT format and, with the exemplars stage's shots in context, in the few-shot-CoT and
few-shot answer-only formats; the shares are params; a question is never its own exemplar."""

from __future__ import annotations

import pytest

from cotdistill.curation.select import curate
from cotdistill.params import CurateParams
from cotdistill.params.train import FineTuneCotMixedParams, MethodParams
from cotdistill.prompts import student_shots
from cotdistill.records import PreparedExample, TeacherCompletion


def _example(n: int) -> PreparedExample:
    return PreparedExample(id=f"q{n}", dataset="multiarith", split="train",
                           question=f"Question {n}?", answer=str(n), answer_type="number")


def _completion(n: int, sample: int = 0) -> TeacherCompletion:
    return TeacherCompletion(
        id=f"q{n}", dataset="multiarith", sample=sample, backend="replay", model="t",
        prompt_id="zs_cot@test", sampling={"temperature": 0.0}, rationale=f"Reason {n}.",
        answer_text="", prediction=str(n), correct=True)


SHOTS = {"multiarith": [{"id": f"q{n}", "question": f"Question {n}?", "rationale": f"Reason {n}.",
                         "answer": str(n)} for n in (1, 2, 3)]}
EXAMPLES = [_example(n) for n in range(1, 41)]
COMPLETIONS = [_completion(n) for n in range(1, 41)]


def _mixed(**shares) -> list:
    settings = MethodParams(fine_tune_cot_mixed=FineTuneCotMixedParams(**shares))
    return curate(EXAMPLES, COMPLETIONS, CurateParams(), exemplars=SHOTS,
                  method_params=settings)["fine_tune_cot_mixed"]


def test_shots_are_written_in_the_students_own_format():
    assert student_shots(SHOTS["multiarith"][:2]) == (
        "Question 1? ### Reason 1. --> 1\n\nQuestion 2? ### Reason 2. --> 2\n\n")
    assert student_shots(SHOTS["multiarith"][:1], with_rationale=False) == "Question 1? ### 1\n\n"


def test_each_rationale_is_trained_in_the_three_formats():
    rows = [r for r in _mixed() if r.id == "q9"]
    assert [(r.task, r.input, r.target) for r in rows] == [
        ("zero_shot_cot", "Question 9? ###", " Reason 9. --> 9"),
        ("few_shot_cot", "Question 1? ### Reason 1. --> 1\n\nQuestion 2? ### Reason 2. --> 2"
                         "\n\nQuestion 9? ###", " Reason 9. --> 9"),
        ("few_shot_answer", "Question 1? ### 1\n\nQuestion 2? ### 2\n\nQuestion 9? ###", " 9"),
    ]


def test_a_question_is_never_its_own_exemplar():
    for row in _mixed(shots=2):
        if row.id in ("q1", "q2") and row.task != "zero_shot_cot":
            assert f"Question {row.id[1:]}? ###" not in row.input.rsplit("\n\n", 1)[0]
            assert "Question 3? ###" in row.input  # the next shot takes its place


@pytest.mark.parametrize("share", [0.0, 0.25, 0.5])
def test_a_share_is_the_fraction_of_rationales_given_that_format(share):
    rows = _mixed(few_shot_answer=share)
    answer_only = sum(r.task == "few_shot_answer" for r in rows)
    assert sum(r.task == "zero_shot_cot" for r in rows) == 40
    assert abs(answer_only - 40 * share) <= 8  # a stable hash pick, near the share
    assert _mixed(few_shot_answer=share) == rows  # the same pick every run


def test_shares_and_shots_are_checked_params():
    with pytest.raises(ValueError, match="every share is 0"):
        FineTuneCotMixedParams(zero_shot_cot=0, few_shot_cot=0, few_shot_answer=0)
    with pytest.raises(ValueError):
        FineTuneCotMixedParams(few_shot_cot=1.5)
