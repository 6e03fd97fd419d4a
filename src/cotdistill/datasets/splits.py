"""Seeded train / val / test splits with no question in two splits."""

from __future__ import annotations

import random
import re
from collections import defaultdict
from collections.abc import Sequence
from typing import Protocol, TypeVar


class _HasDataset(Protocol):
    dataset: str


T = TypeVar("T", bound=_HasDataset)


def normalize_question(question: str) -> str:
    """The form in which two questions count as the same: case and whitespace ignored."""
    return re.sub(r"\s+", " ", question).strip().lower()


def split_indices(
    questions: Sequence[str], *, seed: int, val_fraction: float, test_fraction: float
) -> dict[str, list[int]]:
    """Assign question indices to splits.

    Duplicate questions (after :func:`normalize_question`) keep only their first occurrence,
    so the same question can never land in two splits. The remaining indices are shuffled
    with ``seed``; test takes the first share, val the next, train the rest. Each list is
    returned sorted, so files keep the generation order.
    """
    unique: dict[str, int] = {}
    for index, question in enumerate(questions):
        unique.setdefault(normalize_question(question), index)
    order = list(unique.values())
    random.Random(seed).shuffle(order)
    n_test = round(len(order) * test_fraction)
    n_val = round(len(order) * val_fraction)
    return {
        "test": sorted(order[:n_test]),
        "val": sorted(order[n_test : n_test + n_val]),
        "train": sorted(order[n_test + n_val :]),
    }


def first_per_dataset(examples: list[T], limit: int | None) -> list[T]:
    """The first ``limit`` examples of each dataset, in their order (all of them when None)."""
    if limit is None:
        return examples
    counts: dict[str, int] = defaultdict(int)
    kept = []
    for example in examples:
        if counts[example.dataset] < limit:
            counts[example.dataset] += 1
            kept.append(example)
    return kept
