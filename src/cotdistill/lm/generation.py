"""Batched text generation with a local ``transformers`` causal LM.

Shared by the local teacher backend and by ``evaluate``. Prompts are sorted by length so that
each batch pads little, and each batch is seeded from (seed, its first prompt's index), so a
sampled output depends on the seed and the data, not on what ran before it in the process.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from tqdm import tqdm

from cotdistill.lm.precision import Precision, autocast
from cotdistill.lm.tokens import token_texts


@dataclass(frozen=True)
class Generated:
    text: str
    prompt_tokens: int
    completion_tokens: int
    top_logprobs: list[dict[str, float]] | None = None  # per generated token: {token: logprob}
    tokens: list[str] | None = None  # with top_logprobs: the generated tokens' texts


def _rng_devices() -> list[int]:
    return [torch.cuda.current_device()] if torch.cuda.is_available() else []


def _cut(text: str, stops: list[str]) -> str:
    for stop in stops:
        position = text.find(stop)
        if position >= 0:
            text = text[:position]
    return text


@torch.inference_mode()
def generate(
    model,
    tokenizer,
    prompts: list[str],
    *,
    max_new_tokens: int,
    batch_size: int,
    temperature: float = 0.0,
    seed: int = 0,
    stop: list[str] | None = None,
    desc: str = "generate",
    on_batch: Callable[[dict[int, Generated]], None] | None = None,
    top_logprobs: int | None = None,
    precision: Precision = "fp32",
) -> list[Generated]:
    """Complete every prompt; greedy when ``temperature`` is 0. Output order = prompt order.

    Works for decoder-only and encoder-decoder models alike. With ``top_logprobs`` = k, each
    output also carries its tokens' texts and, per token, the k likeliest tokens with their
    log-probabilities under the model (before temperature), as an OpenAI server returns them.

    ``on_batch`` receives each finished batch ({prompt index: output}) before the next starts,
    so a caller can store results durably as they arrive. ``precision`` is the forward passes'
    (:mod:`cotdistill.lm.precision`; ``auto``: bf16 where the hardware has it natively).
    """
    stop = stop or []
    model.eval()
    tokenizer.padding_side = "left"
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    results: list[Generated | None] = [None] * len(prompts)
    sampling = temperature > 0
    with tqdm(total=len(prompts), desc=desc, unit="seq", leave=False) as progress:
        for start in range(0, len(order), batch_size):
            indices = order[start : start + batch_size]
            batch = tokenizer([prompts[i] for i in indices], return_tensors="pt", padding=True)
            # the batch's own seed, without touching the caller's random state: validation
            # scoring inside a training run must not change the run's data order or dropout
            with torch.random.fork_rng(devices=_rng_devices()):
                torch.manual_seed(seed * 1_000_003 + indices[0])
                with autocast(precision):
                    output = model.generate(
                        **batch,
                        max_new_tokens=max_new_tokens,
                        do_sample=sampling,
                        temperature=temperature if sampling else None,
                        top_p=None,
                        top_k=None,
                        pad_token_id=tokenizer.pad_token_id,
                        eos_token_id=tokenizer.eos_token_id,
                        stop_strings=stop or None,
                        tokenizer=tokenizer if stop else None,
                        return_dict_in_generate=True,
                        output_logits=bool(top_logprobs),
                    )
            steps = output.logits
            output = output.sequences
            # decoder-only outputs repeat the prompt; encoder-decoder outputs are new text after
            # the decoder's start token
            width = 1 if model.config.is_encoder_decoder else batch["input_ids"].shape[1]
            finished_batch: dict[int, Generated] = {}
            for row, index in enumerate(indices):
                new = output[row, width:]
                finished = (new == tokenizer.pad_token_id) | (new == tokenizer.eos_token_id)
                length = int(finished.int().argmax()) + 1 if finished.any() else len(new)
                text = tokenizer.decode(new, skip_special_tokens=True)
                tokens = top = None
                if top_logprobs:
                    visible = length - 1 if finished.any() else length  # the EOS is not text
                    tokens, top = _top_logprobs(tokenizer, new[:visible], steps, row,
                                                top_logprobs)
                finished_batch[index] = Generated(
                    text=_cut(text, stop),
                    prompt_tokens=int(batch["attention_mask"][row].sum()),
                    completion_tokens=min(length, len(new)),
                    top_logprobs=top, tokens=tokens,
                )
            for index, result in finished_batch.items():
                results[index] = result
            if on_batch is not None:
                on_batch(finished_batch)
            progress.update(len(indices))
    return [result for result in results if result is not None]


def _top_logprobs(tokenizer, ids: torch.Tensor, steps: tuple[torch.Tensor, ...], row: int,
                  k: int) -> tuple[list[str], list[dict[str, float]]]:
    """The tokens' exact texts and, per step, the top-k {token text: log-probability}."""
    texts = token_texts(tokenizer, ids)
    top: list[dict[str, float]] = []
    for step in range(len(texts)):
        values, indices = torch.log_softmax(steps[step][row].float(), dim=-1).topk(k)
        names = token_texts(tokenizer, indices)
        entry: dict[str, float] = {}
        for name, value in zip(names, values.tolist()):
            entry.setdefault(name, value)  # two ids may print alike: the likelier one stays
        top.append(entry)
    return texts, top
