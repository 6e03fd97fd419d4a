"""The Socratic stages with nothing to learn from record why, and the pipeline goes on."""

from __future__ import annotations

import json

from cotdistill import layout
from cotdistill.jsonl import write_records
from cotdistill.params import Params
from cotdistill.records import PreparedExample
from cotdistill.stages import socratic_evaluate, socratic_train


def test_no_correct_decomposition_means_no_student_and_a_reason(tmp_path, monkeypatch,
                                                                tiny_model):
    monkeypatch.chdir(tmp_path)
    question = PreparedExample(id="coin_flip-00000", dataset="coin_flip", split="train",
                               question="A coin is heads up. Ann flips it. Still heads up?",
                               answer="no", answer_type="yes_no")
    write_records(layout.prepared("train"), [question])
    write_records(layout.prepared("test"), [question.model_copy(update={"split": "test"})])
    write_records(layout.DECOMPOSITIONS, [])
    params = Params.model_validate({"students": {"tiny": {"model": str(tiny_model)}},
                                    "train": {"students": ["tiny"]},
                                    "socratic": {"qg_student": "tiny", "qa_student": "tiny"},
                                    "mlflow": {"tracking_uri": f"sqlite:///{tmp_path}/m.db"}})
    for role in ("qg", "qa"):
        result = socratic_train.run(params, "tiny", role)
        assert result.steps == 0
        info = json.loads((layout.model_dir("tiny", f"socratic_{role}") / layout.TRAIN_INFO)
                          .read_text())
        assert "no correct decompositions" in info["skipped"]
        assert not list(layout.model_dir("tiny", f"socratic_{role}").glob("*.safetensors"))
    metrics = socratic_evaluate.run(params, "tiny")
    assert "no correct decompositions" in metrics["skipped"]
    assert (layout.eval_reports("tiny", "socratic") / "predictions.jsonl").read_text() == ""
