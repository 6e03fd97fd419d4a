"""The API key never leaks: not in logs, MLflow, dvc.lock, reports, outputs or error messages.

A full `dvc repro` runs with the teacher on the OpenAI backend against a real local server and a
planted key in the environment; then every file of the repository copy (the MLflow store and the
teacher cache included) and everything the run printed is searched for it. A failing run (the
server answering 500 for good) is searched too, since exceptions are where keys usually leak.

A credential planted in a URL param instead (``teacher.base_url: http://user:PW@host/v1``, or
``?api_key=PW``) would be recorded in dvc.lock and MLflow with the param: it is refused before
any stage runs, with one error line that names the key and the environment variable to use, and
it appears nowhere but in the params file the user wrote it into.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from support.fault_proxy import FaultProxy
from support.repo import REPO  # the repository under test
from support.repository import apply_overrides, readme_experiment
from support.repository import copy_repository as _copy_repository
from support.repository import dvc as _dvc

from cotdistill.serve import running_server

KEY = "sk-planted-" + secrets.token_hex(16)  # made at run time: no file holds it beforehand
PASSWORD = "pw-planted-" + secrets.token_hex(16)


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
        if path.is_file() and ".git" not in path.parts and needle in path.read_bytes():
            hits.append(str(path.relative_to(root)))
    return hits


@pytest.mark.slow
def test_a_planted_key_appears_nowhere_after_a_run(tmp_path, tiny_model, monkeypatch):
    monkeypatch.setenv("COTDISTILL_TEST_KEY", KEY)
    with running_server(str(tiny_model)) as url:
        repo = _repo_with_openai_teacher(tmp_path, tiny_model, url)
        result = _dvc(repo, "repro")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert KEY not in result.stdout + result.stderr
    assert _files_containing(repo, KEY.encode()) == []
    assert (repo / "mlflow.db").is_file() and (repo / "dvc.lock").is_file()


@pytest.mark.slow
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


# --- a credential in a URL param ---------------------------------------------------------------

PLANTED_URLS = [  # (params key, value with the planted password, the variable the error names)
    ("teacher.base_url", f"http://user:{PASSWORD}@127.0.0.1:9/v1", "OPENAI_API_KEY"),
    ("teacher.base_url", f"http://127.0.0.1:9/v1?api_key={PASSWORD}", "OPENAI_API_KEY"),
    ("socratic.teacher.base_url", f"http://user:{PASSWORD}@127.0.0.1:9/v1", "OPENAI_API_KEY"),
    ("mlflow.tracking_uri", f"https://user:{PASSWORD}@mlflow.example/", "MLFLOW_TRACKING_PASSWORD"),
    ("mlflow.tracking_uri", f"https://mlflow.example/?token={PASSWORD}", "MLFLOW_TRACKING_TOKEN"),
    ("prepare.mirror", f"https://{PASSWORD}@example.com/mirror", "environment"),
]


def _set(params: dict, key: str, value: str) -> None:
    *parents, leaf = key.split(".")
    node = params
    for part in parents:
        node[part] = node.get(part) or {}
        node = node[part]
    node[leaf] = value


def _one_error_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    return errors[0]


@pytest.mark.parametrize(("key", "url", "variable"), PLANTED_URLS)
def test_a_credential_in_a_url_param_stops_every_command_and_is_never_printed(
        tmp_path, key, url, variable):
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    _set(params, key, url)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    executable = Path(sys.executable).parent / "cotdistill"
    # a stage, and `cotdistill params`, which would print the value
    for command in (["teacher"], ["params", key.split(".")[0]]):
        result = subprocess.run([str(executable), *command], cwd=tmp_path, check=False,
                                capture_output=True, text=True,
                                env=dict(os.environ, HF_HUB_OFFLINE="1"), timeout=300)
        line = _one_error_line(result)
        assert line.startswith(f"error: params.yaml: {key}: "), line
        assert variable in line and "dvc.lock" in line
        assert PASSWORD not in result.stdout + result.stderr
    assert _files_containing(tmp_path, PASSWORD.encode()) == ["params.yaml"]


def test_a_password_in_the_teacher_url_never_reaches_dvc_lock(tmp_path):
    """The issue's case: `dvc repro` with the password in teacher.base_url."""
    repo = tmp_path / "repo"
    repo.mkdir()
    _copy_repository(repo)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    _set(params, "teacher.base_url", f"http://user:{PASSWORD}@127.0.0.1:9/v1")
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    lock = (repo / "dvc.lock").read_bytes()
    result = _dvc(repo, "repro")
    assert result.returncode != 0
    assert "error: params.yaml: teacher.base_url: credentials in a URL are refused" in (
        result.stderr + result.stdout)
    assert PASSWORD not in result.stdout + result.stderr
    assert (repo / "dvc.lock").read_bytes() == lock
    assert _files_containing(repo, PASSWORD.encode()) == ["params.yaml"]
