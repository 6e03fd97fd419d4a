"""Specification of answer extraction and comparison (cotdistill.answers), as tables."""

from __future__ import annotations

import pytest

from cotdistill.answers import extract, extract_student, is_correct, normalize_gold

FIVE_CHOICES = ["apple", "banana", "cherry", "date", "elderberry"]  # letters A..E
TWO_CHOICES = ["yes", "no"]  # letters A..B


# --- numbers ---------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("42", "42"),
        ("1,234", "1234"),
        ("12,345,678", "12345678"),
        ("-3", "-3"),
        ("-1,234", "-1234"),
        ("18.0", "18"),
        ("The answer is 18.0.", "18"),
        ("3.5", "3.5"),
        ("2.50", "2.5"),
        (".5", "0.5"),
        ("3/4", "0.75"),
        ("$5", "5"),
        ("-$5", "-5"),
        ("$1,000.50", "1000.5"),
        ("5 apples", "5"),
        ("She has 3 apples and 4 pears, so 7 in all.", "3"),
        ("It is 1,234.", "1234"),
    ],
)
def test_number_extraction_returns_the_first_number_in_canonical_form(text, expected):
    assert extract(text, "number") == expected


@pytest.mark.parametrize("text", ["", "no digits here", "one hundred"])
def test_number_extraction_without_a_number_gives_none(text):
    assert extract(text, "number") is None


# --- yes / no --------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("yes", "yes"),
        ("Yes", "yes"),
        ("YES!", "yes"),
        ("No.", "no"),
        ("no", "no"),
        (" No, the coin is tails up.", "no"),
        ("no, then yes", "no"),
    ],
)
def test_yes_no_extraction_is_case_and_punctuation_insensitive(text, expected):
    assert extract(text, "yes_no") == expected


@pytest.mark.parametrize("text", ["Nope", "yesterday", "not sure", "eyes", ""])
def test_yes_no_inside_other_words_does_not_count(text):
    assert extract(text, "yes_no") is None


# --- choice letters --------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("(B)", "B"),
        ("B)", "B"),
        ("B.", "B"),
        ("B", "B"),
        ("B: banana", "B"),
        ("The answer is C.", "C"),
        ("Both are fine, but (C) is best.", "C"),
    ],
)
def test_choice_extraction_finds_the_letter(text, expected):
    assert extract(text, "choice", FIVE_CHOICES) == expected


@pytest.mark.parametrize("text", ["Both", "Because", "CAT", "Everything"])
def test_capital_letter_inside_a_word_is_not_a_choice(text):
    assert extract(text, "choice", FIVE_CHOICES) is None


@pytest.mark.parametrize(
    ("text", "choices", "expected"),
    [
        ("(F)", FIVE_CHOICES, None),
        ("(F) or rather (B)", FIVE_CHOICES, "B"),
        ("(C)", TWO_CHOICES, None),
        ("C, no wait, B", TWO_CHOICES, "B"),
    ],
)
def test_letters_outside_the_given_choices_are_ignored(text, choices, expected):
    assert extract(text, "choice", choices) == expected


def test_without_a_choice_list_any_capital_letter_counts():
    assert extract("(F)", "choice", None) == "F"


# --- free text -------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("nkyj", "nkyj"),
        ('"nkyj".', "nkyj"),
        ("'nkyj'", "nkyj"),
        ("nkyj.", "nkyj"),
        ("NKYJ", "nkyj"),
        ("  Nkyj is the answer", "nkyj is the answer"),
        ("Billing issue. The customer was charged twice.", "billing issue"),
        ('"Error 404", because the page is gone', "error 404"),
    ],
)
def test_text_extraction_takes_the_stated_phrase_lowercased_without_quotes(text, expected):
    assert extract(text, "text") == expected


@pytest.mark.parametrize(("stated", "gold", "right"), [
    ("nkyj is the answer", "nkyj", True),  # a one-word answer: its first word, as before
    ("billing issue", "Billing  issue", True),
    ("billing", "billing issue", False),  # not the whole answer
    ("billing issue resolved", "billing issue", True),
    ("issue billing", "billing issue", False),
    ("n a o a", "naoa", True),  # spelled out
])
def test_a_free_text_answer_is_right_when_the_gold_words_open_it(stated, gold, right):
    assert is_correct(extract(stated, "text"), gold, "text") is right


def test_a_free_text_answer_is_stated_in_at_most_twelve_words():
    assert len(extract(" ".join(["word"] * 40), "text").split()) == 12


def test_text_extraction_without_a_word_gives_none():
    assert extract('"..."', "text") is None


def test_unknown_answer_type_is_rejected():
    with pytest.raises(ValueError, match="unknown answer type"):
        extract("5", "date")


