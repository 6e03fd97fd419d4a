"""The ``evaluate`` stage: greedy, batched generation on the test split, scored per answer type.

Writes ``reports/eval/<student>/<method>/predictions.jsonl`` and ``metrics.json`` (accuracy
overall and per dataset, for ``dvc metrics show``), and logs both to the training run in MLflow.

Usage: ``cotdistill evaluate --student smollm2-135m --method fine_tune_cot``.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

from cotdistill import answers, layout
from cotdistill.atomic import atomic_file
from cotdistill.errors import CotdistillError
from cotdistill.methods.base import METHODS, student_text
from cotdistill.params import EvaluateParams
from cotdistill.records import PreparedExample, Prediction
from cotdistill.datasets.splits import first_per_dataset

log = logging.getLogger(__name__)


def score(
    examples: list[PreparedExample], outputs: list[str], student: str, method: str,
    read: Callable[[str, PreparedExample], str | None],
) -> list[Prediction]:
    """Extract each output's answer with ``read`` and judge it against the gold answer."""
    predictions = []
    for example, output in zip(examples, outputs, strict=True):
        predicted = read(output, example)
        predictions.append(
            Prediction(
                id=example.id, dataset=example.dataset, student=student, method=method,
                output=output, prediction=predicted, answer=example.answer,
                correct=answers.is_correct(predicted, example.answer, example.answer_type),
            )
        )
    return predictions


def student_reader(method: str) -> Callable[[str, PreparedExample], str | None]:
    """How a student trained with ``method`` states its answer (``--> answer`` or bare)."""
    with_rationale = METHODS[method].answer_after_marker
    return lambda output, example: answers.extract_student(
        output, example.answer_type, example.choices, with_rationale=with_rationale)


def accuracy_metrics(predictions: list[Prediction]) -> dict:
    by_dataset: dict[str, list[bool]] = defaultdict(list)
    for prediction in predictions:
        by_dataset[prediction.dataset].append(prediction.correct)
    total = [p.correct for p in predictions]
    return {
        "accuracy": sum(total) / len(total) if total else 0.0,
        "n": len(total),
        "datasets": {
            name: {"accuracy": sum(flags) / len(flags), "n": len(flags)}
            for name, flags in sorted(by_dataset.items())
        },
    }


def test_examples(settings: EvaluateParams) -> list[PreparedExample]:
    from cotdistill.jsonl import read_records

    return first_per_dataset(read_records(layout.prepared("test"), PreparedExample),
                             settings.max_examples)


def record_results(
    params, student: str, method: str, predictions: list[Prediction], *,
    run_id: str | None, lineage: dict[str, Path], run_params: dict, extra: dict | None = None,
) -> dict:
    """Write predictions and metrics under reports/eval/, and log them to MLflow (to the
    training run ``run_id`` when it still exists, else to a run of their own)."""
    import mlflow

    from cotdistill import tracking
    from cotdistill.jsonl import write_records

    metrics = {**accuracy_metrics(predictions), **(extra or {})}
    out = layout.eval_reports(student, method)
    write_records(out / "predictions.jsonl", predictions)
    with atomic_file(out / "metrics.json") as tmp:
        tmp.write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    experiment = tracking.use_experiment(params.mlflow)
    client = mlflow.MlflowClient()
    try:
        run_id = client.get_run(run_id).info.run_id if run_id else None
    except Exception:  # the store was reset since training
        run_id = None
    if run_id is None:
        run_id = client.create_run(experiment, run_name=f"{student}/{method}",
                                   tags={"student": student, "method": method}).info.run_id
    with mlflow.start_run(run_id=run_id):
        mlflow.set_tags({"evaluated": "true", **tracking.lineage_tags(lineage)})
        mlflow.log_params(run_params)
        mlflow.log_metric("test_accuracy", metrics["accuracy"])
        for dataset, figures in metrics["datasets"].items():
            mlflow.log_metric(f"test_accuracy.{dataset}", figures["accuracy"])
        mlflow.log_artifact(str(out / "predictions.jsonl"))
    log.info("%s/%s: test accuracy %.3f on %d questions", student, method,
             metrics["accuracy"], metrics["n"])
    return metrics


def run(params, student: str, method: str) -> dict:
    """The stage: generate on test with a trained student, score, record."""
    from cotdistill.lm.generation import generate
    from cotdistill.lm.store import load_causal_lm
    from cotdistill.student.training import TRAIN_INFO

    settings: EvaluateParams = params.evaluate
    model_dir = layout.model_dir(student, method)
    info_path = model_dir / TRAIN_INFO
    if not info_path.is_file():
        raise CotdistillError(f"{model_dir}: no trained model (run `cotdistill train` first)")
    examples = test_examples(settings)
    model, tokenizer = load_causal_lm(str(model_dir), f"models/{student}/{method}",
                                      for_generation=True)
    encoder_decoder = bool(model.config.is_encoder_decoder)
    prompts = [student_text(METHODS[method].format_input(example.question), None,
                            encoder_decoder)[0] for example in examples]
    generated = generate(model, tokenizer, prompts, max_new_tokens=settings.max_new_tokens,
                         batch_size=settings.batch_size, desc=f"evaluate {student}/{method}")
    predictions = score(examples, [g.text for g in generated], student, method,
                        student_reader(method))
    info = json.loads(info_path.read_text(encoding="utf-8"))
    return record_results(
        params, student, method, predictions, run_id=info.get("run_id"),
        lineage={"test": layout.prepared("test"), "model": model_dir},
        run_params={"eval_max_new_tokens": settings.max_new_tokens,
                    "eval_max_examples": settings.max_examples},
    )
