"""Specification of the curate stage on hand-built prepared examples and teacher completions."""

from __future__ import annotations

import pytest

from cotdistill.curation.select import curate, curation_stats
from cotdistill.methods.registry import METHODS
from cotdistill.params import CurateParams
from cotdistill.records import PreparedExample, TeacherCompletion


def example(id: str, question: str, answer: str, dataset: str = "coin_flip") -> PreparedExample:
    answer_type = "yes_no" if dataset == "coin_flip" else "text"
    return PreparedExample(
        id=id, dataset=dataset, split="train", question=question, answer=answer,
        answer_type=answer_type,
    )


def completion(
    id: str, sample: int, rationale: str, correct: bool, dataset: str = "coin_flip"
) -> TeacherCompletion:
    return TeacherCompletion(
        id=id, dataset=dataset, sample=sample, backend="transformers", model="tiny",
        prompt_id="zs_cot@test", sampling={"temperature": 0.7}, rationale=rationale,
        answer_text="", prediction="given" if correct else None, correct=correct,
    )


Q1 = example("cf-1", "A coin is heads up. Ann flips the coin.", "no")
Q2 = example("cf-2", "A coin is heads up. Bob does not flip the coin.", "yes")
Q3 = example("ll-1", 'Take the last letters of each words in "Ann Bob".', "nb",
             dataset="last_letter_concatenation")
EXAMPLES = [Q1, Q2, Q3]
COMPLETIONS = [
    completion("cf-1", 0, "Ann flips once, so it is tails.", True),
    completion("cf-1", 1, "Nobody flips it.", False),
    completion("cf-1", 2, "One flip reverses it.", True),
    completion("cf-2", 0, "Bob flips it.", False),
    completion("cf-2", 1, "", True),  # correct but no rationale
    completion("ll-1", 0, "n and b.", True, dataset="last_letter_concatenation"),
    completion("ll-1", 1, "a and b.", False, dataset="last_letter_concatenation"),
]


@pytest.fixture
def curated():
    return curate(EXAMPLES, COMPLETIONS, CurateParams())


def test_every_method_with_zero_shot_rationales_gets_a_list(curated):
    """new_fine_tune_cot's rationales come from the few-shot pass, which this run has not, and
    fine_tune_cot_mixed needs the exemplars stage's shots, which it was not given."""
    assert set(curated) == {name for name, method in METHODS.items()
                            if method.rationales == "zero_shot" and not method.uses_exemplars}
    assert "fine_tune_cot" in curated and "new_fine_tune_cot" not in curated
    assert "fine_tune_cot_mixed" not in curated


def test_fine_tune_cot_keeps_only_correct_completions(curated):
    sources = [row.source for row in curated["fine_tune_cot"]]
    assert sources == ["cf-1#0", "cf-1#2", "ll-1#0"]


def test_fine_tune_cot_format_is_question_hashes_then_rationale_arrow_answer(curated):
    row = curated["fine_tune_cot"][0]
    assert row.input == "A coin is heads up. Ann flips the coin. ###"
    assert row.target == " Ann flips once, so it is tails. --> no"
    assert (row.id, row.dataset, row.method) == ("cf-1", "coin_flip", "fine_tune_cot")


def test_fine_tune_cot_uses_the_gold_answer_not_the_teachers(curated):
    row = curated["fine_tune_cot"][-1]
    assert row.target == " n and b. --> nb"


def test_the_rationale_is_stripped_in_the_target():
    rows = curate([Q1], [completion("cf-1", 0, "  padded rationale \n", True)], CurateParams())
    assert rows["fine_tune_cot"][0].target == " padded rationale --> no"


def test_answer_only_has_one_row_per_question_with_the_gold_answer(curated):
    rows = curated["answer_only"]
    assert [(r.id, r.input, r.target, r.source) for r in rows] == [
        ("cf-1", "A coin is heads up. Ann flips the coin. ###", " no", None),
        ("cf-2", "A coin is heads up. Bob does not flip the coin. ###", " yes", None),
        ("ll-1", 'Take the last letters of each words in "Ann Bob". ###', " nb", None),
    ]


def test_answer_only_includes_questions_the_teacher_never_answered():
    rows = curate(EXAMPLES, [], CurateParams())
    assert [r.id for r in rows["answer_only"]] == ["cf-1", "cf-2", "ll-1"]
    assert rows["fine_tune_cot"] == []


def test_a_correct_completion_with_an_empty_rationale_is_dropped(curated):
    assert "cf-2" not in {row.id for row in curated["fine_tune_cot"]}


@pytest.mark.parametrize(
    ("cap", "expected"), [(1, ["cf-1#0", "ll-1#0"]), (2, ["cf-1#0", "cf-1#2", "ll-1#0"])]
)
def test_max_per_question_caps_kept_rationales_in_sample_order(cap, expected):
    rows = curate(EXAMPLES, COMPLETIONS, CurateParams(max_per_question=cap))
    assert [row.source for row in rows["fine_tune_cot"]] == expected


def test_max_per_question_counts_only_kept_completions():
    completions = [
        completion("cf-1", 0, "wrong", False),
        completion("cf-1", 1, "", True),
        completion("cf-1", 2, "right", True),
    ]
    rows = curate([Q1], completions, CurateParams(max_per_question=1))
    assert [row.source for row in rows["fine_tune_cot"]] == ["cf-1#2"]


