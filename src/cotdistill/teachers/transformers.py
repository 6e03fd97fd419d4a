"""The ``transformers`` teacher backend: a local Hugging Face model run in-process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cotdistill.lm.generation import Generated
from cotdistill.params import TeacherParams
from cotdistill.teachers.base import Admit, Completion, Failure, OnBatch, Outcome


class TransformersBackend:
    """A local ``transformers`` model run in-process; loaded on the first cache miss only."""

    name = "transformers"
    batch_priced = False
    asks_model = True
    prompt_api = "completions"  # the prompt is fed to the model as it is

    def __init__(self, model: str, batch_size: int, top_logprobs: int | None = None) -> None:
        self.model = model
        self.batch_size = batch_size
        self.top_logprobs = top_logprobs
        # cache keys stay what they were before other backends existed, unless logprobs are
        # asked for (a response without them would not do)
        self.identity: dict[str, Any] = {"top_logprobs": top_logprobs} if top_logprobs else {}
        self._loaded = None

    @classmethod
    def from_params(cls, params: TeacherParams, cache_path: Path | None) -> TransformersBackend:
        return cls(params.model, params.batch_size, params.top_logprobs)

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
        asked = [i for i in range(len(prompts)) if i not in refused]
        if not asked:
            return [results[i] for i in range(len(prompts))]
        if self._loaded is None:
            self._loaded = load_causal_lm(self.model, "teacher.model", for_generation=True)
        model, tokenizer = self._loaded

        def forward(batch: dict[int, Generated]) -> None:
            done = {asked[i]: Completion(**vars(out)) for i, out in batch.items()}
            results.update(done)
            on_batch(done)

        # each prompt samples from its own seed: diverse reasoning asks one prompt with several
        generate(model, tokenizer, [prompts[i] for i in asked], max_new_tokens=max_tokens,
                 batch_size=self.batch_size, temperature=temperature,
                 seed=[seeds[i] for i in asked], stop=stop, on_batch=forward, desc="teacher",
                 top_logprobs=self.top_logprobs)
        return [results[i] for i in range(len(prompts))]


