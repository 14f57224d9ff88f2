"""What README.md and docs/*.md name exists, with that spelling (the docs rule of issue 10).

Mechanical checks only, read from the Markdown and the source tree without importing the package's
heavy parts, so the whole file runs in about a second:

- a repository path in inline code or a ```bash block (``src/...``, ``tests/...``,
  ``benchmarks/...``, ``examples/...``, ``models/...``, ``docs/...``) exists, and so does a module
  path given relative to the package (``rl/ppo/gradients.py``, ``advanced_risk/monitoring/drift.py``)
  or a bare script name (``bench_manager.py``);
- a relative Markdown link points to an existing file, and its ``#anchor`` to a heading of it;
- a dotted ``advanced_risk.x.y.Name`` names a module and, after it, a top-level name of it;
- a config reference exists: ``RiskConfig.field`` (any config class), ``section.field`` for the
  sections of ``RiskConfig`` (``tracker``, ``sizing``, ``kelly``, ``hedge``, ``leverage``), keyword
  arguments of ``XConfig(...)``; ``XConfig.field = value`` states the field's default;
- ``Class.attribute`` for a class defined in ``src/`` names a method, property or attribute of it.

A code span that does not have one of these shapes is skipped rather than guessed at, and
placeholders (``models/...``) are skipped. Behaviour is the snippets' job (test_doc_snippets.py).
"""

from __future__ import annotations

import ast
import dataclasses
import re
import typing
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

from advanced_risk import config as config_module
from advanced_risk.config import HedgeConfig, RiskConfig
from advanced_risk.types import HedgeInstruction

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "advanced_risk"
DOCS = (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")))
ROOTS = ("src/", "tests/", "benchmarks/", "examples/", "models/", "docs/")
FENCE = re.compile(r"^\s*```(?P<info>\S*)\s*$")
SPAN = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)|!\[[^\]]*\]\(([^)\s]+)\)")
PATH_IN_TEXT = re.compile(r"(?:(?<=[\s(\"'=])|^)((?:src|tests|benchmarks|examples|models|docs)/[\w./*-]*)")

CONFIGS: dict[str, type] = {
    name: cls
    for name in config_module.__all__
    if dataclasses.is_dataclass(cls := getattr(config_module, name)) and isinstance(cls, type)
}
"""Every config class exported by ``advanced_risk.config``, by name."""

NOT_OURS = {"Strategy.on_bar"}
"""``Class.attr`` spans whose class is a third party's homonym of one of ours (nautilus' Strategy)."""


def _sections() -> dict[str, set[str]]:
    """``RiskConfig``'s nested sections and the fields a ``section.field`` span may name."""
    hints = typing.get_type_hints(RiskConfig)
    out: dict[str, set[str]] = {}
    for field in dataclasses.fields(RiskConfig):
        kinds = [
            k for k in typing.get_args(hints[field.name]) or (hints[field.name],) if k in CONFIGS.values()
        ]
        if kinds:
            out[field.name] = {f.name for f in dataclasses.fields(kinds[0])}
    # ``hedge.active`` / ``hedge.ratio``: the decision's hedge, which docs name the same way
    out["hedge"] = {f.name for f in dataclasses.fields(HedgeConfig)} | {
        f.name for f in dataclasses.fields(HedgeInstruction)
    }
    return out


SECTIONS = _sections()


def _lines(path: Path) -> Iterator[tuple[int, str, str | None]]:
    """``(line number, line, fence info)``: info is None outside fenced blocks; fences are skipped."""
    info: str | None = None
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        fence = FENCE.match(line)
        if fence is not None and (info is None or not fence["info"]):
            info = fence["info"] if info is None else None
            continue
        yield number, line, info


def _spans(path: Path) -> list[tuple[str, str]]:
    """``(where, code)`` of every inline code span outside fenced blocks (spans may wrap a line)."""
    prose: list[tuple[int, str]] = [(n, line) for n, line, info in _lines(path) if info is None]
    out = []
    # join paragraphs so a span wrapped over two lines is one span
    paragraph: list[tuple[int, str]] = []
    for item in [*prose, (0, "")]:
        if item[1].strip():
            paragraph.append(item)
            continue
        if paragraph:
            text = " ".join(line.strip() for _, line in paragraph)
            out += [(f"{_name(path)}:{paragraph[0][0]}", m[1].strip()) for m in SPAN.finditer(text)]
        paragraph = []
    return out


