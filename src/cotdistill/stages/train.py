"""The ``train`` stage: fine-tune one student on one method's curated examples.

Hugging Face ``Trainer`` does the loop (:mod:`cotdistill.student.training`); DeepSpeed is used
when ``train.hparams.deepspeed`` is ``on``, or ``auto`` with CUDA available. The model and
tokenizer are saved whole under ``models/<student>/<method>/`` with ``train_info.json``, the
loss and validation curves under ``reports/train/<student>/<method>/``, and everything is
logged to MLflow; the best student on validation is registered.

Usage: ``cotdistill train --student smollm2-135m --method fine_tune_cot``.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from cotdistill import layout, prompts, tracking
from cotdistill.datasets.splits import first_per_dataset
from cotdistill.errors import CotdistillError
from cotdistill.jsonl import read_records
from cotdistill.lm import store as model_store
from cotdistill.methods.registry import METHODS
from cotdistill.params import HParams, Params
from cotdistill.records import CuratedExample, PreparedExample
from cotdistill.student import deepspeed_setup, packaged
from cotdistill.stages.training_run import training_run
from cotdistill.student.selection import ValidationSelection
from cotdistill.student.training import (
    TrainResult,
    check_trainer_settings,
    train_stages,
    two_stage_target,
)

log = logging.getLogger(__name__)


def launcher_command(launcher: str, arguments: list[str]) -> list[str] | None:
    """The multi-process launch of ``cotdistill ARGUMENTS`` when it is wanted, else None.

    ``auto``: torchrun with one process per GPU when there are several and no launcher started
    this process already (RANK unset); ``none``: never. Multi-node runs are started by hand
    with ``deepspeed --hostfile`` (README).
    """
    if launcher == "none" or "RANK" in os.environ:
        return None
    import torch

    gpus = torch.cuda.device_count()
    if gpus < 2:
        return None
    return [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={gpus}",
            "-m", "cotdistill.cli", *arguments]


def run_or_launch(params: Params, student: str, method: str, params_file: Path) -> int:
    """Train here, or, with several GPUs (``train.hparams.launcher: auto``), under torchrun
    with one process per GPU, each rank running ``cotdistill train`` again. The exit status."""
    command = launcher_command(params.train.hparams.launcher,
                               ["train", "--student", student, "--method", method,
                                "--params", str(params_file)])
    if command is None:
        run(params, student, method)
        return 0
    log.info("launching %s", " ".join(command))
    return subprocess.run(command).returncode


def _validation_selection(hparams: HParams, method: str, tasks: prompts.Tasks,
                          only_dataset: str | None = None) -> ValidationSelection | None:
    """Validation questions and how to score them, when model selection is on (two-stage CoT:
    only the second stage's dataset's, ``only_dataset``)."""
    if hparams.select_every is None:
        return None
    path = layout.prepared("val")
    examples = [example for example in read_records(path, PreparedExample, allow_empty=True)
                if only_dataset is None or example.dataset == only_dataset]
    if not examples:
        raise CotdistillError(
            f"{path}: no validation questions to select a checkpoint on "
            "(raise prepare.val_fraction, or set train.hparams.select_every: null)"
        )
    return ValidationSelection(
        examples=first_per_dataset(examples, hparams.select_max_examples),
        probe=_probe(hparams),
        prompt=lambda example: METHODS[method].student_input(
            example.question, prompts.of(tasks, example.dataset)),
        read=METHODS[method].read,
        calculator=lambda example: METHODS[method].calculates(example.answer_type),
        every=hparams.select_every, max_new_tokens=hparams.select_max_new_tokens,
        patience=hparams.patience,
    )


def _probe(hparams: HParams) -> list[PreparedExample]:
    """``train.hparams.transfer_probe`` questions of the first held-out task that ``prepare``
    wrote (none when it is off or there is no held-out task)."""
    if hparams.transfer_probe is None:
        return []
    from cotdistill.student.evaluation import transfer_examples

    held_out = transfer_examples()
    first = [e for e in held_out if e.dataset == held_out[0].dataset] if held_out else []
    return first[:hparams.transfer_probe]


def run(params: Params, student: str, method: str) -> TrainResult:
    """The stage: read curated data, train, save, log to MLflow."""
    import mlflow

    spec, key = params.student(student).model, f"students.{student}.model"
    examples = _checked_inputs(params, method, spec, key)
    hparams = params.train.hparams
    use_ds = deepspeed_setup.wanted(hparams.deepspeed)
    two_stage = METHODS[method].two_stage
    target = two_stage_target(examples, params.train.method_params) if two_stage else None
    selection = _validation_selection(hparams, method, params.prepare.tasks(), target)
    if int(os.environ.get("RANK", "0")) != 0:
        # under a multi-process launcher every rank trains; only rank 0 writes and logs
        with tempfile.TemporaryDirectory() as scratch:
            return train_stages(examples, spec, key, hparams, Path(scratch) / "model",
                                use_deepspeed=use_ds, two_stage=two_stage,
                                selection=selection, methods=params.train.method_params)
    inputs = {"curated": layout.curated(method)}
    if selection is not None:
        inputs["val"] = layout.prepared("val")
    probe = {}
    if selection is not None and selection.probe:
        inputs["transfer"] = layout.prepared("transfer")
        probe = {"transfer_probe_dataset": selection.probe[0].dataset}
    own = getattr(params.train.method_params, method, None)  # e.g. the format mixture
    own_params = {f"{method}.{key}": value for key, value in own.model_dump().items()} \
        if own is not None else {}
    with training_run(params, student, method, stage="train", inputs=inputs,
                      run_params={"deepspeed": use_ds, **hparams.model_dump(), **probe,
                                  **own_params}) as run:
        result = train_stages(
            examples, spec, key, hparams, run.staging, use_deepspeed=use_ds,
            two_stage=two_stage, on_log=run.log_trainer,
            selection=selection, on_val=run.log_val, methods=params.train.method_params,
        )
        card = _card(params, student, method, examples, selection)
        timing = {"train_seconds": round(result.seconds, 2), "precision": result.precision,
                  "stopped_early": result.stopped_early}
        mlflow.log_metric("train_seconds", timing["train_seconds"])
        mlflow.set_tag("precision", result.precision)
        run.record(result, _metrics(result, selection), identity={}, deepspeed=use_ds,
                   extra=timing, history=selection.history if selection is not None else [],
                   probe_history=selection.probe_history if selection is not None else ())
    # after the files are in place: a failed run is never logged as a model nor takes the alias
    log_model = _model_logger(run.run_id, layout.model_dir(student, method), card)
    if selection is not None:
        tracking.register_if_best(params.mlflow, run.run_id, log_model,
                                  selection.best_accuracy, run.tags[tracking.VALIDATION_TAG],
                                  description=packaged.describe(card))
    elif params.mlflow.log_models == "all":
        log_model()
    log.info("trained %s/%s: %d steps, loss %.3f -> %.3f", student, method, result.steps,
             result.first_loss, result.final_loss)
    return result


def _model_logger(run_id: str, model_dir: Path, card: packaged.Card):
    """Log the published student to its (finished) training run; return the model's URI."""

    def log() -> str:
        import mlflow

        with mlflow.start_run(run_id=run_id):
            return packaged.log_student(model_dir, card).model_uri

    return log


