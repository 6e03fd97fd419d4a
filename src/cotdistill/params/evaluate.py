"""The ``evaluate`` section: test-split evaluation of the trained students and the baselines."""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from pydantic import Field

from cotdistill.params.base import Precision, Section

Baseline = Literal["zero_shot", "zero_shot_cot", "few_shot_cot"]
BASELINES: tuple[str, ...] = get_args(Baseline)  # the prompting baselines (stages/baseline.py)


class EvaluateParams(Section):
    baselines: list[Baseline] = Field(
        list(BASELINES),
        description="Prompting baselines run on each untrained student.")
    batch_size: int = Field(50, gt=0, description="Test prompts generated together in one batch.")
    max_new_tokens: int = Field(
        96, gt=0, description="Most tokens generated per test answer (rationale included).")
    max_examples: Annotated[int, Field(gt=0)] | None = Field(
        None, description="Cap on the test questions per dataset (null: all).")
    few_shot: Annotated[int, Field(gt=0)] | None = Field(
        None,
        description="Also evaluate every student that writes a rationale with this many of the "
                    "exemplars stage's worked examples in context, in its own format ({q} ### "
                    "{rationale} --> {answer}): metrics.json's few_shot, predictions_few_shot."
                    "jsonl (null: zero-shot only).")
    precision: Precision = Field(
        "auto",
        description="Generation arithmetic: fp32, or bf16 autocast; auto: bf16 where torch "
                    "reports native bf16, fp32 otherwise.")
