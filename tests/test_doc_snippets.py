"""Every ```python block of README.md and docs/*.md runs as a file (issue 10).

Each block is written to a file of its own and run with this interpreter in a subprocess, from a
scratch directory that holds a link ``models`` to the repository's ``models/`` (the snippets name
the shipped models as ``models/...``, as a user in the repository root would); whatever a snippet
writes lands in that scratch directory. A block preceded by ``<!-- snippet: slow -->`` runs only
under ``-m slow``, and so does a block holding a line of ``SLOW_IN_THE_FAST_SUITE`` (the costliest
snippets whose library calls fast tests cover; ``make test-all`` still runs them). A block that is
not meant to run is fenced ``text``, ``pycon`` or ``bash``.

A ``text`` block right after a python block (nothing but blank lines between) is what that snippet
prints, and the test checks it: the same words line by line, each number within one unit of its
last printed digit or 0.5 % (a figure in the docs is one a reader can reproduce, not an old run's).

The selected snippets start together, two at a time (most of a snippet's time is its start-up:
imports, numba's cache, the GARCH helper process), each with one OpenMP thread (their torch
networks are tiny and the tests share the cores); every test then waits for its own.
"""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")))
SLOW_MARK = "<!-- snippet: slow -->"
TIMEOUT_S = 60.0
SLOW_TIMEOUT_S = 900.0
WORKERS = 2
FENCE = re.compile(r"^(?P<indent>\s*)```(?P<info>[^`\s]*)\s*$")
# A line of a snippet -> the fast tests that cover what it calls. Such a snippet runs under -m slow
# only: each took 12-25 s of a `make test` worker (2 to 4 times an ordinary snippet).
SLOW_IN_THE_FAST_SUITE = {
    # docs/rules_evaluation.md: evaluate_rules on the 20 stocks and two 504-bar synthetic paths, then
    # run_book and book_metrics on a stock book
    "synthetic_paths=2, synthetic_bars=504": "tests/unit/test_rules_evaluation.py (evaluate_rules, "
    "write, stock_books, run_book and book_metrics on small books)",
    # docs/risk_agents.md: four MAPPO updates on the regime market, then an evaluation
    "trainer.train(4 * cfg.batch_size)": "tests/rl/test_mappo.py (MAPPOTrainer.train and evaluate)",
}


@dataclass(frozen=True)
class Block:
    """One fenced block: where it opens, its info string, its code, and whether it is marked slow."""

    where: str
    info: str
    code: str
    slow: bool
    output: str | None = None  # the text block that follows it: what it prints


@dataclass(frozen=True)
class Run:
    """How a snippet's subprocess ended (``returncode`` None: killed at the timeout)."""

    returncode: int | None
    stdout: str
    stderr: str
    timeout: float


def _blocks(path: Path) -> list[Block]:
    """Every fenced block of ``path``, in order."""
    lines = path.read_text(encoding="utf-8").splitlines()
    name = path.relative_to(ROOT).as_posix()
    out: list[Block] = []
    i = previous_end = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        end = i + 1
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        assert end < len(lines), f"{name}:{i + 1}: code fence never closed"
        before = [line.strip() for line in lines[:i] if line.strip()]
        code = textwrap.dedent("\n".join(lines[i + 1 : end])) + "\n"
        marked = bool(before) and before[-1] == SLOW_MARK
        slow = marked or any(line in code for line in SLOW_IN_THE_FAST_SUITE)
        if (
            out
            and out[-1].info == "python"
            and opening["info"] == "text"
            and not any(line.strip() for line in lines[previous_end + 1 : i])
        ):
            out[-1] = dataclasses.replace(out[-1], output=code)
        out.append(Block(f"{name}:{i + 1}", opening["info"], code, slow))
        previous_end, i = end, end + 1
    return out


NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def _printed_mismatches(printed: str, documented: str) -> list[str]:
    """Lines where ``printed`` differs from ``documented``: other words, or a number off by more
    than one unit of the documented number's last digit and 0.5 %."""
    got, want = printed.strip().splitlines(), documented.strip().splitlines()
    if len(got) != len(want):
        return [f"{len(got)} lines printed, {len(want)} documented"]
    bad = []
    for g, w in zip(got, want, strict=True):
        g_numbers, w_numbers = NUMBER.findall(g), NUMBER.findall(w)
        same_words = NUMBER.sub("#", g).split() == NUMBER.sub("#", w).split()
        close = len(g_numbers) == len(w_numbers) and all(
            _close(float(a.replace(",", "")), b) for a, b in zip(g_numbers, w_numbers, strict=True)
        )
        if not (same_words and close):
            bad.append(f"printed    {g}\ndocumented {w}")
    return bad


