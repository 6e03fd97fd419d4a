"""The teacher's own arithmetic, checked by the calculator: a rationale can reach the right
answer through a wrong step ("40 / 7 = 5, so ... 6"), and a student copies the step.

Only rationales of number-answer questions are checked (dates and option letters are not
arithmetic). ``curate.teacher_arithmetic`` says what happens to a correct rationale with a
wrong computation: ``keep`` it as the teacher wrote it, ``drop`` it, or ``fix`` it (each wrong
result replaced by the calculator's, and the replacements recorded in the training example's
``lineage``). Whatever the policy, ``reports/curate.json`` counts them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

from cotdistill.calculator import Computation, computations, corrected

Policy = Literal["keep", "drop", "fix"]


@dataclass
class ArithmeticReport:
    """What the calculator found in the correct rationales of number questions."""

    policy: Policy = "keep"
    counts: Counter = field(default_factory=Counter)

    def as_dict(self) -> dict[str, int | str]:
        keys = ("rationales_checked", "computations", "wrong_computations",
                "rationales_with_wrong_arithmetic", "dropped", "fixed")
        return {"policy": self.policy, **{key: self.counts[key] for key in keys}}


def wrong_steps(rationale: str) -> list[Computation]:
    """The computations of ``rationale`` whose written result is not the calculator's."""
    return [c for c in computations(rationale) if not c.agrees]


def check(rationale: str, report: ArithmeticReport) -> bool:
    """Count one correct rationale of a number question; False when the policy drops it."""
    found = computations(rationale)
    wrong = sum(not c.agrees for c in found)
    report.counts.update(rationales_checked=1, computations=len(found), wrong_computations=wrong,
                         rationales_with_wrong_arithmetic=int(wrong > 0))
    if wrong and report.policy == "drop":
        report.counts["dropped"] += 1
        return False
    if wrong and report.policy == "fix":
        report.counts["fixed"] += 1
    return True


def fix(rationale: str) -> tuple[str, list[dict[str, str]]]:
    """The rationale with the calculator's results in place of wrong ones, and a lineage entry
    per replacement ({expression, teacher, calculator})."""
    text, replaced = corrected(rationale)
    return text, [{"expression": c.expression, "teacher": c.written, "calculator": c.computed}
                  for c in replaced]
