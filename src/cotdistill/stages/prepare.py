"""The ``prepare`` stage: build the datasets and write seeded train / val / test splits.

Writes ``data/prepared/{train,val,test}.jsonl`` whole (a temporary directory renamed into
place). Published datasets are read from ``prepare.mirror`` (or ``$COTDISTILL_DATA_MIRROR``),
else downloaded once at their pinned revision into the cache.

Usage: ``cotdistill prepare``.
"""

from __future__ import annotations

import logging
from pathlib import Path

from cotdistill import layout
from cotdistill.atomic import atomic_dir
from cotdistill.datasets.build import prepare as build
from cotdistill.datasets.sources import FileSource
from cotdistill.jsonl import write_records
from cotdistill.lm.store import cache_home
from cotdistill.params import Params
from cotdistill.paths import from_root

log = logging.getLogger(__name__)


def run(params: Params, params_file: Path | str = "params.yaml") -> dict[str, int]:
    """Build every split; return the number of examples in each. ``params_file`` is where
    ``params`` were read from (errors name it)."""
    settings = params.prepare
    mirror = from_root(settings.mirror) if settings.mirror else None
    splits = build(settings, FileSource(mirror, cache_home() / "data"), params_file=params_file)
    with atomic_dir(layout.PREPARED) as tmp:
        for split, examples in splits.items():
            write_records(tmp / f"{split}.jsonl", examples)
    counts = {split: len(examples) for split, examples in splits.items()}
    log.info("prepared %s", ", ".join(f"{s}: {n}" for s, n in counts.items()))
    return counts
