"""Settings: ``params.yaml``, one section per stage, validated once with pydantic.

Every section forbids unknown keys, so a typo (``train.hparams.lerning_rate``) stops the stage
with the key and the file named rather than being silently ignored. Each field's comment is its
documentation; ``params.yaml`` holds the project's defaults.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from cotdistill.teachers.costs import Price
from cotdistill.datasets import DATASETS
from cotdistill.errors import CotdistillError
from cotdistill.methods.base import METHODS

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def check_known_datasets(names: list[str]) -> None:
    """Raise ValueError naming the first name that is not in the dataset registry."""
    for name in names:
        if name not in DATASETS:
            raise ValueError(f"unknown dataset {name!r} (known: {', '.join(sorted(DATASETS))})")


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PrepareParams(Section):
    datasets: list[str] = ["coin_flip_generated", "last_letter_concatenation_generated"]
    seed: int = 0  # val carving, and generation + splits of generated datasets
    val_fraction: Annotated[float, Field(ge=0, lt=1)] = 0.1  # share of train kept for validation
    # published datasets: a local mirror of the raw files (<mirror>/<owner>/<repo>/<path>);
    # None: $COTDISTILL_DATA_MIRROR, else download at the pinned revision into the cache
    mirror: str | None = None
    # generated datasets only
    num_examples: Annotated[int, Field(gt=0)] = 500  # per dataset (Kojima et al.: 500)
    num_items: Annotated[int, Field(gt=0)] = 4  # N flips (Coin Flip) / N words (Last Letters)
    test_fraction: Annotated[float, Field(gt=0, lt=1)] = 0.3

    @field_validator("datasets")
    @classmethod
    def _known(cls, names: list[str]) -> list[str]:
        if not names:
            raise ValueError("at least one dataset is needed")
        check_known_datasets(names)
        if len(set(names)) != len(names):
            raise ValueError("a dataset is listed twice")
        return names

    @model_validator(mode="after")
    def _room_for_train(self) -> PrepareParams:
        if self.val_fraction + self.test_fraction >= 1:
            raise ValueError("val_fraction + test_fraction must leave room for train")
        return self


class TeacherParams(Section):
    # transformers: in-process local model; openai: any OpenAI-compatible endpoint; openai_batch:
    # the OpenAI Batch API (half price, results within completion_window); replay: published data
    backend: Literal["transformers", "openai", "openai_batch", "replay"] = "transformers"
    # builtin:NAME, a Hugging Face id or a path; for the openai backends the served model name
    model: str = "builtin:SmolLM2-135M-Instruct"
    # replay backend: a CompletionDataset file or a directory of them, and how entries are
    # matched to examples (see cotdistill.teachers.replay)
    replay_path: str | None = None
    replay_match: Literal["question", "sample_index"] = "question"
    samples: Annotated[int, Field(gt=0)] = 2  # D, diverse reasoning samples per question
    temperature: Annotated[float, Field(ge=0)] = 0.7  # T; 0 means greedy (then samples must be 1)
    max_rationale_tokens: Annotated[int, Field(gt=0)] = 96
    max_answer_tokens: Annotated[int, Field(gt=0)] = 16
    batch_size: Annotated[int, Field(gt=0)] = 16
    max_questions: Annotated[int, Field(gt=0)] | None = None  # cap on train questions (None: all)
    seed: int = 0
    # --- openai / openai_batch backends -------------------------------------------------------
    api: Literal["chat", "completions"] = "chat"  # /v1/chat/completions or /v1/completions
    base_url: str | None = None  # None: https://api.openai.com/v1; vLLM, llama.cpp, Ollama...
    # the environment variable holding the API key (the key itself never goes in params);
    # with a base_url and the variable unset, a placeholder key is sent (local servers)
    api_key_env: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")] = "OPENAI_API_KEY"
    concurrency: Annotated[int, Field(gt=0)] = 8  # requests in flight at once
    rpm: Annotated[int, Field(gt=0)] | None = None  # requests per minute (None: no limit)
    tpm: Annotated[int, Field(gt=0)] | None = None  # tokens per minute, prompt + max_tokens
    max_retries: Annotated[int, Field(ge=0)] = 8  # on 429, 5xx, timeouts, dropped connections
    retry_base_s: Annotated[float, Field(gt=0)] = 1.0  # first backoff; doubles each retry
    retry_max_s: Annotated[float, Field(gt=0)] = 60.0  # backoff ceiling (Retry-After may exceed it)
    timeout_s: Annotated[float, Field(gt=0)] = 120.0  # per request attempt
    top_logprobs: Annotated[int, Field(ge=1, le=20)] | None = None  # store top-k per token
    batch_poll_s: Annotated[float, Field(gt=0)] = 30.0  # openai_batch: seconds between polls
    batch_window: str = "24h"  # openai_batch: completion_window
    # --- dollars ------------------------------------------------------------------------------
    # model -> {prompt, completion} in $ per 1M tokens (batch_discount: the Batch API's cut,
    # default 0.5); a model without a price costs nothing (a local model)
    prices: dict[str, Price] = {}
    max_usd: Annotated[float, Field(gt=0)] | None = None  # stop before spending more (None: no cap)

    @model_validator(mode="after")
    def _logprobs_need_a_model(self) -> TeacherParams:
        if self.top_logprobs is not None and self.backend == "replay":
            raise ValueError("teacher.top_logprobs needs a model to ask (replayed completions "
                             "carry none)")
        return self

    @model_validator(mode="after")
    def _cap_needs_a_price(self) -> TeacherParams:
        if self.max_usd is not None and self.model not in self.prices:
            raise ValueError(f"teacher.max_usd needs a price for {self.model!r} in teacher.prices")
        return self

    @model_validator(mode="after")
    def _replay_has_a_path(self) -> TeacherParams:
        if self.backend == "replay" and not self.replay_path:
            raise ValueError("the replay backend needs teacher.replay_path")
        return self

    @model_validator(mode="after")
    def _greedy_is_single(self) -> TeacherParams:
        if self.temperature == 0 and self.samples > 1:
            raise ValueError("temperature 0 (greedy) gives identical samples: set samples to 1")
        return self


class ExemplarsParams(Section):
    embedder: str = "builtin:all-MiniLM-L6-v2"  # Sentence-BERT: builtin:NAME, model id or path
    k: Annotated[int, Field(gt=0)] = 8  # clusters (and so exemplars) per dataset
    seed: int = 0  # k-means initialisation
    max_question_chars: Annotated[int, Field(gt=0)] | None = None
    max_rationale_chars: Annotated[int, Field(gt=0)] | None = None


class FewshotParams(Section):
    """The ``teacher_fewshot`` stage (New-Fine-tune-CoT): backend, model, D, T and seed are the
    ``teacher`` section's; only what differs from the zero-shot-CoT pass is here."""

    # train questions per dataset (None: teacher.max_questions)
    max_questions: Annotated[int, Field(gt=0)] | None = None
    # rationale length in tokens (None: teacher.max_rationale_tokens); few-shot rationales end
    # with "The answer is X.", so they may need a few more tokens than zero-shot ones
    max_rationale_tokens: Annotated[int, Field(gt=0)] | None = None
    # adaptive answer (seed 004 section 2.3): take the answer the rationale states and make
    # the "Therefore, the answer ... is" call only when it states none; False: always two calls
    adaptive: bool = True
    # answer-hint rationalization (seed 002): questions with no correct sample are asked again
    # with the gold answer as a hint; those completions are flagged hinted (see curate.hinted)
    hints: bool = False
    hint_samples: Annotated[int, Field(gt=0)] = 1  # hinted rationales per such question


