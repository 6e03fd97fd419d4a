"""One training run's record, shared by ``train`` and ``socratic-train``.

Both stages write the same things in the same way: an MLflow run with the student's params and
its loss (and validation) curve, then ``train_info.json`` beside the weights and the curves and
metrics under ``reports/train/<student>/<method>/``. Everything lands in a :func:`publish`
transaction, so a run that fails leaves no half-written model or report behind.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cotdistill import layout, tracking
from cotdistill.atomic import Staging, publish, write_text
from cotdistill.params import Params
from cotdistill.student.training import TrainResult, write_loss_curve


@dataclass
class TrainingRun:
    """An open run: ``staging`` is where the model is saved; :meth:`record` closes the books."""

    student: str
    spec: str
    method: str
    run_id: str
    staging: Path
    out: Staging
    tags: Mapping[str, str]  # the run's tags, the inputs' hashes (``input.<name>.md5``) too

    @staticmethod
    def log_trainer(step: int, logs: Mapping[str, float]) -> None:
        """The Trainer's logged figures at ``step``; its ``loss`` is MLflow's ``train_loss``."""
        import mlflow

        mlflow.log_metrics({("train_loss" if key == "loss" else key): value
                            for key, value in logs.items()}, step=step)

    @staticmethod
    def log_val(step: int, accuracy: float, probe: float | None = None) -> None:
        """A validation scoring; ``probe``: the held-out task's accuracy at the same step."""
        import mlflow

        mlflow.log_metric("val_accuracy", accuracy, step=step)
        if probe is not None:
            mlflow.log_metric("transfer_probe_accuracy", probe, step=step)

    def record(self, result: TrainResult, metrics: Mapping[str, float], *,
               identity: Mapping[str, Any], deepspeed: bool, extra: Mapping[str, Any] = {},
               history: Sequence[tuple[int, float]] | None = None,
               probe_history: Sequence[tuple[int, float]] = ()) -> None:
        """Log ``metrics`` to MLflow and write ``train_info.json`` and the reports.

        ``identity`` (e.g. the Socratic role) follows the method in ``train_info.json``;
        ``extra`` (timings) goes there after the metrics but not into ``metrics.json``;
        ``history`` is the validation curve, written as ``val.csv`` when there is one, with
        ``probe_history`` (a held-out task's accuracy at the same steps) as a third column.
        """
        import mlflow

        mlflow.log_metrics({k: float(v) for k, v in metrics.items()})
        info = {"run_id": self.run_id, "student": self.student, "student_model": self.spec,
                "method": self.method, **identity, "deepspeed": deepspeed, **metrics, **extra}
        write_text(self.staging / layout.TRAIN_INFO, json.dumps(info, indent=2) + "\n")
        reports = layout.train_reports(self.student, self.method)
        if history is not None:
            probes = dict(probe_history)
            header = "step,val_accuracy" + (",transfer_accuracy" if probes else "")
            write_text(self.out.file(reports / "val.csv"), header + "\n" + "".join(
                f"{step},{accuracy:.6f}" + (f",{probes[step]:.6f}" if probes else "") + "\n"
                for step, accuracy in history))
        write_loss_curve(self.out.file(reports / "loss.csv"), result)
        write_text(self.out.file(reports / "metrics.json"), json.dumps(metrics, indent=2) + "\n")


@contextmanager
def training_run(params: Params, student: str, method: str, *, stage: str,
                 inputs: Mapping[str, Path], run_params: Mapping[str, Any]
                 ) -> Iterator[TrainingRun]:
    """Open the MLflow run ``<student>/<method>`` (tagged with ``stage`` and the lineage of
    ``inputs``) and the publish transaction; the model and its curves move into place together
    when the block ends without an error."""
    import mlflow

    spec = params.student(student).model
    experiment = tracking.use_experiment(params.mlflow)
    tags = {"student": student, "method": method, "stage": stage,
            **tracking.lineage_tags(dict(inputs))}
    with (
        publish() as out,
        mlflow.start_run(experiment_id=experiment, run_name=f"{student}/{method}",
                         tags=tags) as run,
    ):
        mlflow.log_params({"student": student, "student_model": spec, "method": method,
                           **run_params})
        tracking.log_datasets(tags)
        yield TrainingRun(student=student, spec=spec, method=method, run_id=run.info.run_id,
                          staging=out.dir(layout.model_dir(student, method)), out=out,
                          tags=tags)
