"""Specification of curate's check of the teacher's own arithmetic: in correct rationales of
number questions, the calculator finds the wrong steps; ``curate.teacher_arithmetic`` keeps,
drops or fixes them, and the curate report counts them whatever the policy."""

from __future__ import annotations

import pytest

from cotdistill.curation.arithmetic import ArithmeticReport
from cotdistill.curation.select import curate
from cotdistill.params import CurateParams
from cotdistill.records import PreparedExample, TeacherCompletion


def _example(id: str, answer: str, answer_type: str = "number") -> PreparedExample:
    return PreparedExample(id=id, dataset="multiarith", split="train", question=f"Q {id}?",
                           answer=answer, answer_type=answer_type)


def _completion(id: str, rationale: str, correct: bool = True) -> TeacherCompletion:
    return TeacherCompletion(
        id=id, dataset="multiarith", sample=0, backend="replay", model="text-davinci-002",
        prompt_id="zs_cot@test", sampling={"temperature": 0.0}, rationale=rationale,
        answer_text="", prediction="x" if correct else None, correct=correct)


EXAMPLES = [_example("right", "15"), _example("wrong", "6"), _example("words", "6"),
            _example("date", "(A)", answer_type="choice"), _example("failed", "9")]
COMPLETIONS = [
    _completion("right", "He has 5 x 3 = 15 apples."),
    # right answer, wrong step: 40 / 7 is not 5 (the teacher's 6 comes from rounding up)
    _completion("wrong", "40 / 7 = 5 and 2 + 2 = 5, so 6 boxes."),
    _completion("words", "Six boxes."),
    _completion("date", "2021 - 2 = 2018 so (A)."),  # not a number question: not checked
    _completion("failed", "3 + 3 = 7", correct=False),  # not correct: not curated at all
]


def _curate(policy: str):
    report = ArithmeticReport(policy=policy)
    curated = curate(EXAMPLES, COMPLETIONS, CurateParams(teacher_arithmetic=policy),
                     arithmetic=report)
    return {row.id: row for row in curated["fine_tune_cot"]}, report.as_dict()


def test_only_correct_rationales_of_number_questions_are_checked_and_counted():
    _, counts = _curate("keep")
    assert counts == {"policy": "keep", "rationales_checked": 3, "computations": 3,
                      "wrong_computations": 2, "rationales_with_wrong_arithmetic": 1,
                      "dropped": 0, "fixed": 0}


def test_keep_trains_on_the_teachers_own_text():
    rows, _ = _curate("keep")
    assert "40 / 7 = 5 and 2 + 2 = 5" in rows["wrong"].target
    assert rows["wrong"].lineage is None and "2021 - 2 = 2018" in rows["date"].target


def test_drop_leaves_the_rationale_out():
    rows, counts = _curate("drop")
    assert "wrong" not in rows and {"right", "words", "date"} <= set(rows)
    assert counts["dropped"] == 1


def test_fix_writes_the_calculators_results_and_records_each_in_the_lineage():
    rows, counts = _curate("fix")
    assert "40 / 7 = 5.7143 and 2 + 2 = 4, so 6 boxes." in rows["wrong"].target
    assert rows["wrong"].lineage == {"fixed_arithmetic": [
        {"expression": "40 / 7", "teacher": "5", "calculator": "5.7143"},
        {"expression": "2 + 2", "teacher": "5", "calculator": "4"}]}
    assert rows["right"].lineage is None and "2021 - 2 = 2018" in rows["date"].target
    assert counts["fixed"] == 1


def test_the_policy_is_a_checked_param():
    with pytest.raises(ValueError, match="teacher_arithmetic"):
        CurateParams(teacher_arithmetic="repair")