class CurateParams(Section):
    max_per_question: Annotated[int, Field(gt=0)] | None = None  # None keeps every correct sample
    min_rationale_words: Annotated[int, Field(ge=0)] | None = None
    max_rationale_words: Annotated[int, Field(gt=0)] | None = None
    # drop a sample whose TF-IDF cosine similarity to one already kept for the same question
    # reaches this (None: keep near-duplicates)
    dedupe_threshold: Annotated[float, Field(gt=0, le=1)] | None = None
    # CoT-Collection-style checks (off: Fine-tune-CoT keeps every correct rationale)
    drop_answer_first: bool = False  # rationale states the answer before any reasoning
    drop_truncated: bool = False  # rationale stops mid-sentence
    # answer-hinted rationales (teacher_fewshot.hints): keep them as any other, drop them, or
    # downweight them (their training examples get loss weight hint_weight instead of 1)
    hinted: Literal["keep", "drop", "downweight"] = "keep"
    hint_weight: Annotated[float, Field(ge=0)] = 0.5


class Student(Section):
    model: str  # builtin:NAME, a Hugging Face id or a local path


class LoraParams(Section):
    r: Annotated[int, Field(gt=0)] = 8
    alpha: Annotated[int, Field(gt=0)] = 16
    dropout: Annotated[float, Field(ge=0, lt=1)] = 0.05
    target_modules: str | list[str] = "all-linear"


