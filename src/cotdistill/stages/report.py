"""The ``report`` stage: one page and one plot that sum up a pipeline run.

Reads ``reports/prepare.json``, ``reports/curate.json``, every student x method's evaluation
metrics and every training run's curves; writes ``reports/summary.md``, ``reports/metrics.json``
(the headline metrics), ``reports/accuracy.png`` and ``reports/curves.png`` (embedded in the
summary, so it is complete offline) and ``reports/curves/{loss,val,transfer}.csv`` (DVC's
top-level plots).

Usage: ``cotdistill report``.
"""

from __future__ import annotations

import json
from pathlib import Path

from cotdistill import layout, plots
from cotdistill.atomic import publish, write_text
from cotdistill.errors import CotdistillError
from cotdistill.methods.registry import METHODS
from cotdistill.params import Params


def _load(path: Path) -> dict:
    if not path.is_file():
        raise CotdistillError(f"{path}: not found (run the stage that writes it first)")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise CotdistillError(f"{path}:{exc.lineno}: not valid JSON") from None


def collect(students: list[str], methods: list[str],
            extra: list[tuple[str, str]] = ()) -> dict[tuple[str, str], dict]:
    """Evaluation metrics of every student x method, then of the ``extra`` pairs."""
    pairs = [(student, method) for student in students for method in methods] + list(extra)
    return {pair: _load(layout.eval_reports(*pair) / "metrics.json") for pair in pairs}


def rationale_sources(curation: dict) -> list[str]:
    """Zero-shot-CoT (Fine-tune-CoT) vs few-shot-CoT (New-Fine-tune-CoT) rationales side by side:
    teacher accuracy, accepted rationales, calls and tokens per accepted one, diversity."""
    rows = [("fine_tune_cot (zero-shot-CoT teacher)", curation)]
    if curation.get("new_fine_tune_cot", {}).get("datasets") and any(
            row["completions"] for row in curation["new_fine_tune_cot"]["datasets"].values()):
        rows.append(("new_fine_tune_cot (few-shot-CoT teacher)", curation["new_fine_tune_cot"]))
    lines = ["", "## Rationales by method", "",
             "| method | teacher accuracy | accepted | calls / accepted | tokens / accepted | "
             "similarity before -> after filters |", "|---|---:|---:|---:|---:|---|"]

    def number(value, digits: int = 1) -> str:
        return "-" if value is None else f"{value:.{digits}f}"

    for name, stats in rows:
        cost = stats.get("cost", {})
        lines.append(
            f"| {name} | {100 * stats['teacher_accuracy']:.1f}% | {stats['kept_rationales']} | "
            f"{number(cost.get('calls_per_accepted'))} | {number(cost.get('tokens_per_accepted'), 0)}"
            f" | {number(stats.get('similarity_before'), 3)} -> "
            f"{number(stats.get('similarity_after'), 3)} |"
        )
    return lines


def _optional(path: Path) -> dict | None:
    return _load(path) if path.is_file() else None


COVERS = {"train": "training questions only", "test": "test questions only",
          "both": "training and test questions", "none": "none of the prepared questions"}


def log_coverage(teacher: dict | None) -> list[str]:
    """Which splits each replayed log covers: a log of test questions only gives the students
    no rationale to learn from, which the teacher table alone does not show."""
    datasets = (teacher or {}).get("datasets", {})
    return [f"  - {name}: {row['log']} covers {COVERS.get(row['covers'], row['covers'])}"
            + (f" ({row['note']})" if "note" in row else "")
            for name, row in datasets.items() if "covers" in row]


