"""The shape of the code: imports that point down the layers the package's docstring writes
down, no import circles, DVC stages that declare every file they run, a committed dvc.lock
that matches the code, and registries that agree with the params."""

from __future__ import annotations

import json
import subprocess
import typing
from pathlib import Path

import pytest
import yaml
import cotdistill
from support import imports, layers, stage_code
from support.repo import REPO
from support.repository import dvc

PIPELINE_OUTPUTS = ("data/", "models/", "reports/")


def _package_modules() -> dict[str, Path]:
    return {name: path for name, path in imports.modules().items()
            if name.split(".")[0] == layers.PACKAGE}


def test_the_layers_are_written_down_in_order_and_place_every_module():
    order = layers.parse(cotdistill.__doc__)
    assert sorted(set(order.values())) == list(range(1, max(order.values()) + 1))
    assert order["cli"] == 1 and order["stages"] == 2 and order[layers.PACKAGE] == max(
        order.values())
    assert layers.unplaced(list(_package_modules()), order) == [], \
        "src/cotdistill/__init__.py: add these to a layer of the docstring's list"


def test_every_import_points_down_the_layers():
    """Inside functions too: an import that runs later still makes the stage depend on it."""
    known = imports.modules()
    modules = _package_modules()
    sites = {name: [(line, target) for line, target in imports.import_sites(name, known)
                    if target.split(".")[0] == layers.PACKAGE] for name in modules}
    files = {name: str(path.relative_to(REPO)) for name, path in modules.items()}
    found = layers.upward(sites, files, layers.parse(cotdistill.__doc__))
    assert not found, "imports against the layers of src/cotdistill/__init__.py:\n" + \
        "\n".join(found)


def test_the_layer_check_names_the_file_and_line_of_an_upward_import():
    order = layers.parse(cotdistill.__doc__)
    sites = {"cotdistill.params.train": [(10, "cotdistill.methods.registry"),
                                         (11, "cotdistill.params.base")],
             "cotdistill.answers": [(21, "cotdistill.prompts")]}
    files = {"cotdistill.params.train": "src/cotdistill/params/train.py",
             "cotdistill.answers": "src/cotdistill/answers.py"}
    assert layers.upward(sites, files, order) == [
        "src/cotdistill/params/train.py:10: cotdistill.params.train (layer 8) imports "
        "cotdistill.methods.registry (layer 5)"]


def test_the_cycle_finder_finds_a_cycle():
    found = imports.cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()})
    assert found == [["a", "b", "c", "a"]]


def test_no_import_circles_anywhere_in_src():
    """Every import counts, at module level or inside a function."""
    found = imports.cycles(imports.graph())
    assert not found, "import circles:\n" + "\n".join(" -> ".join(c) for c in found)


@pytest.mark.parametrize("stage", sorted(stage_code.stage_commands()))
def test_each_stage_declares_every_source_file_it_runs(stage):
    """A change to any module a stage runs re-runs the stage, and a change to any other module
    does not (deps from the import closure)."""
    runs = stage_code.code_run_by(stage_code.stage_commands()[stage])
    declared = stage_code.declared_deps(stage)
    missing = stage_code.uncovered(runs, declared)
    assert not missing, (
        f"dvc.yaml: stage {stage} runs {', '.join(missing)} but does not declare it; its "
        f"source deps should be: {stage_code.covering_deps(runs)}")
    for dep in declared:
        assert (REPO / dep).exists() or not dep.startswith(("src/", "configs/")), \
            f"dvc.yaml: stage {stage} declares {dep}, which does not exist"
    needless = sorted({dep for dep in declared if dep.startswith("src/")}
                      - set(stage_code.covering_deps(runs)))
    assert not needless, (
        f"dvc.yaml: stage {stage} declares {', '.join(needless)}, which it does not run: an "
        "edit there would re-run the stage for nothing")


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


def test_params_names_exactly_the_registered_methods_in_their_order():
    """params validates method names without importing the methods (it is a lower layer)."""
    from cotdistill.methods.registry import METHODS
    from cotdistill.params.train import METHOD_NAMES

    assert METHOD_NAMES == tuple(METHODS)


def test_every_prompting_baseline_that_params_names_has_its_prompts_in_the_stage():
    from cotdistill.params.evaluate import BASELINES
    from cotdistill.stages.baseline import PROMPTING

    assert tuple(PROMPTING) == BASELINES
