"""End to end: `dvc repro` on a temporary copy of the repository, with tiny params.

The README's embedded experiment: the teacher is the in-process SmolLM2-135M-Instruct on a
handful of generated questions, and on two datasets of a user's own, added as docs/datasets.md's
"Your own dataset" says (`dvc add data/raw/...`, an entry in `prepare.datasets`): one in JSON
Lines with number answers, one in CSV with multiple-choice answers. The student is a tiny model
built from a config. The test proves the whole pipeline runs, records what it should, learns,
that `cotdistill predict` answers from the trained student, and that a second `dvc repro`
does nothing.
"""

from __future__ import annotations

import csv
import json
import sqlite3
import subprocess
from pathlib import Path

import pytest
import yaml
from support.cli import cotdistill
from support.repository import apply_overrides, readme_experiment
from support.repository import copy_repository as _copy_repository
from support.repository import dvc as _dvc

STORES = ["bakery", "bookshop", "garden centre", "toy shop", "fish market", "pharmacy",
          "hardware store", "florist", "music shop", "bike shop", "cheese shop", "tea room"]
GOODS = ["loaves", "novels", "tulips", "kites", "trout", "plasters", "hammers", "roses",
         "guitars", "bells", "wheels", "scones"]
# the user datasets, as docs/datasets.md's "Your own dataset" declares them
APPLES = {"name": "shop_sums", "path": "data/raw/shop_sums.jsonl", "question": "problem",
          "answer": "solution", "answer_type": "number"}
COLOURS = {"name": "colours", "path": "data/raw/colours.csv", "id": "id",
           "choices": ["option_a", "option_b", "option_c"], "answer": "label",
           "answer_type": "choice"}


def _user_datasets(repo: Path) -> None:
    """Two small datasets of a user's own, tracked with `dvc add` and committed."""
    raw = repo / "data/raw"
    with (raw / "shop_sums.jsonl").open("w") as handle:
        for i, (store, goods) in enumerate(zip(STORES, GOODS)):
            morning = 1000 if i == 0 else i + 2  # one answer with a thousands separator
            handle.write(json.dumps({
                "problem": f"The {store} sold {morning:,} {goods} in the morning and {2 * i + 1} "
                           f"in the afternoon. How many {goods} did it sell?",
                "solution": f"{morning + 2 * i + 1:,}"}) + "\n")
    with (raw / "colours.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "question", "option_a", "option_b", "option_c", "label"])
        for i, (store, goods) in enumerate(zip(STORES, GOODS)):
            colour = ["red", "green", "blue"][i % 3]
            writer.writerow([f"q{i}", f"At the {store} the {goods} are {colour}. What colour "
                                      f"are the {goods}?", "red", "green", "blue", colour])
    added = _dvc(repo, "add", "data/raw/shop_sums.jsonl", "data/raw/colours.csv")
    assert added.returncode == 0, added.stderr
    subprocess.run(["git", "add", "data/raw"], cwd=repo, check=True)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm",
                    "user datasets"], cwd=repo, check=True)


def _tiny_params(repo: Path, student: Path) -> None:
    """The README's fully embedded experiment (the in-process SmolLM2 teacher), made tiny: a
    student built from a config, a handful of questions of one generated dataset and of the
    two user datasets."""
    params = yaml.safe_load((repo / "params.yaml").read_text())
    apply_overrides(params, readme_experiment("embedded"))
    params["prepare"].update(num_examples=30, test_fraction=0.34)
    params["prepare"]["datasets"] = ["coin_flip_generated", APPLES, COLOURS]
    params["teacher"].update(samples=2, max_questions=4, max_rationale_tokens=32, batch_size=12)
    params["teacher_fewshot"].update(max_questions=4)
    params["students"] = {"tiny": {"model": str(student)}}
    params["train"]["students"] = ["tiny"]
    params["train"]["hparams"].update(max_steps=20, learning_rate=3e-3, batch_size=4)
    params["evaluate"].update(max_examples=4, max_new_tokens=24,
                              transfer_datasets=["last_letter_concatenation_generated"],
                              transfer_max_examples=3)
    params["train"]["hparams"].update(transfer_probe=2, select_every=10)
    params["socratic"].update(qg_student="tiny", qa_student="tiny", max_questions=3,
                              max_tokens=24, max_examples=2, max_steps=2)
    params["socratic"]["hparams"].update(max_steps=3, batch_size=4)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory, tiny_model):
    repo = tmp_path_factory.mktemp("repo")
    _copy_repository(repo)
    _user_datasets(repo)
    _tiny_params(repo, tiny_model)
    first = _dvc(repo, "repro")
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    return repo, first


