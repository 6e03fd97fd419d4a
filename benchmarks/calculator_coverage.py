"""What the calculator reads in the teacher's own rationales: every ``=`` of the curated
Fine-tune-CoT targets of the arithmetic datasets, and whether :mod:`cotdistill.calculator`
finds an expression before it, computes it, and agrees with what the teacher wrote after it.

    python benchmarks/calculator_coverage.py --root reproduction   # the table harness's work

``--root`` holds one folder per dataset with ``data/curated/fine_tune_cot.jsonl`` (what
``benchmarks/reproduce_table5.py`` writes). Writes ``benchmarks/results/calculator_coverage.json``
with the commit and the md5 of each file read, and prints examples of each kind of miss, so
that the forms left out can be read, not guessed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import subprocess
import sys
from collections import Counter
from decimal import Decimal, InvalidOperation
from pathlib import Path

from cotdistill.calculator import compute, pending

REPO = Path(__file__).resolve().parent.parent
DATASETS = ("single_eq", "addsub", "multiarith")
OUT = REPO / "benchmarks" / "results" / "calculator_coverage.json"
_WRITTEN = re.compile(r"\s*\$?(-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?)(?:/(\d+)\b)?")


def teacher_result(after: str) -> Decimal | None:
    """The number the teacher wrote right after ``=``, if any (a fraction "6/10" too)."""
    match = _WRITTEN.match(after)
    if match is None:
        return None
    try:
        value = Decimal(match.group(1).replace(",", ""))
        return value / Decimal(match.group(2)) if match.group(2) else value  # "6/10"
    except (InvalidOperation, ArithmeticError):
        return None


def classify(before: str, after: str) -> str:
    """What the calculator makes of one ``=``: agrees, disagrees (the teacher's arithmetic is
    wrong, or the calculator read another expression), not computed, or no expression."""
    found = pending(before + "=")
    if found is None:
        return "no expression"
    value = compute(found.python)
    if value is None:
        return "not computed"
    written = teacher_result(after)
    if written is None:
        return "computed, no number after ="
    return "agrees" if abs(value - written) < Decimal("0.01") else "disagrees"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=REPO / "reproduction")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--examples", type=int, default=3, help="misses printed per kind")
    args = parser.parse_args(argv)
    per_dataset: dict[str, dict] = {}
    examples: dict[str, list[str]] = {}
    for dataset in DATASETS:
        path = args.root / dataset / "data" / "curated" / "fine_tune_cot.jsonl"
        if not path.is_file():
            raise SystemExit(f"{path}: not found; run python benchmarks/reproduce_table5.py "
                             f"--datasets {dataset} first, or pass --root")
        counts: Counter = Counter()
        rationales = 0
        for line in path.read_text(encoding="utf-8").splitlines():
            target = json.loads(line)["target"]
            rationales += 1
            for match in re.finditer("=", target):
                before, after = target[:match.start()], target[match.end():]
                kind = classify(before, after)
                counts[kind] += 1
                if kind != "agrees" and len(examples.setdefault(kind, [])) < args.examples:
                    examples[kind].append(f"{dataset}: ...{before[-60:]}={after[:20]}...")
        per_dataset[dataset] = {"rationales": rationales, "equals_signs": sum(counts.values()),
                                **dict(sorted(counts.items())),
                                "md5": hashlib.md5(path.read_bytes()).hexdigest()}
    total: Counter = Counter()
    for figures in per_dataset.values():
        total.update({k: v for k, v in figures.items() if isinstance(v, int)})
    commit = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=REPO,
                            capture_output=True, text=True, check=False).stdout.strip()
    result = {"commit": commit or "not recorded",
              "command": "python benchmarks/calculator_coverage.py " + " ".join(
                  argv if argv is not None else sys.argv[1:]),
              "datasets": per_dataset, "total": dict(total), "examples": examples}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({"total": result["total"], "examples": examples}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
