"""Socratic CoT decompositions: a problem as ordered (sub-question, sub-answer) pairs.

Shridhar et al. (2023) distil a teacher's *decomposition* of a problem, not its free-form
rationale, into a question generator (QG) and a sub-question solver (QA). This module holds
everything about decompositions that is not about training:

- the record (:class:`Decomposition`) every Socratic stage reads and writes;
- the exemplars of the teacher's few-shot prompt (the prompt itself is
  :func:`cotdistill.prompts.socratic.decomposition_prompt`), written out
  below (three GSM8K *train* problems with their published socratic sub-questions, so no test
  question ever reaches a prompt) or read from a file;
- one parser for both the teacher's ``Q1: ... / A1: ...`` lines and GSM8K's socratic
  ``sub-question ** sub-answer`` lines (:func:`parse_decomposition`), which never raises: a
  malformed output is returned as :class:`Malformed` with its reason, counted, and dropped;
- the final-answer filter (:func:`keep_correct`), as Fine-tune-CoT filters rationales;
- gold decompositions from GSM8K's ``*_socratic.jsonl`` files (:func:`gold_decompositions`),
  so that teacher-made and published decompositions can be trained on and compared.

The final answer of a decomposition is read from its *last sub-answer* with the answer
library (:func:`final_answer`), exactly as the Socratic inference loop reads a student's
answer, so the filter keeps only decompositions whose last step states the right answer the
way students will be scored.
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cotdistill import answers
from cotdistill.datasets.sources import FileSource, RemoteFile
from cotdistill.datasets.splits import normalize_question
from cotdistill.errors import CotdistillError
from cotdistill.records import PreparedExample

log = logging.getLogger(__name__)

DecompositionSource = Literal["teacher", "gold"]


class Decomposition(BaseModel):
    """One problem's decomposition, from the teacher (sample ``sample``) or from gold data."""

    model_config = ConfigDict(extra="forbid")

    id: str  # the prepared example's id
    dataset: str
    source: DecompositionSource
    sample: int = Field(default=0, ge=0)  # teacher sample index (0 for gold)
    pairs: list[tuple[str, str]] = Field(min_length=1)  # (sub-question, sub-answer), in order
    final_answer: str | None  # read from the last sub-answer (see final_answer below)
    correct: bool

    @property
    def lineage(self) -> str:
        """What a training example built from this decomposition came from."""
        return f"{self.id}#{self.source}:{self.sample}"


# --- parsing ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ParsedDecomposition:
    pairs: list[tuple[str, str]]
    stated_answer: str | None  # the text after "The answer is" / "####", if the text has one


@dataclass(frozen=True)
class Malformed:
    """Why a text is not a usable decomposition (a short, countable reason)."""

    reason: str


_CALCULATOR = re.compile(r"<<[^>]*>>")  # GSM8K calculator annotations: "= <<48/2=24>>24"
_QUESTION = re.compile(r"^\s*(?:Q|Sub-?question\s*)(\d+)\s*[:.)]\s*(.*)$", re.I)
_ANSWER = re.compile(r"^\s*(?:A|Sub-?answer\s*)(\d+)\s*[:.)]\s*(.*)$", re.I)
_FINAL = re.compile(r"^\s*(?:####|(?:so |therefore,? )?the (?:final )?answer is\b:?)\s*(.*)$", re.I)
_SOCRATIC = re.compile(r"^(.*?\S)\s+\*\*\s+(\S.*)$")  # "sub-question ** sub-answer"
# "Q1: How many? A1: Four." on one line: a label after other text starts a new line
_INLINE_LABEL = re.compile(r"(?<=\S)[ \t]+(?=[QA]\d+\s*:\s)")


def _clean(text: str) -> str:
    """One line of plain text: calculator annotations removed, whitespace collapsed."""
    return " ".join(_CALCULATOR.sub("", text).split())


