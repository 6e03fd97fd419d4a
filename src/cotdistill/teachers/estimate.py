"""What a teacher run will cost, computed before anything is spent (``cotdistill estimate``).

Counts the calls the ``teacher`` stage would make with the current params, their prompt
tokens (the model's own tokenizer, or ``tiktoken`` for OpenAI models, counted the way the
backend's API bills them) and completion tokens at their maximum (``max_tokens``: the worst
case, and exactly what is spent when completions run to their limit), and prices them with
``teacher.prices``. Requests already in the cache are counted apart: they cost nothing.

Step 2's prompt holds step 1's rationale. Where that rationale is cached its answer prompt is
counted exactly; where it is not, the rationale is counted as ``max_rationale_tokens`` tokens
appended to the prompt, so that figure is an estimate (BPE merges across the join can move it
by a token or two).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from cotdistill import prompts
from cotdistill.errors import CotdistillError
from cotdistill.params import TeacherParams
from cotdistill.records import PreparedExample
from cotdistill.teachers.base import Backend
from cotdistill.teachers.budget import (Budget, approximate_counter, is_openai_model,
                                       prompt_token_counter)
from cotdistill.teachers.cache import ResponseCache
from cotdistill.teachers.engine import Step, answer_step, rationale_step, request_key


@dataclass
class StepEstimate:
    step: str
    calls: int = 0  # requests that would be sent
    cached: int = 0  # requests answered by the cache (free)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    usd: float = 0.0

    def add(self, other: StepEstimate) -> None:
        for name in ("calls", "cached", "prompt_tokens", "completion_tokens", "usd"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class Estimate:
    backend: str
    model: str
    priced: bool  # False: no price for the model in teacher.prices (it costs nothing)
    steps: list[StepEstimate]
    note: str | None = None  # said with the figures: no model called, or approximate tokens

    @property
    def total(self) -> StepEstimate:
        total = StepEstimate("total")
        for step in self.steps:
            total.add(step)
        return total

    def as_dict(self) -> dict:
        return {"backend": self.backend, "model": self.model, "priced": self.priced,
                "steps": [asdict(s) for s in self.steps], "total": asdict(self.total),
                "note": self.note}

    def lines(self) -> list[str]:
        head = f"{'step':<10} {'calls':>8} {'cached':>8} {'prompt tok':>12} " \
               f"{'compl. tok':>12} {'usd':>12}"
        rows = [f"{s.step:<10} {s.calls:>8} {s.cached:>8} {s.prompt_tokens:>12} "
                f"{s.completion_tokens:>12} {s.usd:>12.4f}" for s in [*self.steps, self.total]]
        note = "" if self.priced else f" (no price for {self.model!r} in teacher.prices: $0)"
        return [f"teacher estimate: backend {self.backend}, model {self.model}{note}", head,
                *rows, "completion tokens at max_tokens; cached calls cost nothing",
                *([self.note] if self.note else [])]


def estimate(examples: list[PreparedExample], params: TeacherParams, backend: Backend,
             cache_path: Path, tasks: prompts.Tasks | None = None) -> Estimate:
    """The calls, tokens and dollars ``run_teacher`` would spend now; nothing is sent."""
    if not backend.asks_model:
        return nothing_to_pay(backend)
    note = None
    try:
        count = prompt_token_counter(params.model, backend.prompt_api)
    except CotdistillError as exc:
        if not is_openai_model(params.model):
            raise
        count = approximate_counter(backend.prompt_api)
        note = (f"APPROXIMATE prompt tokens (about 4 characters a token): {exc}. Completion "
                "tokens and the number of calls are exact")
    price = params.prices.get(params.model)
    budget = Budget(None, price, batch=backend.batch_priced, count=count)
    pairs = [(ex, s) for ex in examples for s in range(params.samples)]
    rs, ans = rationale_step(params), answer_step(params)
    first, second = StepEstimate("rationale"), StepEstimate("answer")
    seen: set[str] = set()
    cache = ResponseCache(cache_path, read_only=True) if Path(cache_path).exists() else None
    try:

        def tally(out: StepEstimate, prompt: str, sample: int, step: Step,
                  extra_tokens: int = 0) -> dict | None:
            key = request_key(backend, prompt, sample, step)
            hit = cache.get(key) if cache is not None else None
            if key in seen:
                return hit
            seen.add(key)
            if hit is not None:
                out.cached += 1
                return hit
            tokens = count(prompt) + extra_tokens
            out.calls += 1
            out.prompt_tokens += tokens
            out.completion_tokens += step.max_tokens
            out.usd += budget.cost(tokens, step.max_tokens)
            return None

        for example, sample in pairs:
            task = prompts.of(tasks, example.dataset)
            rationale = tally(first, prompts.reasoning_prompt(example.question, task), sample,
                              rs)
            text = rationale["text"] if rationale is not None else ""
            prompt = prompts.answer_prompt(example.question, text, example.answer_type,
                                           example.choices, task)
            extra = 0 if rationale is not None else params.max_rationale_tokens
            tally(second, prompt, sample, ans, extra)
    finally:
        if cache is not None:
            cache.close()
    return Estimate(params.backend, params.model, price is not None, [first, second], note)


def nothing_to_pay(backend: Backend) -> Estimate:
    """A backend that calls no model (replay) costs nothing: zero calls, said in words."""
    return Estimate(backend.name, str(getattr(backend, "model", "-")), True,
                    [StepEstimate("rationale"), StepEstimate("answer")],
                    f"teacher.backend is {backend.name}: it reads published completions and "
                    "calls no model, so nothing is spent")
