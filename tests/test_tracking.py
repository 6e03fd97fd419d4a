"""The champion: the registered model's alias moves only to a run whose validation accuracy
beats the run that holds it on the same validation set (never decided on test figures), and
never because MLflow failed to answer. A real MLflow SQLite store, real logged models (a tiny
pyfunc: the comparison does not depend on the flavour)."""

from __future__ import annotations

import pytest

from cotdistill import tracking
from cotdistill.params import MlflowParams


@pytest.fixture
def store(tmp_path, monkeypatch) -> MlflowParams:
    monkeypatch.chdir(tmp_path)
    params = MlflowParams(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", experiment="t")
    tracking.use_experiment(params)
    return params


VAL = "0" * 32  # the md5 of the validation set the runs below selected on


def _logged_run(best_val_accuracy: float, validation: str = VAL) -> tuple[str, str]:
    import mlflow

    class Echo(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):
            return model_input

    with mlflow.start_run(tags={tracking.VALIDATION_TAG: validation}) as run:
        mlflow.log_metric("best_val_accuracy", best_val_accuracy)
        logged = mlflow.pyfunc.log_model(name="model", python_model=Echo(), pip_requirements=[])
    return run.info.run_id, logged.model_uri


def _champion(params: MlflowParams) -> tuple[int, str]:
    import mlflow

    version = mlflow.MlflowClient().get_model_version_by_alias(params.registered_model,
                                                               params.alias)
    return int(version.version), version.run_id


def test_the_alias_moves_only_to_a_strictly_better_validation_score(store):
    first, first_uri = _logged_run(0.5)
    assert tracking.register_if_best(store, first, lambda: first_uri, 0.5, VAL)  # the first
    assert _champion(store) == (1, first)

    worse, worse_uri = _logged_run(0.4)
    assert not tracking.register_if_best(store, worse, lambda: worse_uri, 0.4, VAL)
    tied, tied_uri = _logged_run(0.5)
    assert not tracking.register_if_best(store, tied, lambda: tied_uri, 0.5, VAL)  # a tie
    assert _champion(store) == (1, first)

    better, better_uri = _logged_run(0.7)
    assert tracking.register_if_best(store, better, lambda: better_uri, 0.7, VAL)
    assert _champion(store) == (2, better)

    import mlflow
    tags = mlflow.MlflowClient().get_run(better).data.tags
    assert tags["registered"] == f"{store.registered_model}@{store.alias} (version 2)"
    assert "registered" not in mlflow.MlflowClient().get_run(worse).data.tags


def test_the_comparison_reads_the_holders_recorded_score_not_the_callers(store):
    """A score passed in for the holder is ignored: what counts is the metric its run logged."""
    holder, holder_uri = _logged_run(0.9)
    assert tracking.register_if_best(store, holder, lambda: holder_uri, 0.1, VAL)  # the first
    challenger, challenger_uri = _logged_run(0.5)
    assert not tracking.register_if_best(store, challenger, lambda: challenger_uri, 0.5, VAL)
    assert _champion(store) == (1, holder)


def _tags(run_id: str) -> dict[str, str]:
    import mlflow

    return mlflow.MlflowClient().get_run(run_id).data.tags


def test_scores_on_different_validation_sets_are_not_compared(store):
    holder, holder_uri = _logged_run(0.3)
    assert tracking.register_if_best(store, holder, lambda: holder_uri, 0.3, VAL)
    other, other_uri = _logged_run(0.9, validation="1" * 32)
    decision = tracking.register_if_best(store, other, lambda: other_uri, 0.9, "1" * 32)
    assert not decision
    assert _champion(store) == (1, holder)
    assert "another validation set" in _tags(other)["champion"]


def test_a_holder_whose_run_was_deleted_keeps_the_alias(store):
    """After `mlflow gc` (or a deleted run) the holder's score cannot be read: that is not
    "no champion", and a 0.0 run must not take the alias."""
    import mlflow

    holder, holder_uri = _logged_run(0.8)
    assert tracking.register_if_best(store, holder, lambda: holder_uri, 0.8, VAL)
    mlflow.MlflowClient().delete_run(holder)
    weak, weak_uri = _logged_run(0.0)
    assert not tracking.register_if_best(store, weak, lambda: weak_uri, 0.0, VAL)
    assert _champion(store) == (1, holder)
    assert "cannot be read" in _tags(weak)["champion"]


def test_a_failing_registry_call_never_moves_the_alias(store, monkeypatch):
    import mlflow
    from mlflow.exceptions import MlflowException

    holder, holder_uri = _logged_run(0.2)
    assert tracking.register_if_best(store, holder, lambda: holder_uri, 0.2, VAL)

    def unavailable(self, name, alias):
        raise MlflowException("database is locked", error_code="INTERNAL_ERROR")

    monkeypatch.setattr(mlflow.MlflowClient, "get_model_version_by_alias", unavailable)
    better, better_uri = _logged_run(0.9)
    decision = tracking.register_if_best(store, better, lambda: better_uri, 0.9, VAL)
    assert not decision and "database is locked" in decision.reason
    monkeypatch.undo()
    assert _champion(store) == (1, holder)


def test_the_comparison_waits_for_another_run_holding_the_champion_lock(store):
    """Read-compare-set runs under a lock, so two runs finishing at once cannot both win."""
    import fcntl
    import threading

    first, first_uri = _logged_run(0.5)
    lock = tracking.state_dir() / "champion.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        worker = threading.Thread(
            target=tracking.register_if_best,
            args=(store, first, lambda: first_uri, 0.5, VAL))
        worker.start()
        worker.join(timeout=1.0)
        assert worker.is_alive()  # blocked on the lock
        fcntl.flock(handle, fcntl.LOCK_UN)
    worker.join(timeout=60)
    assert not worker.is_alive()
    assert _champion(store) == (1, first)


