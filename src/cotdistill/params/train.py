"""The ``students`` and ``train`` sections: the student models, and how they are trained
(``train.hparams``, with its ``lora`` and ``kd`` mappings)."""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import Field, field_validator, model_validator

from cotdistill.params.base import Precision, Section

# The distillation methods by name. ``cotdistill.methods.registry.METHODS`` holds one of each
# (a test keeps the two in step), so that params validates a name without importing the
# methods: params sits below them (tests/test_architecture.py, LAYERS).
MethodName = Literal["fine_tune_cot", "fine_tune_cot_calc", "fine_tune_cot_mixed",
                     "new_fine_tune_cot", "answer_only", "distill_step_by_step", "two_stage_cot"]
METHOD_NAMES: tuple[str, ...] = get_args(MethodName)


class Student(Section):
    model: str = Field(description="builtin:NAME, a Hugging Face id or a local path.")


class LoraParams(Section):
    r: int = Field(8, gt=0, description="Rank of the LoRA update matrices.")
    alpha: int = Field(16, gt=0, description="LoRA scaling: the update is scaled by alpha / r.")
    dropout: float = Field(0.05, ge=0, lt=1, description="Dropout on the LoRA layers' input.")
    target_modules: str | list[str] = Field(
        "all-linear",
        description="Modules that get adapters: peft's target_modules (all-linear, or a list of "
                    "module names).")


class KDParams(Section):
    source: Literal["model", "logprobs"] = Field(
        "model",
        description="Where the teacher's token distributions come from: model, a local model "
                    "sharing the student's tokenizer, run on every batch; logprobs, the top-k "
                    "log-probabilities the teacher stage stored with each rationale "
                    "(teacher.top_logprobs; curate keeps them), from a teacher of any "
                    "tokenizer: each candidate is projected onto the student's vocabulary.")
    teacher: str | None = Field(
        None,
        description="source model: the teacher, builtin:NAME, a Hugging Face id or a path "
                    "(required there; left out with source logprobs).")
    weight: float = Field(0.5, gt=0, le=1, description="w in the loss (1 - w) x CE + w x KL.")
    temperature: Annotated[float, Field(gt=0)] | None = Field(
        None,
        description="Softening of both distributions (null: 2.0 with source model; logprobs "
                    "allows only 1, since softening the teacher needs all of its logits).")

    @property
    def softening(self) -> float:
        if self.temperature is not None:
            return self.temperature
        return 2.0 if self.source == "model" else 1.0

    @model_validator(mode="after")
    def _teacher_for_source(self) -> KDParams:
        if self.source == "model" and not self.teacher:
            raise ValueError("source model needs teacher (a local model sharing the "
                             "student's tokenizer)")
        if self.source == "logprobs" and self.teacher:
            raise ValueError("source logprobs uses the stored teacher log-probabilities; "
                             "leave teacher out")
        if self.source == "logprobs" and self.temperature not in (None, 1.0):
            raise ValueError("source logprobs: temperature must be 1 (stored log-probabilities "
                             "are the teacher's distribution at 1; softening it needs all of its "
                             "logits)")
        return self


