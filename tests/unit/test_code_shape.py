"""The code's shape: short functions on the decision path, and long modules that say why they are one.

Two rules, read from the source with :mod:`ast` (nothing is imported):

- No function or method in ``engine/*.py`` or ``manager.py`` is longer than
  :data:`MAX_FUNCTION_LINES` lines, counted from its ``def`` line (decorators excluded) to its last
  line, docstring included. A longer one is split into named helpers.
- A module of the package longer than :data:`MAX_MODULE_LINES` lines says in its module docstring
  why it is one module, in a sentence containing the marker :data:`ONE_MODULE_MARKER`
  (case-insensitive), e.g. "One module because ``StateStore`` owns one connection ...". Splitting
  it along a real seam is the other way to pass.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import advanced_risk

MAX_FUNCTION_LINES = 60
MAX_MODULE_LINES = 400
ONE_MODULE_MARKER = "one module because"

PACKAGE = Path(advanced_risk.__file__).parent
DECISION_PATH = [*sorted((PACKAGE / "engine").glob("*.py")), PACKAGE / "manager.py"]
MODULES = sorted(PACKAGE.rglob("*.py"))


def _id(path: Path) -> str:
    return path.relative_to(PACKAGE).as_posix()


def _long_functions(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        f"{node.name} (line {node.lineno}): {node.end_lineno - node.lineno + 1} lines"
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]


def test_the_package_has_modules_to_check() -> None:
    assert (PACKAGE / "manager.py") in DECISION_PATH
    assert len(DECISION_PATH) > 2
    assert len(MODULES) > 20


@pytest.mark.parametrize("path", DECISION_PATH, ids=_id)
def test_no_function_on_the_decision_path_exceeds_60_lines(path: Path) -> None:
    assert _long_functions(path) == []


@pytest.mark.parametrize("path", MODULES, ids=_id)
def test_a_module_over_400_lines_says_why_it_is_one_module(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    lines = len(text.splitlines())
    if lines <= MAX_MODULE_LINES:
        return
    docstring = " ".join((ast.get_docstring(ast.parse(text)) or "").lower().split())
    says_why = ONE_MODULE_MARKER in docstring
    assert says_why, (
        f"{_id(path)} has {lines} lines: split it along a real seam, or say in its module docstring "
        f"why it is one module ('{ONE_MODULE_MARKER} ...')"
    )