def test_the_experiment_opens_on_the_runs_table_unless_the_user_chose_otherwise(store):
    """MLflow 3's UI opens an experiment without a kind on its GenAI overview."""
    import mlflow

    experiment = mlflow.get_experiment_by_name(store.experiment)
    assert experiment.tags[tracking.EXPERIMENT_KIND_TAG] == "custom_model_development"
    mlflow.MlflowClient().set_experiment_tag(experiment.experiment_id,
                                             tracking.EXPERIMENT_KIND_TAG, "genai_development")
    tracking.use_experiment(store)
    assert mlflow.get_experiment_by_name(store.experiment).tags[
        tracking.EXPERIMENT_KIND_TAG] == "genai_development"


def test_runs_made_under_dvc_exp_run_name_their_experiment(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert "dvc.exp_name" not in tracking.lineage_tags({})
    monkeypatch.setenv("DVC_EXP_NAME", "sunny-kite")
    monkeypatch.setenv("DVC_EXP_BASELINE_REV", "a" * 40)
    tags = tracking.lineage_tags({})
    assert (tags["dvc.exp_name"], tags["dvc.baseline_rev"]) == ("sunny-kite", "a" * 40)


def test_a_directorys_hash_is_the_one_dvc_records_for_it(tmp_path):
    """The input.*.md5 tags and dataset digests must read as dvc.lock does: checked against
    `dvc add` of the same directory in a real DVC repository."""
    import subprocess

    import yaml
    from support.repository import dvc

    repo = tmp_path / "repo"
    (repo / "d/sub").mkdir(parents=True)
    (repo / "d/x.txt").write_text("a\n")
    (repo / "d/sub/y.txt").write_text("bb\n")
    (repo / "f.bin").write_bytes(b"\x00\r\n\xff")
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    for args in (("init", "-q"), ("add", "-q", "d", "f.bin")):
        assert dvc(repo, *args).returncode == 0
    for name in ("d", "f.bin"):
        (out,) = yaml.safe_load((repo / f"{name}.dvc").read_text())["outs"]
        assert tracking.md5(repo / name) == out["md5"]


def test_an_unreachable_tracking_server_is_one_line_within_seconds(tmp_path, monkeypatch):
    """Nothing listens on port 9: MLflow's default retries would take minutes."""
    import time

    from cotdistill.errors import CotdistillError

    monkeypatch.chdir(tmp_path)
    began = time.monotonic()
    with pytest.raises(CotdistillError, match=r"tracking store http://127.0.0.1:9 cannot be"):
        tracking.use_experiment(MlflowParams(tracking_uri="http://127.0.0.1:9"))
    assert time.monotonic() - began < 15


def test_only_the_model_that_takes_the_alias_is_logged_unless_all_are_asked_for(store):
    """A student is 0.5 GB: by default MLflow keeps the champions only."""
    logged = []

    def log(uri: str):
        return lambda: logged.append(uri) or uri

    holder, holder_uri = _logged_run(0.6)
    assert tracking.register_if_best(store, holder, log(holder_uri), 0.6, VAL)
    worse, worse_uri = _logged_run(0.1)
    assert not tracking.register_if_best(store, worse, log(worse_uri), 0.1, VAL)
    assert logged == [holder_uri]
    everything = store.model_copy(update={"log_models": "all"})
    assert not tracking.register_if_best(everything, worse, log(worse_uri), 0.1, VAL)
    assert logged == [holder_uri, worse_uri]


def test_a_run_left_running_by_a_killed_process_is_marked_killed_by_the_next_stage(store):
    import os
    import subprocess
    import sys

    import mlflow

    from cotdistill import atomic

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    client = mlflow.MlflowClient()
    experiment = mlflow.get_experiment_by_name(store.experiment).experiment_id

    def left_running(pid: str) -> str:
        return client.create_run(experiment, tags={"cotdistill.host": atomic.process_host(),
                                                   "cotdistill.pid": pid}).info.run_id

    orphan, live = left_running(gone), left_running(str(os.getpid()))
    tracking.use_experiment(store)  # what every stage that logs does first
    assert client.get_run(orphan).info.status == "KILLED"
    assert client.get_run(live).info.status == "RUNNING"
    assert tracking.lineage_tags({})["cotdistill.pid"] == str(os.getpid())


def test_the_card_says_untested_until_an_evaluation_writes_its_test_section():
    from cotdistill.student.evaluation import NOT_YET_TESTED, test_section
    from cotdistill.tracking import with_test_section

    card = with_test_section("# tiny / answer_only\n\nValidation accuracy: 50.0%", NOT_YET_TESTED)
    assert card.endswith(f"## Test\n\n{NOT_YET_TESTED}\n")
    metrics = {"datasets": {"coin_flip": {"accuracy": 0.75, "n": 4, "unanswered": 1}}}
    tested = with_test_section(card, test_section(metrics, "evaluate run r1"))
    assert tested.count("## Test") == 1 and NOT_YET_TESTED not in tested
    assert tested.startswith("# tiny / answer_only\n\nValidation accuracy: 50.0%\n\n## Test")
    assert "- coin_flip: 75.0% (3 of 4; Wilson 95% [30.1, 95.4]), 1 without an answer" in tested



def test_a_store_that_can_only_be_read_is_one_line_before_any_work(store, tmp_path, caplog):
    """An immutable mlflow.db (chattr +i: even root cannot write it): reading works, so only a
    real write finds it, and that write comes before the stage's work."""
    import subprocess

    from cotdistill.errors import CotdistillError

    database = tmp_path / "mlflow.db"
    if subprocess.run(["chattr", "+i", str(database)], capture_output=True).returncode != 0:
        pytest.skip("chattr +i is not available here (not root, or the filesystem lacks it)")
    try:
        with pytest.raises(CotdistillError) as caught:
            tracking.use_experiment(store)
    finally:
        subprocess.run(["chattr", "-i", str(database)], check=True)
    message = str(caught.value)
    assert message.startswith(f"mlflow: the tracking store sqlite:///{database} cannot be used")
    assert "\n" not in message and "sqlite3.OperationalError" in message
    assert not [r for r in caplog.records if r.levelno >= 40]  # no store traceback above it
