"""The evaluate stage on a real (tiny, taught) student: the calculator counts and the few-shot
evaluation (``evaluate.few_shot``), each written where the pipeline declares them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from cotdistill.records import ClusteredExemplar, PreparedExample

QUESTIONS = ["Add", "Two", "Cut"]  # the taught student's prompts, less " ###"


def _project(root: Path, arithmetic_student, few_shot: int | None) -> Path:
    model, tokenizer = arithmetic_student
    folder = root / "models/tiny/fine_tune_cot_calc"
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    (folder / "train_info.json").write_text(json.dumps({"method": "fine_tune_cot_calc"}))
    tests = [PreparedExample(id=f"t{i}", dataset="multiarith", split="test", question=q,
                             answer="42", answer_type="number") for i, q in enumerate(QUESTIONS)]
    (root / "data/prepared").mkdir(parents=True)
    (root / "data/prepared/test.jsonl").write_text(
        "".join(t.model_dump_json() + "\n" for t in tests))
    held_out = PreparedExample(id="h0", dataset="addsub", split="test", question="Two",
                               answer="4", answer_type="number")
    (root / "data/prepared/transfer.jsonl").write_text(held_out.model_dump_json() + "\n")
    shot = ClusteredExemplar(dataset="multiarith", cluster=0, rank=0, distance=0.1, id="x1",
                             question="Pay", rationale="$4.50 + $3 = $9 in all.",
                             answer="7.5", source="x1#0")
    (root / "data/exemplars.jsonl").write_text(shot.model_dump_json() + "\n")
    (root / "params.yaml").write_text(yaml.safe_dump({
        "prepare": {"datasets": ["multiarith"]},
        "students": {"tiny": {"model": str(folder)}},
        "train": {"students": ["tiny"], "methods": ["fine_tune_cot_calc"]},
        "evaluate": {"max_new_tokens": 48, "batch_size": 4, "few_shot": few_shot},
        "mlflow": {"tracking_uri": f"sqlite:///{root / 'mlflow.db'}"},
    }))
    return root


def _evaluate(root: Path, monkeypatch) -> tuple[dict, list[dict], list[dict]]:
    from cotdistill.params import load_params
    from cotdistill.stages import evaluate

    monkeypatch.chdir(root)
    evaluate.run(load_params("params.yaml"), "tiny", "fine_tune_cot_calc")
    folder = root / "reports/eval/tiny/fine_tune_cot_calc"

    def lines(name: str) -> list[dict]:
        return [json.loads(line) for line in (folder / name).read_text().splitlines()]

    return (json.loads((folder / "metrics.json").read_text()), lines("predictions.jsonl"),
            lines("predictions_few_shot.jsonl"), lines("predictions_transfer.jsonl"))


@pytest.mark.parametrize("few_shot", [None, 1])
def test_evaluate_counts_the_calculators_work_and_runs_few_shot_when_asked(
        tmp_path, arithmetic_student, monkeypatch, few_shot):
    root = _project(tmp_path, arithmetic_student, few_shot)
    metrics, zero, shots, held_out = _evaluate(root, monkeypatch)
    assert metrics["calculator_questions"] == 3  # the test questions' (held-out ones apart)
    assert metrics["calculator_results"] >= 2  # 12 + 30 and 2 + 2; 7 / 0 is refused
    assert zero[0]["output"].startswith(" 12 + 30 = 42 ")
    assert zero[1]["output"].startswith(" 2 + 2 = 4") and not zero[1]["output"][10].isdigit()
    if few_shot is None:
        assert "few_shot" not in metrics and shots == []
    else:
        assert metrics["few_shot"]["n"] == 3 and metrics["few_shot"]["shots"] == 1
        assert [p["id"] for p in shots] == ["t0", "t1", "t2"]


def test_evaluate_scores_the_held_out_task_apart_from_the_test_split(
        tmp_path, arithmetic_student, monkeypatch):
    """data/prepared/transfer.jsonl's questions are generated in the student's format, apart
    from the test questions, and scored apart: they change no test figure."""
    root = _project(tmp_path, arithmetic_student, None)
    metrics, zero, _, held_out = _evaluate(root, monkeypatch)
    assert metrics["n"] == 3 and set(metrics["datasets"]) == {"multiarith"}
    assert [p["id"] for p in held_out] == ["h0"]
    # the same question in the same format gives the same output, read and scored alike
    assert held_out[0]["output"] == zero[1]["output"]
    assert held_out[0]["output"].startswith(" 2 + 2 = 4")
    figures = metrics["transfer"]["addsub"]
    assert figures["n"] == 1 and figures["accuracy"] == float(zero[1]["correct"])
    assert figures["unanswered"] == int(zero[1]["prediction"] is None)


@pytest.mark.parametrize(("flag", "written"), [(None, "42"), ("--no-calculator", "97"),
                                               ("--calculator", "42")])
def test_predict_decodes_with_the_calculator_as_trained_unless_told(
        tmp_path, arithmetic_student, monkeypatch, flag, written):
    from typer.testing import CliRunner

    from cotdistill.cli import app

    root = _project(tmp_path, arithmetic_student, None)
    monkeypatch.chdir(root)
    arguments = ["predict", "models/tiny/fine_tune_cot_calc", "Add", "--json",
                 "--max-new-tokens", "48", *([flag] if flag else [])]
    result = CliRunner().invoke(app, arguments)
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer["output"].startswith(f" 12 + 30 = {written}")
