"""Zero-shot-CoT prompts (Kojima et al. 2022) as Fine-tune-CoT uses them: two steps; and the
few-shot-CoT block of worked examples (Wei et al. 2022) that the baselines and the few-shot
teacher pass share.

Step 1 asks for a rationale; step 2 appends it and an answer trigger worded for the answer
type, and reads the answer. ``PROMPT_ID`` names the templates with a hash of their text, so a
completion record says exactly which prompt made it and an edited template never reuses a
cached response.
"""

from __future__ import annotations

import hashlib

REASONING = "Q: {question}\nA: Let's think step by step."
TRIGGERS = {
    "number": "Therefore, the answer (arabic numerals) is",
    "yes_no": "Therefore, the answer (Yes or No) is",
    "choice": "Therefore, among A through {last}, the answer is",
    "text": "Therefore, the answer is",
}
PROMPT_ID = "zs_cot@" + hashlib.sha256(repr((REASONING, TRIGGERS)).encode()).hexdigest()[:8]


def reasoning_prompt(question: str) -> str:
    return REASONING.format(question=question)


def answer_prompt(question: str, rationale: str, answer_type: str, choices: list[str] | None) -> str:
    last = chr(ord("A") + len(choices) - 1) if choices else "E"
    trigger = TRIGGERS[answer_type].format(last=last)
    return f"{reasoning_prompt(question)} {rationale.strip()}\n{trigger}"


def few_shot_block(exemplars: list[dict]) -> str:
    """Worked examples in Wei et al.'s format, one ``Q: ... A: ... The answer is X.`` each."""
    return "".join(
        f"Q: {e['question']}\nA: {e['rationale'].strip()} The answer is {e['answer']}.\n\n"
        for e in exemplars
    )
