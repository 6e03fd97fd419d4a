"""The ``socratic-evaluate`` stage: run the Socratic loop on the test split and score it.

The pair: QG is ``models/<socratic.qg_student>/socratic_qg``, QA is
``models/<student>/socratic_qa`` (so QG and QA may differ in size and architecture); results
go to ``reports/eval/<student>/socratic/``, beside the student's Fine-tune-CoT results, and to
an MLflow run ``<student>/socratic`` tagged with both training runs. With ``--unified`` the
one model ``models/<student>/socratic_unified`` runs alone, reported as ``socratic_unified``.

Each prediction's ``output`` is the whole transcript (``Q1: ... A1: ... [END]``); metrics add
to accuracy the mean number of loop steps and the share of runs stopped by the step limit.

Usage: ``cotdistill socratic-evaluate --student smollm2-135m [--unified]``.
"""

from __future__ import annotations

import time
import json
import logging
from pathlib import Path

from cotdistill import layout
from cotdistill.atomic import publish, write_text
from cotdistill.methods.socratic.decomposition_teacher import select_examples
from cotdistill.methods.socratic.students import (
    PAIR_METHOD,
    ROLE_METHOD,
    STOPS,
    UNIFIED_METHOD,
    Complete,
    Transcript,
    local_completer,
    loop_metrics,
    predictions,
    run_loop,
    run_unified_loop,
)
from cotdistill.params import Params
from cotdistill.records import PreparedExample

log = logging.getLogger(__name__)


def _trained(student: str, method: str) -> tuple[Path, dict]:

    model_dir = layout.model_dir(student, method)
    role = method.removeprefix("socratic_")
    return model_dir, layout.read_train_info(model_dir, missing=(
        f"{model_dir}: no trained model (run `cotdistill socratic-train --student {student} "
        f"--role {role}` first)"))


def _completer(model_dir: Path, *, max_new_tokens: int, batch_size: int, stop: list[str],
               desc: str) -> Complete:
    from cotdistill.lm.store import load_causal_lm

    model, tokenizer = load_causal_lm(str(model_dir), str(model_dir), for_generation=True)
    return local_completer(model, tokenizer, max_new_tokens=max_new_tokens,
                           batch_size=batch_size, stop=stop, desc=desc)



def _nothing_to_evaluate(student: str, method: str, reason: str) -> dict:
    """The students were not trained (``reason``): empty predictions and a metrics file that
    says why, so the report shows the reason instead of a number."""
    from cotdistill.jsonl import write_records

    folder = layout.eval_reports(student, method)
    metrics = {"skipped": reason}
    with publish() as out:
        write_records(out.file(folder / "predictions.jsonl"), [])
        write_text(out.file(folder / "metrics.json"), json.dumps(metrics, indent=2) + "\n")
    log.warning("%s/%s: not evaluated: %s", student, method, reason)
    return metrics


def _pair_logger(params: Params, student: str, qg_dir: Path, qa_dir: Path,
                 examples: list[PreparedExample]):
    """Log the QG/QA pair as one MLflow model (:mod:`cotdistill.student.socratic_model`) to the
    evaluation's run: the only place where both students and their test figures meet."""
    from cotdistill.student.socratic_model import SocraticCard, log_pair

    settings = params.socratic
    tasks = {example.dataset: {"answer_type": example.answer_type} for example in examples}

    def log_model(metrics: dict) -> None:
        card = SocraticCard(
            qg_student=settings.qg_student, qa_student=student, tasks=tasks,
            max_steps=settings.max_steps, max_subquestion_tokens=settings.max_subquestion_tokens,
            max_subanswer_tokens=settings.max_subanswer_tokens,
            batch_size=params.evaluate.batch_size,
            example=examples[0].question if examples else "",
            test={"accuracy": metrics["accuracy"], "n": metrics["n"]})
        log_pair(qg_dir, qa_dir, card)

    return log_model


def run(params: Params, student: str, *, unified: bool = False) -> dict:
    """The stage: the Socratic loop on every selected test question; score, record, log."""

    from cotdistill.datasets.splits import first_per_dataset
    from cotdistill.jsonl import read_records
    from cotdistill.student.evaluation import record_results

    started = time.time()
    settings = params.socratic
    if unified:
        settings.require_unified()
    batch = params.evaluate.batch_size
    examples: list[PreparedExample] = first_per_dataset(
        select_examples(read_records(layout.prepared("test"), PreparedExample),
                        settings.datasets, where=str(layout.prepared("test"))),
        params.socratic.max_examples)
    questions = [example.question for example in examples]
    run_params = {"socratic_max_steps": settings.max_steps,
                  "eval_max_examples": params.socratic.max_examples}
    tags = {"stage": "socratic-evaluate"}
    if unified:
        method = UNIFIED_METHOD
        model_dir, info = _trained(student, ROLE_METHOD["unified"])
        if info.get("skipped"):
            return _nothing_to_evaluate(student, method, info["skipped"])
        write = _completer(model_dir, stop=STOPS["unified"], batch_size=batch, desc="unified",
                           max_new_tokens=settings.max_subquestion_tokens
                           + settings.max_subanswer_tokens)
        transcripts: list[Transcript] = run_unified_loop(questions, write, settings.max_steps)
        lineage = {"test": layout.prepared("test"), "model": model_dir}
        run_id = info.get("run_id")  # the unified model's training run, as `evaluate` does
    else:
        method = PAIR_METHOD
        qg_dir, qg_info = _trained(settings.qg_student, ROLE_METHOD["qg"])
        qa_dir, qa_info = _trained(student, ROLE_METHOD["qa"])
        skipped = qg_info.get("skipped") or qa_info.get("skipped")
        if skipped:
            return _nothing_to_evaluate(student, method, skipped)
        propose = _completer(qg_dir, max_new_tokens=settings.max_subquestion_tokens,
                             batch_size=batch, stop=STOPS["qg"], desc="QG")
        answer = _completer(qa_dir, max_new_tokens=settings.max_subanswer_tokens,
                            batch_size=batch, stop=STOPS["qa"], desc="QA")
        transcripts = run_loop(questions, propose, answer, settings.max_steps)
        lineage = {"test": layout.prepared("test"), "qg_model": qg_dir, "qa_model": qa_dir}
        run_params.update(qg_student=settings.qg_student, qa_student=student)
        run_id = None  # a run of its own, tagged with both training runs
        tags["qg_run_id"] = str(qg_info.get("run_id"))
        tags["qa_run_id"] = str(qa_info.get("run_id"))
    scored = predictions(examples, transcripts, student, method)
    extra = loop_metrics(transcripts, settings.max_steps)
    log_model = None if unified else _pair_logger(params, student, qg_dir, qa_dir, examples)
    metrics = record_results(
        params, student, method, scored, started=started, training_run_id=run_id,
        lineage=lineage, log_model=log_model,
        run_params=run_params, extra=extra, tags=tags,
        extra_metrics={f"socratic_{name}": float(extra[name])
                       for name in ("mean_steps", "step_limit_share", "end_share")})
    log.info("%s/%s: %.2f steps on average, %.1f%% stopped by the step limit", student, method,
             extra["mean_steps"], 100 * extra["step_limit_share"])
    return metrics