class KDParams(Section):
    # where the teacher's token distributions come from: "model", a local model sharing the
    # student's tokenizer, run on every batch; "logprobs", the top-k log-probabilities the
    # teacher stage stored with each rationale (teacher.top_logprobs; curate keeps them)
    source: Literal["model", "logprobs"] = "model"
    teacher: str | None = None  # source model: builtin:NAME, a Hugging Face id or a path
    weight: Annotated[float, Field(gt=0, le=1)] = 0.5  # (1 - w) x CE + w x KL
    # softening of both distributions (None: 2.0 with source model; logprobs allows only 1,
    # since softening the teacher needs all of its logits)
    temperature: Annotated[float, Field(gt=0)] | None = None

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
    epochs: Annotated[float, Field(gt=0)] = 1.0
    max_steps: int = -1  # > 0 overrides epochs
    learning_rate: Annotated[float, Field(gt=0)] = 5e-5
    batch_size: Annotated[int, Field(gt=0)] = 8
    grad_accum: Annotated[int, Field(gt=0)] = 1
    max_length: Annotated[int, Field(gt=0)] = 192  # tokens; longer examples are truncated
    warmup_ratio: Annotated[float, Field(ge=0, lt=1)] = 0.0
    lr_scheduler: Literal["linear", "cosine", "constant", "constant_with_warmup"] = "linear"
    weight_decay: Annotated[float, Field(ge=0)] = 0.0
    logging_steps: Annotated[int, Field(gt=0)] = 1
    seed: int = 0
    deepspeed: Literal["auto", "on", "off"] = "auto"  # auto: DeepSpeed when CUDA is available
    # auto: with several GPUs, `cotdistill train` re-runs itself under torchrun, one process
    # per GPU (only rank 0 writes); none: one process
    launcher: Literal["auto", "none"] = "auto"
    lora: LoraParams | None = None  # LoRA adapters (peft), merged into the saved model
    kd: KDParams | None = None  # token-level KD to the teacher's token distributions
    rationale_weight: Annotated[float, Field(ge=0)] = 1.0  # distill_step_by_step: rationale task
    two_stage_dataset: str | None = None  # two_stage_cot: the second stage's dataset
    packing: bool = False  # decoder-only: flatten each batch into one row, no padding
    # a DeepSpeed JSON config (None: configs/deepspeed/zero2.json on GPUs, cpu.json without);
    # zero3.json and zero3_offload.json for models that do not fit
    deepspeed_config: str | None = None
    # model selection on the validation split: score every N steps (and after the last) with
    # the answer library and keep the best checkpoint (None: keep the last)
    select_every: Annotated[int, Field(gt=0)] | None = None
    select_max_examples: Annotated[int, Field(gt=0)] | None = 20  # val questions per dataset
    select_max_new_tokens: Annotated[int, Field(gt=0)] = 64


