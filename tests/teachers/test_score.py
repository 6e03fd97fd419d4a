"""Scoring teacher completions: the CompletionDataset reader, score_file against the published
accuracies on the real text-davinci-002 completions, and the `cotdistill score` command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from support.repo import REPO

from cotdistill.errors import CotdistillError
from cotdistill.teachers.completion_dataset import read_completion_dataset
from cotdistill.teachers.score import PUBLISHED_ACCURACY, judge, score_file

SHARED = REPO.parent / "shared/data/teacher/text-davinci-002/zs_cot"


def entry(sample_index: int, answer: str, completion: str, completion_index: int = 0, **extra):
    return {"sample_index": sample_index, "completion_index": completion_index,
            "question": "Q?", "answer": answer, "reasoning_prompt": "Q: Q?\nA: Let's think",
            "reasoning_completion": "...", "prompt": "... is", "completion": completion, **extra}


def write_dataset(path: Path, dataset_key: str, entries: list[dict], **metadata) -> Path:
    data: dict[str, list] = {}
    for item in entries:
        data.setdefault(str(item["sample_index"]), []).append(item)
    path.write_text(json.dumps({"metadata": {"dataset_key": dataset_key, "base_model": "m",
                                             "completion_key": "zs_cot", **metadata},
                                "data": data}))
    return path


# --- reading the CompletionDataset format ----------------------------------------------------

def test_completions_come_as_sample_index_completion_index_entry(tmp_path):
    path = write_dataset(tmp_path / "d.json", "multiarith", [
        entry(7, "3", " 3.", finish_reason="stop"),  # fields beyond ours are kept, ignored
        entry(2, "5", " 4."), entry(2, "5", " 5.", completion_index=1)],
        source="a log")
    dataset = read_completion_dataset(path)
    assert dataset.dataset_key == "multiarith" and dataset.num_completions == 3
    assert [(s, c, e.completion) for s, c, e in dataset.completions()] == [
        (2, 0, " 4."), (2, 1, " 5."), (7, 0, " 3.")]


def test_the_shared_files_read():
    dataset = read_completion_dataset(SHARED / "D_date_understanding.json")
    assert dataset.dataset_key == "date_understanding" and dataset.num_completions == 369


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "file not found"),
        ("{not json", "not valid JSON"),
        ('{"metadata": {"base_model": "m", "completion_key": "k"}, "data": {}}',
         "metadata.dataset_key: Field required"),
        (json.dumps({"metadata": {"dataset_key": "addsub", "base_model": "m",
                                  "completion_key": "k"},
                     "data": {"0": [{k: v for k, v in entry(0, "1", " 1").items()
                                     if k != "answer"}]}}),
         "data.0.0.answer: Field required"),
        (json.dumps({"metadata": {"dataset_key": "addsub", "base_model": "m",
                                  "completion_key": "k"},
                     "data": {"3": [entry(4, "1", " 1")]}}),
         "data.3.0.sample_index is 4, not 3"),
    ],
)
def test_a_bad_file_is_one_error_naming_the_file(tmp_path, content, message):
    path = tmp_path / "bad.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(CotdistillError) as caught:
        read_completion_dataset(path)
    assert str(caught.value).startswith(f"{path}: ") and message in str(caught.value)


# --- scoring ---------------------------------------------------------------------------------

def test_score_file_uses_the_datasets_answer_type_and_choice_count(tmp_path):
    path = write_dataset(tmp_path / "d.json", "tracking_shuffled_objects", [
        entry(0, "A", " A: Karl."), entry(1, "C", " C) green ball."),
        entry(2, "B", " (D)."),  # past C: no answer
        entry(3, "B", " Both are (B).")])
    assert [prediction for *_, prediction, _ in judge(path)[1]] == ["A", "C", None, "B"]
    score = score_file(path)
    assert (score.dataset, score.completions, score.accuracy) == (
        "tracking_shuffled_objects", 4, 75.0)


def test_gold_answers_are_normalised_before_comparing(tmp_path):
    path = write_dataset(tmp_path / "d.json", "gsm8k", [
        entry(0, "40,000", " $40,000."), entry(1, "18.0", " 18."), entry(2, "7", " 9 + 8 = 17.")])
    assert score_file(path).accuracy == pytest.approx(66.67)


def test_an_unknown_dataset_key_or_no_completions_is_refused(tmp_path):
    with pytest.raises(CotdistillError, match="metadata.dataset_key: unknown dataset 'coin_flop'"):
        score_file(write_dataset(tmp_path / "a.json", "coin_flop", [entry(0, "yes", " Yes")]))
    with pytest.raises(CotdistillError, match="no completions"):
        score_file(write_dataset(tmp_path / "b.json", "coin_flip", []))


# Completions the authors' answer cleansing (first regex match, string comparison) judged
# differently from us, by sample index; docs/answers.md quotes and explains them. All but one
# are right answers it missed: fractions ("3/4"), decimals written differently from the gold
# ("12.30", ".5", "0.6666666666666667"), gold answers with a thousands separator ("40,000"),
# equations whose result is the answer ("9 + 8 = 17"), letters spelled with hyphens ("n-a-e-y").
AUTHORS_MISSED = {
    "addsub": [74, 107, 109, 111, 123, 129, 130, 150, 155, 164, 176, 247, 248, 263, 269, 279,
               311, 351],
    "single_eq": [1, 28, 144, 159, 170, 183, 189, 192, 203, 240, 269, 276, 286, 322, 349, 396,
                  416, 435, 462, 470],
    "gsm8k": [7506, 7567, 7617, 7738, 7758, 7770, 7808, 7811, 7836, 7875, 7901, 7961, 8081,
              8171, 8181, 8216, 8227, 8311, 8366, 8452, 8462, 8490, 8651, 8654, 8657, 8732, 8734],
    "multiarith": [195, 243, 497, 557],
    "last_letter_concatenation": [4, 169, 197, 266, 318, 333, 371, 468],
}
# ... and the one wrong answer it credited: " 5 + 5 = 10." (the gold is 5; the answer given is 10).
AUTHORS_CREDITED_WRONGLY = {"addsub": [177]}


@pytest.mark.parametrize("dataset", sorted(PUBLISHED_ACCURACY))
def test_accuracy_on_the_real_completions_matches_the_published_one(dataset):
    key, judged = judge(SHARED / f"D_{dataset}.json")
    assert key == dataset
    correct = {sample for sample, _, _, is_right in judged if is_right}
    missed, credited = AUTHORS_MISSED.get(dataset, []), AUTHORS_CREDITED_WRONGLY.get(dataset, [])
    assert set(missed) <= correct and not set(credited) & correct
    accuracy = score_file(SHARED / f"D_{dataset}.json").accuracy
    # Within 1.5 points of the published figure once the judgments we explain are set aside.
    as_the_authors = accuracy - 100 * (len(missed) - len(credited)) / len(judged)
    assert abs(as_the_authors - PUBLISHED_ACCURACY[dataset]) <= 1.5, accuracy


# --- the command -----------------------------------------------------------------------------

def cotdistill(*args: str) -> subprocess.CompletedProcess:
    executable = Path(sys.executable).parent / "cotdistill"
    return subprocess.run([str(executable), *args], cwd=REPO, capture_output=True, text=True,
                          env=dict(os.environ, HF_HUB_OFFLINE="1"), timeout=300)


def test_score_prints_one_line_per_file():
    result = cotdistill("score", str(SHARED / "D_multiarith.json"),
                        str(SHARED / "D_coin_flip.json"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "multiarith 600 79.33 (published 78.67)", "coin_flip 500 91.40 (published 91.40)"]


def test_score_json_prints_a_list_with_the_same_fields():
    result = cotdistill("score", str(SHARED / "D_addsub.json"), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [
        {"dataset": "addsub", "completions": 395, "accuracy": 73.92, "published": 69.62}]


def test_a_dataset_without_a_published_figure_prints_without_one(tmp_path):
    path = write_dataset(tmp_path / "d.json", "svamp", [entry(0, "2", " 2.")])
    result = cotdistill("score", str(path))
    assert result.returncode == 0 and result.stdout == "svamp 1 100.00\n"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "file not found"),
        ("[]", "Input should be"),
        (json.dumps({"metadata": {"dataset_key": "nope", "base_model": "m",
                                  "completion_key": "k"}, "data": {}}),
         "unknown dataset 'nope'"),
    ],
)
def test_score_errors_are_one_error_line(tmp_path, content, message):
    path = tmp_path / "bad.json"
    if content is not None:
        path.write_text(content)
    result = cotdistill("score", str(SHARED / "D_addsub.json"), str(path))
    assert result.returncode == 1 and result.stdout == ""  # nothing half-printed
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert "Traceback" not in result.stderr and len(errors) == 1, result.stderr
    assert errors[0].startswith(f"error: {path}: ") and message in errors[0]
