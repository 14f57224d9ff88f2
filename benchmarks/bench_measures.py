"""Benchmark every measure kernel against what a user would otherwise run, in the same process.

Usage::

    python benchmarks/bench_measures.py            # all sections
    python benchmarks/bench_measures.py var        # one section: covariance, var, indicators

Each row times ours and the reference on the same data (median of repeats, after a numba
warm-up) and prints reference_time / our_time next to the promised target. A missed target is
printed as MISSED, never hidden; the exit code is 0 either way (a benchmark is a report).
"""

from __future__ import annotations

import importlib
import platform
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import Row, print_table

SECTIONS = ("covariance", "var", "indicators")


def main(argv: list[str]) -> None:
    wanted = argv or list(SECTIONS)
    unknown = sorted(set(wanted) - set(SECTIONS))
    if unknown:
        raise SystemExit(f"unknown section(s) {unknown}; choose from {list(SECTIONS)}")
    print(f"python {platform.python_version()} on {platform.machine()}, {platform.processor() or 'cpu'}")
    rows: list[Row] = []
    for name in wanted:
        module = importlib.import_module(f"cases_{name}")
        rows.extend(module.rows())
    print_table(rows)


if __name__ == "__main__":
    main(sys.argv[1:])
