"""The ``teacher`` stage: Fine-tune-CoT's two-step zero-shot-CoT with diverse reasoning.

For every training question the teacher writes D rationales at temperature T (step 1), then
answers after the trigger "Therefore, the answer ... is" (step 2, greedy). The answer is
extracted and compared with the gold answer; every completion becomes a teacher-completion
record with its lineage. Responses go through :class:`ResponseCache` first, so a re-run with
unchanged inputs calls no model, and the model is not even loaded.

Usage: ``cotdistill teacher`` (reads ``data/prepared/train.jsonl``, writes
``data/teacher/completions.jsonl``).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cotdistill import answers, prompts
from cotdistill.generation import Generated
from cotdistill.params import TeacherParams
from cotdistill.records import PreparedExample, TeacherCompletion, Usage
from cotdistill.teacher_cache import ResponseCache, response_key

log = logging.getLogger(__name__)

RATIONALE_STOPS = ["\n\n", "\nQ:"]
ANSWER_STOPS = ["\n\n"]  # answers often open with ":" and a line break


OnBatch = Callable[[dict[int, Generated]], None]


class Backend(Protocol):
    """What the teacher stage needs from a model: completions for a list of prompts.

    ``on_batch`` must be called with each group of finished completions ({prompt index:
    output}) as soon as they exist, so that they are stored before anything else can fail.
    """

    name: str
    model: str

    def complete(
        self, prompts: list[str], *, max_tokens: int, temperature: float, seed: int,
        stop: list[str], on_batch: OnBatch,
    ) -> list[Generated]: ...


class TransformersBackend:
    """A local ``transformers`` model run in-process; loaded on the first cache miss only."""

    name = "transformers"

    def __init__(self, model: str, batch_size: int) -> None:
        self.model = model
        self.batch_size = batch_size
        self._loaded = None

    def complete(
        self, prompts: list[str], *, max_tokens: int, temperature: float, seed: int,
        stop: list[str], on_batch: OnBatch,
    ) -> list[Generated]:
        from cotdistill.generation import generate
        from cotdistill.model_store import load_causal_lm

        if self._loaded is None:
            self._loaded = load_causal_lm(self.model, "teacher.model", for_generation=True)
        model, tokenizer = self._loaded
        return generate(
            model, tokenizer, prompts, max_new_tokens=max_tokens, batch_size=self.batch_size,
            temperature=temperature, seed=seed, stop=stop, on_batch=on_batch, desc="teacher",
        )


@dataclass
class CallStats:
    cached: int = 0
    generated: int = 0


def _cached_complete(
    backend: Backend, cache: ResponseCache, requests: list[tuple[str, int]], stats: CallStats,
    *, max_tokens: int, temperature: float, seed: int, stop: list[str],
) -> list[Generated]:
    """Answer (prompt, sample) requests from the cache, generating only the misses.

    Misses are grouped by sample index and each group is generated with its own seed, so that
    sample s of a question does not depend on how many samples were asked for.
    """
    sampling = {"max_tokens": max_tokens, "temperature": temperature, "seed": seed, "stop": stop}
    keys = [
        response_key(backend=backend.name, model=backend.model, prompt=prompt, sample=sample,
                     **sampling)
        for prompt, sample in requests
    ]
    results: dict[int, Generated] = {}
    missing: dict[int, list[int]] = defaultdict(list)
    for index, key in enumerate(keys):
        hit = cache.get(key)
        if hit is None:
            missing[requests[index][1]].append(index)
        else:
            results[index] = Generated(**hit)
    stats.cached += len(results)
    for sample, indices in sorted(missing.items()):

        def store(batch: dict[int, Generated], indices: list[int] = indices) -> None:
            cache.put_many({keys[indices[i]]: vars(out) for i, out in batch.items()})
            stats.generated += len(batch)

        outputs = backend.complete(
            [requests[i][0] for i in indices], max_tokens=max_tokens, temperature=temperature,
            seed=seed * 7919 + sample, stop=stop, on_batch=store,
        )
        results.update(zip(indices, outputs))
    return [results[i] for i in range(len(requests))]


def run_teacher(
    examples: list[PreparedExample], params: TeacherParams, backend: Backend, cache_path: Path
) -> tuple[list[TeacherCompletion], CallStats]:
    """Two-step zero-shot-CoT with ``params.samples`` samples per question."""
    stats = CallStats()
    cache = ResponseCache(cache_path)
    try:
        pairs = [(ex, s) for ex in examples for s in range(params.samples)]
        rationales = _cached_complete(
            backend, cache, [(prompts.reasoning_prompt(ex.question), s) for ex, s in pairs], stats,
            max_tokens=params.max_rationale_tokens, temperature=params.temperature,
            seed=params.seed, stop=RATIONALE_STOPS,
        )
        answer_requests = [
            (prompts.answer_prompt(ex.question, r.text, ex.answer_type, ex.choices), s)
            for (ex, s), r in zip(pairs, rationales)
        ]
        answer_texts = _cached_complete(
            backend, cache, answer_requests, stats, max_tokens=params.max_answer_tokens,
            temperature=0.0, seed=params.seed, stop=ANSWER_STOPS,
        )
    finally:
        cache.close()
    records = []
    for (example, sample), rationale, answer in zip(pairs, rationales, answer_texts):
        prediction = answers.extract(answer.text, example.answer_type, example.choices)
        records.append(
            TeacherCompletion(
                id=example.id, dataset=example.dataset, sample=sample, backend=backend.name,
                model=backend.model, prompt_id=prompts.PROMPT_ID,
                sampling={"temperature": params.temperature, "seed": params.seed,
                          "max_rationale_tokens": params.max_rationale_tokens,
                          "max_answer_tokens": params.max_answer_tokens},
                rationale=rationale.text.strip(), answer_text=answer.text.strip(),
                prediction=prediction,
                correct=answers.is_correct(prediction, example.answer, example.answer_type),
                usage=Usage(
                    prompt_tokens=rationale.prompt_tokens + answer.prompt_tokens,
                    completion_tokens=rationale.completion_tokens + answer.completion_tokens,
                ),
            )
        )
    return records, stats


def make_backend(params: TeacherParams) -> Backend:
    if params.backend == "transformers":
        return TransformersBackend(params.model, params.batch_size)
    raise ValueError(f"unknown teacher backend {params.backend!r}")
