"""The published few-shot CoT exemplars load as a prompt source."""

from __future__ import annotations

import pytest

from conftest import REPO
from cotdistill import answers
from cotdistill.datasets import DATASETS
from cotdistill.datasets.sources import FileSource
from cotdistill.errors import CotdistillError
from cotdistill.few_shot import few_shot_prompt

MIRROR = REPO.parent / "shared/data/mirror"
KEYS = ["addsub", "single_eq", "multiarith", "gsm8k", "svamp", "aqua", "date_understanding",
        "last_letter_concatenation", "coin_flip", "commonsense_qa", "strategy_qa"]


@pytest.fixture()
def source(tmp_path) -> FileSource:
    return FileSource(MIRROR, tmp_path, download=False)


@pytest.mark.parametrize("dataset", KEYS)
def test_every_published_prompt_loads_with_worked_answers(dataset, source):
    prompt = few_shot_prompt(dataset, source)
    exemplars = prompt.exemplars()
    assert len(exemplars) >= 4
    spec = DATASETS[dataset]
    letters = spec.num_choices
    for _question, answer in exemplars:
        stated = answer.rsplit("The answer is", 1)[1]
        choices = ["x"] * letters if letters else None
        assert answers.extract(stated, spec.answer_type, choices) is not None, answer


def test_a_prompt_for_a_new_question_ends_where_the_model_continues(source):
    prompt = few_shot_prompt("multiarith", source)
    text = prompt.for_question("What is 2 + 3?")
    assert text.startswith(prompt.prompt.rstrip())
    assert text.endswith("\nQ: What is 2 + 3?\nA:")
    assert text.count("Q: ") == len(prompt.exemplars()) + 1


def test_a_dataset_without_published_exemplars_is_named(source):
    with pytest.raises(CotdistillError, match="no few-shot prompt for 'tracking_shuffled_objects'"):
        few_shot_prompt("tracking_shuffled_objects", source)
