"""`cotdistill teacher` run as a user runs it (a subprocess in a working directory of its own)
against the real server on loopback, whose own counters say how many calls were paid for."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import urllib.request
from pathlib import Path

import yaml

from cotdistill.records import PreparedExample

ENV = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}


def served(url: str) -> int:
    """Completion requests the server has answered so far."""
    with urllib.request.urlopen(url.removesuffix("/v1") + "/stats", timeout=10) as answer:
        return sum(json.load(answer)["completions"].values())


def cached(path: Path) -> int:
    """Responses in the cache file at ``path`` (0 when it or its table does not exist yet)."""
    if not path.exists():
        return 0
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        return db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]
    except sqlite3.OperationalError:  # the table is not created yet
        return 0
    finally:
        db.close()


def coin_questions(count: int) -> list[PreparedExample]:
    return [
        PreparedExample(id=f"coin_flip-{i:05d}", dataset="coin_flip", split="train",
                        question=f"A coin is heads up. Person{i} flips the coin. Person{i + 1} "
                                 "does not flip the coin. Is the coin still heads up?",
                        answer="no", answer_type="yes_no")
        for i in range(count)
    ]


def workdir(path: Path, teacher: dict, questions: int) -> Path:
    """A directory with a prepared train split of ``questions`` and a params.yaml."""
    (path / "data/prepared").mkdir(parents=True)
    (path / "data/prepared/train.jsonl").write_text(
        "".join(e.model_dump_json() + "\n" for e in coin_questions(questions)))
    write_params(path, teacher)
    return path


def write_params(path: Path, teacher: dict) -> None:
    (path / "params.yaml").write_text(yaml.safe_dump({"teacher": teacher}))


def teacher_command(cwd: Path) -> list[str]:
    return [sys.executable, "-m", "cotdistill", "teacher", "--params", str(cwd / "params.yaml")]


def run_teacher_stage(cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(teacher_command(cwd), cwd=cwd, env=ENV, capture_output=True,
                          text=True, timeout=timeout, check=False)


def report(cwd: Path) -> dict:
    return json.loads((cwd / "reports/teacher.json").read_text())
