"""Specification of the published-dataset loaders, read offline from the shared mirror.

``examples[i]`` is reasoning-teacher sample index ``i``; the split files give the published
train/test lists; questions are worded as Kojima et al.'s ``data_reader`` words them, so they
equal the questions of the real text-davinci-002 completions kept in ``shared/data/teacher``.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter

import pytest
from support.repo import REPO

from cotdistill.answers import normalize_gold, parse_number
from cotdistill.catalog import DATASETS
from cotdistill.datasets import PublishedDataset, published
from cotdistill.datasets.published import LOADERS
from cotdistill.datasets.sources import FileSource, RemoteFile, checksum
from cotdistill.errors import CotdistillError

MIRROR = REPO.parent / "shared/data/mirror"
TEACHER = REPO.parent / "shared/data/teacher/text-davinci-002/zs_cot"
OFFLINE = sorted(set(LOADERS) - {"aqua"})  # AQuA's train.json is not in the mirror

# (train size, test size), (first, last) train index, (first, last) test index
SPLITS = {
    "single_eq": ((356, 152), (1, 507), (0, 506)),
    "addsub": ((276, 119), (1, 394), (0, 393)),
    "multiarith": ((420, 180), (0, 598), (3, 599)),
    "gsm8k": ((7473, 1319), (0, 7472), (7473, 8791)),
    "svamp": ((700, 300), (0, 999), (9, 994)),
    "date_understanding": ((258, 111), (1, 368), (0, 367)),
    "tracking_shuffled_objects": ((525, 225), (0, 749), (9, 747)),
    "last_letter_concatenation": ((350, 150), (1, 499), (0, 498)),
    "coin_flip": ((350, 150), (1, 499), (0, 498)),
    "commonsense_qa": ((9741, 1221), (0, 9740), (9741, 10961)),
    "strategy_qa": ((1603, 687), (1, 2289), (0, 2286)),
}
# one example per dataset: index, start of its question, normalised answer
PINNED = {
    "single_eq": (506, "Manuel opened a savings account with an initial deposit of 177", "17"),
    "addsub": (393, "There are 48 pencils and 40 scissors in the drawer . Joan placed 29", "77"),
    "multiarith": (599, "Nancy uploaded 41 pictures to Facebook. She put 37 pics into one", "2"),
    "gsm8k": (8791, "Henry and 3 of his friends order 7 pizzas for lunch. Each pizza", "14"),
    "svamp": (994, "Next on his checklist is wax to stick the feathers together and", "331"),
    "date_understanding": (
        0, "Yesterday was April 30, 2021. What is the date today in MM/DD/YYYY? Answer Choices: "
        "(A) 04/29/2021 (B) 05/01/2021 (C) 02/23/2021 (D) 06/12/2021 (E) 03/11/2021 "
        "(F) 05/09/2021", "B"),
    "tracking_shuffled_objects": (
        0, "Alice, Bob, and Claire are playing a game. At the start of the game, they are each "
        "holding a ball: Alice has a orange ball, Bob has a white ball, and Claire has a blue ball. "
        "\n\nAs the game progresses, pairs of players trade balls. First, Alice and Bob swap balls. "
        "Then, Bob and Claire swap balls. Finally, Alice and Bob swap balls. At the end of the game, "
        "Alice has the \nWhich choice is true ? Answer Choices: (A) orange ball. (B) white ball. "
        "(C) blue ball.", "C"),
    "last_letter_concatenation": (
        498, 'Take the last letters of each words in "Rich Parker Edward Milagros" and', "hrds"),
    "coin_flip": (498, "A coin is heads up. Rich flips the coin. Parker does not flip the", "no"),
    "commonsense_qa": (
        10961, "What is another name for a disk for storing information? Answer Choices: ", "C"),
    "strategy_qa": (2286, "Does the Boy Who Cried Wolf hypothetically have reason to pray to", "yes"),
}
CHOICE_COUNTS = {
    "date_understanding": {6: 311, 5: 58},  # 58 BIG-bench questions offer five dates
    "tracking_shuffled_objects": {3: 750},
    "commonsense_qa": {5: 10962},
}


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> FileSource:
    return FileSource(mirror=MIRROR, cache=tmp_path_factory.mktemp("cache"), download=False)


@pytest.fixture(scope="module")
def datasets(source) -> dict[str, PublishedDataset]:
    return {key: LOADERS[key](source) for key in OFFLINE}


def test_a_loader_for_every_published_dataset():
    assert set(LOADERS) == {name for name, spec in DATASETS.items() if not spec.generated}


@pytest.mark.parametrize("key", OFFLINE)
def test_split_sizes_and_indices(datasets, key):
    (train_size, test_size), train_ends, test_ends = SPLITS[key]
    data = datasets[key]
    assert (len(data.train), len(data.test)) == (train_size, test_size)
    assert (data.train[0], data.train[-1]) == train_ends
    assert (data.test[0], data.test[-1]) == test_ends
    assert not set(data.train) & set(data.test)
    assert len(data.examples) == train_size + test_size  # the lists cover every example


@pytest.mark.parametrize("key", OFFLINE)
def test_pinned_example(datasets, key):
    index, question, answer = PINNED[key]
    example = datasets[key].examples[index]
    assert example.question.startswith(question)
    assert example.answer == answer


@pytest.mark.parametrize("key", OFFLINE)
def test_answers_normalised_for_the_answer_type(datasets, key):
    spec = DATASETS[key]
    examples = datasets[key].examples
    for example in examples:
        assert example.answer == normalize_gold(example.answer, spec.answer_type)
        if spec.answer_type == "number":
            assert parse_number(example.answer) is not None
        elif spec.answer_type == "yes_no":
            assert example.answer in {"yes", "no"}
        elif spec.answer_type == "text":
            assert example.answer.isalpha() and example.answer.islower()
        if spec.answer_type == "choice":
            letters = [chr(ord("A") + i) for i in range(len(example.choices))]
            assert example.answer in letters and len(letters) <= spec.num_choices
            for letter, text in zip(letters, example.choices):
                assert f"({letter}) {text}" in example.question
        else:
            assert example.choices is None
    if spec.answer_type == "choice":
        assert Counter(len(example.choices) for example in examples) == CHOICE_COUNTS[key]


@pytest.mark.parametrize("key", sorted(path.stem[2:] for path in TEACHER.glob("D_*.json")))
def test_questions_equal_the_teacher_completions(datasets, key):
    """The same question texts, exactly, with the same gold answers.

    Compared as collections: the completion files list questions in the order of Kojima et al.'s
    logs, which is not the reasoning-teacher numbering their ``sample_index`` claims.
    """
    data = json.loads((TEACHER / f"D_{key}.json").read_text(encoding="utf-8"))["data"]
    completions = [samples[0] for samples in data.values()]
    ours = [datasets[key].examples[int(index)] for index in data]
    assert Counter(c["question"] for c in completions) == Counter(e.question for e in ours)
    gold = {e.question: e.answer for e in ours}
    answer_type = DATASETS[key].answer_type
    for completion in completions:
        assert normalize_gold(completion["answer"], answer_type) == gold[completion["question"]]


def test_gsm8k_rationale_without_calculator_annotations(datasets):
    examples = datasets["gsm8k"].examples
    assert examples[0].rationale == (
        "Natalia sold 48/2 = 24 clips in May.\n"
        "Natalia sold 48+24 = 72 clips altogether in April and May."
    )
    for example in examples:
        assert example.rationale
        assert "<<" not in example.rationale and "####" not in example.rationale


def test_aqua_without_train_file_names_it_and_the_mirror(source):
    with pytest.raises(CotdistillError) as error:
        LOADERS["aqua"](source)
    assert "google-deepmind/AQuA/train.json" in str(error.value)
    assert str(MIRROR) in str(error.value)


def test_aqua_test_questions(tmp_path, monkeypatch):
    """With a stand-in for the 97,467 training questions, the test questions follow them."""
    stand_in = tmp_path / "train.json"
    options = [f"{letter})1" for letter in "ABCDE"]
    line = json.dumps({"question": "q", "options": options, "rationale": "", "correct": "A"})
    stand_in.write_text((line + "\n") * 97467, encoding="utf-8")
    train = RemoteFile(
        "google-deepmind", "AQuA", "stand-in", "train.json", checksum(stand_in, "sha256")
    )
    cached = tmp_path / "cache" / train.owner / train.repo / train.revision / train.path
    cached.parent.mkdir(parents=True)
    shutil.move(stand_in, cached)
    monkeypatch.setattr(published, "AQUA_TRAIN", train)

    data = LOADERS["aqua"](FileSource(mirror=MIRROR, cache=tmp_path / "cache", download=False))
    assert (len(data.train), len(data.test)) == (10000, 254)
    assert (data.test[0], data.test[-1], max(data.train)) == (97467, 97720, 97465)
    first = data.examples[97467]
    assert first.question.endswith(
        "Answer Choices: (A) 5 (√3 + 1) (B) 6 (√3 + √2) (C) 7 (√3 – 1) (D) 8 (√3 – 2) "
        "(E) None of these"
    )
    assert first.choices == (
        "5(√3 + 1)", "6(√3 + √2)", "7(√3 – 1)", "8(√3 – 2)", "None of these"
    )
    assert first.answer == "A" and first.rationale.startswith("Explanation :")
    raw = MIRROR / "kojima-takeshi188/zero_shot_cot/dataset/AQuA/test.json"
    items = [json.loads(line) for line in raw.read_text(encoding="utf-8").splitlines()]
    for index, item in zip(data.test, items, strict=True):
        # Kojima et al.'s wording, up to whitespace
        options = "".join("(" + option for option in item["options"])
        options = options.replace("(", " (").replace(")", ") ")
        kojima = f"{item['question'].strip()} Answer Choices:{options}"
        assert data.examples[index].question.split() == kojima.split()
        assert data.examples[index].answer == item["correct"]


def test_checksum_mismatch(tmp_path):
    for file in (published.ADDSUB, published.split_file("addsub")):
        copy = tmp_path / file.relative
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(MIRROR / file.relative, copy)
    altered = tmp_path / published.ADDSUB.relative
    content = bytearray(altered.read_bytes())
    content[100] ^= 1
    altered.write_bytes(bytes(content))
    with pytest.raises(CotdistillError, match="checksum mismatch"):
        LOADERS["addsub"](FileSource(mirror=tmp_path, cache=tmp_path / "cache", download=False))


def test_no_test_question_is_in_train_or_val_for_any_dataset(tmp_path):
    """After case and whitespace are normalised, through the prepare stage with val carved."""
    from cotdistill.datasets.build import prepare
    from cotdistill.datasets.splits import normalize_question
    from cotdistill.params import PrepareParams

    source = FileSource(mirror=MIRROR, cache=tmp_path, download=False)
    prepared = prepare(PrepareParams(datasets=OFFLINE, val_fraction=0.1), source)
    for key in OFFLINE:
        test = {normalize_question(e.question) for e in prepared["test"] if e.dataset == key}
        assert len(test) > 0
        for split in ("train", "val"):
            questions = [normalize_question(e.question) for e in prepared[split] if e.dataset == key]
            assert questions, (key, split)
            assert not test & set(questions), (key, split)
            assert len(questions) == len(set(questions)), (key, split)
        # the published test split is kept whole
        assert sum(e.dataset == key for e in prepared["test"]) == SPLITS[key][0][1]
