"""The champion: the registered model's alias moves only to a run whose validation accuracy
beats the run that holds it (never decided on test figures). A real MLflow SQLite store, real
logged models (a tiny pyfunc: the comparison does not depend on the flavour)."""

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


def _logged_run(best_val_accuracy: float) -> tuple[str, str]:
    import mlflow

    class Echo(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):
            return model_input

    with mlflow.start_run() as run:
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
    assert tracking.register_if_best(store, first, first_uri, 0.5)  # the first run holds it
    assert _champion(store) == (1, first)

    worse, worse_uri = _logged_run(0.4)
    assert not tracking.register_if_best(store, worse, worse_uri, 0.4)
    tied, tied_uri = _logged_run(0.5)
    assert not tracking.register_if_best(store, tied, tied_uri, 0.5)  # a tie keeps the holder
    assert _champion(store) == (1, first)

    better, better_uri = _logged_run(0.7)
    assert tracking.register_if_best(store, better, better_uri, 0.7)
    assert _champion(store) == (2, better)

    import mlflow
    tags = mlflow.MlflowClient().get_run(better).data.tags
    assert tags["registered"] == f"{store.registered_model}@{store.alias} (version 2)"
    assert "registered" not in mlflow.MlflowClient().get_run(worse).data.tags


def test_the_comparison_reads_the_holders_recorded_score_not_the_callers(store):
    """A score passed in for the holder is ignored: what counts is the metric its run logged."""
    holder, holder_uri = _logged_run(0.9)
    assert tracking.register_if_best(store, holder, holder_uri, 0.1)  # first: registered
    challenger, challenger_uri = _logged_run(0.5)
    assert not tracking.register_if_best(store, challenger, challenger_uri, 0.5)
    assert _champion(store) == (1, holder)
