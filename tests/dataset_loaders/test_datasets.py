"""Specification of the generated datasets, the split assignment and the prepare stage."""

from __future__ import annotations

import re

import pytest

from cotdistill.catalog import DATASETS
from cotdistill.datasets.build import prepare
from cotdistill.datasets.splits import (
    first_per_dataset,
    normalize_question,
    split_indices,
)
from cotdistill.datasets import synthetic
from cotdistill.datasets.synthetic import (
    census_first_names,
    coin_flip,
    last_letter_concatenation,
)
from cotdistill.errors import CotdistillError
from cotdistill.params import PrepareParams

GENERATORS = [coin_flip, last_letter_concatenation]

COIN_FLIP = re.compile(
    r'^A coin is heads up\. (?P<steps>(?:[A-Z][a-z]+ (?:flips|does not flip) the coin\. )+)'
    r'Is the coin still heads up\? Note that "flip" here means "reverse"\.$'
)
LAST_LETTERS = re.compile(
    r'^Take the last letters of each words in "(?P<words>[^"]+)" and concatenate them\.$'
)


def test_a_generator_for_every_generated_dataset_of_the_catalog():
    assert set(synthetic.GENERATORS) == {name for name, spec in DATASETS.items() if spec.generated}


def _coin_flip_steps(question: str) -> list[str]:
    match = COIN_FLIP.match(question)
    assert match, f"not Kojima et al.'s Coin Flip wording: {question!r}"
    return re.findall(r"[A-Z][a-z]+ (?:flips|does not flip) the coin\.", match["steps"])


def _last_letter_words(question: str) -> list[str]:
    match = LAST_LETTERS.match(question)
    assert match, f"not Kojima et al.'s Last Letters wording: {question!r}"
    return match["words"].split(" ")


# --- census names ----------------------------------------------------------------------------

def test_census_first_names_are_1000_distinct_title_case_names():
    names = census_first_names()
    assert len(names) == 1000
    assert len(set(names)) == 1000
    assert all(name.isalpha() and name == name.title() for name in names)


# --- the generators --------------------------------------------------------------------------

@pytest.mark.parametrize("generate", GENERATORS)
def test_same_seed_gives_the_same_examples(generate):
    assert generate(7, 20) == generate(7, 20)


@pytest.mark.parametrize("generate", GENERATORS)
def test_different_seeds_give_different_examples(generate):
    assert generate(1, 20) != generate(2, 20)


@pytest.mark.parametrize("generate", GENERATORS)
def test_generates_the_requested_number_of_examples(generate):
    assert len(generate(0, 37)) == 37


@pytest.mark.parametrize("num_items", [1, 2, 4, 6])
def test_coin_flip_question_names_num_items_distinct_people(num_items):
    for example in coin_flip(0, 20, num_items):
        steps = _coin_flip_steps(example.question)
        assert len(steps) == num_items
        people = [step.split(" ")[0] for step in steps]
        assert len(set(people)) == num_items


@pytest.mark.parametrize("num_items", [1, 2, 4, 6])
def test_last_letters_question_names_num_items_distinct_words(num_items):
    for example in last_letter_concatenation(0, 20, num_items):
        words = _last_letter_words(example.question)
        assert len(words) == num_items
        assert len(set(words)) == num_items


def test_coin_flip_uses_kojima_et_al_wording():
    question = coin_flip(0, 1)[0].question
    assert question.startswith("A coin is heads up. ")
    assert question.endswith(' Is the coin still heads up? Note that "flip" here means "reverse".')
    _coin_flip_steps(question)


def test_last_letters_uses_kojima_et_al_wording():
    question = last_letter_concatenation(0, 1)[0].question
    assert question.startswith('Take the last letters of each words in "')
    assert question.endswith('" and concatenate them.')


def test_coin_flip_answer_is_yes_exactly_when_the_number_of_flips_is_even():
    examples = coin_flip(3, 200)
    for example in examples:
        flips = example.question.count(" flips the coin.")
        assert example.answer == ("yes" if flips % 2 == 0 else "no"), example.question
    assert {e.answer for e in examples} == {"yes", "no"}


def test_coin_flip_questions_contain_both_flips_and_non_flips():
    text = " ".join(example.question for example in coin_flip(3, 50))
    assert " flips the coin." in text and " does not flip the coin." in text


