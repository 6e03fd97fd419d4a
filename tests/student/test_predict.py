"""`cotdistill predict`: a trained student answers new questions exactly as evaluation would.

One tiny real student is trained (a few steps, in a temporary repository with its own MLflow
SQLite store, registered as the champion), evaluated by the real evaluate stage, and then asked
the same questions through the command, from its models/ directory (in this process, where torch
is loaded already) and from the registry (in a process of its own, as a user runs it).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from support.cli import cotdistill, one_error_line
from support.teacher_runs import coin_questions
from typer.testing import CliRunner

from cotdistill.prompts import student_text
from cotdistill.methods.registry import METHODS
from cotdistill.records import CuratedExample, PreparedExample

# a student trained and evaluated for real, then asked again in-process and in fresh processes:
# about a minute, so CI's slow pass runs it; the end-to-end test runs `cotdistill predict` too
pytestmark = pytest.mark.slow

METHOD = "fine_tune_cot"
MODEL = f"models/tiny/{METHOD}"
CHAMPION = "models:/cotdistill-student@champion"
RATIONALE = "It is tails."


def _write(path: Path, records) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(r.model_dump_json() + "\n" for r in records))


@pytest.fixture(scope="module")
def project(tmp_path_factory, tiny_model) -> Path:
    """A repository with a trained, registered and evaluated tiny fine_tune_cot student."""
    from cotdistill.params import load_params
    from cotdistill.stages import evaluate, train

    root = tmp_path_factory.mktemp("predict")
    questions = coin_questions(6)
    _write(root / "data/curated/fine_tune_cot.jsonl", [
        CuratedExample(id=q.id, dataset="coin_flip", method=METHOD, source=f"{q.id}#0",
                       input=METHODS[METHOD].student_input(q.question),
                       target=f" {RATIONALE} --> no") for q in questions[:4]])
    _write(root / "data/prepared/val.jsonl",
           [q.model_copy(update={"split": "val"}) for q in questions[4:5]])
    _write(root / "data/prepared/test.jsonl",
           [q.model_copy(update={"split": "test"}) for q in questions[4:]])
    (root / "params.yaml").write_text(yaml.safe_dump({
        "prepare": {"datasets": ["coin_flip"]},
        "students": {"tiny": {"model": str(tiny_model)}},
        "train": {"students": ["tiny"], "methods": [METHOD], "hparams": {
            "max_steps": 20, "learning_rate": 1e-2, "lr_scheduler": "constant", "batch_size": 4,
            "deepspeed": "off", "select_every": 20, "select_max_new_tokens": 24}},
        "evaluate": {"max_new_tokens": 24, "batch_size": 4},
        "mlflow": {"tracking_uri": f"sqlite:///{root / 'mlflow.db'}"},
    }))
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        params = load_params("params.yaml")
        train.run(params, "tiny", METHOD)  # registers the champion (the only candidate)
        evaluate.run(params, "tiny", METHOD)
    return root


def _predict(project: Path, monkeypatch, *arguments: str):
    """The command run in this process (no second start of torch), from the project."""
    from cotdistill.cli import app

    monkeypatch.chdir(project)
    return CliRunner().invoke(app, ["predict", *arguments])


def _evaluated(project: Path) -> list[dict]:
    path = project / f"reports/eval/tiny/{METHOD}/predictions.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def _json_lines(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines()]


def test_predict_prints_the_rationale_and_the_answer_that_evaluation_read(project, monkeypatch):
    evaluated = _evaluated(project)[0]
    question = coin_questions(6)[4].question
    result = _predict(project, monkeypatch, MODEL, question)
    assert result.exit_code == 0, result.stderr
    assert evaluated["prediction"] == "no"  # the tiny student learnt the format
    assert result.stdout.splitlines() == [
        f"question: {question}",
        f"rationale: {evaluated['output'].rsplit('-->', 1)[0].strip()}",
        "answer: no",
    ]


def test_json_output_is_evaluates_output_and_reading_for_every_question(project, monkeypatch):
    evaluated = _evaluated(project)
    questions = [q.question for q in coin_questions(6)[4:]]
    result = _predict(project, monkeypatch, MODEL, *questions, "--json")
    assert result.exit_code == 0, result.stderr
    lines = _json_lines(result.stdout)
    assert [line["question"] for line in lines] == questions
    assert [line["output"] for line in lines] == [e["output"] for e in evaluated]
    assert [line["answer"] for line in lines] == [e["prediction"] for e in evaluated]
    assert all(set(line) == {"question", "output", "rationale", "answer"} for line in lines)
    assert lines[0]["rationale"] and "-->" not in lines[0]["rationale"]


def test_the_api_gives_what_generate_gives_on_evaluates_prompt(project, monkeypatch):
    from cotdistill import prompts
    from cotdistill.lm.generation import generate
    from cotdistill.params import load_params
    from cotdistill.student.predict import load_student, predict, task_of

    monkeypatch.chdir(project)
    params = load_params("params.yaml")
    model, tokenizer, method = load_student(MODEL, params)
    task = task_of(params, None, None)
    assert (method, task.dataset, task.answer_type) == (METHOD, "coin_flip", "yes_no")
    question = "A coin is heads up. Ann flips the coin. Is the coin still heads up?"
    [answer] = predict(model, tokenizer, method, [question], answer_type="yes_no", choices=None,
                       task=task.prompts, max_new_tokens=24)
    prompt = student_text(METHODS[METHOD].student_input(
        question, prompts.of(params.prepare.tasks(), "coin_flip")), None, False)[0]
    [expected] = generate(model, tokenizer, [prompt], max_new_tokens=24, batch_size=1)
    example = PreparedExample(id="x", dataset="coin_flip", split="test", question=question,
                              answer="no", answer_type="yes_no")
    assert answer.output == expected.text
    assert answer.answer == METHODS[METHOD].read(expected.text, example)


def test_the_registered_champion_answers_like_the_student_that_evaluation_ran(project):
    """models:/ resolves through the project's own SQLite store, in a process of its own."""
    questions = [q.question for q in coin_questions(6)[4:]]
    result = cotdistill(project, "predict", CHAMPION, *questions, "--json")
    assert result.returncode == 0, result.stderr
    lines = _json_lines(result.stdout)
    assert [line["output"] for line in lines] == [e["output"] for e in _evaluated(project)]
    assert [line["answer"] for line in lines] == ["no", "no"]


