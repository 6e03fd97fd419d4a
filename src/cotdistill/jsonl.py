"""JSON Lines reading and writing, with errors that name the file and line."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from cotdistill.atomic import atomic_file
from cotdistill.errors import CotdistillError

M = TypeVar("M", bound=BaseModel)


def read_records(path: Path | str, model: type[M], *, allow_empty: bool = False) -> list[M]:
    """Read and validate every line of ``path`` as ``model``.

    A missing file, a line that is not JSON, a record that does not fit the contract, or (unless
    ``allow_empty``) a file with no records raises :class:`CotdistillError` naming file and line.
    """
    path = Path(path)
    if not path.is_file():
        raise CotdistillError(f"{path}: file not found")
    records: list[M] = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                records.append(model.model_validate_json(line))
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(part) for part in first["loc"]) or "record"
                if first["type"] == "json_invalid":
                    raise CotdistillError(f"{path}:{number}: not valid JSON") from None
                raise CotdistillError(f"{path}:{number}: {where}: {first['msg']}") from None
    if not records and not allow_empty:
        raise CotdistillError(f"{path}: is empty (no records)")
    return records


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
