"""The ``prepare`` stage: build the datasets and write seeded train / val / test splits.

Writes ``data/prepared/{train,val,test}.jsonl`` and ``reports/prepare.json`` together (staged
beside their targets and moved in at the end), so a bad row of a user dataset leaves the
previous outputs as they were. Published datasets are read from ``prepare.mirror`` (or
``$COTDISTILL_DATA_MIRROR``), else downloaded once at their pinned revision into the cache; user
datasets from their files (or the hub, at a pinned revision). The report says, per dataset,
the split sizes, the training questions dropped as repeats or as near copies of test
questions (with examples), and what was normalised in the answers.

Usage: ``cotdistill prepare``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from cotdistill import layout
from cotdistill.atomic import publish, write_text
from cotdistill.datasets.build import build
from cotdistill.datasets.sources import FileSource
from cotdistill.jsonl import write_records
from cotdistill.lm.store import cache_home
from cotdistill.datasets.splits import first_per_dataset
from cotdistill.errors import CotdistillError
from cotdistill.params import Params, PrepareParams
from cotdistill.records import PreparedExample
from cotdistill.layout import from_root

log = logging.getLogger(__name__)


def run(params: Params, params_file: Path | str = "params.yaml") -> dict[str, int]:
    """Build every split; return the number of examples in each. ``params_file`` is where
    ``params`` were read from (errors name it)."""
    settings = params.prepare
    mirror = from_root(settings.mirror) if settings.mirror else None
    source = FileSource(mirror, cache_home() / "data")
    prepared = build(settings, source, params_file=params_file)
    transfer = held_out_tests(params, source, params_file)
    counts = {split: len(examples) for split, examples in prepared.splits.items()}
    for dataset, figures in prepared.report.items():
        figures["chance"] = chance_accuracy(
            [e for e in prepared.splits["test"] if e.dataset == dataset])
    report = {"examples": counts,
              "decontamination": {"ngram": settings.decontamination.ngram,
                                  "threshold": settings.decontamination.threshold},
              "datasets": prepared.report,
              "transfer": {name: sum(e.dataset == name for e in transfer)
                           for name in params.evaluate.held_out(settings.names)}}
    with publish() as out:
        folder = out.dir(layout.PREPARED)
        for split, examples in prepared.splits.items():
            write_records(folder / f"{split}.jsonl", examples)
        write_records(folder / "transfer.jsonl", transfer)
        write_text(out.file(layout.PREPARE_REPORT), json.dumps(report, indent=2) + "\n")
    log.info("prepared %s; held-out tasks: %s", ", ".join(f"{s}: {n}" for s, n in counts.items()),
             ", ".join(f"{name} {n}" for name, n in report["transfer"].items()) or "none")
    return counts


def held_out_tests(params: Params, source: FileSource,
                   params_file: Path | str = "params.yaml") -> list[PreparedExample]:
    """The held-out tasks' test questions (the first ``evaluate.transfer_max_examples`` of each),
    built as ``prepare`` builds any dataset, with the same seed and mirror."""
    names = params.evaluate.held_out(params.prepare.names)
    if not names:
        return []
    alone = PrepareParams.model_validate(
        {**params.prepare.model_dump(), "datasets": names})
    try:
        tests = build(alone, source, params_file=params_file).splits["test"]
    except CotdistillError as error:  # say why a dataset nobody trains on was being read
        raise CotdistillError(
            f"{params_file}: evaluate.transfer_datasets ({', '.join(names)}, the held-out "
            f"tasks): {error} (set evaluate.transfer_datasets: [] to score none)") from None
    return first_per_dataset(tests, params.evaluate.transfer_max_examples)


def chance_accuracy(test: list[PreparedExample]) -> float:
    """The test accuracy of answering at random: 1/2 for yes/no, 1/(options) for a choice
    (averaged over the questions), 0 for free answers (numbers, words). The report's plot draws
    it, so a student is never read as good for matching a coin toss."""
    if not test:
        return 0.0
    odds = [0.5 if e.answer_type == "yes_no" else 1 / len(e.choices) if e.choices else 0.0
            for e in test]
    return round(sum(odds) / len(odds), 6)
