"""What every section of ``params.yaml`` shares: the :class:`Section` base class, the pattern a
name must match, and the dataset-name check."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict

from cotdistill.datasets import DATASETS

# student names (and so directories under models/ and reports/): no separators, no leading dot
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def check_known_datasets(names: list[str]) -> None:
    """Raise ValueError naming the first name that is not in the dataset registry."""
    for name in names:
        if name not in DATASETS:
            raise ValueError(f"unknown dataset {name!r} (known: {', '.join(sorted(DATASETS))})")


class Section(BaseModel):
    """A section (or a nested mapping) of ``params.yaml``: an unknown key is an error, and the
    validated values are read-only. Every field documents itself with ``Field(description=...)``;
    :mod:`cotdistill.params.describe` lists them."""

    model_config = ConfigDict(extra="forbid", frozen=True)