def provenance(teacher: dict | None, fewshot: dict | None, decompose: dict | None) -> list[str]:
    """Which teacher wrote each method's rationales: methods whose rationales come from
    different teachers are not compared without saying so."""
    def who(report: dict | None) -> str:
        if not report:
            return "unknown (no report)"
        model = report.get("teacher") if isinstance(report.get("teacher"), str) else \
            report.get("model")
        return f"{model} ({report.get('source', 'model')})"

    def learning_from(source: str) -> str:
        return ", ".join(name for name, method in METHODS.items()
                         if method.uses_rationale and method.rationales == source)

    lines = ["", "## Where the rationales come from", "",
             f"- {learning_from('zero_shot')}: {who(teacher)}", *log_coverage(teacher)]
    if fewshot is not None:
        lines.append(f"- {learning_from('few_shot')} (few-shot pass): "
                     + (f"nothing to do: {fewshot['skipped']}" if "skipped" in fewshot
                        else "the teacher above, few-shot-CoT"))
    if decompose is not None:
        source = decompose.get("teacher_model")
        lines.append("- socratic (decompositions): " + (
            f"{source['model']} ({source['backend']})" if source else "gold decompositions only"))
        if source and teacher and source.get("model") not in (teacher.get("model"),
                                                               teacher.get("teacher")):
            lines.append("  - a different teacher from Fine-tune-CoT's: the socratic row is not "
                         "a like-for-like comparison with the rows above")
    return lines


FORMATS = {"zero_shot_cot": "zero-shot-CoT", "few_shot_cot": "few-shot-CoT",
           "few_shot_answer": "few-shot answer-only"}


def student_inputs(params: Params) -> list[str]:
    """What each trained student had besides its rationales: the format mixture, the KD
    teacher and how much of its distribution reached the student, and the held-out tasks it is
    scored on. Two students of one method differ in these, so the page says which had what."""
    hparams = params.train.hparams
    held_out = params.evaluate.held_out(params.prepare.names)
    lines = []
    for student in params.train.students:
        for method in params.train.methods:
            parts = []
            if method == "fine_tune_cot_mixed":
                mixed = params.train.method_params.fine_tune_cot_mixed
                parts.append("formats " + ", ".join(
                    f"{label} {getattr(mixed, key):g}" for key, label in FORMATS.items())
                    + f" ({mixed.shots} shots)")
            elif METHODS[method].uses_rationale:
                parts.append("format zero-shot-CoT only")
            trained = _optional(layout.train_reports(student, method) / "metrics.json") or {}
            if hparams.kd is not None:
                share = trained.get("kd_projected_share")
                parts.append(f"KD from {hparams.kd.teacher or 'stored top-k'} ({hparams.kd.source}"
                             + (f"; {100 * share:.1f}% of the teacher's candidates projected onto "
                                "the student's tokens" if share is not None else "") + ")")
            else:
                parts.append("no token-level KD")
            parts.append("held-out tasks " + (", ".join(held_out) if held_out else "none"))
            if hparams.transfer_probe and hparams.select_every and held_out:
                parts.append(f"{held_out[0]} probed at every validation scoring "
                             f"({hparams.transfer_probe} questions)")
            lines.append(f"- {student}/{method}: " + "; ".join(parts))
    return ["", "What each student had:", *lines] if lines else []


def best_baseline(results: dict[tuple[str, str], dict], student: str, baselines: list[str],
                  dataset: str, section: str) -> tuple[float, str] | None:
    """The untrained ``student``'s best prompting baseline on ``dataset`` (accuracy, baseline),
    from metrics.json's ``section`` ("datasets": test, "transfer": held-out tasks); None when no
    baseline scored it. A trained student is judged against this, not against one prompt."""
    tried = [(results[(student, b)][section][dataset]["accuracy"], b) for b in baselines
             if dataset in results.get((student, b), {}).get(section, {})]
    return max(tried) if tried else None