class HParams(Section):
    epochs: float = Field(
        1.0, gt=0,
        description="Passes over the training examples (unless max_steps > 0); with patience, "
                    "the most passes before early stopping ends training.")
    max_steps: int = Field(
        -1, description="Optimizer steps; > 0 overrides epochs (-1: train for epochs).")
    learning_rate: float = Field(5e-5, gt=0, description="Peak learning rate.")
    batch_size: int = Field(8, gt=0, description="Training examples per device and step.")
    grad_accum: int = Field(
        1, gt=0, description="Gradient accumulation: batches per optimizer step.")
    max_length: int = Field(
        192, gt=0, description="Most tokens of one training example; longer ones are truncated.")
    warmup_ratio: float = Field(
        0.0, ge=0, lt=1, description="Share of the steps spent warming the learning rate up.")
    lr_scheduler: Literal["linear", "cosine", "constant", "constant_with_warmup"] = Field(
        "linear", description="Learning-rate schedule after the warmup.")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay.")
    logging_steps: int = Field(
        1, gt=0, description="Log the training loss every this many steps.")
    seed: int = Field(0, description="Seed of initialisation, shuffling and dropout.")
    deepspeed: Literal["auto", "on", "off"] = Field(
        "auto",
        description="auto: DeepSpeed when CUDA is available, plain PyTorch otherwise; on / off to "
                    "force it.")
    launcher: Literal["auto", "none"] = Field(
        "auto",
        description="auto: with several GPUs, `cotdistill train` re-runs itself under torchrun, "
                    "one process per GPU (only rank 0 writes); none: one process.")
    lora: LoraParams | None = Field(
        None,
        description="LoRA adapters (peft), merged into the saved model (null: full fine-tuning).")
    kd: KDParams | None = Field(
        None,
        description="Token-level KD to the teacher's token distributions (null: cross-entropy "
                    "only).")
    packing: bool | Literal["auto"] = Field(
        "auto",
        description="Flatten each batch into one row, no padding (decoder-only students): "
                    "auto packs when nothing needs a row of its own (no task or example weights, "
                    "no token-level KD, a decoder-only student) and the attention runs packed "
                    "sequences apart (FlashAttention); with sdpa or eager attention a packed row "
                    "costs more than padded rows grouped by length. true insists, false never.")
    group_by_length: bool = Field(
        True,
        description="Padded batches of examples of similar length (the Trainer's "
                    "LengthGroupedSampler, still shuffled): little padding without packing.")
    shuffle: bool = Field(
        True,
        description="false: batches in the curated file's order (group_by_length is then not "
                    "used), so that two launches see the same examples in the same optimizer "
                    "steps: one process against several, or a bisection of a bad batch.")
    deepspeed_config: str | None = Field(
        None,
        description="A DeepSpeed JSON config (null: configs/deepspeed/zero2.json on GPUs, "
                    "cpu.json without); zero3.json and zero3_offload.json for models that do not "
                    "fit.")
    select_every: Annotated[int, Field(gt=0)] | None = Field(
        None,
        description="Model selection on the validation split: score every N steps (and after "
                    "the last) with the answer library and keep the best checkpoint (null: keep "
                    "the last).")
    select_max_examples: Annotated[int, Field(gt=0)] | None = Field(
        20, description="Model selection: validation questions per dataset (null: all).")
    select_max_new_tokens: int = Field(
        96, gt=0, description="Model selection: most tokens generated per validation answer.")
    patience: Annotated[int, Field(gt=0)] | None = Field(
        None,
        description="Early stopping: stop after this many validation scorings (every "
                    "select_every steps) in a row without a new best accuracy; the best "
                    "checkpoint is kept (null: train for all epochs / max_steps).")
    transfer_probe: Annotated[int, Field(gt=0)] | None = Field(
        None,
        description="The cost of specialising over training: at each validation scoring, also "
                    "score this many test questions of the first held-out task "
                    "(evaluate.transfer_datasets), written beside val_accuracy in val.csv as "
                    "transfer_accuracy (null: off; with select_every null there is no scoring, "
                    "so no probe either).")
    precision: Precision = Field(
        "auto",
        description="Training arithmetic: fp32, or bf16 autocast (weights stay fp32); auto: bf16 "
                    "where torch reports native bf16 (a CPU with AVX-512 BF16 / AMX, or a GPU "
                    "that supports it), fp32 otherwise.")
    trainer: dict[str, Any] = Field(
        {},
        description="Any other field of transformers' TrainingArguments, passed through as it "
                    "is, e.g. {max_grad_norm: 0.5, adam_beta2: 0.95}. Fields that the keys "
                    "above set, or that cotdistill sets itself, are refused here.")

    @model_validator(mode="before")
    @classmethod
    def _moved_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key, place in MOVED.items():
                if key in data:
                    raise ValueError(f"{key} has moved to {place}")
        return data

    @field_validator("trainer")
    @classmethod
    def _trainer_fields(cls, extra: dict[str, Any]) -> dict[str, Any]:
        if not extra:
            return extra
        # whether each is a TrainingArguments field at all is checked before training starts
        # (student.training.check_trainer_settings): params does not import transformers
        taken = {**{v: k for k, v in TRAINING_ARGUMENTS.items()},
                 **{k: "cotdistill" for k in (*TRAINER_DEFAULTS, *SET_PER_RUN)}}
        for key in extra:
            if key in taken:
                owner = taken[key]
                raise ValueError(f"{key} is set by cotdistill" if owner == "cotdistill"
                                 else f"{key} is set by train.hparams.{owner}; set that instead")
        return extra

    @model_validator(mode="after")
    def _patience_needs_selection(self) -> HParams:
        if self.patience is not None and self.select_every is None:
            raise ValueError("patience needs select_every (early stopping watches the "
                             "validation accuracy that model selection scores)")
        return self


