"""Tiny timing harness shared by the benchmark scripts (median of repeats, after a warm-up)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


def median_seconds(
    fn: Callable[[], Any], *, repeats: int = 7, warmup: int = 1, min_time: float = 0.05
) -> float:
    """Median wall time of one call of ``fn``; each repeat loops until ``min_time`` has passed."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeats):
        n = 0
        start = time.perf_counter()
        while True:
            fn()
            n += 1
            elapsed = time.perf_counter() - start
            if elapsed >= min_time:
                break
        samples.append(elapsed / n)
    samples.sort()
    return samples[len(samples) // 2]


@dataclass(frozen=True)
class Row:
    """One line of a benchmark table: ours against the reference a user would otherwise run."""

    kernel: str
    reference: str
    ours_s: float
    reference_s: float
    target: float  # the ratio (reference / ours) we promise, e.g. 25.0 for "25x faster"

    @property
    def ratio(self) -> float:
        return self.reference_s / self.ours_s


def _fmt(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} us"
    if seconds < 1.0:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"


def print_table(rows: list[Row]) -> None:
    """Print the table with the machine's core count and whether each target holds."""
    print(f"cores: {os.cpu_count()}  (median of repeats, numba warmed up)")
    head = f"{'kernel':<44} {'reference':<34} {'ours':>10} {'reference':>10} {'ratio':>8} {'target':>7}  ok"
    print(head)
    print("-" * len(head))
    for r in rows:
        ok = "yes" if r.ratio >= r.target else "MISSED"
        print(
            f"{r.kernel:<44} {r.reference:<34} {_fmt(r.ours_s):>10} {_fmt(r.reference_s):>10} "
            f"{r.ratio:>7.1f}x {r.target:>6.1f}x  {ok}"
        )
