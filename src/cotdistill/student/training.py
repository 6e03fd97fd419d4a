"""Training a student: Hugging Face ``Trainer`` on curated examples, with the options the
methods need (task and example weights, token-level KD, LoRA, packing, two stages) and
DeepSpeed when wanted (:mod:`cotdistill.student.deepspeed_setup`). The ``train`` and
``socratic_train`` stages (:mod:`cotdistill.stages`) call :func:`train_stages` /
:func:`train_student`.
"""

from __future__ import annotations

import logging
import tempfile
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from cotdistill.atomic import atomic_file
from cotdistill.errors import CotdistillError
from cotdistill.lm import precision as numerics
from cotdistill.lm import store as model_store
from cotdistill.methods.registry import METHODS
from cotdistill.params import HParams, MethodParams
from cotdistill.params.train import TRAINER_DEFAULTS, TRAINING_ARGUMENTS
from cotdistill.records import CuratedExample
from cotdistill.student import deepspeed_setup
from cotdistill.student.data import IGNORE, PadCollator, encode
from cotdistill.student.selection import ValidationSelection, selection_callback

log = logging.getLogger(__name__)



@dataclass
class TrainResult:
    losses: list[tuple[int, float]] = field(default_factory=list)  # (step, training loss)
    steps: int = 0
    examples: int = 0  # two-stage CoT: the second stage's (one dataset's)
    pooled_examples: int | None = None  # two-stage CoT: the first stage's, every dataset's
    seconds: float = 0.0
    deepspeed: bool = False
    engine: str = ""  # the class that wrapped the model for training, e.g. DeepSpeedEngine
    precision: str = "fp32"  # what the arithmetic ran in: fp32 or bf16 (autocast)
    epochs: float = 0.0  # passes over the examples actually made (fewer after early stopping)
    stopped_early: bool = False
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
                if on_log is not None:  # the Trainer's own figures: loss, learning rate, ...
                    on_log(state.global_step, {key: float(value) for key, value in logs.items()
                                               if isinstance(value, (int, float))})

    return Recorder()


def train_student(
    examples: list[CuratedExample], model_spec: str, key: str, hparams: HParams,
    output_dir: Path, *, use_deepspeed: bool, on_log=None,
    selection: ValidationSelection | None = None, on_val=None, extra_callbacks=(),
    methods: MethodParams = MethodParams(),
) -> TrainResult:
    """Train ``model_spec`` on ``examples`` and save model + tokenizer into ``output_dir``.

    ``on_log(step, logs)`` gets the Trainer's figures (loss, learning_rate, grad_norm, epoch)
    at every logging step (MLflow hooks in here). With a ``selection``, checkpoints are scored
    on validation (``on_val(step, accuracy)``) and the best one is what is saved.
    ``extra_callbacks`` are more ``TrainerCallback``s (a benchmark's step clock).
    """
    from transformers import TrainingArguments, set_seed

    if not examples:
        raise CotdistillError(f"{key}: no training examples to train on")
    set_seed(hparams.seed)
    model, tokenizer = model_store.load_causal_lm(model_spec, key)
    encoder_decoder = bool(model.config.is_encoder_decoder)
    if hparams.packing is True and encoder_decoder:
        raise CotdistillError(f"{key}: train.hparams.packing is for decoder-only students")
    if hparams.lora is not None:
        model = _with_lora(model, hparams.lora, encoder_decoder)
    features, weighted = _features(examples, tokenizer, hparams.max_length, encoder_decoder,
                                   methods)
    packing = hparams.packing is True or (
        hparams.packing == "auto" and not encoder_decoder and not weighted and hparams.kd is None
        and _varlen_attention(model))
    kd_teacher, kd_figures = _kd_sources(hparams, weighted, encoder_decoder, features, examples,
                                         tokenizer, key)
    precision = _training_precision(hparams, use_deepspeed, key)
    result = TrainResult(examples=len(features), deepspeed=use_deepspeed, kd=kd_figures,
                         precision=precision)
    if use_deepspeed:
        deepspeed_setup.prepare_environment()
    with tempfile.TemporaryDirectory(prefix="cotdistill-train-") as scratch:
        arguments = TrainingArguments(**training_arguments(hparams, scratch, precision,
                                                              use_deepspeed),
                                      train_sampling_strategy=_sampling(hparams, packing))
        callbacks = [_loss_recorder(result, on_log), *extra_callbacks]
        if selection is not None:
            callbacks.append(selection_callback(selection, tokenizer, on_val,
                                                precision=precision))
        trainer = _trainer(model, tokenizer, features, arguments, callbacks, packing=packing,
                           kd_teacher=kd_teacher, kd=hparams.kd,
                           plain=kd_teacher is None and not kd_figures and not weighted)
        started = time.perf_counter()
        output = trainer.train()
        _note_run(result, trainer, output, time.perf_counter() - started, selection)
        _save(trainer, selection, hparams, tokenizer, output_dir)
        if use_deepspeed:
            deepspeed_setup.teardown(trainer)
    return result


