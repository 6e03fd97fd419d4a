"""The ``cotdistill`` command: one sub-command per pipeline stage (see dvc.yaml).

Every command reads ``params.yaml`` (``--params`` to point elsewhere), validates it once, and
turns any :class:`CotdistillError` into one ``error:`` line on stderr with exit status 1.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from cotdistill.errors import CotdistillError

app = typer.Typer(
    help="Chain-of-thought distillation: teacher rationales -> curated data -> students.",
    no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False,
)
log = logging.getLogger("cotdistill")

ParamsOption = Annotated[Path, typer.Option("--params", help="The params file to read.")]
StudentOption = Annotated[str, typer.Option(help="A student name from the students section.")]
MethodOption = Annotated[str, typer.Option(help="A method: fine_tune_cot or answer_only.")]


def _run(work: Callable[[], None]) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        work()
    except CotdistillError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


def _load(path: Path):
    from cotdistill.params import load_params

    return load_params(path)


def launcher_command(launcher: str, arguments: list[str]) -> list[str] | None:
    """The multi-process launch of ``cotdistill ARGUMENTS`` when it is wanted, else None.

    ``auto``: torchrun with one process per GPU when there are several and no launcher started
    this process already (RANK unset); ``none``: never. Multi-node runs are started by hand
    with ``deepspeed --hostfile`` (README).
    """
    if launcher == "none" or "RANK" in os.environ:
        return None
    import torch

    gpus = torch.cuda.device_count()
    if gpus < 2:
        return None
    return [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={gpus}",
            "-m", "cotdistill.cli", *arguments]


def _check_choice(kind: str, name: str, known) -> None:
    if name not in known:
        raise CotdistillError(f"unknown {kind} {name!r} (known: {', '.join(sorted(known))})")


@app.command()
def prepare(params: ParamsOption = Path("params.yaml")) -> None:
    """Build the datasets and write seeded train / val / test splits to data/prepared/."""

    def work() -> None:
        from cotdistill import layout
        from cotdistill.atomic import atomic_dir
        from cotdistill.datasets.sources import FileSource
        from cotdistill.jsonl import write_records
        from cotdistill.lm.store import cache_home
        from cotdistill.datasets.build import prepare as build

        settings = _load(params).prepare
        from cotdistill.paths import from_root

        mirror = from_root(settings.mirror) if settings.mirror else None
        splits = build(settings, FileSource(mirror, cache_home() / "data"))
        with atomic_dir(layout.PREPARED) as tmp:
            for split, examples in splits.items():
                write_records(tmp / f"{split}.jsonl", examples)
        log.info("prepared %s", ", ".join(f"{s}: {len(e)}" for s, e in splits.items()))

    _run(work)


@app.command()
def teacher(params: ParamsOption = Path("params.yaml")) -> None:
    """Ask the teacher for D zero-shot-CoT rationales per training question.

    Exits 1 without writing completions when any request failed or teacher.max_usd stopped
    the run; everything bought is cached, so the next run asks only for what is missing.
    """

    def work() -> None:
        from cotdistill import layout
        from cotdistill.jsonl import write_records
        from cotdistill.paths import from_root
        from cotdistill.teachers.engine import make_backend, run_teacher

        settings = _load(params).teacher
        examples = _teacher_examples(settings)
        if settings.backend == "replay":
            from cotdistill.teachers.replay import replay

            records, replayed = replay(examples, from_root(settings.replay_path),
                                       samples=settings.samples, match=settings.replay_match)
            log.info("replay: %d completions imported from %d file(s); %d for other questions, "
                     "%d beyond teacher.samples", replayed.imported, replayed.files,
                     replayed.not_asked, replayed.beyond_samples)
        else:
            for noisy in ("httpx", "httpx2", "openai"):  # one line per HTTP request otherwise
                logging.getLogger(noisy).setLevel(logging.WARNING)
            cache = _teacher_cache()
            records, stats = run_teacher(examples, settings, make_backend(settings, cache), cache)
            log.info("teacher: %d model calls (%d prompt + %d completion tokens, $%.4f), "
                     "%d answered from the cache", stats.generated, stats.prompt_tokens,
                     stats.completion_tokens, stats.usd, stats.cached)
        write_records(layout.COMPLETIONS, records)
        log.info("teacher: %d completions for %d questions, %d correct", len(records),
                 len(examples), sum(record.correct for record in records))

    _run(work)


def _teacher_examples(settings):
    from cotdistill import layout
    from cotdistill.jsonl import read_records
    from cotdistill.records import PreparedExample
    from cotdistill.datasets.splits import first_per_dataset

    return first_per_dataset(
        read_records(layout.prepared("train"), PreparedExample), settings.max_questions
    )


def _teacher_cache() -> Path:
    from cotdistill.paths import state_dir

    return state_dir() / "teacher-cache.sqlite"


@app.command()
def estimate(
    params: ParamsOption = Path("params.yaml"),
    json_output: Annotated[bool, typer.Option("--json", help="Print a JSON object.")] = False,
) -> None:
    """Print the calls, tokens and dollars the teacher stage would spend now (nothing is sent)."""

    def work() -> None:
        import json

        from cotdistill.teachers.engine import make_backend
        from cotdistill.teachers.estimate import estimate as price_run

        settings = _load(params).teacher
        if settings.backend == "replay":
            raise CotdistillError("teacher.backend is replay: the teacher stage calls no model")
        cache = _teacher_cache()
        result = price_run(_teacher_examples(settings), settings, make_backend(settings, cache),
                           cache)
        if json_output:
            typer.echo(json.dumps(result.as_dict(), indent=2))
        else:
            for line in result.lines():
                typer.echo(line)

    _run(work)


@app.command()
def curate(params: ParamsOption = Path("params.yaml")) -> None:
    """Keep correct rationales; write each method's training examples and statistics."""

    def work() -> None:
        import json

        from cotdistill import layout
        from cotdistill.atomic import atomic_dir, write_text
        from cotdistill.curation.select import curate as select
        from cotdistill.curation.select import curation_stats, diversity, select_rationales
        from cotdistill.curation.filters import FilterReport
        from cotdistill.jsonl import read_records, write_records
        from cotdistill.records import PreparedExample, TeacherCompletion

        settings_all = _load(params)
        settings = settings_all.curate
        examples = read_records(layout.prepared("train"), PreparedExample)
        completions = read_records(layout.COMPLETIONS, TeacherCompletion)
        fewshot = (read_records(layout.FEWSHOT_COMPLETIONS, TeacherCompletion, allow_empty=True)
                   if layout.FEWSHOT_COMPLETIONS.is_file() else None)  # new_fine_tune_cot
        report = FilterReport()
        curated = select(examples, completions, settings, report, fewshot=fewshot)
        stats = curation_stats(examples, completions, curated)
        stats["filtered"] = report.as_dict()
        stats.update(diversity(completions, select_rationales(examples, completions, settings)))
        if fewshot is not None:
            fewshot_report = FilterReport()
            fewshot_stats = curation_stats(examples, fewshot, curated, method="new_fine_tune_cot")
            fewshot_stats.pop("examples")
            fewshot_stats.update(diversity(fewshot, select_rationales(
                examples, fewshot, settings, fewshot_report)))
            fewshot_stats["filtered"] = fewshot_report.as_dict()
            stats["new_fine_tune_cot"] = fewshot_stats
        with atomic_dir(layout.CURATED) as tmp:
            for method, rows in curated.items():
                write_records(tmp / f"{method}.jsonl", rows)
        write_text(layout.CURATE_STATS, json.dumps(stats, indent=2) + "\n")
        _log_curation(settings_all.mlflow, stats)
        log.info("curated: %s; teacher accuracy %.1f%%", stats["examples"],
                 100 * stats["teacher_accuracy"])

    _run(work)


