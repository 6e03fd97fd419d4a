"""Answer extraction and comparison: every accuracy figure in the project goes through here.

Two readers share one set of per-type parsers:
- teacher outputs: the text after an answer trigger ("Therefore, the answer ... is"), where the
  answer is the first candidate in the text;
- student outputs: Fine-tune-CoT's ``rationale --> answer``, where the answer follows the last
  ``-->`` (or is the whole output for answer-only students).
"""

from __future__ import annotations

import re
from fractions import Fraction

from cotdistill.methods import ANSWER_SEPARATOR

_NUMBER = re.compile(r"-?\$?\s?\d[\d,]*(?:\.\d+)?(?:\s*/\s*\d+)?|-?\$?\.\d+")
_YES_NO = re.compile(r"\b(yes|no)\b", re.IGNORECASE)
_CHOICE = re.compile(r"(?<![A-Za-z])\(?([A-Z])(?:\)|\.|:|(?![A-Za-z]))")
_PARENTHESISED_CHOICE = re.compile(r"\(([A-Z])\)")
_WORD = re.compile(r"[A-Za-z]+")


def parse_number(text: str) -> Fraction | None:
    """``"1,234"``, ``"$5"``, ``"-3"``, ``"18.0"``, ``"3/4"`` -> exact value; else None."""
    cleaned = text.replace("$", "").replace(",", "").replace(" ", "")
    try:
        if "/" in cleaned:
            numerator, denominator = cleaned.split("/", 1)
            return Fraction(numerator) / Fraction(denominator)
        return Fraction(cleaned)
    except (ValueError, ZeroDivisionError):
        return None


def format_number(value: Fraction) -> str:
    """Canonical text of a number: integers without a decimal point, others as decimals."""
    if value.denominator == 1:
        return str(value.numerator)
    return repr(float(value))  # the shortest text that round-trips: 12345.67, not 12345.7


def extract_number(text: str) -> str | None:
    for match in _NUMBER.finditer(text):
        value = parse_number(match.group())
        if value is not None:
            return format_number(value)
    return None


def extract_yes_no(text: str) -> str | None:
    match = _YES_NO.search(text)
    return match.group(1).lower() if match else None


def extract_choice(text: str, choices: list[str] | None) -> str | None:
    letters = [chr(ord("A") + i) for i in range(len(choices))] if choices else None
    # "(C)" is unambiguous; a bare "A" may be the article, so it only counts when no
    # parenthesised letter is there.
    for pattern in (_PARENTHESISED_CHOICE, _CHOICE):
        for match in pattern.finditer(text):
            letter = match.group(1)
            if letters is None or letter in letters:
                return letter
    return None


def extract_text(text: str) -> str | None:
    """The first word, lower-cased, without quotes or punctuation (Last Letters answers)."""
    match = _WORD.search(text)
    return match.group().lower() if match else None


def extract(text: str, answer_type: str, choices: list[str] | None = None) -> str | None:
    """The first answer of ``answer_type`` in ``text``, normalised; None when there is none."""
    if answer_type == "number":
        return extract_number(text)
    if answer_type == "yes_no":
        return extract_yes_no(text)
    if answer_type == "choice":
        return extract_choice(text, choices)
    if answer_type == "text":
        return extract_text(text)
    raise ValueError(f"unknown answer type {answer_type!r}")


def extract_student(
    output: str, answer_type: str, choices: list[str] | None = None, *, with_rationale: bool = True
) -> str | None:
    """The answer in a student's output.

    A rationale-trained student must close with ``--> answer``; without the marker it gave no
    answer (an answer-looking word inside its rationale does not count). An answer-only student's
    whole output is the answer.
    """
    marker = ANSWER_SEPARATOR.strip()
    if with_rationale:
        if marker not in output:
            return None
        output = output.rsplit(marker, 1)[1]
    return extract(output, answer_type, choices)


def normalize_gold(answer: str, answer_type: str) -> str:
    """The gold answer in the same canonical form that :func:`extract` returns."""
    if answer_type == "number":
        value = parse_number(answer.strip())
        return format_number(value) if value is not None else answer.strip()
    if answer_type == "choice":
        return answer.strip().strip("()").upper()
    return answer.strip().lower()


def is_correct(prediction: str | None, gold: str, answer_type: str) -> bool:
    """Whether an extracted prediction equals the gold answer (numbers compared by value)."""
    if prediction is None:
        return False
    if answer_type == "number":
        left, right = parse_number(prediction), parse_number(gold)
        if left is None or right is None:
            return False
        return abs(float(left) - float(right)) <= 1e-6 * max(1.0, abs(float(right)))
    return normalize_gold(prediction, answer_type) == normalize_gold(gold, answer_type)
