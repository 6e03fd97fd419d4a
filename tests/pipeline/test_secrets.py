"""The API key never leaks: not in logs, MLflow, dvc.lock, reports, outputs or error messages.

A full `dvc repro` runs with the teacher on the OpenAI backend against a real local server and a
planted key in the environment; then every file of the repository copy (the MLflow store and the
teacher cache included) and everything the run printed is searched for it. A failing run (the
server answering 500 for good) is searched too, since exceptions are where keys usually leak.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
import yaml
from support.fault_proxy import FaultProxy
from support.repo import REPO  # noqa: F401  (the repository under test)
from support.repository import apply_overrides, readme_experiment
from support.repository import copy_repository as _copy_repository
from support.repository import dvc as _dvc

from cotdistill.serve import running_server

KEY = "sk-planted-" + secrets.token_hex(16)  # made at run time: no file holds it beforehand

pytestmark = pytest.mark.slow


def _repo_with_openai_teacher(tmp_path: Path, tiny_model: Path, base_url: str) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    _copy_repository(repo)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    apply_overrides(params, readme_experiment("embedded"))  # generated data, a model teacher
    params["prepare"].update(num_examples=24)
    params["teacher"].update(backend="openai", base_url=base_url, model=str(tiny_model),
                             api_key_env="COTDISTILL_TEST_KEY", samples=1, temperature=0.0,
                             max_questions=4, max_rationale_tokens=16, max_retries=1,
                             timeout_s=20)
    params["students"] = {"tiny": {"model": str(tiny_model)}}
    params["train"].update(students=["tiny"], methods=["answer_only"])
    params["train"]["hparams"].update(max_steps=2, batch_size=4, select_every=None)
    params["evaluate"].update(max_examples=2, max_new_tokens=8, baselines=["zero_shot"])
    # gold decompositions: the tiny model's 512-token context cannot hold the few-shot
    # decomposition prompt, and the teacher's requests are covered by the stages above
    params["socratic"].update(qg_student="tiny", qa_student="tiny", source="gold",
                              max_questions=2, max_examples=1, max_steps=1)
    params["socratic"]["hparams"].update(max_steps=1, batch_size=2)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return repo


def _files_containing(root: Path, needle: bytes) -> list[str]:
    hits = []
    for path in root.rglob("*"):
        if path.is_file() and ".git" not in path.parts:
            if needle in path.read_bytes():
                hits.append(str(path.relative_to(root)))
    return hits


def test_a_planted_key_appears_nowhere_after_a_run(tmp_path, tiny_model, monkeypatch):
    monkeypatch.setenv("COTDISTILL_TEST_KEY", KEY)
    with running_server(str(tiny_model)) as url:
        repo = _repo_with_openai_teacher(tmp_path, tiny_model, url)
        result = _dvc(repo, "repro")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert KEY not in result.stdout + result.stderr
    assert _files_containing(repo, KEY.encode()) == []
    assert (repo / "mlflow.db").is_file() and (repo / "dvc.lock").is_file()


def test_a_failing_run_does_not_leak_the_key_in_its_error(tmp_path, tiny_model, monkeypatch):
    monkeypatch.setenv("COTDISTILL_TEST_KEY", KEY)
    with running_server(str(tiny_model)) as url, FaultProxy(url) as proxy:
        proxy.schedule(*["500"] * 50)
        repo = _repo_with_openai_teacher(tmp_path, tiny_model, proxy.base_url)
        result = _dvc(repo, "repro", "teacher")
    assert result.returncode != 0
    assert "error" in (result.stdout + result.stderr).lower()
    assert KEY not in result.stdout + result.stderr
    assert _files_containing(repo, KEY.encode()) == []
