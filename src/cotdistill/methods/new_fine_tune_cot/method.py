"""New-Fine-tune-CoT (Li et al. 2024) as a training method: Fine-tune-CoT's format, with the
rationales of the few-shot teacher pass (clustered, heuristic-corrected exemplars; adaptive
answers; optional answer hints), ``data/teacher/fewshot_completions.jsonl``."""

from __future__ import annotations

from cotdistill.methods.base import Method

NEW_FINE_TUNE_COT = Method("new_fine_tune_cot", uses_rationale=True, rationales="few_shot")
