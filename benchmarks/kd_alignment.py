"""How well a teacher's stored tokens line up with a student's tokenizer (token-level KD).

    python benchmarks/kd_alignment.py                          # SmolLM2 teaches SmolLM2
    python benchmarks/kd_alignment.py --teacher PATH --student PATH --questions 16

Serves the teacher with `cotdistill serve` on loopback, asks it zero-shot-CoT rationales with
top-5 log-probabilities through the openai backend (as the teacher stage does), places the
tokens over each rationale (as curate does) and aligns them with the student's tokens (as
training does). Prints the share of teacher tokens that line up and the share of stored token
texts the student's tokenizer does not know: the two figures training checks before it
accepts `train.hparams.kd.source: logprobs` (docs/training.md, "Token-level KD").
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from cotdistill.lm import store as model_store
from cotdistill.datasets.synthetic import coin_flip
from cotdistill.student.kd import MAX_UNKNOWN, MIN_ALIGNED, StudentVocabulary, align
from cotdistill.student.kd import teacher_tokens
from cotdistill.methods.registry import METHODS
from cotdistill.params import TeacherParams
from cotdistill.records import PreparedExample
from cotdistill.serve import running_server
from cotdistill.teachers.registry import make_backend
from cotdistill.teachers.zero_shot_cot import run_teacher

DEFAULT = "builtin:SmolLM2-135M-Instruct"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--teacher", default=DEFAULT)
    parser.add_argument("--student", default=DEFAULT, help="whose tokenizer to align with")
    parser.add_argument("--questions", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=48, help="rationale tokens per answer")
    args = parser.parse_args()

    from transformers import AutoTokenizer

    teacher = model_store.resolve(args.teacher, "--teacher")
    tokenizer = AutoTokenizer.from_pretrained(model_store.resolve(args.student, "--student"))
    vocabulary = StudentVocabulary.of(tokenizer)
    examples = [PreparedExample(id=f"coin_flip-{i}", dataset="coin_flip", split="train",
                                question=raw.question, answer=raw.answer, answer_type="yes_no")
                for i, raw in enumerate(coin_flip(11, args.questions))]
    method = METHODS["fine_tune_cot"]
    with tempfile.TemporaryDirectory() as scratch, running_server(str(teacher)) as url:
        params = TeacherParams(backend="openai", base_url=url, model=str(teacher),
                               api="completions", samples=1, temperature=0.7,
                               max_rationale_tokens=args.tokens, top_logprobs=5, timeout_s=120)
        records, _ = run_teacher(examples, params, make_backend(params),
                                 Path(scratch) / "cache.sqlite")
    generated = placed = inside = aligned = 0
    texts: set[str] = set()
    by_id = {e.id: e for e in examples}
    for record in records:
        generated += len(record.tokens or [])
        if not record.rationale:
            continue
        target = method.format_target(by_id[record.id].answer, record.rationale)
        stored = teacher_tokens(record, target)
        if stored is None:
            continue
        placed += len(stored.tokens)
        ids = tokenizer(target, add_special_tokens=False)["input_ids"]
        result = align(tokenizer, vocabulary, target, ids, stored)
        inside += result.teacher_tokens
        aligned += result.aligned
        texts |= {text for top in stored.top_logprobs for text in top} | set(stored.tokens)
    unknown = len(texts - vocabulary.known)
    print(f"teacher {args.teacher} -> student tokenizer {args.student}")
    print(f"rationales {len(records)}, tokens generated {generated}, placed over the rationale "
          f"{placed}")
    print(f"aligned {aligned}/{inside} = {aligned / max(inside, 1):.1%} "
          f"(training needs >= {MIN_ALIGNED:.0%})")
    print(f"unknown token texts {unknown}/{len(texts)} = {unknown / max(len(texts), 1):.1%} "
          f"(training needs <= {MAX_UNKNOWN:.0%})")


if __name__ == "__main__":
    main()
