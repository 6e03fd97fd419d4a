"""What every section of ``params.yaml`` shares: the :class:`Section` base class, the pattern a
name must match, the dataset-name check, and the refusal of credentials in any value."""

from __future__ import annotations

import re
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator

from cotdistill.catalog import DATASETS

# student names (and so directories under models/ and reports/): no separators, no leading dot
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")

# Strict: a value must already have its type (``samples: true`` or ``"2"`` is not an int; an
# int is still a float), and a float must be finite (``.inf`` and ``.nan`` are refused).
# numeric precision of training and generation (resolved by cotdistill.lm.precision)
Precision = Literal["auto", "fp32", "bf16"]

STRICT = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)

# Every value of params.yaml is recorded in dvc.lock (committed, pushed), logged to MLflow and
# printed in logs, so no value may hold a credential. Where each kind of URL's credentials go:
ENVIRONMENT = {
    "base_url": "put the API key in the environment variable this section's api_key_env names "
                "(OPENAI_API_KEY unless set otherwise), which the openai backends read",
    "tracking_uri": "MLflow reads them from the environment: MLFLOW_TRACKING_USERNAME and "
                    "MLFLOW_TRACKING_PASSWORD, or MLFLOW_TRACKING_TOKEN",
}
ELSEWHERE = "keep credentials in the environment"
WHY = "params are recorded in dvc.lock, MLflow and logs"
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")
_SECRET_NAME = re.compile(r"key|token|secret|pass|pwd|auth|sig|credential|session",
                          re.IGNORECASE)
# the published formats of common API keys and access tokens (OpenAI and Anthropic, Hugging
# Face, GitHub, AWS, Google, Slack)
_KEY_LIKE = re.compile(
    r"(?<![A-Za-z0-9])(sk-[A-Za-z0-9_-]{20,}|hf_[A-Za-z0-9]{30,}|gh[pousr]_[A-Za-z0-9]{30,}"
    r"|github_pat_\w{20,}|AKIA[0-9A-Z]{16}|AIza[0-9A-Za-z_-]{35}|xox[abprs]-[A-Za-z0-9-]{10,})")


def check_known_datasets(names: list[str]) -> None:
    """Raise ValueError naming the first name that is not in the dataset registry."""
    for name in names:
        if name not in DATASETS:
            raise ValueError(f"unknown dataset {name!r} (known: {', '.join(sorted(DATASETS))})")


def _strings(value: Any):
    """The strings in a validated value: itself, or the items, keys and values of its lists and
    mappings (a nested section checks its own)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(key)
            yield from _strings(item)


def credential_problem(text: str, field: str = "") -> str | None:
    """Why ``text`` may not be a params value (a credential in it), or None. The message never
    repeats the credential."""
    where = ENVIRONMENT.get(field, ELSEWHERE)
    for match in _URL.finditer(text):
        try:
            parts = urlsplit(match.group())
        except ValueError:
            continue
        if "@" in parts.netloc:
            return (f"credentials in a URL are refused ({WHY}): remove the user:password@ "
                    f"part; {where}")
        for name, _ in parse_qsl(parts.query, keep_blank_values=True):
            if _SECRET_NAME.search(name):
                return (f"the URL's query parameter {name!r} looks like a credential, and "
                        f"{WHY}: remove it; {where}")
    if _KEY_LIKE.search(text):
        return f"the value looks like an API key or access token, and {WHY}: {where}"
    return None


class Section(BaseModel):
    """A section (or a nested mapping) of ``params.yaml``: an unknown key is an error, values are
    validated strictly (no ``"2"`` for 2, no ``true`` for 1, no infinite or NaN float), no value
    may hold a credential, and the validated values are read-only. Every field documents itself
    with ``Field(description=...)``; :mod:`cotdistill.params.describe` lists them."""

    model_config = STRICT

    @field_validator("*")
    @classmethod
    def _no_credentials(cls, value: Any, info: ValidationInfo) -> Any:
        for text in _strings(value):
            problem = credential_problem(text, info.field_name or "")
            if problem:
                raise ValueError(problem)
        return value
