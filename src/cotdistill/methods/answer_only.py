"""The vanilla fine-tuning baseline: ``{q} ###`` -> `` {answer}`` on every training question,
with the gold answer and no rationale (what CoT distillation is measured against)."""

from __future__ import annotations

from cotdistill.methods.base import Method

ANSWER_ONLY = Method("answer_only", uses_rationale=False)
