"""The shape of the code: no import circles, DVC stages that declare every file they run, a
committed dvc.lock that matches the code, and registries that agree with the params."""

from __future__ import annotations

import json
import subprocess
import typing
from pathlib import Path

import pytest
import yaml
from support import imports, stage_code
from support.repo import REPO
from support.repository import dvc

PIPELINE_OUTPUTS = ("data/", "models/", "reports/")


def test_the_cycle_finder_finds_a_cycle():
    found = imports.cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()})
    assert found == [["a", "b", "c", "a"]]


def test_no_import_circles_anywhere_in_src():
    """Every import counts, at module level or inside a function."""
    found = imports.cycles(imports.graph())
    assert not found, "import circles:\n" + "\n".join(" -> ".join(c) for c in found)


@pytest.mark.parametrize("stage", sorted(stage_code.stage_commands()))
def test_each_stage_declares_every_source_file_it_runs(stage):
    """A change to any module a stage runs re-runs the stage (deps from the import closure)."""
    runs = stage_code.code_run_by(stage_code.stage_commands()[stage])
    declared = stage_code.declared_deps(stage)
    missing = stage_code.uncovered(runs, declared)
    assert not missing, (
        f"dvc.yaml: stage {stage} runs {', '.join(missing)} but does not declare it; its "
        f"source deps should be: {stage_code.covering_deps(runs)}")
    for dep in declared:
        assert (REPO / dep).exists() or not dep.startswith(("src/", "configs/")), \
            f"dvc.yaml: stage {stage} declares {dep}, which does not exist"


def test_the_committed_lock_records_the_code_in_this_checkout():
    """`dvc status` in the checkout: no stage may have a changed source file, config or param.
    (Deps under data/, models/ and reports/ are other stages' outputs: a fresh clone has none,
    so they are not what this test is about.)"""
    result = dvc(REPO, "status", "--json")
    assert result.returncode == 0, result.stderr
    stale = []
    for stage, changes in json.loads(result.stdout or "{}").items():
        for change in changes:
            if not isinstance(change, dict):
                continue
            for path, what in change.get("changed deps", {}).items():
                if not path.startswith(PIPELINE_OUTPUTS):
                    stale.append(f"{stage}: {path} {what}")
    assert not stale, ("dvc.lock is stale: commit the dvc.lock and reports/ of a real "
                       "`dvc repro` of this code:\n" + "\n".join(stale))


def test_the_committed_lock_and_reports_hold_only_stages_of_the_pipeline():
    """DVC keeps the lock entry of a stage that left the pipeline (a method dropped from
    `train.methods`), and git keeps its reports: both would be read as results of this code."""
    listed = dvc(REPO, "stage", "list", "--names-only")
    assert listed.returncode == 0, listed.stderr
    stages = set(listed.stdout.split())
    lock = yaml.safe_load((REPO / "dvc.lock").read_text(encoding="utf-8"))["stages"]
    assert sorted(set(lock) - stages) == [], "dvc.lock: entries of stages no longer in dvc.yaml"
    recorded = {out["path"] for entry in lock.values() for out in entry.get("outs", [])}
    tracked = subprocess.run(["git", "ls-files", "reports"], cwd=REPO, capture_output=True,
                             text=True, check=True).stdout.split()
    results = [path for path in tracked if Path(path).name not in (".gitignore", "README.md")]
    orphans = [path for path in results
               if not any(path == out or path.startswith(out + "/") for out in recorded)]
    assert orphans == [], "committed under reports/ but written by no stage in dvc.lock"


def test_every_teacher_backend_name_has_a_backend_and_back():
    from cotdistill.params import TeacherParams
    from cotdistill.teachers.registry import BACKENDS

    names = set(typing.get_args(TeacherParams.model_fields["backend"].annotation))
    assert names == set(BACKENDS)
    for name, backend in BACKENDS.items():
        assert backend.name == name


def test_every_method_is_registered_under_its_own_name():
    from cotdistill.methods.registry import METHODS

    assert all(method.name == name for name, method in METHODS.items())
