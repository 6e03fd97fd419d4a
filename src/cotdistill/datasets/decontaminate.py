"""Drop training questions that overlap a test question: exactly, or by shared word n-grams.

A student trained on a test question (or a light paraphrase of it) is scored on what it
memorised, not on what it learnt. Exact repeats are caught by :func:`normalize_question`;
near repeats by word n-gram overlap, the way open-r1's decontamination script and NeMo
Curator's task decontamination do it. Only train-vs-test overlap is decided here; repeats
inside the train split are the caller's business.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from cotdistill.datasets.splits import normalize_question

EXACT = "exact"
NGRAM = "ngram"

_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Overlap:
    """Why one training question was dropped: the test question it overlaps most, and how."""

    train_index: int  # index into the train sequence given
    test_index: int  # the test question it overlaps most
    kind: str  # "exact" or "ngram"
    score: float  # 1.0 for exact; the overlap share for ngram


@dataclass(frozen=True)
class Decontamination:
    """The outcome for every training question: kept, or dropped with the overlap found."""

    kept: list[int]  # train indices kept, in input order
    dropped: list[Overlap]  # in input order

    def counts(self) -> dict[str, int]:
        """How many were dropped of each kind, so a report can say what decontamination cost."""
        counts = {EXACT: 0, NGRAM: 0}
        for overlap in self.dropped:
            counts[overlap.kind] += 1
        return counts

    def examples(
        self, train: Sequence[str], test: Sequence[str], limit: int = 3, *,
        kind: str | None = None,
    ) -> list[dict]:
        """The first ``limit`` dropped pairs (of ``kind``, when given), for a person to judge
        whether the drops are real near-duplicates."""
        chosen = [o for o in self.dropped if kind is None or o.kind == kind][:limit]
        return [
            {"train": train[o.train_index], "test": test[o.test_index], "kind": o.kind,
             "score": round(o.score, 3)}
            for o in chosen
        ]


def words(question: str) -> list[str]:
    """Lower-case words (letters, digits), punctuation dropped: what n-grams are made of."""
    return _WORD.findall(question.lower())


def ngrams(question: str, n: int) -> set[tuple[str, ...]]:
    """The distinct word n-grams of ``question``; one, all its words, when it has fewer than n,
    so that two short questions match only when their words are the same."""
    tokens = words(question)
    if len(tokens) < n:
        return {tuple(tokens)}
    return {tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)}


def decontaminate(
    train: Sequence[str], test: Sequence[str], *, n: int, threshold: float,
    by_ngrams: bool = True,
) -> Decontamination:
    """Split ``train`` into questions kept and questions dropped for overlapping ``test``.

    Exact: equal after :func:`normalize_question`. Near: the share of the training
    question's distinct word n-grams that also occur in one test question is at least
    ``threshold`` (for the test question with the highest share). Exact takes precedence;
    without ``by_ngrams`` only exact repeats are dropped (datasets made from one template,
    whose questions all share most of their n-grams).
    An inverted index n-gram -> test questions keeps this linear in the n-grams shared.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an integer >= 1, got {n!r}")
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold must be in (0, 1], got {threshold!r}")

    exact: dict[str, int] = {}
    index: dict[tuple[str, ...], list[int]] = defaultdict(list)
    for test_index, question in enumerate(test):
        exact.setdefault(normalize_question(question), test_index)
        for gram in ngrams(question, n):
            index[gram].append(test_index)

    kept: list[int] = []
    dropped: list[Overlap] = []
    for train_index, question in enumerate(train):
        match = exact.get(normalize_question(question))
        if match is not None:
            dropped.append(Overlap(train_index, match, EXACT, 1.0))
            continue
        if not by_ngrams:
            kept.append(train_index)
            continue
        grams = ngrams(question, n)
        shared: Counter[int] = Counter()
        for gram in grams:
            postings = index.get(gram)
            if postings:
                shared.update(postings)
        if shared:
            # the most shared n-grams; the earliest test question among equals
            best, count = min(shared.items(), key=lambda item: (-item[1], item[0]))
            score = count / len(grams)
            if score >= threshold:
                dropped.append(Overlap(train_index, best, NGRAM, score))
                continue
        kept.append(train_index)
    return Decontamination(kept, dropped)


__all__ = ["Decontamination", "Overlap", "decontaminate", "ngrams", "words"]
