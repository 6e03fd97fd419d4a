"""What the calculator inside decoding costs and what it changes: one trained student answers the
same test questions greedily, without and with the calculator, side by side in one run.

    python benchmarks/calculator_decoding.py \
        --model reproduction/multiarith/models/smollm2-135m/fine_tune_cot_calc \
        --prepared reproduction/multiarith/data/prepared/test.jsonl
    python benchmarks/calculator_decoding.py --model tiny --limit 8 --repeats 1   # a smoke run

The runs alternate (off, on, off, on, ...) so that a busy machine slows both alike; each prints
generated tokens per second, and the figure is the ratio with / without of the medians. It also
reads every output with :func:`cotdistill.calculator.computations` and counts the explicit
computations and how many written results are wrong, and scores the answers as evaluate does:
this separates "which numbers to combine" (still wrong with the calculator) from "how to
compute" (what the calculator fixes). Writes ``benchmarks/results/calculator_decoding.json``
with the commit and the CPU.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hardware import describe, label  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "benchmarks" / "results" / "calculator_decoding.json"


def _student(spec: str, tmp: Path):
    """(model, tokenizer, method) of a trained student directory, or the tiny model."""
    from cotdistill.lm.store import load_causal_lm

    if spec == "tiny":
        from cotdistill_testkit.tiny_model import build_tiny_model

        spec = str(build_tiny_model(tmp / "tiny"))
        method = "fine_tune_cot_calc"
    else:
        info = json.loads((Path(spec) / "train_info.json").read_text(encoding="utf-8"))
        method = info.get("method") or Path(spec).name
    model, tokenizer = load_causal_lm(spec, "--model", for_generation=True)
    return model, tokenizer, method


def _questions(path: Path | None, limit: int | None):
    from cotdistill.jsonl import read_records
    from cotdistill.records import PreparedExample

    if path is None:
        from cotdistill.datasets.synthetic import coin_flip

        examples = [PreparedExample(id=f"smoke-{i}", dataset="smoke", split="test",
                                    question=e.question, answer="1", answer_type="number")
                    for i, e in enumerate(coin_flip(0, limit or 8))]
    else:
        examples = read_records(path, PreparedExample)
    return examples[:limit] if limit else examples


def measure(model, tokenizer, method: str, examples, *, batch_size: int, max_new_tokens: int,
            repeats: int, precision: str, tasks=None) -> dict:
    from cotdistill import answers, prompts
    from cotdistill.calculator import computations
    from cotdistill.lm.generation import generate
    from cotdistill.methods.registry import METHODS

    chosen = METHODS[method]
    encoder_decoder = bool(model.config.is_encoder_decoder)
    inputs = [prompts.student_text(chosen.student_input(e.question, prompts.of(tasks, e.dataset)),
                                   None, encoder_decoder)[0] for e in examples]
    runs: dict[bool, list[dict]] = {False: [], True: []}
    for _ in range(repeats):
        for calculator in (False, True):
            started = time.perf_counter()
            out = generate(model, tokenizer, inputs, max_new_tokens=max_new_tokens,
                           batch_size=batch_size, calculator=calculator, precision=precision,
                           desc=f"calculator {'on' if calculator else 'off'}")
            seconds = time.perf_counter() - started
            tokens = sum(g.completion_tokens for g in out)
            runs[calculator].append({"seconds": seconds, "tokens": tokens, "outputs": out})
    figures = {}
    for calculator, done in runs.items():
        outputs = done[-1]["outputs"]
        steps = [s for g in outputs for s in computations(g.text)]
        correct = [answers.is_correct(chosen.read(g.text, e), e.answer, e.answer_type)
                   for g, e in zip(outputs, examples)]
        figures["on" if calculator else "off"] = {
            "tokens_per_s": [round(r["tokens"] / r["seconds"], 2) for r in done],
            "median_tokens_per_s": round(statistics.median(r["tokens"] / r["seconds"]
                                                           for r in done), 2),
            "generated_tokens": done[-1]["tokens"],
            "results_written": sum(g.calculated for g in outputs),
            "computations": len(steps),
            "computations_wrong": sum(not s.agrees for s in steps),
            "correct": sum(correct), "n": len(examples),
        }
    figures["speed_ratio_on_over_off"] = round(
        figures["on"]["median_tokens_per_s"] / figures["off"]["median_tokens_per_s"], 4)
    return figures


def main(argv: list[str] | None = None) -> int:
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True,
                        help="a trained student directory (models/STUDENT/METHOD), or tiny")
    parser.add_argument("--prepared", type=Path, default=None,
                        help="test questions (a prepared test.jsonl; default: 8 generated ones)")
    parser.add_argument("--params", type=Path, default=None,
                        help="the params.yaml the student was evaluated with (its task prompts)")
    parser.add_argument("--limit", type=int, default=None, help="first N questions only")
    parser.add_argument("--batch-size", type=int, default=50, help="evaluate's default")
    parser.add_argument("--max-new-tokens", type=int, default=256, help="the table's")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each, alternating")
    parser.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"))
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    device = describe()
    print(label(device), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        model, tokenizer, method = _student(args.model, Path(tmp))
        examples = _questions(args.prepared, args.limit)
        tasks = None
        if args.params is not None:
            from cotdistill.params import load_params

            tasks = load_params(args.params).prepare.tasks()
        figures = measure(model, tokenizer, method, examples, batch_size=args.batch_size,
                          max_new_tokens=args.max_new_tokens, repeats=args.repeats,
                          precision=args.precision, tasks=tasks)
    commit = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=REPO,
                            capture_output=True, text=True, check=False).stdout.strip()
    result = {"commit": commit or "not recorded", "device": device,
              "command": "python benchmarks/calculator_decoding.py " + " ".join(
                  argv if argv is not None else sys.argv[1:]),
              "model": args.model, "method": method, "questions": len(examples),
              "batch_size": args.batch_size, "max_new_tokens": args.max_new_tokens, **figures}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    for side in ("off", "on"):
        f = figures[side]
        print(f"calculator {side}: {f['median_tokens_per_s']} tokens/s (runs {f['tokens_per_s']}); "
              f"{f['correct']}/{f['n']} correct; {f['computations_wrong']} of "
              f"{f['computations']} computations wrong; {f['results_written']} results written")
    print(f"speed with / without the calculator: {figures['speed_ratio_on_over_off']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
