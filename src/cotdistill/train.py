"""The ``train`` stage: fine-tune one student on one method's curated examples.

Hugging Face ``Trainer`` does the loop; DeepSpeed is used when ``train.hparams.deepspeed`` is
``on``, or ``auto`` with CUDA available (see :mod:`cotdistill.deepspeed_setup`). The model and
tokenizer are saved whole under ``models/<student>/<method>/`` with ``train_info.json``, the
loss curve under ``reports/train/<student>/<method>/``, and everything is logged to MLflow.

Usage: ``cotdistill train --student smollm2-135m --method fine_tune_cot``.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from cotdistill import deepspeed_setup, layout, model_store
from cotdistill.atomic import atomic_dir, atomic_file
from cotdistill.errors import CotdistillError
from cotdistill.params import HParams
from cotdistill.records import CuratedExample
from cotdistill.training_data import PadCollator, encode

log = logging.getLogger(__name__)

TRAIN_INFO = "train_info.json"  # beside the saved model: the MLflow run id and training figures


@dataclass
class TrainResult:
    losses: list[tuple[int, float]] = field(default_factory=list)  # (step, training loss)
    steps: int = 0
    examples: int = 0
    seconds: float = 0.0
    deepspeed: bool = False
    engine: str = ""  # the class that wrapped the model for training, e.g. DeepSpeedEngine

    @property
    def first_loss(self) -> float:
        return self.losses[0][1] if self.losses else float("nan")

    @property
    def final_loss(self) -> float:
        return self.losses[-1][1] if self.losses else float("nan")


def _loss_recorder(result: TrainResult, on_log=None):
    from transformers import TrainerCallback

    class Recorder(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                result.losses.append((state.global_step, float(logs["loss"])))
                if on_log is not None:
                    on_log(state.global_step, float(logs["loss"]))

    return Recorder()


def train_student(
    examples: list[CuratedExample], model_spec: str, key: str, hparams: HParams,
    output_dir: Path, *, use_deepspeed: bool, on_log=None,
) -> TrainResult:
    """Train ``model_spec`` on ``examples`` and save model + tokenizer into ``output_dir``.

    ``on_log(step, loss)`` is called at every logging step (MLflow hooks in here).
    """
    import torch
    from transformers import Trainer, TrainingArguments, set_seed

    if not examples:
        raise CotdistillError(f"{key}: no training examples to train on")
    set_seed(hparams.seed)
    model, tokenizer = model_store.load_causal_lm(model_spec, key)
    features = [encode(tokenizer, e.input, e.target, hparams.max_length) for e in examples]
    result = TrainResult(examples=len(features), deepspeed=use_deepspeed)
    with tempfile.TemporaryDirectory(prefix="cotdistill-train-") as scratch:
        arguments = TrainingArguments(
            output_dir=scratch,
            per_device_train_batch_size=hparams.batch_size,
            gradient_accumulation_steps=hparams.grad_accum,
            learning_rate=hparams.learning_rate,
            num_train_epochs=hparams.epochs,
            max_steps=hparams.max_steps,
            warmup_steps=hparams.warmup_ratio,  # a float in [0, 1) is a ratio of all steps
            weight_decay=hparams.weight_decay,
            logging_steps=hparams.logging_steps,
            save_strategy="no",
            report_to="none",
            seed=hparams.seed,
            data_seed=hparams.seed,
            use_cpu=not torch.cuda.is_available(),
            bf16=torch.cuda.is_available() and torch.cuda.is_bf16_supported(),
            dataloader_num_workers=0,
            remove_unused_columns=False,
            disable_tqdm=False,
            deepspeed=deepspeed_setup.config() if use_deepspeed else None,
        )
        trainer = Trainer(
            model=model, args=arguments, train_dataset=features,
            data_collator=PadCollator(tokenizer.pad_token_id),
            callbacks=[_loss_recorder(result, on_log)],
        )
        started = time.perf_counter()
        output = trainer.train()
        result.seconds = time.perf_counter() - started
        result.steps = output.global_step
        result.engine = type(trainer.model_wrapped).__name__
        trainer.accelerator.wait_for_everyone()
        unwrapped = trainer.accelerator.unwrap_model(trainer.model_wrapped)
        unwrapped.save_pretrained(output_dir)
        tokenizer.save_pretrained(output_dir)
        if use_deepspeed:
            deepspeed_setup.teardown(trainer)
    return result


def write_loss_curve(path: Path, result: TrainResult) -> None:
    with atomic_file(path) as tmp:
        lines = ["step,loss"] + [f"{step},{loss:.6f}" for step, loss in result.losses]
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")


def run(params, student: str, method: str) -> TrainResult:
    """The stage: read curated data, train, save, log to MLflow."""
    import mlflow

    from cotdistill import tracking
    from cotdistill.jsonl import read_records

    spec = params.student(student).model
    key = f"students.{student}.model"
    model_store.resolve(spec, key)  # a missing path fails before anything else happens
    data_path = layout.curated(method)
    examples = read_records(data_path, CuratedExample, allow_empty=True)
    if not examples:
        raise CotdistillError(
            f"{data_path}: no training examples for method {method} "
            "(for fine_tune_cot: the teacher answered no training question correctly)"
        )
    use_ds = deepspeed_setup.wanted(params.train.hparams.deepspeed)
    out_dir = layout.model_dir(student, method)
    reports = layout.train_reports(student, method)
    experiment = tracking.use_experiment(params.mlflow)
    tags = {"student": student, "method": method, "stage": "train", **tracking.lineage_tags(
        {"curated": data_path})}
    with (
        atomic_dir(out_dir) as staging,
        mlflow.start_run(experiment_id=experiment, run_name=f"{student}/{method}", tags=tags) as run,
    ):
        mlflow.log_params({"student": student, "student_model": spec, "method": method,
                           "deepspeed": use_ds, **params.train.hparams.model_dump()})
        result = train_student(
            examples, spec, key, params.train.hparams, staging, use_deepspeed=use_ds,
            on_log=lambda step, loss: mlflow.log_metric("train_loss", loss, step=step),
        )
        metrics = {"first_loss": result.first_loss, "final_loss": result.final_loss,
                   "steps": result.steps, "train_examples": result.examples,
                   "train_seconds": round(result.seconds, 2)}
        mlflow.log_metrics({k: float(v) for k, v in metrics.items()})
        mlflow.log_artifacts(str(staging), artifact_path="model")
        info = {"run_id": run.info.run_id, "student": student, "student_model": spec,
                "method": method, "deepspeed": use_ds, **metrics}
        (staging / TRAIN_INFO).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    write_loss_curve(reports / "loss.csv", result)
    with atomic_file(reports / "metrics.json") as tmp:
        tmp.write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    log.info("trained %s/%s: %d steps, loss %.3f -> %.3f", student, method, result.steps,
             result.first_loss, result.final_loss)
    return result
