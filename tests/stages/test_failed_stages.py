"""A failed stage leaves the previous state: nothing moves into place unless the whole stage,
MLflow logging included, succeeded.

Each stage runs once for real in a small workspace; then it runs again with a changed param
and a failure injected at its very end (just before its outputs would be moved into place, or
in its MLflow logging), and every previous output must still be there, byte for byte and the
very same file.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from support.teacher_runs import ENV, coin_questions

from cotdistill import atomic, tracking
from cotdistill.params import load_params
from cotdistill.records import PreparedExample

OUTPUTS = ("data", "reports", "models")

def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    """Every output file's bytes and inode (an identical rewrite is still a rewrite)."""
    return {str(path.relative_to(root)): (path.read_bytes(), path.stat().st_ino)
            for top in OUTPUTS for path in sorted((root / top).rglob("*")) if path.is_file()}


def write_split(root: Path, split: str, examples: list[PreparedExample]) -> None:
    path = root / f"data/prepared/{split}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(e.model_copy(update={"split": split}).model_dump_json() + "\n"
                            for e in examples))


@pytest.fixture()
def workspace(tmp_path, tiny_model, monkeypatch) -> Path:
    questions = coin_questions(6)
    write_split(tmp_path, "train", questions[:4])
    write_split(tmp_path, "val", questions[4:5])
    write_split(tmp_path, "test", questions[5:])
    params = {
        "teacher": {"backend": "transformers", "model": str(tiny_model), "samples": 1,
                    "max_questions": 4, "max_rationale_tokens": 8, "max_answer_tokens": 4},
        "students": {"tiny": {"model": str(tiny_model)}},
        "train": {"students": ["tiny"], "methods": ["answer_only"],
                  "hparams": {"max_steps": 1, "batch_size": 2, "select_every": 1,
                              "select_max_new_tokens": 4}},  # selection: a champion to weigh
        "evaluate": {"max_examples": 1, "max_new_tokens": 4, "baselines": ["zero_shot"]},
        "mlflow": {"tracking_uri": f"sqlite:///{tmp_path / 'mlflow.db'}"},
    }
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def change(root: Path, section: str, **values) -> None:
    params = yaml.safe_load((root / "params.yaml").read_text())
    params.setdefault(section, {}).update(values)
    (root / "params.yaml").write_text(yaml.safe_dump(params))


def run_stage(name: str) -> None:
    from cotdistill.stages import baseline, curate, teacher, train

    params = load_params("params.yaml")
    if name == "teacher":
        teacher.run(params)
    elif name == "curate":
        curate.run(params)
    elif name == "train":
        train.run(params, "tiny", "answer_only")
    else:
        baseline.run(params, "tiny", "zero_shot")


STAGES = {  # stage -> what must exist before it, and a change that alters its outputs
    "teacher": ((), ("teacher", {"samples": 2})),
    "curate": (("teacher",), ("curate", {"max_per_question": 2})),
    "baseline": ((), ("evaluate", {"max_examples": 2})),
    "train": (("teacher", "curate"), ("train", {"hparams": {
        "max_steps": 2, "batch_size": 2, "select_every": 1, "select_max_new_tokens": 4}})),
}


def ran_then_changed(stage: str, workspace: Path) -> dict[str, tuple[bytes, int]]:
    """Run ``stage`` (and what it needs) for real, then change one of its params; return the
    snapshot of the outputs it made."""
    before_stages, (section, values) = STAGES[stage]
    for name in (*before_stages, stage):
        run_stage(name)
    before = snapshot(workspace)
    change(workspace, section, **values)
    return before


@pytest.mark.parametrize("stage", list(STAGES))
def test_a_failure_at_the_end_of_a_stage_leaves_its_previous_outputs(stage, workspace,
                                                                       monkeypatch):
    before = ran_then_changed(stage, workspace)

    def fail(self) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic.Staging, "commit", fail)
    asked: list[tuple] = []  # the champion is only ever weighed for a published model
    monkeypatch.setattr(tracking, "register_if_best", lambda *args, **kw: asked.append(args))
    with pytest.raises(OSError, match="No space"):
        run_stage(stage)
    assert snapshot(workspace) == before
    assert not [p for p in workspace.rglob("*.tmp")], "temporaries were left behind"
    assert asked == [], "a run whose outputs never landed was offered the champion alias"


@pytest.mark.parametrize("stage", ["curate", "baseline", "train"])
def test_a_failure_in_mlflow_logging_leaves_the_previous_outputs(stage, workspace,
                                                                   monkeypatch):
    import mlflow

    before = ran_then_changed(stage, workspace)

    def fail(*args, **kwargs) -> None:
        raise mlflow.exceptions.MlflowException("the tracking server went away")

    monkeypatch.setattr(mlflow, "log_metrics", fail)
    monkeypatch.setattr(mlflow, "log_metric", fail)
    with pytest.raises(mlflow.exceptions.MlflowException):
        run_stage(stage)
    assert snapshot(workspace) == before


def test_curate_with_an_unusable_mlflow_store_is_one_line_and_changes_nothing(workspace):
    run_stage("teacher")
    run_stage("curate")
    before = snapshot(workspace)
    store = workspace / "broken.db"
    store.write_bytes(b"GARBAGE" * 1000)
    params = yaml.safe_load((workspace / "params.yaml").read_text())
    params["mlflow"]["tracking_uri"] = f"sqlite:///{store}"
    (workspace / "params.yaml").write_text(yaml.safe_dump(params))
    failed = subprocess.run([sys.executable, "-m", "cotdistill", "curate"], cwd=workspace,
                            env=ENV, capture_output=True, text=True, timeout=300, check=False)
    assert failed.returncode == 1
    assert "Traceback" not in failed.stderr
    assert failed.stderr.strip().splitlines() == [
        f"error: mlflow: the tracking store sqlite:///{store} cannot be used "
        "((sqlite3.DatabaseError) file is not a database); fix mlflow.tracking_uri, or move "
        "the store aside to start a new one"]
    assert snapshot(workspace) == before
