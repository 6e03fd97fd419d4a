"""docs/results.md's tables are rendered from reproduction/results.json, and README.md's Quick
start figures from the default pipeline's reports/, never typed by hand; the Table 5 harness's
Wilson interval, row keys and results file."""

from __future__ import annotations

import json
import math
import sys

import pytest

from support.repo import REPO

sys.path.insert(0, str(REPO / "scripts"))
import render_results as render  # noqa: E402

harness = render.harness


def test_the_document_is_rendered_from_the_results_file():
    rows = harness.load_rows(harness.RESULTS)
    document = render.DOC.read_text(encoding="utf-8")
    assert render.render(document, rows) == document, (
        "docs/results.md differs from reproduction/results.json: run "
        "`python scripts/render_results.py`")


def test_check_fails_when_a_table_is_edited_by_hand(tmp_path, capsys):
    doc = tmp_path / "results.md"
    document = render.DOC.read_text(encoding="utf-8")
    start = document.index("<!-- BEGIN table:table5 -->")
    edited = document[:start] + document[start:].replace("not run", "42.0", 1) \
        if "not run" in document[start:] else document.replace("| 6.58 |", "| 6.59 |", 1)
    assert edited != document
    doc.write_text(edited, encoding="utf-8")
    only = ["--only", "results", "--doc", str(doc), "--results", str(harness.RESULTS)]
    assert render.main(["--check", *only]) == 1
    assert "render_results.py" in capsys.readouterr().err
    assert render.main(only) == 0
    assert doc.read_text(encoding="utf-8") == document
    assert render.main(["--check", *only]) == 0


def test_a_missing_or_unknown_table_region_is_an_error():
    rows = harness.load_rows(harness.RESULTS)
    document = render.DOC.read_text(encoding="utf-8")
    with pytest.raises(ValueError, match="unknown table 'gone'"):
        render.render(document.replace("table:seeds", "table:gone"), rows)
    start, end = document.index("<!-- BEGIN table:seeds"), document.index("<!-- END table:seeds")
    with pytest.raises(ValueError, match="no region for table.s. seeds"):
        render.render(document[:start] + document[end:].split("\n", 1)[1], rows)
    with pytest.raises(ValueError, match="no matching END"):
        render.render(document.replace("<!-- END table:seeds -->", ""), rows)


# --- README.md: the default pipeline's figures, from reports/ --------------------------------

README_BEGIN = "<!-- BEGIN table:default-pipeline -->"


def test_the_readme_is_rendered_from_the_reports():
    document = render.README.read_text(encoding="utf-8")
    assert document.count(README_BEGIN) == 1
    reports = render.load_reports(render.REPORTS)
    assert render.render(document, reports, render.README_TABLES) == document, (
        "README.md differs from reports/: run `python scripts/render_results.py`")


def _hand_edited_readme(tmp_path):
    """README.md with one digit inside its rendered region changed, as a hand edit would."""
    document = render.README.read_text(encoding="utf-8")
    start = document.index(README_BEGIN) + len(README_BEGIN)
    at = next(i for i in range(start, len(document)) if document[i].isdigit())
    edited = document[:at] + str((int(document[at]) + 1) % 10) + document[at + 1:]
    path = tmp_path / "README.md"
    path.write_text(edited, encoding="utf-8")
    return path, document


def test_check_fails_when_the_readme_is_edited_by_hand(tmp_path, capsys):
    readme, document = _hand_edited_readme(tmp_path)
    only = ["--only", "readme", "--readme", str(readme), "--reports", str(render.REPORTS)]
    assert render.main(["--check", *only]) == 1
    assert "--only readme" in capsys.readouterr().err
    assert render.main(only) == 0
    assert readme.read_text(encoding="utf-8") == document
    assert render.main(["--check", *only]) == 0


def test_check_covers_both_documents(tmp_path):
    assert render.main(["--check"]) == 0
    readme, _ = _hand_edited_readme(tmp_path)
    assert render.main(["--check", "--readme", str(readme)]) == 1


def test_prose_outside_the_readme_region_is_left_alone():
    document = render.README.read_text(encoding="utf-8")
    reports = render.load_reports(render.REPORTS)
    edited = document.replace("## Quick start", "## Quick start (edited)", 1)
    assert render.render(edited, reports, render.README_TABLES) == edited
    with pytest.raises(ValueError, match="no region for table.s. default-pipeline"):
        render.render(document.replace(README_BEGIN, "").replace(
            "<!-- END table:default-pipeline -->", ""), reports, render.README_TABLES)


