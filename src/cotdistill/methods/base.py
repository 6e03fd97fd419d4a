"""Training-example formats, one per distillation method.

Fine-tune-CoT (Ho et al. 2023) and New-Fine-tune-CoT (its rationales from the few-shot
teacher pass) train on ``{q} ###`` -> `` {rationale} --> {answer}``; the
vanilla baseline on ``{q} ###`` -> `` {answer}``; distilling step-by-step (Hsieh et al. 2023)
makes two examples of each rationale, ``[answer] {q} ###`` -> `` {answer}`` and
``[rationale] {q} ###`` -> `` {rationale}``, tagged with their task so that training can weight
them. The tokenizer's EOS token is appended to every target at training time (it is
tokenizer-specific, so it is not written into curated data).
"""

from __future__ import annotations

from dataclasses import dataclass

PROMPT_SUFFIX = " ###"
ANSWER_SEPARATOR = " --> "


@dataclass(frozen=True)
class Method:
    name: str
    uses_rationale: bool  # True: needs a correct teacher completion per example
    multitask: bool = False  # answer and rationale as two tagged tasks
    two_stage: bool = False  # train on the pooled datasets, then on one (CoT Collection)
    # where its rationales come from: the zero-shot-CoT teacher (data/teacher/completions.jsonl)
    # or the few-shot-CoT one of New-Fine-tune-CoT (data/teacher/fewshot_completions.jsonl)
    rationales: str = "zero_shot"

    @property
    def answer_after_marker(self) -> bool:
        """Whether the student states its answer after ``-->`` (else its output is the answer)."""
        return self.uses_rationale and not self.multitask

    def format_input(self, question: str) -> str:
        """The prompt the trained student answers at evaluation."""
        tag = "[answer] " if self.multitask else ""
        return f"{tag}{question}{PROMPT_SUFFIX}"

    def format_target(self, answer: str, rationale: str | None = None) -> str:
        if self.answer_after_marker:
            if rationale is None:
                raise ValueError(f"method {self.name} needs a rationale")
            return f" {rationale.strip()}{ANSWER_SEPARATOR}{answer}"
        return f" {answer}"

    def examples(self, question: str, answer: str,
                 rationale: str | None) -> list[tuple[str, str, str | None]]:
        """(input, target, task) training pairs for one question (and one rationale)."""
        pairs = [(self.format_input(question), self.format_target(answer, rationale),
                  "answer" if self.multitask else None)]
        if self.multitask:
            pairs.append((f"[rationale] {question}{PROMPT_SUFFIX}", f" {rationale.strip()}",
                          "rationale"))
        return pairs


def student_text(input_text: str, target: str | None, encoder_decoder: bool) -> tuple[str, str | None]:
    """The (input, target) a student of its family sees: decoder-only students continue
    ``{q} ###`` with `` {rationale} --> {answer}``; encoder-decoder students (T5) read the bare
    question and write the rationale and answer (Fine-tune-CoT's format for each family)."""
    if not encoder_decoder:
        return input_text, target
    return input_text.removesuffix(PROMPT_SUFFIX), target.strip() if target is not None else None


METHODS: dict[str, Method] = {
    "fine_tune_cot": Method("fine_tune_cot", uses_rationale=True),
    # New-Fine-tune-CoT (Li et al. 2024): fine_tune_cot's format, rationales from the few-shot
    # teacher pass (clustered, heuristic-corrected exemplars; adaptive answers; optional hints)
    "new_fine_tune_cot": Method("new_fine_tune_cot", uses_rationale=True, rationales="few_shot"),
    "answer_only": Method("answer_only", uses_rationale=False),
    "distill_step_by_step": Method("distill_step_by_step", uses_rationale=True, multitask=True),
    "two_stage_cot": Method("two_stage_cot", uses_rationale=True, two_stage=True),
}
