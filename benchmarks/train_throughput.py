"""Student training throughput: tokens per second and peak memory, plain vs DeepSpeed, with and
without packing.

    python benchmarks/train_throughput.py                       # default student, CPU
    python benchmarks/train_throughput.py --model tiny --steps 20
    python benchmarks/train_throughput.py --config-model 135m   # GPU: a model built from config
    python benchmarks/train_throughput.py --config-model 1b

Each setting runs in its own process (so DeepSpeed state and peak memory do not leak between
them) on the same synthetic Fine-tune-CoT examples. Tokens are the non-padding tokens trained
on; on this noisy 2-core machine compare the ratios, not the absolute figures. On a GPU the
model FLOPs utilisation (MFU) is 6 x parameters x tokens/s over the GPU's peak bf16 FLOPs.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SETTINGS = [("plain", False, False), ("plain+packing", False, True),
            ("deepspeed", True, False), ("deepspeed+packing", True, True)]
PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0}
CONFIG_MODELS = {  # Llama-style models built from a config (no download)
    "135m": dict(hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                 num_attention_heads=9, num_key_value_heads=3, vocab_size=49152),
    "1b": dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16,
               num_attention_heads=32, num_key_value_heads=8, vocab_size=49152),
}


def examples(n: int):
    from cotdistill.datasets.synthetic import coin_flip
    from cotdistill.methods.registry import METHODS
    from cotdistill.records import CuratedExample

    method = METHODS["fine_tune_cot"]
    rows = []
    for i, raw in enumerate(coin_flip(7, n)):
        flips = raw.question.count(" flips the coin.")
        rationale = (f"The coin was flipped {flips} times. An {'even' if flips % 2 == 0 else 'odd'}"
                     " number of flips leaves it " + ("heads up." if raw.answer == "yes" else
                                                       "tails up."))
        rows.append(CuratedExample(id=str(i), dataset="coin_flip", method=method.name, source=None,
                                   input=method.format_input(raw.question),
                                   target=method.format_target(raw.answer, rationale)))
    return rows


def build_config_model(name: str, directory: Path) -> str:
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from cotdistill_testkit.tiny_model import build_tiny_model

    build_tiny_model(directory / "tok")  # a locally trained tokenizer
    tokenizer = AutoTokenizer.from_pretrained(directory / "tok")
    config = LlamaConfig(**{**CONFIG_MODELS[name], "vocab_size": len(tokenizer)},
                         pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                         bos_token_id=tokenizer.bos_token_id)
    LlamaForCausalLM(config).save_pretrained(directory / name)
    tokenizer.save_pretrained(directory / name)
    return str(directory / name)


def run_one(model: str, deepspeed: bool, packing: bool, steps: int, batch_size: int) -> dict:
    import torch

    from cotdistill.params import HParams
    from cotdistill.student.training import train_student

    rows = examples(steps * batch_size)
    hparams = HParams(max_steps=steps, batch_size=batch_size, learning_rate=1e-5,
                      packing=packing, logging_steps=steps)
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    with tempfile.TemporaryDirectory() as out:
        result = train_student(rows, model, "benchmark", hparams, Path(out) / "m",
                               use_deepspeed=deepspeed)
        parameters = count_parameters(Path(out) / "m" / "model.safetensors")
    from transformers import AutoTokenizer

    from cotdistill.lm.store import resolve

    tokenizer = AutoTokenizer.from_pretrained(resolve(model, "--model"))
    tokens = sum(len(tokenizer(r.input + r.target)["input_ids"]) + 1 for r in rows)
    figures = {"tokens_per_s": tokens / result.seconds, "seconds": result.seconds,
               "engine": result.engine, "parameters": parameters}
    if torch.cuda.is_available():
        figures["peak_mem_gib"] = torch.cuda.max_memory_allocated() / 2**30
        name = torch.cuda.get_device_name()
        peak = next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)
        if peak and parameters:
            figures["mfu"] = 6 * parameters * figures["tokens_per_s"] / (peak * 1e12)
    else:
        figures["peak_mem_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    return figures


def count_parameters(path: Path) -> int:
    from math import prod

    from safetensors import safe_open

    with safe_open(str(path), "pt") as handle:
        return sum(prod(handle.get_slice(name).get_shape()) for name in handle.keys())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="builtin:SmolLM2-135M-Instruct",
                        help="a model spec, or 'tiny' for a model built from a config")
    parser.add_argument("--config-model", choices=sorted(CONFIG_MODELS), default=None)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--only", default=None, help=argparse.SUPPRESS)  # child process
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.only:
        deepspeed, packing = (args.only.split(",")[0] == "1", args.only.split(",")[1] == "1")
        print("RESULT " + json.dumps(run_one(args.model, deepspeed, packing, args.steps,
                                             args.batch_size)))
        return
    scratch = Path(tempfile.mkdtemp(prefix="cotdistill-bench-"))
    model = args.model
    if args.config_model:
        model = build_config_model(args.config_model, scratch)
    elif model == "tiny":
        from cotdistill_testkit.tiny_model import build_tiny_model

        model = str(build_tiny_model(scratch / "tiny"))
    results = {}
    for name, deepspeed, packing in SETTINGS:
        started = time.perf_counter()
        child = subprocess.run(
            [sys.executable, __file__, "--model", model, "--steps", str(args.steps),
             "--batch-size", str(args.batch_size), "--only", f"{int(deepspeed)},{int(packing)}"],
            capture_output=True, text=True)
        line = next((l for l in child.stdout.splitlines() if l.startswith("RESULT ")), None)
        if line is None:
            print(f"{name}: failed\n{child.stderr[-2000:]}", file=sys.stderr)
            continue
        results[name] = json.loads(line.removeprefix("RESULT "))
        results[name]["wall_s"] = time.perf_counter() - started
    base = results.get("plain", {}).get("tokens_per_s")
    print(f"model: {args.config_model or args.model}, {args.steps} steps x batch {args.batch_size}")
    print(f"{'setting':<20}{'engine':<18}{'tokens/s':>10}{'vs plain':>10}{'peak GiB':>10}{'MFU':>8}")
    for name, figures in results.items():
        ratio = figures["tokens_per_s"] / base if base else float("nan")
        mfu = f"{100 * figures['mfu']:.1f}%" if "mfu" in figures else "-"
        print(f"{name:<20}{figures['engine']:<18}{figures['tokens_per_s']:>10.1f}{ratio:>10.2f}"
              f"{figures['peak_mem_gib']:>10.2f}{mfu:>8}")


if __name__ == "__main__":
    main()
