"""`dvc repro` on MultiArith with real text-davinci-002 completions: no model is ever called.

Kojima et al.'s published zero-shot-CoT log (read from the mirror, ../shared/data/mirror) is
replayed as the teacher; a tiny student trains on the rationales that reached the right answer
and is evaluated.
"""

from __future__ import annotations

import json

import pytest
import yaml
from support.repo import REPO
from support.repository import copy_repository as _copy_repository
from support.repository import dvc as _dvc

SHARED = REPO.parent / "shared/data"


@pytest.fixture(scope="module")
def replayed(tmp_path_factory, tiny_model):
    repo = tmp_path_factory.mktemp("replay-repo")
    _copy_repository(repo)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["prepare"].update(datasets=["multiarith"], mirror=str(SHARED / "mirror"))
    params["teacher"].update(backend="replay", replay_source="kojima_logs", replay_path=None,
                             samples=1, temperature=0.0, max_questions=40)
    params["students"] = {"tiny": {"model": str(tiny_model)}}
    params["train"].update(students=["tiny"], methods=["fine_tune_cot"])
    params["train"]["hparams"].update(max_steps=10, learning_rate=3e-3, batch_size=4)
    params["evaluate"].update(max_examples=6, max_new_tokens=24)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    # the Fine-tune-CoT student and what it needs; the few-shot and Socratic stages need a
    # model teacher (the few-shot pass records that it was skipped)
    result = _dvc(repo, "repro", "evaluate@tiny-fine_tune_cot")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return repo, result


def test_the_teacher_stage_imports_completions_and_calls_no_model(replayed):
    repo, result = replayed
    assert ("replay: multiarith: 40 of 40 questions answered by "
            "log/multiarith_zero_shot_cot.log") in result.stderr + result.stdout
    assert not (repo / ".cotdistill/teacher-cache.sqlite").exists()
    records = [json.loads(line) for line in (repo / "data/teacher/completions.jsonl").open()]
    assert len(records) == 40
    assert {r["backend"] for r in records} == {"replay"}
    assert {r["model"] for r in records} == {"text-davinci-002"}
    assert {r["lineage"]["file"] for r in records} == {"log/multiarith_zero_shot_cot.log"}
    assert len({r["lineage"]["position"] for r in records}) == 40
    report = json.loads((repo / "reports/teacher.json").read_text())
    assert report["datasets"]["multiarith"]["imported"] == 40
    assert report["datasets"]["multiarith"]["questions_without_entry"] == 0


def test_the_student_trains_on_the_correct_rationales_and_is_evaluated(replayed):
    repo, _ = replayed
    curate = json.loads((repo / "reports/curate.json").read_text())
    kept = curate["datasets"]["multiarith"]["kept_rationales"]
    assert 25 <= kept <= 40  # text-davinci-002 is right about 79% of the time here
    train = json.loads((repo / "reports/train/tiny/fine_tune_cot/metrics.json").read_text())
    assert train["train_examples"] == kept and train["final_loss"] < train["first_loss"]
    metrics = json.loads((repo / "reports/eval/tiny/fine_tune_cot/metrics.json").read_text())
    assert metrics["n"] == 6 and set(metrics["datasets"]) == {"multiarith"}
