"""The ``report`` section: the summary report."""

from __future__ import annotations

from pydantic import Field

from cotdistill.params.base import Section


class ReportParams(Section):
    title: str = Field(
        "cotdistill summary", description="Title of the summary report (reports/summary.md).")
