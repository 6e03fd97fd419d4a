"""The train stage's own decisions (the training itself is tested in tests/student/): how it is
launched, and that a model it cannot load stops it with one line before any MLflow run."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from support.cli import cotdistill as _cotdistill
from support.cli import one_error_line as _one_error_line
from support.repo import REPO
from support.repository import apply_overrides, readme_experiment

from cotdistill.errors import CotdistillError
from cotdistill.stages.train import launcher_command


def test_the_launcher_is_torchrun_only_with_several_gpus_and_no_launcher_yet(monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert launcher_command("auto", ["train"]) is None
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    command = launcher_command("auto", ["train", "--student", "s"])
    assert command[1:4] == ["-m", "torch.distributed.run", "--nproc_per_node=4"]
    assert command[-3:] == ["train", "--student", "s"]
    assert launcher_command("none", ["train"]) is None
    monkeypatch.setenv("RANK", "0")  # already under a launcher
    assert launcher_command("auto", ["train"]) is None


# --- a student model that cannot be had -------------------------------------------------------


def _project(tmp_path: Path, **sections) -> Path:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    apply_overrides(params, readme_experiment("embedded"))
    for section, values in sections.items():
        params[section] = {**(params.get(section) or {}), **values}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    curated = tmp_path / "data/curated/answer_only.jsonl"
    curated.parent.mkdir(parents=True)
    curated.write_text('{"id":"a","dataset":"coin_flip","method":"answer_only","source":null,'
                       '"input":"q ###","target":" yes"}\n')
    return tmp_path



def test_a_hub_student_that_does_not_exist_is_one_line_and_leaves_no_mlflow_run(tmp_path):
    project = _project(tmp_path, students={"ghost": {"model": "nosuch-org/nosuch-model"}},
                       train={"students": ["ghost"]})
    line = _one_error_line(_cotdistill(project, "train", "--student", "ghost",
                                       "--method", "answer_only"))
    assert line.startswith("error: students.ghost.model: cannot load model "
                           "'nosuch-org/nosuch-model' (not a local model directory")
    assert not (project / "mlflow.db").exists() and not (project / "mlruns").exists()
    assert not (project / "models").exists() and not (project / "reports").exists()


def test_a_kd_teacher_that_does_not_exist_is_found_before_the_mlflow_run(tmp_path, tiny_model):
    project = _project(tmp_path, students={"tiny": {"model": str(tiny_model)}},
                       train={"students": ["tiny"], "hparams": {
                           "kd": {"source": "model", "teacher": "nosuch-org/teacher"}}})
    line = _one_error_line(_cotdistill(project, "train", "--student", "tiny",
                                       "--method", "answer_only"))
    assert line.startswith("error: train.hparams.kd.teacher: cannot load model "
                           "'nosuch-org/teacher'")
    assert not (project / "mlflow.db").exists() and not (project / "models").exists()


def test_with_model_selection_off_no_checkpoint_is_scored_and_no_probe_is_read(tmp_path,
                                                                           monkeypatch):
    """A transfer probe rides on validation scorings. With ``select_every: null`` there are
    none: training gets no selection at all, so nothing is generated for validation or for the
    probe, and neither the validation split nor the held-out file is opened."""
    from cotdistill.params import Params
    from cotdistill.stages.train import _validation_selection

    monkeypatch.chdir(tmp_path)  # no data/prepared here: reading it would fail loudly
    params = Params.model_validate({
        "train": {"hparams": {"select_every": None, "transfer_probe": 5}},
        "evaluate": {"transfer_datasets": ["svamp"]}})
    hparams, tasks = params.train.hparams, params.prepare.tasks()
    assert _validation_selection(hparams, "fine_tune_cot", tasks) is None
    selecting = hparams.model_copy(update={"select_every": 10})
    with pytest.raises(CotdistillError, match="val"):  # on again, it reads the missing split
        _validation_selection(selecting, "fine_tune_cot", tasks)
