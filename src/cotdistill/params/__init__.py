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
from typing import Any

import yaml
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
from cotdistill.params.train import HParams, KDParams, LoraParams, Student, TrainParams

__all__ = [
    "NAME", "CurateParams", "EvaluateParams", "ExemplarsParams", "FewshotParams", "HParams",
    "KDParams", "LoraParams", "MlflowParams", "Params", "PrepareParams", "Price", "ReportParams",
    "Section", "SocraticParams", "Student", "TeacherParams", "TrainParams",
    "check_known_datasets", "load_params", "read_params_yaml",
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

    def student(self, name: str) -> Student:
        """The student called ``name``, or a clear error naming the params key."""
        if name not in self.students:
            known = ", ".join(sorted(self.students)) or "none"
            raise CotdistillError(f"students.{name}: no such student in params (known: {known})")
        return self.students[name]


class _Loader(yaml.SafeLoader):
    """YAML 1.2's core schema, as DVC reads params.yaml (ruamel.yaml): ``1e-4`` is a float,
    only true / false are booleans (``on``, ``no`` are strings), no dates, no sexagesimals
    (digits may still be grouped with ``_``, as YAML 1.1 allowed)."""


_BOOL, _INT, _FLOAT = (f"tag:yaml.org,2002:{name}" for name in ("bool", "int", "float"))
_Loader.yaml_implicit_resolvers = {  # new lists: SafeLoader's own stay as they are
    first: [(tag, regexp) for tag, regexp in resolvers
            if tag in ("tag:yaml.org,2002:null", "tag:yaml.org,2002:merge")]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                              list("tTfF"))
_Loader.add_implicit_resolver(
    _INT, re.compile(r"^(?:[-+]?[0-9][0-9_]*|0o[0-7_]+|0x[0-9a-fA-F_]+)$"), list("-+0123456789"))
_Loader.add_implicit_resolver(
    _FLOAT, re.compile(r"^(?:[-+]?(?:\.[0-9][0-9_]*|[0-9][0-9_]*(?:\.[0-9_]*)?)(?:[eE][-+]?[0-9]+)?"
                       r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"),
    list("-+0123456789."))


def _scalar(convert):
    def construct(loader: _Loader, node: yaml.ScalarNode):
        text = loader.construct_scalar(node)
        try:
            return convert(text)
        except ValueError:
            raise yaml.constructor.ConstructorError(
                None, None, f"cannot read {text!r} as {node.tag}", node.start_mark) from None
    return construct


def _int(text: str) -> int:
    text = text.replace("_", "")
    return int(text, 0) if text.lstrip("+-")[:2] in ("0o", "0x") else int(text, 10)


def _float(text: str) -> float:
    lowered = text.lower()
    if lowered.lstrip("+-") in (".inf", ".nan"):
        return float(lowered.replace(".", ""))
    return float(text.replace("_", ""))


_Loader.add_constructor(_BOOL, _scalar(lambda text: text.lower() == "true"))
_Loader.add_constructor(_INT, _scalar(_int))
_Loader.add_constructor(_FLOAT, _scalar(_float))


def _key_lines(node: yaml.Node, path: Path, at: tuple, lines: dict[tuple, int],
               inside: frozenset[int] = frozenset()) -> None:
    """Record the line of every key under ``node``; a key given twice in one mapping is an
    error naming the file, both lines and the key."""
    if id(node) in inside:  # a recursive alias
        return
    inside = inside | {id(node)}
    if isinstance(node, yaml.MappingNode):
        first: dict[tuple[str, str], int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                _key_lines(value_node, path, at, lines, inside)
                continue
            line = key_node.start_mark.line + 1
            dotted = ".".join(str(part) for part in (*at, key_node.value))
            seen = first.get((key_node.tag, key_node.value))
            if seen is not None:
                raise CotdistillError(f"{path}:{line}: duplicate key {dotted} (first given on "
                                      f"line {seen}); give each key once")
            first[(key_node.tag, key_node.value)] = line
            lines[(*at, key_node.value)] = line
            _key_lines(value_node, path, (*at, key_node.value), lines, inside)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[(*at, index)] = item.start_mark.line + 1
            _key_lines(item, path, (*at, index), lines, inside)


def read_params_yaml(path: Path | str) -> tuple[Any, dict[tuple, int]]:
    """The data of a params file (YAML 1.2 core schema), and the line of each key path in it.

    A file that is not UTF-8, not YAML, or that gives a key twice raises one
    :class:`CotdistillError` naming the file and line."""
    path = Path(path)
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise CotdistillError(f"{path}:{line}: not valid UTF-8 (byte 0x{data[exc.start]:02x} at "
                              f"column {column}); save the file as UTF-8") from None
    loader = _Loader(text)
    lines: dict[tuple, int] = {}
    try:
        node = loader.get_single_node()
        if node is None:
            return None, lines
        _key_lines(node, path, (), lines)
        return loader.construct_document(node), lines
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        raise CotdistillError(f"{path}{where}: not valid YAML") from None
    finally:
        loader.dispose()


def _line(loc: tuple, lines: dict[tuple, int]) -> int | None:
    """The line of the longest prefix of ``loc`` that the file gives."""
    for end in range(len(loc), 0, -1):
        if tuple(loc[:end]) in lines:
            return lines[tuple(loc[:end])]
    return None


def _describe(error: dict, lines: dict[tuple, int] | None = None) -> str:
    key = ".".join(str(part) for part in error["loc"])
    line = _line(tuple(error["loc"]), lines or {})
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
    raw = raw if raw is not None else {}
    if not isinstance(raw, dict):
        raise CotdistillError(f"{path}: the top level must be a mapping of sections")
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(_describe(error, lines) for error in exc.errors())
        raise CotdistillError(f"{path}: {problems}") from None
