"""Socratic CoT's templates (Shridhar et al. 2023): the teacher's decomposition prompt and the
question generator's (QG), sub-question solver's (QA) and unified model's formats.

The teacher sees an instruction, worked decompositions (``Problem: ...``, then ``Q1: ...`` /
``A1: ...`` lines and ``The answer is X.``) and the new problem; it writes the pairs. The
students see the problem on one line and the pairs so far, ending ``Q<k>:`` (QG, unified) or
``A<k>:`` (QA); QG writes :data:`END` when no sub-question is left.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Protocol

Pair = tuple[str, str]

END = "[END]"  # QG's (and the unified model's) last target: "no more sub-questions"
# stops per role at inference: QG and QA write one line, the unified model one pair
STUDENT_STOPS: dict[str, list[str]] = {"qg": ["\n"], "qa": ["\n"], "unified": ["\nQ"]}

INSTRUCTION = (
    "Solve each problem by breaking it into sub-questions. Answer the sub-questions one at a "
    "time; the last sub-question asks what the problem asks, and its answer gives the result."
)
DECOMPOSITION_STOPS = ["\n\n", "\nProblem:"]


class WorkedDecomposition(Protocol):
    """An exemplar as the teacher's prompt shows it."""

    question: str
    pairs: list[tuple[str, str]]
    answer: str


def render_pairs(pairs: Sequence[Pair]) -> str:
    """``Q1: ...\\nA1: ...`` lines: the format the teacher writes and the parser reads."""
    return "\n".join(f"Q{i}: {q}\nA{i}: {a}" for i, (q, a) in enumerate(pairs, start=1))


def decomposition_prompt(question: str, exemplars: Sequence[WorkedDecomposition]) -> str:
    """The few-shot prompt; the teacher continues with ``Q1: ...`` and stops at a blank line."""
    shots = [f"Problem: {e.question}\n{render_pairs(e.pairs)}\nThe answer is {e.answer}."
             for e in exemplars]
    return "\n\n".join([INSTRUCTION, *shots, f"Problem: {question}\n"])


def decomposition_prompt_id(exemplars: Sequence[WorkedDecomposition]) -> str:
    """The template's name and a hash of its text, as ``prompts.PROMPT_ID`` names zero-shot-CoT."""
    text = decomposition_prompt("{question}", exemplars)
    return "socratic_decompose@" + hashlib.sha256(text.encode()).hexdigest()[:8]


def one_line(text: str) -> str:
    """``text`` with every run of whitespace, line breaks included, made one space."""
    return " ".join(text.split())


def transcript_lines(question: str, pairs: Sequence[Pair], *, with_answers: bool) -> list[str]:
    """The problem on one line, then ``Q<k>: ...`` (and ``A<k>: ...``) per pair."""
    lines = [one_line(question)]
    for number, (sub_question, sub_answer) in enumerate(pairs, start=1):
        lines.append(f"Q{number}: {sub_question}")
        if with_answers:
            lines.append(f"A{number}: {sub_answer}")
    return lines


def qg_prompt(question: str, sub_questions: Sequence[str]) -> str:
    """Problem + sub-questions so far, ending ``Q<k>:`` for the next one."""
    pairs = [(sub_question, "") for sub_question in sub_questions]
    return "\n".join([*transcript_lines(question, pairs, with_answers=False),
                      f"Q{len(pairs) + 1}:"])


def qa_prompt(question: str, earlier: Sequence[Pair], sub_question: str) -> str:
    """Problem + earlier pairs + the current sub-question, ending ``A<k>:`` for its answer."""
    k = len(earlier) + 1
    return "\n".join([*transcript_lines(question, earlier, with_answers=True),
                      f"Q{k}: {sub_question}", f"A{k}:"])


def unified_prompt(question: str, earlier: Sequence[Pair]) -> str:
    """Problem + earlier pairs, ending ``Q<k>:``: the model writes the pair (or :data:`END`)."""
    return "\n".join([*transcript_lines(question, earlier, with_answers=True),
                      f"Q{len(earlier) + 1}:"])


def unified_target(number: int, pair: Pair | None) -> str:
    """`` <sub-question>\\nA<k>: <sub-answer>``, or `` [END]`` after the last pair."""
    if pair is None:
        return f" {END}"
    return f" {pair[0]}\nA{number}: {pair[1]}"