def specialising_section(results: dict[tuple[str, str], dict], baselines: list[str]
                         ) -> list[str]:
    """Accuracy on held-out tasks (never trained on) against the same student untrained, at
    its best prompting baseline on that task: what the specialisation cost or gave."""
    rows = []
    for (student, method), metrics in results.items():
        if method in baselines or not metrics.get("transfer"):
            continue
        for dataset, figures in metrics["transfer"].items():
            best = best_baseline(results, student, baselines, dataset, "transfer")
            change = "-" if best is None else f"{100 * (figures['accuracy'] - best[0]):+.1f}"
            rows.append(f"| {student} | {method} | {dataset} | {100 * figures['accuracy']:.1f}% "
                        f"(n={figures['n']}) | "
                        + ("-" if best is None else f"{100 * best[0]:.1f}% ({best[1]})")
                        + f" | {change} |")
    if not rows:
        return []
    return ["", "## What specialising cost (held-out tasks)", "",
            "Accuracy on tasks the students never trained on (evaluate.transfer_datasets), "
            "against the same student untrained at its best prompting baseline on that task.",
            "", "| student | method | held-out task | trained | untrained (best prompt) | "
            "change (points) |", "|---|---|---|---:|---:|---:|", *rows]


def data_section(prepared: dict | None) -> list[str]:
    """The splits, and what decontamination and normalisation did, per dataset: a drop of
    training questions changes what the students learnt from, so the page says so."""
    if not prepared:
        return []
    settings = prepared.get("decontamination", {})
    lines = ["", "## Data", "",
             "| dataset | source | train | val | test | repeats dropped | decontamination "
             "dropped (exact + n-gram) |", "|---|---|---:|---:|---:|---:|---|"]
    quoted = []
    for name, row in prepared["datasets"].items():
        found = row["decontamination"]
        how = ("n-grams" if found.get("by") == "ngram" else "exact only")
        lines.append(f"| {name} | {row['source']} | {row['train']} | {row['val']} | "
                     f"{row['test']} | {row['repeated_questions_dropped']} | "
                     f"{found['exact']} + {found['ngram']} ({how}) |")
        for pair in found.get("examples", [])[:1]:
            quoted.append(f"- {name} ({pair['kind']}, {pair['score']:.2f}): "
                          f"\"{_short(pair['train'])}\" ~ test \"{_short(pair['test'])}\"")
        if row.get("normalised"):
            quoted.append(f"- {name}, normalised: " + ", ".join(
                f"{what} ({count})" for what, count in row["normalised"].items()))
    lines += ["", f"Decontamination: a training question is dropped when it repeats a test "
              f"question, or when {100 * settings.get('threshold', 0):.0f}% of its "
              f"{settings.get('ngram', '?')}-word n-grams occur in one test question."]
    if quoted:
        lines += [""] + quoted
    return lines


def _short(text: str, limit: int = 90) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def verdicts(results: dict[tuple[str, str], dict], baselines: list[str]) -> list[str]:
    """Per student and dataset: does Fine-tune-CoT beat answer-only fine-tuning and the
    untrained student's best prompting baseline? (Test accuracy, in points.)"""
    lines = []
    for student in dict.fromkeys(student for student, _ in results):
        cot, plain = results.get((student, "fine_tune_cot")), results.get((student, "answer_only"))
        if cot is None or plain is None:
            continue
        for dataset, figures in cot["datasets"].items():
            found = best_baseline(results, student, baselines, dataset, "datasets")
            if dataset not in plain["datasets"] or found is None:
                continue
            best, name = found
            mine, other = figures["accuracy"], plain["datasets"][dataset]["accuracy"]
            beats = mine > other and mine > best
            lines.append(
                f"- {student} on {dataset}: fine_tune_cot {100 * mine:.1f}% vs answer_only "
                f"{100 * other:.1f}% ({100 * (mine - other):+.1f} points) and the best prompting "
                f"baseline, {name}, {100 * best:.1f}% ({100 * (mine - best):+.1f}): "
                + ("Fine-tune-CoT beats both." if beats else "Fine-tune-CoT does not beat both."))
    return ["", "## Does distillation work?", "", *lines] if lines else []


UNANSWERED_WARNING = 0.05  # a larger share of answers never given is called out in the report