def test_every_stage_ran_and_wrote_its_outputs(pipeline):
    repo, first = pipeline
    for stage in ("prepare", "teacher", "exemplars", "curate", "train@tiny-fine_tune_cot",
                  "evaluate@tiny-answer_only", "baseline@tiny-few_shot_cot", "decompose",
                  "socratic_train_qg", "socratic_train_qa", "socratic_evaluate", "report"):
        assert f"Running stage '{stage}'" in first.stdout
    assert (repo / "reports/summary.md").read_text().startswith("# cotdistill summary")
    assert (repo / "reports/accuracy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    completions = (repo / "data/teacher/completions.jsonl").read_text().splitlines()
    assert len(completions) == 3 * 4 * 2  # datasets x questions x samples


def test_dvc_shows_the_results_as_its_only_metrics(pipeline):
    """`dvc metrics show` (and so `dvc exp show`) leads with results: test accuracy per
    dataset and method with n, the teacher's accuracy and accepted rationales; the per-stage
    reports are plain outputs, and no timing is a metric."""
    repo, _ = pipeline
    shown = _dvc(repo, "metrics", "show", "--json")
    assert shown.returncode == 0, shown.stderr
    metrics = json.loads(shown.stdout)
    files = next(iter(metrics.values()))["data"]
    assert list(files) == ["reports/metrics.json"]
    headline = files["reports/metrics.json"]["data"]
    # what DVC shows is the score of the predictions the stage wrote, question by question
    predictions = [json.loads(line) for line in (
        repo / "reports/eval/tiny/answer_only/predictions.jsonl").read_text().splitlines()]
    datasets = {p["dataset"] for p in predictions}
    assert set(headline) == {"teacher", *datasets} and len(datasets) == 3
    assert set(headline["teacher"]) == {"accuracy", "accepted"}
    for dataset in datasets:
        mine = [p["correct"] for p in predictions if p["dataset"] == dataset]
        n = headline[dataset]["n"]  # one n, or one per pair where they differ (Socratic)
        assert (n["answer_only"] if isinstance(n, dict) else n) == len(mine) > 0
        assert headline[dataset]["answer_only"] == sum(mine) / len(mine)
    assert not any("seconds" in key for key in json.dumps(headline).split('"'))


def test_every_student_is_scored_on_the_held_out_task_and_the_cost_is_drawn(pipeline):
    """evaluate.transfer_datasets: prepare writes the held-out task's first test questions,
    every trained student and baseline is scored on them, and the report sets each trained
    student against the untrained one; train.hparams.transfer_probe draws the held-out curve
    beside validation accuracy over training."""
    repo, _ = pipeline
    held_out = [json.loads(line) for line in
                (repo / "data/prepared/transfer.jsonl").read_text().splitlines()]
    assert [e["dataset"] for e in held_out] == ["last_letter_concatenation_generated"] * 3
    assert all(e["split"] == "test" for e in held_out)
    for method in ("fine_tune_cot", "answer_only", "zero_shot_cot"):
        folder = repo / f"reports/eval/tiny/{method}"
        metrics = json.loads((folder / "metrics.json").read_text())
        assert metrics["transfer"]["last_letter_concatenation_generated"]["n"] == 3, method
        assert "last_letter_concatenation_generated" not in metrics["datasets"]
        scored = (folder / "predictions_transfer.jsonl").read_text().splitlines()
        assert [json.loads(line)["id"] for line in scored] == [e["id"] for e in held_out]
    summary = (repo / "reports/summary.md").read_text()
    assert "## What specialising cost (held-out tasks)" in summary
    assert "| tiny | fine_tune_cot | last_letter_concatenation_generated |" in summary
    assert "held-out tasks last_letter_concatenation_generated" in summary
    curve = (repo / "reports/train/tiny/fine_tune_cot/val.csv").read_text().splitlines()
    assert curve[0] == "step,val_accuracy,transfer_accuracy"
    assert [row.split(",")[0] for row in curve[1:]] == ["10", "20"]
    drawn = (repo / "reports/curves/transfer.csv").read_text().splitlines()
    assert drawn[0] == "run,step,transfer_accuracy" and "tiny/fine_tune_cot,20," in drawn[2]


def test_the_loss_fell_for_every_run(pipeline):
    repo, _ = pipeline
    for method in ("fine_tune_cot", "answer_only"):
        metrics = json.loads((repo / f"reports/train/tiny/{method}/metrics.json").read_text())
        assert metrics["final_loss"] < metrics["first_loss"], method


def test_mlflow_holds_one_evaluated_run_per_student_and_method(pipeline):
    repo, _ = pipeline
    with sqlite3.connect(repo / "mlflow.db") as db:
        runs = dict(db.execute("SELECT run_uuid, name FROM runs WHERE status = 'FINISHED' "
                               "AND name != 'teacher+curate'"))
        curation = db.execute("SELECT run_uuid FROM runs WHERE name = 'teacher+curate'").fetchall()
        assert len(curation) == 1
        costs = {k for (k,) in db.execute("SELECT key FROM metrics WHERE run_uuid=?", curation[0])}
        assert {"teacher_accuracy", "teacher_calls", "teacher_usd"} <= costs
        assert {"tiny/answer_only", "tiny/few_shot_cot", "tiny/fine_tune_cot", "tiny/zero_shot",
                "tiny/zero_shot_cot", "tiny/socratic"} <= set(runs.values())
        trained = [run for run, name in runs.items()
                   if name in ("tiny/answer_only", "tiny/fine_tune_cot")]
        for run in trained:
            metrics = {k for (k,) in db.execute("SELECT key FROM metrics WHERE run_uuid=?", (run,))}
            assert {"train_loss", "final_loss"} <= metrics
            assert {"learning_rate", "grad_norm", "epoch"} <= metrics  # the Trainer's own
            # an evaluation never overwrites the training run's own figures
            assert "test_accuracy" not in metrics
            tags = dict(db.execute("SELECT key, value FROM tags WHERE run_uuid=?", (run,)))
            assert len(tags["git_commit"].removesuffix("+dirty")) == 40
            assert tags["input.curated.md5"] and tags["stage"] == "train"
            # its evaluation is a child run of its own, with the test split's lineage
            (child,) = db.execute("SELECT run_uuid FROM tags WHERE key = 'mlflow.parentRunId' "
                                  "AND value = ?", (run,)).fetchall()
            evaluation = dict(db.execute("SELECT key, value FROM tags WHERE run_uuid=?", child))
            assert evaluation["stage"] == "evaluate" and evaluation["input.test.md5"]
            assert {k for (k,) in db.execute("SELECT key FROM metrics WHERE run_uuid=?", child)
                    } >= {"test_accuracy", "test_n", "test_unanswered_share"}
        aliases = db.execute("SELECT name, alias FROM registered_model_aliases").fetchall()
        assert aliases == [("cotdistill-student", "champion")]  # best on validation
    # of the trained students only the champion is logged as a model (mlflow.log_models:
    # champion), and the Socratic pair as one model of its evaluation run (qg and qa)
    artifacts = list((repo / "mlartifacts").rglob("model.safetensors"))
    assert sorted(path.parent.name for path in artifacts) == ["qa", "qg", "student"]
    pair = {path.parents[1] for path in artifacts if path.parent.name in ("qg", "qa")}
    assert len(pair) == 1  # one model holding both


def test_a_second_repro_does_nothing(pipeline):
    repo, _ = pipeline
    second = _dvc(repo, "repro")
    assert second.returncode == 0, second.stderr
    assert "Running stage" not in second.stdout
    assert "up to date" in second.stdout


def test_a_trained_student_is_one_copy_on_disk_shared_with_the_dvc_cache(pipeline):
    """`.dvc/config`'s cache.type links models/ to .dvc/cache by a hard link (read-only, so no
    edit can corrupt the cache), and copies only where no link can be made (another
    filesystem). DVC's commit after a stage makes hard links only when "hardlink" comes first:
    with "reflink,hardlink" on ext4 it leaves a second copy."""
    repo, _ = pipeline
    weights = repo / "models/tiny/fine_tune_cot/model.safetensors"
    cached = [path for path in (repo / ".dvc/cache").rglob("*")
              if path.is_file() and path.stat().st_size == weights.stat().st_size
              and path.read_bytes() == weights.read_bytes()]
    assert len(cached) == 1
    assert weights.stat().st_ino == cached[0].stat().st_ino
    assert not weights.stat().st_mode & 0o222  # protected: written only through DVC


def test_a_teacher_stage_that_fails_under_dvc_repro_keeps_the_paid_completions(pipeline):
    """DVC deletes a stage's outs before running it unless they persist; the teacher's are
    paid for, and the stage reads them back as a cache, so they must survive a failed run."""
    repo, _ = pipeline
    params_file = repo / "params.yaml"
    original = params_file.read_text()
    completions = repo / "data/teacher/completions.jsonl"
    paid, report = completions.read_bytes(), (repo / "reports/teacher.json").read_bytes()
    params = yaml.safe_load(original)
    params["teacher"].update(backend="openai", base_url="http://127.0.0.1:9/v1", model="gone",
                             max_retries=0, timeout_s=5)  # a server that is not there
    params_file.write_text(yaml.safe_dump(params, sort_keys=False))
    try:
        failed = _dvc(repo, "repro", "teacher")
        assert failed.returncode != 0
        assert "teacher: incomplete" in failed.stderr
        assert completions.read_bytes() == paid
        assert (repo / "reports/teacher.json").read_bytes() == report
    finally:
        params_file.write_text(original)
    assert "up to date" in _dvc(repo, "status", "teacher").stdout


@pytest.mark.slow  # an experiment's worth of evaluations: minutes, so CI's slow pass runs it
def test_dvc_exp_run_with_changed_evaluation_settings_evaluates_again(pipeline):
    """MLflow params cannot change; each evaluation is a run of its own, so changing
    evaluate.* re-runs only what reads them and leaves MLflow consistent."""
    repo, _ = pipeline
    db_path = repo / "mlflow.db"

    def training_tags() -> dict:
        with sqlite3.connect(db_path) as db:
            return {run: dict(db.execute("SELECT key, value FROM tags WHERE run_uuid=?", (run,)))
                    for (run,) in db.execute("SELECT run_uuid FROM tags WHERE key = 'stage' "
                                             "AND value = 'train'")}

    before = training_tags()
    ran = _dvc(repo, "exp", "run", "-S", "evaluate.max_examples=3",
               "-S", "evaluate.max_new_tokens=16")
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    stages = {line.split("'")[1] for line in ran.stdout.splitlines()
              if line.startswith("Running stage")}
    assert "evaluate@tiny-answer_only" in stages and "report" in stages
    assert not {s for s in stages if s.startswith(("train", "teacher", "curate", "prepare"))}
    with sqlite3.connect(db_path) as db:
        assert db.execute("SELECT COUNT(*) FROM runs WHERE status != 'FINISHED'").fetchone() \
            == (0,)
    assert training_tags() == before  # no tag of a training run was overwritten
    with sqlite3.connect(db_path) as db:  # the new evaluations name their DVC experiment
        names = {name for (name,) in db.execute("SELECT value FROM tags WHERE key = "
                                                 "'dvc.exp_name'")}
    shown = _dvc(repo, "exp", "show", "--no-pager", "--csv").stdout
    assert len(names) == 1 and names.pop() in shown
    metrics = json.loads((repo / "reports/eval/tiny/answer_only/metrics.json").read_text())
    assert metrics["n"] == 3 * 3  # per dataset, three datasets


def test_the_user_datasets_went_through_every_stage(pipeline):
    repo, _ = pipeline

    def datasets_in(path: str) -> set[str]:
        lines = (repo / path).read_text().splitlines()
        return {json.loads(line)["dataset"] for line in lines}

    users = {"shop_sums", "colours"}
    for path in ("data/prepared/train.jsonl", "data/prepared/test.jsonl",
                 "data/teacher/completions.jsonl", "data/curated/answer_only.jsonl",
                 "reports/eval/tiny/answer_only/predictions.jsonl",
                 "reports/eval/tiny/fine_tune_cot/predictions.jsonl"):
        assert users <= datasets_in(path), path
    report = json.loads((repo / "reports/prepare.json").read_text())["datasets"]
    assert report["shop_sums"]["normalised"] == {"answer: thousands separators removed": 1}
    assert report["colours"]["normalised"] == {"answer: option text read as its letter": 12}
    test = [json.loads(line) for line in (repo / "data/prepared/test.jsonl").read_text().splitlines()]
    colours = [e for e in test if e["dataset"] == "colours"]
    assert all(e["answer"] in "ABC" and e["question"].endswith("(C) blue") for e in colours)
    summary = (repo / "reports/summary.md").read_text()
    assert "shop_sums" in summary and "colours" in summary
    assert "Decontamination" in summary


def test_cotdistill_predict_answers_a_user_question_from_the_trained_student(pipeline):
    repo, _ = pipeline
    question = "At the bakery the loaves are green. What colour are the loaves?"
    done = cotdistill(repo, "predict", "models/tiny/fine_tune_cot", question,
                      "--dataset", "colours", "--choice", "red", "--choice", "green",
                      "--choice", "blue", "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    (line,) = done.stdout.strip().splitlines()
    answer = json.loads(line)
    assert answer["question"].endswith("Answer Choices: (A) red (B) green (C) blue")
    assert isinstance(answer["output"], str)
    assert answer["answer"] is None or answer["answer"] in ("A", "B", "C")


def test_changing_a_user_dataset_file_makes_prepare_stale(pipeline):
    repo, _ = pipeline
    path = repo / "data/raw/shop_sums.jsonl"
    original = path.read_bytes()
    try:
        path.write_bytes(original + b'{"problem": "How many is 2 and 2?", "solution": "4"}\n')
        status = _dvc(repo, "status", "prepare")
        assert "changed deps" in status.stdout and "data/raw" in status.stdout, status.stdout
    finally:
        path.write_bytes(original)
    assert "up to date" in _dvc(repo, "status", "prepare").stdout
