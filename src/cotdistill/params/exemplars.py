"""The ``exemplars`` section: New-Fine-tune-CoT's clustered exemplars for the few-shot teacher."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from cotdistill.params.base import Section


class ExemplarsParams(Section):
    embedder: str = Field(
        "builtin:all-MiniLM-L6-v2",
        description="Sentence-BERT model embedding the train questions: builtin:NAME, a model id "
                    "or a path.")
    k: int = Field(
        8, gt=0, description="k-means clusters (and so exemplars) per dataset.")
    seed: int = Field(0, description="Seed of the k-means initialisation.")
    max_question_chars: Annotated[int, Field(gt=0)] | None = Field(
        None,
        description="Skip a question longer than this many characters as an exemplar (null: no "
                    "limit).")
    max_rationale_chars: Annotated[int, Field(gt=0)] | None = Field(
        None,
        description="Skip a teacher rationale longer than this many characters as an exemplar "
                    "(null: no limit).")