def truncation_warnings(results: dict[tuple[str, str], dict]) -> list[str]:
    """A warning per student and method whose answers were often never given: cut off by
    the token limit (or unreadable), which a low accuracy would otherwise hide."""
    lines = []
    for (student, method), metrics in results.items():
        share = metrics.get("unanswered_share")
        if share is not None and share > UNANSWERED_WARNING:
            setting = "socratic.max_subanswer_tokens" if method.startswith("socratic") \
                else "evaluate.max_new_tokens"
            lines.append(f"- **Warning:** {student}/{method} gave no answer to "
                         f"{metrics['unanswered']} of {metrics['n']} questions "
                         f"({100 * share:.0f}%): its outputs were cut off or unreadable. "
                         f"Raise {setting} if they were cut off.")
    return ["", *lines] if lines else []


def summary_markdown(title: str, curation: dict, results: dict[tuple[str, str], dict],
                     sources: list[str] = (), baselines: list[str] = (),
                     prepared: dict | None = None) -> str:
    """reports/summary.md: the teacher, the data, then the students side by side."""
    lines = [f"# {title}", "", *teacher_section(curation)]
    lines += data_section(prepared)
    lines += list(sources)
    lines += rationale_sources(curation)
    lines += students_section(results, list(baselines))
    lines += specialising_section(results, list(baselines))
    lines += ["", "![test accuracy](accuracy.png)", "",
              "![training loss and validation accuracy](curves.png)", ""]
    return "\n".join(lines)


def teacher_section(curation: dict) -> list[str]:
    """What the teacher got right per dataset, what was kept, what it cost, what was dropped."""
    lines = ["## Teacher", "",
             "| dataset | questions | completions | teacher accuracy | kept rationales | "
             "kept per question |", "|---|---:|---:|---:|---:|---:|"]
    for name, row in curation["datasets"].items():
        lines.append(
            f"| {name} | {row['questions']} | {row['completions']} | "
            f"{100 * row['teacher_accuracy']:.1f}% | {row['kept_rationales']} | "
            f"{row['kept_per_question']:.2f} |"
        )
    lines.append(
        f"| **all** | | | {100 * curation['teacher_accuracy']:.1f}% | "
        f"{curation['kept_rationales']} | |"
    )
    cost = curation.get("cost")
    if cost and not cost.get("calls"):
        lines += ["", "Teacher cost: no teacher calls (the rationales were replayed)."]
    elif cost:
        per = cost["usd_per_accepted"]
        lines += ["", f"Teacher cost: {cost['calls']} calls, {cost['prompt_tokens']} prompt + "
                  f"{cost['completion_tokens']} completion tokens, ${cost['usd']:.4f}"
                  + (f" (${per:.6f} and {cost['calls_per_accepted']:.1f} calls per accepted "
                     "rationale)" if per is not None else "")]
    if curation.get("filtered"):
        dropped = ", ".join(f"{reason} {count}" for reason, count in curation["filtered"].items())
        lines += ["", f"Curation filters dropped: {dropped}."]
    checked = curation.get("teacher_arithmetic") or {}
    if checked.get("rationales_checked"):
        lines += ["", f"Teacher arithmetic (calculator check of the correct rationales of number "
                  f"questions): {checked['wrong_computations']} of {checked['computations']} "
                  f"computations wrong, in {checked['rationales_with_wrong_arithmetic']} of "
                  f"{checked['rationales_checked']} rationales; curate.teacher_arithmetic "
                  f"{checked['policy']} (dropped {checked['dropped']}, fixed {checked['fixed']})."]
    if curation.get("similarity_before") is not None:
        after = curation.get("similarity_after")
        lines += ["", f"Diversity (mean pairwise similarity of a question's correct samples, "
                  f"lower is more diverse): {curation['similarity_before']:.3f} before filters, "
                  + (f"{after:.3f} after." if after is not None else "n/a after.")]
    return lines


