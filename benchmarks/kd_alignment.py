"""How well a teacher's stored tokens line up with a student's tokenizer (token-level KD).

    python benchmarks/kd_alignment.py                          # SmolLM2 teaches SmolLM2
    python benchmarks/kd_alignment.py --student builtin:SmolLM2-135M-Instruct \
        --student builtin:all-MiniLM-L6-v2 --student builtin:gemma-3-270m   # other families

Serves the teacher with `cotdistill serve` on loopback, asks it zero-shot-CoT rationales with
top-5 log-probabilities through the openai backend once (as the teacher stage does), places the
tokens over each rationale (as curate does) and aligns them with each student's tokens (as
training does): the share of teacher tokens that line up (training refuses below
``MIN_ALIGNED``), the target tokens that get a teacher distribution, and the share of candidate
texts that are no token of the student's and are projected onto their first student piece
(docs/training.md, "Across tokenizers"). Writes one row per (teacher, student) to
``benchmarks/results/kd_alignment.json`` with the commit and the CPU.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from cotdistill.lm import store as model_store
from cotdistill.datasets.synthetic import coin_flip
from cotdistill.student.kd import MIN_ALIGNED, StudentVocabulary, align, teacher_tokens
from cotdistill.methods.registry import METHODS
from cotdistill.params import TeacherParams
from cotdistill.records import PreparedExample
from cotdistill.serve import running_server
from cotdistill.teachers.registry import make_backend
from cotdistill.teachers.zero_shot_cot import run_teacher

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hardware import describe  # noqa: E402

DEFAULT = "builtin:SmolLM2-135M-Instruct"
REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "benchmarks" / "results" / "kd_alignment.json"


def ask(teacher: Path, questions: int, tokens: int):
    """The teacher's rationales with top-5 log-probabilities, and the questions."""
    examples = [PreparedExample(id=f"coin_flip-{i}", dataset="coin_flip", split="train",
                                question=raw.question, answer=raw.answer, answer_type="yes_no")
                for i, raw in enumerate(coin_flip(11, questions))]
    with tempfile.TemporaryDirectory() as scratch, running_server(str(teacher)) as url:
        params = TeacherParams(backend="openai", base_url=url, model=str(teacher),
                               api="completions", samples=1, temperature=0.7,
                               max_rationale_tokens=tokens, top_logprobs=5, timeout_s=120)
        records, _ = run_teacher(examples, params, make_backend(params),
                                 Path(scratch) / "cache.sqlite")
    return records, examples


def measure(records, examples, student: str) -> dict:
    """What training would make of the records for ``student``'s tokenizer."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_store.resolve(student, "--student"))
    vocabulary = StudentVocabulary.of(tokenizer)
    method = METHODS["fine_tune_cot"]
    by_id = {e.id: e for e in examples}
    figures = dict.fromkeys(("generated", "placed", "inside", "aligned", "positions",
                             "candidates", "projected"), 0)
    for record in records:
        figures["generated"] += len(record.tokens or [])
        if not record.rationale:
            continue
        target = method.format_target(by_id[record.id].answer, record.rationale)
        stored = teacher_tokens(record, target)
        if stored is None:
            continue
        figures["placed"] += len(stored.tokens)
        ids = tokenizer(target, add_special_tokens=False)["input_ids"]
        result = align(tokenizer, vocabulary, target, ids, stored)
        figures["inside"] += result.teacher_tokens
        figures["aligned"] += result.aligned
        figures["positions"] += len(result.positions)
        figures["candidates"] += result.candidates
        figures["projected"] += result.projected
    share = figures["aligned"] / max(figures["inside"], 1)
    return {"student": student, "vocabulary": len(tokenizer),
            "tokenizer": type(tokenizer.backend_tokenizer.model).__name__
            if hasattr(tokenizer, "backend_tokenizer") else type(tokenizer).__name__,
            **figures, "aligned_share": round(share, 4),
            "projected_share": round(figures["projected"] / max(figures["candidates"], 1), 4),
            "verdict": "used" if share >= MIN_ALIGNED else "refused"}


def train(records, examples, student: str, steps: int) -> dict:
    """``steps`` real optimizer steps of the student on the rationales with the KL to the
    stored distributions as its whole loss (kd weight 1): the loss must fall towards them."""
    from cotdistill.curation.select import curate
    from cotdistill.params import CurateParams, HParams, KDParams
    from cotdistill.student.training import train_student

    right = [r.model_copy(update={"correct": True}) for r in records]  # token travel only
    rows = [row for row in curate(examples, right, CurateParams())["fine_tune_cot"]
            if row.teacher_tokens is not None]
    hparams = HParams(max_steps=steps, learning_rate=1e-4, batch_size=min(8, len(rows)),
                      max_length=256, kd=KDParams(source="logprobs", weight=1.0))
    with tempfile.TemporaryDirectory() as scratch:
        result = train_student(rows, model_store.resolve(student, "--student"), "--student",
                               hparams, Path(scratch) / "student", use_deepspeed=False)
    return {"train_steps": result.steps, "first_kl": round(result.first_loss, 4),
            "final_kl": round(result.final_loss, 4), "kd_positions": result.kd["kd_positions"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--teacher", default=DEFAULT)
    parser.add_argument("--student", action="append", default=None,
                        help="whose tokenizer to align with (repeat for several; default "
                             "the teacher's)")
    parser.add_argument("--questions", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=48, help="rationale tokens per answer")
    parser.add_argument("--train-steps", type=int, default=0,
                        help="also train each student that is not refused for N steps on the "
                             "KL alone, and record the first and last loss")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    teacher = model_store.resolve(args.teacher, "--teacher")
    records, examples = ask(teacher, args.questions, args.tokens)
    rows = [measure(records, examples, student) for student in args.student or [args.teacher]]
    for row in rows:
        if args.train_steps and row["verdict"] == "used":
            row.update(train(records, examples, row["student"], args.train_steps))
    for row in rows:
        print(f"{args.teacher} -> {row['student']} ({row['tokenizer']}, {row['vocabulary']}): "
              f"aligned {row['aligned']}/{row['inside']} = {row['aligned_share']:.1%}; "
              f"{row['positions']} target tokens get the teacher's distribution; "
              f"{row['projected_share']:.1%} of candidates projected; {row['verdict']}"
              + (f"; KL {row['first_kl']} -> {row['final_kl']} in {row['train_steps']} steps"
                 if "first_kl" in row else ""))
    commit = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=REPO,
                            capture_output=True, text=True, check=False).stdout.strip()
    previous = json.loads(args.out.read_text(encoding="utf-8")) if args.out.is_file() else {}
    kept = [r for r in previous.get("rows", []) if (r["teacher"], r["student"]) not in
            {(args.teacher, row["student"]) for row in rows}]
    result = {"min_aligned": MIN_ALIGNED, "rows": kept + [
        {"teacher": args.teacher, **row, "commit": commit or "not recorded",
         "device": describe(), "questions": args.questions, "tokens": args.tokens,
         "command": "python benchmarks/kd_alignment.py " + " ".join(
             argv if argv is not None else sys.argv[1:])} for row in rows]}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
