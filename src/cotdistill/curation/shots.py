"""The ``exemplars`` stage's shots (``data/exemplars.jsonl``), as the few-shot baseline, the
few-shot evaluation and mixed-format curation read them."""

from __future__ import annotations

from collections import defaultdict

from cotdistill import layout
from cotdistill.errors import CotdistillError
from cotdistill.jsonl import read_records
from cotdistill.records import ClusteredExemplar


def load_exemplars() -> dict[str, list[dict]]:
    """The shots by dataset, in the stage's order, validated (a malformed line names the file
    and line); a missing file is one line saying which stage writes it."""
    if not layout.EXEMPLARS.is_file():
        raise CotdistillError(f"{layout.EXEMPLARS}: not found (run `cotdistill exemplars` first)")
    by_dataset: dict[str, list[dict]] = defaultdict(list)
    for shot in read_records(layout.EXEMPLARS, ClusteredExemplar, allow_empty=True):
        by_dataset[shot.dataset].append(shot.model_dump())
    return by_dataset