def students_section(results: dict[tuple[str, str], dict], baselines: list[str]) -> list[str]:
    """Test accuracy per student x method x dataset, what was not evaluated and why, the
    truncation warnings and the verdicts."""
    skipped = {pair: m for pair, m in results.items() if "skipped" in m}
    results = {pair: m for pair, m in results.items() if "skipped" not in m}
    datasets = sorted({d for metrics in results.values() for d in metrics["datasets"]})
    lines = ["", "## Students (test accuracy)", "",
             "| student | method | " + " | ".join(datasets) + " | all |",
             "|---|---|" + "---:|" * (len(datasets) + 1)]
    for (student, method), metrics in results.items():
        cells = [
            f"{100 * metrics['datasets'][d]['accuracy']:.1f}%" if d in metrics["datasets"] else "-"
            for d in datasets
        ]
        lines.append(f"| {student} | {method} | " + " | ".join(cells)
                     + f" | {100 * metrics['accuracy']:.1f}% (n={metrics['n']}) |")
    for (student, method), metrics in skipped.items():
        lines.append(f"\n{student}/{method}: not evaluated: {metrics['skipped']}.")
    for (student, method), metrics in results.items():
        if "calculator_questions" in metrics:
            lines.append(f"\n{student}/{method} decoded with the calculator on "
                         f"{metrics['calculator_questions']} number questions of {metrics['n']}; "
                         f"it wrote {metrics['calculator_results']} results.")
        if "few_shot" in metrics:
            shots = metrics["few_shot"]
            lines.append(f"\n{student}/{method} with {shots['shots']} of the exemplars stage's "
                         f"worked examples in context (evaluate.few_shot): "
                         f"{100 * shots['accuracy']:.1f}% (n={shots['n']}; zero-shot "
                         f"{100 * metrics['accuracy']:.1f}%).")
    lines += truncation_warnings(results)
    lines += verdicts(results, baselines)
    for (student, method), metrics in results.items():
        if "mean_steps" in metrics:
            lines.append(f"\n{student}/{method}: {metrics['mean_steps']:.2f} loop steps per "
                         f"question on average; {100 * metrics['step_limit_share']:.0f}% hit the "
                         "step limit.")
    return lines


def training_curves(params: Params) -> tuple[dict[str, list], dict[str, list], dict[str, list]]:
    """Loss, validation and held-out-task curves of every training run the params name, by
    ``student/method`` (Socratic roles included): the report's curves figure and DVC's top-level
    plots. A run without a transfer probe has no held-out curve."""
    runs = [(s, m) for s in params.train.students for m in params.train.methods]
    for student in (params.socratic.qg_student, params.socratic.qa_student):
        runs += [(student, folder.name) for folder in
                 sorted(layout.train_reports(student, "socratic").parent.glob("socratic_*"))]
    losses, validation, transfer = {}, {}, {}
    for student, method in dict.fromkeys(runs):
        folder = layout.train_reports(student, method)
        if (folder / "loss.csv").is_file():
            losses[f"{student}/{method}"] = plots.read_curve(folder / "loss.csv", "loss")
            validation[f"{student}/{method}"] = plots.read_curve(folder / "val.csv",
                                                                 "val_accuracy")
            probe = plots.read_curve(folder / "val.csv", "transfer_accuracy")
            if probe:
                transfer[f"{student}/{method}"] = probe
    return losses, validation, transfer


PROMPTING = "prompting"  # the headline's label for a student's best prompting baseline


