"""Where things live: the repository root (even when DVC runs a stage from a temporary copy),
this checkout's local state, and where each stage reads and writes, relative to the root
(mirrors dvc.yaml).

``dvc exp run --temp`` and queued experiments run in ``<repo>/.dvc/tmp/exps/<name>/``; the MLflow
store and the teacher cache must still be the repository's own, so they hang off
:func:`repo_root`.
"""

from __future__ import annotations

import json
import os
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
CURVES_PLOT = Path("reports/curves.png")
LOSS_CURVES = Path("reports/curves/loss.csv")  # run,step,loss: every training run
VAL_CURVES = Path("reports/curves/val.csv")  # run,step,val_accuracy
TRANSFER_CURVES = Path("reports/curves/transfer.csv")  # run,step,transfer_accuracy (a probe)
METRICS = Path("reports/metrics.json")
METRICS_TEACHER = "teacher"  # its group of the teacher's figures; no dataset takes this name
DECOMPOSITIONS = Path("data/socratic/decompositions.jsonl")
DECOMPOSE_RESPONSES = Path("data/socratic/teacher_responses.jsonl")  # every response, raw
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


def repo_root(start: Path | str | None = None) -> Path:
    here = Path(start or os.getcwd()).resolve()
    parts = here.parts
    for index in range(len(parts) - 2):
        if parts[index : index + 3] == (".dvc", "tmp", "exps"):
            return Path(*parts[:index])
    return here


def state_dir() -> Path:
    """Local, unversioned state of this checkout (the teacher response cache)."""
    return repo_root() / ".cotdistill"


TEACHER_CACHE_ENV = "COTDISTILL_TEACHER_CACHE"


def teacher_cache() -> Path:
    """The teacher response cache that every teacher pass of this checkout shares; with
    ``$COTDISTILL_TEACHER_CACHE`` set, the file it names, which several clones (or machines on
    one volume) can share, so that a response one of them paid for is never bought again."""
    shared = os.environ.get(TEACHER_CACHE_ENV)
    return Path(shared).expanduser().resolve() if shared else state_dir() / "teacher-cache.sqlite"


def from_root(path: str | Path) -> Path:
    """A path from params: relative ones are relative to the repository root, not the cwd,
    so ``../shared/data/mirror`` means the same in a ``dvc exp run --temp`` copy."""
    path = Path(path).expanduser()
    return path if path.is_absolute() else repo_root() / path
