"""The ``baseline`` stage: prompting baselines on a student with no training.

- ``zero_shot``: ``Q: {q}\\nA: The answer is`` and the answer read from the continuation.
- ``zero_shot_cot``: Kojima et al.'s two steps, as the teacher uses them.
- ``few_shot_cot``: Wei et al.'s few-shot CoT (``Q: ... A: ... The answer is X.`` blocks, then
  the question) with the exemplars of the ``exemplars`` stage (clustered, heuristic-corrected
  teacher rationales) of the question's dataset; a dataset with no exemplar gets none, and
  ``metrics.json`` counts those questions as ``zero_shot_fallbacks``.

They show what distillation adds over prompting the same small model. Each is also scored on the
held-out tasks' questions (``data/prepared/transfer.jsonl``): the untrained student's side of
what specialising cost. Results are written and
logged exactly like ``evaluate``'s, so the report puts them side by side.

Usage: ``cotdistill baseline --student smollm2-135m --method zero_shot_cot``.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from cotdistill import answers, layout, prompts, tracking
from cotdistill.curation.shots import load_exemplars
from cotdistill.errors import CotdistillError
from cotdistill.params import Params
from cotdistill.params.evaluate import BASELINES
from cotdistill.records import PreparedExample

ANSWER_MARK = "\n=> "  # joins zero-shot-CoT's rationale and its answer step in one output


def read_answer(output: str, example: PreparedExample) -> str | None:
    """The answer step's text when there is one, else the first answer in the output (few-shot
    CoT states it as "The answer is X", which the library reads)."""
    return answers.extract(output.rsplit(ANSWER_MARK, 1)[-1], example.answer_type,
                           example.choices)


Complete = Callable[[list[str], int, str], list[str]]  # (prompts, max new tokens, progress label)


def _zero_shot(examples: list[PreparedExample], complete: Complete,
               params: Params) -> tuple[list[str], dict]:
    return complete([prompts.zero_shot_prompt(e.question) for e in examples], 16,
                    "zero_shot"), {}


def _zero_shot_cot(examples: list[PreparedExample], complete: Complete,
                   params: Params) -> tuple[list[str], dict]:
    tasks = params.prepare.tasks()
    rationales = complete(
        [prompts.reasoning_prompt(e.question, prompts.of(tasks, e.dataset)) for e in examples],
        params.evaluate.max_new_tokens, "zero_shot_cot (rationale)")
    finals = [prompts.answer_prompt(e.question, r, e.answer_type, e.choices,
                                    prompts.of(tasks, e.dataset))
              for e, r in zip(examples, rationales)]
    answer_texts = complete(finals, 16, "zero_shot_cot (answer)")
    return [f"{r.strip()}{ANSWER_MARK}{a.strip()}"
            for r, a in zip(rationales, answer_texts)], {}


def _few_shot_cot(examples: list[PreparedExample], complete: Complete,
                  params: Params) -> tuple[list[str], dict]:
    shots = load_exemplars()
    outputs = complete([prompts.few_shot_prompt(shots.get(e.dataset, []), e.question)
                        for e in examples], params.evaluate.max_new_tokens, "few_shot_cot")
    return outputs, {"zero_shot_fallbacks": sum(1 for e in examples if not shots.get(e.dataset))}


# each baseline of params.evaluate.BASELINES: (test questions, a completer, params) -> (the
# outputs to read answers from, extra metrics)
PROMPTING: dict[str, Callable[[list[PreparedExample], Complete, Params],
                              tuple[list[str], dict]]] = {
    "zero_shot": _zero_shot,
    "zero_shot_cot": _zero_shot_cot,
    "few_shot_cot": _few_shot_cot,
}


def run(params: Params, student: str, method: str) -> dict:
    from cotdistill.lm import store as model_store
    from cotdistill.lm.generation import generate
    from cotdistill.lm.precision import resolve as resolve_precision
    from cotdistill.student.evaluation import (
        record_results,
        score,
        test_examples,
        transfer_examples,
        transfer_metrics,
    )

    started = time.time()
    if method not in BASELINES:
        raise CotdistillError(f"unknown baseline {method!r} (known: {', '.join(BASELINES)})")
    settings = params.evaluate
    spec = params.student(student).model
    examples = test_examples(settings)
    held_out = transfer_examples()
    tracking.use_experiment(params.mlflow)  # an unusable store fails before the generation
    model, tokenizer = model_store.load_causal_lm(spec, f"students.{student}.model",
                                                  for_generation=True)

    def complete(texts: list[str], max_tokens: int, desc: str) -> list[str]:
        return [g.text for g in generate(model, tokenizer, texts, max_new_tokens=max_tokens,
                                         batch_size=settings.batch_size, stop=prompts.QA_STOPS,
                                         desc=desc, precision=settings.precision)]

    outputs, extra = PROMPTING[method](examples, complete, params)
    predictions = score(examples, outputs, student, method, read_answer)
    # the held-out tasks apart: a shared batch would change the test questions' padding, and
    # in bf16 a test answer
    transfer = score(held_out, PROMPTING[method](held_out, complete, params)[0], student,
                     method, read_answer) if held_out else []
    if transfer:
        extra["transfer"] = transfer_metrics(transfer)
    return record_results(
        params, student, method, predictions, started=started, training_run_id=None,
        lineage={"test": layout.prepared("test"), "transfer": layout.prepared("transfer")},
        tags={"stage": "baseline", "precision": resolve_precision(settings.precision)},
        run_params={"student": student, "student_model": spec, "method": method,
                    "trained": False, "eval_max_new_tokens": settings.max_new_tokens,
                    "eval_max_examples": settings.max_examples,
                    "eval_precision": settings.precision,
                    "transfer_datasets": ",".join(sorted({e.dataset for e in held_out}))
                    or "none"},
        extra=extra, extra_predictions={"transfer": transfer},
    )
