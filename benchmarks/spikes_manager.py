"""Which decisions are slow, and why: the journal's commits, the GJR-GARCH refit bars, the rest.

Runs the synchronous twin with a 20-asset PPO policy (the set-up of ``bench_manager.py``'s ``sync,
PPO + 10 MC dropout`` row: untrained model, state in memory, ``gc.freeze()`` after start-up) and
records, beside each decision's start and end, the intervals in which the journal's writer thread
committed (``JournalWriter._commit``) and the decisions that started a GJR-GARCH refit. Each
decision falls in one class:

- ``commit``: its interval overlaps a commit of the writer thread (the two share the GIL);
- ``refit bar``: it started a refit (the returns go to the worker process);
- ``other``: neither.

and the table gives each class's count, p50, mean and p99, with the p99 of all decisions. When the
p99 of ``other`` is close to the overall p99, the tail is the machine's noise rather than ours.

Run:  python benchmarks/spikes_manager.py [--calls 3000] [--runs 2]
"""

from __future__ import annotations

import argparse
import gc
import time
from typing import Any

import numpy as np
import torch

import bench_manager as bm
from advanced_risk import AdvancedRiskManager, EnvConfig, PPOConfig, RiskConfig
from advanced_risk.engine.journal import JournalWriter
from advanced_risk.engine.refits import GarchRefits
from advanced_risk.rl.portfolio.manager import RLPortfolioManager


def _instrument() -> tuple[list[tuple[float, float]], list[float]]:
    """Record the writer's commit intervals and the times refits start (perf_counter seconds)."""
    commits: list[tuple[float, float]] = []
    refits: list[float] = []
    commit, start_if_due = JournalWriter._commit, GarchRefits.start_if_due

    def timed_commit(self: JournalWriter, rows: Any) -> None:
        begin = time.perf_counter()
        try:
            commit(self, rows)
        finally:
            commits.append((begin, time.perf_counter()))

    def noted_start(self: GarchRefits, tracker: Any, book: Any = None) -> None:
        idle = self._job is None
        start_if_due(self, tracker, book)
        if idle and self._job is not None:
            refits.append(time.perf_counter())

    JournalWriter._commit = timed_commit  # type: ignore[method-assign]
    GarchRefits.start_if_due = noted_start  # type: ignore[method-assign]
    return commits, refits


def _classes(
    spans: np.ndarray, commits: list[tuple[float, float]], refits: list[float]
) -> dict[str, np.ndarray]:
    """Boolean masks over the decisions: overlapping a commit, starting a refit, neither."""
    begin, end = spans[:, 0], spans[:, 1]
    commit = np.zeros(len(spans), dtype=bool)
    for c0, c1 in commits:
        commit |= (begin < c1) & (end > c0)
    refit = np.zeros(len(spans), dtype=bool)
    for t in refits:
        refit |= (begin <= t) & (t <= end)
    refit &= ~commit
    return {"commit": commit, "refit bar": refit, "other": ~(commit | refit)}


def run(calls: int, commits: list[tuple[float, float]], refits: list[float]) -> None:
    commits.clear()
    refits.clear()
    tickers, rets, prices = bm._bars(calls)
    inputs = [bm._inputs(tickers, rets[i], prices[i]) for i in range(rets.shape[0])]
    policy = RLPortfolioManager(env_config=EnvConfig(asset_count=20), ppo_config=PPOConfig(device="cpu"))
    risk = AdvancedRiskManager(RiskConfig(deadline_ms=50.0, rate_limit_per_s=None), policy=policy)
    gc.collect()
    gc.freeze()
    spans = []
    try:
        for i, (market, book) in enumerate(inputs):
            begin = time.perf_counter()
            risk.manage_risk_sync(market, book)
            if i >= bm.WARMUP:
                spans.append((begin, time.perf_counter()))
    finally:
        risk.close_sync()
    s = np.array(spans)
    us = (s[:, 1] - s[:, 0]) * 1e6
    print(
        f"{len(us)} sync decisions (PPO, state in memory): p50 {np.median(us):.0f} us, "
        f"p99 {np.percentile(us, 99):.0f} us; {len(commits)} commits, {len(refits)} refits"
    )
    print(f"{'class':<12}{'decisions':>10}{'p50':>9}{'mean':>9}{'p99':>9}")
    for name, mask in _classes(s, commits, refits).items():
        if mask.any():
            p50, mean, p99 = np.median(us[mask]), us[mask].mean(), np.percentile(us[mask], 99)
            print(f"{name:<12}{int(mask.sum()):>10}{p50:>7.0f}us{mean:>7.0f}us{p99:>7.0f}us")
        else:
            print(f"{name:<12}{0:>10}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=3000, help="timed decisions per run (default 3000)")
    parser.add_argument("--runs", type=int, default=2, help="runs, one after another (default 2)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    commits, refits = _instrument()
    for _ in range(args.runs):
        run(args.calls, commits, refits)


if __name__ == "__main__":
    main()
