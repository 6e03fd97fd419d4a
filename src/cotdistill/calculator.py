"""The arithmetic a student writes before ``=``, read and computed safely.

Cobbe et al. (2021) let a calculator write the results of a model's computations. This module
is that calculator's reading and arithmetic: :func:`pending` finds, at the end of a text that
ends with ``=``, the expression the writer wants computed, in the forms teachers write them
(``5 x 3 =``, ``$4.50 + $3 =``, ``1,200 / 4 =``, ``20% of 50 =``, ``7 pounds - 2 pounds =``);
:func:`compute` gives its value, or None for anything it will not compute. The expression is
parsed with Python's own parser into a tree that may hold only numbers, ``+ - * /``, signs and
parentheses, and evaluated with :mod:`decimal` (exact for the sums and products of decimals
that word problems hold): it is never ``eval``-ed. Sizes are bounded: at most
:data:`MAX_OPERANDS` numbers of at most :data:`MAX_DIGITS` digits, and every intermediate value
below :data:`MAX_VALUE`; division by zero is refused, not raised. A refused expression leaves
the writer's own text in place.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from decimal import Decimal, DivisionByZero, InvalidOperation, localcontext

MAX_OPERANDS = 12
MAX_DIGITS = 20  # per number (a float printed in full has 17); the context has twice that
MAX_VALUE = Decimal(10) ** 15
MAX_DECIMALS = 4  # a non-integral result is written with at most this many decimals
TAIL_CHARS = 240  # an expression is looked for only in this much text before "="

_NUMBER = r"\$?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?%?"
_UNIT = r"(?:[ \t]+(?!of\b|x\b)[A-Za-z]+){0,3}"  # "pounds", "pieces of clothing"
_TERM = rf"\(*[ \t]*{_NUMBER}{_UNIT}[ \t]*\)*"
_OPERATOR = r"[ \t]*(?:[-+*/×÷x]|%[ \t]+of)[ \t]*"  # "20% of 50" is 20/100 * 50
_PENDING = re.compile(rf"(?:{_TERM})(?:{_OPERATOR}(?:{_TERM}))*[ \t]*=[ \t]*$")
_PERCENT_OF = re.compile(rf"({_NUMBER})[ \t]+of[ \t]+")


@dataclass(frozen=True)
class Pending:
    """An expression waiting for its result: ``text[start:]`` is it and its ``=``."""

    start: int
    source: str  # as written, "=" excluded
    python: str  # as Python's parser reads it: "7.5 * 3"
    dollars: bool  # written with "$": so is the result, with two decimals unless whole
    commas: bool  # a number written with thousands separators: so is the result


def pending(text: str) -> Pending | None:
    """The arithmetic expression that ``text`` ends with, just before a final ``=``."""
    tail_start = max(0, len(text) - TAIL_CHARS)
    match = _PENDING.search(text, tail_start)
    if match is None:
        return None
    source = match.group(0).rstrip().removesuffix("=").rstrip()
    while source.startswith("(") and source.count("(") > source.count(")"):
        source = source[1:].lstrip()  # "(5 tickets x 7 rides =": the "(" opens a remark
    if not re.search(r"[-+*/×÷x]|%\s+of", source.replace(" x ", " * ")):
        return None  # a lone number before "=" ("a total of 18 =") is nothing to compute
    return Pending(start=match.start(), source=source, python=_python(source),
                   dollars="$" in source, commas=bool(re.search(r"\d,\d{3}\b", source)))


def _python(source: str) -> str:
    """The expression in Python's syntax: units and "$" dropped, separators removed."""
    text = _PERCENT_OF.sub(lambda m: f"{m.group(1).rstrip('%')}/100*", source)
    text = re.sub(r"(\d)%", r"\1/100", text)
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)
    text = text.replace("$", "").replace("×", "*").replace("÷", "/")
    text = re.sub(r"(?<=[\d)\s])x(?=[\s\d(])", "*", text)
    return re.sub(r"[A-Za-z]+", " ", text).strip()


def compute(expression: str) -> Decimal | None:
    """The value of a Python-syntax arithmetic ``expression``, or None when it is not one the
    calculator computes (a name, a call, a power, a number too long, a value too large, a
    division by zero, anything that does not parse)."""
    try:
        tree = ast.parse(expression, mode="eval")
    except (SyntaxError, ValueError):
        return None
    numbers = [node for node in ast.walk(tree) if isinstance(node, ast.Constant)]
    if not numbers or len(numbers) > MAX_OPERANDS:
        return None
    try:
        with localcontext() as context:
            context.prec = 2 * MAX_DIGITS
            context.traps[DivisionByZero] = True
            return _value(tree.body, expression)
    except (_Refused, DivisionByZero, InvalidOperation, ZeroDivisionError):
        return None


class _Refused(Exception):
    pass


def _value(node: ast.AST, source: str) -> Decimal:
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        text = ast.get_source_segment(source, node) or ""
        if sum(char.isdigit() for char in text) > MAX_DIGITS:
            raise _Refused
        return _bounded(Decimal(text))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _value(node.operand, source)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp) and type(node.op) in _OPERATIONS:
        left, right = _value(node.left, source), _value(node.right, source)
        return _bounded(_OPERATIONS[type(node.op)](left, right))
    raise _Refused  # names, calls, powers, comparisons, strings: not arithmetic we compute