def parse_decomposition(text: object) -> ParsedDecomposition | Malformed:
    """Read (sub-question, sub-answer) pairs from a teacher output or a GSM8K socratic answer.

    Accepted lines: ``Q<n>: ...`` / ``A<n>: ...`` (numbered 1, 2, ... in order, each question
    followed by its answer), ``sub-question ** sub-answer``, and a closing ``The answer is
    ...`` or ``#### ...`` (parsing stops there). Other lines continue the question or answer
    before them, or are ignored before the first pair (a chat model's preamble). Anything
    else - nothing parsed, an unanswered or empty sub-question, numbers out of order - is
    :class:`Malformed`; this function never raises on any input.
    """
    if not isinstance(text, str):
        return Malformed("not text")
    if not text.strip():
        return Malformed("empty output")
    pairs: list[list[str]] = []
    pending: str | None = None  # a sub-question waiting for its answer
    last: Literal["question", "answer"] | None = None
    stated: str | None = None
    for line in _INLINE_LABEL.sub("\n", text).splitlines():
        if not line.strip():
            continue
        expected = len(pairs) + 1
        if match := _QUESTION.match(line):
            if pending is not None:
                return Malformed("sub-question without an answer")
            if int(match.group(1)) != expected:
                return Malformed("numbering out of order")
            pending, last = match.group(2), "question"
        elif match := _ANSWER.match(line):
            if pending is None:
                return Malformed("answer without a sub-question")
            if int(match.group(1)) != expected:
                return Malformed("numbering out of order")
            pairs.append([pending, match.group(2)])
            pending, last = None, "answer"
        elif match := _FINAL.match(line):
            stated = _clean(match.group(1)) or None
            break
        elif (match := _SOCRATIC.match(line)) and pending is None:
            pairs.append([match.group(1), match.group(2)])
            last = "answer"
        elif last == "question" and pending is not None:
            pending += " " + line
        elif last == "answer":
            pairs[-1][1] += " " + line
        # else: text before the first pair, ignored
    if pending is not None:
        return Malformed("sub-question without an answer")  # typically cut off by max_tokens
    if not pairs:
        return Malformed("no sub-questions")
    cleaned = [(_clean(question), _clean(answer)) for question, answer in pairs]
    if any(not question for question, _ in cleaned):
        return Malformed("empty sub-question")
    if any(not answer for _, answer in cleaned):
        return Malformed("empty sub-answer")
    return ParsedDecomposition(cleaned, stated)


@dataclass
class DecompositionStats:
    """What happened to the decompositions of one source: a stage report, not a log line."""

    outputs: int = 0  # texts parsed
    parsed: int = 0
    malformed: Counter[str] = field(default_factory=Counter)  # reason -> count
    correct: int = 0  # parsed, and the final answer is right
    pairs: int = 0  # sub-question count over the parsed ones

    def as_dict(self) -> dict:
        return {
            "outputs": self.outputs, "parsed": self.parsed,
            "malformed": sum(self.malformed.values()),
            "malformed_reasons": dict(self.malformed.most_common()),
            "correct": self.correct,
            "parsed_rate": self.parsed / self.outputs if self.outputs else 0.0,
            "correct_rate": self.correct / self.outputs if self.outputs else 0.0,
            "mean_pairs": self.pairs / self.parsed if self.parsed else 0.0,
        }


def final_answer(sub_answer: str, answer_type: str, choices: list[str] | None = None) -> str | None:
    """The final answer in a decomposition's last sub-answer, read with the answer library.

    A sub-answer is a worked sentence whose result comes last ("... 20 sheep + 160 sheep = 180
    sheep"), so for numbers the text after the last ``=`` is read first: the library's
    first-number rule alone misreads 38% of GSM8K's gold last steps, this reading 0.7%.
    """
    if answer_type == "number" and "=" in sub_answer:
        result = answers.extract(sub_answer.rsplit("=", 1)[1], answer_type, choices)
        if result is not None:
            return result
    return answers.extract(sub_answer, answer_type, choices)


def decomposition_from_text(
    example: PreparedExample, text: str, source: DecompositionSource, stats: DecompositionStats,
    *, sample: int = 0,
) -> Decomposition | None:
    """Parse ``text`` as ``example``'s decomposition and judge its final answer; None (counted
    in ``stats``) when the text is malformed."""
    stats.outputs += 1
    parsed = parse_decomposition(text)
    if isinstance(parsed, Malformed):
        stats.malformed[parsed.reason] += 1
        return None
    final = final_answer(parsed.pairs[-1][1], example.answer_type, example.choices)
    correct = answers.is_correct(final, example.answer, example.answer_type)
    stats.parsed += 1
    stats.pairs += len(parsed.pairs)
    stats.correct += correct
    return Decomposition(id=example.id, dataset=example.dataset, source=source, sample=sample,
                         pairs=parsed.pairs, final_answer=final, correct=correct)


def keep_correct(decompositions: Iterable[Decomposition]) -> list[Decomposition]:
    """The final-answer filter: only decompositions whose last sub-answer is right."""
    return [decomposition for decomposition in decompositions if decomposition.correct]


# --- the teacher's few-shot prompt -------------------------------------------------------------


class Exemplar(BaseModel):
    """A worked decomposition shown to the teacher (one line of an exemplars file)."""

    model_config = ConfigDict(extra="forbid")

    question: str = Field(min_length=1)
    pairs: list[tuple[str, str]] = Field(min_length=1)
    answer: str


