"""The ``evaluate`` stage: greedy, batched generation on the test split, scored per answer type.

Writes ``reports/eval/<student>/<method>/predictions.jsonl`` and ``metrics.json`` (accuracy
overall and per dataset, for ``dvc metrics show``), and logs both to the training run in MLflow.

Usage: ``cotdistill evaluate --student smollm2-135m --method fine_tune_cot``.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict

from cotdistill import answers, layout
from cotdistill.atomic import atomic_file
from cotdistill.errors import CotdistillError
from cotdistill.methods import METHODS
from cotdistill.params import EvaluateParams
from cotdistill.records import PreparedExample, Prediction
from cotdistill.splits import first_per_dataset

log = logging.getLogger(__name__)


def score(
    examples: list[PreparedExample], outputs: list[str], student: str, method: str
) -> list[Prediction]:
    """Extract and judge each output against its example's gold answer."""
    predictions = []
    for example, output in zip(examples, outputs, strict=True):
        predicted = answers.extract_student(
            output, example.answer_type, example.choices,
            with_rationale=METHODS[method].uses_rationale,
        )
        predictions.append(
            Prediction(
                id=example.id, dataset=example.dataset, student=student, method=method,
                output=output, prediction=predicted, answer=example.answer,
                correct=answers.is_correct(predicted, example.answer, example.answer_type),
            )
        )
    return predictions


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


def run(params, student: str, method: str) -> dict:
    """The stage: generate on test, score, write predictions and metrics, log to MLflow."""
    import mlflow

    from cotdistill import tracking
    from cotdistill.generation import generate
    from cotdistill.jsonl import read_records, write_records
    from cotdistill.model_store import load_causal_lm
    from cotdistill.train import TRAIN_INFO

    settings: EvaluateParams = params.evaluate
    model_dir = layout.model_dir(student, method)
    info_path = model_dir / TRAIN_INFO
    if not info_path.is_file():
        raise CotdistillError(f"{model_dir}: no trained model (run `cotdistill train` first)")
    test_path = layout.prepared("test")
    examples = first_per_dataset(read_records(test_path, PreparedExample), settings.max_examples)
    model, tokenizer = load_causal_lm(str(model_dir), f"models/{student}/{method}",
                                      for_generation=True)
    prompts = [METHODS[method].format_input(example.question) for example in examples]
    generated = generate(model, tokenizer, prompts, max_new_tokens=settings.max_new_tokens,
                         batch_size=settings.batch_size, desc=f"evaluate {student}/{method}")
    predictions = score(examples, [g.text for g in generated], student, method)
    metrics = accuracy_metrics(predictions)
    out = layout.eval_reports(student, method)
    write_records(out / "predictions.jsonl", predictions)
    with atomic_file(out / "metrics.json") as tmp:
        tmp.write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")

    info = json.loads(info_path.read_text(encoding="utf-8"))
    experiment = tracking.use_experiment(params.mlflow)
    client = mlflow.MlflowClient()
    try:
        run_id = client.get_run(info["run_id"]).info.run_id
    except Exception:  # the store was reset since training: record evaluation on its own
        run_id = client.create_run(experiment, run_name=f"{student}/{method}").info.run_id
    with mlflow.start_run(run_id=run_id):
        mlflow.set_tags({"evaluated": "true", **tracking.lineage_tags(
            {"test": test_path, "model": model_dir})})
        mlflow.log_params({"eval_max_new_tokens": settings.max_new_tokens,
                           "eval_max_examples": settings.max_examples})
        mlflow.log_metric("test_accuracy", metrics["accuracy"])
        for dataset, figures in metrics["datasets"].items():
            mlflow.log_metric(f"test_accuracy.{dataset}", figures["accuracy"])
        mlflow.log_artifact(str(out / "predictions.jsonl"))
    log.info("%s/%s: test accuracy %.3f on %d questions", student, method,
             metrics["accuracy"], metrics["n"])
    return metrics
