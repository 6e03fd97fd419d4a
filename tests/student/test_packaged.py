"""The student as MLflow holds it takes the calculator as a param: a fine_tune_cot_calc student
loaded with ``mlflow.pyfunc`` decodes number answers with it by default, and a caller can turn
it off (or on, for another method's student)."""

from __future__ import annotations

import dataclasses

import mlflow
import pytest

from cotdistill.prompts import DEFAULT
from cotdistill.student.packaged import Card, log_student


@pytest.fixture(scope="module")
def logged(arithmetic_student, tmp_path_factory):
    """The taught arithmetic student, logged twice to a SQLite MLflow store: as a
    fine_tune_cot_calc student and as a fine_tune_cot one; (uri by method)."""
    root = tmp_path_factory.mktemp("packaged")
    model, tokenizer = arithmetic_student
    model.save_pretrained(root / "student")
    tokenizer.save_pretrained(root / "student")
    mlflow.set_tracking_uri(f"sqlite:///{root / 'mlflow.db'}")
    uris = {}
    try:
        for method in ("fine_tune_cot_calc", "fine_tune_cot"):
            card = Card(student="tiny", student_model="tiny", method=method,
                        tasks={"multiarith": {"answer_type": "number",
                                              "prompts": dataclasses.asdict(DEFAULT)}},
                        max_new_tokens=48, teacher="text-davinci-002", example="Add")
            with mlflow.start_run():
                uris[method] = log_student(root / "student", card).model_uri
    finally:
        mlflow.set_tracking_uri(None)
    return root, uris


def _output(logged, method: str, params: dict | None = None) -> str:
    root, uris = logged
    mlflow.set_tracking_uri(f"sqlite:///{root / 'mlflow.db'}")
    try:
        model = mlflow.pyfunc.load_model(uris[method])
        return model.predict(["Add"], params=params)["output"][0]
    finally:
        mlflow.set_tracking_uri(None)


def test_the_calculator_is_a_param_whose_default_is_the_methods(logged):
    root, uris = logged
    mlflow.set_tracking_uri(f"sqlite:///{root / 'mlflow.db'}")
    try:
        schema = {p.name: p.default for p in
                  mlflow.models.get_model_info(uris["fine_tune_cot_calc"]).signature.params}
        plain = {p.name: p.default for p in
                 mlflow.models.get_model_info(uris["fine_tune_cot"]).signature.params}
    finally:
        mlflow.set_tracking_uri(None)
    assert schema == {"max_new_tokens": 48, "calculator": True}
    assert plain["calculator"] is False


def test_a_calculator_student_loaded_with_pyfunc_decodes_with_it(logged):
    assert _output(logged, "fine_tune_cot_calc").startswith(" 12 + 30 = 42")
    assert _output(logged, "fine_tune_cot_calc", {"calculator": False}).startswith(
        " 12 + 30 = 97")


def test_another_methods_student_takes_the_calculator_when_asked(logged):
    assert _output(logged, "fine_tune_cot").startswith(" 12 + 30 = 97")
    assert _output(logged, "fine_tune_cot", {"calculator": True}).startswith(" 12 + 30 = 42")
