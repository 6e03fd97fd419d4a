"""Render docs/results.md's tables from reproduction/results.json, and README.md's from reports/.

    python scripts/render_results.py                 # rewrite the marked regions of both in place
    python scripts/render_results.py --check         # exit 1 (with a diff) when either differs
    python scripts/render_results.py --only readme   # one document: results | readme

The tables live between marker comments, ``<!-- BEGIN table:NAME -->`` and
``<!-- END table:NAME -->``; everything between them is rewritten, the prose around them is left
alone. Nothing between them is typed by hand:

- docs/results.md: every figure comes from the rows that benchmarks/reproduce_table5.py wrote,
  or from that script's constants (the published Table 5 anchors, the table's fixed settings).
- README.md: the Quick start's figures come from the default pipeline's report files as
  ``dvc repro`` wrote them under reports/ (the report stage's reports/metrics.json, each
  student x method's reports/eval/S/M/metrics.json and reports/train/S/M/metrics.json and
  val.csv, reports/curate.json, reports/prepare.json, reports/teacher.json); whatever they
  hold, no value is assumed.

tests/test_results_doc.py fails when a document and its files disagree.
"""

from __future__ import annotations

import argparse
import csv
import difflib
import json
import math
import re
import sys
import textwrap
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "results.md"
README = REPO / "README.md"
REPORTS = REPO / "reports"
REGION = re.compile(
    r"(?P<begin><!-- BEGIN table:(?P<name>[\w-]+) -->\n)(?P<body>.*?)"
    r"(?P<end><!-- END table:(?P=name) -->)", re.S)
BEGIN = re.compile(r"<!-- BEGIN table:")


# the harness (and the hardware module beside it) and the predictions collector, imported as
# the modules they are
sys.path[:0] = [str(REPO / "benchmarks"), str(REPO / "scripts")]
import collect_predictions  # noqa: E402
import hardware  # noqa: E402
import reproduce_table5 as harness  # noqa: E402

RESULTS = harness.RESULTS
NOT_RUN = "not run"


# ------------------------------------------------------------------------------------------
# cells


def pct(value: float) -> str:
    return f"{100 * value:.1f}"


def with_interval(row: dict) -> str:
    low, high = row["wilson95"]
    return f"{pct(row['accuracy'])} [{pct(low)}, {pct(high)}]"


