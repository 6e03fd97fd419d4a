"""Kojima et al.'s published text-davinci-002 runs, read from the logs themselves."""

from __future__ import annotations

import re
import shutil
from collections import Counter
from pathlib import Path

import pytest
from support.repo import REPO

from cotdistill import answers
from cotdistill.datasets.sources import FileSource, checksum
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


def entry(n: int, question: str, a_part: str, pred_before: str, gt: str, pred_after: str = "x"
          ) -> str:
    return (f"*************************\n{n}st data\n1_th_sampling\nQ: {question}\n"
            f"A: Let's think step by step. {a_part}\npred_before : {pred_before}\n"
            f"pred_after : {pred_after}\npred_list : ['{pred_after}']\npred_mode : {pred_after}\n"
            f"GT : {gt}\n*************************\n")


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
    from cotdistill.catalog import DATASETS

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
    assert "coin_flip_generated" not in LOGS  # ours, built from a seed: Kojima never ran it
    with pytest.raises(CotdistillError, match="no published log for dataset 'coin_flip_generated'"):
        log_file("coin_flip_generated")


def test_every_one_of_the_twelve_benchmarks_has_a_pinned_log():
    from cotdistill.catalog import DATASETS

    assert set(LOGS) == {name for name, spec in DATASETS.items() if not spec.generated}
    assert {dataset: log_file(dataset).path for dataset in NEW} == {
        "svamp": "log/svamp_zero_shot_cot.log", "aqua": "log/aqua_zero_shot_cot.log",
        "commonsense_qa": "log/commonsensqa_zero_shot_cot.log",  # Kojima's spelling
        "strategy_qa": "log/strategyqa_zero_shot_cot.log"}
    assert {log_file(dataset).revision for dataset in LOGS} == {COMMIT}


# The four logs the offline mirror lacks, written here in the published format: Kojima's dataset
# name, the run's answer trigger, and per entry (question, rationale, the answer after the
# trigger, GT, our prepared answer, the prediction we read, right or not).
NEW = {
    "svamp": ("svamp", "\\nTherefore, the answer (arabic numerals) is", [
        ("Each pack of dvds costs 76 dollars. If there is a discount of 25 dollars on each pack "
         "How much do you have to pay to buy each pack?",
         "Each pack costs 76 dollars and there is a discount of 25 dollars. So you pay 76 - 25 "
         "= 51 dollars.", " 51.", "51", "51", "51", True),
        ("Dan had $ 3 left with him after he bought a candy bar. If he had $ 4 at the start "
         "How much did the candy bar cost?", "Dan had $4 and has $3 left. 4 + 3 = 7.", " $7.",
         "1", "1", "7", False)]),
    "aqua": ("aqua", "\\nTherefore, among A through E, the answer is", [
        ("A train covers 60 km in 1.5 hours. What is its speed in km/h? Answer Choices: (A) 30 "
         "(B) 40 (C) 45 (D) 50 (E) 90", "Speed is distance over time: 60 / 1.5 = 40 km/h. So "
         "the answer is (B).", " (B).", "B", "B", "B", True),
        ("If 3x = 12, what is x + 1? Answer Choices: (A) 3 (B) 4 (C) 5 (D) 6 (E) 7",
         "x = 12 / 3 = 4, and x + 1 = 5.", " (B) 4", "C", "C", "B", False)]),
    "commonsense_qa": ("commonsensqa", "\\nTherefore, among A through E, the answer is", [
        ("A revolving door is convenient for two direction travel, but it also serves as a "
         "security measure at a what? Answer Choices: (A) bank (B) library (C) department store "
         "(D) mall (E) new york", "A revolving door lets people through one at a time, which "
         "matters for security at a bank.", " A.", "A", "A", "A", True),
        ("Where would you find magazines along side many other printed works? Answer Choices: "
         "(A) doctor (B) bookstore (C) market (D) train station (E) mortuary",
         "Magazines are sold at train stations.", " D.", "B", "B", "D", False)]),
    "strategy_qa": ("strategyqa", "\\nTherefore, the answer (Yes or No) is", [
        ("Do hamsters provide food for any animals?", "Hamsters are prey animals. Prey animals "
         "are food for predators. Thus, hamsters provide food for some animals.", " Yes.", "yes",
         "yes", "yes", True),
        ("Could Brooke Shields succeed at University of Pennsylvania?", "Brooke Shields went to "
         "Princeton University.", " No.", "yes", "yes", "no", False)]),
}
ANSWER_TYPES = {"svamp": "number", "aqua": "choice", "commonsense_qa": "choice",
                "strategy_qa": "yes_no"}


