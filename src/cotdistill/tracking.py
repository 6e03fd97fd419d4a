"""MLflow set-up and lineage: one store per repository, runs that say what made them.

The store defaults to ``sqlite:///<repository root>/mlflow.db`` (absolute, so that
``dvc exp run --temp`` still writes to it) with artifacts beside it in ``mlartifacts/``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cotdistill.atomic import file_lock, process_alive, process_host
from cotdistill.errors import CotdistillError
from cotdistill.params import MlflowParams
from cotdistill.layout import repo_root, state_dir

log = logging.getLogger(__name__)


# Without this tag MLflow 3's UI opens an experiment on its GenAI overview; runs of models trained
# and evaluated are "custom model development", whose page is the runs table.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"


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
        with _quick_http():
            experiment = mlflow.get_experiment_by_name(params.experiment)
            if experiment is None:
                experiment = mlflow.get_experiment(mlflow.create_experiment(
                    params.experiment, artifact_location=(repo_root() / "mlartifacts").as_uri()))
            client = mlflow.MlflowClient()
            if EXPERIMENT_KIND_TAG not in experiment.tags:  # a kind the user chose stays
                client.set_experiment_tag(experiment.experiment_id, EXPERIMENT_KIND_TAG,
                                          EXPERIMENT_KIND)
            # a real write, before the stage's work: a store that can only be read fails here
            client.set_experiment_tag(experiment.experiment_id, "cotdistill.last_used",
                                      _now())
            end_dead_runs(experiment.experiment_id)
        return experiment.experiment_id
    except Exception as exc:  # MLflow, SQLAlchemy and HTTP errors alike
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CotdistillError(
            f"mlflow: the tracking store {uri} cannot be used ({reason}); fix "
            "mlflow.tracking_uri, or move the store aside to start a new one") from None


@contextmanager
def _quick_http() -> Iterator[None]:
    """The store check's calls: over HTTP 10 s and no retries, so an unreachable server is one
    line in seconds, not after MLflow's minutes of backoff (a user's own settings win); over
    SQL without the store's own traceback logging."""
    quick = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
    added = {name: value for name, value in quick.items() if name not in os.environ}
    os.environ.update(added)
    # MLflow's SQL store logs every database error with its traceback before raising it; the
    # check turns the error into one line, so the traceback would only bury that line
    store_log = logging.getLogger("mlflow.store.db.utils")
    level = store_log.level
    store_log.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        store_log.setLevel(level)
        for name in added:
            os.environ.pop(name, None)


def _now() -> str:
    import datetime as dt

    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


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
    """The hash DVC records for ``path`` in ``dvc.lock``: a file's MD5, or for a directory the
    ``.dir`` digest of its (relative path, MD5) tree, built with DVC's own ``Tree``."""
    path = Path(path)
    if path.is_file():
        return _file_md5(path)
    from dvc_data.hashfile.hash_info import HashInfo
    from dvc_data.hashfile.meta import Meta
    from dvc_data.hashfile.tree import Tree

    tree = Tree()
    for child in sorted(p for p in path.rglob("*") if p.is_file()):
        tree.add(child.relative_to(path).parts, Meta(size=child.stat().st_size),
                 HashInfo("md5", _file_md5(child)))
    tree.digest()
    return tree.hash_info.value


def _file_md5(path: Path) -> str:
    digest = hashlib.md5()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def process_tags() -> dict[str, str]:
    """Who made a run: a run left RUNNING by a process that is gone is ended as KILLED."""
    return {"cotdistill.host": process_host(), "cotdistill.pid": str(os.getpid())}


def end_dead_runs(experiment_id: str) -> list[str]:
    """Mark KILLED the runs of this experiment left RUNNING by a process of this host that no
    longer exists (a SIGKILLed stage cannot end its run); return their ids."""
    import mlflow

    client = mlflow.MlflowClient()
    ended = []
    host = process_host()
    for run in client.search_runs([experiment_id], "attributes.status = 'RUNNING'"):
        tags = run.data.tags
        pid = tags.get("cotdistill.pid", "")
        if tags.get("cotdistill.host") == host and pid.isdigit() and not process_alive(int(pid)):
            client.set_terminated(run.info.run_id, status="KILLED")
            ended.append(run.info.run_id)
            log.warning("mlflow: run %s (%s) was left RUNNING by process %s, which no longer "
                        "runs: marked KILLED", run.info.run_id, run.info.run_name, pid)
    return ended


