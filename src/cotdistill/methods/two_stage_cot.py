"""Two-stage CoT fine-tuning (CoT Collection, Kim et al. 2023): Fine-tune-CoT's format, trained
first on the pooled rationales of every dataset, then, from that model, on one dataset's
(``train.method_params.two_stage_cot.dataset``); see :func:`cotdistill.student.training.train_stages`."""

from __future__ import annotations

from cotdistill.methods.base import Method

TWO_STAGE_COT = Method("two_stage_cot", uses_rationale=True, two_stage=True)
