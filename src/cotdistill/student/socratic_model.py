"""A Socratic CoT pair as one MLflow model: the question generator and the sub-question solver
travel together, and ``predict`` runs their loop, as ``socratic-evaluate`` does.

Two students that are only useful together are logged as one pyfunc model with two artifacts
(``qg``, ``qa``), so that ``mlflow.pyfunc.load_model`` (or ``mlflow models serve``) gives a user
who never saw this repository the whole method: the same prompts, greedy decoding, loop and
answer reading as the evaluation, so the same transcripts. Input: a list of questions (or a
table with ``question`` and ``dataset`` columns, for a pair trained on several datasets).
Output: ``question``, ``rationale`` (the transcript, ``Q1: ... A1: ...`` and the stop marker),
``answer`` (read from the last sub-answer) and ``output`` (the transcript too). Params:
``max_steps``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import mlflow.pyfunc

from cotdistill.student.packaged import OUTPUT_COLUMNS, _rows, log_pyfunc

ARTIFACTS = ("qg", "qa")


@dataclasses.dataclass(frozen=True)
class SocraticCard:
    """What the loop needs, and what a reader of the run needs to know."""

    qg_student: str
    qa_student: str
    tasks: dict[str, dict[str, Any]]  # dataset -> {answer_type}
    max_steps: int
    max_subquestion_tokens: int
    max_subanswer_tokens: int
    batch_size: int
    example: str  # a test question: the model's input example
    test: dict[str, Any] | None = None  # {accuracy, n}: the evaluation that logged it


class SocraticModel(mlflow.pyfunc.PythonModel):
    """QG and QA taking turns on each question until QG writes the end marker."""

    def load_context(self, context) -> None:
        from cotdistill.lm.store import load_causal_lm

        self.card = SocraticCard(**context.model_config)
        self.models = {role: load_causal_lm(context.artifacts[role], context.artifacts[role],
                                            for_generation=True) for role in ARTIFACTS}

    def predict(self, context, model_input, params: dict[str, Any] | None = None):
        import pandas as pd

        from cotdistill.methods.socratic.decompositions import final_answer
        from cotdistill.methods.socratic.students import STOPS, local_completer, run_loop

        card = self.card
        rows = _rows(model_input, card)  # type: ignore[arg-type]  (it reads only .tasks)
        steps = int((params or {}).get("max_steps") or card.max_steps)
        limits = {"qg": card.max_subquestion_tokens, "qa": card.max_subanswer_tokens}
        propose, answer = (local_completer(*self.models[role], max_new_tokens=limits[role],
                                           batch_size=card.batch_size, stop=STOPS[role],
                                           desc=role.upper()) for role in ARTIFACTS)
        transcripts = run_loop([row["question"] for row in rows], propose, answer, steps)
        results = []
        for row, transcript in zip(rows, transcripts, strict=True):
            choices = list(row["choices"]) or None
            found = (final_answer(transcript.final_text,
                                  card.tasks[row["dataset"]]["answer_type"], choices)
                     if transcript.pairs else None)
            text = transcript.render()
            results.append({"question": row["question"], "rationale": text, "answer": found,
                            "output": text})
        return pd.DataFrame(results, columns=list(OUTPUT_COLUMNS))


def describe(card: SocraticCard) -> str:
    """The model's description, in Markdown."""
    lines = [f"# Socratic CoT: {card.qg_student} asks, {card.qa_student} answers", "",
             f"Two students fine-tuned by cotdistill on decompositions of {', '.join(card.tasks)}:"
             " the question generator proposes the next sub-question, the sub-question solver "
             "answers it, until the generator writes the end marker or `max_steps` pairs "
             "are made. The answer is read from the last sub-answer.", ""]
    if card.test:
        lines += [f"Test accuracy: {100 * card.test['accuracy']:.1f}% on {card.test['n']} "
                  "questions (the evaluation run that logged this model).", ""]
    lines += ["Ask it with `mlflow.pyfunc.load_model(uri).predict([\"<question>\"])`; params: "
              f"`max_steps` (default {card.max_steps}).", ""]
    return "\n".join(lines)


def log_pair(qg_dir: Path, qa_dir: Path, card: SocraticCard, name: str = "socratic"):
    """Log the pair to the active run as one :class:`SocraticModel`; returns MLflow's model
    info."""
    return log_pyfunc(SocraticModel(), dict(zip(ARTIFACTS, (qg_dir, qa_dir))), card, name=name,
                      params=[("max_steps", "long", card.max_steps)],
                      description=describe(card))