_OPERATIONS = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b,
               ast.Mult: lambda a, b: a * b, ast.Div: lambda a, b: a / b}


def _bounded(value: Decimal) -> Decimal:
    if abs(value) >= MAX_VALUE:
        raise _Refused
    return value


def written(value: Decimal, *, dollars: bool = False, commas: bool = False) -> str:
    """``value`` as a teacher writes a result: an integer plainly ("74", or "118,558" where the
    operands had separators), a fraction with at most :data:`MAX_DECIMALS` decimals and no
    trailing zeros ("1.22"), money with its sign and two decimals unless whole ("$7.50")."""
    separator = "," if commas else ""
    if value == value.to_integral_value():
        text = f"{int(value):{separator}d}"
    elif dollars:
        text = f"{value.quantize(Decimal('0.01')):{separator}f}"
    else:
        text = f"{value.quantize(Decimal(1).scaleb(-MAX_DECIMALS)).normalize():{separator}f}"
    if dollars:
        return f"-${text[1:]}" if text.startswith("-") else f"${text}"
    return text


def result_for(text: str) -> str | None:
    """What the calculator writes after ``text`` (which ends with ``=``): a space and the
    result, or None when ``text`` holds no expression it computes."""
    found = pending(text)
    if found is None:
        return None
    value = compute(found.python)
    if value is None:
        return None
    return " " + written(value, dollars=found.dollars, commas=found.commas)


_WRITTEN_RESULT = re.compile(
    r"[ \t]*(-?\$?-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:/\d+(?!\.\d|\d))?%?)")
_GOES_ON = re.compile(r"[ \t]*(?:[-+*/×÷]|x\b)[ \t]*[\w($]")  # "= 12 + 2x": not a result
FLOAT_NOISE = Decimal("1e-9")  # relative: "0.1 + 0.2 = 0.30000000000000004" is right


@dataclass(frozen=True)
class Computation:
    """One ``expression = result`` in a text: the result as written, and the calculator's."""

    expression: str  # as written, "=" excluded
    start: int  # where the written result starts in the text (after "=" and spaces)
    end: int
    written: str  # the result as the writer wrote it
    computed: str  # the result as the calculator writes it
    value: Decimal  # the calculator's exact value

    @property
    def agrees(self) -> bool:
        """Whether the writer's result is the calculator's, whatever the format ("7.5" = "7.50",
        "1,200" = "1200", "$7" = "7"), rounded as the writer rounded it ("17 / 3 = 5.67")."""
        number = _number(self.written)
        if number is None:
            return False
        if self.written.endswith("%"):
            number /= 100  # "50 / 200 = 25%"
        if abs(self.value - number) <= FLOAT_NOISE * max(Decimal(1), abs(self.value)):
            return True  # equal, up to a float's last digit or a fraction's repeating one
        if "/" in self.written:
            return False
        decimals = max(0, -int(number.as_tuple().exponent))
        return bool(decimals) and abs(self.value - number) <= Decimal(5).scaleb(-decimals - 1)


def _number(text: str) -> Decimal | None:
    """A written result's value: "$1,200.50", "25%" (as 25), "1/6" (a fraction)."""
    cleaned = text.replace("$", "").replace(",", "").rstrip("%")
    try:
        if "/" in cleaned:
            numerator, denominator = cleaned.split("/")
            with localcontext() as context:
                context.prec = 2 * MAX_DIGITS
                return Decimal(numerator) / Decimal(denominator)
        return Decimal(cleaned)
    except (InvalidOperation, ArithmeticError):
        return None


def computations(text: str) -> list[Computation]:
    """Every ``expression = number`` in ``text`` whose expression the calculator computes: what
    a calculator-decoding student would have had written for it (the tokens a loss mask leaves
    out) and whether the writer got it right (teacher arithmetic checks). A number that an
    operator follows ("= 12 + 2x", "= 24 + 40 = 64") is the next expression, not a result."""
    found = []
    for equals in (m.start() for m in re.finditer("=", text)):
        expression = pending(text[:equals + 1])
        number = _WRITTEN_RESULT.match(text, equals + 1)
        value = compute(expression.python) if expression is not None else None
        if expression is None or number is None or value is None \
                or _GOES_ON.match(text, number.end(1)):
            continue
        found.append(Computation(
            expression=expression.source.strip(), start=number.start(1), end=number.end(1),
            written=number.group(1), value=value,
            computed=written(value, dollars=expression.dollars, commas=expression.commas)))
    return found


def corrected(text: str) -> tuple[str, list[Computation]]:
    """``text`` with every wrong written result replaced by the calculator's, and the
    computations that were replaced (in order). A replacement changes nothing else."""
    wrong = [c for c in computations(text) if not c.agrees]
    for computation in reversed(wrong):
        text = text[:computation.start] + computation.computed + text[computation.end:]
    return text, wrong
