"""Distilling step-by-step (Hsieh et al. 2023): each rationale makes two tagged tasks,
``[answer] {q} ###`` -> `` {answer}`` and ``[rationale] {q} ###`` -> `` {rationale}``; the
rationale task's loss weighs ``train.method_params.distill_step_by_step.rationale_weight``. At evaluation the student is
asked the answer task only, so its whole output is the answer."""

from __future__ import annotations

from dataclasses import dataclass

from cotdistill.methods.base import Method
from cotdistill.params.train import MethodParams
from cotdistill.prompts import PROMPT_SUFFIX


@dataclass(frozen=True)
class DistillStepByStep(Method):
    @property
    def answer_after_marker(self) -> bool:
        return False

    def format_input(self, question: str) -> str:
        return f"[answer] {question}{PROMPT_SUFFIX}"

    def format_target(self, answer: str, rationale: str | None = None) -> str:
        return f" {answer}"

    def examples(self, question: str, answer: str,
                 rationale: str | None) -> list[tuple[str, str, str | None]]:
        if rationale is None:
            raise ValueError(f"method {self.name} needs a rationale")
        return [(self.format_input(question), self.format_target(answer), "answer"),
                (f"[rationale] {question}{PROMPT_SUFFIX}", f" {rationale.strip()}", "rationale")]

    def task_weight(self, task: str | None, settings: MethodParams) -> float:
        weight = settings.distill_step_by_step.rationale_weight
        return weight if task == "rationale" else 1.0


DISTILL_STEP_BY_STEP = DistillStepByStep("distill_step_by_step", uses_rationale=True)
