"""benchmarks/train_throughput.py's model FLOPs utilisation: the FLOPs a trained token costs,
and MFU only where a peak means something (bf16 on a GPU whose peak is known)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from transformers import LlamaConfig

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
sys.path.insert(0, str(REPO / "scripts"))

import render_results as render  # noqa: E402
import train_throughput as bench  # noqa: E402


def test_a_token_costs_six_flops_per_multiplied_weight_plus_attention():
    """The 1b config model, counted by hand: per layer the q and o projections (2048 x 2048),
    k and v (2048 x 512: 8 key-value heads of 64), the gated MLP (3 x 2048 x 8192) and two
    norms; then the final norm and the untied output head. The input embedding is a lookup."""
    config = LlamaConfig(**bench.CONFIG_MODELS["1b"])
    hidden, vocab, layers, length = 2048, 49152, 16, 160
    per_layer = 2 * hidden * hidden + 2 * hidden * 512 + 3 * hidden * 8192 + 2 * hidden
    weights = layers * per_layer + hidden + vocab * hidden
    assert bench.flops_per_token(config, length) == 6 * weights + 12 * layers * hidden * length


def test_a_shared_output_head_counts_the_embedding_once():
    untied = LlamaConfig(**bench.CONFIG_MODELS["135m"])
    tied = LlamaConfig(**bench.CONFIG_MODELS["135m"], tie_word_embeddings=True)
    assert bench.flops_per_token(tied, 160) == bench.flops_per_token(untied, 160)
    assert bench.flops_per_token(tied, 320) - bench.flops_per_token(tied, 160) == \
        12 * 30 * 576 * 160  # attention grows with the sequence, the weights do not


def test_mfu_is_measured_against_the_bf16_peak_of_a_known_gpu_only():
    per_token = 6e9  # a 1B-weight model
    assert bench.mfu(50_000, per_token, "bf16", "NVIDIA H100 80GB HBM3") == \
        pytest.approx(50_000 * 6e9 / 989e12)
    assert bench.mfu(50_000, per_token, "fp32", "NVIDIA H100 80GB HBM3") is None
    assert bench.mfu(500, per_token, "bf16", None) is None  # a CPU
    assert bench.mfu(500, per_token, "bf16", "Some Future GPU") is None


def test_the_rendered_table_has_an_mfu_column_only_for_a_gpu_run():
    run = {"device": {"cpu": "Example CPU", "gpu": None, "torch": "2.13.0"}, "model": "1b",
           "batch_size": 8, "length": 160, "steps": 6,
           "results": {"raw bf16": {"tokens_per_s": 100.0, "precision": "bf16",
                                    "peak_mem_gib": 1.0, "mfu": None}}}
    assert "MFU" not in render.train_throughput(run)
    run["device"]["gpu"] = "NVIDIA H100 80GB HBM3"
    run["results"]["raw bf16"]["mfu"] = 0.412
    run["results"]["raw fp32"] = {"tokens_per_s": 60.0, "precision": "fp32",
                                  "peak_mem_gib": 1.5, "mfu": None}
    table = render.train_throughput(run)
    assert "| raw bf16 | 100.0 | 1.00 | 1.00 | 41.2% |" in table
    assert "| raw fp32 | 60.0 | 1.00 | 1.50 | - |" in table
