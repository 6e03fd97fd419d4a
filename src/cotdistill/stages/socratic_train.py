"""The ``socratic-train`` stage: train one Socratic CoT student (QG, QA or unified).

Training examples are built in memory from the correct decompositions of
``data/socratic/decompositions.jsonl`` (:mod:`cotdistill.methods.socratic.students`) and trained with the same
:func:`cotdistill.student.training.train_student` as every other method, with ``socratic.hparams``. The
model lands in ``models/<student>/socratic_<role>/`` with ``train_info.json``, the loss curve
and figures in ``reports/train/<student>/socratic_<role>/``, and the run in MLflow as
``<student>/socratic_<role>``.

Usage: ``cotdistill socratic-train --student smollm2-135m --role qg`` (roles: qg, qa, unified).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence

from cotdistill import layout
from cotdistill.atomic import publish, write_text
from cotdistill.errors import CotdistillError
from cotdistill.lm import store as model_store
from cotdistill.methods.socratic.decomposition_teacher import training_decompositions
from cotdistill.methods.socratic.decompositions import Decomposition
from cotdistill.methods.socratic.students import ROLE_METHOD, Role, training_examples
from cotdistill.params import Params
from cotdistill.params.socratic import SocraticParams
from cotdistill.records import CuratedExample, PreparedExample
from cotdistill.student import deepspeed_setup
from cotdistill.stages.training_run import training_run
from cotdistill.student.training import (
    TrainResult,
    check_trainer_settings,
    train_student,
    write_loss_curve,
)

log = logging.getLogger(__name__)


def role_examples(role: Role, decompositions: Sequence[Decomposition],
                  train: Sequence[PreparedExample], settings: SocraticParams
                  ) -> list[CuratedExample]:
    """``role``'s training examples from the decompositions training may use."""
    questions = {example.id: example.question for example in train}
    chosen = training_decompositions(decompositions, settings)
    unknown = sorted({d.id for d in chosen} - set(questions))
    if unknown:
        raise CotdistillError(
            f"{layout.DECOMPOSITIONS}: decompositions of questions not in the train split "
            f"({', '.join(unknown[:3])}...): re-run `cotdistill decompose`")
    return training_examples(role, chosen, questions)


def _nothing_to_train(student: str, method: str, settings: SocraticParams) -> TrainResult:
    """No correct decomposition to learn from: record why instead of failing the pipeline.

    The model directory holds only ``train_info.json`` with the reason (no weights: nothing
    was trained, and nothing pretends to be), which ``socratic-evaluate`` and the report read.
    """
    reason = (f"no correct decompositions from source {settings.source!r} to train on (see "
              f"{layout.DECOMPOSE_STATS})")
    log.warning("%s/%s: skipped: %s", student, method, reason)
    reports = layout.train_reports(student, method)
    result = TrainResult()
    with publish() as out:
        staging = out.dir(layout.model_dir(student, method))
        (staging / layout.TRAIN_INFO).write_text(json.dumps(
            {"skipped": reason, "student": student, "method": method}, indent=2) + "\n",
            encoding="utf-8")
        write_loss_curve(out.file(reports / "loss.csv"), result)
        write_text(out.file(reports / "metrics.json"),
                   json.dumps({"skipped": reason}, indent=2) + "\n")
    return result


def run(params: Params, student: str, role: Role) -> TrainResult:
    """The stage: build ``role``'s examples, train ``student`` on them, save, log to MLflow."""
    from cotdistill.jsonl import read_records

    settings: SocraticParams = params.socratic
    if role == "unified":
        settings.require_unified()
    hparams = settings.hparams
    if getattr(hparams, "select_every", None) is not None:
        raise CotdistillError("socratic.hparams.select_every: checkpoint selection on "
                              "validation is not available for Socratic students; set it to null")
    spec = params.student(student).model
    key = f"students.{student}.model"
    model_store.check_model(spec, key)  # one that cannot be loaded fails before anything else
    check_trainer_settings(hparams, "socratic.hparams")
    method = ROLE_METHOD[role]
    examples = role_examples(
        role, read_records(layout.DECOMPOSITIONS, Decomposition, allow_empty=True),
        read_records(layout.prepared("train"), PreparedExample), settings)
    if not examples:
        return _nothing_to_train(student, method, settings)
    use_ds = deepspeed_setup.wanted(hparams.deepspeed)
    with training_run(params, student, method, stage="socratic-train",
                      inputs={"decompositions": layout.DECOMPOSITIONS},
                      run_params={"role": role, "decomposition_source": settings.source,
                                  "deepspeed": use_ds, **hparams.model_dump()}) as run:
        result = train_student(examples, spec, key, hparams, run.staging, use_deepspeed=use_ds,
                               on_log=run.log_trainer)
        metrics = {"first_loss": result.first_loss, "final_loss": result.final_loss,
                   "steps": result.steps, "train_examples": result.examples,
                   "train_decompositions": len({e.source for e in examples})}
        run.record(result, metrics, identity={"role": role}, deepspeed=use_ds,
                   extra={"train_seconds": round(result.seconds, 2)})
    # no model is logged here: a QG or QA student alone answers nothing; socratic-evaluate
    # logs the pair as one model that runs the loop (cotdistill.student.socratic_model)
    log.info("trained %s/%s on %d examples: %d steps, loss %.3f -> %.3f", student, method,
             result.examples, result.steps, result.first_loss, result.final_loss)
    return result
