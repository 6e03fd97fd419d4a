"""How many published train questions word n-gram decontamination drops, and which ones.

For each published dataset and a few (n, threshold) settings: the train / test sizes, the
exact and n-gram drops, and example n-gram pairs, so a person can judge whether the drops
are real near-duplicates of test questions or templated boilerplate.

    COTDISTILL_DATA_MIRROR=/work/shared/data/mirror .venv/bin/python \
        scripts/decontamination_findings.py [--examples 2] [--width 150]
"""

from __future__ import annotations

import argparse
import os
import time

from cotdistill.catalog import DATASETS
from cotdistill.datasets.decontaminate import decontaminate
from cotdistill.datasets.published import LOADERS
from cotdistill.datasets.sources import MIRROR_ENV, FileSource
from cotdistill.errors import CotdistillError
from cotdistill.lm.store import cache_home

SETTINGS = [  # (label, n, threshold)
    ("n=8 t=0.5", 8, 0.5),
    ("n=8 t=0.8", 8, 0.8),
    ("n=13 t=0.5", 13, 0.5),
    ("n=8 any", 8, 1e-9),  # open-r1: any shared 8-gram
]


def _cut(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=2, help="n-gram pairs per cell")
    parser.add_argument("--width", type=int, default=150, help="characters per question")
    args = parser.parse_args()

    mirror = os.environ.get(MIRROR_ENV, "/work/shared/data/mirror")
    source = FileSource(mirror, cache_home() / "data", download=False)
    names = [name for name, spec in DATASETS.items() if not spec.generated]

    header = f"{'dataset':<26} {'train':>6} {'test':>5}  " + "  ".join(
        f"{label + ' ex/ng':>19}" for label, _, _ in SETTINGS)
    rows, details = [header, "-" * len(header)], []
    for name in names:
        try:
            published = LOADERS[name](source)
        except CotdistillError as error:  # a file the mirror lacks: say so, go on
            rows.append(f"{name:<26} not available: {error}")
            continue
        train = [published.examples[i].question for i in published.train]
        test = [published.examples[i].question for i in published.test]
        cells = []
        for label, n, threshold in SETTINGS:
            start = time.perf_counter()
            result = decontaminate(train, test, n=n, threshold=threshold)
            seconds = time.perf_counter() - start
            counts = result.counts()
            cells.append(f"{counts['exact']:>5} / {counts['ngram']:>5} {seconds:>5.2f}s")
            ngram = sorted((o for o in result.dropped if o.kind == "ngram"),
                           key=lambda o: o.score)
            # the weakest drop (is the threshold too loose?) and the median one
            picks = [ngram[0], ngram[len(ngram) // 2]] if ngram else []
            for overlap in picks[: args.examples]:
                details.append(
                    f"{name} [{label}] score={overlap.score:.3f}\n"
                    f"    train: {_cut(train[overlap.train_index], args.width)}\n"
                    f"    test:  {_cut(test[overlap.test_index], args.width)}")
        rows.append(f"{name:<26} {len(train):>6} {len(test):>5}  " + "  ".join(
            f"{cell:>19}" for cell in cells))

    print("exact / ngram dropped (and seconds) per setting; 'any' = threshold 1e-9\n")
    print("\n".join(rows))
    print("\nn-gram example pairs: the weakest drop and the median drop per setting\n")
    print("\n".join(details))


if __name__ == "__main__":
    main()
