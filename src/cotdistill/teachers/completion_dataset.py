"""Reader for reasoning-teacher's ``CompletionDataset`` files (teacher completions as published).

Format (itsnamgyu/reasoning-teacher, ``src/data/completion_dataset.py``)::

    {"metadata": {"dataset_key": ..., "base_model": ..., "completion_key": ..., ...},
     "data": {"<sample_index>": [{"sample_index", "completion_index", "question", "answer",
                                  "reasoning_prompt", "reasoning_completion", "prompt",
                                  "completion", ...}, ...]}}

Validated on reading, so a malformed file stops with the file and the field at fault instead of
a KeyError later. Fields beyond the ones we read (``finish_reason``, ``source``, ...) are kept
and ignored: the format grows them per model and per run.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from cotdistill.errors import CotdistillError


class CompletionMetadata(BaseModel):
    model_config = ConfigDict(extra="allow")

    dataset_key: str = Field(min_length=1)  # a key of cotdistill.datasets.DATASETS
    base_model: str
    completion_key: str  # e.g. "zs_cot"


class Completion(BaseModel):
    """One completion for one question; ``completion`` is the text after the answer trigger."""

    model_config = ConfigDict(extra="allow")

    sample_index: int = Field(ge=0)
    completion_index: int = Field(ge=0)
    question: str
    answer: str  # the gold answer, as the dataset writes it ("1,234", "D", "yes", "nkyj")
    reasoning_prompt: str | None = None  # zero-shot-CoT's two steps only
    reasoning_completion: str | None = None
    prompt: str
    completion: str


class CompletionDataset(BaseModel):
    metadata: CompletionMetadata
    data: dict[int, list[Completion]]

    @model_validator(mode="after")
    def _indices_agree(self) -> CompletionDataset:
        # The key is the sample index; an entry filed under another one would be scored
        # against the wrong split silently.
        for key, entries in self.data.items():
            for position, entry in enumerate(entries):
                if entry.sample_index != key:
                    raise ValueError(f"data.{key}.{position}.sample_index is "
                                     f"{entry.sample_index}, not {key}")
        return self

    @property
    def dataset_key(self) -> str:
        return self.metadata.dataset_key

    @property
    def num_completions(self) -> int:
        """The number of completions (not questions: a question may have several)."""
        return sum(len(entries) for entries in self.data.values())

    def completions(self) -> Iterator[tuple[int, int, Completion]]:
        """``(sample_index, completion_index, entry)`` for every completion, by sample index."""
        for sample_index in sorted(self.data):
            for entry in self.data[sample_index]:
                yield sample_index, entry.completion_index, entry


def read_completion_dataset(path: Path | str) -> CompletionDataset:
    """Read and validate one CompletionDataset file; errors name the file (and the field)."""
    path = Path(path)
    if not path.is_file():
        raise CotdistillError(f"{path}: file not found")
    try:
        return CompletionDataset.model_validate_json(path.read_bytes())
    except ValidationError as exc:
        first = exc.errors()[0]
        if first["type"] == "json_invalid":
            raise CotdistillError(f"{path}: not valid JSON") from None
        where = ".".join(str(part) for part in first["loc"])
        message = first["msg"].removeprefix("Value error, ")
        raise CotdistillError(f"{path}: {where + ': ' if where else ''}{message}") from None
