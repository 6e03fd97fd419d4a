"""The student as MLflow holds it: a pyfunc model that answers exactly as ``cotdistill predict``.

Why not the ``transformers`` flavour: its pipeline samples with the model's generation config,
echoes the prompt, knows nothing of the task's prompt format (`` ###``) or of how the method's
answer is read, and ignores ``max_new_tokens``. This model carries the trained weights and
tokenizer as an artifact, and the method and task prompts in its ``model_config``, and runs
:func:`cotdistill.student.predict.predict`: the same prompt, greedy decoding and answer reader
as ``evaluate``, so ``mlflow.pyfunc.load_model``, ``mlflow models serve`` and ``cotdistill
predict`` give the same answer. The ``cotdistill`` package travels with the model
(``code_paths``), so a user who never saw this repository can load it.

Input: a list of questions (a model of one task), or a table with ``question`` and ``dataset``
columns (a model of several). Output: one
row per question with ``question``, ``rationale``, ``answer`` and ``output``. Params:
``max_new_tokens``, and ``calculator`` (number answers decoded with the calculator; its default
is the method's: on for ``fine_tune_cot_calc``).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import mlflow.pyfunc

from cotdistill import prompts, tracking
from cotdistill.catalog import DATASETS
from cotdistill.methods.registry import METHODS
from cotdistill.params import Params
from cotdistill.student.evaluation import NOT_YET_TESTED

STUDENT_ARTIFACT = "student"
OUTPUT_COLUMNS = ("question", "rationale", "answer", "output")


@dataclasses.dataclass(frozen=True)
class Card:
    """What the model needs to answer, and what a reader of the registry needs to know."""

    student: str  # the name in params.yaml's students section
    student_model: str  # what it was fine-tuned from
    method: str
    tasks: dict[str, dict[str, Any]]  # dataset -> {answer_type, prompts: {reasoning, ...}}
    max_new_tokens: int
    teacher: str
    example: str  # a training question: the model's input example
    validation: dict[str, Any] | None = None  # {accuracy, n, step}


class StudentModel(mlflow.pyfunc.PythonModel):
    """A trained student that answers questions the way ``evaluate`` asks them."""

    def load_context(self, context) -> None:
        from cotdistill.lm.store import load_causal_lm

        path = context.artifacts[STUDENT_ARTIFACT]
        self.model, self.tokenizer = load_causal_lm(path, path, for_generation=True)
        self.card = Card(**context.model_config)

    def predict(self, context, model_input, params: dict[str, Any] | None = None):
        import pandas as pd

        from cotdistill.prompts import TaskPrompts
        from cotdistill.student.predict import predict

        rows = _rows(model_input, self.card)
        limit = int((params or {}).get("max_new_tokens") or self.card.max_new_tokens)
        calculator = (params or {}).get("calculator")
        answers: list[dict] = [{}] * len(rows)
        for (dataset, choices), indices in _groups(rows).items():
            task = self.card.tasks[dataset]
            found = predict(self.model, self.tokenizer, self.card.method,
                            [rows[i]["question"] for i in indices],
                            answer_type=task["answer_type"],
                            choices=list(choices) if choices else None,
                            task=TaskPrompts(**task["prompts"]), max_new_tokens=limit,
                            batch_size=len(indices),
                            calculator=None if calculator is None else bool(calculator))
            for i, answer in zip(indices, found):
                answers[i] = dataclasses.asdict(answer)
        return pd.DataFrame(answers, columns=list(OUTPUT_COLUMNS))


def _rows(model_input, card: Card) -> list[dict]:
    """The input as rows {question, dataset, choices}, each dataset one the model knows."""
    import pandas as pd

    if isinstance(model_input, pd.DataFrame):
        if "question" not in model_input.columns:  # a list of questions, as one column
            model_input = model_input.rename(columns={model_input.columns[0]: "question"})
        records = model_input.to_dict("records")
    elif isinstance(model_input, str):
        records = [{"question": model_input}]
    else:
        records = [item if isinstance(item, dict) else {"question": item}
                   for item in model_input]
    only = next(iter(card.tasks)) if len(card.tasks) == 1 else None
    rows = []
    for number, record in enumerate(records):
        dataset = record.get("dataset") or only
        if dataset is None:
            raise ValueError(f"row {number}: give a dataset, one of {', '.join(card.tasks)}")
        if dataset not in card.tasks:
            raise ValueError(f"row {number}: unknown dataset {dataset!r} (this model knows "
                             f"{', '.join(card.tasks)})")
        choices = record.get("choices")
        rows.append({"question": str(record["question"]), "dataset": dataset,
                     "choices": tuple(choices) if choices is not None and len(choices) else ()})
    return rows


def _groups(rows: list[dict]) -> dict[tuple[str, tuple], list[int]]:
    groups: dict[tuple[str, tuple], list[int]] = {}
    for index, row in enumerate(rows):
        groups.setdefault((row["dataset"], row["choices"]), []).append(index)
    return groups


def card_for(params: Params, student: str, method: str, datasets: list[str], example: str,
             validation: dict[str, Any] | None) -> Card:
    """The card of a student trained on ``datasets`` (their answer types and prompts as
    ``prepare.datasets`` gives them)."""
    entries = {entry.name: entry for entry in params.prepare.entries}
    tasks = {}
    for dataset in datasets:
        entry = entries.get(dataset)
        answer_type = (entry.answer_type if entry is not None else None) or \
            DATASETS[dataset].answer_type
        task = prompts.of(params.prepare.tasks(), dataset)
        tasks[dataset] = {"answer_type": answer_type, "prompts": {
            "reasoning": task.reasoning, "answer_trigger": task.answer_trigger,
            "student": task.student}}
    teacher = params.teacher
    source = (f"{teacher.model} ({teacher.backend})" if teacher.backend != "replay"
              else f"published completions ({teacher.replay_source})")
    return Card(student=student, student_model=params.student(student).model, method=method,
                tasks=tasks, max_new_tokens=params.evaluate.max_new_tokens, teacher=source,
                example=example, validation=validation)


def describe(card: Card) -> str:
    """The model card, in Markdown: what it is, how well it did, how to prompt it."""
    lines = [f"# {card.student} / {card.method}",
             "",
             f"A {card.student_model} student fine-tuned by cotdistill with {card.method} on "
             + (f"rationales of the teacher {card.teacher}"
                if METHODS[card.method].uses_rationale else "the gold answers")
             + f", for: {', '.join(card.tasks)}.",
             ""]
    if card.validation:
        v = card.validation
        lines += [f"Validation accuracy: {100 * v['accuracy']:.1f}% on {v['n']} questions "
                  f"(best of training, step {v['step']}): the checkpoint kept.", ""]
    lines += ["Ask it with `mlflow.pyfunc.load_model(uri).predict([\"<question>\"])` or "
              "`cotdistill predict <uri> \"<question>\"`: it applies the task's prompt format "
              "itself, decodes greedily, and returns `rationale` and `answer`. Params: "
              f"`max_new_tokens` (default {card.max_new_tokens}), `calculator` (default "
              f"{str(METHODS[card.method].calculator).lower()}: "
              + ("it was trained to decode number answers with the calculator, which writes "
                 "the result of the arithmetic before each `=`)."
                 if METHODS[card.method].calculator else
                 "true decodes number answers with the calculator)."), ""]
    return tracking.with_test_section("\n".join(lines), NOT_YET_TESTED)


def log_student(model_dir: Path, card: Card, name: str = "model"):
    """Log a saved student as a :class:`StudentModel`; returns MLflow's model info."""
    return log_pyfunc(StudentModel(), {STUDENT_ARTIFACT: model_dir}, card, name=name,
                      params=[("max_new_tokens", "long", card.max_new_tokens),
                              ("calculator", "boolean", METHODS[card.method].calculator)],
                      description=describe(card))


