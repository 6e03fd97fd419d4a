"""Specification: no params value may hold a credential.

Every value of params.yaml is recorded in dvc.lock (committed and pushed), logged to MLflow and
printed in logs. So a URL with a user and password, a URL query parameter that looks like a key
or token, or a value in the format of a known API key is refused, with an error that names the
key, says where the credential goes instead, and never repeats it. No params key is named like
a credential either. (tests/pipeline/test_secrets.py runs the command line and DVC on this.)
"""

from __future__ import annotations

import typing
from pathlib import Path

import pytest
from pydantic import BaseModel

from cotdistill.errors import CotdistillError
from cotdistill.params import Params, load_params

SECRET = "s3cr3t-Pw"

# every params key whose value is a URL (or may be one), as a path into params.yaml
URL_KEYS = {
    "teacher.base_url": "OPENAI_API_KEY",
    "socratic.teacher.base_url": "OPENAI_API_KEY",
    "mlflow.tracking_uri": "MLFLOW_TRACKING_PASSWORD",
    "prepare.mirror": "environment",
}


def _yaml(key: str, value: str) -> str:
    *parents, leaf = key.split(".")
    text = "".join(f"{'  ' * depth}{part}:\n" for depth, part in enumerate(parents))
    return text + f"{'  ' * len(parents)}{leaf}: '{value}'\n"


def _refusal(tmp_path: Path, key: str, value: str) -> str:
    path = tmp_path / "params.yaml"
    path.write_text(_yaml(key, value), encoding="utf-8")
    with pytest.raises(CotdistillError) as info:
        load_params(path)
    return str(info.value)


@pytest.mark.parametrize("key", URL_KEYS)
@pytest.mark.parametrize("url", [
    f"http://user:{SECRET}@127.0.0.1:8000/v1",
    f"https://{SECRET}@example.com/v1",  # a token as the user name
    f"http://127.0.0.1:8000/v1?api_key={SECRET}",
    f"https://example.com/v1?api-version=1&access_token={SECRET}",
    f"https://example.com/v1?X-Amz-Signature={SECRET}",
])
def test_a_credential_in_any_url_param_is_refused_naming_the_key_and_the_environment(
        tmp_path, key, url):
    message = _refusal(tmp_path, key, url)
    assert f"params.yaml: {key}: " in message
    assert "dvc.lock" in message and URL_KEYS[key] in message
    assert SECRET not in message


def test_the_teacher_url_error_says_which_variable_the_openai_backend_reads(tmp_path):
    message = _refusal(tmp_path, "teacher.base_url", f"http://user:{SECRET}@127.0.0.1:8000/v1")
    assert "remove the user:password@ part" in message
    assert "api_key_env" in message and "OPENAI_API_KEY" in message
    assert message.endswith("(line 2)")


def test_mlflow_credentials_go_in_mlflows_own_variables(tmp_path):
    message = _refusal(tmp_path, "mlflow.tracking_uri", f"https://u:{SECRET}@mlflow.example")
    assert "MLFLOW_TRACKING_USERNAME" in message and "MLFLOW_TRACKING_TOKEN" in message


@pytest.mark.parametrize(("key", "value"), [
    ("teacher.model", "sk-proj-" + "a1B2" * 10),
    ("report.title", "run with hf_" + "Ab3" * 12),
    ("students.tiny.model", "ghp_" + "x9" * 18),
    ("teacher.api_key_env", "hf_" + "Ab3" * 12),  # the key itself instead of its variable
    ("train.hparams.lora.target_modules", "AKIA" + "ABCD1234" * 2),
])
def test_a_value_in_the_format_of_an_api_key_is_refused_anywhere(tmp_path, key, value):
    message = _refusal(tmp_path, key, value)
    assert key in message and value not in message


def test_an_api_key_pasted_as_api_key_env_is_refused_without_repeating_it(tmp_path):
    message = _refusal(tmp_path, "teacher.api_key_env", "sk-" + "a1B2" * 10)
    assert "teacher.api_key_env" in message and "a1B2" not in message


@pytest.mark.parametrize(("key", "value"), [
    ("teacher.base_url", "http://127.0.0.1:8000/v1"),
    ("teacher.base_url", "https://api.openai.com/v1"),
    ("teacher.base_url", "https://x.openai.azure.com/openai/deployments/d?api-version=2024-06-01"),
    ("mlflow.tracking_uri", "sqlite:///mlflow.db"),
    ("mlflow.tracking_uri", "http://mlflow.internal:5000"),
    ("prepare.mirror", "../shared/data/mirror"),
    ("teacher.model", "Qwen/Qwen2.5-7B-Instruct"),
    ("report.title", "sk-learn baseline vs the students"),
])
def test_ordinary_urls_paths_and_names_are_accepted(tmp_path, key, value):
    path = tmp_path / "params.yaml"
    path.write_text(_yaml(key, value), encoding="utf-8")
    params = load_params(path)
    node: typing.Any = params
    for part in key.split("."):
        node = node[part] if isinstance(node, dict) else getattr(node, part)
    assert node == value


def _keys(model: type[BaseModel], prefix: str = ""):
    for name, field in model.model_fields.items():
        yield f"{prefix}{name}"
        for arg in [field.annotation, *typing.get_args(field.annotation)]:
            for inner in [arg, *typing.get_args(arg)]:
                if isinstance(inner, type) and issubclass(inner, BaseModel):
                    yield from _keys(inner, f"{prefix}{name}.")


def test_no_params_key_is_named_like_a_credential():
    """Only api_key_env comes near: it holds the *name* of an environment variable."""
    keys = set(_keys(Params))
    assert "teacher.base_url" in keys and "train.hparams.kd.teacher" in keys  # the walk is deep
    words = {"key", "apikey", "token", "secret", "password", "passwd", "pwd", "credential",
             "credentials", "auth"}  # max_tokens counts tokens: no credential
    suspicious = {key for key in keys if words & set(key.split(".")[-1].lower().split("_"))}
    assert suspicious == {"teacher.api_key_env", "socratic.teacher.api_key_env"}
    assert Params().teacher.api_key_env == "OPENAI_API_KEY"
