"""Where the repository root is, even when DVC runs a stage from a temporary copy.

``dvc exp run --temp`` and queued experiments run in ``<repo>/.dvc/tmp/exps/<name>/``; the MLflow
store and the teacher cache must still be the repository's own, so they hang off this root.
"""

from __future__ import annotations

import os
from pathlib import Path


def repo_root(start: Path | str | None = None) -> Path:
    here = Path(start or os.getcwd()).resolve()
    parts = here.parts
    for index in range(len(parts) - 2):
        if parts[index : index + 3] == (".dvc", "tmp", "exps"):
            return Path(*parts[:index])
    return here


def state_dir() -> Path:
    """Local, unversioned state of this checkout (the teacher response cache)."""
    return repo_root() / ".cotdistill"


def teacher_cache() -> Path:
    """The teacher response cache that every teacher pass of this checkout shares."""
    return state_dir() / "teacher-cache.sqlite"


def from_root(path: str | Path) -> Path:
    """A path from params: relative ones are relative to the repository root, not the cwd,
    so ``../shared/data/mirror`` means the same in a ``dvc exp run --temp`` copy."""
    path = Path(path).expanduser()
    return path if path.is_absolute() else repo_root() / path
