"""JSON Lines reading and writing, with errors that name the file and line."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from cotdistill.atomic import atomic_file
from cotdistill.errors import CotdistillError

M = TypeVar("M", bound=BaseModel)


def read_records(path: Path | str, model: type[M], *, allow_empty: bool = False) -> list[M]:
    """Read and validate every line of ``path`` as ``model``, strictly: a value must already
    have its field's type (``"correct": "no"`` is not a boolean, ``"sample": "0"`` not an
    integer), as every file the pipeline writes does.

    A missing file, a line that is not UTF-8 or not JSON, a record that does not fit the
    contract, or (unless ``allow_empty``) a file with no records raises
    :class:`CotdistillError` naming file and line.
    """
    path = Path(path)
    if not path.is_file():
        raise CotdistillError(f"{path}: file not found")
    records: list[M] = []
    for number, line in numbered_lines(path):
        try:
            records.append(model.model_validate_json(line, strict=True))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "record"
            if first["type"] == "json_invalid":
                raise CotdistillError(f"{path}:{number}: not valid JSON") from None
            raise CotdistillError(f"{path}:{number}: {where}: {_message(first)}") from None
    if not records and not allow_empty:
        raise CotdistillError(f"{path}: is empty (no records)")
    return records


def numbered_lines(path: Path, label: str | None = None) -> Iterator[tuple[int, str]]:
    """(line number, text) of every non-blank line, decoded as UTF-8; a line that is not UTF-8
    raises :class:`CotdistillError` naming ``label`` (default: the path), line and column."""
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise CotdistillError(
                    f"{label or path}:{number}: not valid UTF-8 (byte 0x{raw[exc.start]:02x} at "
                    f"column {exc.start + 1})") from None
            if line.strip():
                yield number, line


_JSON_TYPES = {bool: "true/false", str: "a string", int: "a number", float: "a number",
               list: "an array", dict: "an object", type(None): "null"}


def _message(error: dict) -> str:
    """pydantic's message; for a value of the wrong type, what was given (never the value)."""
    if error["type"].endswith("_type"):
        return f"{error['msg']}, not {_JSON_TYPES.get(type(error['input']), 'that')}"
    return error["msg"]


def write_records(path: Path | str, records: Iterable[BaseModel | dict]) -> int:
    """Write records atomically as JSON Lines; return how many were written."""
    count = 0
    with atomic_file(path) as tmp, tmp.open("w", encoding="utf-8") as handle:
        for record in records:
            if isinstance(record, BaseModel):
                handle.write(record.model_dump_json() + "\n")
            else:
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            count += 1
    return count