def test_output_is_in_question_then_sample_order_whatever_the_input_order():
    rows = curate(EXAMPLES, list(reversed(COMPLETIONS)), CurateParams())
    assert [row.source for row in rows["fine_tune_cot"]] == ["cf-1#0", "cf-1#2", "ll-1#0"]


def test_completions_for_unknown_questions_are_ignored():
    stray = completion("nope-9", 0, "whatever", True)
    rows = curate([Q1], [stray], CurateParams())
    assert rows["fine_tune_cot"] == []


# --- statistics ------------------------------------------------------------------------------

@pytest.fixture
def stats(curated):
    return curation_stats(EXAMPLES, COMPLETIONS, curated)


def test_stats_overall_teacher_accuracy_is_correct_over_all_completions(stats):
    assert stats["teacher_accuracy"] == pytest.approx(4 / 7)


def test_stats_kept_rationales_counts_curated_fine_tune_cot_rows(stats):
    assert stats["kept_rationales"] == 3


def test_stats_examples_per_method(stats):
    counts = {"fine_tune_cot": 3, "answer_only": 3, "distill_step_by_step": 6, "two_stage_cot": 3}
    assert {name: stats["examples"][name] for name in counts} == counts
    assert set(stats["examples"]) == {n for n, m in METHODS.items()
                                      if m.rationales == "zero_shot" and not m.uses_exemplars}


def test_stats_per_dataset(stats):
    assert stats["datasets"]["coin_flip"] == {
        "questions": 2,
        "completions": 5,
        "teacher_accuracy": pytest.approx(3 / 5),
        "kept_rationales": 2,
        "kept_per_question": pytest.approx(1.0),
        "questions_with_a_kept_rationale": 1,
    }
    assert stats["datasets"]["last_letter_concatenation"] == {
        "questions": 1,
        "completions": 2,
        "teacher_accuracy": pytest.approx(0.5),
        "kept_rationales": 1,
        "kept_per_question": pytest.approx(1.0),
        "questions_with_a_kept_rationale": 1,
    }


def test_stats_kept_per_question_counts_only_questions_sent_to_the_teacher():
    extra = example("cf-3", "A coin is heads up. Cy flips the coin.", "no")
    examples = [Q1, Q2, extra]  # cf-3 was never asked
    completions = COMPLETIONS[:5]
    stats = curation_stats(examples, completions, curate(examples, completions, CurateParams()))
    assert stats["datasets"]["coin_flip"]["questions"] == 2
    assert stats["datasets"]["coin_flip"]["kept_per_question"] == pytest.approx(1.0)


def test_stats_follow_max_per_question():
    curated = curate(EXAMPLES, COMPLETIONS, CurateParams(max_per_question=1))
    stats = curation_stats(EXAMPLES, COMPLETIONS, curated)
    assert stats["kept_rationales"] == 2
    assert stats["datasets"]["coin_flip"]["kept_per_question"] == pytest.approx(0.5)


def test_stats_without_completions_are_zero():
    stats = curation_stats(EXAMPLES, [], curate(EXAMPLES, [], CurateParams()))
    assert stats["teacher_accuracy"] == 0.0
    assert stats["kept_rationales"] == 0
    assert stats["datasets"]["coin_flip"]["teacher_accuracy"] == 0.0
    assert stats["datasets"]["coin_flip"]["kept_per_question"] == 0.0


def test_distill_step_by_step_makes_an_answer_task_and_a_rationale_task_per_rationale():
    rows = curate(EXAMPLES, COMPLETIONS, CurateParams())["distill_step_by_step"]
    first = [row for row in rows if row.source == "cf-1#0"]
    assert [(row.task, row.input, row.target) for row in first] == [
        ("answer", f"[answer] {Q1.question} ###", " no"),
        ("rationale", f"[rationale] {Q1.question} ###", " Ann flips once, so it is tails."),
    ]


def test_a_task_with_its_own_student_format_trains_every_method_on_it():
    from cotdistill.prompts import TaskPrompts

    tasks = {"coin_flip": TaskPrompts(student="Puzzle: {question}\nAnswer:")}
    curated = curate(EXAMPLES, COMPLETIONS, CurateParams(), tasks=tasks)
    coin = [row for row in curated["fine_tune_cot"] if row.dataset == "coin_flip"]
    assert coin and all(row.input == f"Puzzle: {Q1.question}\nAnswer: ###" for row in coin
                        if row.id == "cf-1")
    dsbs = {row.input for row in curated["distill_step_by_step"] if row.id == "cf-1"}
    assert dsbs == {f"[answer] Puzzle: {Q1.question}\nAnswer: ###",
                    f"[rationale] Puzzle: {Q1.question}\nAnswer: ###"}
    letters = [row for row in curated["answer_only"] if row.dataset != "coin_flip"]
    assert [row.input for row in letters] == [f"{Q3.question} ###"]  # the default format
    # and evaluation asks the same question the same way
    assert METHODS["fine_tune_cot"].student_input(Q1.question, tasks["coin_flip"]) == \
        coin[0].input
