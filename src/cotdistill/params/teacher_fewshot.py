"""The ``teacher_fewshot`` section: New-Fine-tune-CoT's few-shot teacher pass."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from cotdistill.params.base import Section


class FewshotParams(Section):
    """The ``teacher_fewshot`` stage (New-Fine-tune-CoT): backend, model, D, T and seed are the
    ``teacher`` section's; only what differs from the zero-shot-CoT pass is here."""

    max_questions: Annotated[int, Field(gt=0)] | None = Field(
        None, description="Train questions per dataset (null: teacher.max_questions).")
    max_rationale_tokens: Annotated[int, Field(gt=0)] | None = Field(
        None,
        description="Most tokens of one rationale (null: teacher.max_rationale_tokens); few-shot "
                    "rationales end with \"The answer is X.\", so they may need a few more tokens "
                    "than zero-shot ones.")
    adaptive: bool = Field(
        True,
        description="Adaptive answer (seed 004 section 2.3): take the answer the rationale "
                    "states, and make the \"Therefore, the answer ... is\" call only when it "
                    "states none; false: always two calls.")
    hints: bool = Field(
        False,
        description="Answer-hint rationalization (seed 002): questions with no correct sample are "
                    "asked again with the gold answer as a hint; those completions are flagged "
                    "hinted (see curate.hinted).")
    hint_samples: int = Field(
        1, gt=0, description="Hinted rationales per question that had no correct sample.")
