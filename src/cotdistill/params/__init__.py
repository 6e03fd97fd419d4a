"""Settings: ``params.yaml``, one section per stage, validated once with pydantic.

Every section forbids unknown keys, so a typo (``train.hparams.lerning_rate``) stops the stage
with the key and the file named rather than being silently ignored. One module per section
(:mod:`~cotdistill.params.teacher`, :mod:`~cotdistill.params.train`, ...); each field documents
itself with ``Field(description=...)``, and :mod:`cotdistill.params.describe` lists them with
their types and defaults. A default is what a params file gets when it leaves the key out;
where the repository's ``params.yaml`` differs on purpose (a pipeline small enough for a CPU),
``tests/params/test_defaults.py`` says why.
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import Field, ValidationError, field_validator, model_validator

from cotdistill.catalog import DATASETS
from cotdistill.errors import CotdistillError
from cotdistill.params.base import NAME, Section, check_known_datasets
from cotdistill.params.curate import CurateParams
from cotdistill.params.evaluate import EvaluateParams
from cotdistill.params.exemplars import ExemplarsParams
from cotdistill.params.mlflow import MlflowParams
from cotdistill.params.prepare import PrepareParams
from cotdistill.params.report import ReportParams
from cotdistill.params.socratic import SocraticParams
from cotdistill.params.teacher import Price, TeacherParams
from cotdistill.params.teacher_fewshot import FewshotParams
from cotdistill.params.train import (
    HParams,
    KDParams,
    LoraParams,
    MethodParams,
    Student,
    TrainParams,
)
from cotdistill.params.yaml_reader import read_params_yaml

__all__ = [
    "NAME", "CurateParams", "EvaluateParams", "ExemplarsParams", "FewshotParams", "HParams",
    "KDParams", "LoraParams", "MethodParams", "MlflowParams", "Params", "PrepareParams", "Price", "ReportParams",
    "Section", "SocraticParams", "Student", "TeacherParams", "TrainParams",
    "check_known_datasets", "load_params",
]


class Params(Section):
    prepare: PrepareParams = Field(
        PrepareParams(), description="Datasets, their generation and their splits.")
    teacher: TeacherParams = Field(
        TeacherParams(), description="The zero-shot-CoT teacher: backend, model, sampling, "
                                     "API limits and dollars.")
    exemplars: ExemplarsParams = Field(
        ExemplarsParams(),
        description="New-Fine-tune-CoT's clustered exemplars for the few-shot teacher.")
    teacher_fewshot: FewshotParams = Field(
        FewshotParams(),
        description="New-Fine-tune-CoT's few-shot teacher pass over the train questions.")
    curate: CurateParams = Field(
        CurateParams(), description="Which correct teacher rationales become training examples.")
    students: dict[str, Student] = Field(
        {"smollm2-135m": Student(model="builtin:SmolLM2-135M-Instruct")},
        description="Student name -> {model}; names are letters, digits, '.', '_' or '-'.")
    train: TrainParams = Field(
        TrainParams(), description="Which students and methods are trained, and how.")
    evaluate: EvaluateParams = Field(
        EvaluateParams(), description="Test-split evaluation of the students and the baselines.")
    mlflow: MlflowParams = Field(
        MlflowParams(), description="MLflow tracking and the registered best student.")
    report: ReportParams = Field(ReportParams(), description="The summary report.")
    socratic: SocraticParams = Field(
        SocraticParams(),
        description="Socratic CoT (Shridhar et al. 2023): decomposition, the QG and QA students, "
                    "and their evaluation loop.")

    @field_validator("students")
    @classmethod
    def _path_safe_names(cls, students: dict[str, Student]) -> dict[str, Student]:
        for name in students:
            if not NAME.match(name):
                raise ValueError(f"student name {name!r} must be letters, digits, '.', '_' or '-'")
        return students

    @model_validator(mode="after")
    def _students_defined(self) -> Params:
        for name in self.train.students:
            if name not in self.students:
                raise ValueError(f"train.students names {name!r}, which the students section lacks")
        return self

    @model_validator(mode="after")
    def _socratic_datasets_known(self) -> Params:
        users = set(self.prepare.names)
        unknown = [n for n in self.socratic.datasets or [] if n not in users and n not in DATASETS]
        if unknown:
            raise ValueError(f"socratic.datasets names {unknown[0]!r}: neither a built-in dataset "
                             f"nor one of prepare.datasets ({', '.join(self.prepare.names)})")
        return self

    @model_validator(mode="after")
    def _dataset_names_apart_from_sections(self) -> Params:
        """reports/metrics.json groups each dataset's figures under its name beside the
        teacher's group, and `make results` tells them from params by name."""
        for name in self.prepare.names:
            if name in type(self).model_fields:
                raise ValueError(f"prepare.datasets names {name!r}, which is a section of the "
                                 "params (and the teacher's group in reports/metrics.json); "
                                 "give the dataset another name")
        return self

    def student(self, name: str) -> Student:
        """The student called ``name``, or a clear error naming the params key."""
        if name not in self.students:
            known = ", ".join(sorted(self.students)) or "none"
            raise CotdistillError(f"students.{name}: no such student in params (known: {known})")
        return self.students[name]


