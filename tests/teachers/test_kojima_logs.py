"""Kojima et al.'s published text-davinci-002 runs, read from the logs themselves."""

from __future__ import annotations

import shutil

import pytest
from support.repo import REPO

from cotdistill import answers
from cotdistill.datasets.sources import FileSource
from cotdistill.errors import CotdistillError
from cotdistill.records import PreparedExample
from cotdistill.teachers.kojima_logs import (
    COMMIT,
    LOGS,
    TEACHER,
    log_file,
    parse_log,
    replay_logs,
)

MIRROR = REPO.parent / "shared/data/mirror"
HEADER = ("*****************************\nNamespace(cot_trigger=\"Let's think step by step.\", "
          "dataset='multiarith', direct_answer_trigger='\\nTherefore, the answer (arabic numerals) "
          "is', method='zero_shot_cot', model='gpt3-xl')\n*****************************\n")


def entry(n: int, question: str, a_part: str, pred_before: str, gt: str) -> str:
    return (f"*************************\n{n}st data\n1_th_sampling\nQ: {question}\n"
            f"A: Let's think step by step. {a_part}\npred_before : {pred_before}\n"
            f"pred_after : x\npred_list : ['x']\npred_mode : x\nGT : {gt}\n"
            "*************************\n")


LOG = HEADER + entry(1, "Ann has 2 apples and gets 3. How many?",
                     "Ann has 2. She gets 3. \nTherefore, the answer (arabic numerals) is 5.",
                     "5.", "5") + entry(
    2, "Bo has 4 pens\nand loses 1. How many?",
    "Bo had 4 pens. \nTherefore, the answer (arabic numerals) is 3. \n\nBo lost 1 \n"
    "Therefore, the answer (arabic numerals) is 3",
    "3. \n\nBo lost 1 \nTherefore, the answer (arabic numerals) is 3", "3") + entry(
    3, "Cy runs 1:30 h. Minutes?", "It is 90 minutes. \n"
    "Therefore, the answer (arabic numerals) is: 1:30 = 90", "1:30 = 90", "90") + entry(
    4, "Di has 6 and 1. Total?", "6 + 1 = 7. \nTherefore, the answer (arabic numerals) is 7:00.",
    "700.", "7")


def test_each_entry_splits_at_the_runs_answer_trigger():
    parsed = parse_log(LOG, "x.log")
    assert [e.position for e in parsed] == [1, 2, 3, 4]
    assert parsed[0].question == "Ann has 2 apples and gets 3. How many?"
    assert (parsed[0].rationale, parsed[0].answer_text, parsed[0].gold) == (
        "Ann has 2. She gets 3.", "5.", "5")
    # the second call's text repeats the trigger: the rationale ends at the trigger before it
    assert parsed[1].rationale == "Bo had 4 pens."
    assert parsed[1].answer_text.startswith("3. \n\nBo lost 1")
    assert parsed[1].question == "Bo has 4 pens\nand loses 1. How many?"
    # the authors stripped the answer's leading ":" in pred_before
    assert (parsed[2].rationale, parsed[2].answer_text) == ("It is 90 minutes.", ": 1:30 = 90")
    # their cleansing rewrote pred_before ("7:00." -> "700."): the first trigger splits
    assert (parsed[3].rationale, parsed[3].answer_text) == ("6 + 1 = 7.", "7:00.")


def test_an_entry_out_of_format_names_the_file_and_the_entry():
    broken = HEADER + entry(1, "Q1?", "no trigger here", "1", "1")
    with pytest.raises(CotdistillError, match=r"x\.log: entry 1 is not in the log format"):
        parse_log(broken, "x.log")
    with pytest.raises(CotdistillError, match="no direct_answer_trigger"):
        parse_log("Namespace(dataset='x')\n", "x.log")


def test_every_published_log_parses_and_scores_like_the_paper():
    """Our reading of the logs lands where the authors' own cleansing did (Kojima et al. 2022,
    Table 1), a little above where theirs missed right answers."""
    published = {"addsub": 69.62, "coin_flip": 91.40, "date_understanding": 67.48,
                 "gsm8k": 40.71, "last_letter_concatenation": 57.60, "multiarith": 78.67,
                 "tracking_shuffled_objects": 52.40, "single_eq": 77.95}
    from cotdistill.datasets import DATASETS

    source = FileSource(MIRROR, REPO / ".no-cache", download=False)
    for dataset, figure in published.items():
        entries = parse_log(source.path(log_file(dataset)).read_text(encoding="utf-8"), dataset)
        kind = DATASETS[dataset].answer_type
        right = sum(answers.is_correct(answers.extract(e.answer_text, kind, None),
                                       answers.normalize_gold(e.gold, kind), kind)
                    for e in entries)
        assert figure - 0.5 <= 100 * right / len(entries) <= figure + 4.5, dataset


def _prepared(dataset: str, question: str, i: int, answer: str = "5") -> PreparedExample:
    return PreparedExample(id=f"{dataset}-{i:05d}", dataset=dataset, split="train",
                           question=question, answer=answer, answer_type="number")


def test_replay_matches_by_text_with_lineage_and_counts_what_it_could_not_match(tmp_path):
    mirror = tmp_path / "mirror"
    file = log_file("multiarith")
    (mirror / file.relative).parent.mkdir(parents=True)
    shutil.copy(MIRROR / file.relative, mirror / file.relative)
    text = (mirror / file.relative).read_text(encoding="utf-8")
    first = parse_log(text, "log")[0]
    examples = [_prepared("multiarith", first.question.upper() + "  ", 0, first.gold),
                _prepared("multiarith", "A question Kojima et al. never asked?", 1)]
    records, report = replay_logs(examples, FileSource(mirror, tmp_path / "cache"))
    [record] = records
    assert record.id == "multiarith-00000" and record.model == TEACHER == "text-davinci-002"
    assert record.rationale == first.rationale and record.correct
    assert record.lineage == {"file": "log/multiarith_zero_shot_cot.log", "position": 1,
                              "repository": "kojima-takeshi188/zero_shot_cot", "commit": COMMIT}
    figures = report.as_dict()["datasets"]["multiarith"]
    assert figures["imported"] == 1 and figures["questions_without_entry"] == 1
    assert figures["entries_for_other_questions"] == 600 - 1 - figures["repeated_entries"]


def test_a_log_that_drifted_from_the_pinned_commit_is_refused(tmp_path):
    file = log_file("addsub")
    (tmp_path / file.relative).parent.mkdir(parents=True)
    (tmp_path / file.relative).write_text("not the published log")
    with pytest.raises(CotdistillError, match="checksum mismatch"):
        replay_logs([_prepared("addsub", "Q?", 0)], FileSource(tmp_path, tmp_path / "c",
                                                               download=False))


def test_gsm8k_training_questions_have_no_entry_and_the_report_says_why():
    records, report = replay_logs([_prepared("gsm8k", "A GSM8K training question?", 0)],
                                  FileSource(MIRROR, REPO / ".no-cache", download=False))
    figures = report.as_dict()["datasets"]["gsm8k"]
    assert not records and figures["questions_without_entry"] == 1
    assert "test questions only" in figures["note"]


def test_a_dataset_without_a_log_is_a_clear_error():
    assert "svamp" not in LOGS
    with pytest.raises(CotdistillError, match="no published log for dataset 'svamp'"):
        log_file("svamp")
