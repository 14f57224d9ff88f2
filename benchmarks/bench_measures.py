"""Benchmark every measure kernel against what a user would otherwise run, in the same process.

Usage::

    python benchmarks/bench_measures.py            # all sections
    python benchmarks/bench_measures.py var        # one section: covariance, var, indicators, allocation

Each row times ours and the reference on the same data (median of repeats, after a numba
warm-up) and prints reference_time / our_time next to the promised target. A missed target is
printed as MISSED, never hidden; the exit code is 0 either way (a benchmark is a report).
"""

from __future__ import annotations

import importlib
import platform
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import Row, median_seconds, print_table
from advanced_risk.measures.allocation import (
    _min_variance_long_only,
    _polish_long_only,
    min_variance_weights,
)

SECTIONS = ("covariance", "var", "indicators", "allocation")


def _baseline_covariances(n_assets: int, bars: int, lookback: int = 120) -> list[np.ndarray]:
    """Rolling ``lookback``-day sample covariances (+1e-12 I) of a 3-factor model, as the
    minimum-variance baseline builds them: rank-deficient once ``n_assets > lookback``."""
    rng = np.random.default_rng(n_assets)
    rows = lookback + bars
    factors = rng.normal(0.0, 0.01, (rows, 3))
    loadings = rng.normal(1.0, 0.3, (3, n_assets))
    scale = rng.uniform(0.5, 2.0, n_assets)
    r = factors @ loadings / 3 + rng.normal(0.0, 0.015, (rows, n_assets)) * scale
    covs = []
    for t in range(bars):
        cov = np.cov(r[t : t + lookback], rowvar=False)
        covs.append(0.5 * (cov + cov.T) + 1e-12 * np.eye(n_assets))
    return covs


def _first_order(cov: np.ndarray) -> np.ndarray:
    """The long-only path before the active set: FISTA from equal weights, then the exact polish."""
    c = cov / np.abs(cov).max()
    out: np.ndarray = _polish_long_only(c, _min_variance_long_only(c, 20_000, 1e-13))
    return out


def _allocation_rows() -> list[Row]:
    """Long-only minimum variance, cold and warm-started, against the first-order path."""
    rows = []
    for n in (50, 300, 500):
        cov = _baseline_covariances(n, 1)[0]
        rows.append(
            Row(
                kernel=f"min variance long-only cold, {n} assets",
                reference="FISTA + polish (old path)",
                ours_s=median_seconds(lambda cov=cov: min_variance_weights(cov), repeats=3),
                reference_s=median_seconds(lambda cov=cov: _first_order(cov), repeats=3),
                target=3.0,
            )
        )
    covs = _baseline_covariances(300, 60)

    def warm_replay() -> None:
        prev = None
        for cov in covs:
            prev = min_variance_weights(cov, init=prev)

    rows.append(
        Row(
            kernel="min variance warm replay, 300 assets x 60",
            reference="FISTA + polish per bar (old path)",
            ours_s=median_seconds(warm_replay, repeats=3, min_time=0.0),
            reference_s=median_seconds(lambda: [_first_order(c) for c in covs], repeats=1, min_time=0.0),
            target=10.0,
        )
    )
    return rows


INLINE_SECTIONS: dict[str, Callable[[], list[Row]]] = {"allocation": _allocation_rows}


def main(argv: list[str]) -> None:
    wanted = argv or list(SECTIONS)
    unknown = sorted(set(wanted) - set(SECTIONS))
    if unknown:
        raise SystemExit(f"unknown section(s) {unknown}; choose from {list(SECTIONS)}")
    print(f"python {platform.python_version()} on {platform.machine()}, {platform.processor() or 'cpu'}")
    rows: list[Row] = []
    for name in wanted:
        if name in INLINE_SECTIONS:
            rows.extend(INLINE_SECTIONS[name]())
            continue
        module = importlib.import_module(f"cases_{name}")
        rows.extend(module.rows())
    print_table(rows)


if __name__ == "__main__":
    main(sys.argv[1:])