def _checked_inputs(params: Params, method: str, spec: str, key: str) -> list[CuratedExample]:
    """The curated examples, after every check that can fail before an MLflow run is opened:
    the student and KD teacher load, the Trainer settings are valid, there is data."""
    model_store.check_model(spec, key)
    hparams = params.train.hparams
    check_trainer_settings(hparams, "train.hparams")
    if deepspeed_setup.wanted(hparams.deepspeed) and hparams.select_every is not None:
        deepspeed_setup.check_selection(hparams.deepspeed_config, "train.hparams")
    if params.train.hparams.kd is not None and params.train.hparams.kd.teacher:
        model_store.check_model(params.train.hparams.kd.teacher, "train.hparams.kd.teacher")
    data_path = layout.curated(method)
    examples = read_records(data_path, CuratedExample, allow_empty=True)
    if not examples:
        raise CotdistillError(
            f"{data_path}: no training examples for method {method} "
            "(for fine_tune_cot: the teacher answered no training question correctly)"
        )
    return examples


def _metrics(result: TrainResult, selection: ValidationSelection | None) -> dict:
    """The run's figures: MLflow metrics, train_info.json and reports/train/.../metrics.json."""
    metrics = {"first_loss": result.first_loss, "final_loss": result.final_loss,
               "steps": result.steps, "train_examples": result.examples,
               "epochs_trained": result.epochs, **result.kd}
    if result.pooled_examples is not None:  # two-stage CoT's first stage
        metrics["pooled_examples"] = result.pooled_examples
    if selection is not None:
        metrics.update(best_step=selection.best_step, best_val_accuracy=selection.best_accuracy,
                       val_examples=len(selection.examples))
    return metrics


def _card(params: Params, student: str, method: str, examples: list[CuratedExample],
          selection: ValidationSelection | None) -> packaged.Card:
    """The model card: what the student is, what it was trained on, how to prompt it."""
    return packaged.card_for(
        params, student, method, sorted({e.dataset for e in examples}),
        example=selection.examples[0].question if selection is not None
        else examples[0].input.removesuffix(prompts.PROMPT_SUFFIX),
        validation=None if selection is None else {
            "accuracy": selection.best_accuracy, "n": len(selection.examples),
            "step": selection.best_step})
