"""Specification of :func:`cotdistill.atomic.publish`: a stage's outputs move in all or none."""

from __future__ import annotations

import os

import pytest

from cotdistill import atomic
from cotdistill.atomic import publish


def previous_outputs(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data/a.jsonl").write_text("old a\n")
    (tmp_path / "data/curated").mkdir()
    (tmp_path / "data/curated/m.jsonl").write_text("old m\n")
    (tmp_path / "report.json").write_text("old report\n")
    return {p: p.read_text() for p in tmp_path.rglob("*") if p.is_file()}


def test_outputs_move_in_together_when_the_block_succeeds(tmp_path):
    previous_outputs(tmp_path)
    with publish() as out:
        out.file(tmp_path / "data/a.jsonl").write_text("new a\n")
        (out.dir(tmp_path / "data/curated") / "n.jsonl").write_text("new n\n")
        out.file(tmp_path / "report.json").write_text("new report\n")
        assert (tmp_path / "data/a.jsonl").read_text() == "old a\n"  # not before the end
    assert (tmp_path / "data/a.jsonl").read_text() == "new a\n"
    assert sorted(p.name for p in (tmp_path / "data/curated").iterdir()) == ["n.jsonl"]
    assert (tmp_path / "report.json").read_text() == "new report\n"
    assert sorted(p.name for p in tmp_path.rglob("*")) == sorted(
        ["data", "a.jsonl", "curated", "n.jsonl", "report.json"])  # no temporaries left


def test_a_failure_late_in_the_block_leaves_every_previous_output(tmp_path):
    before = previous_outputs(tmp_path)
    with pytest.raises(RuntimeError, match="MLflow is down"), publish() as out:
        out.file(tmp_path / "data/a.jsonl").write_text("new a\n")
        out.file(tmp_path / "report.json").write_text("new report\n")
        raise RuntimeError("MLflow is down")  # the stage's last step
    assert {p: p.read_text() for p in tmp_path.rglob("*") if p.is_file()} == before


def test_a_failure_while_moving_them_in_puts_the_ones_already_moved_back(tmp_path, monkeypatch):
    before = previous_outputs(tmp_path)
    real_replace = os.replace

    def replace(source, target):  # the third output cannot be moved into place
        if str(target).endswith("report.json") and ".tmp" in str(source):
            raise OSError(28, "No space left on device")
        real_replace(source, target)

    monkeypatch.setattr(atomic.os, "replace", replace)
    with pytest.raises(OSError, match="No space"), publish() as out:
        out.file(tmp_path / "data/a.jsonl").write_text("new a\n")
        (out.dir(tmp_path / "data/curated") / "n.jsonl").write_text("new n\n")
        out.file(tmp_path / "report.json").write_text("new report\n")
    assert {p: p.read_text() for p in tmp_path.rglob("*") if p.is_file()} == before
