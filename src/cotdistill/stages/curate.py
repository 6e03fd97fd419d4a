"""The ``curate`` stage: keep the teacher's correct rationales; write each method's examples.

Reads the prepared train split and the teacher passes' completions, runs the quality filters
(:mod:`cotdistill.curation`; the teacher's arithmetic is checked by the calculator), and writes ``data/curated/<method>.jsonl`` for every method
whose rationales exist, plus ``reports/curate.json`` (teacher accuracy, kept rationales, what
each filter dropped, diversity, cost). The teacher's figures are logged as an MLflow run.

Usage: ``cotdistill curate``.
"""

from __future__ import annotations

import json
import logging

from cotdistill import layout, tracking
from cotdistill.atomic import publish, write_text
from cotdistill.curation.arithmetic import ArithmeticReport
from cotdistill.curation.filters import FilterReport
from cotdistill.curation.shots import load_exemplars
from cotdistill.curation.select import curate as select
from cotdistill.curation.select import curation_stats, diversity, select_rationales
from cotdistill.jsonl import read_records, write_records
from cotdistill.params import MlflowParams, Params
from cotdistill.records import PreparedExample, TeacherCompletion

log = logging.getLogger(__name__)


def run(params: Params) -> dict:
    """Curate; return the statistics written to reports/curate.json."""
    settings = params.curate
    tracking.use_experiment(params.mlflow)  # an unusable store fails before any work
    examples = read_records(layout.prepared("train"), PreparedExample)
    completions = read_records(layout.COMPLETIONS, TeacherCompletion)
    fewshot = (read_records(layout.FEWSHOT_COMPLETIONS, TeacherCompletion, allow_empty=True)
               if layout.FEWSHOT_COMPLETIONS.is_file() else None)  # new_fine_tune_cot
    report = FilterReport()
    arithmetic = ArithmeticReport(policy=settings.teacher_arithmetic)
    exemplars = load_exemplars() if layout.EXEMPLARS.is_file() else None  # mixed formats
    curated = select(examples, completions, settings, report, fewshot=fewshot,
                     tasks=params.prepare.tasks(), arithmetic=arithmetic, exemplars=exemplars,
                     method_params=params.train.method_params)
    stats = curation_stats(examples, completions, curated)
    stats["filtered"] = report.as_dict()
    stats["teacher_arithmetic"] = arithmetic.as_dict()
    stats.update(diversity(completions, select_rationales(examples, completions, settings)))
    if fewshot is not None:
        fewshot_report = FilterReport()
        fewshot_stats = curation_stats(examples, fewshot, curated, method="new_fine_tune_cot")
        fewshot_stats.pop("examples")
        fewshot_stats.update(diversity(fewshot, select_rationales(
            examples, fewshot, settings, fewshot_report)))
        fewshot_stats["filtered"] = fewshot_report.as_dict()
        stats["new_fine_tune_cot"] = fewshot_stats
    with publish() as out:  # nothing moves into place unless MLflow logging succeeded too
        folder = out.dir(layout.CURATED)
        for method, rows in curated.items():
            write_records(folder / f"{method}.jsonl", rows)
        write_text(out.file(layout.CURATE_STATS), json.dumps(stats, indent=2) + "\n")
        log_curation(params.mlflow, stats)
    log.info("curated: %s; teacher accuracy %.1f%%", stats["examples"],
             100 * stats["teacher_accuracy"])
    return stats


def log_curation(mlflow_params: MlflowParams, stats: dict) -> None:
    """The teacher's accuracy, accepted rationales and cost as an MLflow run of their own."""
    import mlflow

    experiment = tracking.use_experiment(mlflow_params)
    with mlflow.start_run(experiment_id=experiment, run_name="teacher+curate",
                          tags={"stage": "curate", **tracking.lineage_tags(
                              {"completions": layout.COMPLETIONS})}):
        figures = {"teacher_accuracy": stats["teacher_accuracy"],
                   "kept_rationales": stats["kept_rationales"]}
        figures.update({f"teacher_{k}": v for k, v in stats.get("cost", {}).items()
                        if v is not None})
        mlflow.log_metrics({k: float(v) for k, v in figures.items()})
