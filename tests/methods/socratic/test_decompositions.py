"""Socratic CoT decompositions: parsing teacher and gold text, counting what is dropped,
the final-answer filter, the few-shot prompt, and gold decompositions from GSM8K's files."""

from __future__ import annotations

import json
import random
import string

import pytest
from support.repo import REPO

from cotdistill.datasets.sources import FileSource
from cotdistill.errors import CotdistillError
from cotdistill.methods.socratic.decompositions import (
    EXEMPLARS,
    GSM8K_SOCRATIC_TEST,
    GSM8K_SOCRATIC_TRAIN,
    Decomposition,
    DecompositionStats,
    Exemplar,
    GoldStats,
    Malformed,
    ParsedDecomposition,
    decomposition_from_text,
    final_answer,
    gold_decompositions,
    keep_correct,
    load_exemplars,
    parse_decomposition,
    read_socratic_file,
)
from cotdistill.prompts.socratic import decomposition_prompt
from cotdistill.prompts.socratic import decomposition_prompt_id as prompt_id
from cotdistill.records import PreparedExample

MIRROR = REPO.parent / "shared/data/mirror"
SOCRATIC_TEST = MIRROR / GSM8K_SOCRATIC_TEST.relative


def _example(question: str = "Tom has 3 apples and buys 4 more. How many apples?",
             answer: str = "7", id: str = "gsm8k-00001") -> PreparedExample:
    return PreparedExample(id=id, dataset="gsm8k", split="train", question=question,
                           answer=answer, answer_type="number")


# --- good text ------------------------------------------------------------------------------


def test_numbered_teacher_output_gives_ordered_pairs_and_the_stated_answer():
    text = ("Q1: How many apples does Tom buy?\nA1: Tom buys 4 apples.\n"
            "Q2: How many apples does Tom have?\nA2: He has 3 + 4 = 7 apples.\nThe answer is 7.")
    parsed = parse_decomposition(text)
    assert parsed == ParsedDecomposition(
        [("How many apples does Tom buy?", "Tom buys 4 apples."),
         ("How many apples does Tom have?", "He has 3 + 4 = 7 apples.")], "7.")


def test_preamble_is_ignored_and_wrapped_lines_continue_their_question_or_answer():
    text = ("Sure! Let's break it down.\n\nQ1: How many apples\ndoes Tom buy?\n"
            "A1: Tom buys\n4 apples.\nQ2: How many in all? A2: 3 + 4 = 7.\n\n")
    parsed = parse_decomposition(text)
    assert isinstance(parsed, ParsedDecomposition)
    assert parsed.pairs == [("How many apples does Tom buy?", "Tom buys 4 apples."),
                            ("How many in all?", "3 + 4 = 7.")]
    assert parsed.stated_answer is None


def test_text_after_the_final_answer_line_is_not_read():
    text = "Q1: What is 2+2?\nA1: 4\nThe answer is 4.\nProblem: another one\nQ1: x"
    parsed = parse_decomposition(text)
    assert isinstance(parsed, ParsedDecomposition) and len(parsed.pairs) == 1


def test_gold_socratic_lines_are_parsed_with_calculator_annotations_removed():
    first = json.loads(SOCRATIC_TEST.read_text(encoding="utf-8").splitlines()[0])
    parsed = parse_decomposition(first["answer"])
    assert parsed == ParsedDecomposition(
        [("How many eggs does Janet sell?", "Janet sells 16 - 3 - 4 = 9 duck eggs a day."),
         ("How much does Janet make at the farmers' market?",
          "She makes 9 * 2 = $18 every day at the farmer’s market.")],
        "18")


def test_every_gold_test_decomposition_parses_and_nearly_all_last_steps_hold_the_answer():
    lines = [json.loads(line) for line in SOCRATIC_TEST.read_text(encoding="utf-8").splitlines()]
    assert len(lines) == 1319
    right = 0
    for item in lines:
        parsed = parse_decomposition(item["answer"])
        assert isinstance(parsed, ParsedDecomposition), item["answer"]
        gold = item["answer"].split("####")[1].strip().replace(",", "")
        right += final_answer(parsed.pairs[-1][1], "number") == gold
    assert right / len(lines) > 0.99


def test_final_answer_reads_the_result_after_the_last_equals_sign():
    assert final_answer("Together they have 20 sheep + 160 sheep = 180 sheep", "number") == "180"
    assert final_answer("She feeds 60-15-25=20 cups in the evening.", "number") == "20"
    assert final_answer("She has 5 left.", "number") == "5"
    assert final_answer("So the coin is heads up = yes", "yes_no") == "yes"
    assert final_answer("no number here = none", "number") is None


# --- broken text ------------------------------------------------------------------------------


@pytest.mark.parametrize("text, reason", [
    ("", "empty output"),
    ("   \n ", "empty output"),
    ("I think the answer is 7 because 3 + 4 = 7", "no sub-questions"),
    ("Q1: How many?\nA1: 4.\nQ2: How many in all?", "sub-question without an answer"),
    ("Q1: How many?\nQ2: And then?\nA2: 7", "sub-question without an answer"),
    ("A1: Four apples.", "answer without a sub-question"),
    ("Q1: How many?\nA1: 4.\nQ3: Skip?\nA3: 7", "numbering out of order"),
    ("Q1: How many?\nA2: 4.", "numbering out of order"),
    ("Q1: How many?\nA1:\nQ2: x\nA2: 7", "empty sub-answer"),
    ("Q1: <<1+1=2>>\nA1: 2", "empty sub-question"),
    (None, "not text"),
    (42, "not text"),
])
def test_broken_outputs_are_malformed_with_a_reason(text, reason):
    assert parse_decomposition(text) == Malformed(reason)


