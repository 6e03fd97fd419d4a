"""An evaluation's record: files under reports/eval/ and an MLflow run of its own, in a real
SQLite store, whose times in the UI are those of the work, not of the logging."""

from __future__ import annotations

import json
import time

from cotdistill import tracking
from cotdistill.params import MlflowParams, Params
from cotdistill.records import Prediction
from cotdistill.student.evaluation import record_results


def _prediction(index: int, correct: bool, prediction: str | None) -> Prediction:
    return Prediction(id=f"q{index}", dataset="coin_flip", student="tiny", method="zero_shot",
                      output="... --> no", prediction=prediction, answer="no", correct=correct)


def test_the_evaluation_run_starts_when_the_work_started_and_counts_unanswered(tmp_path,
                                                                                monkeypatch):
    import mlflow

    monkeypatch.chdir(tmp_path)
    params = Params(mlflow=MlflowParams(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
                                        experiment="t"))
    started = time.time() - 120  # two minutes of generation before the results came
    predictions = [_prediction(0, True, "no"), _prediction(1, False, "yes"),
                   _prediction(2, False, None)]
    test = tmp_path / "data/prepared/test.jsonl"
    test.parent.mkdir(parents=True)
    test.write_text('{"id": "q0"}\n')
    metrics = record_results(params, "tiny", "zero_shot", predictions, started=started,
                             training_run_id=None, lineage={"test": test}, run_params={"k": 1})
    assert (metrics["n"], metrics["unanswered"]) == (3, 1)
    written = json.loads((tmp_path / "reports/eval/tiny/zero_shot/metrics.json").read_text())
    assert written["accuracy"] == metrics["accuracy"] == 1 / 3

    (run,) = mlflow.search_runs(experiment_names=["t"], output_format="list")
    assert run.info.start_time == int(started * 1000)
    assert (run.info.end_time - run.info.start_time) / 1000 >= 120
    assert run.info.status == "FINISHED"
    assert run.data.metrics["test_unanswered_share"] == 1 / 3
    # the test split is a tracked dataset input whose digest is the hash DVC gives it
    (logged,) = run.inputs.dataset_inputs
    assert logged.dataset.digest == tracking.md5(test) == run.data.tags["input.test.md5"]
    assert [tag.value for tag in logged.tags if tag.key == "mlflow.data.context"] == ["test"]
