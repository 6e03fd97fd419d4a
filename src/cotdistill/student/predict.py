"""Answering new questions with a trained student, exactly as ``evaluate`` would.

The student reads the very prompt that evaluation gives it (the task's student format, the
method's marker, the family's input form), decodes greedily through the same
:func:`cotdistill.lm.generation.generate`, and its answer is read by the method's own reader, so
a prediction here equals the one evaluation would have recorded for the same question.

A student is a ``models/<student>/<method>/`` directory written by ``train`` (its
``train_info.json`` names the method) or a ``models:/`` URI of the MLflow registry (the run that
logged the model names the method), e.g. ``models:/cotdistill-student@champion``.

Usage: ``cotdistill predict models/smollm2-135m/fine_tune_cot "A coin is heads up. ..."``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cotdistill import layout, prompts, tracking
from cotdistill.catalog import DATASETS
from cotdistill.datasets.published import with_choices
from cotdistill.errors import CotdistillError
from cotdistill.methods.registry import METHODS
from cotdistill.params import Params
from cotdistill.prompts import ANSWER_SEPARATOR, TaskPrompts, student_text
from cotdistill.records import PreparedExample

MLFLOW_SCHEME = "models:/"


@dataclass(frozen=True)
class Answer:
    """One question's prediction: the raw output, and what the method's reader makes of it."""

    question: str  # as the student read it (choice tasks: with their options)
    output: str  # the generated text, as evaluate records it
    rationale: str | None  # None for students that state only an answer
    answer: str | None  # normalised like evaluate's predictions; None: the student gave none

    def as_text(self) -> str:
        """What ``cotdistill predict`` prints: the question, the rationale, the answer."""
        lines = [f"question: {self.question}"]
        if self.rationale is not None:
            lines.append(f"rationale: {self.rationale}")
        lines.append(f"answer: {self.answer if self.answer is not None else '(none)'}")
        return "\n".join(lines)

    def as_json(self) -> str:
        """What ``cotdistill predict --json`` prints: one object per line."""
        return json.dumps(dataclasses.asdict(self))


@dataclass(frozen=True)
class Task:
    """What the dataset decides for a question: how its answer is read and how it is prompted."""

    dataset: str
    answer_type: str
    choices: list[str] | None
    prompts: TaskPrompts


def task_of(params: Params, dataset: str | None, choices: list[str] | None) -> Task:
    """The task a question belongs to, from ``prepare.datasets`` (the only one there when
    ``dataset`` is None), with its options checked against the task's answer type."""
    entries = {entry.name: entry for entry in params.prepare.entries}
    listed = ", ".join(entries)
    if dataset is None:
        if len(entries) != 1:
            raise CotdistillError(f"give --dataset: prepare.datasets lists several ({listed})")
        dataset = next(iter(entries))
    if dataset not in entries:
        raise CotdistillError(f"unknown dataset {dataset!r} (prepare.datasets lists: {listed})")
    entry = entries[dataset]
    answer_type = entry.answer_type or DATASETS[entry.name].answer_type
    if answer_type == "choice" and not choices:
        raise CotdistillError(f"{dataset} is a multiple-choice task: give its options with "
                              f"--choice, once per option")
    if answer_type != "choice" and choices:
        raise CotdistillError(f"--choice is for multiple-choice tasks; {dataset}'s answers are "
                              f"{answer_type}")
    return Task(dataset, answer_type, list(choices) if choices else None,
                prompts.of(params.prepare.tasks(), dataset))


def load_student(ref: str, params: Params):
    """(model, tokenizer, method) of a trained student: a ``models/`` directory or a
    ``models:/`` URI. The model is loaded as evaluate loads it (left padding, a pad token)."""
    from cotdistill.lm.store import load_causal_lm

    if ref.startswith(MLFLOW_SCHEME):
        return _load_registered(ref, params)
    path = Path(ref)
    if not path.is_dir():
        raise CotdistillError(f"{ref}: no such model directory (give models/STUDENT/METHOD "
                              f"or a models:/ URI)")
    info = layout.read_train_info(path, missing=(
        f"{ref}: not a trained student (no {layout.TRAIN_INFO}; run `cotdistill train` first)"))
    # train writes the method; a directory's name is its method too (models/<student>/<method>)
    method = _known_method(info.get("method") or path.resolve().name, ref)
    model, tokenizer = load_causal_lm(str(path), ref, for_generation=True)
    return model, tokenizer, method


