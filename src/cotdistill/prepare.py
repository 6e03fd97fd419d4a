"""The ``prepare`` stage: build each dataset and write seeded train / val / test splits.

Usage: ``cotdistill prepare`` (writes ``data/prepared/{train,val,test}.jsonl``).
"""

from __future__ import annotations

from cotdistill.datasets import DATASETS
from cotdistill.errors import CotdistillError
from cotdistill.params import PrepareParams
from cotdistill.records import PreparedExample
from cotdistill.splits import split_indices

SPLITS = ("train", "val", "test")


def prepare(params: PrepareParams) -> dict[str, list[PreparedExample]]:
    """All prepared examples by split; every split of every dataset must be non-empty."""
    out: dict[str, list[PreparedExample]] = {split: [] for split in SPLITS}
    for name in params.datasets:
        spec = DATASETS[name]
        raw = spec.build(params.seed, params.num_examples, params.num_items)
        assignment = split_indices(
            [example.question for example in raw], seed=params.seed,
            val_fraction=params.val_fraction, test_fraction=params.test_fraction,
        )
        for split, indices in assignment.items():
            if not indices and (split != "val" or params.val_fraction > 0):
                raise CotdistillError(
                    f"params.yaml: prepare: dataset {name} gets an empty {split} split "
                    f"({len(raw)} examples); raise prepare.num_examples"
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
                    )
                )
    return out
