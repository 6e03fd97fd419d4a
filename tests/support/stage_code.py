"""Which source files each DVC stage runs, from the import graph, and which it declares."""

from __future__ import annotations

from pathlib import Path

import yaml

from support import imports
from support.repo import REPO

PACKAGE = imports.SRC / "cotdistill"
# Subsystem packages are declared whole; top-level modules and stage modules one by one.
SUBSYSTEMS = ("curation", "datasets", "lm", "methods", "params", "serve", "student", "teachers")


def stage_commands() -> dict[str, str]:
    """Stage name -> the cotdistill verb its command runs (matrix stages share one)."""
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    return {name: stage["cmd"].split()[1] for name, stage in stages.items()}


def declared_deps(stage: str) -> list[str]:
    return list(yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"][stage]["deps"])


def code_run_by(verb: str) -> list[Path]:
    """The files ``cotdistill <verb>`` runs: the CLI and the closure of its stage module."""
    edges = imports.graph()
    known = imports.modules()
    stage = f"cotdistill.stages.{verb.replace('-', '_')}"
    if stage not in known:
        raise AssertionError(f"`cotdistill {verb}` has no stage module {stage}")
    # the CLI, and what it imports when it starts (the command's own stage is imported inside
    # the command's function)
    started = imports.imports_of("cotdistill.cli", known, top_level=True)
    run = imports.closure([stage, *started], edges) | {"cotdistill.cli"}
    return sorted(known[name] for name in run)


def covering_deps(files: list[Path]) -> list[str]:
    """The dep list that covers ``files`` by the rule above (for the error message)."""
    deps = set()
    for path in files:
        relative = path.relative_to(PACKAGE)
        top = relative.parts[0]
        deps.add(f"src/cotdistill/{top}" if top in SUBSYSTEMS else f"src/cotdistill/{relative}")
    return sorted(deps)


def uncovered(files: list[Path], deps: list[str]) -> list[str]:
    """The files that no declared dep (a file or a directory) covers."""
    roots = [REPO / dep for dep in deps]
    return [str(path.relative_to(REPO)) for path in files
            if not any(path == root or root in path.parents for root in roots)]