def test_last_letters_answer_is_the_lowercase_concatenation_of_last_letters():
    for example in last_letter_concatenation(3, 200):
        words = _last_letter_words(example.question)
        assert example.answer == "".join(word[-1] for word in words).lower()


@pytest.mark.parametrize("generate", GENERATORS)
def test_names_come_from_the_census_list(generate):
    names = set(census_first_names())
    for example in generate(5, 30):
        used = re.findall(r"[A-Z][a-z]+", example.question)
        assert any(name in names for name in used)


def test_more_items_than_names_is_rejected():
    with pytest.raises(ValueError, match="num_items"):
        coin_flip(0, 1, 1001)


def test_registry_declares_answer_types():
    assert DATASETS["coin_flip_generated"].answer_type == "yes_no"
    assert DATASETS["last_letter_concatenation_generated"].answer_type == "text"


# --- splits ----------------------------------------------------------------------------------

QUESTIONS = [f"question number {i}" for i in range(100)]


def test_split_sizes_follow_the_fractions():
    splits = split_indices(QUESTIONS, seed=0, val_fraction=0.1, test_fraction=0.3)
    assert (len(splits["train"]), len(splits["val"]), len(splits["test"])) == (60, 10, 30)


def test_splits_are_disjoint_and_cover_every_question():
    splits = split_indices(QUESTIONS, seed=0, val_fraction=0.2, test_fraction=0.25)
    train, val, test = (set(splits[s]) for s in ("train", "val", "test"))
    assert not (train & val or train & test or val & test)
    assert train | val | test == set(range(len(QUESTIONS)))


def test_split_lists_are_sorted():
    splits = split_indices(QUESTIONS, seed=4, val_fraction=0.1, test_fraction=0.3)
    assert all(indices == sorted(indices) for indices in splits.values())


def test_splits_are_deterministic_for_a_seed():
    first = split_indices(QUESTIONS, seed=11, val_fraction=0.1, test_fraction=0.3)
    assert first == split_indices(QUESTIONS, seed=11, val_fraction=0.1, test_fraction=0.3)


def test_different_seeds_give_different_splits():
    first = split_indices(QUESTIONS, seed=1, val_fraction=0.1, test_fraction=0.3)
    assert first != split_indices(QUESTIONS, seed=2, val_fraction=0.1, test_fraction=0.3)


def test_zero_val_fraction_gives_an_empty_val_split():
    splits = split_indices(QUESTIONS, seed=0, val_fraction=0.0, test_fraction=0.3)
    assert splits["val"] == [] and len(splits["test"]) == 30


def test_normalize_question_ignores_case_and_whitespace():
    assert normalize_question("  Is IT\theads\n up? ") == normalize_question("is it heads up?")


def test_duplicate_questions_keep_only_their_first_occurrence():
    questions = ["Is it up?", "is  it UP?", " Is it up? ", "Another one", "another\tONE"]
    splits = split_indices(questions, seed=0, val_fraction=0.0, test_fraction=0.5)
    assigned = sorted(i for indices in splits.values() for i in indices)
    assert assigned == [0, 3]


@pytest.mark.parametrize("seed", range(5))
def test_duplicates_never_land_in_two_splits(seed):
    questions = [f"Question {i % 30}" if i % 2 else f"  QUESTION   {i % 30} " for i in range(120)]
    splits = split_indices(questions, seed=seed, val_fraction=0.2, test_fraction=0.3)
    seen: dict[str, str] = {}
    for split, indices in splits.items():
        for index in indices:
            key = normalize_question(questions[index])
            assert seen.setdefault(key, split) == split
    assert len(seen) == 30


# --- the prepare stage -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def prepared():
    return prepare(PrepareParams(num_examples=60, seed=3))


def test_prepare_gives_every_split_of_every_dataset_examples(prepared):
    for split, examples in prepared.items():
        assert {e.dataset for e in examples} == set(PrepareParams().datasets), split


def test_prepare_sizes_follow_the_fractions(prepared):
    sizes = {split: len(examples) for split, examples in prepared.items()}
    assert sizes == {"train": 2 * 36, "val": 2 * 6, "test": 2 * 18}


def test_prepare_ids_are_unique(prepared):
    ids = [e.id for examples in prepared.values() for e in examples]
    assert len(ids) == len(set(ids))


