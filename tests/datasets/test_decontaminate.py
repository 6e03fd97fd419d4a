"""Specification of train-vs-test decontamination: exact repeats and word n-gram overlap."""

from __future__ import annotations

import random

import pytest

from cotdistill.datasets.decontaminate import Overlap, decontaminate, ngrams

BODY = ("Janet has twelve red apples and gives three of them to her brother Tom before "
        "lunch on a Sunday afternoon")  # 20 words
TAIL = 'Is the coin still heads up? Note that "flip" here means "reverse".'  # 12 words


def _words(count: int, prefix: str) -> str:
    return " ".join(f"{prefix}{i}" for i in range(count))


# --- exact repeats ---------------------------------------------------------------------------

def test_a_test_question_with_other_case_and_spacing_is_dropped_as_exact():
    result = decontaminate(["  what IS 2 +  2?"], ["Unrelated.", "What is 2 + 2?"],
                           n=8, threshold=0.5)
    assert result.kept == []
    assert result.dropped == [Overlap(0, 1, "exact", 1.0)]


def test_exact_takes_precedence_over_an_ngram_match_with_an_earlier_test_question():
    test = [BODY + " and then more words follow", BODY]
    result = decontaminate([BODY.upper()], test, n=8, threshold=0.5)
    assert result.dropped == [Overlap(0, 1, "exact", 1.0)]


def test_punctuation_differences_are_not_exact_but_match_as_ngrams():
    result = decontaminate([BODY + "?"], [BODY + "."], n=8, threshold=0.5)
    assert result.dropped == [Overlap(0, 0, "ngram", 1.0)]


# --- n-gram overlap --------------------------------------------------------------------------

def test_a_paraphrase_sharing_most_8_grams_is_dropped_as_ngram_with_its_share():
    paraphrase = BODY.replace("afternoon", "morning")  # only the last of 13 8-grams changes
    result = decontaminate([paraphrase], ["Unrelated question.", BODY], n=8, threshold=0.5)
    assert result.kept == []
    [overlap] = result.dropped
    assert (overlap.train_index, overlap.test_index, overlap.kind) == (0, 1, "ngram")
    assert overlap.score == pytest.approx(12 / 13)


def test_a_question_sharing_only_a_boilerplate_tail_is_kept_below_the_threshold():
    train = _words(20, "a") + " " + TAIL  # 32 words: 25 8-grams, 5 of them inside the tail
    test = _words(20, "b") + " " + TAIL
    assert decontaminate([train], [test], n=8, threshold=0.5).kept == [0]
    [overlap] = decontaminate([train], [test], n=8, threshold=1e-9).dropped
    assert overlap.score == pytest.approx(5 / 25)


def test_the_share_is_of_the_training_questions_distinct_ngrams():
    """A long test question that contains the whole training question is a full match; a
    training question repeating one phrase counts that 8-gram once."""
    repeated = BODY + " " + BODY  # 40 words: 33 8-gram positions, 20 distinct 8-grams
    assert len(ngrams(repeated, 8)) == 20
    [overlap] = decontaminate([BODY], [_words(30, "x") + " " + repeated], n=8,
                              threshold=1.0).dropped
    assert overlap.score == 1.0


def test_overlap_is_with_one_test_question_not_the_union_of_several():
    train = _words(15, "w")  # 8 8-grams: w0..w7 start them
    halves = [_words(11, "w"), " ".join(f"w{i}" for i in range(4, 15))]  # 4 each
    assert decontaminate([train], halves, n=8, threshold=0.6).kept == [0]
    [overlap] = decontaminate([train], halves, n=8, threshold=0.5).dropped
    assert (overlap.test_index, overlap.score) == (0, 0.5)


def test_the_test_question_reported_is_the_one_overlapping_most_the_earliest_among_equals():
    train = _words(15, "w")
    test = [_words(11, "w"), _words(15, "w") + " extra", _words(15, "w") + " other"]
    [overlap] = decontaminate([train], test, n=8, threshold=0.5).dropped
    assert (overlap.test_index, overlap.score) == (1, 1.0)
    repeated = decontaminate(["What is 2 + 2?"], ["Other.", "what is 2 + 2?", "What is 2 + 2?"],
                             n=8, threshold=0.5)
    assert repeated.dropped == [Overlap(0, 1, "exact", 1.0)]


def test_a_share_equal_to_the_threshold_is_dropped():
    train = _words(9, "w")  # 2 8-grams
    test = _words(8, "w") + " other"  # shares the first one: share 0.5
    assert [o.score for o in decontaminate([train], [test], n=8, threshold=0.5).dropped] == [0.5]
    assert decontaminate([train], [test], n=8, threshold=0.51).kept == [0]


