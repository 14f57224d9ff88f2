"""The import structure: no cycle between modules, no private name used outside its module.

The layers and the forbidden imports are import-linter contracts (``[tool.importlinter]`` in
pyproject.toml, run by ``make lint``); its ``acyclic_siblings`` contract forbids cycles between
sibling packages and modules. Two rules it does not cover are checked here:

- No cycle among the package's modules at all, through a package's own ``__init__`` included (a
  submodule importing its parent package is not a sibling import). The graph is grimp's, the one
  import-linter builds: imports inside functions and under ``TYPE_CHECKING`` count, so a cycle
  hidden behind a lazy import is still a cycle.
- No name with a leading underscore is imported from another module of the package, with
  ``from m import _name`` or as ``m._name`` on an imported module: what other modules use is public
  (no underscore) and documented. A private module (``config._base``) is the exception: its names
  are for its own package, which import-linter's ``private_modules`` contract enforces.
"""

from __future__ import annotations

import ast
import itertools
from collections.abc import Iterator, Mapping, Set
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import require

import advanced_risk

PACKAGE_DIR = Path(advanced_risk.__file__).parent
SOURCES = sorted(PACKAGE_DIR.rglob("*.py"))


@pytest.fixture(scope="module")
def graph() -> Any:
    """grimp's import graph of ``advanced_risk`` (no cache: always the source on disk)."""
    grimp = require("grimp")
    return grimp.build_graph("advanced_risk", cache_dir=None)


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def strongly_connected(edges: Mapping[str, Set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(sorted(component))
    return components


def shortest_cycle(edges: Mapping[str, Set[str]], start: str, within: Set[str]) -> list[str]:
    """The shortest import path from ``start`` back to itself, staying inside ``within``."""
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for child in sorted(edges[node] & within):
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return [start, *reversed(path[:-1]), start]
                if child not in previous:
                    previous[child] = node
                    following.append(child)
        frontier = following
    raise AssertionError(f"{start} is in no cycle")


def _describe_cycle(graph: Any, cycle: list[str]) -> str:
    steps = []
    for importer, imported in itertools.pairwise(cycle):
        details = graph.get_import_details(importer=importer, imported=imported)
        where = ", ".join(f"line {d['line_number']}" for d in details) or "?"
        steps.append(f"  {importer} -> {imported} ({where})")
    return "\n".join(steps)


def test_strongly_connected_finds_a_cycle_and_ignores_a_chain() -> None:
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert strongly_connected(edges) == [["a", "b", "c"]]
    assert shortest_cycle(edges, "b", {"a", "b", "c"}) == ["b", "c", "a", "b"]
    assert strongly_connected({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_between_modules(graph: Any) -> None:
    edges = {m: set(graph.find_modules_directly_imported_by(m)) for m in graph.modules}
    cycles = [shortest_cycle(edges, component[0], set(component)) for component in strongly_connected(edges)]
    report = "\n\n".join(_describe_cycle(graph, cycle) for cycle in cycles)
    assert not cycles, f"import cycles (break each at one import):\n{report}"


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _resolve(module: str | None, level: int, importer: str, is_package: bool) -> str:
    """The absolute module of a ``from`` import (relative imports resolved against ``importer``)."""
    if level == 0:
        return module or ""
    base = importer.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join([*base, module] if module else base)


def _private_module_owner(module: str) -> str | None:
    """The package that may use ``module``'s names, when ``module`` is private (``a._b`` -> ``a``)."""
    parts = module.split(".")
    for i, part in enumerate(parts):
        if _is_private(part):
            return ".".join(parts[:i])
    return None


def _may_use_private_names_of(importer: str, module: str) -> bool:
    if importer == module:
        return True
    owner = _private_module_owner(module)
    return owner is not None and (importer == owner or importer.startswith(owner + "."))


def private_name_uses(text: str, importer: str, is_package: bool, modules: Set[str]) -> Iterator[str]:
    """Each use, in the source ``text`` of module ``importer``, of another module's private name."""
    tree = ast.parse(text)
    aliases: dict[str, str] = {}  # local name -> the advanced_risk module it is bound to
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in modules and alias.asname:
                    aliases[alias.asname] = alias.name
        elif isinstance(node, ast.ImportFrom):
            source = _resolve(node.module, node.level, importer, is_package)
            if source not in modules:
                continue
            for alias in node.names:
                if f"{source}.{alias.name}" in modules:
                    aliases[alias.asname or alias.name] = f"{source}.{alias.name}"
                elif _is_private(alias.name) and not _may_use_private_names_of(importer, source):
                    yield f"line {node.lineno}: from {source} import {alias.name}"
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in aliases
            and _is_private(node.attr)
            and not _may_use_private_names_of(importer, aliases[node.value.id])
        ):
            yield f"line {node.lineno}: {aliases[node.value.id]}.{node.attr}"


def test_private_name_uses_finds_from_imports_and_module_attributes() -> None:
    modules = {"advanced_risk.measures", "advanced_risk.measures.var", "advanced_risk.config._base"}
    text = (
        "from advanced_risk.measures.var import _pair, public\n"
        "from advanced_risk.measures import var\n"
        "from advanced_risk.config._base import _require\n"
        "x = var._kernel(1)\n"
    )
    assert list(private_name_uses(text, "advanced_risk.risk.probe", False, modules)) == [
        "line 1: from advanced_risk.measures.var import _pair",
        "line 3: from advanced_risk.config._base import _require",
        "line 4: advanced_risk.measures.var._kernel",
    ]
    inside_config = "from ._base import _require\n"
    assert list(private_name_uses(inside_config, "advanced_risk.config.risk", False, modules)) == []


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.relative_to(PACKAGE_DIR).as_posix())
def test_no_private_name_is_imported_from_another_module(path: Path, graph: Any) -> None:
    uses = private_name_uses(
        path.read_text(encoding="utf-8"), _module_name(path), path.name == "__init__.py", set(graph.modules)
    )
    assert list(uses) == []
