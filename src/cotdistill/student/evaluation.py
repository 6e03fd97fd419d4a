"""Scoring a student's outputs and recording the results, shared by every evaluating stage
(``evaluate``, ``baseline``, ``socratic_evaluate``).

Writes ``reports/eval/<student>/<method>/predictions.jsonl`` and ``metrics.json`` (accuracy
overall and per dataset, for ``dvc metrics show``), and logs both to MLflow.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

from cotdistill import answers, layout
from cotdistill.atomic import publish, write_text
from cotdistill.datasets.splits import first_per_dataset
from cotdistill.params import EvaluateParams
from cotdistill.records import Prediction, PreparedExample

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
    from cotdistill.jsonl import write_records

    metrics = {**accuracy_metrics(predictions), **(extra or {})}
    folder = layout.eval_reports(student, method)
    with publish() as out:  # nothing moves into place unless MLflow logging succeeded too
        staged = out.file(folder / "predictions.jsonl")
        write_records(staged, predictions)
        write_text(out.file(folder / "metrics.json"), json.dumps(metrics, indent=2) + "\n")
        _log_results(params, student, method, metrics, staged, run_id=run_id, lineage=lineage,
                     run_params=run_params)
    log.info("%s/%s: test accuracy %.3f on %d questions", student, method,
             metrics["accuracy"], metrics["n"])
    return metrics


def _log_results(params, student: str, method: str, metrics: dict, predictions: Path, *,
                 run_id: str | None, lineage: dict[str, Path], run_params: dict) -> None:
    import mlflow

    from cotdistill import tracking

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
        mlflow.log_text(predictions.read_text(encoding="utf-8"), "predictions.jsonl")
