"""Teacher throughput against a local OpenAI-compatible server: concurrency 1, 4 and 16.

    python benchmarks/teacher_throughput.py                      # SmolLM2-135M-Instruct
    python benchmarks/teacher_throughput.py --model tiny --questions 64

The project's own server (``cotdistill serve``, dynamic batching) runs on loopback; the teacher
stage's OpenAI backend sends every request of a two-step zero-shot-CoT run with the given
concurrency, each setting with an empty response cache. It prints requests per second and the
speed-up over concurrency 1. On this 2-core machine compare the speed-ups, not the absolute
figures.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/hardware.py


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="builtin:SmolLM2-135M-Instruct",
                        help="a model spec, or 'tiny' for a model built from a config")
    parser.add_argument("--questions", type=int, default=32)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--concurrency", default="1,4,16")
    parser.add_argument("--json", type=Path, default=None,
                        help="also write the figures here, with the commit and the hardware "
                             "(docs/benchmarks.md is rendered from it)")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    logging.basicConfig(level=logging.WARNING)

    from cotdistill.datasets.synthetic import coin_flip
    from cotdistill.params import TeacherParams
    from cotdistill.records import PreparedExample
    from cotdistill.serve import running_server
    from cotdistill.teachers.registry import make_backend
    from cotdistill.teachers.zero_shot_cot import run_teacher

    scratch = Path(tempfile.mkdtemp(prefix="cotdistill-bench-"))
    model = args.model
    if model == "tiny":
        from cotdistill_testkit.tiny_model import build_tiny_model

        model = str(build_tiny_model(scratch / "tiny"))
    examples = [PreparedExample(id=f"coin-{i}", dataset="coin_flip_generated", split="train",
                                question=raw.question, answer=raw.answer, answer_type="yes_no")
                for i, raw in enumerate(coin_flip(11, args.questions))]
    rows = []
    with running_server(model, max_batch=16) as url:
        for concurrency in (int(c) for c in args.concurrency.split(",")):
            params = TeacherParams(backend="openai", base_url=url, model=model, samples=1,
                                   temperature=0.0, max_rationale_tokens=args.max_tokens,
                                   max_answer_tokens=8, concurrency=concurrency)
            cache = scratch / f"cache-{concurrency}.sqlite"
            started = time.perf_counter()
            _, stats = run_teacher(examples, params, make_backend(params, cache), cache)
            seconds = time.perf_counter() - started
            rows.append((concurrency, stats.generated, seconds))
    base = rows[0][1] / rows[0][2]
    print(f"model: {args.model}; {args.questions} questions x 2 steps, "
          f"{args.max_tokens} rationale tokens")
    print(f"{'concurrency':>12}{'requests':>10}{'seconds':>10}{'req/s':>8}{'speed-up':>10}")
    for concurrency, requests, seconds in rows:
        rate = requests / seconds
        print(f"{concurrency:>12}{requests:>10}{seconds:>10.1f}{rate:>8.2f}{rate / base:>10.2f}")
    if args.json:
        import hardware
        commit = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True,
                                text=True, cwd=Path(__file__).parent).stdout.strip()
        args.json.write_text(json.dumps({
            "commit": commit, "device": hardware.describe(), "model": args.model,
            "questions": args.questions, "max_tokens": args.max_tokens,
            "command": "python benchmarks/teacher_throughput.py " + " ".join(sys.argv[1:]),
            "rows": [{"concurrency": c, "requests": r, "seconds": round(t, 2)}
                     for c, r, t in rows]}, indent=2) + "\n")


if __name__ == "__main__":
    main()
