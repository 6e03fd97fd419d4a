"""Same params and seed, same results: curated data byte for byte, and on CPU the same losses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from support.repo import REPO
from support.repository import apply_overrides, readme_experiment

from cotdistill.params import HParams
from cotdistill.records import CuratedExample
from cotdistill.student.training import train_student


def _curate_in(directory: Path, tiny_model: Path) -> dict[str, bytes]:
    directory.mkdir()
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    apply_overrides(params, readme_experiment("embedded"))  # generated data, a model teacher
    params["prepare"].update(num_examples=20)
    params["teacher"].update(model=str(tiny_model), samples=3, temperature=1.0,
                             max_questions=5, max_rationale_tokens=12, max_answer_tokens=4)
    (directory / "params.yaml").write_text(yaml.safe_dump(params))
    executable = Path(sys.executable).parent / "cotdistill"
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    for stage in ("prepare", "teacher", "curate"):
        result = subprocess.run([str(executable), stage], cwd=directory, env=env,
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-2000:]
    files = sorted((directory / "data").rglob("*.jsonl"))
    return {str(path.relative_to(directory)): path.read_bytes() for path in files}


@pytest.mark.slow  # two real teacher runs through the CLI: half a minute, in CI's slow pass
def test_the_same_params_and_seed_give_the_same_curated_data_byte_for_byte(tmp_path, tiny_model):
    first = _curate_in(tmp_path / "one", tiny_model)  # each run has its own teacher cache
    second = _curate_in(tmp_path / "two", tiny_model)
    assert "data/curated/fine_tune_cot.jsonl" in first
    assert first == second


def test_the_same_seed_gives_the_same_loss_curve_on_cpu(tiny_model, tmp_path):
    examples = [CuratedExample(id=str(i), dataset="d", method="fine_tune_cot", source=None,
                               input=f"Question {i}? ###", target=f" Because {i}. --> {i}")
                for i in range(12)]
    hparams = HParams(max_steps=8, learning_rate=3e-3, batch_size=4, seed=3)
    runs = [train_student(examples, str(tiny_model), "k", hparams, tmp_path / f"m{i}",
                          use_deepspeed=False).losses for i in range(2)]
    assert runs[0] == runs[1] and len(runs[0]) == 8