def _name(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"`|\*\*|\*|\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip()).lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


@cache
def _anchors(path: Path) -> frozenset[str]:
    seen: dict[str, int] = {}
    out = set()
    for _, line, info in _lines(path):
        heading = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if info is None and heading:
            slug = _slug(heading[1])
            out.add(slug if slug not in seen else f"{slug}-{seen[slug]}")
            seen[slug] = seen.get(slug, 0) + 1
    return frozenset(out)


def _exists(relative: str, base: Path = ROOT) -> bool:
    relative = relative.rstrip(".,;:)")
    if "..." in relative or relative.endswith("/*"):
        return True  # a placeholder (models/...)
    if "*" in relative:
        return any(base.glob(relative))
    return (base / relative).exists()


def _repo_paths() -> list[tuple[str, str]]:
    """``(where, path)`` of the repository paths in code spans and ```bash blocks."""
    out = [
        (where, m[1]) for path in DOCS for where, code in _spans(path) for m in PATH_IN_TEXT.finditer(code)
    ]
    for path in DOCS:
        for number, line, info in _lines(path):
            if info in ("bash", "sh", "shell", "console"):
                command = line.split("#", 1)[0]
                out += [(f"{_name(path)}:{number}", m[1]) for m in PATH_IN_TEXT.finditer(command)]
    return out


def test_docs_are_found() -> None:
    assert any(p.name == "README.md" for p in DOCS)
    assert len(DOCS) >= 10
    assert len(_repo_paths()) >= 50, "the path extraction found (almost) nothing: a regex broke?"
    assert {"tracker", "sizing", "leverage", "hedge", "kelly"} <= set(SECTIONS)


def test_repository_paths_exist() -> None:
    missing = sorted({f"{where}: {p}" for where, p in _repo_paths() if not _exists(p)})
    assert not missing, "paths named in the docs that do not exist:\n" + "\n".join(missing)


def _module_relative_paths() -> Iterator[tuple[str, str]]:
    """Spans that start with a ``.py`` path outside the listed roots (``engine/core.py``)."""
    for path in DOCS:
        for where, code in _spans(path):
            first = code.split()[0].rstrip(":,;")
            if first.startswith(ROOTS) or not first.endswith(".py") or first.startswith(("/", "<")):
                continue
            yield where, first


def test_package_relative_paths_exist() -> None:
    """``rl/ppo/gradients.py`` is under src/advanced_risk/, ``bench_manager.py`` somewhere."""
    scripts = {p.name for folder in ("benchmarks", "examples") for p in (ROOT / folder).glob("*.py")}
    modules = {p.name for p in PACKAGE.rglob("*.py")}
    missing = []
    for where, first in _module_relative_paths():
        if "/" in first:
            relative = first.removeprefix("advanced_risk/")
            if not (_exists(relative, PACKAGE) or _exists(first)):
                missing.append(f"{where}: {first}")
        elif first not in scripts | modules and not (ROOT / first).exists():
            missing.append(f"{where}: {first}")
    assert not missing, "module paths named in the docs that do not exist:\n" + "\n".join(
        sorted(set(missing))
    )


def test_relative_links_resolve() -> None:
    broken = []
    for path in DOCS:
        for number, line, info in _lines(path):
            if info is not None:
                continue
            for m in LINK.finditer(line):
                target = m[1] or m[2]
                if re.match(r"^[a-z]+:", target):
                    continue  # http:, mailto:
                file_part, _, anchor = target.partition("#")
                linked = (path.parent / file_part).resolve() if file_part else path
                where = f"{_name(path)}:{number}: {target}"
                if not linked.exists():
                    broken.append(f"{where} (no such file)")
                elif anchor and linked.suffix == ".md" and anchor not in _anchors(linked):
                    broken.append(f"{where} (no such heading)")
    assert not broken, "broken links:\n" + "\n".join(broken)


def _top_level_names(module: Path) -> set[str]:
    tree = ast.parse(module.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {t.id for t in targets if isinstance(t, ast.Name)}
        elif isinstance(node, ast.ImportFrom | ast.Import):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return names


def _module_file(parts: list[str]) -> Path | None:
    base = PACKAGE.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def test_dotted_package_names_exist() -> None:
    """``advanced_risk.training.pipeline``, ``advanced_risk.rl.agents.advisor.RiskAgentsAdvisor``."""
    missing = []
    for path in DOCS:
        for where, code in _spans(path):
            for m in re.finditer(r"(?<![\w.])advanced_risk((?:\.\w+)+)", code):
                parts = m[1].lstrip(".").split(".")
                found = max((i for i in range(len(parts) + 1) if _module_file(parts[:i])), default=0)
                module = _module_file(parts[:found])
                rest = parts[found:]
                if module is None or (rest and rest[0] not in _top_level_names(module)):
                    missing.append(f"{where}: {m[0]}")
    assert not missing, "names in the docs that the package does not have:\n" + "\n".join(missing)


def _config_fields(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)} | {n for n in dir(cls) if not n.startswith("_")}


def _keywords(call: str) -> list[str]:
    """Top-level keyword names of the argument list ``call`` (nested calls are skipped)."""
    depth, top = 0, []
    for char in call:
        depth += char in "([{"
        depth -= char in ")]}"
        top.append(char if depth == 0 else " ")
    return re.findall(r"(?:^|,)\s*(\w+)\s*=", "".join(top))


def test_config_references_exist() -> None:
    """``RiskConfig.x``, ``leverage.x``, ``RiskConfig(x=...)`` and ``XConfig.x = default``."""
    wrong = []
    for path in DOCS:
        for where, code in _spans(path):
            for m in re.finditer(r"(?<![\w.])(\w+Config)\.(\w+)(?:\s+=\s+(.+))?", code):
                cls = CONFIGS.get(m[1])
                if cls is None:
                    continue
                if m[2] not in _config_fields(cls):
                    wrong.append(f"{where}: {m[0]} ({m[1]} has no {m[2]})")
                elif m[3] is not None:
                    default = {f.name: f for f in dataclasses.fields(cls)}[m[2]].default
                    stated = m[3].strip().rstrip(".,;")
                    try:
                        same = ast.literal_eval(stated) == default
                    except (ValueError, SyntaxError):
                        same = stated.rsplit(".", 1)[-1] == getattr(default, "name", None)
                    if not same:
                        wrong.append(f"{where}: {m[0]} (the default is {default!r})")
            for m in re.finditer(r"(?<![\w.])(\w+Config)\(", code):
                cls = CONFIGS.get(m[1])
                depth, end = 0, m.end() - 1
                for end in range(m.end() - 1, len(code)):
                    depth += (code[end] == "(") - (code[end] == ")")
                    if depth == 0:
                        break
                if cls is None or depth != 0:
                    continue
                fields = {f.name for f in dataclasses.fields(cls)}
                wrong += [
                    f"{where}: {m[1]}({kw}=...) ({m[1]} has no {kw})"
                    for kw in _keywords(code[m.end() : end])
                    if kw not in fields
                ]
            section = re.match(r"(\w+)\.(\w+)\b(?!\()", code)
            if section and section[1] in SECTIONS and section[2] not in SECTIONS[section[1]]:
                wrong.append(f"{where}: {code} (RiskConfig.{section[1]} has no {section[2]})")
    assert not wrong, "config references that do not exist:\n" + "\n".join(wrong)


@cache
def _class_members() -> dict[str, set[str]]:
    """Every class defined under src/, by name: its methods, class-level names and ``self.x``."""
    members: dict[str, set[str]] = {}
    for module in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ClassDef):
                continue
            names = members.setdefault(node.name, set())
            for item in ast.walk(node):
                if (
                    isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
                    and item is not node
                ):
                    names.add(item.name)
                elif isinstance(item, ast.Name) and isinstance(item.ctx, ast.Store):
                    names.add(item.id)
                elif (
                    isinstance(item, ast.Attribute)
                    and isinstance(item.value, ast.Name)
                    and item.value.id in ("self", "cls")
                ):
                    names.add(item.attr)
    return members


def test_class_attributes_exist() -> None:
    """``RiskTracker.update``, ``PolicyAllocator.allocate``: a class of ours has that member."""
    members = _class_members()
    missing = []
    for path in DOCS:
        for where, code in _spans(path):
            m = re.match(r"([A-Z]\w*)\.([A-Za-z_]\w*)", code)
            if m is None or m[0] in NOT_OURS or m[1] not in members or m[1] in CONFIGS:
                continue
            if m[2] not in members[m[1]]:
                missing.append(f"{where}: {m[0]}")
    assert not missing, "class members named in the docs that do not exist:\n" + "\n".join(missing)


@pytest.mark.parametrize("heading", ["## Your book", "### Shorts and leverage", "## A `code` and **bold**"])
def test_slug_matches_github(heading: str) -> None:
    expected = {
        "## Your book": "your-book",
        "### Shorts and leverage": "shorts-and-leverage",
        "## A `code` and **bold**": "a-code-and-bold",
    }[heading]
    assert _slug(heading.lstrip("# ")) == expected