def headline_metrics(curation: dict, evaluated: dict[tuple[str, str], dict],
                     baselines: list[str]) -> dict:
    """``reports/metrics.json``, the pipeline's only top-level DVC metrics file, so that
    ``dvc exp show`` leads with results: the teacher's accuracy and its accepted rationales,
    then per dataset its n (per pair where pairs differ), test accuracy per student x trained
    method, and each student's best prompting baseline (``prompting``: the one the report's
    verdict compares with; each baseline's own figure is in ``reports/eval/``). Labels name the
    method alone when one student was evaluated. Keys are grouped by dataset, and the
    baselines are one column, so that a 200-column terminal shows every headline column
    beside a named experiment: DVC pages the table and lists params and deps after the
    metrics. Everything else stays in the per-stage reports, which are plain outputs."""
    students = {student for student, _ in evaluated}
    accuracy: dict[str, dict[str, float]] = {}
    sizes: dict[str, dict[str, int]] = {}
    for (student, method), figures in evaluated.items():
        name = PROMPTING if method in baselines else method
        label = name if len(students) == 1 else f"{student}/{name}"
        for dataset, per in figures["datasets"].items():
            found = accuracy.setdefault(dataset, {})
            found[label] = max(found.get(label, 0.0), per["accuracy"])
            sizes.setdefault(dataset, {})[label] = per["n"]
    headline: dict = {layout.METRICS_TEACHER: {"accuracy": curation["teacher_accuracy"],
                                               "accepted": curation["kept_rationales"]}}
    for dataset, per in accuracy.items():
        n = sizes[dataset]
        prompted = [label for label in per if label.split("/")[-1] == PROMPTING]
        headline[dataset] = {
            "n": next(iter(n.values())) if len(set(n.values())) == 1 else n,
            **{label: value for label, value in per.items() if label not in prompted},
            **{label: per[label] for label in prompted}}  # after every trained method
    return headline


def headline_columns(params: Params) -> str:
    """A ``dvc exp show --keep`` pattern of the headline's columns and nothing else (``make
    results``): the teacher's two, and every column of a dataset group (a built-in dataset,
    or one of ``prepare.datasets``; no params section shares a dataset's name)."""
    from cotdistill.catalog import DATASETS

    names = sorted({*DATASETS, *params.prepare.names})
    return (rf"^{layout.METRICS_TEACHER}\.(accuracy|accepted)$|^({'|'.join(names)})\.")


def headline_accuracy(headline: dict) -> dict[str, dict[str, float]]:
    """Test accuracy per dataset and label (method, or student/method) of a headline."""
    return {dataset: {label: value for label, value in figures.items() if label != "n"}
            for dataset, figures in headline.items() if dataset != layout.METRICS_TEACHER}


def run(params: Params) -> None:
    curation = _load(layout.CURATE_STATS)
    results = collect(params.train.students,
                      [*params.train.methods, *params.evaluate.baselines],
                      extra=[(params.socratic.qa_student, "socratic")])
    sources = provenance(_optional(layout.TEACHER_REPORT), _optional(layout.FEWSHOT_REPORT),
                         _optional(layout.DECOMPOSE_STATS)) + student_inputs(params)
    evaluated = {pair: m for pair, m in results.items() if "skipped" not in m}
    metrics = headline_metrics(curation, evaluated, params.evaluate.baselines)
    with publish() as out:  # the summary, its plot and the metrics agree, or none moves
        write_text(out.file(layout.SUMMARY), summary_markdown(
            params.report.title, curation, results, sources, params.evaluate.baselines,
            _optional(layout.PREPARE_REPORT)))
        chance = {name: figures.get("chance", 0.0) for name, figures in
                  (_optional(layout.PREPARE_REPORT) or {}).get("datasets", {}).items()}
        plots.accuracy_plot(out.file(layout.ACCURACY_PLOT), plots.bars(
            evaluated, chance, prompted=set(params.evaluate.baselines)))
        losses, validation, transfer = training_curves(params)
        held_out = params.evaluate.held_out(params.prepare.names)
        plots.curves_plot(out.file(layout.CURVES_PLOT), losses, validation, transfer,
                          f"held-out {held_out[0]}" if held_out else "held-out task")
        plots.write_long_csv(out.file(layout.LOSS_CURVES), losses, "loss")
        plots.write_long_csv(out.file(layout.VAL_CURVES), validation, "val_accuracy")
        plots.write_long_csv(out.file(layout.TRANSFER_CURVES), transfer, "transfer_accuracy")
        write_text(out.file(layout.METRICS), json.dumps(metrics, indent=2) + "\n")
