"""Dollars: a price table from params, token counts, and the cost of a call.

Prices are per million tokens, by model name (``teacher.prices`` in ``params.yaml``); a model
without a price costs nothing (a local model). Token counts for estimates come from the
model's own tokenizer where it is a local or Hugging Face model, and from ``tiktoken`` for
OpenAI models.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from cotdistill.errors import CotdistillError
from cotdistill.params.teacher import Price


def call_usd(price: Price | None, prompt_tokens: int, completion_tokens: int, *,
             batch: bool = False) -> float:
    if price is None:
        return 0.0
    usd = (prompt_tokens * price.prompt + completion_tokens * price.completion) / 1_000_000
    return usd * (1 - price.batch_discount) if batch else usd


def _is_openai_model(model: str) -> bool:
    return model.startswith(("gpt-", "o1", "o3", "o4", "text-davinci", "davinci", "babbage",
                             "chatgpt-"))


@functools.cache
def token_counter(model: str) -> Callable[[str], int]:
    """A function counting the tokens of a text as ``model`` would."""
    if _is_openai_model(model):
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
    from transformers import AutoTokenizer

    from cotdistill.lm.store import resolve

    tokenizer = AutoTokenizer.from_pretrained(resolve(model, "teacher.model"))
    return lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"])
