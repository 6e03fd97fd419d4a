"""The ``decompose`` stage: Socratic CoT decompositions of the training questions.

Two sources, chosen by ``socratic.source``:

- *teacher*: the few-shot decomposition prompt (:mod:`cotdistill.methods.socratic.decompositions`) sent
  through the teacher stage's own machinery (:mod:`cotdistill.teachers.engine`): the backend
  ``teacher.backend`` names (a local ``transformers`` model, or any OpenAI-compatible
  endpoint), its durable response cache (``.cotdistill/teacher-cache.sqlite``, so a re-run
  asks nothing twice and a crash loses nothing paid for) and its ``teacher.max_usd`` cap.
  Sampling (``samples``, ``temperature``, ``max_tokens``) is the ``socratic`` section's own;
- *gold*: GSM8K's published socratic decompositions, for the questions they cover.

Every parsed decomposition is written, right or wrong (``correct`` says which), so that
teacher and gold can be compared on the same questions; training keeps only the correct ones
(:func:`training_decompositions`). Malformed teacher outputs are counted by reason in the
stage report and dropped: they never stop the stage.

Usage: ``cotdistill decompose`` (reads ``data/prepared/train.jsonl``; writes
``data/socratic/decompositions.jsonl`` and ``reports/socratic/decompose.json``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

from cotdistill.datasets.sources import FileSource
from cotdistill.datasets.splits import first_per_dataset
from cotdistill.errors import CotdistillError
from cotdistill.methods.socratic.decompositions import (
    Decomposition,
    DecompositionStats,
    Exemplar,
    GoldStats,
    decomposition_from_text,
    gold_decompositions,
    keep_correct,
)
from cotdistill.params import TeacherParams
from cotdistill.params.socratic import SocraticParams
from cotdistill.prompts.socratic import DECOMPOSITION_STOPS, decomposition_prompt
from cotdistill.records import PreparedExample, TeacherResponse
from cotdistill.teachers import engine
from cotdistill.teachers.base import Backend
from cotdistill.teachers.cache import ResponseCache

log = logging.getLogger(__name__)


# (prompt, sample index) requests -> the teacher's texts, in order
Ask = Callable[[list[tuple[str, int]]], list[str]]


def select_examples(examples: Sequence[PreparedExample], datasets: list[str] | None,
                    limit: int | None = None, *, where: str = "prepared data"
                    ) -> list[PreparedExample]:
    """The examples of ``datasets`` (all when None), the first ``limit`` per dataset."""
    if datasets is not None:
        present = {example.dataset for example in examples}
        missing = [name for name in datasets if name not in present]
        if missing:
            raise CotdistillError(
                f"socratic.datasets: {', '.join(missing)} not in {where} (add to prepare.datasets)")
        examples = [example for example in examples if example.dataset in datasets]
    return first_per_dataset(list(examples), limit)


def teacher_decompositions(
    examples: Sequence[PreparedExample], ask: Ask, exemplars: Sequence[Exemplar], samples: int,
    stats: DecompositionStats,
) -> list[Decomposition]:
    """``samples`` teacher decompositions per example; malformed ones counted and dropped."""
    pairs = [(example, sample) for example in examples for sample in range(samples)]
    texts = ask([(decomposition_prompt(example.question, exemplars), sample)
                 for example, sample in pairs])
    found = []
    for (example, sample), text in zip(pairs, texts, strict=True):
        decomposition = decomposition_from_text(example, text, "teacher", stats, sample=sample)
        if decomposition is not None:
            found.append(decomposition)
    return found


def compare(decompositions: Sequence[Decomposition]) -> dict:
    """Teacher vs gold on the questions that have both: accuracy and length of each."""
    by_source: dict[str, dict[str, list[Decomposition]]] = {"teacher": {}, "gold": {}}
    for decomposition in decompositions:
        by_source[decomposition.source].setdefault(decomposition.id, []).append(decomposition)
    shared = sorted(set(by_source["teacher"]) & set(by_source["gold"]))
    figures: dict = {"questions": len(shared)}
    for source, found in by_source.items():
        chosen = [d for question in shared for d in found[question]]
        figures[f"{source}_correct_rate"] = (
            sum(d.correct for d in chosen) / len(chosen) if chosen else 0.0)
        figures[f"{source}_mean_pairs"] = (
            sum(len(d.pairs) for d in chosen) / len(chosen) if chosen else 0.0)
    return figures


def decompose(
    examples: Sequence[PreparedExample], settings: SocraticParams, *, ask: Ask | None,
    exemplars: Sequence[Exemplar], gold_source: FileSource | None,
) -> tuple[list[Decomposition], dict]:
    """All parsed decompositions of ``examples`` from the sources ``settings.source`` names,
    and the stage report (counts per source, malformed reasons, teacher vs gold)."""
    found: list[Decomposition] = []
    report: dict = {"questions": len(examples), "source": settings.source}
    if settings.source in ("teacher", "both"):
        if ask is None:
            raise CotdistillError("socratic.source needs the teacher, but none was given")
        stats = DecompositionStats()
        found += teacher_decompositions(examples, ask, exemplars, settings.samples, stats)
        report["teacher"] = stats.as_dict()
    if settings.source in ("gold", "both"):
        if gold_source is None:
            raise CotdistillError("socratic.source needs gold files, but no file source was given")
        gold_stats = GoldStats()
        gold = gold_decompositions(examples, gold_source, stats=gold_stats)
        if not gold and settings.source == "gold":
            raise CotdistillError(
                "socratic.source is gold, but no training question has a gold decomposition "
                f"(missing files: {', '.join(gold_stats.missing_files) or 'none'}; gold "
                "decompositions exist for gsm8k only)")
        found += gold
        report["gold"] = gold_stats.as_dict()
    if settings.source == "both":
        report["compared"] = compare(found)
    kept = keep_correct(found)
    report["kept"] = {source: sum(d.source == source for d in kept)
                      for source in ("teacher", "gold")}
    return found, report


def training_decompositions(decompositions: Sequence[Decomposition], settings: SocraticParams
                            ) -> list[Decomposition]:
    """What the students train on: correct decompositions from the chosen source(s) and
    datasets (a stale file with another source is filtered, not trusted)."""
    sources = {"teacher": {"teacher"}, "gold": {"gold"}, "both": {"teacher", "gold"}}[
        settings.source]
    return [d for d in keep_correct(decompositions) if d.source in sources
            and (settings.datasets is None or d.dataset in settings.datasets)]


class TeacherAsk:
    """The teacher's backend, response cache and budget as an :data:`Ask` function.

    Calls go through :func:`cotdistill.teachers.engine.cached_complete`, as every teacher pass
    does. Failed or refused requests raise ``TeacherIncomplete`` after everything bought has
    been cached. Every response it hands back is kept in ``responses`` with its cache key (the
    stage writes them beside the decompositions), and ``previous`` (those of the stage's last
    output) go back into the cache first: after the cache is lost, nothing is bought again.
    """

    def __init__(self, backend: Backend, teacher: TeacherParams, settings: SocraticParams,
                 cache_path: Path, previous: Sequence[TeacherResponse] = ()) -> None:
        if not backend.asks_model:
            raise CotdistillError(
                f"teacher.backend is {backend.name}, which calls no model and so has no "
                "decompositions: set socratic.source: gold or a generating teacher.backend")
        self.backend, self.teacher, self.settings = backend, teacher, settings
        self.cache_path = cache_path
        self.previous = list(previous)
        self.restored = 0
        self.responses: dict[str, TeacherResponse] = {}

    def __call__(self, requests: list[tuple[str, int]]) -> list[str]:
        settings, backend = self.settings, self.backend
        stats = engine.CallStats()
        budget = engine.make_budget(self.teacher, backend)
        cache = ResponseCache(self.cache_path)
        try:
            if self.previous:
                self.restored += cache.restore({r.key: r.response for r in self.previous})
                self.previous = []
            step = engine.Step(settings.max_tokens, settings.temperature, self.teacher.seed,
                               DECOMPOSITION_STOPS)
            outcomes = engine.cached_complete(
                backend, cache, requests, stats, max_tokens=step.max_tokens,
                temperature=step.temperature, seed=step.seed, stop=step.stop, budget=budget,
            )
        finally:
            cache.close()
        if stats.failed or stats.not_sent:
            raise engine.TeacherIncomplete(
                f"decompose: incomplete: {stats.failed} request(s) failed "
                f"({dict(stats.failures)}), {stats.not_sent} not sent (teacher.max_usd); "
                f"{stats.generated} bought and {stats.cached} cached are kept in the cache; "
                "nothing was written; re-run to ask only for what is missing", stats)
        for (prompt, sample), outcome in zip(requests, outcomes, strict=True):
            key = engine.request_key(backend, prompt, sample, step)
            self.responses[key] = TeacherResponse(key=key, sample=sample,
                                                  response=vars(outcome))
        log.info("decompose: %d teacher calls, %d from the cache (%d restored from the last "
                 "output), $%.4f", stats.generated, stats.cached, self.restored, stats.usd)
        return [outcome.text for outcome in outcomes]


def teacher_ask(backend: Backend, teacher: TeacherParams, settings: SocraticParams,
                cache_path: Path, previous: Sequence[TeacherResponse] = ()) -> TeacherAsk:
    """The :class:`TeacherAsk` of a teacher (refused at once for one that calls no model)."""
    return TeacherAsk(backend, teacher, settings, cache_path, previous)
