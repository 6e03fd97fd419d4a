"""The ``replay`` teacher backend: published teacher completions instead of model calls.

Imports files in reasoning-teacher's ``CompletionDataset`` format (how the Fine-tune-CoT authors
released their teacher data) as teacher-completion records, so a pipeline can train on real
large-model rationales without calling any model.

Matching (``teacher.replay_match``):
- ``sample_index``: the file's sample index is the reasoning-teacher index, i.e. our example id
  ``<dataset>-<index>``; the question text must agree, or the stage stops naming the entry.
- ``question``: match on the question text (case and whitespace ignored). Needed for files whose
  order is not reasoning-teacher's: the zero-shot-CoT logs of Kojima et al. converted to this
  format keep the logs' (shuffled) order in ``sample_index``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cotdistill import answers
from cotdistill.datasets.sources import FileSource
from cotdistill.datasets.splits import normalize_question
from cotdistill.errors import CotdistillError
from cotdistill.params import TeacherParams
from cotdistill.layout import from_root
from cotdistill.records import PreparedExample, TeacherCompletion, Usage
from cotdistill.teachers import kojima_logs
from cotdistill.teachers.base import Admit, OnBatch, Outcome
from cotdistill.teachers.completion_dataset import (
    CompletionDataset,
    read_completion_dataset,
)

log = logging.getLogger(__name__)


@dataclass
class ReplayStats:
    files: int = 0
    imported: int = 0
    not_asked: int = 0  # completions for questions outside the examples (e.g. test questions)
    beyond_samples: int = 0  # completion_index >= teacher.samples


def _completion_files(location: Path) -> list[Path]:
    if location.is_file():
        return [location]
    if location.is_dir():
        return sorted(location.glob("*.json"))
    raise CotdistillError(f"teacher.replay_path: {location} not found")


def _record(example: PreparedExample, sample: int, dataset: CompletionDataset, entry) -> TeacherCompletion:
    prediction = answers.extract(entry.completion, example.answer_type, example.choices)
    return TeacherCompletion(
        id=example.id, dataset=example.dataset, sample=sample, backend="replay",
        model=dataset.metadata.base_model, prompt_id=f"replay:{dataset.metadata.completion_key}",
        sampling={}, rationale=(entry.reasoning_completion or "").strip(),
        answer_text=entry.completion.strip(), prediction=prediction,
        correct=answers.is_correct(prediction, example.answer, example.answer_type),
        usage=Usage(),
    )


def replay(
    examples: list[PreparedExample], location: Path, *, samples: int, match: str
) -> tuple[list[TeacherCompletion], ReplayStats]:
    """Teacher records for ``examples`` from the completion files at ``location``."""
    by_id = {example.id: example for example in examples}
    by_question = {(e.dataset, normalize_question(e.question)): e for e in examples}
    wanted = {example.dataset for example in examples}
    stats = ReplayStats()
    records: dict[tuple[str, int], TeacherCompletion] = {}
    for path in _completion_files(location):
        dataset = read_completion_dataset(path)
        key = dataset.dataset_key
        if key not in wanted:
            continue
        stats.files += 1
        for sample_index, completion_index, entry in dataset.completions():
            if completion_index >= samples:
                stats.beyond_samples += 1
                continue
            if match == "sample_index":
                example = by_id.get(f"{key}-{sample_index:05d}")
                if example is not None and normalize_question(example.question) != \
                        normalize_question(entry.question):
                    raise CotdistillError(
                        f"{path}: data.{sample_index}: the question differs from {example.id}'s; "
                        "this file is not in reasoning-teacher order (set teacher.replay_match: "
                        "question)"
                    )
            else:
                example = by_question.get((key, normalize_question(entry.question)))
            if example is None:
                stats.not_asked += 1
                continue
            # A question published twice (MultiArith repeats a few) keeps its first completion.
            records.setdefault((example.id, completion_index),
                               _record(example, completion_index, dataset, entry))
    if stats.files == 0:
        raise CotdistillError(
            f"teacher.replay_path: no completion file in {location} covers the datasets "
            f"{', '.join(sorted(wanted))}"
        )
    stats.imported = len(records)
    order = {example.id: position for position, example in enumerate(examples)}
    return sorted(records.values(), key=lambda r: (order[r.id], r.sample)), stats


class ReplayBackend:
    """``teacher.backend: replay``: a teacher that has already answered. It calls no model, so
    the passes that need one (the few-shot pass, decompositions, estimates) ask ``asks_model``
    first and skip or refuse with a reason instead of calling :meth:`complete`.

    ``teacher.replay_source`` says where the answers were published: Kojima et al.'s logs
    (:mod:`cotdistill.teachers.kojima_logs`, the default) or CompletionDataset files."""

    name = "replay"
    batch_priced = False
    asks_model = False
    prompt_api = "completions"
    identity: dict[str, Any] = {}

    def __init__(self, source: str, location: Path | None, *, samples: int, match: str) -> None:
        self.source = source
        self.location = location
        self.samples = samples
        self.match = match
        self.model = kojima_logs.TEACHER if source == "kojima_logs" else str(location)

    @classmethod
    def from_params(cls, params: TeacherParams, cache_path: Path | None) -> ReplayBackend:
        location = from_root(params.replay_path) if params.replay_path else None
        return cls(params.replay_source, location, samples=params.samples,
                   match=params.replay_match)

    def replay(self, examples: list[PreparedExample], files: FileSource,
               prepared: Sequence[PreparedExample] = ()) -> tuple[list[TeacherCompletion], dict]:
        """The published completions of ``examples`` and a report of what matched (``files``:
        where pinned public files are read from; ``prepared``: every prepared question, to say
        which splits each of Kojima et al.'s logs covers)."""
        if self.source == "kojima_logs":
            records, report = kojima_logs.replay_logs(examples, files, prepared)
            return records, report.as_dict()
        records, stats = replay(examples, self.location, samples=self.samples, match=self.match)
        return records, {"source": "completion_dataset", "files": stats.files,
                         "imported": stats.imported, "entries_for_other_questions": stats.not_asked,
                         "beyond_samples": stats.beyond_samples,
                         "questions_without_entry": len({e.id for e in examples})
                         - len({r.id for r in records})}

    def complete(
        self, prompts: list[str], *, seeds: list[int], max_tokens: int, temperature: float,
        stop: list[str], on_batch: OnBatch, admit: Admit = lambda i: True,
    ) -> list[Outcome]:
        raise CotdistillError("teacher.backend is replay: published completions answer no new "
                              "prompt (choose a backend that calls a model)")