def _log_curation(mlflow_params, stats: dict) -> None:
    """The teacher's accuracy, accepted rationales and cost as an MLflow run of their own."""
    import mlflow

    from cotdistill import layout, tracking

    experiment = tracking.use_experiment(mlflow_params)
    with mlflow.start_run(experiment_id=experiment, run_name="teacher+curate",
                          tags={"stage": "curate", **tracking.lineage_tags(
                              {"completions": layout.COMPLETIONS})}):
        figures = {"teacher_accuracy": stats["teacher_accuracy"],
                   "kept_rationales": stats["kept_rationales"]}
        figures.update({f"teacher_{k}": v for k, v in stats.get("cost", {}).items()
                        if v is not None})
        mlflow.log_metrics({k: float(v) for k, v in figures.items()})


@app.command()
def exemplars(params: ParamsOption = Path("params.yaml")) -> None:
    """Cluster training questions; per cluster pick the nearest one the teacher got right."""

    def work() -> None:
        from cotdistill import layout
        from cotdistill.methods.new_fine_tune_cot.embeddings import embed
        from cotdistill.methods.new_fine_tune_cot.exemplars import select_exemplars
        from cotdistill.jsonl import read_records, write_records
        from cotdistill.records import PreparedExample, TeacherCompletion

        settings = _load(params).exemplars
        examples = read_records(layout.prepared("train"), PreparedExample)
        completions = read_records(layout.COMPLETIONS, TeacherCompletion)
        vectors = embed([example.question for example in examples], settings.embedder,
                        "exemplars.embedder")
        chosen = select_exemplars(
            examples, completions, vectors, k=settings.k, seed=settings.seed,
            max_question_chars=settings.max_question_chars,
            max_rationale_chars=settings.max_rationale_chars,
        )
        write_records(layout.EXEMPLARS, chosen)
        for dataset in dict.fromkeys(example.dataset for example in examples):
            count = sum(exemplar.dataset == dataset for exemplar in chosen)
            log.info("exemplars: %s: %d of %d clusters have a correct exemplar", dataset, count,
                     settings.k)

    _run(work)