# --- student outputs -------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("output", "answer_type", "expected"),
    [
        ("Alice flips, so 1 flip. --> no", "yes_no", "no"),
        ("2 + 3 = 5 --> 5", "number", "5"),
        ("first 3 --> 4 then --> 9", "number", "9"),  # the last marker wins
        ("the last letters are y and s --> ys", "text", "ys"),
        ("thinking -->", "number", None),
        ("2 + 3 = 5, so the answer is 5", "number", None),  # no marker: no answer
        ("yes, yes, yes", "yes_no", None),
    ],
)
def test_rationale_student_answer_follows_the_last_marker(output, answer_type, expected):
    assert extract_student(output, answer_type, with_rationale=True) == expected


def test_rationale_student_choice_uses_the_choice_list():
    assert extract_student("it is red --> (C)", "choice", FIVE_CHOICES) == "C"
    assert extract_student("it is red --> (C)", "choice", TWO_CHOICES) is None


@pytest.mark.parametrize(
    ("output", "answer_type", "expected"),
    [
        (" 5", "number", "5"),
        (" yes", "yes_no", "yes"),
        (" nkyj", "text", "nkyj"),
        ("5 --> 7", "number", "5"),  # the whole output is the answer: first number
    ],
)
def test_answer_only_student_whole_output_is_the_answer(output, answer_type, expected):
    assert extract_student(output, answer_type, with_rationale=False) == expected


# --- gold answers and comparison -------------------------------------------------------------

@pytest.mark.parametrize(
    ("answer", "answer_type", "expected"),
    [
        ("1,234", "number", "1234"),
        ("18.0", "number", "18"),
        (" 0.5 ", "number", "0.5"),
        ("3/4", "number", "0.75"),
        ("not a number", "number", "not a number"),
        ("(b)", "choice", "B"),
        (" C ", "choice", "C"),
        (" Yes ", "yes_no", "yes"),
        ("NKYJ", "text", "nkyj"),
    ],
)
def test_normalize_gold_matches_the_form_extract_returns(answer, answer_type, expected):
    assert normalize_gold(answer, answer_type) == expected


@pytest.mark.parametrize(
    ("prediction", "gold", "answer_type", "expected"),
    [
        ("18", "18.0", "number", True),
        ("1234", "1,234", "number", True),
        ("0.75", "3/4", "number", True),
        ("0.333333", "1/3", "number", True),
        ("-5", "5", "number", False),
        ("17", "18", "number", False),
        ("abc", "18", "number", False),
        ("B", "(b)", "choice", True),
        ("B", "C", "choice", False),
        ("yes", "Yes", "yes_no", True),
        ("no", "yes", "yes_no", False),
        ("nkyj", "NKYJ", "text", True),
        ("nkyj", "nky", "text", False),
        (None, "18", "number", False),
        (None, "yes", "yes_no", False),
    ],
)
def test_is_correct(prediction, gold, answer_type, expected):
    assert is_correct(prediction, gold, answer_type) is expected


@pytest.mark.parametrize(
    ("text", "gold", "answer_type", "choices"),
    [
        (" The answer is $1,234.", "1234", "number", None),
        (" 18.0 dollars", "18", "number", None),
        (" 1234.5", "1234.5", "number", None),
        (" No.", "no", "yes_no", None),
        (" (D) date", "D", "choice", FIVE_CHOICES),
        (' "NKYJ".', "nkyj", "text", None),
    ],
)
def test_an_extracted_correct_answer_is_judged_correct(text, gold, answer_type, choices):
    assert is_correct(extract(text, answer_type, choices), gold, answer_type)


@pytest.mark.parametrize("gold", ["12345.67", "1234567.5", "$12,345.67"])
def test_a_correct_decimal_with_many_digits_is_judged_correct(gold):
    assert is_correct(extract(f"The total is {gold}.", "number"), gold, "number")


def test_a_parenthesised_choice_wins_over_the_article_a():
    assert extract("A good answer is (C)", "choice", FIVE_CHOICES) == "C"


# --- traps in real teacher completions (text-davinci-002, zero-shot-CoT) ---------------------
# One row per trap; most rows are completions quoted from shared/data/teacher (the text
# after "Therefore, the answer ... is").

