"""Every distillation method by name (``train.methods``, ``--method``)."""

from __future__ import annotations

from cotdistill.methods.base import METHODS

__all__ = ["METHODS"]