@app.command()
def train(
    student: StudentOption, method: MethodOption, params: ParamsOption = Path("params.yaml")
) -> None:
    """Fine-tune one student with one method; save it under models/ and log it to MLflow."""

    def work() -> None:
        from cotdistill.student import training as stage
        from cotdistill.methods.base import METHODS

        settings = _load(params)
        _check_choice("method", method, METHODS)
        settings.student(student)
        command = launcher_command(settings.train.hparams.launcher,
                                   ["train", "--student", student, "--method", method,
                                    "--params", str(params)])
        if command is not None:  # several GPUs: every rank runs this command under torchrun
            log.info("launching %s", " ".join(command))
            raise typer.Exit(subprocess.run(command).returncode)
        stage.run(settings, student, method)

    _run(work)


@app.command()
def evaluate(
    student: StudentOption, method: MethodOption, params: ParamsOption = Path("params.yaml")
) -> None:
    """Score one trained student on the test split; predictions and metrics to reports/eval/."""

    def work() -> None:
        from cotdistill.student import evaluation as stage
        from cotdistill.methods.base import METHODS

        settings = _load(params)
        _check_choice("method", method, METHODS)
        stage.run(settings, student, method)

    _run(work)


@app.command()
def baseline(
    student: StudentOption,
    method: Annotated[str, typer.Option(help="zero_shot, zero_shot_cot or few_shot_cot.")],
    params: ParamsOption = Path("params.yaml"),
) -> None:
    """Score an untrained student with a prompting baseline, for comparison."""

    def work() -> None:
        from cotdistill.stages import baseline as stage

        settings = _load(params)
        _check_choice("baseline", method, stage.BASELINES)
        settings.student(student)
        stage.run(settings, student, method)

    _run(work)


@app.command()
def report(params: ParamsOption = Path("params.yaml")) -> None:
    """Write reports/summary.md, reports/accuracy.png and reports/metrics.json."""

    def work() -> None:
        from cotdistill.stages import report as stage

        stage.run(_load(params))

    _run(work)