def _close(value: float, documented: str) -> bool:
    expected = float(documented.replace(",", ""))
    unit = 10.0 ** -len(documented.split(".")[1]) if "." in documented else 1.0
    return abs(value - expected) <= max(unit * 1.000001, 0.005 * abs(expected))


SNIPPETS = [block for path in DOCS for block in _blocks(path) if block.info == "python"]


def _run(block: Block, scratch: Path) -> Run:
    (scratch / "models").symlink_to(ROOT / "models", target_is_directory=True)
    script = scratch / "snippet.py"
    script.write_text(block.code, encoding="utf-8")
    env = {**os.environ, "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}
    timeout = SLOW_TIMEOUT_S if block.slow else TIMEOUT_S
    try:
        done = subprocess.run(
            [sys.executable, str(script)],
            cwd=scratch,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        stderr = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else exc.stderr
        return Run(None, "", stderr or "", timeout)
    return Run(done.returncode, done.stdout, done.stderr, timeout)


@pytest.fixture(scope="session")
def snippet_runs(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Future[Run]]]:
    """The runs of the snippets this session selected, started together on first use."""
    selected = [
        item.callspec.params["block"]
        for item in request.session.items
        if isinstance(item, pytest.Function) and item.originalname == "test_snippet_runs_as_a_file"
    ]
    pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="doc-snippet")
    runs = {
        block.where: pool.submit(_run, block, tmp_path_factory.mktemp("snippet", numbered=True))
        for block in selected
    }
    yield runs
    pool.shutdown(wait=True, cancel_futures=True)


@pytest.mark.parametrize(
    "block",
    [pytest.param(b, id=b.where, marks=[pytest.mark.slow] if b.slow else []) for b in SNIPPETS],
)
def test_snippet_runs_as_a_file(block: Block, snippet_runs: dict[str, Future[Run]]) -> None:
    run = snippet_runs[block.where].result()
    if run.returncode is None:
        pytest.fail(
            f"snippet ran past {run.timeout:.0f} s\n--- stderr ---\n{run.stderr}\n--- code ---\n{block.code}"
        )
    assert run.returncode == 0, (
        f"snippet exited {run.returncode}\n--- stderr ---\n{run.stderr[-6000:]}\n"
        f"--- stdout ---\n{run.stdout[-2000:]}\n--- code ---\n{block.code}"
    )
    if block.output is not None:
        bad = _printed_mismatches(run.stdout, block.output)
        assert not bad, "the text block after the snippet is not what it prints:\n" + "\n".join(bad)


def test_snippets_are_found() -> None:
    """The collector sees the blocks (a change of fence style would silently skip them all)."""
    where = [block.where for block in SNIPPETS]
    assert any(w.startswith("README.md:") for w in where)
    assert any(w.startswith("docs/embedding.md:") for w in where)
    assert len(where) >= 10


def test_each_snippet_kept_out_of_the_fast_suite_is_found_once() -> None:
    """A key of SLOW_IN_THE_FAST_SUITE that no longer matches (the doc changed) is named here."""
    for line in SLOW_IN_THE_FAST_SUITE:
        found = [block.where for block in SNIPPETS if line in block.code]
        assert len(found) == 1, f"{line!r} is in {found or 'no snippet'}: update SLOW_IN_THE_FAST_SUITE"
        assert next(block for block in SNIPPETS if line in block.code).slow


def test_documented_output_is_compared_within_the_printed_precision() -> None:
    assert _printed_mismatches("VaR 99% 1.65%, close 14,423", "VaR 99% 1.66%, close 14,424") == []
    assert _printed_mismatches("VaR 99% 2.37% of equity", "VaR 99% 1.51% of equity")
    assert _printed_mismatches("leverage 0.36", "lev 0.36")
    assert _printed_mismatches("a\nb", "a")
    assert sum(block.output is not None for block in SNIPPETS) >= 2  # README's coin, embedding's 150/50


def test_python_blocks_use_the_python_fence() -> None:
    """A Python block fenced ``py`` or ``python3`` would escape the rule "every python block runs"."""
    odd = [
        f"{block.where} ({block.info})"
        for path in DOCS
        for block in _blocks(path)
        if block.info != "python" and block.info.lower() in {"python", "py", "py3", "python3", "ipython"}
    ]
    assert not odd, f"fence these as ```python (runs) or ```pycon / ```text (does not): {odd}"
