"""Where each stage reads and writes, relative to the repository root (mirrors dvc.yaml)."""

from __future__ import annotations

from pathlib import Path

PREPARED = Path("data/prepared")
PREPARE_REPORT = Path("reports/prepare.json")
COMPLETIONS = Path("data/teacher/completions.jsonl")
TEACHER_REPORT = Path("reports/teacher.json")
FEWSHOT_COMPLETIONS = Path("data/teacher/fewshot_completions.jsonl")
FEWSHOT_REPORT = Path("reports/teacher_fewshot.json")
CURATED = Path("data/curated")
CURATE_STATS = Path("reports/curate.json")
EXEMPLARS = Path("data/exemplars.jsonl")
SUMMARY = Path("reports/summary.md")
ACCURACY_PLOT = Path("reports/accuracy.png")
METRICS = Path("reports/metrics.json")
DECOMPOSITIONS = Path("data/socratic/decompositions.jsonl")
DECOMPOSE_STATS = Path("reports/socratic/decompose.json")
TRAIN_INFO = "train_info.json"  # beside a saved model: its MLflow run id and training figures


def prepared(split: str) -> Path:
    return PREPARED / f"{split}.jsonl"


def curated(method: str) -> Path:
    return CURATED / f"{method}.jsonl"


def model_dir(student: str, method: str) -> Path:
    return Path("models") / student / method


def train_reports(student: str, method: str) -> Path:
    return Path("reports/train") / student / method


def eval_reports(student: str, method: str) -> Path:
    return Path("reports/eval") / student / method