def _trainer(model, tokenizer, features: list[dict], arguments, callbacks: list, *,
             packing: bool, kd_teacher, kd, plain: bool):
    """The Trainer of a run: transformers' own, or :func:`_distillation_trainer`'s where the
    loss needs weights or a KD term."""
    from transformers import Trainer

    trainer_class = Trainer if plain else _distillation_trainer()
    extra = {} if plain else {"kd_teacher": kd_teacher, "kd": kd}
    return trainer_class(model=model, args=arguments, train_dataset=features,
                         data_collator=_collator(tokenizer, packing), callbacks=callbacks,
                         **extra)


def _note_run(result: TrainResult, trainer, output, seconds: float,
              selection: ValidationSelection | None) -> None:
    """What the finished Trainer says about the run, into ``result``; every rank logs the
    checkpoint its model selection kept (they must agree)."""
    result.seconds = seconds
    result.steps = output.global_step
    result.epochs = round(float(trainer.state.epoch or 0.0), 4)
    result.stopped_early = selection is not None and selection.stopped_at is not None
    result.engine = type(trainer.model_wrapped).__name__
    if selection is not None:
        log.info("model selection, rank %s of %s: kept step %s (validation %.4f)",
                 os.environ.get("RANK", "0"), os.environ.get("WORLD_SIZE", "1"),
                 selection.best_step, selection.best_accuracy)


def _decodes_with_calculator(method: str) -> bool:
    """Whether a student trained on ``method``'s examples decodes with the calculator. Not every
    example's method is a registered method: Socratic CoT's roles (socratic_qg, socratic_sqs)
    train through here too, and never decode with it."""
    return method in METHODS and METHODS[method].calculator


def _features(examples: list[CuratedExample], tokenizer, max_length: int,
              encoder_decoder: bool, methods: MethodParams) -> tuple[list[dict], bool]:
    """The examples tokenized, and whether any carries a weight: its task's (multi-task
    methods) times its own (down-weighted hinted rationales)."""
    masked = methods.fine_tune_cot_calc.mask_results
    features = [encode(tokenizer, e.input, e.target, max_length, encoder_decoder=encoder_decoder,
                       mask_results=masked and _decodes_with_calculator(e.method))
                for e in examples]
    _check_targets_fit(features, max_length)
    weighted = any(e.weight is not None or (e.task is not None and (
        e.method not in METHODS or METHODS[e.method].task_weight(e.task, methods) != 1.0))
        for e in examples)  # a task that weighs 1 (mixed formats' labels) is no weight
    if weighted:
        for feature, example in zip(features, examples):
            task = METHODS[example.method].task_weight(example.task, methods)
            feature["weight"] = task * (example.weight if example.weight is not None else 1.0)
    return features, weighted


def _check_targets_fit(features: list[dict], max_length: int) -> None:
    """Examples cut before their first target token teach nothing (loss 0, gradient 0): count
    them, and stop when no example keeps a target token."""
    empty = sum(all(label == IGNORE for label in f["labels"]) for f in features)
    where = (f"max_length {max_length} (train.hparams.max_length, or socratic.hparams."
             "max_length for Socratic students)")
    if empty == len(features):
        raise CotdistillError(f"{where}: all {empty} training examples are cut before their "
                              "first target token, so there is nothing to learn; raise it")
    if empty:
        log.warning("%d of %d training examples are cut before their first target token by "
                    "%s; they teach nothing", empty, len(features), where)


