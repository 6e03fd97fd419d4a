"""Fine-tune-CoT (Ho et al. 2023): the student learns the zero-shot-CoT teacher's correct
rationales, ``{q} ###`` -> `` {rationale} --> {answer}``, D per question (diverse reasoning)."""

from __future__ import annotations

from cotdistill.methods.base import Method

FINE_TUNE_COT = Method("fine_tune_cot", uses_rationale=True)