def published_log(dataset: str) -> str:
    """A log as Kojima et al.'s ``main.py`` prints one: the ``Namespace`` header between
    asterisks, the loader's lines, one block per question, the closing accuracy."""
    name, trigger, rows = NEW[dataset]
    path = f"./log/{name}_zero_shot_cot_20220510000000_api_log.json"
    header = (f"*****************************\nNamespace(api_log_file_name='{path}', "
              f"cot_trigger=\"Let's think step by step.\", dataset='{name}', "
              f"direct_answer_trigger='{trigger}', method='zero_shot_cot', model='gpt3-xl', "
              "random_seed=1)\n*****************************\nsetup data loader ...\n"
              f"dataset : {name}\ndata size : {len(rows)}\n")
    said = trigger.replace("\\n", "\n")
    blocks = [entry(n, question, f"{rationale} {said}{after}", after, gt, read.upper()
                    if name in ("aqua", "commonsensqa") else read)
              for n, (question, rationale, after, gt, _, read, _) in enumerate(rows, 1)]
    return header + "".join(blocks) + f"accuracy : 50.0\n{path}\n"


def in_mirror(mirror: Path, dataset: str, monkeypatch) -> Path:
    """The test's log of ``dataset`` where the mirror keeps it, pinned by its own checksum (the
    published bytes are not at hand: only the pin differs from the published file's)."""
    file = log_file(dataset)
    path = mirror / file.relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(published_log(dataset), encoding="utf-8")
    monkeypatch.setitem(LOGS, dataset, (LOGS[dataset][0], checksum(path, "sha256")[7:]))
    return path


def options(question: str) -> list[str]:
    """The option texts of a question worded as Kojima's: ``... Answer Choices: (A) x (B) y``."""
    return [text.strip() for text in re.split(r"\(([A-E])\) ", question)[2::2]]


def asked(dataset: str, split: str = "train") -> list[PreparedExample]:
    """The prepared questions of ``dataset`` that the test log answers, in ``split``."""
    kind = ANSWER_TYPES[dataset]
    return [PreparedExample(
        id=f"{dataset}-{i:05d}", dataset=dataset, split=split, question=question, answer=gold,
        answer_type=kind, choices=options(question) if kind == "choice" else None)
        for i, (question, _, _, _, gold, *_) in enumerate(NEW[dataset][2])]


def never_logged(dataset: str, question: str, i: int) -> PreparedExample:
    """A prepared training question of ``dataset`` that the test log does not answer."""
    return asked(dataset)[0].model_copy(update={"id": f"{dataset}-{i:05d}", "question": question})


@pytest.mark.parametrize("dataset", list(NEW))
def test_the_four_logs_missing_from_the_mirror_replay_once_they_are_there(
        dataset, tmp_path, monkeypatch):
    in_mirror(tmp_path / "mirror", dataset, monkeypatch)
    examples = asked(dataset)
    records, report = replay_logs(examples, FileSource(tmp_path / "mirror", tmp_path / "cache",
                                                       download=False))
    rows = NEW[dataset][2]
    assert [r.id for r in records] == [e.id for e in examples]
    for record, (_, rationale, after, _, _, prediction, right) in zip(records, rows):
        assert (record.rationale, record.answer_text) == (rationale, after.strip())
        assert (record.prediction, record.correct) == (prediction, right)
        assert record.lineage["file"] == log_file(dataset).path
    figures = report.as_dict()["datasets"][dataset]
    assert (figures["entries"], figures["imported"], figures["questions_without_entry"]) == (
        2, 2, 0)


@pytest.mark.parametrize("dataset", list(NEW))
def test_a_log_absent_offline_is_a_one_line_error_naming_it(dataset, tmp_path):
    (tmp_path / "mirror").mkdir()
    with pytest.raises(CotdistillError) as error:
        replay_logs(asked(dataset), FileSource(tmp_path / "mirror", tmp_path / "cache",
                                               download=False))
    message = str(error.value)
    assert message.startswith(f"{log_file(dataset).relative}: not found; looked in mirror ")
    assert "\n" not in message


@pytest.mark.parametrize("dataset", list(NEW))
def test_the_four_new_logs_are_held_to_their_published_checksum(dataset, tmp_path):
    file = log_file(dataset)
    (tmp_path / file.relative).parent.mkdir(parents=True)
    (tmp_path / file.relative).write_text(published_log(dataset), encoding="utf-8")
    with pytest.raises(CotdistillError, match="checksum mismatch"):
        replay_logs(asked(dataset), FileSource(tmp_path, tmp_path / "c", download=False))


@pytest.mark.parametrize(("splits", "covers"), [
    (("test", "test"), "test"), (("train", "train"), "train"), (("val", "train"), "train"),
    (("train", "test"), "both"), (("val", "test"), "both")])