@pytest.mark.parametrize(("arguments", "expected"), [
    (["models/tiny/nothing", "q"], "error: models/tiny/nothing: no such model directory"),
    (["data", "q"], "error: data: not a trained student (no train_info.json"),
    ([MODEL, "q", "--dataset", "gsm8k"],
     "error: unknown dataset 'gsm8k' (prepare.datasets lists: coin_flip)"),
    ([MODEL, "q", "--choice", "yes"], "error: --choice is for multiple-choice tasks"),
    ([MODEL, "q", "--dataset", "aqua", "--params", "two.yaml"],
     "error: aqua is a multiple-choice task: give its options with --choice"),
    ([MODEL, "q", "--params", "two.yaml"], "error: give --dataset: prepare.datasets lists"),
    (["models:/cotdistill-student@nobody", "q"],
     "error: models:/cotdistill-student@nobody: MLflow cannot resolve it in sqlite:///"),
    (["models:/cotdistill-student@champion", "q", "--params", "elsewhere.yaml"],
     "error: models:/cotdistill-student@champion: no MLflow store at sqlite:///"),
])
def test_bad_input_is_one_error_line(project, arguments, expected):
    params = yaml.safe_load((project / "params.yaml").read_text())
    (project / "two.yaml").write_text(yaml.safe_dump(
        {**params, "prepare": {"datasets": ["coin_flip", "aqua"]}}))
    (project / "elsewhere.yaml").write_text(yaml.safe_dump(
        {**params, "mlflow": {"tracking_uri": f"sqlite:///{project / 'none.db'}"}}))
    assert one_error_line(cotdistill(project, "predict", *arguments)).startswith(expected)
    assert not (project / "none.db").exists()


