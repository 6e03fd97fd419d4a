"""Dataset registry: every dataset the ``prepare`` stage can build, by name.

Two kinds:
- *published* datasets (the Fine-tune-CoT benchmarks, named by their reasoning-teacher keys:
  ``multiarith``, ``gsm8k``, ...) are read from their public raw files (pinned revision and
  checksum, or a local mirror) and split by the published reasoning-teacher index lists;
- *generated* datasets (``coin_flip_generated``, ``last_letter_concatenation_generated``) are
  built from a seed the way Wei et al. / Kojima et al. built the originals, and split by seed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cotdistill.datasets.synthetic import (
    RawExample,
    coin_flip,
    last_letter_concatenation,
)


@dataclass(frozen=True)
class PublishedDataset:
    """A dataset as published: ``examples[i]`` is reasoning-teacher sample index ``i``."""

    examples: list[RawExample]
    train: list[int]  # the published split's indices into ``examples``
    test: list[int]


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    answer_type: str  # number / choice / yes_no / text
    num_choices: int | None = None  # choice datasets: letters A.. in every question
    # one template with names swapped: questions share most of their n-grams with some test
    # question (Tracking Shuffled Objects: all 525 train questions at n=8, threshold 0.5; a
    # generated Coin Flip of one flip: all), so only exact repeats of a test question are
    # dropped
    templated: bool = False
    # generated datasets: (seed, num_examples, num_items) -> examples; None for published ones,
    # whose loaders live in cotdistill.datasets.published.LOADERS under the same name.
    build: Callable[[int, int, int], list[RawExample]] | None = None

    @property
    def generated(self) -> bool:
        return self.build is not None


def _published(name: str, answer_type: str, num_choices: int | None = None, *,
               templated: bool = False) -> DatasetSpec:
    return DatasetSpec(name, answer_type, num_choices, templated=templated)


DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        # the twelve Fine-tune-CoT benchmarks, by their reasoning-teacher keys
        _published("single_eq", "number"),
        _published("addsub", "number"),
        _published("multiarith", "number"),
        _published("gsm8k", "number"),
        _published("aqua", "choice", 5),
        _published("svamp", "number"),
        _published("date_understanding", "choice", 6),
        _published("tracking_shuffled_objects", "choice", 3, templated=True),
        _published("last_letter_concatenation", "text"),
        _published("coin_flip", "yes_no"),
        _published("commonsense_qa", "choice", 5),
        _published("strategy_qa", "yes_no"),
        # generated from a seed, as the originals were built
        DatasetSpec("coin_flip_generated", "yes_no", build=coin_flip, templated=True),
        DatasetSpec("last_letter_concatenation_generated", "text",
                    build=last_letter_concatenation, templated=True),
    )
}

__all__ = ["DATASETS", "DatasetSpec", "PublishedDataset", "RawExample"]
