"""Render docs/results.md's tables from reproduction/results.json.

    python scripts/render_results.py            # rewrite the tables of docs/results.md in place
    python scripts/render_results.py --check    # exit 1 (with a diff) when the document differs

The tables live between marker comments, ``<!-- BEGIN table:NAME -->`` and
``<!-- END table:NAME -->``; everything between them is rewritten, the prose around them is left
alone. Every figure in them comes from the rows that benchmarks/reproduce_table5.py wrote, or
from that script's constants (the published Table 5 anchors, the table's fixed settings); none
is typed by hand. tests/test_results_doc.py fails when the document and the file disagree.
"""

from __future__ import annotations

import argparse
import difflib
import importlib.util
import re
import sys
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "results.md"
REGION = re.compile(
    r"(?P<begin><!-- BEGIN table:(?P<name>[\w-]+) -->\n)(?P<body>.*?)"
    r"(?P<end><!-- END table:(?P=name) -->)", re.S)
BEGIN = re.compile(r"<!-- BEGIN table:")


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


harness = _load("reproduce_table5", REPO / "benchmarks" / "reproduce_table5.py")
hardware = sys.modules["hardware"]
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
    return [row for row in rows if not row.get("legacy")]


def pick(rows: list[dict], dataset: str, student: str, method: str, seed) -> dict | None:
    return next((r for r in rows if (r["dataset"], r["student"], r["method"], r["seed"])
                 == (dataset, student, method, seed)), None)


def students(rows: list[dict]) -> list[str]:
    others = sorted({r["student"] for r in rows if r["method"] != harness.TEACHER}
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
        for student in students(rows):
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
        for student in students(rows):
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


def details(rows: list[dict]) -> str:
    rows = current(rows)
    parameters = student_parameters(rows)
    lines = ["| dataset | student | method | seed | n | correct | accuracy | Wilson 95% | "
             "training | precision (train / eval) | wall | commit | CPU | settings |",
             "|---|---|---|---:|---:|---:|---:|---|---|---|---:|---|---|---|"]
    for row in rows:
        low, high = row["wilson95"]
        changed = differences(row)
        lines.append(
            f"| {harness.DISPLAY.get(row['dataset'], row['dataset'])} | "
            f"{student_label(row['student'], parameters)} | {row['method']} | "
            f"{'-' if row['seed'] is None else row['seed']} | {row['n']} | {row['correct']} | "
            f"{pct(row['accuracy'])} | {pct(low)}-{pct(high)} | {training(row)} | "
            f"{precision(row)} | {seconds((row.get('wall_s') or {}).get('total'))} | "
            f"{commit(row)} | {device(row)} | "
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
        low, high = row["wilson95"]
        lines.append(
            f"| {harness.DISPLAY.get(row['dataset'], row['dataset'])} | {row['student']} | "
            f"{row['method']} | {row['seed']} | {row['n']} | {row['correct']} | "
            f"{pct(row['accuracy'])} | {pct(low)}-{pct(high)} | {', '.join(differences(row))} | "
            f"{precision(row)} | {seconds((row.get('wall_s') or {}).get('total'))} | "
            f"{row['legacy']} |")
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


TABLES = {"settings": settings, "table5": table5, "methods": methods, "seeds": seeds,
          "details": details, "earlier": earlier}


def render(document: str, rows: list[dict]) -> str:
    """``document`` with every marked table rendered from ``rows``; an unknown, unclosed or
    missing table is an error."""
    seen: list[str] = []

    def replace(match: re.Match) -> str:
        name = match["name"]
        if name not in TABLES:
            raise ValueError(f"unknown table {name!r} (known: {', '.join(TABLES)})")
        seen.append(name)
        return match["begin"] + TABLES[name](rows) + "\n" + match["end"]

    rendered = REGION.sub(replace, document)
    if len(BEGIN.findall(document)) != len(seen):
        raise ValueError("a <!-- BEGIN table:NAME --> marker has no matching END marker")
    missing = [name for name in TABLES if name not in seen]
    if missing:
        raise ValueError(f"no region for table(s) {', '.join(missing)}")
    return rendered


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="change nothing; exit 1 when the document differs from its rendering")
    parser.add_argument("--doc", type=Path, default=DOC)
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    rows = harness.load_rows(args.results)
    smoke = [row for row in rows if (row.get("settings") or {}).get("smoke")]
    if smoke:
        print(f"{args.results}: holds smoke rows; they are not results", file=sys.stderr)
        return 2
    document = args.doc.read_text(encoding="utf-8")
    try:
        rendered = render(document, rows)
    except ValueError as exc:
        print(f"{args.doc}: {exc}", file=sys.stderr)
        return 2
    if args.check:
        if rendered != document:
            sys.stderr.writelines(difflib.unified_diff(
                document.splitlines(keepends=True), rendered.splitlines(keepends=True),
                str(args.doc), f"{args.doc} rendered from {args.results}"))
            print(f"{args.doc} differs from {args.results}: run python "
                  "scripts/render_results.py", file=sys.stderr)
            return 1
        return 0
    if rendered != document:
        args.doc.write_text(rendered, encoding="utf-8")
        print(f"{args.doc}: tables rendered from {args.results}")
    else:
        print(f"{args.doc}: up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