# Set by `dvc exp run` for the commands it runs: the experiment's name and the commit it is on.
DVC_EXPERIMENT_ENV = {"DVC_EXP_NAME": "dvc.exp_name", "DVC_EXP_BASELINE_REV": "dvc.baseline_rev"}


def lineage_tags(inputs: dict[str, Path]) -> dict[str, str]:
    """Tags tying a run to the code, the exact data it used and, under ``dvc exp run``, the DVC
    experiment (so that MLflow's runs table and ``dvc exp show`` can be read side by side)."""
    tags = {"git_commit": git_commit(), **process_tags()}
    tags.update({tag: os.environ[name] for name, tag in DVC_EXPERIMENT_ENV.items()
                 if os.environ.get(name)})
    for name, path in inputs.items():
        tags[f"input.{name}"] = str(path)
        tags[f"input.{name}.md5"] = md5(path)
    return tags


VALIDATION_TAG = "input.val.md5"  # the lineage tag of the validation set a run selected on


@dataclass(frozen=True)
class ChampionDecision:
    """What :func:`register_if_best` did, and why (also the run's ``champion`` tag)."""

    moved: bool
    reason: str
    version: str | None = None

    def __bool__(self) -> bool:
        return self.moved


def _not_found(exc: Exception) -> bool:
    from mlflow.exceptions import MlflowException

    return isinstance(exc, MlflowException) and exc.error_code == "RESOURCE_DOES_NOT_EXIST"


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _champion_lock():
    """Serialise read-compare-set: two runs finishing at once must not both take the alias."""
    return file_lock(state_dir() / "champion.lock")


def _holder(client, name: str, alias: str) -> tuple[str, float, str | None] | None:
    """The alias holder's (run id, best_val_accuracy, validation md5); None when nothing holds
    it yet. Any other failure raises: it must never read as "no champion"."""
    try:
        holder = client.get_model_version_by_alias(name, alias)
    except Exception as exc:
        if _not_found(exc):  # no registered model, or no version carries the alias
            return None
        raise
    run = client.get_run(holder.run_id)  # a deleted or unreadable run raises: do not move
    if run.info.lifecycle_stage != "active":
        raise CotdistillError(f"its run {holder.run_id} is {run.info.lifecycle_stage}")
    score = run.data.metrics.get("best_val_accuracy")
    if score is None:
        raise CotdistillError(f"its run {holder.run_id} has no best_val_accuracy")
    return holder.run_id, score, run.data.tags.get(VALIDATION_TAG)


# Inputs that are datasets, by the MLflow context they are logged under.
DATASET_CONTEXT = {"curated": "training", "val": "validation", "test": "test"}


def log_datasets(tags: dict[str, str]) -> None:
    """Log the run's dataset inputs (from :func:`lineage_tags`) with MLflow's dataset tracking,
    each with DVC's hash as its digest, so the UI's "Datasets" column says which data a run
    used, in the same words as ``dvc.lock``."""
    import mlflow
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.meta_dataset import MetaDataset

    for name, context in DATASET_CONTEXT.items():
        if f"input.{name}" not in tags:
            continue
        path = Path(tags[f"input.{name}"])
        with warnings.catch_warnings():  # MLflow registers its local source class twice
            warnings.filterwarnings("ignore", message="The specified dataset source can be "
                                                      "interpreted in multiple ways")
            source = resolve_dataset_source(path.resolve().as_uri())
        mlflow.log_input(MetaDataset(source, name=path.as_posix(),
                                     digest=tags[f"input.{name}.md5"]), context=context)


