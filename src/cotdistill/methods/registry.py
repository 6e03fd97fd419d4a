"""Every distillation method by name (``train.methods``, ``cotdistill train --method``).

Adding a method: its module in this package (a :class:`~cotdistill.methods.base.Method`, or a
subclass overriding what differs), one line here, its params if it has any, and its test.
"""

from __future__ import annotations

from cotdistill.methods.answer_only import ANSWER_ONLY
from cotdistill.methods.base import Method
from cotdistill.methods.distill_step_by_step import DISTILL_STEP_BY_STEP
from cotdistill.methods.fine_tune_cot import FINE_TUNE_COT, FINE_TUNE_COT_CALC
from cotdistill.methods.mixed_format import FINE_TUNE_COT_MIXED
from cotdistill.methods.new_fine_tune_cot.method import NEW_FINE_TUNE_COT
from cotdistill.methods.two_stage_cot import TWO_STAGE_COT

METHODS: dict[str, Method] = {method.name: method for method in (
    FINE_TUNE_COT,
    FINE_TUNE_COT_CALC,
    FINE_TUNE_COT_MIXED,
    NEW_FINE_TUNE_COT,
    ANSWER_ONLY,
    DISTILL_STEP_BY_STEP,
    TWO_STAGE_COT,
)}
