"""The one decoding loop: a batch of token-id rows in, one :class:`Decoded` per row out.

Every caller that runs a local model goes through :func:`decode`: evaluation, validation
selection, baselines, ``predict``, the in-process teacher (all via
:func:`cotdistill.lm.generation.generate`) and the OpenAI-compatible server
(:mod:`cotdistill.serve.engine`). It is the place a step inside decoding goes.

Why not plain ``model.generate(do_sample=True)``: it draws every row's token from one global
random stream, so a sampled output would depend on which rows share its batch. Here each row
carries its own seed and ``torch.Generator``, and a ``LogitsProcessor`` picks each row's next
token itself (argmax at temperature 0, a draw from its own generator otherwise) and forces it.
The model still runs batched, with its KV cache, inside ``model.generate``. A row with
``calculator`` set gets the results of its arithmetic from :mod:`cotdistill.lm.calculating`
the same way: the result's tokens are forced, one per step.

Stops are per row and are looked for in the generated text only, never across the end of the
prompt. A batch of a different shape computes the same logits only up to float rounding
(~1e-7), so a token could change only where two candidates tie to that precision.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from cotdistill.lm.calculating import Calculating, number_tail_ids
from cotdistill.lm.precision import Precision

if TYPE_CHECKING:
    import torch

MAX_TOP_LOGPROBS = 20  # the most alternatives a row may ask for; each logprobs step keeps these

FinishReason = Literal["eos", "stop", "length"]
# per step, for all rows: the chosen ids' logprobs, and the top values and ids (or None)
StepLogprobs = tuple["torch.Tensor", "torch.Tensor | None", "torch.Tensor | None"]


@dataclass(frozen=True)
class DecodeRow:
    """One prompt to continue, with its own sampling parameters."""

    ids: list[int]
    temperature: float = 0.0
    stop: tuple[str, ...] = ()
    seed: int = 0  # this row's generator seed (see :func:`row_seed`)
    top_logprobs: int | None = None  # None: no logprobs wanted; k: the k likeliest per token
    calculator: bool = False  # arithmetic before "=" gets its result from the calculator


@dataclass(frozen=True)
class Decoded:
    """What one row produced.

    ``tokens`` are the generated ids up to the finish, a final end-of-sequence token excluded
    (a stop string's tokens included); ``text`` is their text cut before the first stop string.
    ``steps`` counts every generated token, the end-of-sequence token included.
    """

    tokens: list[int]
    text: str
    finish_reason: FinishReason
    steps: int
    # per token of ``tokens``, when asked: (logprob of the chosen id, [(id, logprob)] top-k)
    logprobs: list[tuple[float, list[tuple[int, float]]]] | None = None
    calculated: int = 0  # results the calculator wrote into ``tokens``


def row_seed(seed: int, choice: int, prompt_ids: Sequence[int]) -> int:
    """The generator seed of sample ``choice`` of a prompt, for a caller's ``seed``.

    The prompt is part of it, so that different prompts of one seed do not share random numbers,
    and nothing else is: the sample is the same in any batch, order or process.
    """
    text = f"cotdistill-serve/{seed}/{choice}/{','.join(map(str, prompt_ids))}"
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little") >> 1


def eos_ids(model, tokenizer) -> set[int]:
    """Every id that ends a sequence: the model's generation config's and the tokenizer's."""
    ids: set[int] = set()
    for source in (getattr(model.generation_config, "eos_token_id", None),
                   tokenizer.eos_token_id):
        if isinstance(source, int):
            ids.add(source)
        elif source:
            ids.update(source)
    return ids


def cut_at_stops(text: str, stops: Sequence[str]) -> str:
    """``text`` up to the first occurrence of any stop string."""
    for stop in stops:
        position = text.find(stop)
        if position >= 0:
            text = text[:position]
    return text


def decode(
    model,
    tokenizer,
    rows: list[DecodeRow],
    *,
    max_new_tokens: int,
    precision: Precision = "fp32",
    unwanted: Callable[[int], bool] | None = None,
    decode_text: Callable[[list[int]], str] | None = None,
) -> list[Decoded]:
    """Continue every row in one left-padded batch; rows do not influence each other.

    ``unwanted(r)`` true: row r is no longer wanted (its client left); it stops at its next
    token with reason "length", and the call ends as soon as every row has finished.
    ``decode_text`` turns ids into text (default: the tokenizer, special tokens skipped); the
    server passes its thread-safe one. Works for decoder-only and encoder-decoder models.
    """
    import torch
    from transformers import LogitsProcessorList, StoppingCriteriaList

    from cotdistill.lm.precision import autocast

    if not rows:
        return []
    ends = eos_ids(model, tokenizer)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(ends)
    input_ids, attention = _left_padded(rows, pad_id)
    # generated ids start after the prompt (decoder-only) or after the decoder's start token
    offset = 1 if model.config.is_encoder_decoder else input_ids.shape[1]
    text_of = decode_text or (lambda ids: tokenizer.decode(ids, skip_special_tokens=True))
    batch = _Batch(rows, ends, offset, unwanted, text_of)
    if any(row.calculator for row in rows):
        batch.calculating = Calculating(
            [r for r, row in enumerate(rows) if row.calculator], text_of=text_of,
            encode=lambda text: tokenizer(text, add_special_tokens=False)["input_ids"],
            number_tails=number_tail_ids(tokenizer))
    pick, finish = _hooks(batch)
    with torch.inference_mode(), autocast(precision):
        model.generate(
            input_ids=input_ids, attention_mask=attention, max_new_tokens=max_new_tokens,
            do_sample=False, temperature=None, top_p=None, top_k=None,
            pad_token_id=pad_id, eos_token_id=sorted(ends),
            logits_processor=LogitsProcessorList([pick]),
            stopping_criteria=StoppingCriteriaList([finish]),
        )
    return [batch.result(r) for r in range(len(rows))]


def _left_padded(rows: list[DecodeRow], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The rows' ids, padded on the left to one width, and their attention mask."""
    import torch

    width = max(len(row.ids) for row in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(rows), width), dtype=torch.long)
    for r, row in enumerate(rows):
        input_ids[r, width - len(row.ids):] = torch.tensor(row.ids, dtype=torch.long)
        attention[r, width - len(row.ids):] = 1
    return input_ids, attention


class _Batch:
    """One decode call's state: what each row chose at each step, and where each finished.

    :meth:`choose` runs once per step with the step's logits, :meth:`check` after it with the
    sequences so far; :meth:`result` reads one row's output afterwards.
    """

    def __init__(self, rows: list[DecodeRow], ends: set[int], offset: int,
                 unwanted: Callable[[int], bool] | None,
                 text_of: Callable[[list[int]], str]) -> None:
        import torch

        self.rows, self.ends, self.offset, self.unwanted, self.text_of = \
            rows, ends, offset, unwanted, text_of
        self.generators = {r: torch.Generator().manual_seed(row.seed)
                           for r, row in enumerate(rows) if row.temperature > 0}
        self.want_top = max((row.top_logprobs or 0) for row in rows)
        self.want_logprobs = any(row.top_logprobs is not None for row in rows)
        self.longest_stop = max((len(s) for row in rows for s in row.stop), default=0)
        self.chosen: list[torch.Tensor] = []  # per step: the id each row took
        self.logprobs: list[StepLogprobs] = []
        self.finish: list[tuple[int, FinishReason] | None] = [None] * len(rows)
        self.calculating: Calculating | None = None

    def choose(self, scores: torch.Tensor) -> torch.Tensor:
        """Each row's next id: the argmax, or a draw from the row's own generator."""
        import torch

        scores = scores.float()
        if self.calculating is not None:
            scores = scores.clone()
            self.calculating.steer(scores)
        chosen = scores.argmax(dim=-1)
        for r, generator in self.generators.items():
            probs = torch.softmax(scores[r] / self.rows[r].temperature, dim=-1)
            chosen[r] = torch.multinomial(probs, 1, generator=generator)[0]
        if self.calculating is not None:
            self.calculating.take(chosen, self._history, lambda r: self.finish[r] is not None)
        self.chosen.append(chosen)
        if self.want_logprobs:
            logp = torch.log_softmax(scores, dim=-1)
            picked = logp.gather(1, chosen[:, None])[:, 0]
            top = logp.topk(min(MAX_TOP_LOGPROBS, logp.shape[1]), dim=-1) \
                if self.want_top else None
            self.logprobs.append((picked, top.values if top else None,
                                  top.indices if top else None))
        return chosen

    def _history(self, r: int) -> list[int]:
        return [int(step[r]) for step in self.chosen]

    def check(self, ids: torch.Tensor) -> list[bool]:
        """Per row, finished: at an end-of-sequence token, a stop string, or once unwanted."""
        generated = ids.shape[1] - self.offset
        for r, row in enumerate(self.rows):
            if self.finish[r] is not None:
                continue
            if self.unwanted is not None and self.unwanted(r):
                self.finish[r] = (generated, "length")
            elif int(ids[r, -1]) in self.ends:
                self.finish[r] = (generated, "eos")
            elif row.stop:
                tail = self.text_of(ids[r, self.offset:][-(self.longest_stop + 16):].tolist())
                if any(stop in tail for stop in row.stop):
                    self.finish[r] = (generated, "stop")
        return [f is not None for f in self.finish]

    def result(self, r: int) -> Decoded:
        row = self.rows[r]
        steps, reason = self.finish[r] or (len(self.chosen), "length")
        tokens = [int(self.chosen[t][r]) for t in range(steps)]
        if reason == "eos":
            tokens = tokens[:-1]
        logprobs = None
        if row.top_logprobs is not None:
            k = row.top_logprobs
            logprobs = []
            for t in range(len(tokens)):
                picked, values, indices = self.logprobs[t]
                top = [] if k == 0 or values is None or indices is None else \
                    list(zip(indices[r, :k].tolist(), values[r, :k].tolist()))
                logprobs.append((float(picked[r]), top))
        calculated = self.calculating.written.get(r, 0) if self.calculating else 0
        return Decoded(tokens=tokens, text=cut_at_stops(self.text_of(tokens), row.stop),
                       finish_reason=reason, steps=steps, logprobs=logprobs,
                       calculated=calculated)


def _hooks(batch: _Batch):
    """The ``LogitsProcessor`` that forces each row's chosen id, and the ``StoppingCriteria``
    that ends each row, both driven by ``batch``."""
    import torch
    from transformers import LogitsProcessor, StoppingCriteria

    class Pick(LogitsProcessor):
        def __call__(self, ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
            chosen = batch.choose(scores)
            forced = torch.full_like(scores, float("-inf"))
            forced[torch.arange(len(chosen)), chosen] = 0.0
            return forced

    class Finish(StoppingCriteria):
        def __call__(self, ids: torch.Tensor, scores: torch.Tensor, **kwargs) -> torch.Tensor:
            return torch.tensor(batch.check(ids), dtype=torch.bool)

    return Pick(), Finish()
