"""Where each stage reads and writes, relative to the repository root (mirrors dvc.yaml)."""

from __future__ import annotations

import json
from pathlib import Path

from cotdistill.errors import CotdistillError

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


def read_train_info(model_dir: Path, *, missing: str) -> dict:
    """A trained model's ``train_info.json``, read one way by every stage that loads a model;
    ``missing`` is the error when there is none (it says what to run first)."""
    path = Path(model_dir) / TRAIN_INFO
    if not path.is_file():
        raise CotdistillError(missing)
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CotdistillError(f"{path}: unreadable ({exc})") from None
    if not isinstance(info, dict):
        raise CotdistillError(f"{path}: not a JSON object")
    return info
