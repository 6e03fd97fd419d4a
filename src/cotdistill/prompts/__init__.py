"""The prompts a teacher or an untrained student sees, and the student's own format.

Zero-shot-CoT (Kojima et al. 2022) as Fine-tune-CoT uses it: two steps; the few-shot-CoT
block of worked examples (Wei et al. 2022) that the baselines and the few-shot teacher pass
share; the zero-shot baseline; the answer hint of heuristic correction; where completions
stop; and how a student sees a question and writes its answer. The Socratic teacher's
decomposition prompt and its students' formats are in :mod:`cotdistill.prompts.socratic`:
every template a teacher or a student sees is in this package.

Step 1 asks for a rationale; step 2 appends it and an answer trigger worded for the answer
type, and reads the answer. Every task (dataset) may set its own templates
(``prepare.datasets[].prompts``); :class:`TaskPrompts` holds them, with these as defaults.
``TaskPrompts.prompt_id`` names a task's zero-shot-CoT templates with a hash of their text, so a
completion record says exactly which prompt made it; the teacher cache is keyed by the prompt
text itself, so an edited template never reuses a cached response.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

REASONING = "Q: {question}\nA: Let's think step by step."
TRIGGERS = {
    "number": "Therefore, the answer (arabic numerals) is",
    "yes_no": "Therefore, the answer (Yes or No) is",
    "choice": "Therefore, among A through {last}, the answer is",
    "text": "Therefore, the answer is",
}
STUDENT = "{question}"
ZERO_SHOT = "Q: {question}\nA: The answer is"  # the untrained student's zero-shot baseline
FEW_SHOT_QUESTION = "Q: {question}\nA:"  # after the few-shot block
# New-Fine-tune-CoT's heuristic correction: the few-shot teacher, given the gold answer
HINT = "Q: {question}\nA: The answer is {answer}. Let's explain why, step by step."
# Where a completion of a ``Q: ... A:`` prompt ends: a blank line or the next question (the
# teacher's rationale step and every baseline's completions)
QA_STOPS = ["\n\n", "\nQ:"]
# the teacher's answer step: answers often open with ":" and a line break
ANSWER_STEP_STOPS = ["\n\n"]

# The student's text format that every method shares, and that answer reading relies on.
# Fine-tune-CoT (Ho et al. 2023) and New-Fine-tune-CoT train on ``{q} ###`` ->
# `` {rationale} --> {answer}``; answer-only on ``{q} ###`` -> `` {answer}``; distilling
# step-by-step (Hsieh et al. 2023) makes two examples of each rationale, ``[answer] {q} ###`` ->
# `` {answer}`` and ``[rationale] {q} ###`` -> `` {rationale}``, tagged with their task so that
# training can weight them. The tokenizer's EOS token is appended to every target at training
# time (it is tokenizer-specific, so it is not written into curated data).
PROMPT_SUFFIX = " ###"
ANSWER_SEPARATOR = " --> "
PROMPT_ID = "zs_cot@" + hashlib.sha256(repr((REASONING, TRIGGERS)).encode()).hexdigest()[:8]


@dataclass(frozen=True)
class TaskPrompts:
    """One task's prompts. ``answer_trigger`` None: Kojima et al.'s trigger for the answer type;
    ``exemplars`` None: the clustered exemplars of the ``exemplars`` stage."""

    reasoning: str = REASONING
    answer_trigger: str | None = None
    student: str = STUDENT
    exemplars: tuple[dict, ...] | None = None

    @property
    def prompt_id(self) -> str:
        """The zero-shot-CoT templates' name: :data:`PROMPT_ID` for the defaults."""
        if self.reasoning == REASONING and self.answer_trigger is None:
            return PROMPT_ID
        text = repr((self.reasoning, self.answer_trigger))
        return "zs_cot@" + hashlib.sha256(text.encode()).hexdigest()[:8]

    def trigger(self, answer_type: str, choices: list[str] | None) -> str:
        last = chr(ord("A") + len(choices) - 1) if choices else "E"
        template = self.answer_trigger or TRIGGERS[answer_type]
        return template.replace("{last}", last)

    def student_question(self, question: str) -> str:
        """The question as the student reads it (the method adds its own marker)."""
        return self.student.replace("{question}", question)


DEFAULT = TaskPrompts()
Tasks = Mapping[str, TaskPrompts]  # dataset name -> its prompts (PrepareParams.tasks())


def of(tasks: Tasks | None, dataset: str) -> TaskPrompts:
    """The prompts of ``dataset`` (the defaults where ``tasks`` gives none)."""
    return (tasks or {}).get(dataset, DEFAULT)


def reasoning_prompt(question: str, task: TaskPrompts = DEFAULT) -> str:
    return task.reasoning.replace("{question}", question)


def answer_prompt(question: str, rationale: str, answer_type: str, choices: list[str] | None,
                  task: TaskPrompts = DEFAULT) -> str:
    return (f"{reasoning_prompt(question, task)} {rationale.strip()}\n"
            f"{task.trigger(answer_type, choices)}")


def zero_shot_prompt(question: str) -> str:
    return ZERO_SHOT.replace("{question}", question)


def few_shot_prompt(exemplars: list[dict], question: str) -> str:
    """Wei et al.'s few-shot CoT: the worked examples, then the question."""
    return few_shot_block(exemplars) + FEW_SHOT_QUESTION.replace("{question}", question)


def few_shot_block(exemplars: list[dict]) -> str:
    """Worked examples in Wei et al.'s format, one ``Q: ... A: ... The answer is X.`` each."""
    return "".join(
        f"Q: {e['question']}\nA: {e['rationale'].strip()} The answer is {e['answer']}.\n\n"
        for e in exemplars
    )


def student_shots(shots: list[dict], *, with_rationale: bool = True,
                  task: TaskPrompts = DEFAULT) -> str:
    """Worked examples in the trained student's own format, one per paragraph: ``{q} ###
    {rationale} --> {answer}`` (few-shot-CoT) or ``{q} ### {answer}`` (few-shot answer-only),
    each question in the task's student format (Fu et al. 2023's in-context formats)."""
    def target(shot: dict) -> str:
        if with_rationale:
            return f" {shot['rationale'].strip()}{ANSWER_SEPARATOR}{shot['answer']}"
        return f" {shot['answer']}"

    return "".join(f"{task.student_question(shot['question'])}{PROMPT_SUFFIX}{target(shot)}\n\n"
                   for shot in shots)


def student_text(input_text: str, target: str | None,
                 encoder_decoder: bool) -> tuple[str, str | None]:
    """The (input, target) a student of its family sees: decoder-only students continue
    ``{q} ###`` with `` {rationale} --> {answer}``; encoder-decoder students (T5) read the bare
    question and write the rationale and answer (Fine-tune-CoT's format for each family)."""
    if not encoder_decoder:
        return input_text, target
    return input_text.removesuffix(PROMPT_SUFFIX), target.strip() if target is not None else None