def _write(path, value):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value) if not isinstance(value, str) else value, encoding="utf-8")


def _reports(root, *, fine_tune=(37, 40), extra=None, train_extra=None):
    """A reports/ folder as the default pipeline writes it, with figures of the test's choice."""
    results = {"fine_tune_cot": fine_tune, "answer_only": (20, 40), "zero_shot": (21, 40),
               "zero_shot_cot": (15, 40), "few_shot_cot": (10, 40)}
    for method, (correct, n) in results.items():
        figures = {"accuracy": correct / n, "n": n}
        _write(root / "eval" / "smollm2-135m" / method / "metrics.json",
               {**figures, "datasets": {"coin_flip": figures}, **(extra or {})})
    _write(root / "eval" / "smollm2-135m" / "socratic" / "metrics.json",
           {"skipped": "no correct decompositions to train on"})
    for method, examples in (("fine_tune_cot", 280), ("answer_only", 300)):
        folder = root / "train" / "smollm2-135m" / method
        _write(folder / "metrics.json",
               {"steps": 70, "train_examples": examples, "epochs_trained": 2.0, "best_step": 60,
                "best_val_accuracy": 0.9, "val_examples": 30, **(train_extra or {})})
        _write(folder / "val.csv", "step,val_accuracy\n20,0.5\n60,0.9\n")
    accuracy = {method: correct / n for method, (correct, n) in results.items()}
    prompting = max(accuracy.pop(m) for m in ("zero_shot", "zero_shot_cot", "few_shot_cot"))
    _write(root / "metrics.json", {"teacher": {"accuracy": 0.9, "accepted": 280},
                                   "coin_flip": {"n": 40, **accuracy, "prompting": prompting}})
    _write(root / "curate.json", {"teacher_accuracy": 0.9, "kept_rationales": 280,
                                  "datasets": {"coin_flip": {"questions": 311}},
                                  "examples": {"fine_tune_cot": 280, "answer_only": 300}})
    _write(root / "prepare.json", {"datasets": {"coin_flip": {"source": "published",
                                                              "test": 150}}})
    _write(root / "teacher.json", {"teacher": "text-davinci-002"})
    return root


def test_the_readme_table_takes_every_figure_from_the_reports(tmp_path):
    table = render.default_pipeline(render.load_reports(_reports(tmp_path / "reports")))
    assert "the first 40 of the 150 questions of Coin Flip's published test split" in table
    assert "92.5" in table and "[80.1, 97.4]" in table  # 37 of 40, and its Wilson interval
    assert "| **Fine-tune-CoT** | 280 of the teacher's rationales (the correct ones); 2 epochs |" \
        in table
    assert "| 300 gold answers, no rationale; 2 epochs | 50.0 [35.2, 64.8] | 40 | " \
           "90.0 (n=30; step 60 of 70) |" in table
    assert "text-davinci-002, answered 90.0% of the 311 training questions right; its 280" \
        in " ".join(table.split())
    assert "Socratic CoT (question-generator and sub-question-solver students): not evaluated: " \
           "no correct decompositions to train on." in " ".join(table.split())
    verdict = " ".join(table.split())
    assert "Fine-tune-CoT 92.5% against answer-only 50.0% (+42.5 points) and the best " \
           "prompting baseline, zero-shot, 52.5% (+40.0): Fine-tune-CoT beats both" in verdict
    assert "Commit and hardware: not recorded" in verdict
    assert "98.0" not in table and "52.0" not in table  # nothing of the committed run

    lower = render.default_pipeline(render.load_reports(
        _reports(tmp_path / "lower", fine_tune=(19, 40))))
    assert "Fine-tune-CoT does not beat both; its Wilson interval overlaps both of theirs" \
        in " ".join(lower.split())


def test_the_readme_table_records_commit_and_hardware_where_the_reports_do(tmp_path):
    device = {"cpu": "Example CPU", "cpu_capability": "AVX2", "cpu_bf16": False}
    table = render.default_pipeline(render.load_reports(_reports(
        tmp_path / "reports", extra={"commit": "0123456789abcdef", "device": device})))
    assert "Run at commit 0123456789 on Example CPU (AVX2): smollm2-135m/fine_tune_cot," \
        in " ".join(table.split())
    assert "not recorded" not in table


