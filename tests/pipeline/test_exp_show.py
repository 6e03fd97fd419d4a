"""`dvc exp show`, typed with no options in a 200-column terminal, leads with the results.

DVC pages the table through `less -S`: the terminal shows its first 200 columns, and every
param and dep lies to the right of the metrics. The test renders the committed
reports/metrics.json (the default run's) and params.yaml through DVC itself, in a pseudo
terminal 200 columns wide, with `cat` as the pager so that the whole table comes back, and
reads what the first 200 columns hold.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest
from support.repository import dvc

ROOT = Path(__file__).resolve().parents[2]
WIDTH = 200
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# a stage that publishes a headline, so that DVC records params and metrics per experiment
STAGE = """stages:
  report:
    cmd: mkdir -p reports && cp headline.json reports/metrics.json
    deps:
      - headline.json
    params:
      - params.yaml:
    metrics:
      - reports/metrics.json:
          cache: false
"""


def _columns(headline: dict) -> list[str]:
    """The metric columns DVC makes of a headline: its keys, joined by dots."""
    return [f"{group}.{key}" for group, figures in headline.items() for key in figures]


def _git(repo: Path, *args: str, date: str | None = None) -> None:
    env = dict(os.environ, GIT_COMMITTER_DATE=date, GIT_AUTHOR_DATE=date) if date else None
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, env=env)


def _as_in_a_terminal(repo: Path, *args: str) -> list[str]:
    """What `dvc exp show` writes to a 200-column terminal, each line cut where the terminal
    cuts it (`less -S` chops long lines)."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 50, WIDTH, 0, 0))
    env = dict(os.environ, DVC_PAGER="cat", COLUMNS=str(WIDTH), TERM="xterm",
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    process = subprocess.Popen([str(Path(sys.executable).parent / "dvc"), "exp", "show", *args],
                               cwd=repo, env=env, stdin=follower, stdout=follower,
                               stderr=follower)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal is closed once dvc and its pager have exited
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert process.wait(timeout=120) == 0
    text = ANSI.sub("", b"".join(chunks).decode("utf-8", "replace"))
    return [line[:WIDTH] for line in text.replace("\r", "").splitlines()]


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    """A DVC repository holding the committed params and headline, and one experiment with
    a name of DVC's own making."""
    repo = tmp_path_factory.mktemp("exp_show")
    (repo / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    headline = json.loads((ROOT / "reports/metrics.json").read_text())
    (repo / "headline.json").write_text(json.dumps(headline))
    (repo / "dvc.yaml").write_text(STAGE)
    _git(repo, "init", "-q")
    _git(repo, "config", "user.name", "t")  # the repository's own identity, for git and for
    _git(repo, "config", "user.email", "t@t")  # `dvc exp save`, on machines without a global one
    for args in (("init", "-q"), ("repro", "-q")):
        assert dvc(repo, *args).returncode == 0
    _git(repo, "add", "-A")
    # a commit of an earlier day: DVC then writes its date, not only its time, under Created
    _git(repo, "commit", "-qm", "the committed headline", date="2026-01-01T12:00:00")
    headline["teacher"]["accepted"] += 1  # an experiment: another teacher pass, say
    (repo / "headline.json").write_text(json.dumps(headline))
    for args in (("repro", "-q"), ("exp", "save")):
        done = dvc(repo, *args)
        assert done.returncode == 0, done.stderr
    return repo


def test_the_committed_headline_is_the_teacher_then_n_and_accuracy_per_dataset():
    headline = json.loads((ROOT / "reports/metrics.json").read_text())
    assert list(headline)[0] == "teacher" and set(headline["teacher"]) == {"accuracy",
                                                                           "accepted"}
    for dataset, figures in list(headline.items())[1:]:
        assert list(figures)[0] == "n", dataset
        assert all(0 <= value <= 1 for key, value in figures.items() if key != "n")


def test_a_200_column_terminal_shows_every_headline_column_beside_a_named_experiment(repo):
    headline = json.loads((ROOT / "reports/metrics.json").read_text())
    lines = _as_in_a_terminal(repo)
    [header] = [line for line in lines if "Experiment" in line]
    assert header.split()[:2] == ["Experiment", "Created"]
    # every headline column, whole, and nothing between them: params and deps come after
    assert header.split()[2:2 + len(_columns(headline))] == _columns(headline)
    rows = [line for line in lines if re.search(r"[0-9a-f]{7} \[[a-z]+-[a-z]+\]", line)]
    assert len(rows) == 1, "the experiment's row, named by DVC"
    assert str(headline["teacher"]["accepted"] + 1) in rows[0]
    dated = [line for line in lines if line.lstrip().startswith(("main", "master"))]
    assert dated and "2026" in dated[0], "the commit's date, DVC's widest Created cell"
