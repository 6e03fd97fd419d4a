"""benchmarks/option_shortcut.py: the question-blind guess that explains Date Understanding's
answer-only row picks the option sharing most date fields with the others, and splits ties."""

from __future__ import annotations

import json
import sys

from support.repo import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import option_shortcut  # noqa: E402


def test_the_option_that_shares_most_fields_with_the_others_is_picked():
    choices = ["04/15/2021", "05/22/2021", "04/30/2021", "06/20/2021", "05/30/1980", "05/30/2021"]
    assert option_shortcut.shortcut(choices) == [5]


def test_ties_are_all_returned():
    assert option_shortcut.shortcut(["01/02/2000", "03/04/2001"]) == [0, 1]


def test_it_measures_splits_and_rows_and_writes_its_commit(tmp_path):
    prepared, predictions = tmp_path / "prepared", tmp_path / "predictions" / "tiny"
    prepared.mkdir()
    predictions.mkdir(parents=True)
    rows = [{"id": "q1", "choices": ["05/30/2021", "05/30/1980", "04/30/2021"], "answer": "A"},
            {"id": "q2", "choices": ["01/01/2000", "02/02/2001"], "answer": "B"}]
    for split in ("train", "test"):
        (prepared / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (predictions / "answer_only.jsonl").write_text(
        json.dumps({"id": "q1", "prediction": "A", "correct": True}) + "\n"
        + json.dumps({"id": "q2", "prediction": "A", "correct": False}) + "\n")
    out = tmp_path / "out.json"
    assert option_shortcut.main(["--prepared", str(prepared), "--predictions",
                                 str(predictions.parent), "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["splits"]["test"]["expected_accuracy"] == 0.75  # 1 + a half of a tie, of 2
    assert result["rows"] == [{"student": "tiny", "method": "answer_only",
                               "agrees_with_shortcut": 1, "shortcut_single_pick": 1,
                               "correct_where_shortcut_right": [1, 1],
                               "correct_where_shortcut_wrong_or_tied": [0, 1]}]
    assert result["commit"]
