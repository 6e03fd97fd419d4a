"""A team's own dataset in ``prepare.datasets``: read with ``datasets`` from JSON Lines, JSON,
CSV or Parquet, split by its own test file or a seeded fraction, normalised and reported, and
refused at the door, with the file, the row and the field named, when a row is bad."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from support.cli import cotdistill, one_error_line

from cotdistill.datasets.build import build
from cotdistill.errors import CotdistillError
from cotdistill.params import PrepareParams, load_params

QUESTION = "Tom has {i} apples and buys {j} more at the market today. How many apples now?"


# ten questions with little in common, as a real dataset's are
STORIES = [
    "A shop sells red pens and blue pens every single day of the week to the children.",
    "The farmer keeps sheep in the north field and goats near the old stone barn.",
    "Maria paints three large canvases each month for the gallery downtown.",
    "Our school bus picks up pupils at five stops before crossing the river bridge.",
    "In the library, volunteers shelve returned novels every Tuesday evening.",
    "A baker fills trays with rolls, croissants and muffins before dawn.",
    "The orchestra tunes its violins while the audience finds its seats.",
    "Two trains leave the station heading west across the plains at noon.",
    "Grandpa plants tomatoes and beans along the sunny fence of his garden.",
    "The museum shows fossils found by students on a summer dig in Wyoming.",
]


def apples(count: int = 20) -> list[dict]:
    return [{"q": QUESTION.format(i=i, j=i + 3), "a": str(2 * i + 3)} for i in range(count)]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def colours(count: int = 12) -> list[list[str]]:
    return [[f"c{i}", f"Which colour is the paint in pot number {i} of the shop?", "red",
             "green", "blue", ["red", "B", "(c)"][i % 3]] for i in range(count)]


def params(*entries: dict, **settings) -> PrepareParams:
    return PrepareParams.model_validate({"datasets": list(entries), **settings}, strict=False)


APPLES = {"name": "apples", "path": "data/raw/apples.jsonl", "question": "q", "answer": "a",
          "answer_type": "number"}
COLOURS = {"name": "colours", "path": "data/raw/colours.csv", "id": "id",
           "choices": ["one", "two", "three"], "answer": "label", "answer_type": "choice"}
COLOUR_HEADER = ["id", "question", "one", "two", "three", "label"]


def prepared(root: Path, *entries: dict, **settings):
    return build(params(*entries, **settings), root=root)


# --- what goes in ----------------------------------------------------------------------------


def test_a_jsonl_number_task_is_split_by_seed_and_its_answers_normalised(tmp_path):
    rows = apples()
    rows[1]["a"], rows[2]["a"] = " 5 ", "1,234"
    write_jsonl(tmp_path / APPLES["path"], rows)
    out = prepared(tmp_path, APPLES, test_fraction=0.25, val_fraction=0.2)
    splits = {split: [e for e in examples] for split, examples in out.splits.items()}
    assert sum(map(len, splits.values())) == 20 and len(splits["test"]) == 5
    by_id = {e.id: e for examples in splits.values() for e in examples}
    assert by_id["apples-00001"].answer == "5" and by_id["apples-00002"].answer == "1234"
    assert {e.answer_type for e in by_id.values()} == {"number"}
    report = out.report["apples"]
    assert report["normalised"] == {"answer: thousands separators removed": 1,
                                    "answer: whitespace trimmed": 1}
    assert (report["train"], report["val"], report["test"]) == (11, 4, 5)
    again = prepared(tmp_path, APPLES, test_fraction=0.25, val_fraction=0.2)
    assert again.splits == out.splits  # seeded


def test_a_csv_choice_task_shows_its_options_and_answers_with_letters(tmp_path):
    write_csv(tmp_path / COLOURS["path"], COLOUR_HEADER, colours())
    out = prepared(tmp_path, COLOURS)
    examples = {e.id: e for split in out.splits.values() for e in split}
    first = examples["colours-c0"]
    assert first.question.endswith("shop? Answer Choices: (A) red (B) green (C) blue")
    assert first.choices == ["red", "green", "blue"]
    assert [examples[f"colours-c{i}"].answer for i in range(3)] == ["A", "B", "C"]
    assert out.report["colours"]["normalised"] == {"answer: option text read as its letter": 4}


def test_a_csv_saved_by_excel_with_a_byte_order_mark_reads_like_one_without(tmp_path):
    plain = write_csv(tmp_path / COLOURS["path"], COLOUR_HEADER, colours())
    without = prepared(tmp_path, COLOURS)
    plain.write_bytes(b"\xef\xbb\xbf" + plain.read_bytes())  # what Excel's "CSV UTF-8" writes
    assert prepared(tmp_path, COLOURS).splits == without.splits


def test_a_choices_field_may_hold_the_list_and_json_and_parquet_read_alike(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{"question": f"{thing} Which colour is it?", "options": ["red", "blue"],
             "answer": "blue"} for thing in STORIES]
    (tmp_path / "data/raw").mkdir(parents=True)
    (tmp_path / "data/raw/sky.json").write_text(json.dumps(rows))
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "data/raw/sky.parquet")
    entry = {"choices": "options", "answer_type": "choice"}
    from_json = prepared(tmp_path, {"name": "sky", "path": "data/raw/sky.json", **entry})
    from_parquet = prepared(tmp_path, {"name": "sky", "path": "data/raw/sky.parquet", **entry})
    assert from_json.splits == from_parquet.splits
    assert {e.answer for split in from_json.splits.values() for e in split} == {"B"}


def test_an_own_test_file_is_kept_as_the_test_split(tmp_path):
    write_jsonl(tmp_path / "data/raw/apples.jsonl", apples(16))
    tests = [{"q": f"A farmer picks {i} pears and {i} plums from his garden. How many fruit?",
              "a": str(2 * i)} for i in range(4)]
    write_jsonl(tmp_path / "data/raw/apples-test.jsonl", tests)
    out = prepared(tmp_path, {**APPLES, "test_path": "data/raw/apples-test.jsonl"})
    assert [e.question for e in out.splits["test"]] == [row["q"] for row in tests]
    assert len(out.splits["train"]) + len(out.splits["val"]) == 16


def test_yes_no_answers_read_true_and_false_and_any_case(tmp_path):
    rows = [{"question": f"Is {i} an even number, counting from zero upwards?", "answer": a}
            for i, a in enumerate([True, "false", "Yes", "no"] * 3)]
    write_jsonl(tmp_path / "data/raw/even.jsonl", rows)
    out = prepared(tmp_path, {"name": "even", "path": "data/raw/even.jsonl",
                              "answer_type": "yes_no"}, test_fraction=0.25)
    answers = {e.id: e.answer for split in out.splits.values() for e in split}
    assert [answers[f"even-{i:05d}"] for i in range(4)] == ["yes", "no", "yes", "no"]
    assert out.report["even"]["normalised"] == {"answer: case": 3,
                                                "answer: true/false read as yes/no": 6}


# --- bad rows: one line naming the file, the row and the field ------------------------------


def failure(tmp_path: Path, entry: dict, **settings) -> str:
    with pytest.raises(CotdistillError) as caught:
        prepared(tmp_path, entry, **settings)
    return str(caught.value)


def test_a_missing_field_names_the_file_row_and_field(tmp_path):
    rows = apples()
    del rows[4]["a"]
    write_jsonl(tmp_path / APPLES["path"], rows)
    assert failure(tmp_path, APPLES) == "data/raw/apples.jsonl: row 5: field 'a' is missing (or null)"
    write_jsonl(tmp_path / APPLES["path"], apples())
    message = failure(tmp_path, {**APPLES, "answer": "solution"})
    assert message == "data/raw/apples.jsonl: row 1: no field 'solution' (fields: a, q)"


def test_an_empty_question_is_refused(tmp_path):
    rows = apples()
    rows[2]["q"] = "   "
    write_jsonl(tmp_path / APPLES["path"], rows)
    assert failure(tmp_path, APPLES) == "data/raw/apples.jsonl: row 3: field 'q' is empty"


def test_a_question_over_the_length_limit_is_refused_with_its_row(tmp_path):
    rows = apples()
    rows[3]["q"] = "How many? " * 5_000  # 50,000 characters: a pasted document, not a question
    write_jsonl(tmp_path / APPLES["path"], rows)
    assert failure(tmp_path, APPLES) == (
        "data/raw/apples.jsonl: row 4: field 'q' is 49,999 characters long; the limit is 20,000 "
        "(cotdistill.datasets.user.MAX_QUESTION_CHARS)")


@pytest.mark.parametrize("control", ["\x00", "\x1b", "\x7f"])
def test_a_control_character_in_a_question_or_an_option_is_refused(tmp_path, control):
    rows = apples()
    rows[1]["q"] = f"Tom has 3 apples.{control} How many?"
    write_jsonl(tmp_path / APPLES["path"], rows)
    assert failure(tmp_path, APPLES) == (
        f"data/raw/apples.jsonl: row 2: field 'q' holds the control character "
        f"U+{ord(control):04X} at character 18")
    options = colours()
    options[0][3] = f"gr{control}een"
    write_csv(tmp_path / COLOURS["path"], COLOUR_HEADER, options)
    assert failure(tmp_path, COLOURS) == (
        f"data/raw/colours.csv: row 1: field 'two' holds the control character "
        f"U+{ord(control):04X} at character 3")


def test_tabs_and_line_breaks_in_a_question_are_kept(tmp_path):
    rows = apples()
    rows[0]["q"] = "Tom has 3 apples\tand 2 pears.\nHow many fruits?"
    write_jsonl(tmp_path / APPLES["path"], rows)
    questions = [example.question for examples in prepared(tmp_path, APPLES).splits.values()
                 for example in examples]
    assert "Tom has 3 apples\tand 2 pears.\nHow many fruits?" in questions


def test_an_answer_that_is_not_of_its_type_is_refused(tmp_path):
    rows = apples()
    rows[6]["a"] = "seven"
    write_jsonl(tmp_path / APPLES["path"], rows)
    assert failure(tmp_path, APPLES) == "data/raw/apples.jsonl: row 7: field 'a': 'seven' is not a number"
    write_jsonl(tmp_path / "data/raw/even.jsonl", [{"question": "Is it?", "answer": "maybe"}])
    message = failure(tmp_path, {"name": "even", "path": "data/raw/even.jsonl",
                                 "answer_type": "yes_no"})
    assert message == "data/raw/even.jsonl: row 1: field 'answer': 'maybe' is not yes or no"


def test_choices_that_do_not_hold_the_answer_are_refused(tmp_path):
    rows = colours()
    rows[3][-1] = "purple"
    write_csv(tmp_path / COLOURS["path"], COLOUR_HEADER, rows)
    assert failure(tmp_path, COLOURS) == (
        "data/raw/colours.csv: row 4: field 'label': 'purple' is neither a letter A-C nor one "
        "of the options (red; green; blue)")
    rows = colours()
    rows[5][-1] = "D"
    write_csv(tmp_path / COLOURS["path"], COLOUR_HEADER, rows)
    assert "row 6: field 'label': 'D' is neither a letter A-C" in failure(tmp_path, COLOURS)
    rows = colours()
    rows[0][3] = "RED"
    write_csv(tmp_path / COLOURS["path"], COLOUR_HEADER, rows)
    assert failure(tmp_path, COLOURS) == (
        "data/raw/colours.csv: row 1: fields one, two, three: two options are the same")


def test_a_duplicate_id_names_both_rows(tmp_path):
    rows = colours()
    rows[7][0] = "c2"
    write_csv(tmp_path / COLOURS["path"], COLOUR_HEADER, rows)
    assert failure(tmp_path, COLOURS) == (
        "data/raw/colours.csv: row 8: field 'id': duplicate id 'c2' (first at "
        "data/raw/colours.csv: row 3)")


def test_a_test_split_that_comes_out_empty_is_refused(tmp_path):
    write_jsonl(tmp_path / APPLES["path"], apples(2))
    message = failure(tmp_path, {**APPLES, "test_fraction": 0.1}, val_fraction=0.0)
    assert message.startswith("params.yaml: prepare: dataset apples gets an empty test split")


def test_a_file_that_is_not_its_format_or_is_missing_is_one_line(tmp_path):
    path = write_jsonl(tmp_path / APPLES["path"], apples(3))
    good = path.read_text()
    path.write_text(good + '{"q": "cut short", "a\n')
    assert failure(tmp_path, APPLES) == ("data/raw/apples.jsonl:4: not valid JSON "
                                         "(column 20: Unterminated string starting)")
    path.write_bytes(good.encode() + b'{"q": "caf\xe9", "a": "1"}\n')
    assert failure(tmp_path, APPLES) == ("data/raw/apples.jsonl:4: not valid UTF-8 (byte 0xe9 "
                                         "at column 11)")
    path.write_text(good + "[1, 2]\n")
    assert failure(tmp_path, APPLES) == "data/raw/apples.jsonl:4: a list, not a JSON object"
    (tmp_path / "data/raw/bad.csv").write_text('question,answer\n"unclosed,1\n')
    message = failure(tmp_path, {"name": "bad", "path": "data/raw/bad.csv",
                                 "answer_type": "number"})
    assert message.startswith("data/raw/bad.csv: ") and "\n" not in message
    assert failure(tmp_path, {**APPLES, "path": "data/raw/gone.jsonl"}).startswith(
        "data/raw/gone.jsonl: not found")


@pytest.mark.parametrize(("entry", "message"), [
    ({"name": "mine"}, "dataset 'mine' has no source"),
    ({"name": "gsm8k", "path": "data/raw/x.jsonl", "answer_type": "number"},
     "is a built-in dataset's name"),
    ({"name": "mine", "path": "data/raw/x.jsonl"}, "answer_type is required"),
    ({"name": "mine", "path": "data/raw/x.jsonl", "answer_type": "choice"},
     "choices (a field, or a list of fields) is needed exactly when answer_type is choice"),
    ({"name": "mine", "path": "data/raw/x.txt", "answer_type": "text"}, "unknown suffix"),
    ({"name": "mine", "hub": "org/data", "answer_type": "text"}, "give revision"),
    ({"name": "mine", "path": "/etc/x.jsonl", "answer_type": "text"}, "inside the repository"),
    ({"name": "mine", "path": "data/raw/x.jsonl", "test_path": "/etc/passwd",
      "answer_type": "text"}, "test_path '/etc/passwd': give a path inside the repository"),
    ({"name": "My Task", "path": "data/raw/x.jsonl", "answer_type": "text"},
     "lower-case letters, digits and '_'"),
    ({"name": "gsm8k", "question": "q"}, "question: only for a dataset with a source"),
    ({"name": "mine", "path": "data/raw/x.jsonl", "answer_type": "text",
      "prompts": {"student": "no placeholder"}}, "must contain {question}"),
])
def test_a_dataset_entry_that_cannot_work_is_refused_with_its_key(tmp_path, entry, message):
    path = tmp_path / "params.yaml"
    path.write_text(json.dumps({"prepare": {"datasets": [entry]}}))
    with pytest.raises(CotdistillError, match="prepare.datasets") as caught:
        load_params(path)
    assert message in str(caught.value)
    # the key as the file spells it: no pydantic union member in the path, one message
    assert "function-after" not in str(caught.value) and ".str:" not in str(caught.value)
    assert str(caught.value).count("prepare.datasets") == 1


def test_a_symlink_that_leads_out_of_the_repository_is_refused(tmp_path):
    outside = write_jsonl(tmp_path / "elsewhere" / "apples.jsonl", apples())
    root = tmp_path / "repo"
    (root / "data/raw").mkdir(parents=True)
    (root / APPLES["path"]).symlink_to(outside)
    with pytest.raises(CotdistillError, match="leads outside the repository"):
        prepared(root, APPLES)


def test_cotdistill_prepare_on_a_bad_row_is_one_line_and_writes_nothing(tmp_path):
    write_jsonl(tmp_path / APPLES["path"], apples())
    (tmp_path / "params.yaml").write_text(json.dumps({"prepare": {"datasets": [APPLES]},
                                                      "evaluate": {"transfer_datasets": []}}))
    first = cotdistill(tmp_path, "prepare")
    assert first.returncode == 0, first.stderr
    outputs = sorted(tmp_path.glob("data/prepared/*")) + [tmp_path / "reports/prepare.json"]
    before = {path: path.read_bytes() for path in outputs}
    rows = apples()
    rows[9]["a"] = "n/a"
    write_jsonl(tmp_path / APPLES["path"], rows)
    line = one_error_line(cotdistill(tmp_path, "prepare"))
    assert line == "error: data/raw/apples.jsonl: row 10: field 'a': 'n/a' is not a number"
    assert {path: path.read_bytes() for path in outputs} == before
    assert sorted(tmp_path.glob("data/prepared/*")) + [tmp_path / "reports/prepare.json"] == outputs


# --- decontamination -------------------------------------------------------------------------


def test_training_questions_that_nearly_copy_a_test_question_are_dropped_and_reported(tmp_path):
    rows = [{"q": f"{story} How many are there?", "a": str(i)} for i, story in enumerate(STORIES)]
    tests = [{"q": rows[0]["q"].replace("red", "green"), "a": "7"},
             {"q": rows[5]["q"].upper(), "a": "77"}]
    write_jsonl(tmp_path / "data/raw/pens.jsonl", rows)
    write_jsonl(tmp_path / "data/raw/pens-test.jsonl", tests)
    entry = {"name": "pens", "path": "data/raw/pens.jsonl", "test_path": "data/raw/pens-test.jsonl",
             "question": "q", "answer": "a", "answer_type": "number"}
    out = prepared(tmp_path, entry, val_fraction=0.0)
    kept = {e.id for e in out.splits["train"]}
    assert "pens-00000" not in kept  # a near copy
    assert "pens-00005" not in kept  # an exact repeat (case aside) of a test question
    assert len(kept) == 8
    report = out.report["pens"]
    assert report["repeated_questions_dropped"] == 1
    assert report["decontamination"]["ngram"] == 1
    (example,) = report["decontamination"]["examples"]
    assert example["kind"] == "ngram" and example["train"] == rows[0]["q"]
    assert example["test"] == tests[0]["q"] and 0.5 <= example["score"] < 1
    everything = prepared(tmp_path, {**entry, "decontamination": "exact"}, val_fraction=0.0)
    assert everything.report["pens"]["decontamination"]["ngram"] == 0
    assert "pens-00000" in {e.id for e in everything.splits["train"]}


def test_a_free_text_answer_keeps_its_words_lower_cased_without_punctuation(tmp_path):
    rows = [{"question": f"{story} What is it about?", "answer": "shops"} for story in STORIES]
    rows[2]["answer"] = "Billing issue."
    rows[3]["answer"] = "..."
    write_jsonl(tmp_path / "data/raw/topic.jsonl", rows)
    entry = {"name": "topic", "path": "data/raw/topic.jsonl", "answer_type": "text"}
    assert failure(tmp_path, entry) == ("data/raw/topic.jsonl: row 4: field 'answer': '...' "
                                        "has no word to compare")
    rows[3]["answer"] = "shops"
    write_jsonl(tmp_path / "data/raw/topic.jsonl", rows)
    out = prepared(tmp_path, entry, val_fraction=0.0)
    answers = {e.id: e.answer for split in out.splits.values() for e in split}
    assert answers["topic-00002"] == "billing issue"
    assert out.report["topic"]["normalised"] == {"answer: case and punctuation": 1}


def test_a_hub_dataset_that_cannot_be_had_offline_is_one_line_saying_what_to_do(
        tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    message = failure(tmp_path, {"name": "gsm", "hub": "openai/gsm8k", "config": "main",
                                 "revision": "e53f048856ff4f594e959d75785d2c2d37b678ee",
                                 "answer_type": "text"})
    assert message.startswith("openai/gsm8k@e53f048856ff4f594e959d75785d2c2d37b678ee [train]: "
                              "cannot be loaded (")
    assert message.endswith("offline, export it to a file and give path instead")
    assert "\n" not in message


def test_socratic_datasets_may_name_a_user_dataset_of_prepare_but_nothing_else(tmp_path):
    entry = {**APPLES}
    path = tmp_path / "params.yaml"
    path.write_text(json.dumps({"prepare": {"datasets": [entry]},
                                "socratic": {"datasets": ["apples", "gsm8k"]}}))
    assert load_params(path).socratic.datasets == ["apples", "gsm8k"]
    path.write_text(json.dumps({"prepare": {"datasets": [entry]},
                                "socratic": {"datasets": ["pears"]}}))
    with pytest.raises(CotdistillError, match="socratic.datasets names 'pears': neither"):
        load_params(path)
