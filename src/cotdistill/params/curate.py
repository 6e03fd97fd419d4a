"""The ``curate`` section: which correct teacher rationales become training examples."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from cotdistill.params.base import Section


class CurateParams(Section):
    max_per_question: Annotated[int, Field(gt=0)] | None = Field(
        None,
        description="Most correct samples kept per question (null: keep every correct sample).")
    min_rationale_words: Annotated[int, Field(ge=0)] | None = Field(
        None, description="Drop a rationale of fewer words than this (null: no minimum).")
    max_rationale_words: Annotated[int, Field(gt=0)] | None = Field(
        None, description="Drop a rationale of more words than this (null: no maximum).")
    dedupe_threshold: Annotated[float, Field(gt=0, le=1)] | None = Field(
        None,
        description="Drop a sample whose TF-IDF cosine similarity to one already kept for the "
                    "same question reaches this (null: keep near-duplicates).")
    drop_answer_first: bool = Field(
        False,
        description="CoT-Collection check: drop a rationale that states the answer before any "
                    "reasoning (off: Fine-tune-CoT keeps every correct rationale).")
    drop_truncated: bool = Field(
        False,
        description="CoT-Collection check: drop a rationale that stops mid-sentence (off: "
                    "Fine-tune-CoT keeps every correct rationale).")
    hinted: Literal["keep", "drop", "downweight"] = Field(
        "keep",
        description="Answer-hinted rationales (teacher_fewshot.hints): keep them as any other, "
                    "drop them, or downweight them (their training examples get loss weight "
                    "curate.hint_weight instead of 1).")
    teacher_arithmetic: Literal["keep", "drop", "fix"] = Field(
        "keep",
        description="A correct rationale of a number question in which the calculator finds a "
                    "wrong computation ('40 / 7 = 5'): keep it as the teacher wrote it, drop it, "
                    "or fix it (the wrong results replaced by computed ones, recorded in the "
                    "training example's lineage). Counted in reports/curate.json either way.")
    hint_weight: float = Field(
        0.5, ge=0, description="Loss weight of a hinted example when curate.hinted is downweight.")
