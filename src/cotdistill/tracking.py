"""MLflow set-up and lineage: one store per repository, runs that say what made them.

The store defaults to ``sqlite:///<repository root>/mlflow.db`` (absolute, so that
``dvc exp run --temp`` still writes to it) with artifacts beside it in ``mlartifacts/``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
from pathlib import Path

from cotdistill.errors import CotdistillError
from cotdistill.params import MlflowParams
from cotdistill.paths import repo_root

log = logging.getLogger(__name__)


def tracking_uri(params: MlflowParams) -> str:
    return params.tracking_uri or f"sqlite:///{repo_root() / 'mlflow.db'}"


def use_experiment(params: MlflowParams) -> str:
    """Point MLflow at the project's store and experiment; return the experiment id.

    A store that cannot be used (a damaged or unwritable file, a server that does not answer)
    is one :class:`CotdistillError` line naming it; stages call this before their work."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_DESTINATION_WARNING", "false")
    import mlflow

    for name in ("alembic", "mlflow.store.db.utils"):  # noisy schema-migration logs
        logging.getLogger(name).setLevel(logging.WARNING)
    uri = tracking_uri(params)
    mlflow.set_tracking_uri(uri)
    try:
        experiment = mlflow.get_experiment_by_name(params.experiment)
        if experiment is not None:
            return experiment.experiment_id
        return mlflow.create_experiment(
            params.experiment, artifact_location=(repo_root() / "mlartifacts").as_uri()
        )
    except Exception as exc:  # MLflow, SQLAlchemy and HTTP errors alike
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CotdistillError(
            f"mlflow: the tracking store {uri} cannot be used ({reason}); fix "
            "mlflow.tracking_uri, or move the store aside to start a new one") from None


def git_commit() -> str:
    """HEAD's commit, with ``+dirty`` when tracked files differ from it; ``unknown`` off git."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("+dirty" if dirty else "")


def md5(path: Path | str) -> str:
    """MD5 of a file (as DVC computes it), or of a directory's sorted (name, md5) listing."""
    path = Path(path)
    if path.is_file():
        digest = hashlib.md5()
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        return digest.hexdigest()
    listing = sorted(
        (str(child.relative_to(path)), md5(child)) for child in path.rglob("*") if child.is_file()
    )
    return hashlib.md5(repr(listing).encode()).hexdigest() + ".dir"


def lineage_tags(inputs: dict[str, Path]) -> dict[str, str]:
    """Tags tying a run to the code and the exact data it used."""
    tags = {"git_commit": git_commit()}
    for name, path in inputs.items():
        tags[f"input.{name}"] = str(path)
        tags[f"input.{name}.md5"] = md5(path)
    return tags


def register_if_best(params: MlflowParams, run_id: str, model_uri: str, score: float,
                     description: str = "") -> bool:
    """Register the model and move the alias to it when ``score`` (validation accuracy) beats
    the run that holds the alias now. Never decided on test figures. ``description`` (the
    model card) goes on the new version and on the registered model."""
    import mlflow

    client = mlflow.MlflowClient()
    name, alias = params.registered_model, params.alias
    try:
        holder = client.get_model_version_by_alias(name, alias)
        best = client.get_run(holder.run_id).data.metrics.get("best_val_accuracy", float("-inf"))
    except Exception:  # no registered model or alias yet
        best = float("-inf")
    if score <= best:
        return False
    version = mlflow.register_model(model_uri, name)
    if description:
        client.update_model_version(name, version.version, description=description)
        client.update_registered_model(name, description=(
            f"The best cotdistill student on validation carries @{alias}; each version's "
            f"description is its model card. @{alias} now:\n\n{description}"))
    client.set_registered_model_alias(name, alias, version.version)
    client.set_tag(run_id, "registered", f"{name}@{alias} (version {version.version})")
    return True