# GSM8K train examples 0-2 with their published socratic sub-questions (train_socratic.jsonl),
# calculator annotations removed.
EXEMPLARS: tuple[Exemplar, ...] = (
    Exemplar(
        question="Natalia sold clips to 48 of her friends in April, and then she sold half as "
        "many clips in May. How many clips did Natalia sell altogether in April and May?",
        pairs=[
            ("How many clips did Natalia sell in May?", "Natalia sold 48/2 = 24 clips in May."),
            ("How many clips did Natalia sell altogether in April and May?",
             "Natalia sold 48+24 = 72 clips altogether in April and May."),
        ],
        answer="72",
    ),
    Exemplar(
        question="Weng earns $12 an hour for babysitting. Yesterday, she just did 50 minutes of "
        "babysitting. How much did she earn?",
        pairs=[
            ("How much does Weng earn per minute?", "Weng earns 12/60 = $0.2 per minute."),
            ("How much did Weng earn?", "Working 50 minutes, she earned 0.2 x 50 = $10."),
        ],
        answer="10",
    ),
    Exemplar(
        question="Betty is saving money for a new wallet which costs $100. Betty has only half "
        "of the money she needs. Her parents decided to give her $15 for that purpose, and her "
        "grandparents twice as much as her parents. How much more money does Betty need to buy "
        "the wallet?",
        pairs=[
            ("How much money does Betty have in the beginning?",
             "In the beginning, Betty has only 100 / 2 = $50."),
            ("How much money did Betty's grandparents give her?",
             "Betty's grandparents gave her 15 * 2 = $30."),
            ("How much more money does Betty need to buy the wallet?",
             "This means, Betty needs 100 - 50 - 30 - 15 = $5 more."),
        ],
        answer="5",
    ),
)

def load_exemplars(path: Path | None, count: int) -> list[Exemplar]:
    """The first ``count`` exemplars of ``path`` (JSON Lines of :class:`Exemplar`), or of the
    built-in ones when ``path`` is None."""
    if path is None:
        chosen: Sequence[Exemplar] = EXEMPLARS
    else:
        from cotdistill.jsonl import read_records

        chosen = read_records(path, Exemplar)
    if count > len(chosen):
        where = path or "the built-in exemplars"
        raise CotdistillError(f"socratic.exemplars: {count} asked for, {where} has {len(chosen)}")
    return list(chosen[:count])


# --- gold decompositions (GSM8K socratic) ------------------------------------------------------

_GSM8K = ("openai", "grade-school-math", "3101c7d5072418e28b9008a6636bde82a006892c")
GSM8K_SOCRATIC_TEST = RemoteFile(
    *_GSM8K, "grade_school_math/data/test_socratic.jsonl",
    "sha256:c96673362fa7a699f4836a9b6474a067448f95fe58064727501ee63ba4c3fdb6",
)
# Not in the shared mirror: pinned by the blob id ``git ls-tree`` shows at the revision above.
GSM8K_SOCRATIC_TRAIN = RemoteFile(
    *_GSM8K, "grade_school_math/data/train_socratic.jsonl",
    "gitblob:8d038499db0e40f3fb7d1f3bbef090cb932c3e2d",
)
GSM8K_SOCRATIC_FILES = (GSM8K_SOCRATIC_TRAIN, GSM8K_SOCRATIC_TEST)


class _SocraticLine(BaseModel):
    question: str
    answer: str


def read_socratic_file(path: Path) -> dict[str, str]:
    """{normalised question: socratic answer text} of one ``*_socratic.jsonl`` file."""
    by_question: dict[str, str] = {}
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                item = _SocraticLine.model_validate(json.loads(line))
            except (json.JSONDecodeError, ValidationError):
                raise CotdistillError(f"{path}:{number}: not a GSM8K socratic record") from None
            by_question.setdefault(normalize_question(item.question), item.answer)
    return by_question


@dataclass
class GoldStats(DecompositionStats):
    unmatched: int = 0  # asked-for questions that no socratic file has
    missing_files: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {**super().as_dict(), "unmatched": self.unmatched,
                "missing_files": self.missing_files}


def gold_decompositions(
    examples: Sequence[PreparedExample], source: FileSource,
    files: Sequence[RemoteFile] = GSM8K_SOCRATIC_FILES, stats: GoldStats | None = None,
) -> list[Decomposition]:
    """Gold decompositions: an example's own gold steps (generated datasets carry them), else
    the published one for its question in a socratic file.

    Questions are matched as the splits match them (case and whitespace ignored). A file that
    cannot be had (offline, not mirrored) is logged and listed in ``stats.missing_files``
    rather than failing: the gold source is optional beside the teacher's.
    """
    stats = stats if stats is not None else GoldStats()
    found = []
    for example in examples:  # datasets that carry their own gold steps (the generated ones)
        if example.subquestions:
            text = "\n".join(f"{question} ** {answer}" for question, answer in example.subquestions)
            decomposition = decomposition_from_text(example, text, "gold", stats)
            if decomposition is not None:
                found.append(decomposition)
    examples = [example for example in examples if not example.subquestions]
    if not examples:
        return found
    published: dict[str, str] = {}
    for file in files:
        try:
            path = source.path(file)
        except CotdistillError as exc:
            log.warning("gold decompositions: %s", exc)
            stats.missing_files.append(str(file.relative))
            continue
        for question, answer in read_socratic_file(path).items():
            published.setdefault(question, answer)
    for example in examples:
        text = published.get(normalize_question(example.question))
        if text is None:
            stats.unmatched += 1
            continue
        decomposition = decomposition_from_text(example, text, "gold", stats)
        if decomposition is not None:
            found.append(decomposition)
    return found
