"""Training with two processes on this CPU (gloo), as `torchrun --nproc_per_node=2` runs it on
a machine with two GPUs: plain DDP and DeepSpeed ZeRO-2 (the CPU accelerator). With the
examples in file order (`train.hparams.shuffle: false`), two processes of batch 2 see the same
global batches as one process of batch 4, so their losses must match it step by step; only rank
0 writes outputs and MLflow runs; every rank keeps the same checkpoint; ZeRO-3, whose ranks hold
only a partition of the weights, is refused for model selection in one line."""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from support.cli import one_error_line
from support.repo import REPO
from support.teacher_runs import coin_questions

from cotdistill.methods.registry import METHODS
from cotdistill.records import CuratedExample

pytestmark = pytest.mark.slow  # five launches of tiny trainings: about two minutes

METHOD = "fine_tune_cot"
STEPS = 8
# The same global batches, summed in another order across two processes: float32 sums differ
# in their last bits (2e-7 relative, measured on an AMD EPYC); a gradient that is not averaged
# across the processes, or another global batch, moves the loss by percents.
TOLERANCE = 1e-5  # relative, per step


def _write(path: Path, records) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(r.model_dump_json() + "\n" for r in records))


@pytest.fixture(scope="module")
def project(tmp_path_factory, tiny_model) -> Path:
    """Sixteen training examples of three lengths (so that batches need padding and token
    counts differ between processes), four validation questions."""
    root = tmp_path_factory.mktemp("multiprocess")
    questions = coin_questions(20)
    _write(root / f"data/curated/{METHOD}.jsonl", [
        CuratedExample(id=q.id, dataset="coin_flip", method=METHOD, source=f"{q.id}#0",
                       input=METHODS[METHOD].student_input(q.question),
                       target=" It is tails." * (1 + i % 3) + " --> no")
        for i, q in enumerate(questions[:16])])
    _write(root / "data/prepared/val.jsonl",
           [q.model_copy(update={"split": "val"}) for q in questions[16:]])
    (root / "configs").symlink_to(REPO / "configs")
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    return root


def _train(project: Path, tiny_model: Path, name: str, *, processes: int, batch: int,
           deepspeed: str = "off", config: str | None = None) -> subprocess.CompletedProcess:
    """`cotdistill train` in a copy of ``project`` named ``name``, one process or several."""
    work = project / name
    work.mkdir()
    for part in ("data", "configs"):
        (work / part).symlink_to(project / part)
    subprocess.run(["git", "init", "-q", str(work)], check=True)
    (work / "params.yaml").write_text(yaml.safe_dump({
        "prepare": {"datasets": ["coin_flip"]},
        "students": {"tiny": {"model": str(tiny_model)}},
        "train": {"students": ["tiny"], "methods": [METHOD], "hparams": {
            "max_steps": STEPS, "learning_rate": 1e-3, "lr_scheduler": "constant",
            "batch_size": batch, "shuffle": False, "deepspeed": deepspeed,
            "deepspeed_config": config, "launcher": "none", "select_every": 4,
            "select_max_new_tokens": 12, "precision": "fp32"}},
        "mlflow": {"tracking_uri": f"sqlite:///{work / 'mlflow.db'}"},
    }))
    command = ["-m", "cotdistill.cli", "train", "--student", "tiny", "--method", METHOD]
    if processes > 1:
        command = ["-m", "torch.distributed.run", f"--nproc_per_node={processes}",
                   f"--master_port={_free_port()}", *command]
    env = {key: value for key, value in os.environ.items()
           if key not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    return subprocess.run([sys.executable, *command], cwd=work, env=env, capture_output=True,
                          text=True, timeout=600, check=False)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _losses(project: Path, name: str) -> list[float]:
    with (project / name / f"reports/train/tiny/{METHOD}/loss.csv").open() as handle:
        return [float(row["loss"]) for row in csv.DictReader(handle)]


def _kept(result: subprocess.CompletedProcess) -> dict[str, str]:
    """What each rank said it kept: rank -> step."""
    return dict(re.findall(r"model selection, rank (\d+) of \d+: kept step (\d+)", result.stderr))


def _runs(project: Path, name: str) -> list:
    import mlflow

    client = mlflow.MlflowClient(f"sqlite:///{project / name / 'mlflow.db'}")
    experiments = client.search_experiments()
    return client.search_runs([e.experiment_id for e in experiments])


@pytest.mark.parametrize(("deepspeed", "config"), [
    ("off", None),                                  # DDP, gloo
    ("on", "configs/deepspeed/zero2.json"),         # DeepSpeed ZeRO-2, CPU accelerator
])
def test_two_processes_match_one_process_at_the_same_global_batch(project, tiny_model,
                                                                  deepspeed, config):
    label = f"ds-{deepspeed}"
    one = _train(project, tiny_model, f"one-{label}", processes=1, batch=4, deepspeed=deepspeed,
                 config=config if deepspeed == "off" else "configs/deepspeed/cpu.json")
    two = _train(project, tiny_model, f"two-{label}", processes=2, batch=2, deepspeed=deepspeed,
                 config=config)
    assert one.returncode == 0, one.stderr[-3000:]
    assert two.returncode == 0, two.stderr[-3000:]
    single, double = _losses(project, f"one-{label}"), _losses(project, f"two-{label}")
    assert len(single) == len(double) == STEPS
    for step, (a, b) in enumerate(zip(single, double), start=1):
        assert abs(a - b) <= TOLERANCE * abs(a), f"step {step}: {a} vs {b}"
    assert single[-1] < single[0]  # it learnt
    # every rank kept the same checkpoint, the one rank 0 recorded
    kept = _kept(two)
    assert set(kept) == {"0", "1"} and len(set(kept.values())) == 1, two.stderr[-2000:]
    info = yaml.safe_load((project / f"two-{label}/models/tiny/{METHOD}/train_info.json")
                          .read_text())
    assert str(info["best_step"]) == kept["0"]
    # only rank 0 wrote: one MLflow run, one model, no leftovers of another rank
    assert len(_runs(project, f"two-{label}")) == 1
    written = sorted(str(p.relative_to(project / f"two-{label}"))
                     for p in (project / f"two-{label}").rglob("*")
                     if p.is_file() and ".git" not in p.parts and "mlartifacts" not in p.parts
                     and p.name != "mlflow.db")
    assert [p for p in written if p.startswith("models/")] == sorted(
        f"models/tiny/{METHOD}/{name}" for name in
        os.listdir(project / f"one-{label}/models/tiny/{METHOD}"))
    assert not [p for p in written if ".tmp" in p]


def test_zero3_with_model_selection_is_refused_in_one_line(project, tiny_model):
    refused = _train(project, tiny_model, "zero3", processes=1, batch=4, deepspeed="on",
                     config="configs/deepspeed/zero3.json")
    assert refused.returncode == 1
    assert one_error_line(refused).startswith(
        "error: train.hparams.select_every: model selection copies each rank's full weights, "
        "which ZeRO-3 (configs/deepspeed/zero3.json) partitions across ranks")
    assert not (project / "zero3/models").exists()