PYFUNC_CALLS = """
import json, sys
import mlflow
mlflow.set_tracking_uri(sys.argv[1])
model = mlflow.pyfunc.load_model("models:/cotdistill-student@champion")
questions = json.loads(sys.argv[2])
calls = [model.predict(questions).to_dict("records") for _ in range(3)]
short = model.predict(questions[:1], params={"max_new_tokens": 2}).to_dict("records")
version = mlflow.MlflowClient().get_model_version_by_alias("cotdistill-student", "champion")
print(json.dumps({"calls": calls, "short": short, "card": version.description,
                  "inputs": [t.name for t in model.metadata.get_input_schema().input_types()],
                  "params": [p.name for p in model.metadata.get_params_schema().params]}))
"""


def test_the_champion_loaded_with_mlflow_pyfunc_answers_like_evaluation(project):
    """Someone who never saw this repository: a fresh process, the registry URI, plain
    mlflow.pyfunc. Three calls give the same correct answer, the prompt format applied by the
    model itself, no echo of the question; max_new_tokens and calculator are params."""
    import subprocess
    import sys

    questions = [q.question for q in coin_questions(6)[4:]]
    result = subprocess.run(
        [sys.executable, "-c", PYFUNC_CALLS, f"sqlite:///{project / 'mlflow.db'}",
         json.dumps(questions)], cwd=project.parent, capture_output=True, text=True,
        timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout.splitlines()[-1])
    evaluated = _evaluated(project)
    first, *others = found["calls"]
    assert all(call == first for call in others)
    assert [row["output"] for row in first] == [e["output"] for e in evaluated]
    assert [row["answer"] for row in first] == ["no", "no"]
    assert all(row["rationale"] and questions[0] not in row["output"] for row in first)
    assert found["inputs"] == ["string"] and found["params"] == ["max_new_tokens", "calculator"]
    assert found["short"][0]["answer"] is None  # cut after two tokens: no answer yet
    card = found["card"]  # the model card on the registered version
    assert card.startswith("# tiny / fine_tune_cot") and "Validation accuracy: 100.0% on 1" in card
    # written at training, the card gets its test figures from the evaluate stage that followed
    assert "\n## Test\n" in card and "Not evaluated yet" not in card
    assert "- coin_flip: 100.0% (2 of 2; Wilson 95% [34.2, 100.0]), 0 without an answer" in card


def test_the_champion_served_by_mlflow_models_serve_answers_the_same(project):
    import os
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    mlflow_cli = Path(sys.executable).parent / "mlflow"
    env = dict(os.environ, MLFLOW_TRACKING_URI=f"sqlite:///{project / 'mlflow.db'}",
               HF_HUB_OFFLINE="1",  # the environment's own uvicorn, as in an activated venv
               PATH=f"{mlflow_cli.parent}{os.pathsep}{os.environ.get('PATH', '')}")
    server = subprocess.Popen(
        [str(mlflow_cli), "models", "serve", "-m", CHAMPION, "--env-manager", "local",
         "--host", "127.0.0.1", "--port", str(port)], cwd=project, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        question = coin_questions(6)[4].question
        body = json.dumps({"inputs": [question]}).encode()
        answers = []
        deadline = time.monotonic() + 180
        while len(answers) < 3:
            try:
                request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations",
                                                 data=body,
                                                 headers={"Content-Type": "application/json"})
                with urllib.request.urlopen(request, timeout=60) as response:
                    answers.append(json.loads(response.read())["predictions"][0])
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, \
                    server.stderr.read() if server.poll() is not None else "no answer in time"
                time.sleep(1)
        assert all(answer == answers[0] for answer in answers)
        assert answers[0]["answer"] == "no"
        assert answers[0]["output"] == _evaluated(project)[0]["output"]
    finally:
        server.terminate()
        server.wait(timeout=30)