def predict(model, tokenizer, method: str, questions: list[str], *, answer_type: str,
            choices: list[str] | None, task: TaskPrompts, max_new_tokens: int,
            batch_size: int = 1, calculator: bool | None = None) -> list[Answer]:
    """Answer ``questions`` (choice tasks: their stems; ``choices`` are appended as prepare
    appends them). Greedy; with evaluate's ``batch_size`` the batches, and so the outputs, are
    evaluate's own, the calculator included where the method decodes with it. ``calculator``
    True / False turns it on or off whatever the method (it only ever acts on number
    answers); None: the method's own choice."""
    from cotdistill.lm.generation import generate

    chosen = METHODS[method]
    encoder_decoder = bool(model.config.is_encoder_decoder)
    shown = [with_choices(q, choices) if choices else q for q in questions]
    inputs = [student_text(chosen.student_input(q, task), None, encoder_decoder)[0]
              for q in shown]
    generated = generate(model, tokenizer, inputs, max_new_tokens=max_new_tokens,
                         batch_size=batch_size, desc="predict",
                         calculator=chosen.calculates(answer_type) if calculator is None
                         else calculator and answer_type == "number")
    results = []
    for index, (question, output) in enumerate(zip(shown, (g.text for g in generated),
                                                   strict=True)):
        example = PreparedExample(id=f"predict-{index}", dataset="", split="test",
                                  question=question, answer="", answer_type=answer_type,
                                  choices=choices)
        results.append(Answer(question=question, output=output,
                              rationale=_rationale(output) if chosen.answer_after_marker else None,
                              answer=chosen.read(output, example)))
    return results


def _rationale(output: str) -> str:
    """The reasoning before the last ``-->`` (all of it when the student never got there)."""
    marker = ANSWER_SEPARATOR.strip()
    return (output.rsplit(marker, 1)[0] if marker in output else output).strip()


def _known_method(method: str, ref: str) -> str:
    if method not in METHODS:
        raise CotdistillError(f"{ref}: trained with method {method!r}, which predict does not "
                              f"run (known: {', '.join(METHODS)})")
    return method


def _load_registered(ref: str, params: Params):
    """A registered student: its files from MLflow, its method from the run that logged it."""
    uri = tracking.tracking_uri(params.mlflow)
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
        # MLflow would create an empty store and then find nothing in it
        raise CotdistillError(f"{ref}: no MLflow store at {uri} (nothing logged there yet; "
                              f"set mlflow.tracking_uri)")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    import mlflow
    from mlflow.models import Model

    from cotdistill.lm.store import load_causal_lm

    for name in ("alembic", "mlflow.store.db.utils"):  # noisy schema-migration logs
        logging.getLogger(name).setLevel(logging.WARNING)
    mlflow.set_tracking_uri(uri)
    with tempfile.TemporaryDirectory(prefix="cotdistill-predict-") as scratch:
        try:
            root = Path(mlflow.artifacts.download_artifacts(artifact_uri=ref, dst_path=scratch))
            logged = Model.load(root / "MLmodel")
            pyfunc = logged.flavors.get("python_function", {})
            card = pyfunc.get("config") or {}
            run = None
            if not card.get("method") and logged.run_id:  # logged before the model had a card
                run = mlflow.MlflowClient().get_run(logged.run_id)
        except Exception as exc:  # noqa: BLE001 - MLflow, SQLAlchemy and HTTP errors alike
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise CotdistillError(f"{ref}: MLflow cannot resolve it in {uri} ({reason})") from None
        run_id = logged.run_id
        method = card.get("method") or (
            run and (run.data.params.get("method") or run.data.tags.get("method")))
        if not method:
            raise CotdistillError(f"{ref}: the run that logged it (run {run_id}) does not say "
                                  f"which method trained it (not logged by `cotdistill train`)")
        method = _known_method(method, ref)
        model_dir = root / pyfunc["artifacts"]["student"]["path"] if card else root / "model"
        if not (model_dir / "config.json").is_file():
            raise CotdistillError(f"{ref}: not a transformers model logged by `cotdistill "
                                  f"train` (no config.json beside its weights)")
        # (logged before the model had a card) mlflow.transformers keeps the tokenizer apart;
        # beside the weights it loads as evaluate loads a models/ directory
        tokenizer_dir = root / "components" / "tokenizer"
        if tokenizer_dir.is_dir():
            for item in tokenizer_dir.iterdir():
                shutil.move(str(item), model_dir / item.name)
        model, tokenizer = load_causal_lm(str(model_dir), ref, for_generation=True)
    return model, tokenizer, method
