"""Token-level KD from the teacher's stored top-k log-probabilities (Fu et al. 2023; seed 002).

An API teacher does not hand over its logits, but it returns, for each generated token, the
top-k candidate tokens with their log-probabilities (``teacher.top_logprobs``). The teacher
stage stores them with the generated tokens' texts; curate keeps the span over the rationale
with each training example (:func:`teacher_tokens`); training turns them into a sparse teacher
distribution at target positions where student and teacher agree on where a token starts and
what it begins with (:func:`kd_targets`), and the loss pulls the student towards it
(:func:`cotdistill.student.losses.sparse_token_kl`).

Alignment across tokenizers (the realistic case: a GPT-style API teacher, a student of another
family). Positions are aligned by characters: teacher token j starts at some character of the
target, and so does student token i. Where both start at the same character, each of the
teacher's top-k candidate texts is projected onto the student's vocabulary: the student token
that text is (a shared tokenizer), else the first token the student's tokenizer makes of it
("Hello" -> "Hel"), and candidates that project onto the same student token have their
probabilities added. The teacher's distribution over its next token thus becomes one over the
student's next token: exact when the tokenizers are the same, the mass of each candidate word
given to its first student piece otherwise. A position is used only when the teacher's own
token projects onto the student's token there, so the label and the teacher agree. Training
is refused with one line only when too few of the teacher's tokens line up to be worth it
(:data:`MIN_ALIGNED`); :func:`kd_targets` reports how many did, and how many candidate texts
were projected rather than found whole.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from cotdistill.errors import CotdistillError
from cotdistill.lm.tokens import token_texts
from cotdistill.records import CuratedExample, TeacherCompletion, TeacherTokens

KEY = "train.hparams.kd"
MIN_ALIGNED = 0.25  # share of teacher tokens that must line up with the student's tokens


def teacher_tokens(completion: TeacherCompletion, target: str) -> TeacherTokens | None:
    """The completion's tokens over its rationale, placed in ``target`` (see :func:`place`).

    None when the completion has no stored tokens, when ``target`` does not contain the
    rationale (an answer-only target), or when no token could be placed.
    """
    if not completion.tokens or not completion.top_logprobs or not completion.rationale:
        return None
    if len(completion.tokens) != len(completion.top_logprobs):
        return None
    at = target.find(completion.rationale)
    if at < 0:
        return None
    placed = place(completion.tokens, completion.rationale)
    if not placed:
        return None
    return TeacherTokens(starts=[at + start for _, start in placed],
                         tokens=[completion.tokens[j] for j, _ in placed],
                         top_logprobs=[completion.top_logprobs[j] for j, _ in placed])


def _opaque(token: str) -> bool:
    """A token that is part of a character split across tokens: its text is not its own."""
    return "\ufffd" in token or token.startswith("bytes:")


def place(tokens: list[str], rationale: str) -> list[tuple[int, int]]:
    """(token index, start in ``rationale``) for the generated tokens that spell it.

    The rationale was stripped, so whitespace tokens before it are skipped and the first
    word's token may start before it (a negative start: its leading space). A token that does
    not spell the text at the cursor (a piece of a character split across tokens, a special
    token left out of the text) is skipped and allows one character of slack: placement
    resumes at the next token found within that slack. It stops at the rationale's end.
    """
    placed: list[tuple[int, int]] = []
    cursor, skipped, begun = 0, 0, False
    for j, token in enumerate(tokens):
        if cursor >= len(rationale):
            break
        if not begun and not _opaque(token):
            word = token.lstrip()
            if not word:
                continue  # whitespace before the (stripped) rationale
            begun = True
            if rationale.startswith(word):
                placed.append((j, len(word) - len(token)))
                cursor = len(word)
                continue
        begun = True
        start = -1
        if token and not _opaque(token):
            if rationale.startswith(token, cursor):
                start = cursor
            elif skipped:
                start = rationale.find(token, cursor, cursor + skipped + len(token))
        if start < 0:
            skipped += 1
            continue
        placed.append((j, start))
        cursor, skipped = start + len(token), 0
    return placed


@dataclass
class StudentVocabulary:
    """The student's token ids by the exact text each decodes to, and the projection of any
    other text onto its first student token."""

    ids: dict[str, int]  # texts that exactly one id decodes to
    known: frozenset[str]  # every text some id decodes to
    tokenizer: object = None
    _first: dict[str, int | None] = field(default_factory=dict)

    @classmethod
    def of(cls, tokenizer) -> StudentVocabulary:
        texts = token_texts(tokenizer, range(len(tokenizer)))
        counts = Counter(texts)
        return cls(ids={t: i for i, t in enumerate(texts) if counts[t] == 1},
                   known=frozenset(counts), tokenizer=tokenizer)

    def project(self, text: str) -> int | None:
        """The student token ``text`` is, else the first one the student's tokenizer makes of
        it (None for a text it makes nothing of, or an opaque byte piece)."""
        if text in self.ids:
            return self.ids[text]
        if text not in self._first:
            ids = self.tokenizer(text, add_special_tokens=False)["input_ids"] \
                if self.tokenizer is not None and text and not _opaque(text) else []
            self._first[text] = ids[0] if ids else None
        return self._first[text]


@dataclass
class Alignment:
    """Sparse teacher distributions for one example's target tokens."""

    # (index of the target token, student ids, teacher log-probabilities)
    positions: list[tuple[int, list[int], list[float]]] = field(default_factory=list)
    teacher_tokens: int = 0  # teacher tokens inside the target
    aligned: int = 0  # of them, those a student token starts with and agrees with
    candidates: int = 0  # candidate texts at the aligned positions
    projected: int = 0  # of them, texts that are no student token (their first piece is used)