# HParams key -> the TrainingArguments field it sets: the settings that pass straight through
TRAINING_ARGUMENTS: dict[str, str] = {
    "epochs": "num_train_epochs", "max_steps": "max_steps", "learning_rate": "learning_rate",
    "batch_size": "per_device_train_batch_size", "grad_accum": "gradient_accumulation_steps",
    "warmup_ratio": "warmup_steps",  # a float in [0, 1) is a ratio of all steps
    "lr_scheduler": "lr_scheduler_type", "weight_decay": "weight_decay",
    "logging_steps": "logging_steps", "seed": "seed",
}
# The TrainingArguments defaults cotdistill changes, listed once: checkpoints are kept in memory
# by model selection (not saved), MLflow logging is cotdistill's own, the collators need every
# column, and progress is always shown.
TRAINER_DEFAULTS: dict[str, Any] = {
    "save_strategy": "no", "report_to": "none", "dataloader_num_workers": 0,
    "remove_unused_columns": False, "disable_tqdm": False,
}
# Fields each run decides from the hardware and the keys above (student/training.py)
SET_PER_RUN = ("output_dir", "data_seed", "use_cpu", "bf16", "fp16", "deepspeed",
               "train_sampling_strategy")
# keys that left train.hparams for the method that reads them
MOVED = {
    "rationale_weight": "train.method_params.distill_step_by_step.rationale_weight",
    "two_stage_dataset": "train.method_params.two_stage_cot.dataset",
    "first_stage_epochs": "train.method_params.two_stage_cot.first_stage_epochs",
}


class DistillStepByStepParams(Section):
    rationale_weight: float = Field(
        1.0, ge=0, description="Loss weight of the rationale task (the answer task weighs 1).")


class TwoStageCotParams(Section):
    dataset: str | None = Field(
        None,
        description="The second stage's dataset (null: the first dataset in the data).")
    first_stage_epochs: float = Field(
        1.0, gt=0,
        description="Passes over the pooled examples in the first stage (it has no validation "
                    "of its own, so no early stopping; max_steps > 0 overrides both stages).")


class FineTuneCotCalcParams(Section):
    mask_results: bool = Field(
        True,
        description="Leave the results that the calculator will write (the number after each "
                    "'=' whose expression it computes) out of the loss: the student learns "
                    "which numbers to combine, not how to compute them. On by default: chosen "
                    "on validation (docs/results.md, the masking table).")


class FineTuneCotMixedParams(Section):
    zero_shot_cot: float = Field(
        1.0, ge=0, le=1,
        description="Share of the curated rationales trained in the zero-shot-CoT format "
                    "({q} ### -> {rationale} --> {answer}).")
    few_shot_cot: float = Field(
        1.0, ge=0, le=1,
        description="Share also trained few-shot-CoT: the exemplars' worked examples in "
                    "context, then the question.")
    few_shot_answer: float = Field(
        1.0, ge=0, le=1,
        description="Share also trained few-shot answer-only: the exemplars' questions and "
                    "answers in context, then the question -> {answer}.")
    shots: int = Field(
        2, gt=0,
        description="Exemplars in context in the few-shot formats (the exemplars stage's, "
                    "never the question itself; at most exemplars.k - 1 per question).")

    @model_validator(mode="after")
    def _some_share(self) -> FineTuneCotMixedParams:
        if not (self.zero_shot_cot or self.few_shot_cot or self.few_shot_answer):
            raise ValueError("every share is 0: nothing would be trained")
        return self


class MethodParams(Section):
    """Settings only one method reads, under the method's name."""

    distill_step_by_step: DistillStepByStepParams = Field(
        DistillStepByStepParams(), description="distill_step_by_step's two tasks.")
    two_stage_cot: TwoStageCotParams = Field(
        TwoStageCotParams(), description="two_stage_cot's two stages.")
    fine_tune_cot_calc: FineTuneCotCalcParams = Field(
        FineTuneCotCalcParams(), description="fine_tune_cot_calc's loss on the results.")
    fine_tune_cot_mixed: FineTuneCotMixedParams = Field(
        FineTuneCotMixedParams(),
        description="fine_tune_cot_mixed's formats (curate writes them; Fu et al. 2023).")


class TrainParams(Section):
    students: list[str] = Field(
        ["smollm2-135m"], description="Students to train, by name from the students section.")
    methods: list[str] = Field(
        ["fine_tune_cot", "answer_only"],
        description="Distillation methods, each trained for every student (also: "
                    "fine_tune_cot_calc, fine_tune_cot_mixed, distill_step_by_step, "
                    "two_stage_cot).")
    hparams: HParams = Field(HParams(), description="Training hyper-parameters.")
    method_params: MethodParams = Field(
        MethodParams(), description="Settings of one method each (distill_step_by_step, "
                                    "two_stage_cot, fine_tune_cot_calc, fine_tune_cot_mixed).")

    @field_validator("methods")
    @classmethod
    def _known_methods(cls, names: list[str]) -> list[str]:
        for name in names:
            if name not in METHOD_NAMES:
                raise ValueError(
                    f"unknown method {name!r} (known: {', '.join(sorted(METHOD_NAMES))})")
        return names