def test_prepare_records_carry_their_split_and_answer_type(prepared):
    for split, examples in prepared.items():
        for example in examples:
            assert example.split == split
            assert example.answer_type == DATASETS[example.dataset].answer_type
            assert example.choices is None


def test_prepare_puts_no_question_in_two_splits(prepared):
    where: dict[str, str] = {}
    for split, examples in prepared.items():
        for example in examples:
            assert where.setdefault(normalize_question(example.question), split) == split


def test_prepare_is_deterministic():
    params = PrepareParams(num_examples=20, seed=9)
    assert prepare(params) == prepare(params)


def test_prepare_drops_duplicate_questions_across_splits():
    # One person per Coin Flip question: only 2 x 1000 distinct questions, so 3000 repeat some.
    params = PrepareParams(datasets=["coin_flip_generated"], num_examples=3000, num_items=1)
    prepared = prepare(params)
    questions = [normalize_question(e.question) for examples in prepared.values() for e in examples]
    assert len(questions) == len(set(questions)) < 3000


def test_prepare_with_a_single_dataset_only_builds_that_dataset():
    prepared = prepare(PrepareParams(datasets=["last_letter_concatenation_generated"], num_examples=20))
    assert {e.dataset for examples in prepared.values() for e in examples} == {
        "last_letter_concatenation_generated"
    }


def test_prepare_rejects_a_split_left_empty():
    # 2 examples: test gets round(0.6) = 1, val round(0.2) = 0, train 1.
    params = PrepareParams(num_examples=2, val_fraction=0.1, test_fraction=0.3)
    with pytest.raises(CotdistillError, match=r"coin_flip_generated gets an empty val split.*num_examples"):
        prepare(params)


def test_prepare_rejects_an_empty_test_split():
    params = PrepareParams(num_examples=1, val_fraction=0.0, test_fraction=0.3)
    with pytest.raises(CotdistillError, match="empty test split"):
        prepare(params)


def test_prepare_allows_an_empty_val_split_when_val_fraction_is_zero():
    prepared = prepare(PrepareParams(num_examples=2, val_fraction=0.0, test_fraction=0.3))
    assert prepared["val"] == []
    assert len(prepared["train"]) == len(prepared["test"]) == 2


def test_first_per_dataset_keeps_the_first_n_of_each_dataset_in_order():
    examples = prepare(PrepareParams(num_examples=20))["train"]
    chosen = first_per_dataset(examples, 3)
    for name in ("coin_flip_generated", "last_letter_concatenation_generated"):
        assert [e.id for e in chosen if e.dataset == name] == [
            e.id for e in examples if e.dataset == name][:3]
    assert first_per_dataset(examples, None) == examples


# --- published splits ----------------------------------------------------------------------

def _raw(*questions: str) -> list:
    from cotdistill.datasets import RawExample

    return [RawExample(question, "1") for question in questions]


def test_published_test_split_is_kept_exactly_and_val_is_carved_from_train():
    from cotdistill.datasets.build import published_splits

    examples = _raw(*(f"question {i}" for i in range(20)))
    splits = published_splits(examples, list(range(10, 20)), list(range(10)), seed=0,
                              val_fraction=0.2)
    assert splits["test"] == list(range(10))
    assert len(splits["val"]) == 2 and len(splits["train"]) == 8
    assert sorted(splits["train"] + splits["val"]) == list(range(10, 20))


def test_a_train_question_repeating_a_test_question_is_dropped_never_the_test_one():
    from cotdistill.datasets.build import published_splits

    examples = _raw("Same  Question?", "other", "same question?", "other")
    splits = published_splits(examples, [2, 3], [0, 1], seed=0, val_fraction=0.0)
    assert splits == {"train": [], "val": [], "test": [0, 1]}


def test_val_carving_depends_on_the_seed_only():
    from cotdistill.datasets.build import published_splits

    examples = _raw(*(f"q{i}" for i in range(100)))
    first = published_splits(examples, list(range(50, 100)), list(range(50)), seed=1,
                             val_fraction=0.1)
    again = published_splits(examples, list(range(50, 100)), list(range(50)), seed=1,
                              val_fraction=0.1)
    other = published_splits(examples, list(range(50, 100)), list(range(50)), seed=2,
                             val_fraction=0.1)
    assert first == again and first["val"] != other["val"]