def test_stale_reports_are_an_error(tmp_path):
    root = _reports(tmp_path / "reports")
    summary = json.loads((root / "metrics.json").read_text())
    summary["coin_flip"]["answer_only"] = 0.99
    (root / "metrics.json").write_text(json.dumps(summary))
    with pytest.raises(ValueError, match="disagree"):
        render.load_reports(root)
    readme = tmp_path / "README.md"
    readme.write_text(f"{README_BEGIN}\n<!-- END table:default-pipeline -->\n")
    assert render.main(["--check", "--only", "readme", "--readme", str(readme),
                        "--reports", str(root)]) == 2


def _row(dataset="coin_flip", method="fine_tune_cot", seed=0, correct=141, n=150, **extra):
    return {"dataset": dataset, "student": "smollm2-135m", "method": method, "seed": seed,
            "settings": dict(harness.TABLE_SETTINGS), **harness.counts(correct, n), **extra}


def test_rows_render_into_the_tables_and_seeds_into_the_noise_table():
    rows = [_row(), _row(seed=1, correct=120),
            _row(method="answer_only", correct=67),
            {**_row(method="teacher", seed=None, correct=140),
             "student": harness.TEACHER_NAME,
             "settings": {"evaluate.max_examples": None}},
            {**_row(dataset="multiarith", method="fine_tune_cot", correct=30, n=180),
             "student": "gemma-3-270m", "student_parameters": 268_098_176}]
    table = render.table5(rows)
    coin = next(line for line in table.splitlines() if line.startswith("| Coin Flip | smollm2"))
    assert "| 150 | 94.0 [89.0, 96.8] | 44.7 | not run | not run | 93.3 | 100.00 | 100.00 |" \
        in coin
    [gemma] = [line for line in table.splitlines() if "gemma-3-270m" in line]
    assert gemma.startswith("| MultiArith | gemma-3-270m (268M; just above Table 5's <=250M bin) "
                            "| 180 | 16.7")  # only where it ran, with its own n
    noise = render.seeds(rows)
    assert "seed 0: 94.0; seed 1: 80.0 | 14.0 |" in noise
    assert "differ" not in render.details(rows)


def test_the_held_out_tasks_set_each_trained_row_against_its_best_untrained_prompt():
    held_out = {"svamp": harness.counts(5, 50), "strategy_qa": harness.counts(30, 50)}
    rows = [_row(transfer=held_out),
            _row(method="zero_shot", seed=None, transfer={
                "svamp": harness.counts(2, 50), "strategy_qa": harness.counts(20, 50)}),
            # the untrained student answers the same held-out questions in any work directory
            _row(dataset="multiarith", method="zero_shot_cot", seed=None, transfer={
                "svamp": harness.counts(4, 50), "strategy_qa": harness.counts(31, 50)}),
            _row(method="answer_only")]  # older rows carry no transfer: not shown
    table = render.transfer(rows).splitlines()
    assert len(table) == 4
    assert table[2] == ("| Coin Flip | smollm2-135m | fine_tune_cot | 0 | strategy_qa | 50 | "
                        "60.0 [46.2, 72.4] | 62.0 (zero_shot_cot) | -2.0 |")
    assert table[3].endswith("| svamp | 50 | 10.0 [4.3, 21.4] | 8.0 (zero_shot_cot) | +2.0 |")
    assert "not run yet" in render.transfer([_row()])


def test_the_untrained_held_out_figures_show_before_any_trained_row_has_them():
    rows = [_row(method="zero_shot", seed=None, transfer={"svamp": harness.counts(2, 50)}),
            _row(method="zero_shot_cot", seed=None, transfer={"svamp": harness.counts(5, 50)}),
            _row(transfer=None)]  # a trained row from before the held-out tasks
    table = render.transfer(rows).splitlines()
    assert table[2:] == ["| no trained row yet | smollm2-135m | - | - | svamp | 50 | - | "
                         "10.0 (zero_shot_cot) | - |"]


def test_a_forced_precision_row_sits_beside_auto_and_the_seed_spread_not_in_the_table():
    auto = {**_row(), "precision": {"train": "bf16", "evaluate": "bf16"}}
    fp32 = {**_row(correct=138), "variant": "fp32",
            "precision": {"train": "fp32", "evaluate": "fp32"}}
    rows = [auto, _row(seed=1, correct=120), fp32]
    check = render.precision_check(rows)
    assert "| Coin Flip | smollm2-135m | fine_tune_cot | 0 |" in check
    assert "| bf16 / bf16: 94.0 | fp32 / fp32: 92.0 | 2.0 | 14.0 |" in check
    coin = next(line for line in render.table5(rows).splitlines()
                if line.startswith("| Coin Flip | smollm2"))
    assert "94.0 [89.0, 96.8]" in coin  # the table shows auto's row, not the forced one
    assert "no row at a forced precision yet" in render.precision_check([auto])


