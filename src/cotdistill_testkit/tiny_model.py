"""Tiny causal LMs built from a config, with a tokenizer trained locally: for tests and smoke runs.

Nothing is downloaded: a byte-level BPE tokenizer is trained on a small corpus (by default the
project's own generated questions and prompt templates) and a few-layer Llama is initialised
from a seed. The result is an ordinary ``save_pretrained`` directory, usable anywhere a model
path is accepted (``students.<name>.model``, ``teacher.model``).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path


def default_corpus() -> list[str]:
    from cotdistill import prompts
    from cotdistill.datasets.synthetic import coin_flip, last_letter_concatenation

    texts = [e.question + " " + e.answer for e in coin_flip(123, 200)]
    texts += [e.question + " " + e.answer for e in last_letter_concatenation(123, 200)]
    texts += [prompts.REASONING, *prompts.TRIGGERS.values(), " ### --> yes no 0123456789"]
    return texts


def build_tiny_model(
    path: Path | str, *, corpus: Iterable[str] | None = None, vocab_size: int = 512,
    hidden_size: int = 64, layers: int = 2, heads: int = 4, seed: int = 0,
    family: str = "llama",
) -> Path:
    """Write a tiny model and its tokenizer to ``path``; return it.

    ``family``: ``llama`` (decoder-only) or ``t5`` (encoder-decoder).
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import (
        LlamaConfig,
        LlamaForCausalLM,
        PreTrainedTokenizerFast,
        T5Config,
        T5ForConditionalGeneration,
    )

    path = Path(path)
    specials = ["<pad>", "<s>", "</s>"]
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator(list(corpus or default_corpus()), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, pad_token="<pad>", bos_token="<s>", eos_token="</s>"
    )
    torch.manual_seed(seed)
    if family == "t5":
        model = T5ForConditionalGeneration(T5Config(
            vocab_size=len(fast), d_model=hidden_size, d_kv=hidden_size // heads,
            d_ff=hidden_size * 2, num_layers=layers, num_decoder_layers=layers, num_heads=heads,
            pad_token_id=fast.pad_token_id, eos_token_id=fast.eos_token_id,
            decoder_start_token_id=fast.pad_token_id,
        ))
        model.save_pretrained(path)
        fast.save_pretrained(path)
        return path
    config = LlamaConfig(
        vocab_size=len(fast), hidden_size=hidden_size, intermediate_size=hidden_size * 2,
        num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=heads,
        max_position_embeddings=512, pad_token_id=fast.pad_token_id,
        bos_token_id=fast.bos_token_id, eos_token_id=fast.eos_token_id,
        tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(config)
    model.save_pretrained(path)
    fast.save_pretrained(path)
    return path
