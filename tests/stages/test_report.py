"""The report says whether distillation worked, and which teacher wrote which rationales."""

from __future__ import annotations

from cotdistill.stages.report import headline_accuracy, headline_metrics, provenance, verdicts


def _metrics(**by_dataset: float) -> dict:
    return {"accuracy": sum(by_dataset.values()) / len(by_dataset), "n": 10 * len(by_dataset),
            "datasets": {d: {"accuracy": a, "n": 10} for d, a in by_dataset.items()}}


def test_the_verdict_compares_fine_tune_cot_with_answer_only_and_the_best_baseline():
    results = {("s", "fine_tune_cot"): _metrics(coin_flip=0.9, dates=0.3),
               ("s", "answer_only"): _metrics(coin_flip=0.6, dates=0.4),
               ("s", "zero_shot"): _metrics(coin_flip=0.5, dates=0.2),
               ("s", "few_shot_cot"): _metrics(coin_flip=0.7, dates=0.1)}
    lines = verdicts(results, ["zero_shot", "few_shot_cot"])
    [coin] = [line for line in lines if "coin_flip" in line]
    assert "+30.0 points" in coin and "few_shot_cot, 70.0%" in coin and "beats both" in coin
    [dates] = [line for line in lines if "dates" in line]
    assert "zero_shot, 20.0%" in dates and "does not beat both" in dates


def test_rationales_from_different_teachers_are_said_to_differ():
    lines = provenance({"source": "kojima_logs", "teacher": "text-davinci-002"},
                       {"skipped": "teacher.backend is replay: no model"},
                       {"teacher_model": {"backend": "transformers", "model": "smollm2"}})
    text = "\n".join(lines)
    assert ("fine_tune_cot, fine_tune_cot_calc, fine_tune_cot_mixed, distill_step_by_step, "
            "two_stage_cot: text-davinci-002 (kojima_logs)") in text
    assert "nothing to do: teacher.backend is replay" in text
    assert "smollm2 (transformers)" in text and "not a like-for-like comparison" in text


def test_the_report_says_which_splits_each_replayed_log_covers():
    teacher = {"source": "kojima_logs", "teacher": "text-davinci-002", "datasets": {
        "commonsense_qa": {"log": "log/commonsensqa_zero_shot_cot.log", "covers": "test",
                           "note": "Kojima et al.'s CommonsenseQA run covers the test questions "
                                   "only (CommonsenseQA's dev set)"},
        "strategy_qa": {"log": "log/strategyqa_zero_shot_cot.log", "covers": "both"}}}
    text = "\n".join(provenance(teacher, None, None))
    assert ("  - commonsense_qa: log/commonsensqa_zero_shot_cot.log covers test questions only "
            "(Kojima et al.'s CommonsenseQA run") in text
    assert "  - strategy_qa: log/strategyqa_zero_shot_cot.log covers training and test " \
        "questions\n" in text + "\n"
    # a report from before coverage was counted, or a model teacher's, claims nothing
    assert "covers" not in "\n".join(provenance(
        {"source": "kojima_logs", "teacher": "t", "datasets": {"x": {"log": "l"}}}, None, None))


def test_one_teacher_for_everything_needs_no_warning():
    text = "\n".join(provenance({"source": "transformers", "model": "m"}, None,
                                {"teacher_model": {"backend": "transformers", "model": "m"}}))
    assert "like-for-like" not in text


def test_a_skipped_student_is_reported_with_its_reason_not_a_number():
    from cotdistill.stages.report import summary_markdown

    curation = {"datasets": {}, "teacher_accuracy": 0.9, "kept_rationales": 3}
    text = summary_markdown("t", curation, {
        ("s", "fine_tune_cot"): _metrics(coin_flip=0.9),
        ("s", "socratic"): {"skipped": "no correct decompositions"}})
    assert "s/socratic: not evaluated: no correct decompositions." in text
    assert "| s | socratic |" not in text


def test_the_data_section_shows_what_decontamination_dropped_with_an_example():
    from cotdistill.stages.report import data_section

    prepared = {"decontamination": {"ngram": 8, "threshold": 0.5}, "datasets": {
        "multiarith": {"source": "published", "train": 370, "val": 41, "test": 180,
                       "repeated_questions_dropped": 5,
                       "decontamination": {"by": "ngram", "exact": 0, "ngram": 57, "examples": [
                           {"train": "Maria bought 2 new chairs", "test": "Emily bought 4 new "
                            "chairs", "kind": "ngram", "score": 0.885}]},
                       "normalised": {}},
        "tickets": {"source": "data/raw/tickets.csv", "train": 9, "val": 1, "test": 4,
                    "repeated_questions_dropped": 0,
                    "decontamination": {"by": "exact", "exact": 1, "ngram": 0, "examples": []},
                    "normalised": {"answer: option text read as its letter": 14}}}}
    text = "\n".join(data_section(prepared))
    assert "| multiarith | published | 370 | 41 | 180 | 5 | 0 + 57 (n-grams) |" in text
    assert "| tickets | data/raw/tickets.csv | 9 | 1 | 4 | 0 | 1 + 0 (exact only) |" in text
    assert '- multiarith (ngram, 0.89): "Maria bought 2 new chairs" ~ test "Emily bought' in text
    assert "50% of its 8-word n-grams" in text
    assert "tickets, normalised: answer: option text read as its letter (14)" in text
    assert data_section(None) == []


