"""The layout of ``cotdistill.params``: one module per section, no import circle, and every name
other code imports from the package still there."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import cotdistill.params

PACKAGE = Path(cotdistill.params.__file__).parent
MODULES = sorted(path.stem for path in PACKAGE.glob("*.py") if path.stem != "__init__")
# what cotdistill.params.* may import from cotdistill besides its own modules
ALLOWED = {"cotdistill.errors", "cotdistill.catalog", "cotdistill.prompts"}


def _cotdistill_imports(tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return {name for name in names if name.split(".")[0] == "cotdistill"}


def test_one_module_per_section_besides_the_base_the_reader_and_the_lister():
    assert {"base", "prepare", "teacher", "exemplars", "teacher_fewshot", "curate", "train",
            "evaluate", "mlflow", "report", "socratic", "yaml_reader", "describe"} == set(MODULES)


@pytest.mark.parametrize("module", [*MODULES, "__init__"])
def test_imports_are_siblings_or_allowed_and_at_module_level(module):
    tree = ast.parse((PACKAGE / f"{module}.py").read_text(encoding="utf-8"))
    siblings = {f"cotdistill.params.{name}" for name in MODULES}
    # describe lists the whole of Params, which the package itself defines; nothing in the
    # package imports describe, so that is no circle
    package = {"cotdistill.params"} if module == "describe" else set()
    assert _cotdistill_imports(tree) <= ALLOWED | siblings | package
    assert "sys.modules" not in ast.unparse(tree)
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            assert not any(isinstance(inner, (ast.Import, ast.ImportFrom))
                           for inner in ast.walk(node)), f"{module}.{node.name} imports"


def test_no_section_module_imports_describe_or_the_package():
    for module in MODULES:
        if module == "describe":
            continue
        imports = _cotdistill_imports(ast.parse((PACKAGE / f"{module}.py").read_text()))
        assert not imports & {"cotdistill.params", "cotdistill.params.describe"}, module


@pytest.mark.parametrize("module", [f"cotdistill.params.{name}" for name in MODULES])
def test_each_module_imports_on_its_own(module):
    subprocess.run([sys.executable, "-c", f"import {module}"], check=True)


def test_every_name_importable_before_still_is():
    from cotdistill.params import (  # noqa: F401
        NAME,
        CurateParams,
        EvaluateParams,
        ExemplarsParams,
        FewshotParams,
        HParams,
        KDParams,
        LoraParams,
        MlflowParams,
        Params,
        PrepareParams,
        Price,
        ReportParams,
        Section,
        SocraticParams,
        Student,
        TeacherParams,
        TrainParams,
        _describe,
        check_known_datasets,
        load_params,
    )
    from cotdistill.params.socratic import SocraticParams as Socratic

    assert Socratic is SocraticParams
    assert Params.model_fields["socratic"].annotation is SocraticParams


def test_sections_forbid_unknown_keys_and_are_frozen():
    from cotdistill.params.base import Section

    assert Section.model_config["extra"] == "forbid" and Section.model_config["frozen"] is True
