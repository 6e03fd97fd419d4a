"""The calculator reads the arithmetic a text ends with before "=", in the forms teachers write
it, computes it exactly and safely (parsed, never evaluated as code; sizes bounded), and writes
the result the way a teacher would; anything else it leaves alone (None)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from cotdistill.calculator import MAX_DIGITS, compute, pending, result_for


@pytest.mark.parametrize(("text", "result"), [
    ("Debby and her sister have 32 + 42 =", " 74"),
    ("They have 8 + 8 + 8 =", " 24"),
    ("56-34=", " 22"),
    ("5 x 3 =", " 15"),
    ("7 × 6 =", " 42"),
    ("2 ÷ 4 =", " 0.5"),
    ("3.42 - 2.2 =", " 1.22"),  # exact: not 1.2199999999999998
    ("there are 97,741 + 20,817 =", " 118,558"),
    ("$4.50 + $3 =", " $7.50"),
    ("$4 + $3 =", " $7"),
    ("20% of 50 =", " 10"),
    ("(3 + 4) * 2 =", " 14"),
    ("7.125 pounds - 0.625 pounds =", " 6.5"),
    ("he used 35 tickets (5 tickets x 7 rides =", " 35"),
    ("1 / 3 =", " 0.3333"),
    ("3 - 5 =", " -2"),
])
def test_what_teachers_write_is_read_and_computed(text, result):
    assert result_for(text) == result


@pytest.mark.parametrize("text", [
    "a total of 18 =",         # a lone number: nothing to compute
    "56 - x =",                 # algebra
    "Melanie + Benny =",        # words
    "5 / 0 =",                  # division by zero: refused, not raised
    "10**10**10 =",             # no powers
    "2 + 2",                    # no "=" at the end
    "9" * (MAX_DIGITS + 1) + " + 1 =",  # a number too long
    "999999999999999 * 999999999999999 =",  # a value too large
])
def test_anything_else_is_left_to_the_writer(text):
    assert result_for(text) is None


@pytest.mark.parametrize("expression", [
    "__import__('os').system('true')", "(1).__class__", "[1, 2]", "1 if 2 else 3", "2 ** 8",
    "1 < 2", "'1' + '2'", "x + 1", "abs(-1)", "1 +", "+".join(["1"] * 13),
])
def test_only_numbers_operators_signs_and_parentheses_are_computed(expression):
    assert compute(expression) is None


def test_signs_and_nesting_compute_exactly():
    assert compute("-(2 - 5) * (0.1 + 0.2)") == Decimal("0.9")


def test_only_the_tail_of_a_long_text_is_searched():
    assert pending("word " * 10_000 + "1 + 1 =") is not None
    assert pending("1 + " * 5_000 + "1 =") is None or compute(pending("1 + " * 5_000 + "1 =")
                                                              .python) is None


def test_every_computed_step_of_a_text_is_found_with_the_writers_result():
    from cotdistill.calculator import computations

    text = "He buys 5 x 3 = 16 apples; 20% of 50 = 10. $4.50 + $3 = $7.50, 7 / 0 = 3, 6 = 6."
    found = [(c.expression, c.written, c.computed, c.agrees) for c in computations(text)]
    assert found == [("5 x 3", "16", "15", False), ("20% of 50", "10", "10", True),
                     ("$4.50 + $3", "$7.50", "$7.50", True)]
    start = text.index("16")
    assert (computations(text)[0].start, computations(text)[0].end) == (start, start + 2)


@pytest.mark.parametrize(("text", "agrees"), [
    ("17 / 3 = 5.67", True),  # rounded as the writer rounded it
    ("17 / 3 = 5.6", False),
    ("40 / 7 = 6", False),  # an integer result must be exact
    ("1200 / 4 = 300.00", True),
    ("1,200 + 800 = 2,000", True),
    ("50 / 200 = 25%", True),
    ("$3 + $4 = 7", True),
    ("2/3 - 1/2 = 1/6.", True),  # a fraction, read whole
    ("1/4 + 1/2 = 3/5", False),
    ("0.1 + 0.2 = 0.30000000000000004", True),  # a float's last digit is no error
    ("3.8333333333333335 - 0.16666666666666666 = 3.6666666666666665", True),
])
def test_a_written_result_agrees_when_it_is_the_value_in_any_format(text, agrees):
    from cotdistill.calculator import computations

    assert [c.agrees for c in computations(text)] == [agrees]


def test_corrected_replaces_only_the_wrong_results():
    from cotdistill.calculator import corrected

    text, replaced = corrected("So 5 x 3 = 16 and 2 + 2 = 4, then 9 - 1 = 7 left.")
    assert text == "So 5 x 3 = 15 and 2 + 2 = 4, then 9 - 1 = 8 left."
    assert [c.written for c in replaced] == ["16", "7"]


def test_corrected_replaces_a_wrong_fraction_whole_and_leaves_a_right_one():
    from cotdistill.calculator import corrected

    text, replaced = corrected("So 1/4 + 1/2 = 3/4 and 1/2 + 1/2 = 2/3 in all.")
    assert text == "So 1/4 + 1/2 = 3/4 and 1/2 + 1/2 = 1 in all."
    assert [c.written for c in replaced] == ["2/3"]


def test_a_number_that_an_operator_follows_is_the_next_expression_not_a_result():
    from cotdistill.calculator import computations

    assert computations("15 + 48 = 12 + 2x") == []  # an equation, not arithmetic
    found = computations("the cost is 3*8+5*8=24+40=64 dollars")
    assert [(c.expression, c.written, c.agrees) for c in found] == [("24+40", "64", True)]
