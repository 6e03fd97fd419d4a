"""The ``evaluate`` section: test-split evaluation of the trained students and the baselines."""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from pydantic import Field, field_validator

from cotdistill.catalog import DATASETS
from cotdistill.params.base import Precision, Section

# held-out tasks by default: two published datasets with answer types (number, free text) that
# differ from the default pipeline's Coin Flip (yes / no), so forgetting cannot pass as chance
DEFAULT_TRANSFER = ("multiarith", "last_letter_concatenation")

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
    transfer_datasets: list[str] = Field(
        list(DEFAULT_TRANSFER),
        description="Held-out tasks: every trained student and every baseline is also scored on "
                    "these built-in datasets' test questions, in its own format, to measure what "
                    "specialising cost (metrics.json's transfer, predictions_transfer.jsonl). A "
                    "dataset in prepare.datasets is trained on, so it is skipped ([]: none).")
    transfer_max_examples: int = Field(
        30, gt=0, description="Test questions per held-out task: the first of its published "
                              "test split, in order.")

    @field_validator("transfer_datasets")
    @classmethod
    def _known(cls, names: list[str]) -> list[str]:
        unknown = [name for name in names if name not in DATASETS]
        if unknown:
            raise ValueError(f"unknown dataset(s) {', '.join(unknown)} (built-in: "
                             f"{', '.join(DATASETS)})")
        return list(dict.fromkeys(names))

    def held_out(self, trained: list[str]) -> list[str]:
        """The transfer datasets that are not among ``trained`` (prepare.datasets' names)."""
        return [name for name in self.transfer_datasets if name not in trained]