def _kd_sources(hparams: HParams, weighted: bool, encoder_decoder: bool, features: list[dict],
                examples: list[CuratedExample], tokenizer, key: str):
    """The KD teacher model (source model), or the stored distributions attached to
    ``features`` with their coverage figures (source logprobs); (None, {}) without KD."""
    if hparams.kd is None and not weighted:
        return None, {}
    if encoder_decoder or hparams.packing is True:
        raise CotdistillError(f"{key}: token-level KD and task or example weights need a "
                              "decoder-only student without packing")
    if hparams.kd is not None and hparams.kd.source == "model":
        return _kd_teacher(hparams.kd.teacher, tokenizer), {}
    if hparams.kd is not None:
        return None, _attach_stored_distributions(features, examples, tokenizer)
    return None, {}


def _save(trainer, selection: ValidationSelection | None, hparams: HParams, tokenizer,
          output_dir: Path) -> None:
    """Save the best checkpoint on validation (else the last), LoRA merged in, with its
    tokenizer."""
    trainer.accelerator.wait_for_everyone()
    trained = trainer.accelerator.unwrap_model(trainer.model_wrapped)
    if selection is not None and selection.best_state is not None:
        trained.load_state_dict(selection.best_state)  # the best checkpoint, not the last
    if hparams.lora is not None:
        trained = trained.merge_and_unload()  # a plain checkpoint, loadable without peft
    trained.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)


def train_stages(
    examples: list[CuratedExample], model_spec: str, key: str, hparams: HParams,
    output_dir: Path, *, use_deepspeed: bool, two_stage: bool = False, on_log=None,
    selection: ValidationSelection | None = None, on_val=None,
    methods: MethodParams = MethodParams(),
) -> TrainResult:
    """One training, or two-stage CoT fine-tuning (CoT Collection): first on the pooled
    examples of every dataset for ``first_stage_epochs``, then, from that model, on one
    dataset's (``train.method_params.two_stage_cot``: ``dataset``, default the first dataset
    in the data).
    Validation selection (on that dataset's questions) and early stopping belong to the second
    stage, whose logged steps follow the first's.
    """
    if not two_stage:
        return train_student(examples, model_spec, key, hparams, output_dir,
                             use_deepspeed=use_deepspeed, on_log=on_log, selection=selection,
                             on_val=on_val, methods=methods)
    target = two_stage_target(examples, methods)
    focused = [example for example in examples if example.dataset == target]
    if not focused:
        raise CotdistillError(f"train.method_params.two_stage_cot.dataset: no training examples of "
                              f"{target!r} (have: {', '.join(sorted({e.dataset for e in examples}))})")
    with tempfile.TemporaryDirectory(prefix="cotdistill-stage1-") as scratch:
        pooled = hparams.model_copy(update={
            "epochs": methods.two_stage_cot.first_stage_epochs, "patience": None})
        first = train_student(examples, model_spec, key, pooled, Path(scratch) / "pooled",
                              use_deepspeed=use_deepspeed, on_log=on_log)
        offset = first.steps
        second = train_student(
            focused, str(Path(scratch) / "pooled"), key, hparams, output_dir,
            use_deepspeed=use_deepspeed, selection=selection, on_val=on_val,
            on_log=(lambda step, logs: on_log(offset + step, logs)) if on_log else None,
        )
    second.losses = first.losses + [(offset + step, loss) for step, loss in second.losses]
    second.steps += offset
    second.pooled_examples = first.examples
    second.seconds += first.seconds
    return second


def check_trainer_settings(hparams: HParams, key: str) -> None:
    """Refuse a ``trainer`` setting that ``TrainingArguments`` does not have, before any work
    (``key``: where the hparams are, e.g. ``train.hparams``)."""
    from dataclasses import fields

    from transformers import TrainingArguments

    known = {field.name for field in fields(TrainingArguments) if field.init}
    unknown = sorted(set(hparams.trainer) - known)
    if unknown:
        raise CotdistillError(f"{key}.trainer.{unknown[0]}: not a field of transformers' "
                              "TrainingArguments (its documentation lists them all)")