def log_pyfunc(python_model: mlflow.pyfunc.PythonModel, artifacts: dict[str, Path], card,
               *, name: str, params: list[tuple[str, str, Any]], description: str):
    """Log ``python_model`` with the model directories ``artifacts`` (role -> directory) and
    ``card`` (a dataclass with ``tasks`` and ``example``) as its config, to the active run.

    The signature takes a list of questions (one task) or a table of question and dataset, and
    gives :data:`OUTPUT_COLUMNS`, with ``params`` (name, MLflow type, default) as its params
    schema. The ``cotdistill`` package travels
    with the model, and its requirements pin this torch and transformers."""
    import pandas as pd
    import pydantic
    import torch
    import transformers
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema

    import cotdistill

    # one task: a list of questions; several: a table of question and dataset
    inputs = Schema([ColSpec("string")]) if len(card.tasks) == 1 else \
        Schema([ColSpec("string", "question"), ColSpec("string", "dataset")])
    signature = ModelSignature(
        inputs=inputs,
        outputs=Schema([ColSpec("string", column, required=column == "question")
                        for column in OUTPUT_COLUMNS]),
        params=ParamSchema([ParamSpec(name, kind, default) for name, kind, default in params]),
    )
    example = [card.example] if len(card.tasks) == 1 else \
        pd.DataFrame({"question": [card.example], "dataset": [next(iter(card.tasks))]})
    # each artifact is named for what it is, not for the staging directory's temporary name:
    # hard links to the same files, beside them (MLflow refuses a symlink out of its directory)
    first = next(iter(artifacts.values()))
    with tempfile.TemporaryDirectory(prefix=".cotdistill-log-", dir=first.parent) as scratch:
        named = {}
        for role, directory in artifacts.items():
            named[role] = str(Path(scratch) / role)
            shutil.copytree(directory, named[role], copy_function=_link_or_copy)
        return mlflow.pyfunc.log_model(
            name=name, python_model=python_model, artifacts=named,
            model_config=dataclasses.asdict(card), signature=signature, input_example=example,
            code_paths=[str(Path(cotdistill.__file__).parent)],
            pip_requirements=[f"torch=={torch.__version__.split('+')[0]}",
                              f"transformers=={transformers.__version__}",
                              f"pydantic=={pydantic.__version__}", "pandas"],
            metadata={"description": description},
        )


def _link_or_copy(source: str, target: str) -> None:
    """A hard link where one can be made (the same filesystem), else a copy."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)
