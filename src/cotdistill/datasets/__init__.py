"""Building the datasets that ``cotdistill.catalog`` names: the published ones from their
public raw files (``published``), the generated ones from a seed (``synthetic``), users' own
files (``user``), and the prepared splits made from them (``build``)."""

from __future__ import annotations

from dataclasses import dataclass

from cotdistill.datasets.synthetic import RawExample


@dataclass(frozen=True)
class PublishedDataset:
    """A dataset as published: ``examples[i]`` is reasoning-teacher sample index ``i``."""

    examples: list[RawExample]
    train: list[int]  # the published split's indices into ``examples``
    test: list[int]


__all__ = ["PublishedDataset", "RawExample"]
