"""Precision: ``auto`` is bf16 exactly where torch reports native bf16, and generation runs
its forward passes under bf16 autocast only when asked."""

from __future__ import annotations

import pytest
import torch


@pytest.mark.parametrize("asked, native, expected", [
    ("auto", True, "bf16"), ("auto", False, "fp32"), ("fp32", True, "fp32"),
    ("bf16", False, "bf16"),
])
def test_auto_precision_is_bf16_exactly_where_the_hardware_has_it(monkeypatch, asked, native,
                                                                   expected):
    from cotdistill.lm import precision

    monkeypatch.setattr(precision, "native_bf16", lambda: native)
    assert precision.resolve(asked) == expected


def test_generation_runs_its_forward_passes_in_bf16_only_when_asked(tiny_model):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from cotdistill.lm.generation import generate

    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    seen: list[bool] = []
    model.register_forward_hook(lambda *_: seen.append(torch.is_autocast_enabled("cpu")))
    for precision in ("fp32", "bf16"):
        seen.clear()
        outputs = generate(model, tokenizer, ["A coin is heads up. ###"], max_new_tokens=3,
                           batch_size=1, precision=precision)
        assert len(outputs) == 1 and seen and all(seen) == (precision == "bf16")
