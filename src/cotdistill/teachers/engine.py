"""The ``teacher`` stage: Fine-tune-CoT's two-step zero-shot-CoT with diverse reasoning.

For every training question the teacher writes D rationales at temperature T (step 1), then
answers after the trigger "Therefore, the answer ... is" (step 2, greedy). The answer is
extracted and compared with the gold answer; every completion becomes a teacher-completion
record with its lineage. Responses go through :class:`ResponseCache` first, so a re-run with
unchanged inputs calls no model, and the model is not even loaded.

A request that fails for good (after the backend's retries) or that ``teacher.max_usd`` does
not allow is not fatal on the spot: everything else still runs and is cached, the failures are
recorded in the cache, and then the stage raises :class:`TeacherIncomplete` without writing
any completions, so DVC does not mark the stage done and the next run asks only for what is
still missing.

Usage: ``cotdistill teacher`` (reads ``data/prepared/train.jsonl``, writes
``data/teacher/completions.jsonl``); ``cotdistill estimate`` prices a run before it is made.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol, Union

from cotdistill import answers, prompts
from cotdistill.errors import CotdistillError
from cotdistill.lm.generation import Generated
from cotdistill.params import TeacherParams
from cotdistill.records import PreparedExample, TeacherCompletion, Usage
from cotdistill.teachers.budget import Budget, prompt_token_counter
from cotdistill.teachers.cache import ResponseCache, response_key

log = logging.getLogger(__name__)

RATIONALE_STOPS = ["\n\n", "\nQ:"]
ANSWER_STOPS = ["\n\n"]  # answers often open with ":" and a line break


@dataclass(frozen=True)
class Completion(Generated):
    """One generated text with its usage; ``usd`` is what the call cost when it was bought."""

    usd: float = 0.0


@dataclass(frozen=True)
class Failure:
    """A request that got no usable response. ``message`` never holds the API key."""

    error: str  # short kind: "429 RateLimitError", "timeout", "connection", "budget", ...
    message: str = ""
    attempts: int = 0


Outcome = Union[Completion, Failure]
OnBatch = Callable[[dict[int, Outcome]], None]
Admit = Callable[[int], bool]


class Backend(Protocol):
    """What the teacher stage needs from a model: completions for a list of prompts.

    ``seeds[i]`` is prompt i's sampling seed. ``admit(i)`` must be called just before prompt i
    is sent (it reserves the request's worst-case cost; False means do not send it and return
    a ``Failure("budget")``). ``on_batch`` must be called with each group of finished outcomes
    ({prompt index: outcome}) as soon as they exist, so that they are stored before anything
    else can fail. A failed request is returned as a :class:`Failure`, never raised.
    ``identity`` holds what else determines a response (base URL, API...) for the cache key.
    """

    name: str
    model: str
    identity: dict[str, Any]
    batch_priced: bool

    def complete(
        self, prompts: list[str], *, seeds: list[int], max_tokens: int, temperature: float,
        stop: list[str], on_batch: OnBatch, admit: Admit,
    ) -> list[Outcome]: ...


class TransformersBackend:
    """A local ``transformers`` model run in-process; loaded on the first cache miss only."""

    name = "transformers"
    batch_priced = False

    def __init__(self, model: str, batch_size: int, top_logprobs: int | None = None) -> None:
        self.model = model
        self.batch_size = batch_size
        self.top_logprobs = top_logprobs
        # cache keys stay what they were before other backends existed, unless logprobs are
        # asked for (a response without them would not do)
        self.identity: dict[str, Any] = {"top_logprobs": top_logprobs} if top_logprobs else {}
        self._loaded = None

    def complete(
        self, prompts: list[str], *, seeds: list[int], max_tokens: int, temperature: float,
        stop: list[str], on_batch: OnBatch, admit: Admit = lambda i: True,
    ) -> list[Outcome]:
        from cotdistill.lm.generation import generate
        from cotdistill.lm.store import load_causal_lm

        results: dict[int, Outcome] = {}
        refused = {i: Failure("budget") for i in range(len(prompts)) if not admit(i)}
        if refused:
            results.update(refused)
            on_batch(refused)
        groups: dict[int, list[int]] = defaultdict(list)  # one seed per group, as before
        for index, seed in enumerate(seeds):
            if index not in refused:
                groups[seed].append(index)
        for seed, indices in groups.items():
            if self._loaded is None:
                self._loaded = load_causal_lm(self.model, "teacher.model", for_generation=True)
            model, tokenizer = self._loaded

            def forward(batch: dict[int, Generated], indices: list[int] = indices) -> None:
                done = {indices[i]: Completion(**vars(out)) for i, out in batch.items()}
                results.update(done)
                on_batch(done)

            generate(model, tokenizer, [prompts[i] for i in indices], max_new_tokens=max_tokens,
                     batch_size=self.batch_size, temperature=temperature, seed=seed, stop=stop,
                     on_batch=forward, desc="teacher", top_logprobs=self.top_logprobs)
        return [results[i] for i in range(len(prompts))]


@dataclass
class CallStats:
    cached: int = 0
    generated: int = 0
    usd: float = 0.0  # spent in this run (cache hits cost nothing)
    prompt_tokens: int = 0  # bought in this run
    completion_tokens: int = 0
    failures: Counter[str] = field(default_factory=Counter)  # error kind -> count
    examples: dict[str, str] = field(default_factory=dict)  # error kind -> one message
    not_sent: int = 0  # refused by teacher.max_usd
    # per step ("rationale", "answer"): calls, prompt_tokens, completion_tokens, usd bought
    steps: dict[str, dict[str, float]] = field(default_factory=dict)

    def mark(self, step: str, before: dict[str, float]) -> None:
        """Record what was bought since ``before`` (a :meth:`totals` snapshot) as ``step``."""
        now = self.totals()
        self.steps[step] = {name: now[name] - before[name] for name in now}

    def totals(self) -> dict[str, float]:
        return {"calls": self.generated, "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens, "usd": self.usd}

    @property
    def failed(self) -> int:
        return sum(self.failures.values())


class TeacherIncomplete(CotdistillError):
    """Some requests failed or were not sent; everything bought is cached, nothing written."""

    def __init__(self, message: str, stats: CallStats) -> None:
        super().__init__(message)
        self.stats = stats


@dataclass(frozen=True)
class Step:
    """The sampling settings of one of the two calls."""

    max_tokens: int
    temperature: float
    seed: int
    stop: list[str]

    def sampling(self) -> dict[str, Any]:
        return {"max_tokens": self.max_tokens, "temperature": self.temperature,
                "seed": self.seed, "stop": self.stop}


def rationale_step(params: TeacherParams) -> Step:
    return Step(params.max_rationale_tokens, params.temperature, params.seed, RATIONALE_STOPS)


def answer_step(params: TeacherParams) -> Step:
    return Step(params.max_answer_tokens, 0.0, params.seed, ANSWER_STOPS)


def request_key(backend: Backend, prompt: str, sample: int, step: Step) -> str:
    """The cache key: everything that determines the response."""
    return response_key(backend=backend.name, model=backend.model, prompt=prompt, sample=sample,
                        **step.sampling(), **backend.identity)


def _sample_seed(seed: int, sample: int) -> int:
    return seed * 7919 + sample


def _cached_complete(
    backend: Backend, cache: ResponseCache, requests: list[tuple[str, int]], stats: CallStats,
    *, max_tokens: int, temperature: float, seed: int, stop: list[str],
    budget: Budget | None = None,
) -> list[Outcome]:
    """Answer (prompt, sample) requests from the cache, asking the backend only for the misses.

    Each sample index has its own seed, so that sample s of a question does not depend on how
    many samples were asked for. Identical requests are asked once. Every outcome is stored
    the moment the backend hands it over: responses as cache entries (with their dollars),
    failures in the failures table; a failure is never served as a hit.
    """
    step = Step(max_tokens, temperature, seed, stop)
    keys = [request_key(backend, prompt, sample, step) for prompt, sample in requests]
    by_key: dict[str, Outcome] = {}
    first: dict[str, int] = {}  # missing key -> the first request that asks for it
    for index, key in enumerate(keys):
        if key in by_key or key in first:
            continue
        hit = cache.get(key)
        if hit is None:
            first[key] = index
        else:
            by_key[key] = Completion(**hit)
    stats.cached += sum(1 for key in keys if key in by_key)
    missing = list(first)
    if missing:
        asked = [requests[first[key]] for key in missing]

        def admit(j: int) -> bool:
            ok = budget is None or budget.admit(missing[j], asked[j][0], max_tokens)
            if not ok:
                stats.not_sent += 1
            return ok

        def store(batch: dict[int, Outcome]) -> None:
            bought: dict[str, dict] = {}
            failed: dict[str, dict] = {}
            for j, out in batch.items():
                key = missing[j]
                if key in by_key:
                    continue
                if isinstance(out, Failure):
                    if budget is not None:
                        budget.release(key)
                    if out.error != "budget":  # a refused request was never tried
                        failed[key] = vars(out)
                        stats.failures[out.error] += 1
                        stats.examples.setdefault(out.error, out.message)
                else:
                    usd = (budget.settle(key, out.prompt_tokens, out.completion_tokens)
                           if budget is not None else 0.0)
                    out = replace(out, usd=usd)
                    bought[key] = vars(out)
                    stats.generated += 1
                    stats.usd += usd
                    stats.prompt_tokens += out.prompt_tokens
                    stats.completion_tokens += out.completion_tokens
                by_key[key] = out
            if bought:
                cache.put_many(bought)
            if failed:
                cache.put_failures(failed)

        outputs = backend.complete(
            [prompt for prompt, _ in asked], seeds=[_sample_seed(seed, s) for _, s in asked],
            max_tokens=max_tokens, temperature=temperature, stop=stop, on_batch=store,
            admit=admit,
        )
        leftover = {j: out for j, out in enumerate(outputs) if missing[j] not in by_key}
        if leftover:  # a backend that returned without handing everything to on_batch
            store(leftover)
    return [by_key[key] for key in keys]


def make_budget(params: TeacherParams, backend: Backend) -> Budget:
    price = params.prices.get(backend.model)
    count = None
    if params.max_usd is not None and price is not None:
        count = prompt_token_counter(backend.model, params.api if params.backend != "transformers"
                                     else "completions")
    return Budget(params.max_usd, price, batch=backend.batch_priced, count=count)


def _incomplete_message(stats: CallStats, budget: Budget, total: int) -> str:
    parts = []
    if stats.failed:
        kinds = "; ".join(f"{n} x {kind} ({stats.examples[kind][:200]})"
                          for kind, n in stats.failures.most_common())
        parts.append(f"{stats.failed} request(s) failed after retries: {kinds}")
    if stats.not_sent:
        parts.append(f"{stats.not_sent} request(s) not sent: {budget.refusal}")
    return (
        f"teacher: incomplete: {'; '.join(parts)}. {stats.generated} response(s) bought this run "
        f"(${stats.usd:.4f}) and {stats.cached} cached are kept in the cache; no completions "
        f"were written ({total} question-samples); re-run to ask only for what is missing"
    )


def ask_answers(backend, cache, pairs, rationales, indices: list[int], stats, ans, budget
                ) -> dict[int, Outcome]:
    """The second zero-shot-CoT step for the ``indices`` of ``pairs``: each (example, sample)'s
    rationale followed by its answer trigger, through the cache; outcomes by index."""
    outputs = _cached_complete(
        backend, cache,
        [(prompts.answer_prompt(pairs[i][0].question, rationales[i].text,
                                pairs[i][0].answer_type, pairs[i][0].choices), pairs[i][1])
         for i in indices],
        stats, max_tokens=ans.max_tokens, temperature=ans.temperature, seed=ans.seed,
        stop=ans.stop, budget=budget,
    )
    return dict(zip(indices, outputs))


def run_teacher(
    examples: list[PreparedExample], params: TeacherParams, backend: Backend, cache_path: Path
) -> tuple[list[TeacherCompletion], CallStats]:
    """Two-step zero-shot-CoT with ``params.samples`` samples per question.

    Raises :class:`TeacherIncomplete` (after storing everything that came back) when any
    request failed or was refused by ``teacher.max_usd``.
    """
    stats = CallStats()
    budget = make_budget(params, backend)
    cache = ResponseCache(cache_path)
    try:
        pairs = [(ex, s) for ex in examples for s in range(params.samples)]
        rs, ans = rationale_step(params), answer_step(params)
        before = stats.totals()
        rationales = _cached_complete(
            backend, cache, [(prompts.reasoning_prompt(ex.question), s) for ex, s in pairs], stats,
            max_tokens=rs.max_tokens, temperature=rs.temperature, seed=rs.seed, stop=rs.stop,
            budget=budget,
        )
        stats.mark("rationale", before)
        before = stats.totals()
        answered = [i for i, r in enumerate(rationales) if isinstance(r, Completion)]
        answer_texts = ask_answers(backend, cache, pairs, rationales, answered, stats, ans,
                                   budget)
        stats.mark("answer", before)
    finally:
        cache.close()
    if stats.failed or stats.not_sent or len(answer_texts) < len(pairs):
        raise TeacherIncomplete(_incomplete_message(stats, budget, len(pairs)), stats)
    records = []
    for index, ((example, sample), rationale) in enumerate(zip(pairs, rationales)):
        answer = answer_texts[index]
        assert isinstance(rationale, Completion) and isinstance(answer, Completion)
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
                    calls=2,
                    prompt_tokens=rationale.prompt_tokens + answer.prompt_tokens,
                    completion_tokens=rationale.completion_tokens + answer.completion_tokens,
                    usd=round(rationale.usd + answer.usd, 10),
                ),
                top_logprobs=rationale.top_logprobs, tokens=rationale.tokens,
            )
        )
    return records, stats


def make_backend(params: TeacherParams, cache_path: Path | None = None) -> Backend:
    """The backend ``teacher.backend`` names; the Batch API one keeps its jobs in the cache."""
    if params.backend == "transformers":
        return TransformersBackend(params.model, params.batch_size, params.top_logprobs)
    if params.backend == "openai":
        from cotdistill.teachers.openai import OpenAIBackend

        return OpenAIBackend(params)
    if params.backend == "openai_batch":
        from cotdistill.teachers.openai_batch import OpenAIBatchBackend

        if cache_path is None:
            raise ValueError("the openai_batch backend needs the cache path")
        return OpenAIBatchBackend(params, cache_path)
    raise ValueError(f"unknown teacher backend {params.backend!r}")