@app.command()
def score(
    files: Annotated[list[Path], typer.Argument(help="CompletionDataset JSON files to score.")],
    json_output: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
) -> None:
    """Score teacher completions (reasoning-teacher CompletionDataset files) with our extractor."""

    def work() -> None:
        import json

        from cotdistill.teachers.score import score_file

        scores = [score_file(path) for path in files]  # all read before anything is printed
        if json_output:
            typer.echo(json.dumps([item.as_dict() for item in scores], indent=2))
        else:
            for item in scores:
                typer.echo(item.line())

    _run(work)


@app.command()
def serve(
    model: Annotated[str, typer.Option("--model", help="Model spec: builtin:NAME, a directory, "
                                                       "or a hub id.")],
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    max_batch: Annotated[int, typer.Option(help="Most rows per generate call.")] = 8,
) -> None:
    """Serve a local model over the OpenAI API (completions, chat, Batch API) until Ctrl-C."""

    def work() -> None:
        import uvicorn

        from cotdistill.serve import create_app

        uvicorn.run(create_app(model, max_batch=max_batch), host=host, port=port,
                    log_level="info")

    _run(work)


@app.command("teacher-fewshot")
def teacher_fewshot(params: ParamsOption = Path("params.yaml")) -> None:
    """New-Fine-tune-CoT's teacher pass: few-shot-CoT from the exemplars, adaptive answers.

    Writes data/teacher/fewshot_completions.jsonl and reports/teacher_fewshot.json (calls per
    question, adaptive vs always two-step). Exits 1 without writing completions when any
    request failed or teacher.max_usd stopped the run, like ``teacher``.
    """

    def work() -> None:
        import json

        from cotdistill import layout
        from cotdistill.atomic import write_text
        from cotdistill.methods.new_fine_tune_cot.exemplars import Exemplar
        from cotdistill.jsonl import read_records, write_records
        from cotdistill.records import PreparedExample
        from cotdistill.datasets.splits import first_per_dataset
        from cotdistill.teachers.engine import make_backend
        from cotdistill.methods.new_fine_tune_cot.fewshot_teacher import run_teacher_fewshot

        settings_all = _load(params)
        settings, fewshot = settings_all.teacher, settings_all.teacher_fewshot
        if settings.backend == "replay":
            # Published completions have no few-shot pass to replay: say so and leave
            # new_fine_tune_cot without data rather than fail the whole pipeline.
            reason = "teacher.backend is replay: no model to run the few-shot pass with"
            log.warning("teacher-fewshot: skipped (%s)", reason)
            write_records(layout.FEWSHOT_COMPLETIONS, [])
            write_text(layout.FEWSHOT_REPORT, json.dumps({"skipped": reason}, indent=2) + "\n")
            return
        if not layout.EXEMPLARS.is_file():
            raise CotdistillError(f"{layout.EXEMPLARS}: not found (run `cotdistill exemplars`)")
        limit = fewshot.max_questions if fewshot.max_questions is not None \
            else settings.max_questions
        examples = first_per_dataset(read_records(layout.prepared("train"), PreparedExample),
                                     limit)
        shots = read_records(layout.EXEMPLARS, Exemplar, allow_empty=True)
        for noisy in ("httpx", "httpx2", "openai"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
        cache = _teacher_cache()
        records, run = run_teacher_fewshot(examples, shots, settings,
                                           make_backend(settings, cache), cache,
                                           hint_wrong=fewshot.hints, fewshot=fewshot)
        summary = run.report(records)
        write_records(layout.FEWSHOT_COMPLETIONS, records)
        write_text(layout.FEWSHOT_REPORT, json.dumps(summary, indent=2) + "\n")
        log.info("teacher-fewshot: %d completions for %d questions, accuracy %.1f%%; calls per "
                 "question %.2f adaptive vs %.2f two-step; %d hinted; %d model calls, %d cached",
                 summary["completions"], summary["questions"], 100 * summary["accuracy"],
                 summary["calls"]["adaptive_per_question"],
                 summary["calls"]["two_step_per_question"], summary["hinted"],
                 run.stats.generated, run.stats.cached)

    _run(work)


from cotdistill import cli_socratic  # noqa: E402,F401  (registers the socratic commands)


def main() -> None:  # pragma: no cover - `python -m cotdistill`
    app(prog_name="cotdistill")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
