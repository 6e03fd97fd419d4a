"""Batched text generation with a local ``transformers`` model, for text prompts.

Shared by evaluation, validation selection, baselines, ``predict`` and the in-process teacher;
the decoding itself is :func:`cotdistill.lm.decoding.decode`, which the server uses too.
Prompts are sorted by length so that each batch pads little. Each prompt samples from its own
generator, seeded from (seed, its token ids), so a sampled output depends only on the seed and
the prompt: not on the batch size, the order, or what ran before it in the process. The
caller's global random state is never touched, so validation scoring inside a training run
does not change the run's data order or dropout.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tqdm import tqdm

from cotdistill.lm.decoding import Decoded, DecodeRow, decode, row_seed
from cotdistill.lm.precision import Precision
from cotdistill.lm.tokens import token_texts


@dataclass(frozen=True)
class Generated:
    text: str
    prompt_tokens: int
    completion_tokens: int
    top_logprobs: list[dict[str, float]] | None = None  # per generated token: {token: logprob}
    tokens: list[str] | None = None  # with top_logprobs: the generated tokens' texts
    calculated: int = 0  # results the calculator wrote (``calculator`` on)


def generate(
    model,
    tokenizer,
    prompts: list[str],
    *,
    max_new_tokens: int,
    batch_size: int,
    temperature: float = 0.0,
    seed: int | Sequence[int] = 0,
    stop: list[str] | None = None,
    desc: str = "generate",
    on_batch: Callable[[dict[int, Generated]], None] | None = None,
    top_logprobs: int | None = None,
    precision: Precision = "fp32",
    calculator: bool | Sequence[bool] = False,
) -> list[Generated]:
    """Complete every prompt; greedy when ``temperature`` is 0. Output order = prompt order.

    ``seed`` is one seed for all prompts or one per prompt (diverse reasoning asks the same
    prompt with several seeds). With ``top_logprobs`` = k, each output also carries its tokens'
    texts and, per token, the k likeliest tokens with their log-probabilities under the model
    (before temperature), as an OpenAI server returns them.

    ``on_batch`` receives each finished batch ({prompt index: output}) before the next starts,
    so a caller can store results durably as they arrive. ``precision`` is the forward passes'
    (:mod:`cotdistill.lm.precision`; ``auto``: bf16 where the hardware has it natively).
    ``calculator`` (for all prompts or one per prompt): the results of arithmetic written
    before ``=`` come from the calculator (:mod:`cotdistill.lm.calculating`).
    """
    seeds = [seed] * len(prompts) if isinstance(seed, int) else list(seed)
    if len(seeds) != len(prompts):
        raise ValueError(f"{len(seeds)} seeds for {len(prompts)} prompts")
    calculators = [calculator] * len(prompts) if isinstance(calculator, bool) \
        else list(calculator)
    if len(calculators) != len(prompts):
        raise ValueError(f"{len(calculators)} calculator flags for {len(prompts)} prompts")
    model.eval()
    ids = [list(tokenizer(p)["input_ids"]) for p in prompts]
    rows = [DecodeRow(ids=i, temperature=temperature, stop=tuple(stop or ()),
                      seed=row_seed(s, 0, i), top_logprobs=top_logprobs, calculator=c)
            for i, s, c in zip(ids, seeds, calculators)]
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    results: list[Generated | None] = [None] * len(prompts)
    with tqdm(total=len(prompts), desc=desc, unit="seq", leave=False) as progress:
        for start in range(0, len(order), batch_size):
            indices = order[start : start + batch_size]
            outputs = decode(model, tokenizer, [rows[i] for i in indices],
                             max_new_tokens=max_new_tokens, precision=precision)
            finished = {i: _generated(tokenizer, rows[i], out) for i, out in zip(indices, outputs)}
            for index, result in finished.items():
                results[index] = result
            if on_batch is not None:
                on_batch(finished)
            progress.update(len(indices))
    return [result for result in results if result is not None]


def _generated(tokenizer, row: DecodeRow, out: Decoded) -> Generated:
    tokens = top = None
    if out.logprobs is not None:
        tokens = token_texts(tokenizer, out.tokens)
        top = []
        for _, alternatives in out.logprobs:
            names = token_texts(tokenizer, [i for i, _ in alternatives])
            entry: dict[str, float] = {}
            for name, (_, value) in zip(names, alternatives):
                entry.setdefault(name, value)  # two ids may print alike: the likelier one stays
            top.append(entry)
    return Generated(text=out.text, prompt_tokens=len(row.ids), completion_tokens=out.steps,
                     top_logprobs=top, tokens=tokens, calculated=out.calculated)
