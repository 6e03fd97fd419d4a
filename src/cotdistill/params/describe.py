"""Every key of ``params.yaml``, documented: its type, its default, its value in a params file,
and its description (``cotdistill params [SECTION] [--params FILE]``).

:func:`describe_params` reads the pydantic models (nested mappings such as ``train.hparams``
included); :func:`render_params` lays the result out for a terminal.
"""

from __future__ import annotations

import textwrap
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from cotdistill.errors import CotdistillError
from cotdistill.params import Params, load_params
from cotdistill.params.base import Section
from cotdistill.params.yaml_reader import read_params_yaml


@dataclass(frozen=True)
class ParamDoc:
    """One key of a params file."""

    key: str  # dotted: "teacher.samples"; "students.<name>.model" for an entry of a mapping
    type: str  # readable: "int > 0", "null | float in [0, 1)", "chat | completions"
    required: bool  # no default: the key must be given (students.<name>.model)
    default: Any  # what a params file that leaves the key out gets (plain YAML/JSON data)
    description: str
    set_in: str | None = None  # the params file's name when it sets the key, else None
    value: Any = None  # the key's value in that file (validated), when set_in is not None
    nested: bool = False  # a nested section (train.hparams): its keys are listed after it


def sections() -> list[str]:
    """The top-level sections of ``params.yaml``, in order."""
    return list(Params.model_fields)


def describe_params(section: str | None = None,
                    params_file: Path | str | None = None) -> list[ParamDoc]:
    """Every key of ``section`` (the section itself first, then its keys, nested mappings
    recursed into), or of every section when ``section`` is None; with ``params_file``, each key
    that file sets carries its value there. An unknown section, or a params file that does not
    load, raises :class:`CotdistillError`."""
    known = sections()
    if section is not None and section not in known:
        raise CotdistillError(f"unknown params section {section!r} (known: {', '.join(known)})")
    raw: dict = {}
    loaded: Params | None = None
    label = None
    if params_file is not None:
        loaded = load_params(params_file)  # validates: a broken file is one clear error
        raw = read_params_yaml(params_file)[0] or {}  # as load_params read it
        label = Path(params_file).name
    docs: list[ParamDoc] = []
    defaults = Params()
    for name in [section] if section is not None else known:
        _field(docs, Params, name, defaults, (name,), raw, loaded, label)
    return docs


