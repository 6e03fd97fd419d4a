"""Answer extraction and comparison: every accuracy figure in the project goes through here.

Two readers share one set of per-type parsers:
- teacher outputs: the text after an answer trigger ("Therefore, the answer ... is"), where the
  answer is the first candidate in the text, or a text containing "The answer is", where the
  answer is the first candidate after that phrase;
- student outputs: Fine-tune-CoT's ``rationale --> answer``, where the answer follows the last
  ``-->`` (or is the whole output for answer-only students).

Every reader returns the answer in one canonical form (numbers as ``format_number`` writes
them, choice letters upper case, yes/no and text lower case) or None when there is none, and
:func:`normalize_gold` puts gold answers in the same form, so comparing is plain equality
(numbers by value, to allow ``0.6666666666666667`` for 2/3).
"""

from __future__ import annotations

import re
from fractions import Fraction

from cotdistill.prompts import ANSWER_SEPARATOR

# "The answer is", and the wording of our own triggers (cotdistill.prompts.TRIGGERS): "the
# answer (arabic numerals) is", "among A through F, the answer is". A restatement in another
# form ("14. The answer (in words) is fourteen.") is not an answer phrase: it names no answer
# we can read, and the answer was already given before it.
_ANSWER_PHRASE = re.compile(r"\bthe answer(?: \((?:arabic numerals|yes or no)\))? is\b", re.I)

# A number as written in an answer: "42", "-3", "1,234" (commas only in groups of three, so
# "1,2,3" is a list, not 123), "18.0", ".5", "3/4", with an optional currency sign ("-$5").
# A minus sign counts only when attached to the number and not following a word or digit:
# in "3-4" and "x - 10" it is a hyphen or a subtraction, not a negative number.
_NUMBER = re.compile(
    r"""(?<![\w.])-?(?:[$€£]\s?)?
        (?: (?:\d{1,3}(?:,\d{3})+(?![\d,]) | \d+) (?:\.\d+)? (?:/\d+)?  # 1,234.5  3/4
          | \.\d+ )                                                      # .5
    """,
    re.VERBOSE,
)
# Between two numbers of an arithmetic expression ("9 + 8", "320 + (2 * 60", "$192 x 12"),
# and between the expression and its result ("= 17", ") = 440").
_OPERATOR = re.compile(r"\)*\s*[-+*/x×÷]\s*\(*")
_EQUALS = re.compile(r"\)*\s*=\s*")

_YES_NO = re.compile(r"\b(yes|no)\b", re.I)

# "(B)" is unambiguous; a bare letter counts when it stands alone ("B", "B)", "B.", "B:"), not
# inside a word ("Both"). A bare "A" may be the article, hence "(C)" first.
_PARENTHESISED_CHOICE = re.compile(r"\(([A-Z])\)")
_BARE_CHOICE = re.compile(r"(?<![A-Za-z])\(?([A-Z])(?![A-Za-z])")

# A word (any alphabet: "méyl"), or a word spelled out letter by letter ("n a o a", "n-a-e-y").
_LETTER = r"[^\W\d_]"
_WORD = re.compile(rf"{_LETTER}(?:[ -]{_LETTER})+(?!{_LETTER})|{_LETTER}+")
# A free-text answer's words: a word spelled out, or a run of letters and digits ("v2", "404").
_TEXT_WORD = re.compile(rf"{_LETTER}(?:[ -]{_LETTER})+(?![^\W_])|[^\W_]+")
# What ends a stated free-text answer: a sentence or clause mark, a quote, a line break.
_PHRASE_END = re.compile(r"[.!?;:,\n\"“”]")
MAX_TEXT_WORDS = 12


def parse_number(text: str) -> Fraction | None:
    """``"1,234"``, ``"$5"``, ``"-3"``, ``"18.0"``, ``"3/4"`` -> exact value; else None.

    Exact fractions, so that ``18.0`` equals ``18`` and ``3/4`` equals ``0.75`` without any
    floating-point doubt.
    """
    cleaned = re.sub(r"[$€£,\s]", "", text)
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


def _answer_part(text: str, has_candidate) -> str:
    """The part of ``text`` that holds the answer: after the last answer phrase that is
    followed by a candidate ("... 5 + 6 = 11. The answer is 11."), else the whole text."""
    for match in reversed(list(_ANSWER_PHRASE.finditer(text))):
        rest = text[match.end():]
        if has_candidate(rest):
            return rest
    return text