class TrainParams(Section):
    students: list[str] = ["smollm2-135m"]  # names from the `students` section
    methods: list[str] = ["fine_tune_cot", "answer_only"]
    hparams: HParams = HParams()

    @field_validator("methods")
    @classmethod
    def _known_methods(cls, names: list[str]) -> list[str]:
        for name in names:
            if name not in METHODS:
                raise ValueError(f"unknown method {name!r} (known: {', '.join(sorted(METHODS))})")
        return names


class EvaluateParams(Section):
    # prompting baselines run on each untrained student: zero_shot, zero_shot_cot, few_shot_cot
    baselines: list[Literal["zero_shot", "zero_shot_cot", "few_shot_cot"]] = [
        "zero_shot", "zero_shot_cot", "few_shot_cot"]
    batch_size: Annotated[int, Field(gt=0)] = 32
    max_new_tokens: Annotated[int, Field(gt=0)] = 96
    max_examples: Annotated[int, Field(gt=0)] | None = None  # cap on test questions (None: all)


class MlflowParams(Section):
    tracking_uri: str | None = None  # None: sqlite:///<repository root>/mlflow.db
    experiment: str = "cotdistill"
    # the student with the best validation accuracy is registered under this name and alias
    registered_model: str = "cotdistill-student"
    alias: str = "champion"


class ReportParams(Section):
    title: str = "cotdistill summary"


from cotdistill.params.socratic import SocraticParams  # noqa: E402  (needs HParams above)


class Params(Section):
    prepare: PrepareParams = PrepareParams()
    teacher: TeacherParams = TeacherParams()
    exemplars: ExemplarsParams = ExemplarsParams()
    teacher_fewshot: FewshotParams = FewshotParams()
    curate: CurateParams = CurateParams()
    students: dict[str, Student] = {"smollm2-135m": Student(model="builtin:SmolLM2-135M-Instruct")}
    train: TrainParams = TrainParams()
    evaluate: EvaluateParams = EvaluateParams()
    mlflow: MlflowParams = MlflowParams()
    report: ReportParams = ReportParams()
    socratic: SocraticParams = SocraticParams()

    @field_validator("students")
    @classmethod
    def _path_safe_names(cls, students: dict[str, Student]) -> dict[str, Student]:
        for name in students:
            if not NAME.match(name):
                raise ValueError(f"student name {name!r} must be letters, digits, '.', '_' or '-'")
        return students

    @model_validator(mode="after")
    def _students_defined(self) -> Params:
        for name in self.train.students:
            if name not in self.students:
                raise ValueError(f"train.students names {name!r}, which the students section lacks")
        return self

    def student(self, name: str) -> Student:
        """The student called ``name``, or a clear error naming the params key."""
        if name not in self.students:
            known = ", ".join(sorted(self.students)) or "none"
            raise CotdistillError(f"students.{name}: no such student in params (known: {known})")
        return self.students[name]


def _describe(error: dict) -> str:
    key = ".".join(str(part) for part in error["loc"])
    if error["type"] == "extra_forbidden":
        return f"{key}: unknown key"
    message = error["msg"].removeprefix("Value error, ")
    return f"{key}: {message}" if key else message


def load_params(path: Path | str = "params.yaml") -> Params:
    """Read and validate ``path``; any problem raises one :class:`CotdistillError` line."""
    path = Path(path)
    if not path.is_file():
        raise CotdistillError(f"{path}: params file not found")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        raise CotdistillError(f"{path}{where}: not valid YAML") from None
    if not isinstance(raw, dict):
        raise CotdistillError(f"{path}: the top level must be a mapping of sections")
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(_describe(error) for error in exc.errors())
        raise CotdistillError(f"{path}: {problems}") from None
