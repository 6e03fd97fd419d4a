"""The ``prepare`` stage: build each dataset and write train / val / test splits.

Three kinds of dataset, one treatment:
- published datasets keep their published train / test split (the reasoning-teacher index
  lists);
- user datasets (:mod:`cotdistill.datasets.user`) keep their own test split, or draw a seeded
  ``test_fraction``;
- generated datasets are split by seed.

Validation is carved from train with the seed, so nothing is ever selected on test. A question
(compared without case or whitespace) never appears in two splits: test wins, and train / val
copies of a test question are dropped. Then training questions (train and val) that overlap a
test question by word n-grams are dropped too (:mod:`cotdistill.datasets.decontaminate`), and
what was dropped is reported with examples.

Usage: ``cotdistill prepare`` (writes ``data/prepared/{train,val,test}.jsonl``).
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from cotdistill.catalog import DATASETS
from cotdistill.datasets import RawExample
from cotdistill.datasets.decontaminate import decontaminate
from cotdistill.datasets.sources import FileSource
from cotdistill.datasets.splits import normalize_question, split_indices
from cotdistill.errors import CotdistillError
from cotdistill.params import PrepareParams
from cotdistill.params.prepare import DatasetEntry
from cotdistill.records import PreparedExample

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
EXAMPLES_SHOWN = 3  # dropped pairs quoted per dataset in the report


@dataclass
class Prepared:
    """The prepared examples by split, and per dataset what preparing them did."""

    splits: dict[str, list[PreparedExample]]
    report: dict[str, dict] = field(default_factory=dict)


@dataclass
class _Loaded:
    examples: list[RawExample]
    ids: list[str]
    assignment: dict[str, list[int]]
    answer_type: str
    source: str
    repeats: int  # questions dropped because they repeat a test or an earlier question
    normalised: Counter = field(default_factory=Counter)


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


def _load(entry: DatasetEntry, params: PrepareParams, source: FileSource | None,
          root: Path) -> _Loaded:
    if entry.user:
        from cotdistill.datasets import user

        data = user.load(entry, root)
        if data.test is None:
            assignment = split_indices(
                [example.question for example in data.examples], seed=params.seed,
                val_fraction=params.val_fraction,
                test_fraction=entry.test_fraction or params.test_fraction)
        else:
            assignment = published_splits(data.examples, data.train, data.test,
                                          seed=params.seed, val_fraction=params.val_fraction)
        where = entry.path or f"{entry.hub}@{entry.revision}"
        return _Loaded(data.examples, data.ids, assignment, entry.answer_type or "text", where,
                       _repeats(len(data.examples), assignment), data.normalised)
    spec = DATASETS[entry.name]
    if spec.generated:
        from cotdistill.datasets.synthetic import GENERATORS

        raw = GENERATORS[spec.name](params.seed, params.num_examples, params.num_items)
        assignment = split_indices(
            [example.question for example in raw], seed=params.seed,
            val_fraction=params.val_fraction, test_fraction=params.test_fraction)
        return _Loaded(raw, [f"{i:05d}" for i in range(len(raw))], assignment,
                       spec.answer_type, "generated", _repeats(len(raw), assignment))
    from cotdistill.datasets.published import LOADERS

    published = LOADERS[spec.name](source)
    assignment = published_splits(
        published.examples, published.train, published.test, seed=params.seed,
        val_fraction=params.val_fraction)
    return _Loaded(published.examples, [f"{i:05d}" for i in range(len(published.examples))],
                   assignment, spec.answer_type, "published",
                   _repeats(len(published.train) + len(published.test), assignment))


def _repeats(rows: int, assignment: dict[str, list[int]]) -> int:
    return rows - sum(len(indices) for indices in assignment.values())


def _decontaminated(loaded: _Loaded, params: PrepareParams, by_ngrams: bool) -> dict:
    """Drop train and val questions that overlap a test question; what was dropped (without
    ``by_ngrams``, only repeats of a test question)."""
    settings = params.decontamination
    pool = loaded.assignment["train"] + loaded.assignment["val"]
    test = loaded.assignment["test"]
    questions = [loaded.examples[i].question for i in pool]
    tests = [loaded.examples[i].question for i in test]
    result = decontaminate(questions, tests, n=settings.ngram, threshold=settings.threshold,
                           by_ngrams=by_ngrams)
    dropped = {pool[overlap.train_index] for overlap in result.dropped}
    for split in ("train", "val"):
        loaded.assignment[split] = [i for i in loaded.assignment[split] if i not in dropped]
    return {**result.counts(), "examples": result.examples(questions, tests, EXAMPLES_SHOWN)}


def prepare(params: PrepareParams, source: FileSource | None = None, *,
            params_file: Path | str = "params.yaml", root: Path = Path()
            ) -> dict[str, list[PreparedExample]]:
    """All prepared examples by split (:func:`build`'s, without the report)."""
    return build(params, source, params_file=params_file, root=root).splits


def build(params: PrepareParams, source: FileSource | None = None, *,
          params_file: Path | str = "params.yaml", root: Path = Path()) -> Prepared:
    """All prepared examples by split, and a report per dataset; every split of every dataset
    must be non-empty (else an error naming ``params_file``, the params file ``params`` came
    from). ``root``: where a user dataset's relative path starts (the stage's working directory,
    which in a ``dvc exp run`` copy holds that experiment's version of the file)."""
    out = Prepared({split: [] for split in SPLITS})
    for entry in params.entries:
        name = entry.name
        loaded = _load(entry, params, source, root)
        repeats = loaded.repeats
        contamination = _decontaminated(loaded, params, entry.by_ngrams)
        for split in SPLITS:
            indices = loaded.assignment[split]
            if not indices and (split != "val" or params.val_fraction > 0):
                hint = ("raise prepare.num_examples" if loaded.source == "generated" else
                        "check prepare.val_fraction and prepare.decontamination" if split != "test"
                        else "give the dataset a test split or a larger test_fraction")
                raise CotdistillError(
                    f"{params_file}: prepare: dataset {name} gets an empty {split} split "
                    f"({len(loaded.examples)} examples); {hint}")
            for index in indices:
                example = loaded.examples[index]
                out.splits[split].append(PreparedExample(
                    id=f"{name}-{loaded.ids[index]}", dataset=name, split=split,
                    question=example.question, answer=example.answer,
                    answer_type=loaded.answer_type,
                    choices=list(example.choices) if example.choices else None,
                    rationale=example.rationale,
                    subquestions=[list(step) for step in example.subquestions]
                    if example.subquestions else None,
                ))
        dropped = contamination["exact"] + contamination["ngram"]
        if repeats or dropped:
            log.info("%s: dropped %d repeated questions, and %d training questions that overlap "
                     "a test question (%d exact, %d by %d-grams)", name, repeats, dropped,
                     contamination["exact"], contamination["ngram"],
                     params.decontamination.ngram)
        if loaded.normalised:
            log.info("%s: normalised %s", name,
                     ", ".join(f"{what} ({n})" for what, n in sorted(loaded.normalised.items())))
        out.report[name] = {
            "source": loaded.source, "answer_type": loaded.answer_type,
            "examples": len(loaded.examples),
            **{split: len(loaded.assignment[split]) for split in SPLITS},
            "repeated_questions_dropped": repeats,
            "decontamination": {"by": "ngram" if entry.by_ngrams else "exact",
                                **contamination},
            "normalised": dict(sorted(loaded.normalised.items())),
        }
    return out
