"""What a distillation method is: how it formats training examples, what it trains on, and
how a student trained with it states its answer.

A method is a :class:`Method` (or a subclass that overrides some of its behaviour), defined in
its own module of this package and listed in :mod:`cotdistill.methods.registry`. The stages use
methods only through this interface: ``curate`` asks for ``examples``, ``train`` for
``task_weight`` and ``two_stage``, ``evaluate`` and model selection for ``format_input`` and
``read``.
"""

from __future__ import annotations

from dataclasses import dataclass

from cotdistill import answers
from cotdistill.params.train import MethodParams
from cotdistill.prompts import ANSWER_SEPARATOR, DEFAULT, PROMPT_SUFFIX, TaskPrompts
from cotdistill.records import PreparedExample


@dataclass(frozen=True)
class Method:
    name: str
    uses_rationale: bool  # True: needs a correct teacher completion per example
    two_stage: bool = False  # train on the pooled datasets, then on one (CoT Collection)
    # where its rationales come from: the zero-shot-CoT teacher (data/teacher/completions.jsonl)
    # or the few-shot-CoT one of New-Fine-tune-CoT (data/teacher/fewshot_completions.jsonl)
    rationales: str = "zero_shot"
    # decodes number answers with the calculator (cotdistill.lm.calculating) wherever it
    # generates: model selection, evaluate, predict and the registered MLflow model
    calculator: bool = False
    # its examples put the exemplars stage's shots in context (curate passes them)
    uses_exemplars: bool = False

    def calculates(self, answer_type: str) -> bool:
        """Whether a student of this method decodes a question of ``answer_type`` with the
        calculator: only number answers are arithmetic."""
        return self.calculator and answer_type == "number"

    @property
    def answer_after_marker(self) -> bool:
        """Whether the student states its answer after ``-->`` (else its output is the answer)."""
        return self.uses_rationale

    def format_input(self, question: str) -> str:
        """The prompt the trained student answers at evaluation."""
        return f"{question}{PROMPT_SUFFIX}"

    def student_input(self, question: str, task: TaskPrompts = DEFAULT) -> str:
        """The prompt for ``question`` of a task: the task's student format (by default the
        question itself), then this method's own format."""
        return self.format_input(task.student_question(question))

    def format_target(self, answer: str, rationale: str | None = None) -> str:
        if self.answer_after_marker:
            if rationale is None:
                raise ValueError(f"method {self.name} needs a rationale")
            return f" {rationale.strip()}{ANSWER_SEPARATOR}{answer}"
        return f" {answer}"

    def examples(self, question: str, answer: str,
                 rationale: str | None) -> list[tuple[str, str, str | None]]:
        """(input, target, task) training pairs for one question (and one rationale)."""
        return [(self.format_input(question), self.format_target(answer, rationale), None)]

    def read(self, output: str, example: PreparedExample) -> str | None:
        """The answer a student trained with this method states in ``output`` (after ``-->``
        when it writes a rationale first, else its whole output)."""
        return answers.extract_student(output, example.answer_type, example.choices,
                                       with_rationale=self.answer_after_marker)

    def task_weight(self, task: str | None, settings: MethodParams) -> float:
        """The loss weight of an example of ``task`` (multi-task methods weight their tasks)."""
        return 1.0
