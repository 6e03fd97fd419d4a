"""The student's text format that every method shares, and that answer reading relies on.

Fine-tune-CoT (Ho et al. 2023) and New-Fine-tune-CoT (its rationales from the few-shot
teacher pass) train on ``{q} ###`` -> `` {rationale} --> {answer}``; the
vanilla baseline on ``{q} ###`` -> `` {answer}``; distilling step-by-step (Hsieh et al. 2023)
makes two examples of each rationale, ``[answer] {q} ###`` -> `` {answer}`` and
``[rationale] {q} ###`` -> `` {rationale}``, tagged with their task so that training can weight
them. The tokenizer's EOS token is appended to every target at training time (it is
tokenizer-specific, so it is not written into curated data).
"""

from __future__ import annotations

PROMPT_SUFFIX = " ###"
ANSWER_SEPARATOR = " --> "


def student_text(input_text: str, target: str | None, encoder_decoder: bool) -> tuple[str, str | None]:
    """The (input, target) a student of its family sees: decoder-only students continue
    ``{q} ###`` with `` {rationale} --> {answer}``; encoder-decoder students (T5) read the bare
    question and write the rationale and answer (Fine-tune-CoT's format for each family)."""
    if not encoder_decoder:
        return input_text, target
    return input_text.removesuffix(PROMPT_SUFFIX), target.strip() if target is not None else None
