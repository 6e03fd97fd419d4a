"""Mixed-format Fine-tune-CoT (Fu et al. 2023, "Specializing Smaller Language Models towards
Multi-Step Reasoning"): the teacher's correct rationales trained in three formats of the same
question, so that the student works both with and without exemplars in its context:

- ``zero_shot_cot``: ``{q} ###`` -> `` {rationale} --> {answer}`` (Fine-tune-CoT's own);
- ``few_shot_cot``: the exemplars as ``{q_i} ### {r_i} --> {a_i}`` paragraphs, then ``{q} ###``
  -> `` {rationale} --> {answer}``;
- ``few_shot_answer``: the exemplars as ``{q_i} ### {a_i}``, then ``{q} ###`` -> `` {answer}``.

The exemplars are the ``exemplars`` stage's (clustered, correct teacher rationales of the same
dataset), never the question being trained on. ``train.method_params.fine_tune_cot_mixed`` holds
each format's share (the fraction of the curated rationales that get an example in it, chosen by
a hash of the question and sample, so that a share is stable across runs) and the number of
exemplars in context. The student is evaluated zero-shot (``{q} ###``) like Fine-tune-CoT, and
few-shot with ``evaluate.few_shot``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from cotdistill.methods.base import Method
from cotdistill.params.train import MethodParams
from cotdistill.prompts import DEFAULT, PROMPT_SUFFIX, TaskPrompts, student_shots

FORMATS = ("zero_shot_cot", "few_shot_cot", "few_shot_answer")


def chosen(key: str, fmt: str, share: float) -> bool:
    """Whether the example ``key`` gets format ``fmt`` at ``share`` (a stable pick)."""
    if share >= 1.0:
        return True
    draw = int.from_bytes(hashlib.sha256(f"{key}/{fmt}".encode()).digest()[:8], "big")
    return draw / 2 ** 64 < share


@dataclass(frozen=True)
class MixedFormat(Method):
    def mixed_examples(self, question: str, answer: str, rationale: str, *, key: str,
                       shots: list[dict], settings: MethodParams,
                       task: TaskPrompts = DEFAULT) -> list[tuple[str, str, str | None]]:
        """(input, target, format) pairs of one rationale; ``shots`` are its dataset's
        exemplars other than this question, ``key`` names the rationale (id#sample)."""
        mix = settings.fine_tune_cot_mixed
        context = shots[: mix.shots]
        rows = []
        if chosen(key, "zero_shot_cot", mix.zero_shot_cot):
            rows.append((self.format_input(question), self.format_target(answer, rationale),
                         "zero_shot_cot"))
        if context and chosen(key, "few_shot_cot", mix.few_shot_cot):
            rows.append((student_shots(context, task=task) + question + PROMPT_SUFFIX,
                         self.format_target(answer, rationale), "few_shot_cot"))
        if context and chosen(key, "few_shot_answer", mix.few_shot_answer):
            rows.append((student_shots(context, with_rationale=False, task=task) + question
                         + PROMPT_SUFFIX, f" {answer}", "few_shot_answer"))
        return rows


FINE_TUNE_COT_MIXED = MixedFormat("fine_tune_cot_mixed", uses_rationale=True, uses_exemplars=True)