def test_the_parser_never_raises_on_random_text():
    rng = random.Random(0)
    alphabet = string.printable + "**QA:1234#=<>"
    pieces = ["Q1:", "A1:", "Q2:", "A2:", " ** ", "\n", "####", "The answer is", "<<", ">>"]
    for _ in range(2000):
        text = "".join(rng.choice(pieces) if rng.random() < 0.3 else rng.choice(alphabet)
                       for _ in range(rng.randint(0, 80)))
        assert isinstance(parse_decomposition(text), (ParsedDecomposition, Malformed))


def test_malformed_outputs_are_counted_by_reason_and_dropped():
    example = _example()
    stats = DecompositionStats()
    texts = ["Q1: How many apples are bought?\nA1: 4 apples.\nQ2: How many in all?\n"
             "A2: 3 + 4 = 7 apples.",
             "Q1: How many apples are bought?\nA1: 4",  # wrong final answer, still parsed
             "Q1: How many apples are bought?",  # cut off
             "blah"]
    kept = [decomposition_from_text(example, text, "teacher", stats, sample=i)
            for i, text in enumerate(texts)]
    assert [d is not None for d in kept] == [True, True, False, False]
    assert stats.as_dict() == {
        "outputs": 4, "parsed": 2, "malformed": 2,
        "malformed_reasons": {"sub-question without an answer": 1, "no sub-questions": 1},
        "correct": 1, "parsed_rate": 0.5, "correct_rate": 0.25, "mean_pairs": 1.5,
    }
    right, wrong = kept[0], kept[1]
    assert right.final_answer == "7" and right.correct and right.sample == 0
    assert wrong.final_answer == "4" and not wrong.correct
    assert right.lineage == "gsm8k-00001#teacher:0"


def test_the_final_answer_filter_keeps_only_right_answers():
    def decomposition(answer: str, correct: bool) -> Decomposition:
        return Decomposition(id="x", dataset="gsm8k", source="teacher",
                             pairs=[("q?", f"It is {answer}.")], final_answer=answer,
                             correct=correct)

    kept = keep_correct([decomposition("7", True), decomposition("8", False),
                         decomposition("7", True)])
    assert [d.final_answer for d in kept] == ["7", "7"]


def test_a_decomposition_record_needs_at_least_one_pair():
    with pytest.raises(ValueError):
        Decomposition(id="x", dataset="d", source="gold", pairs=[], final_answer=None,
                      correct=False)


# --- the prompt -------------------------------------------------------------------------------


def test_the_prompt_shows_the_exemplars_in_the_format_the_parser_reads():
    prompt = decomposition_prompt("How many legs do 2 cats have?", EXEMPLARS[:2])
    assert prompt.endswith("\n\nProblem: How many legs do 2 cats have?\n")
    assert "Q2: How many clips did Natalia sell altogether in April and May?\n" in prompt
    assert "The answer is 10." in prompt and "Betty" not in prompt
    for block in prompt.split("\n\n")[1:-1]:  # each exemplar reads back as its own pairs
        body = block.split("\n", 1)[1]
        assert isinstance(parse_decomposition(body), ParsedDecomposition)


def test_prompt_id_names_the_exemplars_used():
    assert prompt_id(EXEMPLARS) == prompt_id(list(EXEMPLARS))
    assert prompt_id(EXEMPLARS) != prompt_id(EXEMPLARS[:2])
    assert prompt_id(EXEMPLARS).startswith("socratic_decompose@")


def test_exemplars_come_from_a_file_or_the_built_in_ones(tmp_path):
    assert load_exemplars(None, 2) == list(EXEMPLARS[:2])
    path = tmp_path / "exemplars.jsonl"
    mine = Exemplar(question="What is 1+1?", pairs=[("What is 1+1?", "1+1 = 2")], answer="2")
    path.write_text(mine.model_dump_json() + "\n", encoding="utf-8")
    assert load_exemplars(path, 1) == [mine]
    with pytest.raises(CotdistillError, match="2 asked for"):
        load_exemplars(path, 2)


# --- gold decompositions ----------------------------------------------------------------------


def test_gold_decompositions_match_questions_and_name_the_missing_train_file(tmp_path):
    lines = [json.loads(line) for line in SOCRATIC_TEST.read_text(encoding="utf-8").splitlines()]
    examples = [
        _example(question="  " + lines[0]["question"].upper() + " ", answer="18", id="g-0"),
        _example(question=lines[1]["question"], answer="3", id="g-1"),
        _example(question=lines[2]["question"], answer="1", id="g-2"),  # wrong gold on purpose
        _example(question="A question no socratic file has?", answer="1", id="g-3"),
    ]
    stats = GoldStats()
    source = FileSource(mirror=MIRROR, cache=tmp_path / "cache", download=False)
    found = gold_decompositions(examples, source, stats=stats)
    assert [d.id for d in found] == ["g-0", "g-1", "g-2"]
    assert all(d.source == "gold" and d.sample == 0 for d in found)
    assert [d.correct for d in found] == [True, True, False]
    assert [d.id for d in keep_correct(found)] == ["g-0", "g-1"]
    assert stats.unmatched == 1
    assert stats.missing_files == [str(GSM8K_SOCRATIC_TRAIN.relative)]  # not mirrored
    assert stats.as_dict()["parsed"] == 3


def test_a_broken_socratic_file_names_file_and_line(tmp_path):
    path = tmp_path / "x_socratic.jsonl"
    path.write_text('{"question": "q", "answer": "a ** b"}\n{"question": 1}\n', encoding="utf-8")
    with pytest.raises(CotdistillError, match="x_socratic.jsonl:2"):
        read_socratic_file(path)
