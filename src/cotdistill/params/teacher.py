"""The ``teacher`` section: the zero-shot-CoT teacher, its backend, sampling, API and dollars."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, model_validator

from cotdistill.params.base import STRICT, Section


class Price(BaseModel):
    """US dollars per million tokens (``teacher.prices``: model name -> price)."""

    model_config = STRICT

    prompt: float = Field(ge=0, description="$ per 1M prompt tokens.")
    completion: float = Field(ge=0, description="$ per 1M completion tokens.")
    batch_discount: float = Field(default=0.5, ge=0, le=1,
                                  description="The Batch API's cut: its price is (1 - d) x price.")


class TeacherParams(Section):
    backend: Literal["transformers", "openai", "openai_batch", "replay"] = Field(
        "transformers",
        description="transformers: an in-process local model; openai: any OpenAI-compatible "
                    "endpoint; openai_batch: the OpenAI Batch API (half price, results within "
                    "teacher.batch_window); replay: published completions (teacher.replay_source) "
                    "instead of model calls.")
    model: str = Field(
        "builtin:SmolLM2-135M-Instruct",
        description="builtin:NAME, a Hugging Face id or a local path; for the openai backends, "
                    "the served model name.")
    replay_source: Literal["kojima_logs", "completion_dataset"] = Field(
        "kojima_logs",
        description="replay backend: kojima_logs, the published zero-shot-CoT runs of "
                    "text-davinci-002 (Kojima et al. 2022; pinned files, read from the mirror or "
                    "downloaded once); completion_dataset, files in reasoning-teacher's "
                    "CompletionDataset format at teacher.replay_path.")
    replay_path: str | None = Field(
        None,
        description="replay_source completion_dataset: a CompletionDataset file or a directory "
                    "of them (see cotdistill.teachers.replay).")
    replay_match: Literal["question", "sample_index"] = Field(
        "question",
        description="replay backend: how entries are matched to examples: by question text "
                    "(case and whitespace ignored), or by sample_index as the example id "
                    "(reasoning-teacher order).")
    samples: int = Field(2, gt=0, description="D: diverse reasoning samples per question.")
    temperature: float = Field(
        0.7, ge=0, description="T: sampling temperature; 0 means greedy (then samples must be 1).")
    max_rationale_tokens: int = Field(
        96, gt=0, description="Most tokens generated for one rationale (the reasoning step).")
    max_answer_tokens: int = Field(
        16, gt=0,
        description="Most tokens generated for one answer (the answer-extraction step, greedy).")
    batch_size: int = Field(
        32, gt=0, description="transformers backend: prompts generated together in one batch.")
    max_questions: Annotated[int, Field(gt=0)] | None = Field(
        None, description="Cap on the train questions per dataset sent to the teacher (null: all).")
    seed: int = Field(
        0, description="Sampling seed; each sample index derives its own seed from it.")
    # --- openai / openai_batch backends -------------------------------------------------------
    api: Literal["chat", "completions"] = Field(
        "chat", description="openai backends: /v1/chat/completions (chat) or /v1/completions "
                            "(completions).")
    base_url: str | None = Field(
        None,
        description="openai backends: the endpoint (null: https://api.openai.com/v1); or vLLM, "
                    "llama.cpp, Ollama, `cotdistill serve`... A URL with credentials "
                    "(user:password@, ?api_key=) is refused: the key goes in api_key_env's "
                    "variable.")
    api_key_env: str = Field(
        "OPENAI_API_KEY", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="The environment variable holding the API key (the key itself never goes in "
                    "params); with a base_url and the variable unset, a placeholder key is sent "
                    "(local servers).")
    concurrency: int = Field(8, gt=0, description="openai backends: requests in flight at once.")
    rpm: Annotated[int, Field(gt=0)] | None = Field(
        None, description="openai backends: requests per minute (null: no limit).")
    tpm: Annotated[int, Field(gt=0)] | None = Field(
        None, description="openai backends: tokens per minute, prompt + max_tokens (null: no "
                          "limit).")
    max_retries: int = Field(
        8, ge=0,
        description="Retries of one request on 429, 5xx, timeouts and dropped connections.")
    retry_base_s: float = Field(
        1.0, gt=0, description="First backoff in seconds; it doubles with each retry.")
    retry_max_s: float = Field(
        60.0, gt=0, description="Backoff ceiling in seconds (a Retry-After header may exceed it).")
    timeout_s: float = Field(120.0, gt=0, description="Seconds allowed per request attempt.")
    top_logprobs: Annotated[int, Field(ge=1, le=20)] | None = Field(
        None,
        description="k: store the top-k token log-probabilities with each completion, for KD "
                    "from logprobs (null: none; not with the replay backend).")
    batch_poll_s: float = Field(
        30.0, gt=0, description="openai_batch: seconds between polls of a batch's status.")
    batch_window: str = Field(
        "24h", description="openai_batch: the Batch API's completion_window.")
    # --- dollars ------------------------------------------------------------------------------
    prices: dict[str, Price] = Field(
        {},
        description="model -> {prompt, completion} in $ per 1M tokens (batch_discount: the Batch "
                    "API's cut, default 0.5); a model without a price costs nothing (a local "
                    "model).")
    max_usd: Annotated[float, Field(gt=0)] | None = Field(
        None,
        description="Stop cleanly before spending more dollars than this, keeping what was "
                    "bought (null: no cap); needs a price for teacher.model.")

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
        if self.backend != "replay":
            return self
        if self.replay_source == "completion_dataset" and not self.replay_path:
            raise ValueError("the replay backend needs teacher.replay_path for replay_source "
                             "completion_dataset")
        if self.replay_source == "kojima_logs" and self.replay_path:
            raise ValueError("teacher.replay_path is for replay_source completion_dataset (the "
                             "kojima_logs are pinned public files: set prepare.mirror or "
                             "$COTDISTILL_DATA_MIRROR to read them offline)")
        return self

    @model_validator(mode="after")
    def _greedy_is_single(self) -> TeacherParams:
        if self.temperature == 0 and self.samples > 1:
            raise ValueError("temperature 0 (greedy) gives identical samples: set samples to 1")
        return self
