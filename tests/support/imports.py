"""The import graph of the package, read from the source with ``ast`` (nothing is imported).

Every ``import`` counts, at module level or inside a function: a circle that only closes at
run time is still a circle. Importing ``a.b.c`` also runs the ``__init__`` of ``a`` and
``a.b``, so those are edges too, except a package's own ancestors (a module inside ``a.b``
importing a sibling does not re-enter ``a.b``).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

from support.repo import REPO

SRC = REPO / "src"
PACKAGES = ("cotdistill", "cotdistill_testkit")


def modules() -> dict[str, Path]:
    """Every module of the packages: dotted name -> file."""
    found = {}
    for package in PACKAGES:
        for path in sorted((SRC / package).rglob("*.py")):
            parts = list(path.relative_to(SRC).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _ancestors(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def _is_package(name: str, known: dict[str, Path]) -> bool:
    return name in known and known[name].name == "__init__.py"


def import_sites(name: str, known: dict[str, Path], *,
                 top_level: bool = False) -> list[tuple[int, str]]:
    """(line, module) for each package module that module ``name`` imports, directly
    (``top_level``: only the imports made when the module is imported, not those inside its
    functions). Importing ``a.b.c`` also names ``a.b`` and ``a``, except ``name``'s own
    ancestors."""
    tree = ast.parse(known[name].read_text(encoding="utf-8"))
    package = name if _is_package(name, known) else name.rpartition(".")[0]
    own = set(_ancestors(name)) | ({name} if _is_package(name, known) else set())
    sites: set[tuple[int, str]] = set()
    for node in (tree.body if top_level else ast.walk(tree)):
        targets: set[str] = set()
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets.add(base)
            targets.update(f"{base}.{alias.name}" for alias in node.names)
        for target in targets:
            if target not in known:
                continue
            sites.add((node.lineno, target))
            sites.update((node.lineno, a) for a in _ancestors(target)
                         if a in known and a not in own)
    return sorted((line, target) for line, target in sites if target != name)


def imports_of(name: str, known: dict[str, Path], *, top_level: bool = False) -> set[str]:
    """The package modules that module ``name`` imports (see :func:`import_sites`)."""
    return {target for _, target in import_sites(name, known, top_level=top_level)}


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports_of(name, known) for name in known}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Each strongly connected group of more than one module (Tarjan), as one cycle path."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                group.append(top)
                if top == node:
                    break
            if len(group) > 1 or node in edges.get(node, ()):
                groups.append(_path_through(sorted(group), edges))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return groups


def _path_through(group: list[str], edges: dict[str, set[str]]) -> list[str]:
    """A cycle inside ``group``, start to start, for the error message."""
    members = set(group)
    start = group[0]
    path, seen = [start], {start}
    node = start
    while True:
        nxt = sorted(n for n in edges[node] if n in members)
        back = [n for n in nxt if n == start]
        if back and len(path) > 1:
            return path + [start]
        fresh = [n for n in nxt if n not in seen]
        if not fresh:
            return path + [start]
        node = fresh[0]
        path.append(node)
        seen.add(node)


def closure(roots: Iterable[str], edges: dict[str, set[str]]) -> set[str]:
    """Every module that importing ``roots`` runs."""
    todo, seen = list(roots), set()
    while todo:
        node = todo.pop()
        if node in seen:
            continue
        seen.add(node)
        todo.extend(edges.get(node, ()))
    return seen
