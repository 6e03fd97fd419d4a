"""Every dataset the ``prepare`` stage can build, by name, and the shape of its answers.

A base module: ``params`` checks names against it and every layer reads answer types from it,
so it imports nothing of the package. How a dataset is built lives in ``cotdistill.datasets``
under the same name: ``published.LOADERS`` read the public raw files (pinned revision and
checksum, or a local mirror) and split them by the published reasoning-teacher index lists;
``synthetic.GENERATORS`` build the generated ones from a seed the way Wei et al. / Kojima et
al. built the originals.
"""

from __future__ import annotations

from dataclasses import dataclass


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
    # built from a seed (cotdistill.datasets.synthetic.GENERATORS) rather than read from its
    # published files (cotdistill.datasets.published.LOADERS)
    generated: bool = False


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
        DatasetSpec("coin_flip_generated", "yes_no", templated=True, generated=True),
        DatasetSpec("last_letter_concatenation_generated", "text", templated=True,
                    generated=True),
    )
}
