"""Student training throughput: the pipeline's Trainer path against a raw PyTorch step, in fp32
and bf16, with the settings before and after issue 20, side by side in one run.

    python benchmarks/train_throughput.py                       # SmolLM2-135M on this CPU
    python benchmarks/train_throughput.py --model tiny --steps 6   # a smoke run
    python benchmarks/train_throughput.py --config-model 135m   # GPU: a model built from config
    python benchmarks/train_throughput.py --deepspeed           # also the DeepSpeed path

Every setting trains the same examples, each exactly ``--length`` tokens (no padding, so
packing cannot hide or add work), in batches of ``--batch-size``, in a process of its own (so
kernels, caches and peak memory do not leak between settings). A step's time is the wall time
from the end of the previous step to the end of this one, data loading included; the first
``--warmup`` steps (oneDNN builds its bf16 kernels on the first) are left out of every figure.

- ``raw``: a hand-written loop: forward with the model's own loss, backward, AdamW
  (``torch.optim.AdamW``, foreach), zero_grad: the ceiling for this model and batch.
- ``pipeline (before)``: :func:`cotdistill.student.training.train_student` with the settings
  the pipeline used before: fp32 whatever the CPU, and each batch packed into one row (the old
  ``packing: auto``); also packed in bf16, to show what packing alone costs.
- ``pipeline``: the same function with this version's defaults (``precision: auto`` at each
  precision; ``packing: auto``, which now pads batches grouped by length unless the attention
  is FlashAttention's). Both keep the Trainer's fused AdamW and gradient clipping (about 6%).

The script prints the CPU model, torch's CPU capability and whether it reports native bf16, and
ratios against the raw step of the same precision. Compare ratios on a shared CPU; absolute
tokens/s only mean something on a quiet machine or a GPU.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hardware import describe, label  # noqa: E402

# dense bf16 tensor-core peaks (TFLOP/s) from the vendors' datasheets (SXM parts); a GPU whose
# name holds none of these keys gets no MFU rather than a guessed one
PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0}
CONFIG_MODELS = {  # Llama-style models built from a config (no download)
    "135m": dict(hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                 num_attention_heads=9, num_key_value_heads=3, vocab_size=49152),
    "1b": dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16,
               num_attention_heads=32, num_key_value_heads=8, vocab_size=49152),
}
# name -> (kind, precision, pipeline settings); "before" is the pipeline as it ran before
SETTINGS = {
    "raw fp32": ("raw", "fp32", {}),
    "raw bf16": ("raw", "bf16", {}),
    "pipeline (before) fp32": ("pipeline", "fp32", {"packing": True}),
    "pipeline (before, packed) bf16": ("pipeline", "bf16", {"packing": True}),
    "pipeline fp32": ("pipeline", "fp32", {}),
    "pipeline bf16": ("pipeline", "bf16", {}),
}
DEEPSPEED = {"pipeline + DeepSpeed fp32": ("pipeline", "fp32", {"deepspeed": True})}


def flops_per_token(config, length: int) -> float:
    """Training FLOPs per token of a decoder (PaLM, appendix B): 6 per weight used in a
    matrix multiply (forward and backward), plus 12 x layers x width x sequence length for
    attention's scores and weighted sums. The input embedding is a lookup, not a multiply:
    left out unless the output head shares it."""
    import torch
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    weights = sum(p.numel() for p in model.parameters())
    if not getattr(config, "tie_word_embeddings", False):
        weights -= model.get_input_embeddings().weight.numel()
    return 6.0 * weights + 12.0 * config.num_hidden_layers * config.hidden_size * length


def peak_tflops(gpu: str | None) -> float | None:
    """The bf16 dense peak of a known GPU (by name), else None."""
    return next((peak for key, peak in PEAK_BF16_TFLOPS.items() if gpu and key in gpu), None)


def mfu(tokens_per_s: float, per_token: float, precision: str, gpu: str | None
        ) -> float | None:
    """Model FLOPs utilisation against the GPU's bf16 peak: bf16 settings on a known GPU
    only (fp32 runs on other units, and a CPU has no peak that means the same)."""
    peak = peak_tflops(gpu)
    if precision != "bf16" or peak is None:
        return None
    return tokens_per_s * per_token / (peak * 1e12)


def examples(n: int):
    """Fine-tune-CoT examples of coin-flip questions, with rationales long enough to fill any
    ``--length`` (they are cut there)."""
    from cotdistill.datasets.synthetic import coin_flip
    from cotdistill.methods.registry import METHODS
    from cotdistill.records import CuratedExample

    method = METHODS["fine_tune_cot"]
    rows = []
    for i, raw in enumerate(coin_flip(7, n)):
        steps = " ".join(f"Flip {k} turns the coin over, so it is now "
                         f"{'tails' if k % 2 else 'heads'} up." for k in range(1, 40))
        rows.append(CuratedExample(id=str(i), dataset="coin_flip", method=method.name, source=None,
                                   input=method.format_input(raw.question),
                                   target=method.format_target(raw.answer, steps)))
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


def _features(model_spec: str, rows, length: int) -> list[dict]:
    from transformers import AutoTokenizer

    from cotdistill.lm.store import resolve
    from cotdistill.student.data import encode

    tokenizer = AutoTokenizer.from_pretrained(resolve(model_spec, "--model"))
    features = [encode(tokenizer, r.input, r.target, length) for r in rows]
    short = [len(f["input_ids"]) for f in features if len(f["input_ids"]) < length]
    if short:
        raise SystemExit(f"{len(short)} examples shorter than --length {length}")
    return features


def raw_step_times(model_spec: str, rows, length: int, batch_size: int, precision: str
                   ) -> list[float]:
    """Wall time of each step of a hand-written training loop."""
    import torch

    from cotdistill.lm.store import load_causal_lm
    from cotdistill.student.data import PadCollator

    features = _features(model_spec, rows, length)
    model, tokenizer = load_causal_lm(model_spec, "--model")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model.to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    collate = PadCollator(tokenizer.pad_token_id)
    times, last = [], time.perf_counter()
    for start in range(0, len(features), batch_size):
        batch = {k: v.to(device) for k, v in collate(features[start:start + batch_size]).items()}
        with torch.autocast(device, dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device == "cuda":
            torch.cuda.synchronize()
        now = time.perf_counter()
        times.append(now - last)
        last = now
    return times


def pipeline_step_times(model_spec: str, rows, length: int, batch_size: int, precision: str,
                        options: dict) -> tuple[list[float], str]:
    """Wall time of each optimizer step of the pipeline's own training function."""
    import torch
    from transformers import TrainerCallback

    from cotdistill.params import HParams
    from cotdistill.student import training

    times: list[float] = []

    class StepClock(TrainerCallback):
        last = None

        def on_train_begin(self, args, state, control, **kwargs):
            self.last = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            now = time.perf_counter()
            times.append(now - self.last)
            self.last = now

    hparams = HParams(max_steps=len(rows) // batch_size, batch_size=batch_size,
                      learning_rate=1e-5, max_length=length, precision=precision,
                      packing=options.get("packing", "auto"), logging_steps=1,
                      deepspeed="on" if options.get("deepspeed") else "off")
    with tempfile.TemporaryDirectory() as out:
        result = training.train_student(rows, model_spec, "benchmark", hparams, Path(out) / "m",
                                        use_deepspeed=bool(options.get("deepspeed")),
                                        extra_callbacks=[StepClock()])
    return times, result.engine


