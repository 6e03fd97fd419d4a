"""The package's layers as its docstring writes them down, and the imports that go against them."""

from __future__ import annotations

import re

PACKAGE = "cotdistill"
_ITEM = re.compile(r"^(\d+)\. (.*?)(?::|$)")
_NAME = re.compile(r"``([\w.]+)``")


def parse(docstring: str) -> dict[str, int]:
    """First-level name (``stages``, ``cli``, ...) -> its layer number, from the numbered list
    after "Layers"; ``this package`` is the package's own ``__init__``."""
    layers: dict[str, int] = {}
    number = None
    text = docstring.split("Layers", 1)[1]
    for line in text.splitlines():
        item = _ITEM.match(line.strip())
        if item:
            number = int(item[1])
            names_part = item[2]
        elif number is not None and line.startswith("   ") and line.strip():
            names_part = line.split(":", 1)[0]
        else:
            continue
        for name in _NAME.findall(names_part):
            layers[name] = number
        if "this package" in names_part:
            layers[PACKAGE] = number
    return layers


def unit(module: str) -> str:
    """The first-level name a module belongs to: ``cotdistill.stages.train`` -> ``stages``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else PACKAGE


def unplaced(modules: list[str], layers: dict[str, int]) -> list[str]:
    return sorted({unit(m) for m in modules if unit(m) not in layers})


def upward(sites: dict[str, list[tuple[int, str]]], files: dict[str, str],
           layers: dict[str, int]) -> list[str]:
    """``file:line: a (layer i) imports b (layer j)`` for each import of a higher layer."""
    found = []
    for module, imported in sorted(sites.items()):
        here = layers[unit(module)]
        for line, target in imported:
            there = layers[unit(target)]
            if there < here:
                found.append(f"{files[module]}:{line}: {module} (layer {here}) imports "
                             f"{target} (layer {there})")
    return found
