"""Dollars for teacher calls: what a request will cost at most, and a cap that is never crossed.

``teacher.max_usd`` must stop the stage *before* the cap would be crossed, yet requests run
concurrently and their real cost is only known when they return. So each request, just
before it is sent, reserves its worst case (its prompt tokens, counted, plus ``max_tokens``
completion tokens); the reservation becomes the real cost when the response arrives. The sum
of what was spent and what is reserved never exceeds the cap, so the cap holds under any
concurrency. Once a request is refused the budget is closed: the stage stops cleanly rather
than squeezing cheaper requests in, and everything bought so far stays in the cache.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Hashable

from cotdistill.errors import CotdistillError
from cotdistill.params.teacher import Price

log = logging.getLogger(__name__)

# OpenAI's chat format wraps each message: 3 tokens per message, 1 for the role, and 3 that
# prime the reply (the OpenAI cookbook's count for current chat models).
_OPENAI_CHAT_OVERHEAD = 7


def call_usd(price: Price | None, prompt_tokens: int, completion_tokens: int, *,
             batch: bool = False) -> float:
    """A call's dollars at its model's price per million tokens (``teacher.prices``); a model
    without a price (a local one) costs nothing."""
    if price is None:
        return 0.0
    usd = (prompt_tokens * price.prompt + completion_tokens * price.completion) / 1_000_000
    return usd * (1 - price.batch_discount) if batch else usd


def is_openai_model(model: str) -> bool:
    return model.startswith(("gpt-", "o1", "o3", "o4", "text-davinci", "davinci", "babbage",
                             "chatgpt-"))


def _tiktoken_counter(model: str) -> Callable[[str], int]:
    """An OpenAI model's token count of a text (``tiktoken``; o200k_base for a model it does
    not know)."""
    import tiktoken

    try:
        encoding = tiktoken.encoding_for_model(model)
    except KeyError:
        encoding = tiktoken.get_encoding("o200k_base")
    except Exception as exc:  # the encoding file could not be fetched (offline)
        raise CotdistillError(
            f"teacher.model: cannot load tiktoken's encoding for {model!r} ({exc}); "
            "set TIKTOKEN_CACHE_DIR to a directory that holds it"
        ) from None
    return lambda text: len(encoding.encode(text))


def approximate_counter(api: str) -> Callable[[str], int]:
    """OpenAI's rule of thumb, about four characters a token (plus the chat overhead): for an
    estimate when tiktoken's encoding cannot be had offline. Never used to enforce a budget."""
    overhead = _OPENAI_CHAT_OVERHEAD if api == "chat" else 0
    return lambda text: -(-len(text) // 4) + overhead


@functools.cache
def prompt_token_counter(model: str, api: str) -> Callable[[str], int]:
    """Count the prompt tokens a request with this prompt text will be billed for.

    OpenAI models: ``tiktoken``, plus OpenAI's per-message overhead for chat. Other models:
    their own tokenizer, as an OpenAI-compatible server feeds it: the completions API encodes
    the text with the tokenizer's special tokens (a BOS, if it adds one); the chat API renders
    the model's chat template or, for a tokenizer without one, ``user: TEXT\nassistant:``
    (``cotdistill.serve``'s fallback).
    """
    if is_openai_model(model):
        count = _tiktoken_counter(model)
        if api != "chat":
            return count
        return lambda text: count(text) + _OPENAI_CHAT_OVERHEAD
    from transformers import AutoTokenizer

    from cotdistill.lm.store import resolve

    try:
        tokenizer = AutoTokenizer.from_pretrained(resolve(model, "teacher.model"))
    except CotdistillError:
        raise
    except Exception as exc:  # offline and not cached, or not a tokenizer
        raise CotdistillError(
            f"teacher.model: no tokenizer for {model!r} to count tokens with "
            f"({type(exc).__name__}); give a local path or a cached Hugging Face id"
        ) from None
    if api != "chat":
        return lambda text: len(tokenizer(text)["input_ids"])
    if not getattr(tokenizer, "chat_template", None):
        return lambda text: len(tokenizer(f"user: {text}\nassistant:")["input_ids"])

    def count(text: str) -> int:
        rendered = tokenizer.apply_chat_template([{"role": "user", "content": text}],
                                                 add_generation_prompt=True, tokenize=False)
        return len(tokenizer(rendered, add_special_tokens=False)["input_ids"])

    return count


class Budget:
    """Spent + reserved dollars under ``max_usd``; ``None`` as the cap means no cap."""

    def __init__(self, max_usd: float | None, price: Price | None, *, batch: bool,
                 count: Callable[[str], int] | None = None) -> None:
        self.max_usd = max_usd
        self.price = price
        self.batch = batch
        self.spent = 0.0
        self.refused = 0
        self.refusal: str | None = None
        self._count = count
        self._reserved: dict[Hashable, float] = {}

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return call_usd(self.price, prompt_tokens, completion_tokens, batch=self.batch)

    def worst_case(self, prompt: str, max_tokens: int) -> float:
        if self.price is None:
            return 0.0
        if self._count is None:
            raise RuntimeError("Budget.worst_case needs a token counter")
        return self.cost(self._count(prompt), max_tokens)

    def admit(self, token: Hashable, prompt: str, max_tokens: int) -> bool:
        """Reserve the worst-case cost of one request, or refuse (and close) if it would not fit."""
        if self.max_usd is None or self.price is None:
            return True
        if self.refusal is None:
            need = self.worst_case(prompt, max_tokens)
            committed = self.spent + sum(self._reserved.values())
            if committed + need <= self.max_usd:
                self._reserved[token] = need
                return True
            self.refusal = (
                f"teacher.max_usd ${self.max_usd:.4f} reached: ${self.spent:.4f} spent "
                f"and ${committed - self.spent:.4f} in flight, the next request may cost "
                f"up to ${need:.4f}"
            )
            log.warning("%s; sending no more requests", self.refusal)
        self.refused += 1
        return False

    def settle(self, token: Hashable, prompt_tokens: int, completion_tokens: int) -> float:
        """A request came back: its reservation becomes its real cost, which is returned."""
        self._reserved.pop(token, None)
        usd = self.cost(prompt_tokens, completion_tokens)
        self.spent += usd
        return usd

    def release(self, token: Hashable) -> None:
        """A request failed: drop its reservation."""
        self._reserved.pop(token, None)
