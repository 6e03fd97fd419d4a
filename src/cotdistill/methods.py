"""Training-example formats, one per distillation method.

Fine-tune-CoT (Ho et al. 2023) trains on ``{q} ###`` -> `` {rationale} --> {answer}``; the
vanilla baseline on ``{q} ###`` -> `` {answer}``. The tokenizer's EOS token is appended to every
target at training time (it is tokenizer-specific, so it is not written into curated data).
"""

from __future__ import annotations

from dataclasses import dataclass

PROMPT_SUFFIX = " ###"
ANSWER_SEPARATOR = " --> "


@dataclass(frozen=True)
class Method:
    name: str
    uses_rationale: bool  # True: needs a correct teacher completion per example

    def format_input(self, question: str) -> str:
        return f"{question}{PROMPT_SUFFIX}"

    def format_target(self, answer: str, rationale: str | None = None) -> str:
        if self.uses_rationale:
            if rationale is None:
                raise ValueError(f"method {self.name} needs a rationale")
            return f" {rationale.strip()}{ANSWER_SEPARATOR}{answer}"
        return f" {answer}"


METHODS: dict[str, Method] = {
    "fine_tune_cot": Method("fine_tune_cot", uses_rationale=True),
    "answer_only": Method("answer_only", uses_rationale=False),
}