def seconds(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 120:
        return f"{value:.0f} s"
    if value < 120 * 60:
        return f"{value / 60:.1f} min"
    return f"{value / 3600:.1f} h"


def commit(row: dict) -> str:
    value = row.get("commit")
    if not value:
        return "not recorded"
    head, dirty, _ = value.partition("-dirty")
    text = head[:10] + ("-dirty" if dirty else "")
    trained = row.get("train_commit")
    return f"{text} (trained at {trained[:10]})" if trained else text


def value(setting) -> str:
    return "null" if setting is None else str(setting)


def short(key: str) -> str:
    return key.rsplit(".", 1)[-1] if key.startswith("train.hparams.") else key


def kind(row: dict) -> str:
    if row["method"] == harness.TEACHER:
        return harness.TEACHER
    return "baseline" if row["method"] in harness.BASELINES else "trained"


def table_settings(row: dict) -> dict:
    """The table's fixed settings that apply to a row of this kind."""
    wanted = dict(harness.TABLE_SETTINGS)
    if kind(row) == harness.TEACHER:
        return {"evaluate.max_examples": wanted["evaluate.max_examples"]}
    if kind(row) == "baseline":
        return {k: v for k, v in wanted.items() if k.startswith("evaluate.")}
    return wanted


def differences(row: dict) -> list[str]:
    """``key=value`` for each of the table's settings that this row ran with otherwise."""
    recorded = row.get("settings") or {}
    return [f"{short(key)}={value(recorded[key])}" if key in recorded else f"no {short(key)}"
            for key, wanted in table_settings(row).items()
            if key not in recorded or recorded[key] != wanted]


def student_parameters(rows: list[dict]) -> dict[str, int]:
    found: dict[str, int] = {}
    for row in rows:
        if row.get("student_parameters"):
            found.setdefault(row["student"], row["student_parameters"])
    return found


def student_label(student: str, parameters: dict[str, int]) -> str:
    count = parameters.get(student)
    if count is None:
        return student
    label = f"{student} ({count / 1e6:.0f}M"
    if count > harness.PUBLISHED_BIN:
        bin_m = harness.PUBLISHED_BIN / 1e6
        how = "just above" if count <= 1.2 * harness.PUBLISHED_BIN else "above"
        label += f"; {how} Table 5's <={bin_m:.0f}M bin"
    return label + ")"


def training(row: dict) -> str:
    if kind(row) == harness.TEACHER:
        return "published log"
    if kind(row) == "baseline":
        return "untrained"
    info = row.get("training") or {}
    parts = []
    if info.get("epochs_trained") is not None:
        ceiling = (row.get("settings") or {}).get("train.hparams.epochs")
        parts.append(f"{info['epochs_trained']:.2f} of {value(ceiling)} epochs"
                     + (" (stopped early)" if info.get("stopped_early") else ""))
    if info.get("best_step") is not None and row["method"] == "two_stage_cot":
        parts.append(f"best step {info['best_step']} of the second stage; "
                     f"{info.get('steps', '?')} steps in all")
    elif info.get("best_step") is not None:
        parts.append(f"best step {info['best_step']} of {info.get('steps', '?')}")
    if info.get("best_val_accuracy") is not None:
        parts.append(f"val {pct(info['best_val_accuracy'])}")
    lengths = info.get("lengths") or {}
    if lengths.get("truncated_examples"):
        parts.append(f"{lengths['truncated_examples']} of {lengths['examples']} examples truncated")
    return "; ".join(parts) or "not recorded"


def precision(row: dict) -> str:
    used = row.get("precision") or {}
    if not used:
        return "-"
    if "train" in used:
        return f"{used['train']} / {used.get('evaluate', '?')}"
    return used.get("evaluate", "?")


def device(row: dict) -> str:
    return hardware.label(row.get("device") or {})


# ------------------------------------------------------------------------------------------
# tables


def current(rows: list[dict]) -> list[dict]:
    """The table's rows: not legacy, and at the table's own precision (auto)."""
    return [row for row in rows if not row.get("legacy") and not row.get("variant")]


def pick(rows: list[dict], dataset: str, student: str, method: str, seed) -> dict | None:
    return next((r for r in rows if (r["dataset"], r["student"], r["method"], r["seed"])
                 == (dataset, student, method, seed)), None)


def students(rows: list[dict], dataset: str) -> list[str]:
    """The table's own student on every dataset; another student only on the datasets it has
    a row on (Gemma is run on two of seven: five lines of "not run" would say nothing)."""
    others = sorted({r["student"] for r in rows
                     if r["method"] != harness.TEACHER and r["dataset"] == dataset}
                    - {harness.STUDENT})
    return [harness.STUDENT, *others]


def marked(row: dict | None, cell: str, n: int | None = None) -> str:
    if row is None:
        return NOT_RUN
    if n is not None and row["n"] != n:
        cell += f" (n={row['n']})"
    return cell + (" *" if differences(row) else "")


def table5(rows: list[dict]) -> str:
    rows = current(rows)
    parameters = student_parameters(rows)
    lines = ["| dataset | student | n test | Fine-tune-CoT (ours) [Wilson 95%] | answer-only | "
             "zero-shot | zero-shot-CoT | teacher: text-davinci-002 | "
             "Table 5 FT-CoT D=1 (<=250M) | Table 5 best (<=250M) |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for dataset in harness.DATASETS:
        first, best = harness.PUBLISHED[dataset]
        teacher = pick(rows, dataset, harness.TEACHER_NAME, harness.TEACHER, None)
        for student in students(rows, dataset):
            found = {m: pick(rows, dataset, student, m, 0 if m in harness.TRAINED else None)
                     for m in (*harness.TRAINED, *harness.BASELINES)}
            reference = next((r for r in (*found.values(), teacher) if r is not None), None)
            n = reference["n"] if reference is not None else None
            ft = found["fine_tune_cot"]
            cells = [marked(ft, with_interval(ft), n) if ft else NOT_RUN,
                     *(marked(found[m], pct(found[m]["accuracy"]), n) if found[m] else NOT_RUN
                       for m in ("answer_only", *harness.BASELINES)),
                     marked(teacher, pct(teacher["accuracy"]), n) if teacher else NOT_RUN]
            lines.append(f"| {harness.DISPLAY[dataset]} | {student_label(student, parameters)} | "
                         f"{'' if n is None else n} | " + " | ".join(cells)
                         + f" | {first:.2f} | {best:.2f} |")
    return "\n".join(lines + footnote(rows))


def footnote(rows: list[dict]) -> list[str]:
    if any(differences(row) for row in rows):
        return ["", "\\* run with other settings than the table's (see the details table)."]
    return []


def methods(rows: list[dict]) -> str:
    rows = current(rows)
    parameters = student_parameters(rows)
    columns = ("fine_tune_cot", "distill_step_by_step", "two_stage_cot", "answer_only")
    lines = ["| dataset | student | n test | Fine-tune-CoT | distilling step-by-step | "
             "two-stage CoT (first stage: the seven datasets pooled) | answer-only |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for dataset in harness.EXTRA_DATASETS:
        for student in students(rows, dataset):
            found = {m: pick(rows, dataset, student, m, 0) for m in columns}
            reference = next((r for r in found.values() if r is not None), None)
            n = reference["n"] if reference is not None else None
            cells = [marked(found[m], with_interval(found[m]), n) if found[m] else NOT_RUN
                     for m in columns]
            lines.append(f"| {harness.DISPLAY[dataset]} | {student_label(student, parameters)} | "
                         f"{'' if n is None else n} | " + " | ".join(cells) + " |")
    return "\n".join(lines + footnote(rows))


def seeds(rows: list[dict]) -> str:
    rows = current(rows)
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for row in rows:
        if kind(row) == "trained":
            groups[(row["dataset"], row["student"], row["method"])].append(row)
    lines = ["| dataset | student | method | test accuracy by seed (best validation) | "
             "spread (points) |", "|---|---|---|---|---:|"]
    for (dataset, student, method), group in groups.items():
        if len({row["seed"] for row in group}) < 2:
            continue
        group = sorted(group, key=lambda row: row["seed"])
        figures = "; ".join(
            f"seed {row['seed']}: {pct(row['accuracy'])}"
            + (f" ({pct(row['training']['best_val_accuracy'])})"
               if (row.get("training") or {}).get("best_val_accuracy") is not None else "")
            for row in group)
        spread = max(r["accuracy"] for r in group) - min(r["accuracy"] for r in group)
        lines.append(f"| {harness.DISPLAY[dataset]} | {student} | {method} | {figures} | "
                     f"{100 * spread:.1f} |")
    if len(lines) == 2:
        lines.append("| no row has a second seed yet | | | | |")
    return "\n".join(lines)


PRECISIONS = ("fp32", "bf16")  # a forced precision's variant name (--precision)


def precision_check(rows: list[dict]) -> str:
    """Rows trained and evaluated at a forced precision (``--precision fp32``) beside the same
    row at ``auto``, and the spread between seeds of that row where there is one."""
    table = current(rows)
    lines = ["| dataset | student | method | seed | auto: precision, accuracy | forced: precision, "
             "accuracy | difference (points) | seed spread (points) |",
             "|---|---|---|---:|---|---|---:|---:|"]
    for forced in (row for row in rows if row.get("variant") in PRECISIONS
                   and not row.get("legacy")):
        base = pick(table, forced["dataset"], forced["student"], forced["method"],
                    forced["seed"])
        if base is None:
            continue
        spread = [r["accuracy"] for r in table
                  if (r["dataset"], r["student"], r["method"])
                  == (forced["dataset"], forced["student"], forced["method"])]
        spread_cell = (f"{100 * (max(spread) - min(spread)):.1f}" if len(spread) > 1
                       else "one seed only")
        lines.append(
            f"| {_key_cells(forced, method=forced['method'])} | "
            f"{precision(base)}: {pct(base['accuracy'])} | "
            f"{precision(forced)}: {pct(forced['accuracy'])} | "
            f"{100 * abs(forced['accuracy'] - base['accuracy']):.1f} | {spread_cell} |")
    if len(lines) == 2:
        lines.append("| no row at a forced precision yet | | | | | | | |")
    return "\n".join(lines)


PREDICTIONS = REPO / "reproduction" / "predictions"
# "a op b = c" as the students write it (numbers with commas or decimals; x, *, ×, /, ÷)
COMPUTATION = re.compile(r"(\d[\d,]*(?:\.\d+)?)\s*([-+x*×/÷])\s*(\d[\d,]*(?:\.\d+)?)\s*=\s*"
                         r"(-?\d[\d,]*(?:\.\d+)?)")


def computations(text: str) -> tuple[int, int]:
    """Explicit two-operand computations in ``text`` and how many of them are wrong."""
    total = wrong = 0
    for left, op, right, result in COMPUTATION.findall(text):
        a, b, c = (float(x.replace(",", "")) for x in (left, right, result))
        value = {"+": a + b, "-": a - b, "x": a * b, "*": a * b, "×": a * b,
                 "/": a / b if b else None, "÷": a / b if b else None}[op]
        total += 1
        wrong += value is None or abs(value - c) > 1e-6 * max(1.0, abs(value))
    return total, wrong


def _predictions(row: dict) -> list[dict] | None:
    path = collect_predictions.destination(row)
    if not path.is_file():
        return None
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _method_cell(row: dict) -> str:
    return row["method"] + (f" ({row['variant']})" if row.get("variant") else "")


def _no_answer(records: list[dict]) -> int:
    """Outputs with no final answer: cut off at the token limit, or no "-->"."""
    return sum(record["prediction"] is None for record in records)


def errors(rows: list[dict]) -> str:
    """What the students' wrong answers are made of, from the committed predictions
    (scripts/collect_predictions.py): answers that never came (cut off, or no "-->"), and, in
    rationales, explicit computations "a op b = c" whose result is wrong."""
    lines = ["| dataset | student | method | seed | correct / n | no answer | explicit computations "
             "(wrong) | wrong answers with a wrong computation | mean output (characters) |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        if row.get("legacy") or row["method"] == harness.TEACHER:
            continue
        records = _predictions(row)
        if records is None:
            continue
        counted = [computations(record["output"]) for record in records]
        total, wrong = sum(c[0] for c in counted), sum(c[1] for c in counted)
        wrong_answers = [c for c, record in zip(counted, records) if not record["correct"]]
        with_bad = sum(1 for c in wrong_answers if c[1])
        missing = _no_answer(records)
        mean = sum(len(record["output"]) for record in records) / len(records)
        computed = f"{total} ({wrong}; {100 * wrong / total:.0f}%)" if total else "0"
        lines.append(
            f"| {_key_cells(row)} | "
            f"{row['correct']} / {row['n']} | {missing} | {computed} | "
            f"{with_bad} of {len(wrong_answers)} | {mean:.0f} |")
    if len(lines) == 2:
        lines.append("| no predictions collected yet | | | | | | | | |")
    return "\n".join(lines)


LAST_LETTER = re.compile(r'The last letter of "([^"]+)" is "([^"]*)"')


def letter_errors(record: dict) -> tuple[bool, bool]:
    """(a stated last letter is wrong, the stated letters are right but the answer is not
    their concatenation) for one Last Letters output."""
    stated = LAST_LETTER.findall(record["output"])
    misread = any(word[-1:].lower() != letter.lower() for word, letter in stated)
    joined = "".join(letter for _, letter in stated).lower()
    return misread, bool(stated) and not misread and (record["prediction"] or "") != joined


def last_letters(rows: list[dict]) -> str:
    """Where Last Letters students go wrong: reading a word's last letter, or joining them."""
    lines = ["| student | method | seed | correct / n | a last letter misread | letters right, "
             "joined wrong |", "|---|---|---:|---:|---:|---:|"]
    for row in rows:
        if row.get("legacy") or row["dataset"] != "last_letter_concatenation" \
                or row["method"] == harness.TEACHER:
            continue
        records = _predictions(row)
        if records is None:
            continue
        flags = [letter_errors(record) for record in records]
        lines.append(f"| {row['student']} | {_method_cell(row)} | {_seed(row)} | "
                     f"{row['correct']} / {row['n']} | {sum(f[0] for f in flags)} | "
                     f"{sum(f[1] for f in flags)} |")
    if len(lines) == 2:
        lines.append("| no Last Letters predictions collected yet | | | | | |")
    return "\n".join(lines)


def _key_cells(row: dict, *, student: str | None = None, method: str | None = None) -> str:
    """dataset | student | method | seed: what names a row in every per-row table."""
    return (f"{harness.DISPLAY.get(row['dataset'], row['dataset'])} | "
            f"{student or row['student']} | {method or _method_cell(row)} | {_seed(row)}")


def _seed(row: dict) -> str:
    """A trained row's seed; '-' for rows that train nothing (teacher, prompting baselines)."""
    return "-" if row["seed"] is None else str(row["seed"])


def _run_cells(row: dict, student: str) -> str:
    """dataset | student | method | seed | n | correct | accuracy | Wilson 95%: the cells the
    details and the earlier runs' tables share."""
    low, high = row["wilson95"]
    return (f"{_key_cells(row, student=student)} | {row['n']} | {row['correct']} | "
            f"{pct(row['accuracy'])} | {pct(low)}-{pct(high)}")


def _wall(row: dict) -> str:
    return seconds((row.get("wall_s") or {}).get("total"))


def details(rows: list[dict]) -> str:
    rows = [row for row in rows if not row.get("legacy")]
    parameters = student_parameters(rows)
    lines = ["| dataset | student | method | seed | n | correct | accuracy | Wilson 95% | "
             "training | precision (train / eval) | wall | commit | CPU | settings |",
             "|---|---|---|---:|---:|---:|---:|---|---|---|---:|---|---|---|"]
    for row in rows:
        changed = differences(row)
        lines.append(
            f"| {_run_cells(row, student_label(row['student'], parameters))} | "
            f"{training(row)} | {precision(row)} | {_wall(row)} | {commit(row)} | "
            f"{device(row)} | "
            f"{'differ: ' + ', '.join(changed) if changed else 'the table' + chr(39) + 's'} |")
    if not rows:
        lines.append("| no row run yet | | | | | | | | | | | | | |")
    return "\n".join(lines)


def earlier(rows: list[dict]) -> str:
    legacy = [row for row in rows if row.get("legacy")]
    lines = ["| dataset | student | method | seed | n | correct | accuracy | Wilson 95% | "
             "settings (where they differ from the table's) | precision | wall | what it is |",
             "|---|---|---|---:|---:|---:|---:|---|---|---|---:|---|"]
    for row in legacy:
        lines.append(f"| {_run_cells(row, row['student'])} | {', '.join(differences(row))} | "
                     f"{precision(row)} | {_wall(row)} | {row['legacy']} |")
    if not legacy:
        lines.append("| none | | | | | | | | | | | |")
    return "\n".join(lines)


def settings(rows: list[dict]) -> str:
    lines = ["| setting | value |", "|---|---|"]
    lines += [f"| `{key}` | {value(setting)} |" for key, setting in harness.TABLE_SETTINGS.items()]
    trained = [row for row in current(rows) if kind(row) == "trained"]
    for key in harness.FROM_PARAMS:
        seen = sorted({value((row.get("settings") or {}).get(key)) for row in trained})
        lines.append(f"| `{key}` | params.yaml's: " + (", ".join(seen) + " in the rows so far"
                                                        if seen else "no row run yet") + " |")
    return "\n".join(lines)


OPTION_SHORTCUT = REPO / "benchmarks" / "results" / "option_shortcut.json"
CALCULATOR_COVERAGE = REPO / "benchmarks" / "results" / "calculator_coverage.json"
KD_ALIGNMENT = REPO / "benchmarks" / "results" / "kd_alignment.json"
CALCULATOR_DECODING = REPO / "benchmarks" / "results"  # calculator_decoding*.json, one per student


def option_shortcut(_: list[dict]) -> str:
    """benchmarks/option_shortcut.py's JSON: how often Date Understanding's options alone give the
    answer, and how often each committed row picks that option."""
    run = json.loads(OPTION_SHORTCUT.read_text(encoding="utf-8"))
    lines = [f"Commit {run['commit']}; command `{run['command']}`.", "",
             "| split | n | the shortcut's expected accuracy | questions where it names one option |",
             "|---|---:|---:|---:|"]
    lines += [f"| {split} | {fig['n']} | {pct(fig['expected_accuracy'])} | {fig['single_pick']} |"
              for split, fig in run["splits"].items()]
    lines += ["", "| student | method | picks the shortcut's option (of those it names alone) | "
                  "correct where the shortcut is right | correct where it is wrong or tied |",
              "|---|---|---:|---:|---:|"]
    for row in run["rows"]:
        right, wrong = (row["correct_where_shortcut_right"],
                        row["correct_where_shortcut_wrong_or_tied"])
        lines.append(f"| {row['student']} | {row['method']} | {row['agrees_with_shortcut']} of "
                     f"{row['shortcut_single_pick']} | {right[0]} of {right[1]} | "
                     f"{wrong[0]} of {wrong[1]} |")
    return "\n".join(lines)


def _masked(rows: list[dict]) -> list[dict]:
    """fine_tune_cot_calc's ``masked`` rows (--mask-results), the calculator tables' third kind."""
    return [r for r in rows if r.get("variant") == "masked" and not r.get("legacy")]


def calculator(rows: list[dict]) -> str:
    """Fine-tune-CoT without and with the calculator inside decoding (fine_tune_cot_calc; its
    ``masked`` variant leaves the calculator's results out of the loss), beside answer-only and
    Table 5's best, on the arithmetic datasets; and how many of the explicit computations in
    each student's outputs are wrong (cotdistill.calculator reads them)."""
    lines = ["| dataset | student | n test | Fine-tune-CoT | + calculator | + calculator, "
             "results masked in the loss | answer-only | Table 5 best (<=250M) | computations "
             "wrong: Fine-tune-CoT | with the calculator |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    table = current(rows)
    masked_rows = _masked(rows)
    parameters = student_parameters(table)
    for dataset in harness.CALC_DATASETS:
        for student in students(table, dataset):
            found = [pick(table, dataset, student, "fine_tune_cot", 0),
                     pick(table, dataset, student, "fine_tune_cot_calc", 0),
                     pick(masked_rows, dataset, student, "fine_tune_cot_calc", 0)]
            plain = pick(table, dataset, student, "answer_only", 0)
            reference = next((r for r in (*found, plain) if r is not None), None)
            n = reference["n"] if reference is not None else None
            cells = [marked(row, with_interval(row), n) if row else NOT_RUN for row in found]
            cells.append(marked(plain, pct(plain["accuracy"]), n) if plain else NOT_RUN)
            cells.append(f"{harness.PUBLISHED[dataset][1]:.2f}")
            cells += [_wrong_share(found[0]), _wrong_share(found[1])]
            lines.append(f"| {harness.DISPLAY[dataset]} | {student_label(student, parameters)} | "
                         f"{'' if n is None else n} | " + " | ".join(cells) + " |")
    return "\n".join(lines + footnote(rows))


def _wrong_share(row: dict | None) -> str:
    """"wrong of computed" over a row's committed predictions, read by the calculator."""
    from cotdistill.calculator import computations as steps

    records = _predictions(row) if row is not None else None
    if records is None:
        return NOT_RUN
    found = [step for record in records for step in steps(record["output"])]
    wrong = sum(not step.agrees for step in found)
    return f"{wrong} of {len(found)}" + (f" ({100 * wrong / len(found):.0f}%)" if found else "")


def masking(rows: list[dict]) -> str:
    """Issue 24's masking choice: fine_tune_cot_calc trained with the calculator's results in
    the loss and out of it (the ``masked`` rows), compared on validation (the best scoring that
    model selection kept; the default follows the pooled sum) and, beside it, on the test split.
    "no answer": test outputs with no final answer (a loop to the token limit)."""
    lines = ["| dataset | student | validation n | validation: results in the loss (step) | "
             "results masked (step) | test n | test: results in the loss | results masked | "
             "no answer: in the loss / masked |", "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    table = current(rows)
    masked_rows = _masked(rows)
    totals = [0, 0, 0, 0, 0, 0]  # validation n, in, masked; test n, in, masked
    for dataset in harness.CALC_DATASETS:
        for student in students(table, dataset):
            pair = [pick(table, dataset, student, "fine_tune_cot_calc", 0),
                    pick(masked_rows, dataset, student, "fine_tune_cot_calc", 0)]
            if None in pair or any("best_val_accuracy" not in r.get("training", {})
                                   for r in pair):
                continue
            n_val = pair[0]["training"]["val_examples"]
            val = [round(r["training"]["best_val_accuracy"] * n_val) for r in pair]
            unanswered = [_unanswered(r) for r in pair]
            totals = [a + b for a, b in zip(totals, (n_val, *val, pair[0]["n"],
                                                     *(r["correct"] for r in pair)))]
            lines.append(
                f"| {harness.DISPLAY[dataset]} | {student} | {n_val} | "
                + " | ".join(f"{v} ({r['training']['best_step']})" for v, r in zip(val, pair))
                + f" | {pair[0]['n']} | " + " | ".join(with_interval(r) for r in pair)
                + " | " + " / ".join(unanswered) + " |")
    if len(lines) == 2:
        return "\n".join(lines + ["| not run yet: `python benchmarks/reproduce_table5.py "
                                  "--methods fine_tune_cot_calc --mask-results` | | | | | | | | |"])
    n_val, val_in, val_masked, n_test, test_in, test_masked = totals
    lines.append(f"| all | | {n_val} | {val_in} ({pct(val_in / n_val)}%) | {val_masked} "
                 f"({pct(val_masked / n_val)}%) | {n_test} | {test_in} ({pct(test_in / n_test)}%) "
                 f"| {test_masked} ({pct(test_masked / n_test)}%) | |")
    return "\n".join(lines)


def _unanswered(row: dict) -> str:
    records = _predictions(row)
    return NOT_RUN if records is None else str(_no_answer(records))


def formats(rows: list[dict]) -> str:
    """Seed 002's 2 x 2: trained on the zero-shot-CoT format (Fine-tune-CoT) or on the mixture
    of three formats (fine_tune_cot_mixed), evaluated zero-shot and with exemplars in context
    (the harness's ``--few-shot N`` rows)."""
    lines = ["| dataset | student | n test | trained on | evaluated zero-shot | evaluated few-shot "
             "(exemplars in context) |", "|---|---|---:|---|---:|---:|"]
    shown = [r for r in rows if str(r.get("variant", "")).startswith("few-shot")
             and not r.get("legacy") and r.get("few_shot")]
    parameters = student_parameters(shown)
    labels = {"fine_tune_cot": "zero-shot-CoT (Fine-tune-CoT)",
              "fine_tune_cot_mixed": "the mixture of three formats"}
    for dataset in harness.MIXED_DATASETS:
        for row in (r for r in shown if r["dataset"] == dataset):
            shots = row["variant"].removeprefix("few-shot")
            lines.append(f"| {harness.DISPLAY[dataset]} | "
                         f"{student_label(row['student'], parameters)} | {row['n']} | "
                         f"{labels.get(row['method'], row['method'])} | {with_interval(row)} | "
                         f"{with_interval(row['few_shot'])} ({shots} in context) |")
    if len(lines) == 2:
        lines.append("| not run yet: `python benchmarks/reproduce_table5.py --few-shot 2` | | | "
                     "| | |")
    return "\n".join(lines)


def transfer(rows: list[dict]) -> str:
    """What specialising cost: every trained row's accuracy on the held-out tasks
    (``evaluate.transfer_datasets``, the harness's HELD_OUT) against the same untrained
    student's best prompting baseline there, from rows that carry ``transfer``. The untrained
    student sees the same held-out questions whichever dataset's work directory it ran in."""
    lines = ["| trained on | student | method | seed | held-out task | n | trained | untrained "
             "(best prompt) | change (points) |", "|---|---|---|---:|---|---:|---:|---:|---:|"]
    shown = [r for r in current(rows) if r.get("transfer")]
    parameters = student_parameters(shown)
    untrained: dict[tuple, tuple[float, str, int]] = {}  # (accuracy, baseline, n)
    for row in shown:
        if row["method"] in harness.BASELINES:
            for task, figures in row["transfer"].items():
                key = (row["student"], task)
                untrained[key] = max(untrained.get(key, (-1.0, "", 0)),
                                     (figures["accuracy"], row["method"], figures["n"]))
    compared: set[tuple] = set()
    for row in shown:
        if row["method"] in harness.BASELINES:
            continue
        for task, figures in sorted(row["transfer"].items()):
            best = untrained.get((row["student"], task))
            compared.add((row["student"], task))
            versus = f"{pct(best[0])} ({best[1]})" if best else "not run"
            change = f"{100 * (figures['accuracy'] - best[0]):+.1f}" if best else "-"
            lines.append(
                f"| {harness.DISPLAY[row['dataset']]} | "
                f"{student_label(row['student'], parameters)} | {row['method']} | {_seed(row)} | "
                f"{task} | {figures['n']} | {with_interval(figures)} | {versus} | {change} |")
    for (student, task), (accuracy, method, n) in sorted(untrained.items()):
        if (student, task) not in compared:  # the untrained side, until a trained row has it
            lines.append(f"| no trained row yet | {student_label(student, parameters)} | - | - | "
                         f"{task} | {n} | - | {pct(accuracy)} ({method}) | - |")
    if len(lines) == 2:
        lines.append("| not run yet: rows of the harness at this commit carry `transfer` | | | | "
                     "| | | | |")
    return "\n".join(lines)


def calculator_decoding(_: list[dict]) -> str:
    """benchmarks/calculator_decoding.py's JSON files (one per trained student): the student,
    the same test questions, greedy, without and with the calculator, side by side in one run."""
    return "\n\n".join(_calculator_decoding(json.loads(path.read_text(encoding="utf-8")))
                       for path in sorted(CALCULATOR_DECODING.glob("calculator_decoding*.json")))


def _calculator_decoding(run: dict) -> str:
    lines = [f"Model `{run['model'].split('reproduction/')[-1]}` ({run['method']}); "
             f"{run['questions']} test questions, batch {run['batch_size']}, up to "
             f"{run['max_new_tokens']} tokens; commit {run['commit']}; "
             f"{hardware.label(run['device'])}; command `{run['command']}`.", "",
             "| calculator | correct | accuracy [Wilson 95%] | computations in the outputs | "
             "of them wrong | results the calculator wrote | generated tokens/s (each run) |",
             "|---|---:|---:|---:|---:|---:|---|"]
    for side in ("off", "on"):
        f = run[side]
        low, high = harness.wilson_interval(f["correct"], f["n"])
        lines.append(f"| {side} | {f['correct']} of {f['n']} | {pct(f['correct'] / f['n'])} "
                     f"[{pct(low)}, {pct(high)}] | {f['computations']} | "
                     f"{f['computations_wrong']} | {f['results_written']} | "
                     + ", ".join(f"{v:.1f}" for v in f["tokens_per_s"]) + " |")
    lines += ["", f"Speed with / without the calculator (median generated tokens/s, runs "
              f"alternating off and on in one process): {run['speed_ratio_on_over_off']:.2f}."]
    return "\n".join(lines)


def calculator_coverage(_: list[dict]) -> str:
    """benchmarks/calculator_coverage.py's JSON: what the calculator makes of every "=" in the
    teacher's curated rationales of the arithmetic datasets."""
    run = json.loads(CALCULATOR_COVERAGE.read_text(encoding="utf-8"))
    kinds = ("agrees", "disagrees", "computed, no number after =", "no expression")
    lines = [f"Commit {run['commit']}; command `{run['command']}`.", "",
             "| dataset | rationales | \"=\" signs | " + " | ".join(kinds) + " |",
             "|---|---:|---:|" + "---:|" * len(kinds)]
    for name, figures in [*run["datasets"].items(), ("all", run["total"])]:
        label = harness.DISPLAY.get(name, name)
        lines.append(f"| {label} | {figures['rationales']} | {figures['equals_signs']} | "
                     + " | ".join(str(figures.get(kind, 0)) for kind in kinds) + " |")
    return "\n".join(lines)


TABLES = {"settings": settings, "table5": table5, "methods": methods, "seeds": seeds,
          "precision": precision_check, "errors": errors, "last-letters": last_letters,
          "details": details, "earlier": earlier,
          "option-shortcut": option_shortcut, "calculator": calculator, "masking": masking,
          "formats": formats,
          "calculator-decoding": calculator_decoding,
          "calculator-coverage": calculator_coverage, "transfer": transfer}


# ------------------------------------------------------------------------------------------
# README.md: the default pipeline's figures, from the report files under reports/

PROMPTING = ("zero_shot", "zero_shot_cot", "few_shot_cot")  # cotdistill.params.evaluate.BASELINES
METHOD_LABELS = {
    "fine_tune_cot": "Fine-tune-CoT",
    "new_fine_tune_cot": "New-Fine-tune-CoT",
    "answer_only": "answer-only",
    "distill_step_by_step": "distilling step-by-step",
    "two_stage_cot": "two-stage CoT",
    "zero_shot": "zero-shot",
    "zero_shot_cot": "zero-shot-CoT",
    "few_shot_cot": "few-shot-CoT",
    "socratic": "Socratic CoT",
}
METHOD_DETAILS = {  # the table's method cell, where the name alone says too little
    "answer_only": "answer-only fine-tuning",
    "zero_shot": "zero-shot prompt",
    "few_shot_cot": "few-shot-CoT (exemplars: the teacher's rationales, clustered)",
    "socratic": "Socratic CoT (question-generator and sub-question-solver students)",
}
TRAINED_ON = {  # what a trained method's examples are (the count comes from its train report)
    "fine_tune_cot": "{k} of the teacher's rationales (the correct ones)",
    "new_fine_tune_cot": "{k} of the teacher's few-shot rationales (the correct ones)",
    "answer_only": "{k} gold answers, no rationale",
    "socratic": "{k} examples of the sub-question solver",
}


def _json(path: Path) -> dict | None:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}:{exc.lineno}: not valid JSON") from None


def _validation(path: Path) -> list[tuple[int, float]]:
    if not path.is_file():
        return []
    with path.open(encoding="utf-8", newline="") as handle:
        return [(int(row["step"]), float(row["val_accuracy"])) for row in csv.DictReader(handle)]


def _evaluated_pairs(root: Path, summary: dict) -> list[tuple[tuple[str, str], str]]:
    """((student, method), the headline label that carries its figure) in the report stage's
    order. Its metrics name the method alone when one student was evaluated (that student is
    then the one folder under eval/), and a student's prompting baselines as one label, their
    best: each baseline evaluated under eval/ follows its student's trained methods."""
    from cotdistill.stages.report import PROMPTING as BEST_PROMPTING
    from cotdistill.stages.report import headline_accuracy

    labels = list(dict.fromkeys(label for per in headline_accuracy(summary).values()
                                for label in per))
    students = sorted(path.name for path in (root / "eval").glob("*") if path.is_dir())
    pairs = []
    for label in labels:
        if "/" in label:
            student, method = label.split("/", 1)
        elif len(students) == 1:
            student, method = students[0], label
        else:
            raise ValueError(f"{root}/metrics.json names {label!r} without its student, but "
                             f"{root}/eval/ holds several: {', '.join(students)}")
        if method != BEST_PROMPTING:
            pairs.append(((student, method), label))
            continue
        for baseline in PROMPTING:
            found = _json(root / "eval" / student / baseline / "metrics.json")
            if found is not None and "skipped" not in found:
                pairs.append(((student, baseline), label))
    return pairs


def load_reports(root: Path = REPORTS) -> dict:
    """What the default pipeline's last ``dvc repro`` wrote under ``root``: the report stage's
    metrics (which student x method pairs it evaluated, in its order), each pair's evaluation
    and training reports, and the curate, prepare and teacher reports."""
    summary = _json(root / "metrics.json")
    curation = _json(root / "curate.json")
    if summary is None or curation is None:
        raise ValueError(f"{root}: no metrics.json or curate.json (run `dvc repro`)")
    pairs, skipped = [], []
    from cotdistill.stages.report import PROMPTING as BEST_PROMPTING
    from cotdistill.stages.report import headline_accuracy

    headline = headline_accuracy(summary)
    for (student, method), label in _evaluated_pairs(root, summary):
        key = f"{student}/{method}"
        evaluated = _json(root / "eval" / student / method / "metrics.json")
        if evaluated is None or "accuracy" not in evaluated:
            raise ValueError(f"{root}/metrics.json names {key}, but {root}/eval/{key}/"
                             "metrics.json has no accuracy (run `dvc repro`)")
        for dataset, labels in headline.items():
            accuracy = labels.get(label)
            mine = evaluated["datasets"].get(dataset, {}).get("accuracy")
            if accuracy is None or mine is None:
                continue
            prompted = label.split("/")[-1] == BEST_PROMPTING
            if (mine > accuracy + 1e-9) if prompted else not math.isclose(mine, accuracy,
                                                                          abs_tol=1e-9):
                raise ValueError(f"{root}/metrics.json and {root}/eval/{key}/metrics.json "
                                 "disagree (run `dvc repro`)")
        folder = root / "train" / student / ("socratic_qa" if method == "socratic" else method)
        pairs.append({"student": student, "method": method, "eval": evaluated,
                      "train": _json(folder / "metrics.json"),
                      "val": _validation(folder / "val.csv")})
    for path in sorted(root.glob("eval/*/*/metrics.json")):
        found = _json(path)
        if found and "skipped" in found:
            skipped.append((path.parent.parent.name, path.parent.name, found["skipped"]))
    return {"root": root, "summary": summary, "curation": curation, "pairs": pairs,
            "skipped": skipped, "prepare": _json(root / "prepare.json"),
            "teacher": _json(root / "teacher.json")}


def _correct(metrics: dict) -> int | None:
    """The correct count behind an accuracy over n, when it is a whole number."""
    count = metrics["accuracy"] * metrics["n"]
    return round(count) if metrics["n"] and abs(count - round(count)) < 1e-6 else None


def _interval(metrics: dict) -> tuple[float, float] | None:
    correct = _correct(metrics)
    return None if correct is None else harness.wilson_interval(correct, metrics["n"])


def _test_cell(metrics: dict, bold: bool = False) -> str:
    cell = f"**{pct(metrics['accuracy'])}**" if bold else pct(metrics["accuracy"])
    interval = _interval(metrics)
    return cell + (f" [{pct(interval[0])}, {pct(interval[1])}]" if interval else "")


def _trained_on(pair: dict, curation: dict) -> str:
    if pair["method"] in PROMPTING:
        return "nothing: the untrained student, prompted"
    train = pair["train"] or {}
    if "skipped" in train:
        return "not trained"
    count = train.get("train_examples", (curation.get("examples") or {}).get(pair["method"]))
    if count is None:
        return "not recorded"
    text = TRAINED_ON.get(pair["method"], "{k} curated examples").format(k=count)
    epochs = train.get("epochs_trained")
    if epochs is not None:
        text += f"; {epochs:.3g} epoch" + ("" if float(epochs) == 1 else "s")
    return text


def _validation_cell(pair: dict) -> str:
    train = pair["train"] or {}
    history = pair["val"]
    best = train.get("best_val_accuracy")
    step = train.get("best_step")
    if best is None and history:
        step, best = max(history, key=lambda point: (point[1], -point[0]))
    if best is None:
        return "-"
    where = []
    if train.get("val_examples") is not None:
        where.append(f"n={train['val_examples']}")
    if step is not None:
        where.append(f"step {step}" + (f" of {train['steps']}" if train.get("steps") else ""))
    return pct(best) + (f" ({'; '.join(where)})" if where else "")


def _datasets(reports: dict) -> list[str]:
    return list(dict.fromkeys(d for pair in reports["pairs"]
                              for d in pair["eval"].get("datasets", {})))


def _caption(reports: dict) -> str:
    prepared = (reports["prepare"] or {}).get("datasets", {})
    parts = []
    for dataset in _datasets(reports):
        ns = sorted({pair["eval"]["datasets"][dataset]["n"] for pair in reports["pairs"]
                     if dataset in pair["eval"].get("datasets", {})})
        info = prepared.get(dataset, {})
        split = ("published test split" if info.get("source") == "published" else "test split")
        name = harness.DISPLAY.get(dataset, dataset)
        if len(ns) == 1 and info.get("test") and ns[0] < info["test"]:
            parts.append(f"the first {ns[0]} of the {info['test']} questions of {name}'s {split}, "
                         "in the split's order")
        elif len(ns) == 1 and info.get("test") == ns[0]:
            parts.append(f"all {ns[0]} questions of {name}'s {split}")
        else:
            parts.append(f"{name}'s {split} (n: the table's)")
    text = ("Test accuracy in % on " + "; ".join(parts)
            + " (`reports/eval/<student>/<method>/metrics.json`), with its Wilson 95% interval; "
            "validation: the best scoring of the training run on the validation split, whose "
            "checkpoint is the trained model (`reports/train/<student>/<method>/`).")
    curation = reports["curation"]
    teacher = (reports["teacher"] or {}).get("teacher")
    questions = sum(row.get("questions", 0) for row in curation.get("datasets", {}).values())
    if None not in (curation.get("kept_rationales"), curation.get("teacher_accuracy")) \
            and questions:
        who = f"The teacher, {teacher}," if teacher else "The teacher"
        text += (f" {who} answered {pct(curation['teacher_accuracy'])}% of the {questions} "
                 f"training questions right; its {curation['kept_rationales']} correct "
                 "rationales are what Fine-tune-CoT trains on (`reports/curate.json`).")
    return text


def _verdicts(reports: dict) -> list[str]:
    """As the report stage's "Does distillation work?": Fine-tune-CoT against answer-only and
    the best prompting baseline, per student and dataset, plus whether the intervals overlap."""
    found = {(pair["student"], pair["method"]): pair["eval"] for pair in reports["pairs"]}
    lines = []
    for student in dict.fromkeys(pair["student"] for pair in reports["pairs"]):
        cot, plain = found.get((student, "fine_tune_cot")), found.get((student, "answer_only"))
        if cot is None or plain is None:
            continue
        for dataset, mine in cot.get("datasets", {}).items():
            tried = [(found[(student, b)]["datasets"][dataset], b) for b in PROMPTING
                     if dataset in found.get((student, b), {}).get("datasets", {})]
            if dataset not in plain.get("datasets", {}) or not tried:
                continue
            best, name = max(tried, key=lambda item: item[0]["accuracy"])
            other = plain["datasets"][dataset]
            beats = mine["accuracy"] > other["accuracy"] and mine["accuracy"] > best["accuracy"]
            text = (f"{student} on {harness.DISPLAY.get(dataset, dataset)}: Fine-tune-CoT "
                    f"{pct(mine['accuracy'])}% against answer-only {pct(other['accuracy'])}% "
                    f"({100 * (mine['accuracy'] - other['accuracy']):+.1f} points) and the best "
                    f"prompting baseline, {METHOD_LABELS.get(name, name)}, "
                    f"{pct(best['accuracy'])}% "
                    f"({100 * (mine['accuracy'] - best['accuracy']):+.1f}): Fine-tune-CoT "
                    + ("beats both" if beats else "does not beat both"))
            intervals = [_interval(m) for m in (mine, other, best)]
            if all(intervals):
                apart = [label for label, interval in (("answer-only's", intervals[1]),
                                                       (f"{METHOD_LABELS.get(name, name)}'s",
                                                        intervals[2]))
                         if intervals[0][0] > interval[1]]
                text += ("; its Wilson interval lies above " + " and ".join(apart)
                         if apart else "; its Wilson interval overlaps both of theirs")
                if len(apart) == 1:
                    text += ", and overlaps the other's"
            lines.append(text + ".")
    return lines


def _provenance(reports: dict) -> str:
    """The commit and hardware the figures came from, where the report files record them."""
    root = reports["root"]
    recorded, missing = defaultdict(list), []
    for pair in reports["pairs"]:
        label = f"{pair['student']}/{pair['method']}"
        sources = [pair["eval"], pair["train"] or {}]
        commit_ = next((s["commit"] for s in sources if s.get("commit")), None)
        device_ = next((s["device"] for s in sources if s.get("device")), None)
        if commit_ or device_:
            recorded[(commit({"commit": commit_}), hardware.label(device_ or {}))].append(label)
        else:
            missing.append(label)
    lines = [f"Run at commit {c} on {d}: {', '.join(labels)}."
             for (c, d), labels in recorded.items()]
    if missing:
        which = "" if not recorded else f" for {', '.join(missing)}"
        lines.append(
            f"Commit and hardware: not recorded{which}: the report files "
            f"(`{root.name}/eval/<student>/<method>/metrics.json`, "
            f"`{root.name}/train/<student>/<method>/metrics.json`) carry neither; `dvc.lock` "
            "records the code and data the run read, by hash.")
    return " ".join(lines)


def _prose(text: str) -> str:
    return textwrap.fill(text, width=96, break_long_words=False, break_on_hyphens=False)


def default_pipeline(reports: dict) -> str:
    """README's Quick start table: every student x method the report stage evaluated, the
    pairs it could not evaluate and why, the verdict, and the commit and hardware."""
    datasets = _datasets(reports)
    per_dataset = len(datasets) > 1
    lines = [_prose(_caption(reports)), "",
             "| student | method | trained on | test accuracy [Wilson 95%] | n | "
             + "".join(f"{harness.DISPLAY.get(d, d)} | " for d in datasets if per_dataset)
             + "best validation |",
             "|---|---|---|---:|---:|" + "---:|" * (len(datasets) if per_dataset else 0)
             + "---:|"]
    for pair in reports["pairs"]:
        method = pair["method"]
        label = METHOD_DETAILS.get(method, METHOD_LABELS.get(method, method))
        if method == "fine_tune_cot":
            label = f"**{label}**"
        found = pair["eval"].get("datasets", {})
        cells = [pct(found[d]["accuracy"]) if d in found else "-"
                 for d in datasets] if per_dataset else []
        lines.append(f"| {pair['student']} | {label} | {_trained_on(pair, reports['curation'])} "
                     f"| {_test_cell(pair['eval'], bold=method == 'fine_tune_cot')} | "
                     f"{pair['eval']['n']} | " + "".join(c + " | " for c in cells)
                     + f"{_validation_cell(pair)} |")
    if not reports["pairs"]:
        lines.append("| no student evaluated yet | | | | | |")
    for student, method, reason in reports["skipped"]:
        lines += ["", _prose(f"{student}, {METHOD_DETAILS.get(method, method)}: not "
                             f"evaluated: {reason.rstrip('.')}.")]
    verdicts = _verdicts(reports)
    if verdicts:
        lines += [""] + [textwrap.indent(_prose(f"- {line}"), "  ")[2:] for line in verdicts]
    return "\n".join(lines + ["", _prose(_provenance(reports))])


README_TABLES = {"default-pipeline": default_pipeline}


def render(document: str, rows, tables: dict | None = None) -> str:
    """``document`` with every marked table rendered from ``rows`` (docs/results.md's tables,
    the default) or, with ``tables=README_TABLES``, from the reports that :func:`load_reports`
    read; an unknown, unclosed or missing table is an error."""
    tables = TABLES if tables is None else tables
    seen: list[str] = []

    def replace(match: re.Match) -> str:
        name = match["name"]
        if name not in tables:
            raise ValueError(f"unknown table {name!r} (known: {', '.join(tables)})")
        seen.append(name)
        return match["begin"] + tables[name](rows) + "\n" + match["end"]

    rendered = REGION.sub(replace, document)
    if len(BEGIN.findall(document)) != len(seen):
        raise ValueError("a <!-- BEGIN table:NAME --> marker has no matching END marker")
    missing = [name for name in tables if name not in seen]
    if missing:
        raise ValueError(f"no region for table(s) {', '.join(missing)}")
    return rendered


def _target(name: str, doc: Path, source: Path, load, tables: dict, check: bool) -> int:
    """Render (or with ``check``, compare) one document's regions; 0 up to date or rewritten,
    1 differs, 2 cannot be rendered."""
    try:
        data = load(source)
        document = doc.read_text(encoding="utf-8")
        rendered = render(document, data, tables)
    except (ValueError, OSError) as exc:
        print(f"{doc}: {exc}", file=sys.stderr)
        return 2
    if check:
        if rendered != document:
            sys.stderr.writelines(difflib.unified_diff(
                document.splitlines(keepends=True), rendered.splitlines(keepends=True),
                str(doc), f"{doc} rendered from {source}"))
            print(f"{doc} differs from {source}: run python scripts/render_results.py "
                  f"--only {name}", file=sys.stderr)
            return 1
        return 0
    if rendered != document:
        doc.write_text(rendered, encoding="utf-8")
        print(f"{doc}: tables rendered from {source}")
    else:
        print(f"{doc}: up to date")
    return 0


def _results_rows(path: Path) -> list[dict]:
    rows = harness.load_rows(path)
    if [row for row in rows if (row.get("settings") or {}).get("smoke")]:
        raise ValueError(f"{path}: holds smoke rows; they are not results")
    return rows


BENCHMARKS_DOC = REPO / "docs" / "benchmarks.md"
THROUGHPUT = REPO / "benchmarks" / "results" / "train_throughput.json"


def _throughput(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def train_throughput(run: dict) -> str:
    """benchmarks/train_throughput.py's JSON: every setting, tokens/s and the ratio to the raw
    step of the same precision, with the commit and device of the run; on a GPU, the model
    FLOPs utilisation of each bf16 setting against the GPU's bf16 peak."""
    results = run["results"]
    gpu = bool(run["device"].get("gpu"))
    lines = [f"Device: {hardware.label(run['device'])}, torch {run['device'].get('torch')}; "
             f"model {run['model']}; batch {run['batch_size']} x {run['length']} tokens, "
             f"{run['steps']} measured steps each; commit {run.get('commit', 'not recorded')}; "
             f"command `{run.get('command', 'python benchmarks/train_throughput.py')}`.", "",
             "| setting | tokens/s | vs raw step, same precision | peak memory (GiB) |"
             + (" MFU (bf16 peak) |" if gpu else ""),
             "|---|---:|---:|---:|" + ("---:|" if gpu else "")]
    for name, figures in results.items():
        raw = results.get(f"raw {figures['precision']}", {}).get("tokens_per_s")
        ratio = f"{figures['tokens_per_s'] / raw:.2f}" if raw else "-"
        utilised = (f" {100 * figures['mfu']:.1f}% |" if figures.get("mfu") is not None
                    else " - |") if gpu else ""
        lines.append(f"| {name} | {figures['tokens_per_s']:.1f} | {ratio} | "
                     f"{figures['peak_mem_gib']:.2f} |" + utilised)
    raw32, raw16 = (results.get(f"raw {p}", {}).get("tokens_per_s") for p in ("fp32", "bf16"))
    new16, old32 = (results.get(name, {}).get("tokens_per_s")
                    for name in ("pipeline bf16", "pipeline (before) fp32"))
    if raw32 and raw16:
        lines += ["", f"bf16 / fp32, raw step: {raw16 / raw32:.2f}."]
    if new16 and old32:
        lines.append(f"The pipeline now (bf16, padded batches grouped by length) / before (fp32, "
                     f"packed): {new16 / old32:.2f}.")
    return "\n".join(lines)


TEACHER_THROUGHPUT = REPO / "benchmarks" / "results" / "teacher_throughput.json"


def teacher_throughput(_: dict) -> str:
    """benchmarks/teacher_throughput.py's JSON: the speed-up of each concurrency over one
    request at a time, measured side by side in one run, with its commit and device."""
    run = json.loads(TEACHER_THROUGHPUT.read_text(encoding="utf-8"))
    rows = run["rows"]
    base = rows[0]["requests"] / rows[0]["seconds"]
    lines = [f"Device: {hardware.label(run['device'])}, torch {run['device'].get('torch')}; "
             f"model {run['model']}; {run['questions']} questions x 2 steps, "
             f"{run['max_tokens']} rationale tokens; commit {run['commit']}; "
             f"command `{run['command']}`.", "",
             "| concurrency | requests | requests/s over one at a time |",
             "|---:|---:|---:|"]
    for row in rows:  # ratios only: absolute times on this CPU say little (they are in the JSON)
        rate = row["requests"] / row["seconds"]
        lines.append(f"| {row['concurrency']} | {row['requests']} | {rate / base:.2f} |")
    return "\n".join(lines)


def kd_alignment(_: dict) -> str:
    """benchmarks/kd_alignment.py's JSON: per teacher and student tokenizer, how many of the
    teacher's stored tokens line up, and how many candidates were projected across tokenizers."""
    run = json.loads(KD_ALIGNMENT.read_text(encoding="utf-8"))
    lines = ["| teacher | student tokenizer | teacher tokens placed | aligned | target tokens with "
             "the teacher's distribution | candidates projected | verdict | KL to the teacher, "
             "first -> last step (KD only) | commit | CPU |",
             "|---|---|---:|---:|---:|---:|---|---|---|---|"]

    def name(spec: str) -> str:
        return spec.removeprefix("builtin:").rstrip("/").rsplit("/", 2)[-2] \
            if spec.endswith("/model") else spec.removeprefix("builtin:")

    for row in run["rows"]:
        lines.append(
            f"| {name(row['teacher'])} | {name(row['student'])} ({row['tokenizer']}, "
            f"{row['vocabulary']:,}) | {row['placed']} of {row['generated']} | {row['aligned']} "
            f"({100 * row['aligned_share']:.1f}%) | {row['positions']} | {row['projected']} of "
            f"{row['candidates']} ({100 * row['projected_share']:.1f}%) | {row['verdict']} | "
            + (f"{row['first_kl']:.3f} -> {row['final_kl']:.3f} ({row['train_steps']} steps) | "
               if "first_kl" in row else "not trained | ")
            + f"{row['commit']} | {hardware.label(row['device'])} |")
    return "\n".join(lines + ["", f"Training refuses below {100 * run['min_aligned']:.0f}% "
                                   "aligned."])


BENCHMARK_TABLES = {"train-throughput": train_throughput, "teacher-throughput": teacher_throughput,
                    "kd-alignment": kd_alignment}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="change nothing; exit 1 when a document differs from its rendering")
    parser.add_argument("--only", choices=("results", "readme", "benchmarks"),
                        help="one document: docs/results.md (results), README.md (readme) or "
                             "docs/benchmarks.md (benchmarks)")
    parser.add_argument("--doc", type=Path, default=DOC, help="the results document")
    parser.add_argument("--results", type=Path, default=RESULTS, help="its rows")
    parser.add_argument("--readme", type=Path, default=README, help="the README")
    parser.add_argument("--reports", type=Path, default=REPORTS,
                        help="the default pipeline's reports/ folder")
    args = parser.parse_args(argv)
    targets = {"results": (args.doc, args.results, _results_rows, TABLES),
               "readme": (args.readme, args.reports, load_reports, README_TABLES),
               "benchmarks": (BENCHMARKS_DOC, THROUGHPUT, _throughput, BENCHMARK_TABLES)}
    codes = [_target(name, *target, args.check) for name, target in targets.items()
             if args.only in (None, name)]
    return max(codes)


if __name__ == "__main__":
    sys.exit(main())
