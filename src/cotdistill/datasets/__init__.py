"""Dataset registry: every dataset the ``prepare`` stage can build, by name.

A dataset is a function from (seed, size, n_items) to raw examples plus its answer type. Later
datasets read published files; the two defaults are generated, as they were originally built.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cotdistill.datasets.synthetic import RawExample, coin_flip, last_letter_concatenation


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    answer_type: str  # number / choice / yes_no / text
    build: Callable[[int, int, int], list[RawExample]]  # (seed, num_examples, num_items)
    choices: tuple[str, ...] | None = None


DATASETS: dict[str, DatasetSpec] = {
    "coin_flip": DatasetSpec("coin_flip", "yes_no", coin_flip),
    "last_letter_concatenation": DatasetSpec(
        "last_letter_concatenation", "text", last_letter_concatenation
    ),
}

__all__ = ["DATASETS", "DatasetSpec", "RawExample"]
