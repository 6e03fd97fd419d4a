"""A temporary copy of the repository as a real git + DVC repository, and `dvc` run in it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from support.repo import REPO

PIPELINE_OUTPUTS = ("data/", "models/", "reports/")


def copy_repository(target: Path) -> None:
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO, capture_output=True, text=True, check=True,
    ).stdout.splitlines()
    for name in files:
        if name.startswith(PIPELINE_OUTPUTS) and Path(name).name not in ("README.md", ".gitignore"):
            continue  # a developer's own pipeline results are not part of the repository
        source = REPO / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    for command in (["git", "init", "-q"], ["git", "add", "-A"],
                    ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "copy"]):
        subprocess.run(command, cwd=target, check=True)


def dvc(repo: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    return subprocess.run([str(Path(sys.executable).parent / "dvc"), *args], cwd=repo, env=env,
                          capture_output=True, text=True, timeout=900)


def readme_experiment(name: str) -> dict[str, object]:
    """The ``-S key=value`` overrides of the README's ``dvc exp run -n NAME`` command, so a test
    runs exactly the experiment the README documents."""
    import re
    import shlex

    import yaml

    text = (REPO / "README.md").read_text(encoding="utf-8").replace("\\\n", " ")
    line = next((line for line in text.splitlines()
                 if line.strip().startswith(f"dvc exp run -n {name} ")), None)
    if line is None:
        raise AssertionError(f"README.md: no `dvc exp run -n {name}` command")
    words = shlex.split(line.split("#")[0])
    pairs = [words[i + 1] for i, word in enumerate(words) if word == "-S"]
    return {key: yaml.safe_load(value) for key, value in (re.split("=", p, 1) for p in pairs)}


def apply_overrides(params: dict, overrides: dict[str, object]) -> None:
    """Set dotted keys (``a.b.c``) in a params mapping, as ``dvc exp run -S`` does."""
    for key, value in overrides.items():
        *parents, leaf = key.split(".")
        node = params
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