@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (" $40,000.", "40000"),  # thousands separator and currency sign
        ("1,2,3", "1"),  # commas not in groups of three separate a list
        (" -15.", "-15"),  # a negative number
        ("x - 10 = 50", "10"),  # a subtraction is not a minus sign
        (" 3-4-1", "3"),  # nor is a hyphen
        (" 12.30.", "12.3"),  # trailing zero, then a full stop
        (" 9/10.", "0.9"),  # a fraction is one number, not 9
        (" 1/6, or 0.166666666666667.", "0.16666666666666666"),
        (" .25", "0.25"),  # a decimal without its leading zero
        (" 70%.", "70"),  # percent: the number written, as the question asked for it
        (" 18.0 dollars", "18"),  # a unit after the number
        (" 8 buses carrying 45 students each equals 360 students", "8"),  # first number
        (" 9 + 8 = 17.", "17"),  # an equation: its result is the answer
        (" 1600*3.5 = $5600. \n\nI hope this helps!", "5600"),
        (": \n\n320 + (2 * 60) = 440", "440"),
        (" \n\n$192 x 12 = \n\n$2,304", "2304"),
        (" 323 / 19 = 17.", "17"),
        (" 26 + 36 - 48 = 14. The answer (words) is fourteen.", "14"),  # a restatement
        (" 14. \n\nThe answer (in words) is fourteen.", "14"),
        (" 2. \n\nThe answer is 2.", "2"),
        ("5 + 6 = 11 balls. The answer is 11.", "11"),  # a whole few-shot-style output
        ("There are 7 cars. Therefore, the answer (arabic numerals) is 5.", "5"),
        (" _____. \n\nThe answer is 162.", "162"),
        (" eleven.", None),  # number words: the trigger asks for arabic numerals
        (": \n\nOne hundred dollars.", None),
    ],
)
def test_number_traps(text, expected):
    assert extract(text, "number") == expected


THREE_CHOICES = ["red", "green", "blue"]  # Tracking Shuffled Objects: A..C
SIX_CHOICES = ["a", "b", "c", "d", "e", "f"]  # Date Understanding: A..F


@pytest.mark.parametrize(
    ("text", "choices", "expected"),
    [
        (" A: Karl.", THREE_CHOICES, "A"),
        (" C) green ball.", THREE_CHOICES, "C"),
        (" B, 03/05/1973.", SIX_CHOICES, "B"),
        (" D. \n\nThe date 10 days ago would be 09/09/2020.", SIX_CHOICES, "D"),
        (' "B".', THREE_CHOICES, "B"),  # in quotes
        ("(D)", THREE_CHOICES, None),  # past the dataset's last letter
        ("(F)", SIX_CHOICES, "F"),
        ("Bob ends with the (A) ball. Therefore, among A through C, the answer is B.",
         THREE_CHOICES, "B"),
    ],
)
def test_choice_traps(text, choices, expected):
    assert extract(text, "choice", choices) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (' "Yes".', "yes"),
        (" YES, the coin is still heads up.", "yes"),
        (":\n\nYes", "yes"),
        ("The coin is no longer heads up. The answer is yes.", "yes"),
    ],
)
def test_yes_no_traps(text, expected):
    assert extract(text, "yes_no") == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (' "n a o a".', "naoa"),  # spelled out with spaces
        (' "n-a-e-y".', "naey"),  # spelled out with hyphens
        (' "méyl".', "méyl"),  # a letter outside A-Z
        (' "lenyjn."', "lenyjn"),  # the full stop inside the quotes
        (" 'oeroerr'.", "oeroerr"),  # single quotes
        ("n is the answer", "n is the answer"),  # one letter, then words: right for "n"
        ("So the answer is nkyj.", "nkyj"),
    ],
)
def test_text_traps(text, expected):
    assert extract(text, "text") == expected


@pytest.mark.parametrize(
    ("prediction", "gold", "answer_type", "expected"),
    [
        ("0.6666666666666667", "0.6666666666666666", "number", True),  # float's last digit
        ("0.67", "0.6666666666666666", "number", False),  # a rounded answer is not the answer
        ("40000", "40,000", "number", True),
        ("yaea", "yaeA", "text", True),  # gold with a capital letter
        ("-15", "15", "number", False),
    ],
)
def test_comparison_traps(prediction, gold, answer_type, expected):
    assert is_correct(prediction, gold, answer_type) is expected


@pytest.mark.parametrize(
    ("answer_type", "rationale", "answer", "expected"),
    [
        ("number", "There are 7 cars.", " 5.", "5"),
        ("yes_no", "No doubt the coin is heads up.", " Yes.", "yes"),
        ("choice", "The (A) ball is tempting.", " (B).", "B"),
        ("text", "The letters are a and b.", ' "ab".', "ab"),
    ],
)
def test_a_whole_answer_prompt_is_read_after_our_trigger(answer_type, rationale, answer, expected):
    from cotdistill.prompts import answer_prompt

    prompt = answer_prompt("Q?", rationale, answer_type, THREE_CHOICES)
    assert extract(prompt + answer, answer_type, THREE_CHOICES) == expected


@pytest.mark.parametrize(
    ("output", "answer_type", "expected"),
    [
        ("5 + 6 = 11 --> $1,100", "number", "1100"),
        ("so 9 + 8 --> 9 + 8 = 17", "number", "17"),
        ("it ends with (A) --> B)", "choice", "B"),
        ("letters --> \"n a o a\"", "text", "naoa"),
    ],
)
def test_student_traps(output, answer_type, expected):
    assert extract_student(output, answer_type, THREE_CHOICES) == expected
