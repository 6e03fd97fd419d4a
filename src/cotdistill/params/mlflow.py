"""The ``mlflow`` section: where runs are tracked and how the best student is registered."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from cotdistill.params.base import Section


class MlflowParams(Section):
    tracking_uri: str | None = Field(
        None,
        description="MLflow tracking URI (null: sqlite:///<repository root>/mlflow.db); "
                    "credentials go in MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (or "
                    "MLFLOW_TRACKING_TOKEN), never in the URI.")
    experiment: str = Field("cotdistill", description="MLflow experiment the runs belong to.")
    registered_model: str = Field(
        "cotdistill-student",
        description="Registered model name under which the student with the best validation "
                    "accuracy is registered.")
    alias: str = Field(
        "champion", description="Alias given to that registered model version.")
    log_models: Literal["champion", "all"] = Field(
        "champion",
        description="Which trained students are logged to MLflow as models: the one that takes "
                    "the alias (a student is 0.5 GB; the others stay in models/ and DVC's "
                    "cache), or every run's.")