def register_if_best(params: MlflowParams, run_id: str, log_model: Callable[[], str],
                     score: float, validation: str | None,
                     description: str = "") -> ChampionDecision:
    """Move the alias to this run's model when ``score`` (validation accuracy) beats the
    holder's, measured on the same validation set (``validation``: its md5). Never decided on
    test figures. Scores on different validation sets are not compared, and a holder that cannot
    be read (an MLflow error, a deleted run) keeps the alias: both are said, in the log and in
    the run's ``champion`` tag. ``log_model()`` logs the model to the run and returns its URI:
    called only for a model that takes the alias (with ``mlflow.log_models: all``, always).
    ``description`` (the model card) goes on the new version and on the registered model."""
    import mlflow

    client = mlflow.MlflowClient()
    name, alias = params.registered_model, params.alias
    with _champion_lock():
        try:
            holder = _holder(client, name, alias)
        except Exception as exc:
            decision = ChampionDecision(False, f"@{alias} stays where it is: its holder cannot "
                                               f"be read ({_first_line(exc)})")
        else:
            decision = _compare(holder, score, validation, alias)
        if decision.moved or params.log_models == "all":
            model_uri = log_model()
        if decision.moved:
            version = mlflow.register_model(model_uri, name)
            if description:
                client.update_model_version(name, version.version, description=description)
                client.update_registered_model(name, description=(
                    f"The best cotdistill student on validation carries @{alias}; each "
                    f"version's description is its model card. @{alias} now:\n\n{description}"))
            client.set_registered_model_alias(name, alias, version.version)
            decision = ChampionDecision(True, f"{decision.reason}: {name}@{alias} is version "
                                              f"{version.version}", version.version)
            client.set_tag(run_id, "registered", f"{name}@{alias} (version {version.version})")
    (log.info if decision.moved or "not better" in decision.reason else log.warning)(
        "champion: %s", decision.reason)
    client.set_tag(run_id, "champion", decision.reason)
    return decision


TEST_HEADING = "## Test"


def with_test_section(description: str, section: str) -> str:
    """A model card with its test section (``TEST_HEADING`` onwards) replaced by ``section``."""
    head = description.split(f"\n{TEST_HEADING}\n", 1)[0].rstrip("\n")
    return f"{head}\n\n{TEST_HEADING}\n\n{section.strip()}\n"


def annotate_versions(params: MlflowParams, training_run_id: str, section: str,
                      tags: dict[str, str]) -> list[str]:
    """Write an evaluation's figures into the model card of every registered version of the
    training run ``training_run_id`` (and of the registered model, where that version holds
    the alias): the card is written at training, before any test question is seen, so the test
    figures arrive later. Returns the versions changed."""
    import mlflow

    client = mlflow.MlflowClient()
    name, alias = params.registered_model, params.alias
    try:
        versions = client.search_model_versions(
            f"name = '{name}' and run_id = '{training_run_id}'")
    except Exception as exc:
        if _not_found(exc):
            return []
        raise
    changed = []
    for version in versions:
        card = with_test_section(version.description or "", section)
        client.update_model_version(name, version.version, description=card)
        for key, value in tags.items():
            client.set_model_version_tag(name, version.version, key, value)
        if alias in (version.aliases or []):
            model = client.get_registered_model(name)
            client.update_registered_model(name, description=with_test_section(
                model.description or "", section))
        changed.append(str(version.version))
    return changed


def _compare(holder: tuple[str, float, str | None] | None, score: float,
             validation: str | None, alias: str) -> ChampionDecision:
    if holder is None:
        return ChampionDecision(True, f"first holder of @{alias} (validation {score:.4f})")
    holder_run, best, holder_validation = holder
    if validation is None or holder_validation != validation:
        return ChampionDecision(False, (
            f"@{alias} stays with run {holder_run}: it was selected on another validation set "
            f"({holder_validation or 'none recorded'} vs {validation or 'none'}), so "
            f"{score:.4f} and {best:.4f} cannot be compared; move it by hand with "
            "`mlflow.MlflowClient().set_registered_model_alias` if this one should win"))
    if score <= best:
        return ChampionDecision(False, f"not better than run {holder_run} on the same "
                                       f"validation set ({score:.4f} <= {best:.4f})")
    return ChampionDecision(True, f"beats run {holder_run} on the same validation set "
                                  f"({score:.4f} > {best:.4f})")