def test_answers_never_given_are_counted_and_a_large_share_is_called_out():
    """Truncation must not pass for a low accuracy: evaluation counts the answers that were
    never given, and the report names the setting to raise past 5%."""
    from cotdistill.records import Prediction
    from cotdistill.stages.report import truncation_warnings
    from cotdistill.student.evaluation import accuracy_metrics

    def prediction(number: int, said: str | None) -> Prediction:
        return Prediction(id=f"q{number}", dataset="coin_flip", student="s",
                          method="fine_tune_cot", output="...", prediction=said, answer="no",
                          correct=said == "no")

    cut = accuracy_metrics([prediction(i, None if i < 22 else "no") for i in range(50)])
    assert (cut["accuracy"], cut["unanswered"], cut["unanswered_share"]) == (0.56, 22, 0.44)
    assert cut["datasets"]["coin_flip"]["unanswered"] == 22
    [warning] = [line for line in truncation_warnings({("s", "fine_tune_cot"): cut}) if line]
    assert "22 of 50 questions (44%)" in warning and "evaluate.max_new_tokens" in warning
    fine = accuracy_metrics([prediction(i, None if i < 2 else "no") for i in range(50)])
    assert truncation_warnings({("s", "fine_tune_cot"): fine}) == []  # 4%: no warning


CURATION = {"teacher_accuracy": 0.9, "kept_rationales": 280, "cost": {"usd": 1.5}}


BASELINES = ["zero_shot", "zero_shot_cot", "few_shot_cot"]


def test_the_headline_metrics_are_accuracy_per_dataset_and_method_with_n_and_the_teacher():
    """reports/metrics.json is what `dvc exp show` leads with: the teacher's accuracy and
    accepted rationales, then per dataset its n, each trained method (one student names the
    method alone) and the best prompting baseline; nothing else (no cost, no timing)."""
    headline = headline_metrics(CURATION, {
        ("s", "zero_shot"): _metrics(coin_flip=0.5, dates=0.2),
        ("s", "fine_tune_cot"): _metrics(coin_flip=0.9, dates=0.3),
        ("s", "few_shot_cot"): _metrics(coin_flip=0.3, dates=0.25),
        ("s", "answer_only"): _metrics(coin_flip=0.6, dates=0.4)}, BASELINES)
    assert headline == {"teacher": {"accuracy": 0.9, "accepted": 280},
                        "coin_flip": {"n": 10, "fine_tune_cot": 0.9, "answer_only": 0.6,
                                      "prompting": 0.5},
                        "dates": {"n": 10, "fine_tune_cot": 0.3, "answer_only": 0.4,
                                  "prompting": 0.25}}
    # DVC keeps this order: n first, the trained methods, the baselines' best after them
    assert list(headline["coin_flip"]) == ["n", "fine_tune_cot", "answer_only", "prompting"]
    assert headline_accuracy(headline)["dates"] == {"fine_tune_cot": 0.3, "answer_only": 0.4,
                                                    "prompting": 0.25}


def test_several_students_are_named_and_differing_sizes_are_given_per_pair():
    few = {"accuracy": 0.5, "n": 4, "datasets": {"coin_flip": {"accuracy": 0.5, "n": 4}}}
    headline = headline_metrics(CURATION, {("a", "fine_tune_cot"): _metrics(coin_flip=0.9),
                                           ("a", "zero_shot"): _metrics(coin_flip=0.4),
                                           ("b", "zero_shot"): _metrics(coin_flip=0.2),
                                           ("b", "socratic"): few}, BASELINES)
    assert headline["coin_flip"] == {
        "n": {"a/fine_tune_cot": 10, "a/prompting": 10, "b/prompting": 10, "b/socratic": 4},
        "a/fine_tune_cot": 0.9, "b/socratic": 0.5, "a/prompting": 0.4, "b/prompting": 0.2}
    assert list(headline["coin_flip"])[1:3] == ["a/fine_tune_cot", "b/socratic"]