def test_questions_shorter_than_n_words_match_only_when_their_words_are_equal():
    test = ["How many apples?", "How many apples does Janet have left after lunch today"]
    same_words = decontaminate(["how many, apples"], test, n=8, threshold=0.5)
    assert same_words.dropped == [Overlap(0, 0, "ngram", 1.0)]
    more_words = decontaminate(["How many apples does she have?"], test, n=8, threshold=0.5)
    assert more_words.kept == [0]
    inside_a_long_one = decontaminate(["Janet have left after lunch"], test, n=8, threshold=0.5)
    assert inside_a_long_one.kept == [0]


def test_n_of_1_compares_word_sets():
    result = decontaminate(["apples pears plums figs"], ["pears and apples"], n=1, threshold=0.5)
    assert [o.score for o in result.dropped] == [0.5]


# --- the result ------------------------------------------------------------------------------

def test_kept_and_dropped_keep_the_input_order():
    test = [BODY, "What is 2 + 2?"]
    train = ["new question one", "what is 2 + 2?", "new question two",
             BODY.replace("afternoon", "evening"), "new question three"]
    result = decontaminate(train, test, n=8, threshold=0.5)
    assert result.kept == [0, 2, 4]
    assert [(o.train_index, o.test_index, o.kind) for o in result.dropped] == [
        (1, 1, "exact"), (3, 0, "ngram")]
    assert result.counts() == {"exact": 1, "ngram": 1}


def test_repeats_inside_train_are_left_to_the_caller():
    result = decontaminate(["Same question.", "same  question."], ["Other."], n=8, threshold=0.5)
    assert result.kept == [0, 1]
    assert result.counts() == {"exact": 0, "ngram": 0}


def test_examples_give_the_first_dropped_pairs_with_rounded_scores():
    test = [BODY, "What is 2 + 2?"]
    paraphrase = BODY.replace("afternoon", "evening")
    train = ["what is 2 + 2?", "kept", paraphrase, paraphrase.replace("Janet", "Jane")]
    result = decontaminate(train, test, n=8, threshold=0.5)
    assert result.examples(train, test, limit=2) == [
        {"train": "what is 2 + 2?", "test": "What is 2 + 2?", "kind": "exact", "score": 1.0},
        {"train": paraphrase, "test": BODY, "kind": "ngram", "score": 0.923},
    ]
    assert [e["train"] for e in result.examples(train, test, kind="ngram")] == [
        paraphrase, paraphrase.replace("Janet", "Jane")]
    assert result.examples(train, test, limit=0) == []


@pytest.mark.parametrize("n", [0, -1, 2.0, True])
def test_n_must_be_a_positive_integer(n):
    with pytest.raises(ValueError, match="n must be"):
        decontaminate(["a"], ["b"], n=n, threshold=0.5)


@pytest.mark.parametrize("threshold", [0, -0.1, 1.01])
def test_threshold_must_be_above_0_and_at_most_1(threshold):
    with pytest.raises(ValueError, match="threshold must be"):
        decontaminate(["a"], ["b"], n=8, threshold=threshold)


def test_a_gsm8k_sized_split_finds_exactly_the_planted_overlaps():
    """~7,000 train x 1,300 test questions sharing a template tail (no timing asserted)."""
    rng = random.Random(0)
    vocabulary = [f"word{i}" for i in range(5000)]

    def question() -> str:
        return " ".join(rng.choices(vocabulary, k=rng.randint(20, 60))) + " How many are left?"

    test = [question() for _ in range(1300)]
    train = [question() for _ in range(7000)]
    planted = {10: 5, 2000: 700, 6999: 1299}
    for train_index, test_index in planted.items():
        train[train_index] = test[test_index].replace("How many", "How many more")
    train[3000] = test[42].upper()
    result = decontaminate(train, test, n=8, threshold=0.5)
    assert {(o.train_index, o.test_index, o.kind) for o in result.dropped} == {
        *((i, j, "ngram") for i, j in planted.items()), (3000, 42, "exact")}
    assert len(result.kept) == 7000 - 4


def test_without_ngrams_only_exact_repeats_are_dropped():
    test = ["Alice has a red ball, Bob has a blue ball. Alice and Bob swap balls. Who has red?"]
    train = [test[0].upper(),
             "Alice has a red ball, Bob has a blue ball. Alice and Bob swap balls. Who has blue?"]
    result = decontaminate(train, test, n=8, threshold=0.5, by_ngrams=False)
    assert result.counts() == {"exact": 1, "ngram": 0}
    assert result.kept == [1]
    assert decontaminate(train, test, n=8, threshold=0.5).counts() == {"exact": 1, "ngram": 1}
