"""Score a file of teacher completions (reasoning-teacher ``CompletionDataset`` format).

Each ``completion`` (the text after the answer trigger) is read with :mod:`cotdistill.answers`
for its dataset's answer type, and compared with its gold ``answer``. The published accuracies
let a reader see at once whether our extraction agrees with the authors' (docs/answers.md
explains where and why it does not).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from cotdistill import answers
from cotdistill.catalog import DATASETS
from cotdistill.errors import CotdistillError
from cotdistill.teachers.completion_dataset import read_completion_dataset

# Zero-shot-CoT accuracy of text-davinci-002 as the authors' own answer cleansing scored these
# completions (Kojima et al. 2022, Table 1; the `accuracy` line closing each published log).
PUBLISHED_ACCURACY: dict[str, float] = {
    "multiarith": 78.67,
    "gsm8k": 40.71,
    "addsub": 69.62,
    "single_eq": 77.95,
    "coin_flip": 91.40,
    "last_letter_concatenation": 57.60,
    "date_understanding": 67.48,
    "tracking_shuffled_objects": 52.40,
}


@dataclass(frozen=True)
class FileScore:
    dataset: str
    completions: int
    accuracy: float  # percent of completions judged correct

    @property
    def published(self) -> float | None:
        return PUBLISHED_ACCURACY.get(self.dataset)

    def as_dict(self) -> dict:
        return {**asdict(self), "published": self.published}

    def line(self) -> str:
        """``multiarith 600 78.83 (published 78.67)``."""
        text = f"{self.dataset} {self.completions} {self.accuracy:.2f}"
        return text if self.published is None else f"{text} (published {self.published:.2f})"


def judge(path: Path | str) -> tuple[str, list[tuple[int, int, str | None, bool]]]:
    """The dataset key, and ``(sample_index, completion_index, prediction, correct)`` for every
    completion in the file."""
    dataset = read_completion_dataset(path)
    spec = DATASETS.get(dataset.dataset_key)
    if spec is None:
        raise CotdistillError(f"{path}: metadata.dataset_key: unknown dataset "
                              f"{dataset.dataset_key!r} (known: {', '.join(sorted(DATASETS))})")
    # Choice datasets: only letters within the dataset's count are choices.
    choices = answers.choice_letters(spec.num_choices) if spec.num_choices else None
    judged = []
    for sample_index, completion_index, entry in dataset.completions():
        prediction = answers.extract(entry.completion, spec.answer_type, choices)
        gold = answers.normalize_gold(entry.answer, spec.answer_type)
        judged.append((sample_index, completion_index, prediction,
                       answers.is_correct(prediction, gold, spec.answer_type)))
    return dataset.dataset_key, judged


def score_file(path: Path | str) -> FileScore:
    """Accuracy of the completions in one CompletionDataset file."""
    key, judged = judge(path)
    if not judged:
        raise CotdistillError(f"{path}: is empty (no completions)")
    correct = sum(is_right for *_, is_right in judged)
    return FileScore(key, len(judged), round(100 * correct / len(judged), 2))