def test_the_throughput_section_is_rendered_from_the_benchmarks_json(tmp_path, capsys):
    assert render.main(["--check", "--only", "benchmarks"]) == 0
    run = json.loads(render.THROUGHPUT.read_text())
    text = render.train_throughput(run)
    raw = run["results"]["raw bf16"]["tokens_per_s"]
    new = run["results"]["pipeline bf16"]["tokens_per_s"]
    assert f"| pipeline bf16 | {new:.1f} | {new / raw:.2f} |" in text
    assert run["device"]["cpu"] in text and "commit" in text


def test_a_row_with_other_settings_is_marked():
    row = _row()
    row["settings"]["train.hparams.epochs"] = 1
    assert render.differences(row) == ["epochs=1"]
    assert "94.0 [89.0, 96.8] *" in render.table5([row])


def test_every_row_of_the_results_file_is_consistent():
    rows = harness.load_rows(harness.RESULTS)
    keys = [harness.row_key(row) for row in rows]
    assert len(keys) == len(set(keys))
    for row in rows:
        assert not row["settings"].get("smoke"), "smoke rows never go to the results file"
        assert 0 <= row["correct"] <= row["n"]
        assert row["accuracy"] == pytest.approx(row["correct"] / row["n"])
        low, high = harness.wilson_interval(row["correct"], row["n"])
        assert row["wilson95"] == pytest.approx([low, high], abs=1e-6)
        if not row.get("legacy"):
            assert row["commit"] and row["device"]["cpu"] and "cpu_bf16" in row["device"]
            assert row["dataset"] in harness.DATASETS and row["method"] in harness.METHODS
    text = harness.RESULTS.read_text(encoding="utf-8")
    assert harness.dump_rows(rows) == text, "rows are written sorted, in one format"


@pytest.mark.parametrize(("correct", "n", "low", "high"), [  # scipy's Wilson interval, to 6 places
    (141, 150, 0.889910, 0.968116),
    (0, 4, 0.0, 0.489891),
    (4, 4, 0.510109, 1.0),
    (67, 150, 0.369428, 0.526569),
])
def test_wilson_interval(correct, n, low, high):
    assert harness.wilson_interval(correct, n) == pytest.approx((low, high), abs=1e-6)


def test_wilson_interval_is_symmetric_and_agrees_with_scipy():
    for correct, n in [(0, 1), (1, 3), (5, 11), (50, 100), (149, 150)]:
        low, high = harness.wilson_interval(correct, n)
        mirrored = harness.wilson_interval(n - correct, n)
        assert (low, high) == pytest.approx((1 - mirrored[1], 1 - mirrored[0]), abs=1e-12)
        assert low <= correct / n <= high
    assert harness.wilson_interval(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError):
        harness.wilson_interval(3, 2)
    stats = pytest.importorskip("scipy.stats")
    for correct, n in [(1, 3), (94, 150), (12, 180)]:
        ci = stats.binomtest(correct, n).proportion_ci(confidence_level=0.95, method="wilson")
        assert harness.wilson_interval(correct, n) == pytest.approx((ci.low, ci.high), abs=1e-9)
    assert math.isclose(harness.wilson_interval(5, 10, confidence=0.99)[0], 0.184226, abs_tol=1e-6)


def test_rows_are_keyed_and_written_whole(tmp_path):
    path = tmp_path / "results.json"
    harness.save_row(path, _row())
    harness.save_row(path, _row(correct=140))  # the same key: replaced
    harness.save_row(path, _row(seed=1))
    harness.save_row(path, {**_row(), "legacy": "an earlier run"})  # never replaced by a new one
    rows = harness.load_rows(path)
    assert [(r["seed"], r["correct"], bool(r.get("legacy"))) for r in rows] == \
        [(0, 140, False), (1, 141, False), (0, 141, True)]
    assert json.loads(path.read_text())["format"] == harness.FORMAT
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".results.json.")
                and not p.name.endswith(".lock")]


def test_smoke_rows_never_go_to_the_results_file(tmp_path):
    with pytest.raises(SystemExit):
        harness.parse_args(["--smoke", "--work-root", str(harness.WORK_ROOT)])
    with pytest.raises(SystemExit):
        harness.parse_args(["--smoke", "--work-root", str(tmp_path),
                            "--results", str(harness.RESULTS)])
    args = harness.parse_args(["--smoke", "--work-root", str(tmp_path)])
    assert args.results == str(tmp_path / "results.json")