def test_the_report_says_which_splits_the_log_covers_from_what_it_matched(
        splits, covers, tmp_path, monkeypatch):
    in_mirror(tmp_path, "strategy_qa", monkeypatch)
    prepared = [example.model_copy(update={"split": split})
                for example, split in zip(asked("strategy_qa"), splits)]
    train = [example for example in prepared if example.split == "train"]
    extra = never_logged("strategy_qa", "A training question the log never asked?", 9)
    records, report = replay_logs([*train, extra], FileSource(tmp_path, tmp_path / "c"),
                                  prepared=[*prepared, extra])
    figures = report.as_dict()["datasets"]["strategy_qa"]
    assert figures["covers"] == covers
    assert figures["entries_by_split"] == dict(Counter(splits))
    assert len(records) == figures["imported"] == len(train)


def test_commonsense_qas_log_covers_only_the_test_split_and_the_report_says_why(
        tmp_path, monkeypatch):
    """Kojima et al. ran CommonsenseQA's dev set, which Fine-tune-CoT tests on: the training
    questions asked get no rationale."""
    in_mirror(tmp_path, "commonsense_qa", monkeypatch)
    train = [never_logged("commonsense_qa", "Where do you keep a pen? Answer Choices: (A) desk "
                          "(B) sea (C) sky (D) moon (E) sun", 7)]
    records, report = replay_logs(train, FileSource(tmp_path, tmp_path / "c"),
                                  prepared=[*train, *asked("commonsense_qa", "test")])
    figures = report.as_dict()["datasets"]["commonsense_qa"]
    assert not records and figures["questions_without_entry"] == 1
    assert figures["covers"] == "test" and figures["entries_by_split"] == {"test": 2}
    assert "test questions only" in figures["note"] and "dev set" in figures["note"]


def test_a_log_matching_no_prepared_question_covers_none_and_without_splits_no_claim(
        tmp_path, monkeypatch):
    in_mirror(tmp_path, "svamp", monkeypatch)
    stranger = [never_logged("svamp", "A question nobody logged?", 0)]
    files = FileSource(tmp_path, tmp_path / "c")
    _, report = replay_logs(stranger, files, prepared=stranger)
    assert report.as_dict()["datasets"]["svamp"]["covers"] == "none"
    _, report = replay_logs(asked("svamp"), files)  # the asked questions alone show no test
    assert "covers" not in report.as_dict()["datasets"]["svamp"]


def test_the_published_multiarith_log_covers_every_prepared_split(tmp_path):
    """Kojima et al. ran all of MultiArith, which Fine-tune-CoT splits into train and test."""
    from cotdistill.datasets.build import prepare
    from cotdistill.params import PrepareParams

    source = FileSource(MIRROR, tmp_path / "cache", download=False)
    splits = prepare(PrepareParams(datasets=["multiarith"]), source)
    _, report = replay_logs(splits["train"][:3], source,
                            prepared=[e for split in splits.values() for e in split])
    figures = report.as_dict()["datasets"]["multiarith"]
    assert figures["covers"] == "both" and "note" not in figures
    for split, examples in splits.items():  # every prepared question has its entry
        assert figures["entries_by_split"][split] >= len(examples), split


def test_the_teacher_stage_reports_what_each_log_covers(tmp_path, monkeypatch):
    """``reports/teacher.json`` says, per dataset, which prepared splits the log answered."""
    import json

    import yaml

    from cotdistill.params import load_params
    from cotdistill.stages import teacher

    for dataset in ("strategy_qa", "commonsense_qa"):
        in_mirror(tmp_path / "mirror", dataset, monkeypatch)
    strategy, commonsense = asked("strategy_qa"), asked("commonsense_qa", "test")
    unlogged = never_logged("commonsense_qa", "Where is a pen kept? Answer Choices: (A) desk "
                            "(B) sea (C) sky (D) moon (E) sun", 9)
    splits = {"train": [strategy[0], unlogged], "val": [],
              "test": [strategy[1].model_copy(update={"split": "test"}), *commonsense]}
    for split, examples in splits.items():
        path = tmp_path / f"data/prepared/{split}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(e.model_dump_json() + "\n" for e in examples))
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({
        "prepare": {"mirror": str(tmp_path / "mirror")},
        "teacher": {"backend": "replay", "samples": 1, "temperature": 0.0}}))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COTDISTILL_HOME", str(tmp_path / "home"))
    records = teacher.run(load_params("params.yaml"))
    assert [r.id for r in records] == [strategy[0].id]
    report = json.loads((tmp_path / "reports/teacher.json").read_text())["datasets"]
    assert report["strategy_qa"]["covers"] == "both" and "note" not in report["strategy_qa"]
    assert report["strategy_qa"]["entries_by_split"] == {"train": 1, "test": 1}
    assert report["commonsense_qa"]["covers"] == "test"
    assert "test questions only" in report["commonsense_qa"]["note"]
