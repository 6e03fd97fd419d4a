"""Copy the predictions behind every row of ``reproduction/results.json`` out of the (ignored)
work directories into ``reproduction/predictions/``, so that what a figure is made of is committed
beside it and ``scripts/render_results.py`` can say why a figure falls short from the outputs
themselves (answers that never came, arithmetic that is wrong).

    python scripts/collect_predictions.py [--root DIR]   # DIR: where the work directories are

A file is copied only when its correct count equals the row's, so a work directory that moved
on since the row was written (another seed, a rerun) is never passed off as the row's.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from cotdistill.atomic import write_text
from cotdistill.jsonl import write_records

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "reproduction" / "results.json"
OUT = REPO / "reproduction" / "predictions"


def destination(row: dict) -> Path:
    """reproduction/predictions/<dataset>/<student>/<method>[-seedN][-variant].jsonl; beside it,
    ``...-transfer.jsonl`` for a row scored on the held-out tasks and ``...-in-context.jsonl``
    for a row also evaluated with exemplars in context (``few_shot``)"""
    name = row["method"] + (f"-seed{row['seed']}" if row.get("seed") else "") + (
        f"-{row['variant']}" if row.get("variant") else "")
    return OUT / row["dataset"] / row["student"] / f"{name}.jsonl"


def _read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _on(records: list[dict], dataset: str) -> list[dict]:
    return [record for record in records if record["dataset"] == dataset]


def _matches(records: list[dict], dataset: str, figures: dict) -> bool:
    """Whether ``records`` hold ``figures``' run: the same n and correct count on ``dataset``."""
    mine = _on(records, dataset)
    return len(mine) == figures["n"] and sum(record["correct"] for record in mine) == \
        figures["correct"]


def _write(target: Path, records: list[dict]) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    write_records(target, records)


def collect(rows: list[dict], root: Path) -> tuple[int, list[str]]:
    copied, skipped = 0, []
    for row in rows:
        if row.get("legacy") or row["method"] == "teacher" or not row.get("work_dir"):
            continue
        source = (root / row["work_dir"] / "reports" / "eval" / row["student"] / row["method"]
                  / "predictions.jsonl")
        if not source.is_file():
            skipped.append(f"{source}: missing")
            continue
        records = _read(source)
        if not _matches(records, row["dataset"], row):
            skipped.append(f"{source}: holds another run than the row's")
            continue
        target = destination(row)
        _write(target, _on(records, row["dataset"]))
        copied += 1
        in_context = source.with_name("predictions_few_shot.jsonl")  # exemplars in context
        if row.get("few_shot") and in_context.is_file():
            records = _read(in_context)
            if _matches(records, row["dataset"], row["few_shot"]):
                _write(target.with_name(target.stem + "-in-context.jsonl"),
                       _on(records, row["dataset"]))
            else:
                skipped.append(f"{in_context}: holds another run than the row's")
        held_out = source.with_name("predictions_transfer.jsonl")  # the held-out tasks'
        if row.get("transfer") and held_out.is_file():
            records = _read(held_out)
            if all(_matches(records, task, figures) for task, figures in row["transfer"].items()):
                write_text(target.with_name(target.stem + "-transfer.jsonl"),
                           held_out.read_text(encoding="utf-8"))  # as evaluate wrote
            else:
                skipped.append(f"{held_out}: holds another run than the row's")
    return copied, skipped


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=REPO,
                        help="the checkout whose reproduction/ work directories ran the rows")
    args = parser.parse_args()
    rows = json.loads(RESULTS.read_text(encoding="utf-8"))["rows"]
    copied, skipped = collect(rows, args.root)
    print(f"{copied} prediction files in {OUT}")
    for line in skipped:
        print(f"skipped: {line}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
