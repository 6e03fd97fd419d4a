"""Shared fixtures: everything offline, tiny models built from a config."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("DISABLE_MLFLOW_INTEGRATION", "TRUE")



@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A 2-layer Llama with a locally trained BPE tokenizer (~100k parameters)."""
    from cotdistill_testkit.tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="session")
def arithmetic_student(tiny_model):
    """(model, tokenizer): the tiny model after real optimizer steps on TAUGHT_ARITHMETIC's
    rationales, whose sums are wrong, until it writes them back exactly."""
    import torch
    from support.arithmetic import TAUGHT_ARITHMETIC
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    torch.manual_seed(0)
    texts = [p + t + tokenizer.eos_token for p, t in TAUGHT_ARITHMETIC.items()]
    batch = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    for row, prompt in enumerate(TAUGHT_ARITHMETIC):  # only the rationale is learnt
        labels[row, :len(tokenizer(prompt, add_special_tokens=False)["input_ids"])] = -100
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(300):
        loss = model(**batch, labels=labels).loss
        if loss.item() < 0.01:
            break
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    assert loss.item() < 0.01
    return model, tokenizer
