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
from cotdistill.intervals import wilson_interval
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
    """Accuracy and n, overall and per dataset, with the answers never given (cut off by
    the token limit, or unreadable): a low accuracy must not hide a truncation."""
    by_dataset: dict[str, list[Prediction]] = defaultdict(list)
    for prediction in predictions:
        by_dataset[prediction.dataset].append(prediction)

    def figures(rows: list[Prediction]) -> dict:
        unanswered = sum(p.prediction is None for p in rows)
        return {"accuracy": sum(p.correct for p in rows) / len(rows) if rows else 0.0,
                "n": len(rows), "unanswered": unanswered,
                "unanswered_share": unanswered / len(rows) if rows else 0.0}

    return {**figures(predictions),
            "datasets": {name: figures(rows) for name, rows in sorted(by_dataset.items())}}


NOT_YET_TESTED = ("Not evaluated yet: the `evaluate` stage writes the test accuracy here, with n "
                  "and its Wilson 95% interval.")


def test_section(metrics: dict, settings: str) -> str:
    """The card's test section from an evaluation's metrics (``accuracy_metrics``)."""
    lines = []
    for dataset, figures in metrics["datasets"].items():
        correct = round(figures["accuracy"] * figures["n"])
        low, high = wilson_interval(correct, figures["n"])
        lines.append(f"- {dataset}: {100 * figures['accuracy']:.1f}% ({correct} of "
                     f"{figures['n']}; Wilson 95% [{100 * low:.1f}, {100 * high:.1f}]), "
                     f"{figures['unanswered']} without an answer")
    return "\n".join([f"Test accuracy ({settings}):", "", *lines])



def test_examples(settings: EvaluateParams) -> list[PreparedExample]:
    from cotdistill.jsonl import read_records

    return first_per_dataset(read_records(layout.prepared("test"), PreparedExample),
                             settings.max_examples)


def transfer_examples() -> list[PreparedExample]:
    """The held-out tasks' test questions that ``prepare`` wrote (none when there are none, or
    when the prepared data predates them: a warning says so)."""
    from cotdistill.jsonl import read_records

    path = layout.prepared("transfer")
    if not path.is_file():
        log.warning("%s: not found, so no held-out tasks are scored (run `cotdistill prepare` "
                    "to write it)", path)
        return []
    return read_records(path, PreparedExample, allow_empty=True)


def transfer_metrics(predictions: list[Prediction]) -> dict:
    """metrics.json's ``transfer``: accuracy per held-out task (``accuracy_metrics``' figures)."""
    return accuracy_metrics(predictions)["datasets"] if predictions else {}


def record_results(
    params, student: str, method: str, predictions: list[Prediction], *, started: float,
    training_run_id: str | None, lineage: dict[str, Path], run_params: dict,
    extra: dict | None = None, tags: dict[str, str] | None = None,
    extra_metrics: dict[str, float] | None = None,
    log_model: Callable[[dict], None] | None = None,
    extra_predictions: dict[str, list[Prediction]] | None = None,
) -> dict:
    """Write predictions and metrics under reports/eval/, and log them to MLflow.

    Each evaluation is an MLflow run of its own (MLflow params cannot change, and
    ``dvc exp run -S evaluate.max_examples=5`` must be able to evaluate again). When the
    training run ``training_run_id`` still exists, the evaluation is its child run, and its
    test accuracy is also logged as a metric of the training run, whose tags stay as they were.
    ``started`` (``time.time()`` when the stage began) is the run's start, so that the UI shows
    how long the evaluation took, not how long logging took. ``log_model(metrics)`` logs a
    model to the evaluation's run (a Socratic pair, which only evaluation sees whole).
    ``extra_predictions`` (name -> predictions) are written beside, as
    ``predictions_<name>.jsonl``.
    """
    from cotdistill.jsonl import write_records

    metrics = {**accuracy_metrics(predictions), **(extra or {})}
    folder = layout.eval_reports(student, method)
    with publish() as out:  # nothing moves into place unless MLflow logging succeeded too
        staged = out.file(folder / "predictions.jsonl")
        write_records(staged, predictions)
        for name, rows in (extra_predictions or {}).items():  # e.g. the few-shot evaluation
            write_records(out.file(folder / f"predictions_{name}.jsonl"), rows)
        write_text(out.file(folder / "metrics.json"), json.dumps(metrics, indent=2) + "\n")
        _log_results(params, student, method, metrics, staged, started=started,
                     training_run_id=training_run_id,
                     lineage=lineage, run_params=run_params, tags=tags or {},
                     extra_metrics=extra_metrics or {}, log_model=log_model)
    log.info("%s/%s: test accuracy %.3f on %d questions (%d without an answer)", student,
             method, metrics["accuracy"], metrics["n"], metrics["unanswered"])
    return metrics


def _log_results(params, student: str, method: str, metrics: dict, predictions: Path, *,
                 started: float, training_run_id: str | None, lineage: dict[str, Path], run_params: dict,
                 tags: dict[str, str], extra_metrics: dict[str, float],
                 log_model: Callable[[dict], None] | None = None) -> None:
    import mlflow

    from cotdistill import tracking

    experiment = tracking.use_experiment(params.mlflow)
    client = mlflow.MlflowClient()
    parent = None
    if training_run_id:
        try:
            parent = client.get_run(training_run_id).info.run_id
        except Exception:  # noqa: BLE001 - the store was reset since training
            parent = None
    run_tags = {"student": student, "method": method, **tags, **tracking.lineage_tags(lineage)}
    if parent is not None:
        run_tags.update({"mlflow.parentRunId": parent, "training_run_id": parent})
    name = f"{student}/{method}" if parent is None else f"{student}/{method} (evaluate)"
    created = client.create_run(experiment, start_time=int(started * 1000), tags=run_tags,
                                run_name=name)
    with mlflow.start_run(run_id=created.info.run_id):
        mlflow.log_params(run_params)
        tracking.log_datasets(run_tags)
        figures = {"test_accuracy": metrics["accuracy"], "test_n": metrics["n"],
                   "test_unanswered_share": metrics["unanswered_share"],
                   **{f"test_accuracy/{dataset}": values["accuracy"]
                      for dataset, values in metrics["datasets"].items()},
                   **{f"transfer_accuracy/{dataset}": values["accuracy"]
                      for dataset, values in metrics.get("transfer", {}).items()},
                   **extra_metrics}
        mlflow.log_metrics({key: float(value) for key, value in figures.items()})
        mlflow.log_text(predictions.read_text(encoding="utf-8"), "predictions.jsonl")
        if log_model is not None:
            log_model(metrics)
    # the training run keeps its own figures: an evaluation (with other settings, perhaps) is
    # its child run and never overwrites them; a registered model of that run gets them on its
    # card, with the evaluation run that measured them
    if parent is not None:
        settings = ", ".join(f"{key} {value}" for key, value in run_params.items())
        tracking.annotate_versions(
            params.mlflow, parent, test_section(metrics, f"evaluate run "
                                                f"{created.info.run_id}; {settings}"),
            {"test_accuracy": f"{metrics['accuracy']:.4f}", "test_n": str(metrics["n"]),
             "evaluate_run_id": created.info.run_id})
