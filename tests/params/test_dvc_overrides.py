"""`dvc exp run -S key=value` rewrites params.yaml with DVC's own YAML writer. The committed file
is kept in that writer's style, so an experiment's params diff is the lines it changed, and
nothing else (no flow lists turned to block lists, no `null` turned to empty)."""

from __future__ import annotations

import difflib
import shutil

import pytest
from dvc.utils.hydra import apply_overrides

from support.repo import REPO


def _changed_lines(tmp_path, override: str) -> list[str]:
    copy = tmp_path / "params.yaml"
    shutil.copy(REPO / "params.yaml", copy)
    apply_overrides(str(copy), [override])
    before = (REPO / "params.yaml").read_text().splitlines()
    return [line for line in difflib.unified_diff(before, copy.read_text().splitlines(),
                                                  lineterm="", n=0)
            if line[:1] in "+-" and not line.startswith(("+++", "---"))]


@pytest.mark.parametrize("override, expected", [
    ("evaluate.max_new_tokens=80", "+  max_new_tokens: 80"),
    ("train.hparams.epochs=3", "+    epochs: 3"),
    ("teacher.max_usd=5", "+  max_usd: 5"),
])
def test_a_one_value_override_is_a_one_line_diff(tmp_path, override, expected):
    changed = _changed_lines(tmp_path, override)
    assert len(changed) == 2 and changed[0].startswith("-"), changed
    assert changed[1].startswith(expected), changed


def test_writing_the_same_values_back_changes_nothing(tmp_path):
    assert _changed_lines(tmp_path, "prepare.seed=0") == []
