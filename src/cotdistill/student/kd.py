"""Token-level KD from the teacher's stored top-k log-probabilities (Fu et al. 2023; seed 002).

An API teacher does not hand over its logits, but it returns, for each generated token, the
top-k candidate tokens with their log-probabilities (``teacher.top_logprobs``). The teacher
stage stores them with the generated tokens' texts; curate keeps the span over the rationale
with each training example (:func:`teacher_tokens`); training turns them into a sparse teacher
distribution at every target position where the student's token *is* the teacher's token
(:func:`kd_targets`), and the loss pulls the student towards it (:func:`cotdistill.student.losses.sparse_token_kl`).

Positions are aligned by characters: teacher token j covers a span of the target text, and so
does student token i; where the spans are equal (and the text there is the teacher's token),
the teacher's top-k token texts are mapped to student ids. That only means something when both
sides share one tokenizer, so :func:`check_shared_tokenizer` refuses training when a stored
token text is no token of the student's, or when too few of the teacher's tokens line up with
the student's own tokenization of the same text (a different tokenizer segments it differently).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from cotdistill.errors import CotdistillError
from cotdistill.lm.tokens import token_texts
from cotdistill.records import CuratedExample, TeacherCompletion, TeacherTokens

KEY = "train.hparams.kd"
MIN_ALIGNED = 0.9  # share of teacher tokens that must line up with the student's tokens
MAX_UNKNOWN = 0.01  # share of stored token texts allowed to be no token of the student's


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


@dataclass(frozen=True)
class StudentVocabulary:
    """The student's token ids by the exact text each decodes to."""

    ids: dict[str, int]  # texts that exactly one id decodes to
    known: frozenset[str]  # every text some id decodes to

    @classmethod
    def of(cls, tokenizer) -> StudentVocabulary:
        texts = token_texts(tokenizer, range(len(tokenizer)))
        counts = Counter(texts)
        return cls(ids={t: i for i, t in enumerate(texts) if counts[t] == 1},
                   known=frozenset(counts))


@dataclass
class Alignment:
    """Sparse teacher distributions for one example's target tokens."""

    # (index of the target token, student ids, teacher log-probabilities)
    positions: list[tuple[int, list[int], list[float]]] = field(default_factory=list)
    teacher_tokens: int = 0  # teacher tokens inside the target
    aligned: int = 0  # of them, those the student tokenizes identically


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
    """Teacher distributions at the target tokens that coincide with a teacher token."""
    by_span: dict[tuple[int, int], int] = {}
    result = Alignment()
    for j, (start, token) in enumerate(zip(stored.starts, stored.tokens)):
        span = (start, start + len(token))
        if start >= 0 and target[span[0]:span[1]] == token:
            by_span[span] = j
            result.teacher_tokens += 1
    for i, span in enumerate(student_spans(tokenizer, target, target_ids)):
        j = by_span.get(span) if span is not None else None
        if j is None:
            continue
        top = stored.top_logprobs[j]
        ids = [vocabulary.ids[text] for text in top if text in vocabulary.ids]
        logprobs = [lp for text, lp in top.items() if text in vocabulary.ids]
        result.aligned += 1
        if ids:
            result.positions.append((i, ids, logprobs))
    return result


def check_shared_tokenizer(examples: list[CuratedExample], vocabulary: StudentVocabulary,
                           aligned: int, teacher_total: int) -> None:
    """Refuse KD from stored log-probabilities that were not made with the student's tokenizer."""
    texts = {text for e in examples if e.teacher_tokens is not None
             for top in e.teacher_tokens.top_logprobs for text in top}
    texts |= {t for e in examples if e.teacher_tokens is not None for t in e.teacher_tokens.tokens}
    unknown = sorted(texts - vocabulary.known)
    if len(unknown) > MAX_UNKNOWN * len(texts):
        shown = ", ".join(repr(t) for t in unknown[:5])
        raise CotdistillError(
            f"{KEY}: the teacher's stored tokens are not the student's: {len(unknown)} of "
            f"{len(texts)} token texts are no token of the student's tokenizer (e.g. {shown}); "
            "token-level KD from log-probabilities needs a teacher sharing the student's "
            "tokenizer (or set train.hparams.kd: null)")
    share = aligned / teacher_total if teacher_total else 0.0
    if share < MIN_ALIGNED:
        raise CotdistillError(
            f"{KEY}: only {share:.0%} of the teacher's stored tokens line up with the student's "
            f"tokens of the same text (at least {MIN_ALIGNED:.0%} with a shared tokenizer); the "
            "teacher used a different tokenizer, so its per-token distributions cannot be "
            "matched to the student's")


def kd_targets(tokenizer, examples: list[CuratedExample], target_ids: list[list[int]],
               method: str) -> tuple[list[list[tuple[int, list[int], list[float]]]], dict]:
    """Per example, its sparse teacher distributions by target token; and coverage figures.

    Raises when the examples of a rationale method carry no stored distributions at all, or
    when the tokenizers do not match.
    """
    carrying = [e for e in examples if e.teacher_tokens is not None]
    if not carrying:
        raise CotdistillError(
            f"{KEY}.source is logprobs, but no curated example of {method} carries the "
            "teacher's token log-probabilities: set teacher.top_logprobs (openai backends) and "
            "re-run the teacher and curate stages")
    vocabulary = StudentVocabulary.of(tokenizer)
    out: list[list[tuple[int, list[int], list[float]]]] = []
    aligned = total = positions = 0
    for example, ids in zip(examples, target_ids):
        if example.teacher_tokens is None:
            out.append([])
            continue
        result = align(tokenizer, vocabulary, example.target, ids, example.teacher_tokens)
        aligned += result.aligned
        total += result.teacher_tokens
        positions += len(result.positions)
        out.append(result.positions)
    check_shared_tokenizer(carrying, vocabulary, aligned, total)
    figures = {"kd_examples": len(carrying), "kd_positions": positions,
               "kd_aligned_share": aligned / total if total else 0.0}
    return out, figures
