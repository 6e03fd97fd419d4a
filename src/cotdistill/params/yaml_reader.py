"""Reading params.yaml: YAML 1.2's core schema, as DVC reads it, with the line of every key.

Why not PyYAML's SafeLoader: it reads YAML 1.1 (``on`` and ``no`` are booleans, ``1e-4`` a
string), so a value would differ from the one DVC records in dvc.lock. Why not ruamel.yaml,
which DVC uses: it reads ``2024-01-01`` as a date, which no setting takes. The lines let every
validation error name where the key is.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from cotdistill.errors import CotdistillError


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