def test_the_accuracy_plot_draws_perfect_and_empty_scores(tmp_path):
    """Wilson bounds at 0% and 100% sit a rounding error from the score: still drawn."""
    from cotdistill import plots

    drawn = [plots.Bar("a", 1.0, 7, 0.5, True), plots.Bar("b", 0.0, 7, 0.5, False),
             plots.Bar("c", 0.0, 0, 0.0, False)]
    plots.accuracy_plot(tmp_path / "accuracy.png", drawn)
    assert (tmp_path / "accuracy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_report_names_the_students_that_decoded_with_the_calculator():
    from cotdistill.stages.report import students_section

    calc = {**_metrics(multiarith=0.2), "calculator_questions": 10, "calculator_results": 17}
    text = "\n".join(students_section({("s", "fine_tune_cot_calc"): calc,
                                        ("s", "fine_tune_cot"): _metrics(multiarith=0.1)}, []))
    assert "s/fine_tune_cot_calc decoded with the calculator on 10 number questions of 10; " \
        "it wrote 17 results." in text
    assert "s/fine_tune_cot decoded" not in text


def test_the_teacher_section_counts_the_teachers_wrong_arithmetic():
    from cotdistill.stages.report import teacher_section

    curation = {"datasets": {}, "teacher_accuracy": 0.8, "kept_rationales": 5,
                "teacher_arithmetic": {"policy": "fix", "rationales_checked": 5,
                                       "computations": 9, "wrong_computations": 2,
                                       "rationales_with_wrong_arithmetic": 1, "dropped": 0,
                                       "fixed": 1}}
    text = "\n".join(teacher_section(curation))
    assert "2 of 9 computations wrong, in 1 of 5 rationales; curate.teacher_arithmetic fix " \
        "(dropped 0, fixed 1)" in text
    curation["teacher_arithmetic"]["rationales_checked"] = 0  # no number questions: no line
    assert "Teacher arithmetic" not in "\n".join(teacher_section(curation))


def test_the_report_gives_the_few_shot_accuracy_beside_the_zero_shot_one():
    from cotdistill.stages.report import students_section

    mixed = {**_metrics(multiarith=0.2),
             "few_shot": {**_metrics(multiarith=0.3), "shots": 2}}
    text = "\n".join(students_section({("s", "fine_tune_cot_mixed"): mixed}, []))
    assert "s/fine_tune_cot_mixed with 2 of the exemplars stage's worked examples in context " \
        "(evaluate.few_shot): 30.0% (n=10; zero-shot 20.0%)." in text


def test_what_specialising_cost_sets_each_student_against_its_best_untrained_prompt():
    from cotdistill.stages.report import specialising_section

    def held_out(accuracy: dict[str, float]) -> dict:
        return {**_metrics(coin_flip=0.5),
                "transfer": {d: {"accuracy": a, "n": 30} for d, a in accuracy.items()}}

    results = {("s", "fine_tune_cot"): held_out({"multiarith": 0.0, "svamp": 0.1}),
               ("s", "zero_shot"): held_out({"multiarith": 0.1, "svamp": 0.0}),
               ("s", "zero_shot_cot"): held_out({"multiarith": 0.2, "svamp": 0.05})}
    lines = specialising_section(results, ["zero_shot", "zero_shot_cot"])
    assert "| s | fine_tune_cot | multiarith | 0.0% (n=30) | 20.0% (zero_shot_cot) | -20.0 |" \
        in lines
    assert "| s | fine_tune_cot | svamp | 10.0% (n=30) | 5.0% (zero_shot_cot) | +5.0 |" in lines
    rows = [line.split(" | ") for line in lines if line.startswith("| s |")]
    assert [row[1] for row in rows] == ["fine_tune_cot", "fine_tune_cot"]  # no baseline row
    assert specialising_section({("s", "fine_tune_cot"): _metrics(coin_flip=0.5)}, []) == []


def test_the_report_says_which_formats_kd_and_held_out_tasks_each_student_had(tmp_path,
                                                                             monkeypatch):
    from cotdistill.params import Params
    from cotdistill.stages.report import student_inputs

    monkeypatch.chdir(tmp_path)  # no training reports here: no KD share to quote
    params = Params.model_validate({
        "prepare": {"datasets": ["multiarith"]},
        "train": {"methods": ["fine_tune_cot", "fine_tune_cot_mixed", "answer_only"],
                  "hparams": {"transfer_probe": 20, "select_every": 10}},
        "evaluate": {"transfer_datasets": ["multiarith", "svamp", "strategy_qa"]}})
    lines = student_inputs(params)
    assert ("- smollm2-135m/fine_tune_cot: format zero-shot-CoT only; no token-level KD; "
            "held-out tasks svamp, strategy_qa; svamp probed at every validation scoring "
            "(20 questions)") in lines
    assert any(line.startswith("- smollm2-135m/fine_tune_cot_mixed: formats zero-shot-CoT 1, "
                               "few-shot-CoT 1, few-shot answer-only 1 (2 shots)")
               for line in lines)
    [plain] = [line for line in lines if "/answer_only" in line]
    assert "format" not in plain


def test_the_report_claims_no_probe_when_model_selection_is_off(tmp_path, monkeypatch):
    """``transfer_probe`` beside ``select_every: null`` is accepted, but nothing is probed, so
    the report must not say it was."""
    from cotdistill.params import Params
    from cotdistill.stages.report import student_inputs

    monkeypatch.chdir(tmp_path)
    params = Params.model_validate({
        "prepare": {"datasets": ["multiarith"]},
        "train": {"methods": ["fine_tune_cot"],
                  "hparams": {"transfer_probe": 20, "select_every": None}},
        "evaluate": {"transfer_datasets": ["svamp"]}})
    [line] = [line for line in student_inputs(params) if "/fine_tune_cot" in line]
    assert line.endswith("held-out tasks svamp") and "probed" not in line
