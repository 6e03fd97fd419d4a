"""The ``train`` stage: fine-tune one student on one method's curated examples.

Hugging Face ``Trainer`` does the loop; DeepSpeed is used when ``train.hparams.deepspeed`` is
``on``, or ``auto`` with CUDA available (see :mod:`cotdistill.student.deepspeed_setup`). The model and
tokenizer are saved whole under ``models/<student>/<method>/`` with ``train_info.json``, the
loss curve under ``reports/train/<student>/<method>/``, and everything is logged to MLflow.

Usage: ``cotdistill train --student smollm2-135m --method fine_tune_cot``.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from cotdistill import layout
from cotdistill.student import deepspeed_setup
from cotdistill.lm import store as model_store
from cotdistill.atomic import atomic_dir, atomic_file, write_text
from cotdistill.errors import CotdistillError
from cotdistill.student.selection import ValidationSelection, selection_callback
from cotdistill.methods.base import METHODS
from cotdistill.params import HParams
from cotdistill.records import CuratedExample
from cotdistill.student.data import PadCollator, encode

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
    kd: dict[str, float] = field(default_factory=dict)  # KD from stored log-probs: coverage

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
    selection: ValidationSelection | None = None, on_val=None,
) -> TrainResult:
    """Train ``model_spec`` on ``examples`` and save model + tokenizer into ``output_dir``.

    ``on_log(step, loss)`` is called at every logging step (MLflow hooks in here). With a
    ``selection``, checkpoints are scored on validation (``on_val(step, accuracy)``) and the
    best one is what is saved.
    """
    import torch
    from transformers import Trainer, TrainingArguments, set_seed

    if not examples:
        raise CotdistillError(f"{key}: no training examples to train on")
    set_seed(hparams.seed)
    model, tokenizer = model_store.load_causal_lm(model_spec, key)
    encoder_decoder = bool(model.config.is_encoder_decoder)
    if hparams.packing and encoder_decoder:
        raise CotdistillError(f"{key}: train.hparams.packing is for decoder-only students")
    if hparams.lora is not None:
        model = _with_lora(model, hparams.lora, encoder_decoder)
    features = [encode(tokenizer, e.input, e.target, hparams.max_length,
                       encoder_decoder=encoder_decoder) for e in examples]
    weighted = any(e.task is not None or e.weight is not None for e in examples)
    if weighted:  # task weight (multi-task methods) x example weight (down-weighted hints)
        for feature, example in zip(features, examples):
            task = hparams.rationale_weight if example.task == "rationale" else 1.0
            feature["weight"] = task * (example.weight if example.weight is not None else 1.0)
    kd_teacher, kd_figures = None, {}
    if hparams.kd is not None or weighted:
        if encoder_decoder or hparams.packing:
            raise CotdistillError(f"{key}: token-level KD and task or example weights need a "
                                  "decoder-only student without packing")
        if hparams.kd is not None and hparams.kd.source == "model":
            kd_teacher = _kd_teacher(hparams.kd.teacher, tokenizer)
        elif hparams.kd is not None:
            kd_figures = _attach_stored_distributions(features, examples, tokenizer)
    result = TrainResult(examples=len(features), deepspeed=use_deepspeed, kd=kd_figures)
    if use_deepspeed:
        deepspeed_setup.prepare_environment()
    with tempfile.TemporaryDirectory(prefix="cotdistill-train-") as scratch:
        arguments = TrainingArguments(
            output_dir=scratch,
            per_device_train_batch_size=hparams.batch_size,
            gradient_accumulation_steps=hparams.grad_accum,
            learning_rate=hparams.learning_rate,
            num_train_epochs=hparams.epochs,
            max_steps=hparams.max_steps,
            warmup_steps=hparams.warmup_ratio,  # a float in [0, 1) is a ratio of all steps
            lr_scheduler_type=hparams.lr_scheduler,
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
            deepspeed=deepspeed_setup.config(hparams.deepspeed_config) if use_deepspeed else None,
        )
        callbacks = [_loss_recorder(result, on_log)]
        if selection is not None:
            callbacks.append(selection_callback(selection, tokenizer, on_val))
        plain = kd_teacher is None and not kd_figures and not weighted
        trainer_class = Trainer if plain else _distillation_trainer()
        extra = {} if trainer_class is Trainer else {"kd_teacher": kd_teacher, "kd": hparams.kd}
        trainer = trainer_class(
            model=model, args=arguments, train_dataset=features,
            data_collator=_collator(tokenizer, hparams.packing), callbacks=callbacks, **extra,
        )
        started = time.perf_counter()
        output = trainer.train()
        result.seconds = time.perf_counter() - started
        result.steps = output.global_step
        result.engine = type(trainer.model_wrapped).__name__
        trainer.accelerator.wait_for_everyone()
        trained = trainer.accelerator.unwrap_model(trainer.model_wrapped)
        if selection is not None and selection.best_state is not None:
            trained.load_state_dict(selection.best_state)  # the best checkpoint, not the last
        if hparams.lora is not None:
            trained = trained.merge_and_unload()  # a plain checkpoint, loadable without peft
        trained.save_pretrained(output_dir)
        tokenizer.save_pretrained(output_dir)
        if use_deepspeed:
            deepspeed_setup.teardown(trainer)
    return result


def train_stages(
    examples: list[CuratedExample], model_spec: str, key: str, hparams: HParams,
    output_dir: Path, *, use_deepspeed: bool, two_stage: bool = False, on_log=None,
    selection: ValidationSelection | None = None, on_val=None,
) -> TrainResult:
    """One training, or two-stage CoT fine-tuning (CoT Collection): first on the pooled
    examples of every dataset, then, from that model, on one dataset's
    (``train.hparams.two_stage_dataset``; default the first dataset in the data). Validation
    selection and the logged losses belong to the second stage, whose steps follow the first's.
    """
    if not two_stage:
        return train_student(examples, model_spec, key, hparams, output_dir,
                             use_deepspeed=use_deepspeed, on_log=on_log, selection=selection,
                             on_val=on_val)
    target = hparams.two_stage_dataset or examples[0].dataset
    focused = [example for example in examples if example.dataset == target]
    if not focused:
        raise CotdistillError(f"train.hparams.two_stage_dataset: no training examples of "
                              f"{target!r} (have: {', '.join(sorted({e.dataset for e in examples}))})")
    with tempfile.TemporaryDirectory(prefix="cotdistill-stage1-") as scratch:
        first = train_student(examples, model_spec, key, hparams, Path(scratch) / "pooled",
                              use_deepspeed=use_deepspeed, on_log=on_log)
        offset = first.steps
        second = train_student(
            focused, str(Path(scratch) / "pooled"), key, hparams, output_dir,
            use_deepspeed=use_deepspeed, selection=selection, on_val=on_val,
            on_log=(lambda step, loss: on_log(offset + step, loss)) if on_log else None,
        )
    second.losses = first.losses + [(offset + step, loss) for step, loss in second.losses]
    second.steps += offset
    second.examples = first.examples
    second.seconds += first.seconds
    return second


def _collator(tokenizer, packing: bool):
    """Padding per batch, or packing: the batch's examples flattened into one row whose
    position ids restart at each example, so no compute is spent on padding."""
    if not packing:
        return PadCollator(tokenizer.pad_token_id)
    from transformers import DataCollatorWithFlattening

    return DataCollatorWithFlattening(return_position_ids=True)


def _attach_stored_distributions(features: list[dict], examples: list[CuratedExample],
                                 tokenizer) -> dict[str, float]:
    """Give each feature its sparse teacher distributions (``feature["kd"]``: positions in the
    full sequence) from the log-probabilities curate stored; return coverage figures.

    A method without rationales (answer_only) has none to use and trains on cross-entropy.
    """
    from cotdistill.student.kd import kd_targets
    from cotdistill.student.data import IGNORE

    method = examples[0].method
    if not METHODS[method].uses_rationale:
        log.info("%s: no teacher rationales, so no stored distributions: cross-entropy only",
                 method)
        return {}
    target_ids = [tokenizer(e.target, add_special_tokens=False)["input_ids"] for e in examples]
    per_example, figures = kd_targets(tokenizer, examples, target_ids, method)
    for feature, positions in zip(features, per_example):
        offset = next((i for i, label in enumerate(feature["labels"]) if label != IGNORE),
                      len(feature["labels"]))
        width = len(feature["input_ids"])
        feature["kd"] = [(offset + i, ids, lps) for i, ids, lps in positions
                         if offset + i < width]
    log.info("%s: teacher distributions at %d target tokens of %d examples (%.1f%% of the "
             "teacher's tokens line up)", method, figures["kd_positions"],
             figures["kd_examples"], 100 * figures["kd_aligned_share"])
    return figures


def _kd_teacher(spec: str, student_tokenizer):
    """The KD teacher, refused unless it shares the student's tokenizer (token-level KD
    compares distributions over the same vocabulary, position by position)."""
    import torch

    teacher, tokenizer = model_store.load_causal_lm(spec, "train.hparams.kd.teacher")
    if tokenizer.get_vocab() != student_tokenizer.get_vocab():
        raise CotdistillError(
            f"train.hparams.kd.teacher: {spec!r} has a different tokenizer from the student's; "
            "token-level KD needs a shared tokenizer"
        )
    teacher.eval()
    if torch.cuda.is_available():
        teacher.to("cuda")
    for parameter in teacher.parameters():
        parameter.requires_grad_(False)
    return teacher


def _distillation_trainer():
    """A ``Trainer`` whose loss is :func:`cotdistill.student.losses.distillation_loss`."""
    import torch
    from transformers import Trainer

    from cotdistill.student.losses import distillation_loss

    class DistillationTrainer(Trainer):
        def __init__(self, *args, kd_teacher=None, kd=None, **kwargs):
            super().__init__(*args, **kwargs)
            self.kd_teacher, self.kd = kd_teacher, kd

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            weights = inputs.pop("weight", None)
            kd_ids, kd_logprobs = inputs.pop("kd_ids", None), inputs.pop("kd_logprobs", None)
            labels = inputs.pop("labels")
            outputs = model(**inputs)
            teacher_logits = None
            if self.kd_teacher is not None:
                with torch.no_grad():
                    teacher_logits = self.kd_teacher(**inputs).logits
            loss = distillation_loss(
                outputs.logits, labels, weights=weights, teacher_logits=teacher_logits,
                kd_weight=self.kd.weight if self.kd else 0.0,
                temperature=self.kd.softening if self.kd else 1.0,
                kd_ids=kd_ids, kd_logprobs=kd_logprobs,
            )
            return (loss, outputs) if return_outputs else loss

    return DistillationTrainer


def _with_lora(model, lora, encoder_decoder: bool):
    """Wrap ``model`` with LoRA adapters (peft); only they train."""
    from peft import LoraConfig, TaskType, get_peft_model

    config = LoraConfig(
        r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
        target_modules=lora.target_modules,
        task_type=TaskType.SEQ_2_SEQ_LM if encoder_decoder else TaskType.CAUSAL_LM,
    )
    return get_peft_model(model, config)


def _validation_selection(hparams: HParams, method: str) -> ValidationSelection | None:
    """Validation questions and how to score them, when model selection is on."""
    if hparams.select_every is None:
        return None
    from cotdistill.student.evaluation import student_reader
    from cotdistill.jsonl import read_records
    from cotdistill.records import PreparedExample
    from cotdistill.datasets.splits import first_per_dataset

    path = layout.prepared("val")
    examples = read_records(path, PreparedExample, allow_empty=True)
    if not examples:
        raise CotdistillError(
            f"{path}: no validation questions to select a checkpoint on "
            "(raise prepare.val_fraction, or set train.hparams.select_every: null)"
        )
    return ValidationSelection(
        examples=first_per_dataset(examples, hparams.select_max_examples),
        prompt=METHODS[method].format_input, read=student_reader(method),
        every=hparams.select_every, max_new_tokens=hparams.select_max_new_tokens,
    )


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
    hparams = params.train.hparams
    use_ds = deepspeed_setup.wanted(hparams.deepspeed)
    selection = _validation_selection(hparams, method)
    if int(os.environ.get("RANK", "0")) != 0:
        # under a multi-process launcher every rank trains; only rank 0 writes and logs
        with tempfile.TemporaryDirectory() as scratch:
            return train_student(examples, spec, key, hparams, Path(scratch) / "model",
                                 use_deepspeed=use_ds, selection=selection)
    out_dir = layout.model_dir(student, method)
    reports = layout.train_reports(student, method)
    experiment = tracking.use_experiment(params.mlflow)
    inputs = {"curated": data_path}
    if selection is not None:
        inputs["val"] = layout.prepared("val")
    tags = {"student": student, "method": method, "stage": "train",
            **tracking.lineage_tags(inputs)}
    with (
        atomic_dir(out_dir) as staging,
        mlflow.start_run(experiment_id=experiment, run_name=f"{student}/{method}", tags=tags) as run,
    ):
        mlflow.log_params({"student": student, "student_model": spec, "method": method,
                           "deepspeed": use_ds, **hparams.model_dump()})
        result = train_stages(
            examples, spec, key, hparams, staging, use_deepspeed=use_ds,
            two_stage=METHODS[method].two_stage,
            on_log=lambda step, loss: mlflow.log_metric("train_loss", loss, step=step),
            selection=selection,
            on_val=lambda step, acc: mlflow.log_metric("val_accuracy", acc, step=step),
        )
        metrics = {"first_loss": result.first_loss, "final_loss": result.final_loss,
                   "steps": result.steps, "train_examples": result.examples,
                   "train_seconds": round(result.seconds, 2), **result.kd}
        if selection is not None:
            metrics.update(best_step=selection.best_step,
                           best_val_accuracy=selection.best_accuracy,
                           val_examples=len(selection.examples))
        mlflow.log_metrics({k: float(v) for k, v in metrics.items()})
        logged = tracking.log_student(staging)
        if selection is not None:
            tracking.register_if_best(params.mlflow, run.info.run_id, logged.model_uri,
                                      selection.best_accuracy)
        info = {"run_id": run.info.run_id, "student": student, "student_model": spec,
                "method": method, "deepspeed": use_ds, **metrics}
        (staging / TRAIN_INFO).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    history = selection.history if selection is not None else []
    write_text(reports / "val.csv", "step,val_accuracy\n" + "".join(
        f"{step},{accuracy:.6f}\n" for step, accuracy in history))
    write_loss_curve(reports / "loss.csv", result)
    with atomic_file(reports / "metrics.json") as tmp:
        tmp.write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    log.info("trained %s/%s: %d steps, loss %.3f -> %.3f", student, method, result.steps,
             result.first_loss, result.final_loss)
    return result
