"""The HTTP side of cotdistill.serve: the routes and their OpenAI errors, and the module layering.

The package's modules import only those below them (engine, protocol, batches, app), so no
import circle can form and the engine and protocol stay free of HTTP.
"""

from __future__ import annotations

import ast
from pathlib import Path

import openai
import pytest

import cotdistill.serve

LAYERS = ["engine", "protocol", "guard", "batches", "app"]


def test_models_lists_the_served_model(client, model_name):
    assert [m.id for m in client.models.list().data] == [model_name]


def test_errors_are_openai_errors(client, model_name):
    with pytest.raises(openai.NotFoundError):
        client.completions.create(model="no-such-model", prompt="x", max_tokens=2)
    with pytest.raises(openai.BadRequestError, match="context length"):
        client.completions.create(model=model_name, prompt="x", max_tokens=10_000)
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model=model_name, messages=[], max_tokens=2)


def test_modules_import_only_those_below_them():
    folder = Path(cotdistill.serve.__file__).parent
    assert sorted(p.stem for p in folder.glob("*.py")) == sorted(["__init__", *LAYERS])
    for level, name in enumerate(LAYERS):
        tree = ast.parse((folder / f"{name}.py").read_text())
        imported = {node.module for node in ast.walk(tree)
                    if isinstance(node, ast.ImportFrom) and node.module}
        imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                     for alias in node.names}
        inside = {m.removeprefix("cotdistill.serve").lstrip(".") for m in imported
                  if m == "cotdistill.serve" or m.startswith("cotdistill.serve.")}
        assert inside <= set(LAYERS[:level]), f"{name} imports {sorted(inside)}"
