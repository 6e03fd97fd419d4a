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


def test_temporaries_of_a_killed_process_are_swept_by_the_next_writer(tmp_path, caplog):
    """SIGKILL leaves a staging directory behind (0.5 GB for a student): the next process that
    writes beside the same target removes it, and says so. A live process's temporaries and
    another host's (a shared volume) are left alone."""
    import logging
    import subprocess
    import sys

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    host = atomic.process_host()
    target = tmp_path / "models" / "fine_tune_cot"
    target.parent.mkdir(parents=True)
    dead = target.parent / f".fine_tune_cot.{host}-{gone}.abc123.tmp"
    (dead / "sub").mkdir(parents=True)
    (dead / "sub" / "model.safetensors").write_bytes(b"x" * 10)
    mine = target.parent / f".fine_tune_cot.{host}-{os.getpid()}.def456.tmp"
    mine.mkdir()
    elsewhere = target.parent / f".fine_tune_cot.otherhost-{gone}.ghi789.tmp"
    elsewhere.mkdir()
    with caplog.at_level(logging.WARNING, logger="cotdistill.atomic"):
        with atomic.publish() as out:
            (out.dir(target) / "weights").write_text("new")
    assert not dead.exists() and mine.exists() and elsewhere.exists()
    assert (target / "weights").read_text() == "new"
    assert f"left by process {gone}, which no longer runs" in caplog.text