def extract_number(text: str) -> str | None:
    """The first number; when it opens an arithmetic expression with its result ("9 + 8 =
    17", "1600*3.5 = $5600"), the result: the sentence states the equation, the answer is what
    it equals. Number words ("eleven") do not count: the trigger asks for arabic numerals."""
    text = _answer_part(text, lambda rest: _NUMBER.search(rest) is not None)
    first = _NUMBER.search(text)
    if first is None:
        return None
    answer, end, operators = first, first.end(), 0
    while True:
        operator = _OPERATOR.match(text, end)
        operand = operator and _NUMBER.match(text, operator.end())
        if not operand:
            break
        end, operators = operand.end(), operators + 1
    equals = _EQUALS.match(text, end)
    result = equals and _NUMBER.match(text, equals.end())
    if operators and result:
        answer = result
    value = parse_number(answer.group())
    return format_number(value) if value is not None else None


def extract_yes_no(text: str) -> str | None:
    """The first whole word "yes" or "no" ("Nope", "not" and "eyes" do not count)."""
    text = _answer_part(text, lambda rest: _YES_NO.search(rest) is not None)
    match = _YES_NO.search(text)
    return match.group(1).lower() if match else None


def choice_letters(count: int) -> list[str]:
    """The letters of ``count`` choices, "A", "B", ...: what :func:`extract` needs as
    ``choices`` when only the number of choices is known (it uses only their count)."""
    return [chr(ord("A") + i) for i in range(count)]


def extract_choice(text: str, choices: list[str] | None) -> str | None:
    """The first choice letter, a parenthesised one first; letters past the last choice are
    not choices (Date Understanding has A-F, Tracking Shuffled Objects A-C)."""
    letters = choice_letters(len(choices)) if choices else None

    def find(part: str) -> str | None:
        for pattern in (_PARENTHESISED_CHOICE, _BARE_CHOICE):
            for match in pattern.finditer(part):
                if letters is None or match.group(1) in letters:
                    return match.group(1)
        return None

    return find(_answer_part(text, lambda rest: find(rest) is not None))


def text_words(text: str) -> list[str]:
    """The lower-cased words of a free-text answer; a word spelled letter by letter ("n a o
    a", "n-a-e-y") is that word: the letters are the answer, the separators only spell it out."""
    return [re.sub(r"[ -]", "", match.group()).lower() for match in _TEXT_WORD.finditer(text)]


def extract_text(text: str) -> str | None:
    """The stated answer: its words, lower-cased, without quotes or punctuation, up to the end
    of its phrase (``"naoa".`` -> ``naoa``, ``billing issue. Because ...`` -> ``billing
    issue``); at most :data:`MAX_TEXT_WORDS`. :func:`is_correct` counts it right when the gold
    answer's words open it, so a one-word answer is read exactly as Last Letters needs."""
    text = _answer_part(text, lambda rest: _TEXT_WORD.search(rest) is not None)
    first = _TEXT_WORD.search(text)
    if first is None:
        return None
    words, end = [], first.start()
    for match in _TEXT_WORD.finditer(text, first.start()):
        if words and _PHRASE_END.search(text, end, match.start()):
            break
        words.append(re.sub(r"[ -]", "", match.group()).lower())
        end = match.end()
        if len(words) == MAX_TEXT_WORDS:
            break
    return " ".join(words)


def extract(text: str, answer_type: str, choices: list[str] | None = None) -> str | None:
    """The answer of ``answer_type`` in ``text``, normalised; None when there is none."""
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
    if answer_type == "text":
        return " ".join(text_words(answer)) or answer.strip().lower()
    return answer.strip().lower()


def is_correct(prediction: str | None, gold: str, answer_type: str) -> bool:
    """Whether an extracted prediction equals the gold answer.

    Numbers are compared by value within a relative 1e-6, so a decimal written out to the
    float's last digit (``0.6666666666666667``, ``0.333333``) equals the fraction it stands for.
    A free-text answer is right when the gold answer's words open it (``naoa because`` for
    ``naoa``; not ``billing`` for ``billing issue``).
    """
    if prediction is None:
        return False
    if answer_type == "number":
        left, right = parse_number(prediction), parse_number(gold)
        if left is None or right is None:
            return False
        return abs(float(left) - float(right)) <= 1e-6 * max(1.0, abs(float(right)))
    if answer_type == "text":  # the gold answer's words open the stated answer
        stated, wanted = text_words(prediction), text_words(gold)
        return bool(wanted) and stated[: len(wanted)] == wanted
    return normalize_gold(prediction, answer_type) == normalize_gold(gold, answer_type)
