"""The teacher engine that every teacher pass shares: cached, budgeted, failure-recording calls.

:func:`cached_complete` answers (prompt, sample) requests from the :class:`ResponseCache` and
asks the backend only for the misses; each outcome is stored the moment the backend hands it
over, so a crash loses nothing bought. ``teacher.max_usd`` is enforced through
:func:`make_budget`. The passes built on it: the zero-shot-CoT two-step pass
(:mod:`cotdistill.teachers.zero_shot_cot`), New-Fine-tune-CoT's few-shot pass
(:mod:`cotdistill.methods.new_fine_tune_cot.fewshot_teacher`) and Socratic CoT's decompositions
(:mod:`cotdistill.methods.socratic.decomposition_teacher`).

A request that fails for good (after the backend's retries) or that ``teacher.max_usd`` does
not allow is not fatal on the spot: everything else still runs and is cached, the failures are
recorded in the cache, and then the pass raises :class:`TeacherIncomplete` without writing
anything, so DVC does not mark the stage done and the next run asks only for what is missing.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from cotdistill import prompts
from cotdistill.errors import CotdistillError
from cotdistill.params import TeacherParams
from cotdistill.records import PreparedExample
from cotdistill.teachers.base import Backend, Completion, Failure, Outcome
from cotdistill.teachers.budget import Budget, prompt_token_counter
from cotdistill.teachers.cache import ResponseCache, response_key
from cotdistill.teachers.leases import POLL_S, Claims

log = logging.getLogger(__name__)

def quiet_http_logs() -> None:
    """The HTTP clients log one line per request otherwise: keep a long run's log readable."""
    for noisy in ("httpx", "httpx2", "openai"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


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
    shared: int = 0  # responses another run sharing the cache bought while this one waited
    restored: int = 0  # responses restored into the cache from the stage's previous output
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
    return Step(params.max_rationale_tokens, params.temperature, params.seed,
                prompts.QA_STOPS)


def answer_step(params: TeacherParams) -> Step:
    return Step(params.max_answer_tokens, 0.0, params.seed, prompts.ANSWER_STEP_STOPS)


def request_key(backend: Backend, prompt: str, sample: int, step: Step) -> str:
    """The cache key: everything that determines the response."""
    return response_key(backend=backend.name, model=backend.model, prompt=prompt, sample=sample,
                        **step.sampling(), **backend.identity)


def sample_seed(seed: int, sample: int) -> int:
    return seed * 7919 + sample


def cached_complete(
    backend: Backend, cache: ResponseCache, requests: list[tuple[str, int]], stats: CallStats,
    *, max_tokens: int, temperature: float, seed: int, stop: list[str],
    budget: Budget | None = None,
) -> list[Outcome]:
    """Answer (prompt, sample) requests from the cache, asking the backend only for the misses.

    Each sample index has its own seed, so that sample s of a question does not depend on how
    many samples were asked for. Identical requests are asked once. A miss is claimed
    (:mod:`cotdistill.teachers.leases`) before it is asked: a key that another run sharing
    the cache is asking for right now is waited for, not bought again. Every outcome is stored
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
    if first:
        with Claims(cache).kept() as claims:
            _ask_claimed(backend, cache, claims, requests, keys, first, by_key, stats, step,
                         budget)
    return [by_key[key] for key in keys]


def _ask_claimed(backend: Backend, cache: ResponseCache, claims: Claims,
                 requests: list[tuple[str, int]], keys: list[str], first: dict[str, int],
                 by_key: dict[str, Outcome], stats: CallStats, step: Step,
                 budget: Budget | None) -> None:
    """Claim the missing keys; ask for the claimed ones; wait for those another run holds,
    taking over any whose owner died or stopped renewing; until every key has an outcome."""
    remaining = list(first)
    asked_for = Counter(keys)  # how many requests each key answers
    told = 0.0
    while remaining:
        claimed, answered, held = claims.claim(remaining)
        for key in answered:  # another run bought it
            by_key[key] = Completion(**cache.get(key))
            stats.cached += asked_for[key]
            stats.shared += 1
        if claimed:
            _ask(backend, cache, [requests[first[key]] for key in claimed], claimed, by_key,
                 stats, step, budget)
        remaining = [key for key in held if key not in by_key]
        if remaining and not claimed:
            now = time.monotonic()
            if now - told >= 30:
                owners = sorted({f"pid {pid} on {host}" for host, pid in held.values()})
                log.info("teacher: waiting for %d response(s) that another run sharing the "
                         "cache is asking for (%s)", len(remaining), ", ".join(owners))
                told = now
            time.sleep(POLL_S)


def _ask(backend: Backend, cache: ResponseCache, asked: list[tuple[str, int]],
         missing: list[str], by_key: dict[str, Outcome], stats: CallStats, step: Step,
         budget: Budget | None) -> None:
    """Ask the backend for ``asked`` (whose keys are ``missing``); store each outcome as it
    arrives."""

    def admit(j: int) -> bool:
        ok = budget is None or budget.admit(missing[j], asked[j][0], step.max_tokens)
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
        [prompt for prompt, _ in asked], seeds=[sample_seed(step.seed, s) for _, s in asked],
        max_tokens=step.max_tokens, temperature=step.temperature, stop=step.stop,
        on_batch=store, admit=admit,
    )
    leftover = {j: out for j, out in enumerate(outputs) if missing[j] not in by_key}
    if leftover:  # a backend that returned without handing everything to on_batch
        store(leftover)


def make_budget(params: TeacherParams, backend: Backend) -> Budget:
    price = params.prices.get(backend.model)
    count = None
    if params.max_usd is not None and price is not None:
        count = prompt_token_counter(backend.model, backend.prompt_api)
    return Budget(params.max_usd, price, batch=backend.batch_priced, count=count)


def incomplete_message(stats: CallStats, budget: Budget, total: int) -> str:
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


def ask_answers(backend: Backend, cache: ResponseCache,
                pairs: Sequence[tuple[PreparedExample, int]], rationales: Sequence[Outcome],
                indices: list[int], stats: CallStats, ans: Step, budget: Budget,
                tasks: prompts.Tasks | None = None) -> dict[int, Outcome]:
    """The second zero-shot-CoT step for the ``indices`` of ``pairs``: each (example, sample)'s
    rationale followed by its dataset's answer trigger, through the cache; outcomes by index."""
    outputs = cached_complete(
        backend, cache,
        [(prompts.answer_prompt(pairs[i][0].question, rationales[i].text,
                                pairs[i][0].answer_type, pairs[i][0].choices,
                                prompts.of(tasks, pairs[i][0].dataset)), pairs[i][1])
         for i in indices],
        stats, max_tokens=ans.max_tokens, temperature=ans.temperature, seed=ans.seed,
        stop=ans.stop, budget=budget,
    )
    return dict(zip(indices, outputs))