def run_one(model_spec: str, name: str, steps: int, batch_size: int, length: int,
            warmup: int) -> dict:
    import torch

    kind, precision, options = {**SETTINGS, **DEEPSPEED}[name]
    rows = examples((steps + warmup) * batch_size)
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    if kind == "raw":
        times, engine = raw_step_times(model_spec, rows, length, batch_size, precision), "raw"
    else:
        times, engine = pipeline_step_times(model_spec, rows, length, batch_size, precision,
                                            options)
    measured = times[warmup:]
    figures = {"tokens_per_s": len(measured) * batch_size * length / sum(measured),
               "steps": len(measured), "engine": engine, "precision": precision}
    if torch.cuda.is_available():
        figures["peak_mem_gib"] = torch.cuda.max_memory_allocated() / 2**30
    else:
        figures["peak_mem_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="builtin:SmolLM2-135M-Instruct",
                        help="a model spec, or 'tiny' for a model built from a config")
    parser.add_argument("--config-model", choices=sorted(CONFIG_MODELS), default=None)
    parser.add_argument("--steps", type=int, default=8, help="measured steps per setting")
    parser.add_argument("--warmup", type=int, default=2, help="steps left out first")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--length", type=int, default=160, help="tokens per example")
    parser.add_argument("--deepspeed", action="store_true", help="also the DeepSpeed path")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--only", default=None, help=argparse.SUPPRESS)  # child process
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.only:
        print("RESULT " + json.dumps(run_one(args.model, args.only, args.steps, args.batch_size,
                                             args.length, args.warmup)))
        return
    scratch = Path(tempfile.mkdtemp(prefix="cotdistill-bench-"))
    model = args.model
    if args.config_model:
        model = build_config_model(args.config_model, scratch)
    elif model == "tiny":
        from cotdistill_testkit.tiny_model import build_tiny_model

        model = str(build_tiny_model(scratch / "tiny"))
    names = list(SETTINGS) + (list(DEEPSPEED) if args.deepspeed else [])
    results = {}
    for name in names:
        child = subprocess.run(
            [sys.executable, __file__, "--model", model, "--steps", str(args.steps),
             "--warmup", str(args.warmup), "--batch-size", str(args.batch_size),
             "--length", str(args.length), "--only", name],
            capture_output=True, text=True)
        line = next((l for l in child.stdout.splitlines() if l.startswith("RESULT ")), None)
        if line is None:
            print(f"{name}: failed\n{child.stderr[-3000:]}", file=sys.stderr)
            continue
        results[name] = json.loads(line.removeprefix("RESULT "))
        print(f"  {name}: {results[name]['tokens_per_s']:.1f} tokens/s", file=sys.stderr)
    device = describe()
    from transformers import AutoConfig

    from cotdistill.lm.store import resolve

    per_token = flops_per_token(AutoConfig.from_pretrained(resolve(model, "--model")),
                                args.length)
    print(f"device: {label(device)}; torch {device['torch']}")
    print(f"model: {args.config_model or args.model}; batch {args.batch_size} x {args.length} "
          f"tokens, {args.steps} measured steps after {args.warmup} left out; "
          f"{per_token / 1e9:.3f} GFLOP per trained token")
    print(f"{'setting':<32}{'engine':<18}{'tokens/s':>10}{'vs raw, same precision':>24}"
          f"{'peak GiB':>10}{'MFU (bf16 peak)':>17}")
    for name, figures in results.items():
        raw = results.get(f"raw {figures['precision']}", {}).get("tokens_per_s")
        ratio = f"{figures['tokens_per_s'] / raw:.2f}" if raw else "-"
        figures["mfu"] = mfu(figures["tokens_per_s"], per_token, figures["precision"],
                             device.get("gpu"))
        utilised = f"{100 * figures['mfu']:.1f}%" if figures["mfu"] is not None else "-"
        print(f"{name:<32}{figures['engine']:<18}{figures['tokens_per_s']:>10.1f}{ratio:>24}"
              f"{figures['peak_mem_gib']:>10.2f}{utilised:>17}")
    raw32, raw16 = (results.get(f"raw {p}", {}).get("tokens_per_s") for p in ("fp32", "bf16"))
    if raw32 and raw16:
        print(f"bf16 / fp32, raw step: {raw16 / raw32:.2f}")
    if args.json:
        commit = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True,
                                text=True, cwd=Path(__file__).parent).stdout.strip()
        args.json.write_text(json.dumps({"commit": commit, "device": device,
                                         "model": args.config_model or
                                         args.model, "batch_size": args.batch_size,
                                         "length": args.length, "steps": args.steps,
                                         "flops_per_token": per_token,
                                         "peak_bf16_tflops": peak_tflops(device.get("gpu")),
                                         "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
