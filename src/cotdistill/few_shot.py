"""Few-shot CoT exemplars as published with reasoning-teacher (``data/few_shot_cot_prompts.json``).

Each dataset key maps to a block of worked examples (``Q: ...\\nA: ... The answer is X.``) from
Wei et al. (2022), plus the training sample indices they were taken from. They are the prompt
source of the few-shot-CoT baseline and of the few-shot teacher pass.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from cotdistill.datasets.sources import FileSource, RemoteFile
from cotdistill.errors import CotdistillError

PROMPTS_FILE = RemoteFile(
    "itsnamgyu", "reasoning-teacher", "a2ca4d28d3bbabbd77106b76d06885d1a5eac0d9",
    "data/few_shot_cot_prompts.json",
    "sha256:72bb973daf1ab1217ec5bc1cc95a8be8ab78d05ff42356a3176341d848956d19",
)


class FewShotPrompt(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt: str  # the exemplars, "Q: ...\nA: ..." blocks joined by newlines
    sample_indices: list[int] | None = None  # where the exemplars came from, if from train
    comment: str | None = None

    def exemplars(self) -> list[tuple[str, str]]:
        """The (question, answer-with-rationale) pairs in the prompt."""
        pairs = []
        for block in self.prompt.split("Q: ")[1:]:
            question, _, answer = block.partition("\nA: ")
            pairs.append((question.strip(), answer.strip()))
        return pairs

    def for_question(self, question: str) -> str:
        """The full few-shot-CoT prompt for a new question."""
        return f"{self.prompt.rstrip()}\nQ: {question}\nA:"


def read_few_shot_prompts(path: Path) -> dict[str, FewShotPrompt]:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return {key: FewShotPrompt.model_validate(value) for key, value in raw.items()}
    except json.JSONDecodeError as exc:
        raise CotdistillError(f"{path}:{exc.lineno}: not valid JSON") from None
    except (ValidationError, AttributeError) as exc:
        raise CotdistillError(f"{path}: not a few-shot prompt file ({exc})") from None


def few_shot_prompt(dataset: str, source: FileSource) -> FewShotPrompt:
    """The published exemplars for ``dataset`` (a reasoning-teacher key)."""
    prompts = read_few_shot_prompts(source.path(PROMPTS_FILE))
    if dataset not in prompts:
        raise CotdistillError(
            f"{PROMPTS_FILE.relative}: no few-shot prompt for {dataset!r} "
            f"(has: {', '.join(sorted(prompts))})"
        )
    return prompts[dataset]
