"""Fine-tune-CoT (Ho et al. 2023): the student learns the zero-shot-CoT teacher's correct
rationales, ``{q} ###`` -> `` {rationale} --> {answer}``, D per question (diverse reasoning).

``fine_tune_cot_calc`` trains on the same rationales and decodes number answers with the
calculator: where the student has written arithmetic and ``=``, the calculator writes the
result (Cobbe et al. 2021). With ``train.method_params.fine_tune_cot_calc.mask_results`` the
results it will write are left out of the loss."""

from __future__ import annotations

from cotdistill.methods.base import Method

FINE_TUNE_COT = Method("fine_tune_cot", uses_rationale=True)
FINE_TUNE_COT_CALC = Method("fine_tune_cot_calc", uses_rationale=True, calculator=True)
