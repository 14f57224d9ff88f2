"""Soak: resident memory of the manager over a long run of decisions (issue 11, bounded memory).

Usage::

    python benchmarks/bench_soak.py [--decisions 1000000] [--assets 5] [--state-path risk.db]

Runs ``--decisions`` bars through ``manage_risk_sync`` (the sync twin), rules only (no policy), with
the default ``RiskConfig`` except ``rate_limit_per_s=None`` (so the loop is not throttled): state and
journal in memory (a ring of ``memory_journal_rows`` = 10,000 rows), the default 5 ms deadline and
the default FHS-GARCH tracker (its refits run in a worker process, whose memory is not counted here).
``--state-path FILE`` journals to that SQLite file instead (all of history; with the default
``journal_sync=True`` each decision waits for its fsync, so the run is much slower).

The bars are a synthetic one-factor market of ``--assets`` assets, generated on the fly in chunks of
10,000 (a million inputs are never built at once); every third bar's factor return is positive so a
loss streak never halts the book, prices revert towards 100, the book is equal-weight and the equity
constant.

Reports the process's current resident set (``/proc/self/statm``, not the peak) after the first
decision (0 %: manager opened and warmed up) and at 25, 50, 75 and 100 % of the run; the growth;
decisions per second; the journal rows kept and evicted; and PASS/FAIL against "flat within 50 MiB",
measured from the 25 % point (after warm-up: the tracker's windows, the journal's ring and SQLite's
page cache are full by then) to the largest later reading.
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from advanced_risk import AdvancedRiskManager, MarketState, Portfolio, RiskConfig

CHUNK = 10_000
FLAT_MIB = 50.0
_PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_mib() -> float:
    """The current resident set of this process in MiB (``/proc/self/statm``; peak as a fallback)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * _PAGE / 2**20
    except OSError:  # not Linux: ru_maxrss is the peak (KiB on Linux, bytes on macOS)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def bars(n: int, assets: int, seed: int = 0) -> Iterator[MarketState]:
    """``n`` bars of a one-factor market; the random draws are made ``CHUNK`` bars at a time.

    Every third bar's factor return is positive (``|f| + 0.3 %``), so a loss streak never halts the
    book; on the other bars each price is pulled back towards 100 (``-0.2 % x log(p / 100)``), so a
    million bars of drift never take a price out of the plausible range.
    """
    rng = np.random.default_rng(seed)
    names = [f"A{i}" for i in range(assets)]
    beta = rng.uniform(0.6, 1.4, assets)
    prices = np.full(assets, 100.0)
    done = 0
    while done < n:
        size = min(CHUNK, n - done)
        factor = rng.normal(0.0, 0.01, size)
        noise = rng.normal(0.0, 0.006, (size, assets))
        for t in range(size):
            if (done + t) % 3 == 2:
                r = beta * (abs(factor[t]) + 0.003) + noise[t]
            else:
                r = beta * factor[t] + noise[t] - 0.002 * np.log(prices / 100.0)
            prices = prices * (1.0 + r)
            yield MarketState(
                returns=dict(zip(names, r.tolist(), strict=True)),
                prices=dict(zip(names, prices.tolist(), strict=True)),
            )
        done += size


def run(decisions: int, assets: int, state_path: str | None) -> bool:
    config = RiskConfig(rate_limit_per_s=None, state_path=state_path)
    book = Portfolio(weights=dict.fromkeys([f"A{i}" for i in range(assets)], 1.0 / assets), equity=1e6)
    marks = {round(decisions * q / 4): q * 25 for q in range(1, 5)}
    readings: list[tuple[int, int, float]] = []  # (percent, decisions done, RSS MiB)
    states: dict[str, int] = {}
    risk = AdvancedRiskManager(config)
    print(
        f"soak: {decisions:,} decisions, {assets} assets, rules only, sync twin, "
        f"journal {'on disk: ' + state_path if state_path else 'in memory'}, "
        f"memory_journal_rows={config.memory_journal_rows:,}, deadline {config.deadline_ms} ms",
        flush=True,
    )
    start = time.perf_counter()
    try:
        for i, market in enumerate(bars(decisions, assets), start=1):
            decision = risk.manage_risk_sync(market, book)
            state = decision.trading_state.value
            states[state] = states.get(state, 0) + 1
            if i == 1:
                gc.collect()
                readings.append((0, 1, rss_mib()))
                print(f"    0 %          1 decision   RSS {readings[-1][2]:7.1f} MiB", flush=True)
                start = time.perf_counter()  # decisions/s from here: opening and warm-up excluded
            if i in marks:
                readings.append((marks[i], i, rss_mib()))
                elapsed = time.perf_counter() - start
                print(
                    f"  {marks[i]:>3} %  {i:>9,} decisions  RSS {readings[-1][2]:7.1f} MiB  "
                    f"{i / elapsed:8,.0f} decisions/s",
                    flush=True,
                )
        elapsed = time.perf_counter() - start
        journal = risk._journal  # the bench reads the store's row count on its owning thread,
        kept = journal.call(lambda store: store.count()).result() if journal is not None else 0
        metrics = risk.metrics()  # after that call: every queued row is committed by then
    finally:
        risk.close_sync()

    base = readings[0][2]
    after_warmup = next(r for p, _, r in readings if p == 25)
    growth = max(r for p, _, r in readings if p >= 25) - after_warmup
    ok = growth <= FLAT_MIB
    print("RSS (MiB): " + ", ".join(f"{p} %: {r:.1f}" for p, _, r in readings))
    print(f"growth 0 % -> 100 %: {readings[-1][2] - base:+.1f} MiB; 25 % -> max after: {growth:+.1f} MiB")
    print(
        f"decisions/s: {decisions / elapsed:,.0f} ({elapsed:.0f} s); latency p50 "
        f"{metrics['latency_p50_ms'] * 1000:.0f} us, p99 {metrics['latency_p99_ms'] * 1000:.0f} us, "
        f"max {metrics['latency_max_ms']:.1f} ms; degraded {metrics['degraded']:,}; states {states}"
    )
    print(
        f"journal: {kept:,} rows kept, {metrics['journal_evicted']:,} evicted, "
        f"{metrics['journal_committed']:,} committed, {metrics['journal_dropped']:,} dropped"
        + (f"; file {Path(state_path).stat().st_size / 2**20:.1f} MiB" if state_path else "")
    )
    print(
        f"{'PASS' if ok else 'FAIL'}: RSS flat within {FLAT_MIB:.0f} MiB from the 25 % point "
        f"({growth:+.1f} MiB)"
    )
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=1_000_000, help="bars to decide (default 1,000,000)")
    parser.add_argument("--assets", type=int, default=5, help="assets per bar (default 5)")
    parser.add_argument("--state-path", default=None, help="journal to this SQLite file (default: in memory)")
    args = parser.parse_args()
    if args.decisions < 4:
        parser.error("--decisions must be >= 4")
    sys.exit(0 if run(args.decisions, args.assets, args.state_path) else 1)


if __name__ == "__main__":
    main()
