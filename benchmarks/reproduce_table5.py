"""Fine-tune-CoT (D=1) with the published text-davinci-002 rationales, next to seed 004's Table 5.

For every dataset with a published Kojima et al. log, SmolLM2-135M is distilled with
Fine-tune-CoT on the teacher's correct rationales (one per question, as published) and, beside
it, fine-tuned on the answers alone; both are evaluated on the dataset's full published test
split. The table prints beside the best <=250M-student figures of Table 5.

    python benchmarks/reproduce_table5.py                      # every dataset, resumes
    python benchmarks/reproduce_table5.py --datasets coin_flip --seed 1   # seed noise
    COTDISTILL_DATA_MIRROR=../shared/data/mirror python benchmarks/reproduce_table5.py  # offline

Each dataset runs the pipeline's own stages (``cotdistill prepare``, ``teacher`` with the
replay backend, ``curate``, ``train``, ``evaluate``) in ``reproduction/<dataset>/`` with
``params.yaml`` plus the overrides below, so a run is the same code as ``dvc repro``. A dataset
whose results exist is skipped: a long run can be spread over several sessions. Results, with
wall times, go to ``reproduction/results.json``; ``docs/results.md`` quotes them.

Hyper-parameters are fixed before any run (never chosen by looking at test scores): those of
``params.yaml``'s training section with ``--epochs`` epochs and the checkpoint selected on the
validation split, as the default pipeline does.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

from cotdistill.teachers.kojima_logs import LOGS

REPO = Path(__file__).resolve().parents[1]
# seed 004, Table 5: best Fine-tune-CoT D=1 row of any <=250M student; best of any method
PUBLISHED = {
    "single_eq": (6.58, 10.50), "addsub": (9.24, 13.40), "multiarith": (12.22, 19.40),
    "svamp": (9.33, 14.00), "date_understanding": (83.78, 84.68),
    "tracking_shuffled_objects": (48.89, 75.10), "last_letter_concatenation": (50.00, 70.00),
    "coin_flip": (100.0, 100.0),
}
METHODS = ("fine_tune_cot", "answer_only")


def params_for(dataset: str, args: argparse.Namespace) -> dict:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["prepare"]["datasets"] = [dataset]
    params["teacher"].update(backend="replay", replay_source="kojima_logs", replay_path=None,
                             samples=1, temperature=0.0, max_questions=None)
    params["train"]["methods"] = list(METHODS)
    params["train"]["hparams"].update(epochs=args.epochs, max_steps=-1, seed=args.seed)
    params["evaluate"]["max_examples"] = None  # the whole published test split
    return params


def run_dataset(dataset: str, args: argparse.Namespace) -> dict:
    work = REPO / "reproduction" / (dataset if args.seed == 0 else f"{dataset}-seed{args.seed}")
    work.mkdir(parents=True, exist_ok=True)
    (work / "params.yaml").write_text(yaml.safe_dump(params_for(dataset, args), sort_keys=False))
    executable = str(Path(sys.executable).parent / "cotdistill")
    times: dict[str, float] = {}

    def stage(name: str, *arguments: str) -> None:
        started = time.perf_counter()
        print(f"[{dataset}] cotdistill {name} {' '.join(arguments)}", flush=True)
        result = subprocess.run([executable, name, *arguments], cwd=work, env=dict(os.environ))
        if result.returncode != 0:
            raise SystemExit(f"{dataset}: cotdistill {name} failed (exit {result.returncode}); "
                             f"see above; work directory {work}")
        times[" ".join([name, *arguments])] = round(time.perf_counter() - started, 1)

    for name in ("prepare", "teacher", "curate"):
        stage(name)
    accuracy = {}
    for method in METHODS:
        stage("train", "--student", args.student, "--method", method)
        stage("evaluate", "--student", args.student, "--method", method)
        metrics = json.loads((work / f"reports/eval/{args.student}/{method}/metrics.json")
                             .read_text())
        accuracy[method] = {"accuracy": metrics["accuracy"], "n": metrics["n"]}
    curate = json.loads((work / "reports/curate.json").read_text())
    return {"dataset": dataset, "epochs": args.epochs, "seed": args.seed, "teacher_accuracy":
            curate["teacher_accuracy"], "kept_rationales": curate["kept_rationales"],
            "students": accuracy, "seconds": times, "wall_s": round(sum(times.values()), 1)}


def noise(results: dict[str, dict]) -> list[str]:
    """Fine-tune-CoT and answer-only under another training seed, where one was run."""
    lines = []
    for name, row in results.items():
        base = results.get(row["dataset"]) if row.get("seed", 0) else None
        if base is None:
            continue
        for method in METHODS:
            a, b = base["students"][method]["accuracy"], row["students"][method]["accuracy"]
            lines.append(f"{row['dataset']} {method}: seed 0 {100 * a:.2f}, seed {row['seed']} "
                         f"{100 * b:.2f} (difference {100 * abs(a - b):.2f} points)")
    return lines


def table(results: dict[str, dict]) -> str:
    lines = ["| dataset | Fine-tune-CoT D=1 (ours) | answer-only (ours) | n test | "
             "Table 5 FT-CoT D=1 (<=250M) | Table 5 best (<=250M) | wall |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for dataset, (first, best) in PUBLISHED.items():
        row = results.get(dataset)
        if row is None:
            why = "not run" if dataset in LOGS else "no published log"
            lines.append(f"| {dataset} | {why} | | | {first:.2f} | {best:.2f} | |")
            continue
        ours = row["students"]
        lines.append(f"| {dataset} | {100 * ours['fine_tune_cot']['accuracy']:.2f} | "
                     f"{100 * ours['answer_only']['accuracy']:.2f} | "
                     f"{ours['fine_tune_cot']['n']} | {first:.2f} | {best:.2f} | "
                     f"{row['wall_s'] / 60:.1f} min |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="*", default=[d for d in PUBLISHED if d in LOGS],
                        help="datasets to run (default: every one with a published log; "
                             "Kojima et al. published none for SVAMP)")
    parser.add_argument("--epochs", type=float, default=None,
                        help="training epochs (default: params.yaml's train.hparams.epochs)")
    parser.add_argument("--student", default="smollm2-135m")
    parser.add_argument("--seed", type=int, default=0,
                        help="training seed (another seed measures the noise between seeds)")
    parser.add_argument("--rerun", action="store_true", help="run datasets that have results")
    args = parser.parse_args()
    if args.epochs is None:
        args.epochs = float(yaml.safe_load((REPO / "params.yaml").read_text())
                            ["train"]["hparams"]["epochs"])
    out = REPO / "reproduction/results.json"
    results = json.loads(out.read_text()) if out.is_file() else {}
    for dataset in args.datasets:
        name = dataset if args.seed == 0 else f"{dataset}-seed{args.seed}"
        if dataset not in PUBLISHED or dataset not in LOGS:
            raise SystemExit(f"{dataset}: no published log / Table 5 figure "
                             f"(known: {', '.join(PUBLISHED)})")
        if name in results and results[name]["epochs"] == args.epochs and not args.rerun:
            print(f"[{name}] done before: skipped (--rerun to run it again)")
            continue
        results[name] = run_dataset(dataset, args)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=2) + "\n")  # after each dataset: resumable
    print(table(results))
    for line in noise(results):
        print(line)


if __name__ == "__main__":
    main()