def _line(loc: tuple, lines: dict[tuple, int]) -> int | None:
    """The line of the longest prefix of ``loc`` that the file gives."""
    for end in range(len(loc), 0, -1):
        if tuple(loc[:end]) in lines:
            return lines[tuple(loc[:end])]
    return None


# pydantic names the member of a union an error came from (``str``, ``DatasetEntry``,
# ``function-after[_consistent(), DatasetEntry]``) inside the location: not a key of the file
_UNION_MEMBER = re.compile(r"^(str|int|float|bool|none|list\[.*\]|dict\[.*\]|function-.*|"
                           r"[A-Z][A-Za-z0-9]*|literal\[.*\])$")


def _key_path(loc: tuple) -> tuple:
    return tuple(part for part in loc if not (isinstance(part, str) and _UNION_MEMBER.match(part)))


def _relevant(errors: list[dict]) -> list[dict]:
    """One message per key: where a union member's own check failed (a path outside the
    repository), the other members' "not a string" complaints about the same key are noise."""
    specific = [_key_path(e["loc"]) for e in errors if not e["type"].endswith("_type")]

    def noise(error: dict) -> bool:
        key = _key_path(error["loc"])
        return (error["type"].endswith("_type") and key != tuple(error["loc"])
                and any(other[:len(key)] == key for other in specific))

    return [e for e in errors if not noise(e)]


def _describe(error: dict, lines: dict[tuple, int] | None = None) -> str:
    loc = _key_path(tuple(error["loc"]))
    key = ".".join(str(part) for part in loc)
    line = _line(loc, lines or {}) or _line(tuple(error["loc"]), lines or {})
    at = f" (line {line})" if line else ""
    if error["type"] == "extra_forbidden":
        return f"{key}: unknown key{at}"
    message = error["msg"].removeprefix("Value error, ")
    if error["type"].endswith("_type"):  # strict: say what was given (its type, never its value)
        given = {bool: "true/false", str: "a string", int: "an integer", float: "a float",
                 list: "a list", dict: "a mapping", type(None): "null"}
        message += f", not {given.get(type(error['input']), type(error['input']).__name__)}"
    return f"{key}: {message}{at}" if key else f"{message}{at}"


def load_params(path: Path | str = "params.yaml") -> Params:
    """Read and validate ``path``; any problem raises one :class:`CotdistillError` line that
    names the file, the key and its line."""
    path = Path(path)
    if not path.is_file():
        raise CotdistillError(f"{path}: params file not found")
    raw, lines = read_params_yaml(path)
    if not raw:  # built-in defaults would run the whole pipeline on data nobody chose
        raise CotdistillError(f"{path}: the params file is empty; start from the repository's "
                              "params.yaml")
    if not isinstance(raw, dict):
        raise CotdistillError(f"{path}: the top level must be a mapping of sections")
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(_describe(error, lines) for error in _relevant(exc.errors()))
        raise CotdistillError(f"{path}: {problems}") from None