def training_arguments(hparams: HParams, scratch: str, precision: str,
                       use_deepspeed: bool) -> dict:
    """The ``TrainingArguments`` of a run, as keyword arguments: the hparams that pass
    straight through (:data:`~cotdistill.params.train.TRAINING_ARGUMENTS`), cotdistill's own
    defaults, what this run's hardware decides, and ``train.hparams.trainer`` verbatim."""
    import torch

    return dict(
        **{field: getattr(hparams, key) for key, field in TRAINING_ARGUMENTS.items()},
        **TRAINER_DEFAULTS,
        output_dir=scratch,
        data_seed=hparams.seed,
        use_cpu=not torch.cuda.is_available(),
        bf16=precision == "bf16",
        deepspeed=deepspeed_setup.config(hparams.deepspeed_config) if use_deepspeed else None,
        **hparams.trainer,
    )


def _training_precision(hparams: HParams, use_deepspeed: bool, key: str) -> str:
    """``train.hparams.precision`` resolved for this run. DeepSpeed on a CPU runs fp32
    (``configs/deepspeed/cpu.json``: its bf16 mode keeps bf16 weights, not autocast), so
    ``auto`` means fp32 there and an explicit ``bf16`` is refused."""
    import torch

    if use_deepspeed and not torch.cuda.is_available():
        if hparams.precision == "bf16":
            raise CotdistillError(f"{key}: train.hparams.precision bf16 with DeepSpeed on a CPU: "
                                  "DeepSpeed's CPU path trains in fp32 (use auto or fp32, or "
                                  "deepspeed off for bf16 autocast)")
        return "fp32"
    return numerics.resolve(hparams.precision)


def two_stage_target(examples: list[CuratedExample], methods: MethodParams) -> str:
    """The dataset two-stage CoT's second stage trains on (and selects on)."""
    return methods.two_stage_cot.dataset or examples[0].dataset


def _varlen_attention(model) -> bool:
    """Whether the model's attention runs packed rows as separate sequences (FlashAttention's
    variable-length kernels). Other implementations (sdpa, eager) attend over the whole packed
    row under a block-diagonal mask: batch x more attention work than padded rows of similar
    length, which made packing 0.75x of padded batches in bf16 on a CPU
    (benchmarks/train_throughput.py), so there ``auto`` pads batches grouped by length."""
    implementation = getattr(model.config, "_attn_implementation", "") or ""
    return implementation.startswith("flash_attention")


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
    from cotdistill.student.data import IGNORE
    from cotdistill.student.kd import kd_targets

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
        # The loss below is a sum over target tokens divided by num_items_in_batch (the target
        # tokens of the whole optimizer step), so it must not be divided by grad_accum again,
        # and the Trainer must count those tokens whatever the model's forward accepts.
        loss_is_scaled_for_ga = True

        def __init__(self, *args, kd_teacher=None, kd=None, **kwargs):
            super().__init__(*args, **kwargs)
            self.kd_teacher, self.kd = kd_teacher, kd
            self.model_accepts_loss_kwargs = True

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            if num_items_in_batch is None:  # evaluation or prediction: this batch's mean
                num_items_in_batch = (inputs["labels"][:, 1:] != -100).sum().clamp(min=1)
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
                kd_ids=kd_ids, kd_logprobs=kd_logprobs, num_items=num_items_in_batch,
            )
            if self.args.average_tokens_across_devices and self.accelerator.num_processes > 1:
                # num_items_in_batch counts every process's tokens and DDP averages gradients
                loss = loss * self.accelerator.num_processes
            return (loss, outputs) if return_outputs else loss

    return DistillationTrainer


def _sampling(hparams: HParams, packing: bool) -> str:
    """The Trainer's ``train_sampling_strategy``: in file order without shuffling (several
    processes then split each global batch of the file's order between them); otherwise
    shuffled, grouped by length unless batches are packed."""
    if not hparams.shuffle:
        return "sequential"
    return "group_by_length" if hparams.group_by_length and not packing else "random"


def _with_lora(model, lora, encoder_decoder: bool):
    """Wrap ``model`` with LoRA adapters (peft); only they train."""
    from peft import LoraConfig, TaskType, get_peft_model

    config = LoraConfig(
        r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
        target_modules=lora.target_modules,
        task_type=TaskType.SEQ_2_SEQ_LM if encoder_decoder else TaskType.CAUSAL_LM,
    )
    return get_peft_model(model, config)


def write_loss_curve(path: Path, result: TrainResult) -> None:
    with atomic_file(path) as tmp:
        lines = ["step,loss"] + [f"{step},{loss:.6f}" for step, loss in result.losses]
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