def test_hardware_description_names_the_cpu(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Example  CPU @ 2.0GHz\n")
    hardware = render.hardware
    assert hardware.cpu_model(cpuinfo) == "Example CPU @ 2.0GHz"
    assert hardware.auto_precision({"cpu_bf16": True, "gpu": None}) == "bf16"
    assert hardware.auto_precision({"cpu_bf16": True, "gpu": "X", "gpu_bf16": False}) == "fp32"
    assert hardware.label({"cpu": "C", "cpu_capability": "AVX2", "cpu_bf16": False}) == "C (AVX2)"


def test_explicit_computations_are_checked_by_their_arithmetic():
    assert render.computations("42 - 9 = 27. Then 21*21=441, and 1,200 + 300 = 1,500.") == (3, 1)
    assert render.computations("8 / 0 = 4") == (1, 1)  # no division by zero is right
    assert render.computations("She has 5 apples --> 5") == (0, 0)


def test_predictions_are_collected_only_for_the_run_that_made_the_row(tmp_path):
    collect = sys.modules["collect_predictions"] if "collect_predictions" in sys.modules else \
        _load("collect_predictions", REPO / "scripts" / "collect_predictions.py")
    folder = tmp_path / "reproduction" / "coin_flip" / "reports" / "eval" / "smollm2-135m" / \
        "fine_tune_cot"
    folder.mkdir(parents=True)
    records = [{"dataset": "coin_flip", "output": "--> yes", "prediction": "yes",
                "correct": i < 3} for i in range(4)]
    (folder / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    row = {**_row(correct=3, n=4), "work_dir": "reproduction/coin_flip"}
    out = tmp_path / "out"
    original = collect.OUT
    collect.OUT = out
    try:
        assert collect.collect([row], tmp_path) == (1, [])
        assert (out / "coin_flip" / "smollm2-135m" / "fine_tune_cot.jsonl").is_file()
        copied, skipped = collect.collect([{**row, "correct": 2}], tmp_path)
        assert copied == 0 and "another run" in skipped[0]
        # the same student with exemplars in context: copied beside, checked the same way
        (folder / "predictions_few_shot.jsonl").write_text(
            "".join(json.dumps({**r, "correct": i < 1}) + "\n" for i, r in enumerate(records)))
        few = {**row, "variant": "few-shot2", "few_shot": harness.counts(1, 4)}
        assert collect.collect([few], tmp_path) == (1, [])
        assert (out / "coin_flip" / "smollm2-135m" /
                "fine_tune_cot-few-shot2-in-context.jsonl").is_file()
        copied, skipped = collect.collect([{**few, "few_shot": harness.counts(2, 4)}], tmp_path)
        assert copied == 1 and "predictions_few_shot.jsonl: holds another run" in skipped[0]
    finally:
        collect.OUT = original


def test_last_letters_errors_are_told_apart_misread_from_joined_wrong():
    misread = {"output": 'The last letter of "Lloyd" is "y".\nThe last letter of "Ann" is "n". '
                         '--> yn', "prediction": "yn"}
    joined = {"output": 'The last letter of "Ana" is "a".\nThe last letter of "Bo" is "o". '
                        '--> oa', "prediction": "oa"}
    right = {"output": 'The last letter of "Ana" is "a".\nThe last letter of "Bo" is "o". '
                       '--> ao', "prediction": "ao"}
    assert render.letter_errors(misread) == (True, False)
    assert render.letter_errors(joined) == (False, True)
    assert render.letter_errors(right) == (False, False)


def test_the_teacher_throughput_table_is_rendered_from_its_json():
    run = json.loads(render.TEACHER_THROUGHPUT.read_text())
    text = render.teacher_throughput({})
    base = run["rows"][0]["requests"] / run["rows"][0]["seconds"]
    for row in run["rows"]:
        rate = row["requests"] / row["seconds"]
        assert f"| {row['concurrency']} | {row['requests']} | {rate / base:.2f} |" in text
    assert run["commit"] in text and render.hardware.label(run["device"]) in text


def test_the_harness_fixes_result_masking_by_its_variant_not_by_the_default(tmp_path):
    """params.yaml masks the calculator's results by default; the table's unmasked rows must
    still train with them in the loss, or its two columns would measure the same thing."""
    assert harness.get(harness.yaml.safe_load((REPO / "params.yaml").read_text()),
                       harness.MASK_RESULTS) is True
    for flags, masked in (([], False), (["--mask-results"], True)):
        args = harness.parse_args(["--smoke", "--work-root", str(tmp_path), *flags])
        params = harness.Harness(args).params_for(["multiarith"])
        assert harness.get(params, harness.MASK_RESULTS) is masked


def test_the_masking_table_pairs_each_dataset_and_pools_validation_and_test():
    def calc(dataset, correct, n, val_correct, val_n, step, **extra):
        training = {"best_val_accuracy": val_correct / val_n, "val_examples": val_n,
                    "best_step": step}
        return _row(dataset, "fine_tune_cot_calc", correct=correct, n=n, training=training,
                    **extra)

    rows = [calc("single_eq", 39, 152, 5, 36, 20), calc("single_eq", 34, 152, 9, 36, 60,
                                                         variant="masked"),
            calc("addsub", 53, 119, 15, 28, 100),  # no masked row: left out of the sums
            calc("multiarith", 41, 180, 8, 36, 40), calc("multiarith", 38, 180, 11, 36, 100,
                                                         variant="masked")]
    lines = render.masking(rows).splitlines()
    single_eq = next(line for line in lines if line.startswith("| SingleEq"))
    assert "| 36 | 5 (20) | 9 (60) | 152 | 25.7 [19.4, 33.1] | 22.4 [16.5, 29.6] |" in single_eq
    assert not any(line.startswith("| AddSub") for line in lines)
    assert lines[-1].startswith("| all | | 72 | 13 (18.1%) | 20 (27.8%) | 332 | 80 (24.1%) | "
                                "72 (21.7%) |")
    assert "not run yet" in render.masking(rows[:1])
    details = render.details(rows)  # two rows of one key: the variant tells them apart
    assert details.count("| fine_tune_cot_calc (masked) | 0 |") == 2


def test_few_shot_rows_make_the_exemplars_and_the_mixture_once(tmp_path, monkeypatch):
    """The 2 x 2 needs the exemplars stage (the mixture trains on its shots, the few-shot
    evaluation puts them in context), which the other rows never run; a work directory whose
    data came before them gets them without its models being retrained."""
    ran: list[str] = []

    def stage(self, work, label, name, *rest):  # stands for the cotdistill stage commands
        ran.append(name)
        outputs = {"curate": ["reports/curate.json", "data/curated/fine_tune_cot.jsonl"],
                   "exemplars": ["data/exemplars.jsonl"]}.get(name, [])
        if name == "curate" and (work / "data/exemplars.jsonl").is_file():
            outputs.append(f"data/curated/{harness.MIXED[0]}.jsonl")
        for output in outputs:
            (work / output).parent.mkdir(parents=True, exist_ok=True)
            (work / output).write_text("{}\n")
        return 1.0

    monkeypatch.setattr(harness.Harness, "stage", stage)
    monkeypatch.setattr(harness, "held_out_of",
                        lambda work: [n for n in harness.HELD_OUT if n != "multiarith"])
    plain = harness.Harness(harness.parse_args(["--smoke", "--work-root", str(tmp_path)]))
    plain.ensure_data(plain.work_dir("multiarith"), ["multiarith"], "plain")
    assert ran == ["prepare", "teacher", "curate"]

    ran.clear()
    few = harness.Harness(harness.parse_args(["--smoke", "--work-root", str(tmp_path),
                                              "--few-shot", "2"]))
    work = few.work_dir("multiarith")
    few.ensure_data(work, ["multiarith"], "few-shot")
    assert ran == ["prepare", "teacher", "exemplars", "curate"]
    assert (work / f"data/curated/{harness.MIXED[0]}.jsonl").is_file()

    ran.clear()
    few.ensure_data(work, ["multiarith"], "again")  # all there: nothing runs twice
    assert ran == []
    (work / "harness-stamps.json").write_text(json.dumps(
        {**few.stamps(work), "exemplars": {"k": 99}}))  # other exemplars params: made again
    few.ensure_data(work, ["multiarith"], "changed")
    assert ran == ["exemplars", "curate"]

    ran.clear()  # data made before any --few-shot row: exemplars and the mixture added
    (work / "data/exemplars.jsonl").unlink()
    (work / f"data/curated/{harness.MIXED[0]}.jsonl").unlink()
    few.ensure_data(work, ["multiarith"], "older")
    assert ran == ["exemplars", "curate"]
