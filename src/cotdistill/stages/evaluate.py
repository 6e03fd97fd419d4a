"""The ``evaluate`` stage: greedy, batched generation on the test split, scored per answer type.

With ``evaluate.few_shot: N`` a student that writes rationales is also evaluated with N of the
exemplars stage's worked examples in context (``predictions_few_shot.jsonl``; metrics.json's
``few_shot``). The student is also scored, in its own format, on the held-out tasks' questions
(``data/prepared/transfer.jsonl``): ``predictions_transfer.jsonl`` and metrics.json's
``transfer``, the other side of what specialising bought. A calculator method's student
(``fine_tune_cot_calc``) decodes its number questions with the calculator, and metrics.json
says on how many questions and how many results it wrote.

Writes ``reports/eval/<student>/<method>/predictions.jsonl`` and ``metrics.json`` (accuracy
overall and per dataset, for ``dvc metrics show``), and logs both to the training run in MLflow.

Usage: ``cotdistill evaluate --student smollm2-135m --method fine_tune_cot``.
"""

from __future__ import annotations

import time
from typing import Callable

from cotdistill import layout, prompts, tracking
from cotdistill.lm.generation import generate
from cotdistill.lm.precision import resolve as resolve_precision
from cotdistill.lm.store import load_causal_lm
from cotdistill.methods.registry import METHODS
from cotdistill.params import EvaluateParams, Params
from cotdistill.prompts import student_text
from cotdistill.curation.shots import load_exemplars
from cotdistill.records import PreparedExample
from cotdistill.student.evaluation import (
    accuracy_metrics,
    record_results,
    score,
    test_examples,
    transfer_examples,
    transfer_metrics,
)


def run(params: Params, student: str, method: str) -> dict:
    """The stage: generate on test with a trained student, score, record."""
    started = time.time()
    settings: EvaluateParams = params.evaluate
    model_dir = layout.model_dir(student, method)
    info = layout.read_train_info(
        model_dir, missing=f"{model_dir}: no trained model (run `cotdistill train` first)")
    examples = test_examples(settings)
    held_out = transfer_examples()
    tracking.use_experiment(params.mlflow)  # an unusable store fails before the generation
    model, tokenizer = load_causal_lm(str(model_dir), f"models/{student}/{method}",
                                      for_generation=True)
    chosen = METHODS[method]
    predictions, generated = _generate_and_score(model, tokenizer, examples, params, student,
                                                 method, desc=f"evaluate {student}/{method}")
    extra: dict = {"calculator_questions": sum(chosen.calculates(e.answer_type)
                                               for e in examples),
                   "calculator_results": sum(g.calculated for g in generated)} \
        if chosen.calculator else {}
    # Held-out questions are generated apart from the test questions: a shared batch would
    # change their padding, and in bf16 a test answer.
    transfer = _generate_and_score(model, tokenizer, held_out, params, student, method,
                                   desc=f"evaluate {student}/{method} held-out tasks")[0]
    if transfer:
        extra["transfer"] = transfer_metrics(transfer)
    few_shot: list = []
    if settings.few_shot and chosen.answer_after_marker:
        shots = load_exemplars()
        tasks = params.prepare.tasks()
        few_shot = _generate_and_score(
            model, tokenizer, examples, params, student, method,
            desc=f"evaluate {student}/{method} few-shot",
            context=lambda e: prompts.student_shots(shots.get(e.dataset, [])[:settings.few_shot],
                                                    task=prompts.of(tasks, e.dataset)))[0]
        extra["few_shot"] = {**accuracy_metrics(few_shot), "shots": settings.few_shot}
    return record_results(
        params, student, method, predictions, started=started, extra=extra,
        extra_predictions={"few_shot": few_shot, "transfer": transfer},
        extra_metrics={"test_few_shot_accuracy": extra["few_shot"]["accuracy"]}
        if few_shot else None,
        training_run_id=info.get("run_id"),
        lineage={"test": layout.prepared("test"), "transfer": layout.prepared("transfer"),
                 "model": model_dir},
        tags={"stage": "evaluate", "precision": resolve_precision(settings.precision)},
        run_params={"eval_max_new_tokens": settings.max_new_tokens,
                    "eval_max_examples": settings.max_examples,
                    "eval_precision": settings.precision,
                    "transfer_datasets": ",".join(sorted({e.dataset for e in held_out}))
                    or "none"},
    )


def _generate_and_score(model, tokenizer, examples: list, params: Params, student: str,
                        method: str, desc: str,
                        context: Callable[[PreparedExample], str] = lambda example: ""
                        ) -> tuple[list, list]:
    """Each example in the student's own format (after ``context``, for example worked
    examples), generated greedily with the method's calculator, and scored: the one path for
    the test, few-shot and held-out questions, so that they differ only in their inputs."""
    if not examples:
        return [], []
    settings = params.evaluate
    chosen = METHODS[method]
    tasks = params.prepare.tasks()
    encoder_decoder = bool(model.config.is_encoder_decoder)
    inputs = [student_text(context(e) + chosen.student_input(e.question,
                                                             prompts.of(tasks, e.dataset)),
                           None, encoder_decoder)[0] for e in examples]
    generated = generate(model, tokenizer, inputs, max_new_tokens=settings.max_new_tokens,
                         batch_size=settings.batch_size, precision=settings.precision, desc=desc,
                         calculator=[chosen.calculates(e.answer_type) for e in examples])
    return score(examples, [g.text for g in generated], student, method, chosen.read), generated
