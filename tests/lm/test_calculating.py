"""The calculator inside decoding: a student that has learnt to write wrong sums writes the right
ones when it decodes with the calculator, in a batch, greedy or sampled, and keeps its own tokens
wherever the calculator refuses. The student is a tiny model taught, for real, to write these
wrong rationales."""

from __future__ import annotations

import pytest
from support.arithmetic import TAUGHT_ARITHMETIC as TAUGHT

from cotdistill.lm.generation import generate


@pytest.fixture(scope="module")
def student(arithmetic_student):
    return arithmetic_student


def _write(student, prompts, *, calculator, temperature=0.0, batch_size=8):
    model, tokenizer = student
    return generate(model, tokenizer, prompts, max_new_tokens=48, batch_size=batch_size,
                    temperature=temperature, seed=7, calculator=calculator)


def test_without_the_calculator_the_student_writes_what_it_learnt(student):
    written = _write(student, list(TAUGHT), calculator=False)
    assert [g.text for g in written] == list(TAUGHT.values())
    assert all(g.calculated == 0 for g in written)


def test_the_calculator_writes_each_result_and_the_student_goes_on(student):
    out = {p: g for p, g in zip(TAUGHT, _write(student, list(TAUGHT), calculator=True))}
    assert out["Add ###"].text.startswith(" 12 + 30 = 42 ")
    assert out["Add ###"].calculated == 1
    assert out["Pay ###"].text.startswith(" $4.50 + $3 = $7.50 ")


def test_a_result_is_never_extended_by_the_students_own_digits(student):
    """The student learnt "2 + 2 = 41": after the calculator's 4 no digit may follow."""
    two = _write(student, ["Two ###"], calculator=True)[0].text
    assert two.startswith(" 2 + 2 = 4") and not two[len(" 2 + 2 = 4")].isdigit()


def test_a_result_is_not_extended_after_a_point_either_but_a_sentence_may_end(student):
    """The student learnt "7 + 4 = 11.33": after the calculator's 11, "." may come (it ends
    sentences) but no digit after it; "= 11, 2 each" keeps its comma and the words after."""
    dot = _write(student, ["Dot ###"], calculator=True)[0].text
    assert dot.startswith(" 7 + 4 = 11")
    after = dot[len(" 7 + 4 = 11"):]
    assert not after[:1].isdigit() and not (after[:1] in ".," and after[1:2].isdigit())


def test_a_refused_expression_leaves_the_students_tokens_in_place(student):
    """Division by zero and a power are refused: the student's own text stays, and the
    calculator still computes the next expression it can read."""
    cut, big = _write(student, ["Cut ###", "Big ###"], calculator=True)
    assert cut.text == TAUGHT["Cut ###"] and cut.calculated == 0
    assert big.text.startswith(" 9 ** 99 = 8 and 12 + 30 = 42")
    assert big.calculated == 1


def test_rows_with_and_without_the_calculator_share_a_batch_without_influence(student):
    prompts = ["Add ###", "Add ###", "Pay ###", "Two ###"]
    flags = [True, False, True, False]
    together = [g.text for g in _write(student, prompts, calculator=flags)]
    alone = [_write(student, [p], calculator=f)[0].text for p, f in zip(prompts, flags)]
    assert together == alone
    assert together[1] == TAUGHT["Add ###"] and together[3] == TAUGHT["Two ###"]


def test_sampled_rows_get_the_calculators_results_too(student):
    sampled = _write(student, ["Add ###", "Pay ###"], calculator=True, temperature=1.0)
    assert sampled[0].text.startswith(" 12 + 30 = 42")
    assert sampled[1].text.startswith(" $4.50 + $3 = $7.50")
    again = _write(student, ["Add ###", "Pay ###"], calculator=True, temperature=1.0,
                   batch_size=1)
    assert [g.text for g in again] == [g.text for g in sampled]


@pytest.mark.parametrize(("method", "answer_type", "sum_written"), [
    ("fine_tune_cot_calc", "number", "42"),
    ("fine_tune_cot_calc", "yes_no", "97"),  # only number answers are arithmetic
    ("fine_tune_cot", "number", "97"),
])
def test_a_calculator_methods_student_predicts_with_it_on_number_questions(
        student, method, answer_type, sum_written):
    """`cotdistill predict` and the registered MLflow model answer through ``predict``: a
    fine_tune_cot_calc student decodes with the calculator there as evaluation does."""
    from cotdistill.prompts import DEFAULT
    from cotdistill.student.predict import predict

    model, tokenizer = student
    answer = predict(model, tokenizer, method, ["Add"], answer_type=answer_type, choices=None,
                     task=DEFAULT, max_new_tokens=48)[0]
    assert answer.output.startswith(f" 12 + 30 = {sum_written}")
