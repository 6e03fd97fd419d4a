"""The held-out tasks (evaluate.transfer_datasets): ``prepare`` writes their first test
questions beside the splits, leaves out any dataset that is trained on, and says how many."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from cotdistill.params import load_params


def _prepare(root: Path, monkeypatch, datasets: list[str], held_out: list[str]) -> dict:
    from cotdistill.stages import prepare

    monkeypatch.chdir(root)
    (root / "params.yaml").write_text(yaml.safe_dump({
        "prepare": {"datasets": datasets, "num_examples": 40, "seed": 3},
        "evaluate": {"transfer_datasets": held_out, "transfer_max_examples": 5},
    }))
    prepare.run(load_params("params.yaml"))
    return json.loads((root / "reports/prepare.json").read_text())


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_the_held_out_tasks_first_test_questions_are_written_beside_the_splits(
        tmp_path, monkeypatch):
    report = _prepare(tmp_path, monkeypatch, ["coin_flip_generated"],
                      ["last_letter_concatenation_generated"])
    held_out = _rows(tmp_path / "data/prepared/transfer.jsonl")
    assert len(held_out) == 5 and report["transfer"] == {"last_letter_concatenation_generated": 5}
    assert {row["dataset"] for row in held_out} == {"last_letter_concatenation_generated"}
    assert {row["split"] for row in held_out} == {"test"}
    # the same questions, in the same order, as preparing that dataset for training would test
    alone = tmp_path / "alone"
    alone.mkdir()
    _prepare(alone, monkeypatch, ["last_letter_concatenation_generated"], [])
    tests = _rows(alone / "data/prepared/test.jsonl")
    assert held_out == tests[:5]
    # and nothing of them reaches the training splits
    trained = {row["dataset"] for split in ("train", "val", "test")
               for row in _rows(tmp_path / f"data/prepared/{split}.jsonl")}
    assert trained == {"coin_flip_generated"}


def test_a_dataset_that_is_trained_on_is_not_held_out(tmp_path, monkeypatch):
    report = _prepare(tmp_path, monkeypatch, ["coin_flip_generated"],
                      ["coin_flip_generated"])
    assert report["transfer"] == {}
    assert (tmp_path / "data/prepared/transfer.jsonl").read_text() == ""


def test_a_held_out_task_that_cannot_be_read_names_the_key_and_writes_nothing(
        tmp_path, monkeypatch):
    """Offline, with no mirror: the held-out task's files cannot be had. The error says that a
    held-out task was being read, and how to score none; nothing is written."""
    import pytest

    from cotdistill.errors import CotdistillError

    monkeypatch.delenv("COTDISTILL_DATA_MIRROR", raising=False)
    monkeypatch.setenv("COTDISTILL_HOME", str(tmp_path / "home"))  # nothing cached either
    monkeypatch.setattr("urllib.request.urlopen", _offline)
    with pytest.raises(CotdistillError) as raised:
        _prepare(tmp_path, monkeypatch, ["coin_flip_generated"], ["svamp"])
    assert str(raised.value).startswith(
        "params.yaml: evaluate.transfer_datasets (svamp, the held-out tasks): ")
    assert "set evaluate.transfer_datasets: [] to score none" in str(raised.value)
    assert not (tmp_path / "data").exists() and not (tmp_path / "reports").exists()


def _offline(*args, **kwargs):
    raise OSError("offline")