def render_params(docs: list[ParamDoc], width: int = 100) -> str:
    """``docs`` as plain text, at most ``width`` columns (at least 40): the key, then its type,
    default and value in the params file on the same line (wrapped below the key when long), then
    the description, wrapped and indented. A blank line separates top-level sections."""
    width = max(width, 40)
    column = min(max((len(doc.key) for doc in docs), default=0) + 2, width // 2)
    wrap = {"break_on_hyphens": False, "break_long_words": True}
    lines: list[str] = []
    for doc in docs:
        if "." not in doc.key and lines:
            lines.append("")
        info = textwrap.wrap(_info(doc), width - column, **wrap)
        if len(doc.key) + 2 <= column:
            lines.append((doc.key.ljust(column) + info[0]).rstrip())
        else:
            lines += [doc.key, " " * column + info[0]]
        lines += [" " * column + line for line in info[1:]]
        lines += textwrap.wrap(doc.description, width, initial_indent="    ",
                               subsequent_indent="    ", **wrap)
    return "\n".join(lines) + "\n"


# --- reading the models ---------------------------------------------------------------------


def _field(docs: list[ParamDoc], owner: type[BaseModel], name: str, base: BaseModel | None,
           path: tuple[str, ...], raw: Any, loaded: Any, label: str | None) -> None:
    """Append the doc of ``owner``'s field ``name`` (and of its keys, for a nested model).

    ``base`` is the default instance of ``owner`` where there is one (``socratic.hparams`` has
    its own defaults); ``raw`` and ``loaded`` are the params file's mapping and validated model
    at the owner's level (empty and None when the file does not reach it)."""
    field = owner.model_fields[name]
    required = False
    if base is not None:
        default = getattr(base, name)
    elif field.default_factory is not None:
        default = field.default_factory()  # type: ignore[call-arg]
    elif field.default is PydanticUndefined:
        default, required = None, True
    else:
        default = field.default
    given = isinstance(raw, dict) and name in raw
    value = getattr(loaded, name) if given and loaded is not None else None
    model = _model_of(field.annotation)
    entry = _value_model_of(field.annotation)
    docs.append(ParamDoc(
        key=".".join(path), type=_type_text(field.annotation, field.metadata),
        required=required, default=_plain(default), description=field.description or "",
        set_in=label if given else None, value=_plain(value) if given else None,
        nested=model is not None,
    ))
    if model is not None:
        child_base = default if isinstance(default, model) else None
        child_raw = raw[name] if given else {}
        child_loaded = value if isinstance(value, model) else None
        for child in model.model_fields:
            _field(docs, model, child, child_base, (*path, child), child_raw, child_loaded, label)
    elif entry is not None:
        for child in entry.model_fields:
            _field(docs, entry, child, None, (*path, "<name>", child), {}, None, None)


def _strip_annotated(annotation: Any) -> tuple[Any, list[Any]]:
    """The bare type of ``Annotated[T, ...]`` and the constraints it carries."""
    metadata: list[Any] = []
    while typing.get_origin(annotation) is Annotated:
        annotation, *extras = typing.get_args(annotation)
        for extra in extras:
            metadata += extra.metadata if isinstance(extra, FieldInfo) else [extra]
    return annotation, metadata


def _union_parts(annotation: Any) -> list[Any] | None:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return list(typing.get_args(annotation))
    return None


def _model_of(annotation: Any) -> type[Section] | None:
    """The section model of a nested mapping (``HParams``, ``LoraParams | None``), if any."""
    annotation, _ = _strip_annotated(annotation)
    for part in _union_parts(annotation) or [annotation]:
        if isinstance(part, type) and issubclass(part, Section):
            return part
    return None


def _value_model_of(annotation: Any) -> type[Section] | None:
    """The section model of a mapping's entries (``dict[str, Student]``), if any."""
    annotation, _ = _strip_annotated(annotation)
    if typing.get_origin(annotation) is dict:
        value = typing.get_args(annotation)[1]
        if isinstance(value, type) and issubclass(value, Section):
            return value
    return None


def _type_text(annotation: Any, metadata: list[Any] = (), nested: bool = True) -> str:
    """``int > 0``, ``float in [0, 1)``, ``null | int > 0``, ``list of str``, ``a | b``...; a
    nested section is a ``mapping`` (its keys are listed apart), a model inside another type
    shows its keys (``{prompt, completion, batch_discount}``)."""
    annotation, inner = _strip_annotated(annotation)
    metadata = [*metadata, *inner]
    parts = _union_parts(annotation)
    if parts is not None:
        texts = [_type_text(part, nested=nested) for part in parts if part is not type(None)]
        null = ["null"] if type(None) in parts else []
        return " | ".join(null + texts)
    if typing.get_origin(annotation) is Literal:
        return " | ".join(_show(arg) for arg in typing.get_args(annotation))
    if typing.get_origin(annotation) is list:
        item = _type_text(typing.get_args(annotation)[0], nested=False)
        return f"list of ({item})" if " | " in item else f"list of {item}"
    if typing.get_origin(annotation) is dict:
        key, value = (_type_text(arg, nested=False) for arg in typing.get_args(annotation))
        return f"mapping of {key} -> {value}"
    if isinstance(annotation, type) and issubclass(annotation, Section) and nested:
        return "mapping"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "{" + ", ".join(annotation.model_fields) + "}"
    name = getattr(annotation, "__name__", str(annotation))
    return name + _constraints(metadata)


def _constraints(metadata: list[Any]) -> str:
    bound = {attr: getattr(item, attr) for item in metadata
             for attr in ("gt", "ge", "lt", "le", "pattern")
             if getattr(item, attr, None) is not None}
    if "pattern" in bound:
        return f" matching {bound['pattern']}"
    low = ("(", bound["gt"]) if "gt" in bound else ("[", bound["ge"]) if "ge" in bound else None
    high = (")", bound["lt"]) if "lt" in bound else ("]", bound["le"]) if "le" in bound else None
    if low and high:
        return f" in {low[0]}{low[1]}, {high[1]}{high[0]}"
    if low:
        return f" {'>' if low[0] == '(' else '>='} {low[1]}"
    if high:
        return f" {'<' if high[0] == ')' else '<='} {high[1]}"
    return ""


# --- showing values ---------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """Plain data (as YAML or JSON would hold it) for a validated value."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def _show(value: Any) -> str:
    """YAML flow style: null, true, [a, b], {key: value}."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value if value.strip() == value and value else repr(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key}: {_show(item)}" for key, item in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_show(item) for item in value) + "]"
    return str(value)


def _info(doc: ParamDoc) -> str:
    """Type; default; value in the params file. A nested section's mapping is left to its keys
    below (shown where it is null)."""
    parts = [doc.type]
    if doc.required:
        parts.append("required")
    elif not (doc.nested and isinstance(doc.default, dict)):
        parts.append(f"default {_show(doc.default)}")
    if doc.set_in is not None:
        shown = "given" if doc.nested and isinstance(doc.value, dict) else _show(doc.value)
        parts.append(f"{doc.set_in}: {shown}")
    return "; ".join(parts)
