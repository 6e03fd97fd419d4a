"""The exact text of single tokens, shared by teacher top-k storage and KD alignment."""

from __future__ import annotations


def token_texts(tokenizer, ids) -> list[str]:
    """Each token's own text, spaces untouched: what teacher and student tokens are matched on
    (the in-process teacher stores these; an OpenAI-compatible server returns the same)."""
    return tokenizer.batch_decode([[int(i)] for i in ids], clean_up_tokenization_spaces=False)