def student_spans(tokenizer, target: str, ids: list[int]) -> list[tuple[int, int] | None]:
    """Each target token's character span in ``target`` (None where it cannot be placed)."""
    pieces = token_texts(tokenizer, ids)
    offsets = None
    spans: list[tuple[int, int] | None] = []
    cursor = 0
    for i, piece in enumerate(pieces):
        if target.startswith(piece, cursor) and piece:
            spans.append((cursor, cursor + len(piece)))
            cursor += len(piece)
            continue
        spans.append(None)  # e.g. one byte of a character split across tokens
        if offsets is None:
            try:
                offsets = tokenizer(target, add_special_tokens=False,
                                    return_offsets_mapping=True)["offset_mapping"]
            except (NotImplementedError, ValueError, KeyError):
                offsets = []
        if i < len(offsets):
            cursor = max(cursor, offsets[i][1])  # resynchronise after the split character
    return spans


def align(tokenizer, vocabulary: StudentVocabulary, target: str, target_ids: list[int],
          stored: TeacherTokens) -> Alignment:
    """Teacher distributions, projected onto the student's vocabulary, at the target tokens
    that start where a teacher token starts and whose id the teacher's token projects onto."""
    by_start: dict[int, int] = {}
    result = Alignment()
    for j, (start, token) in enumerate(zip(stored.starts, stored.tokens)):
        if start >= 0 and token and target[start:start + len(token)] == token:
            by_start[start] = j
            result.teacher_tokens += 1
    for i, span in enumerate(student_spans(tokenizer, target, target_ids)):
        j = by_start.get(span[0]) if span is not None else None
        if j is None or vocabulary.project(stored.tokens[j]) != target_ids[i]:
            continue
        merged: dict[int, float] = {}
        for text, logprob in stored.top_logprobs[j].items():
            student_id = vocabulary.project(text)
            result.candidates += 1
            result.projected += text not in vocabulary.ids
            if student_id is not None:
                merged[student_id] = float(np.logaddexp(merged[student_id], logprob)) \
                    if student_id in merged else logprob
        result.aligned += 1
        if merged:
            result.positions.append((i, list(merged), list(merged.values())))
    return result


def check_alignment(aligned: int, teacher_total: int) -> None:
    """Refuse KD from stored log-probabilities when too few teacher tokens line up with the
    student's to be worth training on (one line, with the share)."""
    share = aligned / teacher_total if teacher_total else 0.0
    if share < MIN_ALIGNED:
        raise CotdistillError(
            f"{KEY}: only {share:.0%} of the teacher's stored tokens line up with the student's "
            f"tokens of the same text (at least {MIN_ALIGNED:.0%} needed: a teacher token must "
            "start where a student token starts and begin with it); the two tokenizers segment "
            "this text too differently for per-token distillation (or set "
            "train.hparams.kd: null)")


def kd_targets(tokenizer, examples: list[CuratedExample], target_ids: list[list[int]],
               method: str) -> tuple[list[list[tuple[int, list[int], list[float]]]], dict]:
    """Per example, its sparse teacher distributions by target token; and coverage figures.

    Raises when the examples of a rationale method carry no stored distributions at all, or
    when too few teacher tokens line up with the student's (:func:`check_alignment`).
    """
    carrying = [e for e in examples if e.teacher_tokens is not None]
    if not carrying:
        raise CotdistillError(
            f"{KEY}.source is logprobs, but no curated example of {method} carries the "
            "teacher's token log-probabilities: set teacher.top_logprobs (openai backends) and "
            "re-run the teacher and curate stages")
    vocabulary = StudentVocabulary.of(tokenizer)
    out: list[list[tuple[int, list[int], list[float]]]] = []
    aligned = total = positions = candidates = projected = 0
    for example, ids in zip(examples, target_ids):
        if example.teacher_tokens is None:
            out.append([])
            continue
        result = align(tokenizer, vocabulary, example.target, ids, example.teacher_tokens)
        aligned += result.aligned
        total += result.teacher_tokens
        positions += len(result.positions)
        candidates += result.candidates
        projected += result.projected
        out.append(result.positions)
    check_alignment(aligned, total)
    figures = {"kd_examples": len(carrying), "kd_positions": positions,
               "kd_aligned_share": aligned / total if total else 0.0,
               "kd_projected_share": projected / candidates if candidates else 0.0}
    return out, figures
