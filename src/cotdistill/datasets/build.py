"""The ``prepare`` stage: build each dataset and write train / val / test splits.

Published datasets keep their published train / test split (the reasoning-teacher index lists);
validation is carved from train with the seed, so nothing is ever selected on test. Generated
datasets are split by seed. Either way a question (compared without case or whitespace) never
appears in two splits: test wins, and train / val copies of a test question are dropped.

Usage: ``cotdistill prepare`` (writes ``data/prepared/{train,val,test}.jsonl``).
"""

from __future__ import annotations

import logging
import random
from pathlib import Path

from cotdistill.datasets import DATASETS, DatasetSpec, RawExample
from cotdistill.datasets.sources import FileSource
from cotdistill.datasets.splits import normalize_question, split_indices
from cotdistill.errors import CotdistillError
from cotdistill.params import PrepareParams
from cotdistill.records import PreparedExample

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")


def published_splits(
    examples: list[RawExample], train: list[int], test: list[int], *, seed: int,
    val_fraction: float,
) -> dict[str, list[int]]:
    """The published test split; train minus test questions and duplicates; val carved from it."""
    seen = {normalize_question(examples[i].question) for i in test}
    kept = []
    for index in train:
        key = normalize_question(examples[index].question)
        if key not in seen:
            seen.add(key)
            kept.append(index)
    shuffled = kept[:]
    random.Random(seed).shuffle(shuffled)
    val = set(shuffled[: round(len(kept) * val_fraction)])
    return {
        "train": [i for i in kept if i not in val],
        "val": [i for i in kept if i in val],
        "test": list(test),
    }


def _load(spec: DatasetSpec, params: PrepareParams, source: FileSource | None):
    if spec.generated:
        raw = spec.build(params.seed, params.num_examples, params.num_items)
        return raw, split_indices(
            [example.question for example in raw], seed=params.seed,
            val_fraction=params.val_fraction, test_fraction=params.test_fraction,
        )
    from cotdistill.datasets.published import LOADERS

    published = LOADERS[spec.name](source)
    assignment = published_splits(
        published.examples, published.train, published.test, seed=params.seed,
        val_fraction=params.val_fraction,
    )
    dropped = len(published.train) - len(assignment["train"]) - len(assignment["val"])
    if dropped:
        log.info("%s: dropped %d train questions that repeat a test or train question",
                 spec.name, dropped)
    return published.examples, assignment


def prepare(params: PrepareParams, source: FileSource | None = None, *,
            params_file: Path | str = "params.yaml") -> dict[str, list[PreparedExample]]:
    """All prepared examples by split; every split of every dataset must be non-empty (else an
    error naming ``params_file``, the params file ``params`` came from)."""
    out: dict[str, list[PreparedExample]] = {split: [] for split in SPLITS}
    for name in params.datasets:
        spec = DATASETS[name]
        raw, assignment = _load(spec, params, source)
        for split in SPLITS:
            indices = assignment[split]
            if not indices and (split != "val" or params.val_fraction > 0):
                hint = "raise prepare.num_examples" if spec.generated else "check prepare.val_fraction"
                raise CotdistillError(
                    f"{params_file}: prepare: dataset {name} gets an empty {split} split "
                    f"({len(raw)} examples); {hint}"
                )
            for index in indices:
                example = raw[index]
                out[split].append(
                    PreparedExample(
                        id=f"{name}-{index:05d}", dataset=name, split=split,
                        question=example.question, answer=example.answer,
                        answer_type=spec.answer_type,
                        choices=list(example.choices) if example.choices else None,
                        rationale=example.rationale,
                        subquestions=[list(step) for step in example.subquestions]
                        if example.subquestions else None,
                    )
                )
    return out
