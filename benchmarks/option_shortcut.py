"""How far Date Understanding's answer options give the answer away, without reading the question.

    python benchmarks/option_shortcut.py --prepared reproduction/date_understanding/data/prepared

BIG-bench's date questions list six MM/DD/YYYY options, and the wrong ones are mostly the right
one with one field changed (05/30/2021 beside 05/30/1980 and 04/30/2021). So the option that
shares the most month, day and year fields with the others is usually right. A student trained
on gold answers alone can learn that shortcut; a student trained on rationales is taught to
compute the date instead. This script measures the shortcut on the prepared splits that the
table's harness wrote (``data/prepared/{train,test}.jsonl`` of its work directory), and how
often the committed predictions of each row pick the shortcut's option. Ties between options
count as an even share, so the figures are expected accuracies of a blind guess among the tied.

It writes ``benchmarks/results/option_shortcut.json`` (with the commit and the md5 of each split
read); ``python scripts/render_results.py`` renders the table in docs/results.md from it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATASET = "date_understanding"
LETTERS = "ABCDEF"
DEFAULT_OUT = REPO / "benchmarks" / "results" / "option_shortcut.json"
PREDICTIONS = REPO / "reproduction" / "predictions" / DATASET


def fields(option: str) -> list[str]:
    """An MM/DD/YYYY option as its three fields; any other text as one field."""
    return option.strip().split("/")


def shortcut(choices: list[str]) -> list[int]:
    """The options that share the most fields, position by position, with the other options:
    the question is never read."""
    parts = [fields(choice) for choice in choices]
    shared = [sum(a == b for other in parts if other is not mine for a, b in zip(mine, other))
              for mine in parts]
    best = max(shared)
    return [index for index, count in enumerate(shared) if count == best]


def read_split(path: Path) -> list[dict]:
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        row = json.loads(line)
        if not row.get("choices") or row.get("answer") not in LETTERS[:len(row["choices"])]:
            raise SystemExit(f"{path}:{number}: not a multiple-choice row with a letter answer")
        rows.append(row)
    if not rows:
        raise SystemExit(f"{path}: no rows")
    return rows


def split_figures(rows: list[dict]) -> dict:
    """The shortcut's expected accuracy on one split, and how often it names one option alone."""
    expected = unique = 0.0
    for row in rows:
        picks = shortcut(row["choices"])
        expected += (LETTERS.index(row["answer"]) in picks) / len(picks)
        unique += len(picks) == 1
    return {"n": len(rows), "expected_accuracy": round(expected / len(rows), 4),
            "single_pick": int(unique)}


def row_figures(predictions: Path, test: dict[str, dict]) -> dict:
    """One committed row's predictions against the shortcut: how often it picks the shortcut's
    option (where that option is unique), and its accuracy where the shortcut is right or wrong."""
    agree = unique = 0
    by_shortcut = {True: [0, 0], False: [0, 0]}  # shortcut right? -> [correct, n]
    for line in predictions.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        row = test.get(record["id"])
        if row is None:
            raise SystemExit(f"{predictions}: {record['id']} is not in the test split read")
        picks = shortcut(row["choices"])
        if len(picks) == 1:
            unique += 1
            agree += record.get("prediction") == LETTERS[picks[0]]
        cell = by_shortcut[picks == [LETTERS.index(row["answer"])]]
        cell[0] += bool(record.get("correct"))
        cell[1] += 1
    return {"agrees_with_shortcut": agree, "shortcut_single_pick": unique,
            "correct_where_shortcut_right": by_shortcut[True],
            "correct_where_shortcut_wrong_or_tied": by_shortcut[False]}


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def commit() -> str:
    result = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=REPO,
                            capture_output=True, text=True, check=False)
    return result.stdout.strip() or "not recorded"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prepared", type=Path,
                        default=REPO / "reproduction" / DATASET / "data" / "prepared",
                        help="the harness's prepared splits of Date Understanding")
    parser.add_argument("--predictions", type=Path, default=PREDICTIONS,
                        help="committed predictions, one folder per student")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    splits = {}
    for split in ("train", "test"):
        path = args.prepared / f"{split}.jsonl"
        if not path.is_file():
            raise SystemExit(f"{path}: not found; run python benchmarks/reproduce_table5.py "
                             f"--datasets {DATASET} first, or pass --prepared")
        splits[split] = (path, read_split(path))
    test = {row["id"]: row for row in splits["test"][1]}
    rows = []
    for student in sorted(p for p in args.predictions.glob("*") if p.is_dir()):
        for file in sorted(student.glob("*.jsonl")):
            rows.append({"student": student.name, "method": file.stem,
                         **row_figures(file, test)})
    result = {"commit": commit(),
              "command": "python benchmarks/option_shortcut.py " + " ".join(
                  argv if argv is not None else sys.argv[1:]),
              "dataset": DATASET,
              "splits": {split: {"md5": md5(path), **split_figures(data)}
                         for split, (path, data) in splits.items()},
              "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result["splits"], indent=2))
    for row in rows:
        print(row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
