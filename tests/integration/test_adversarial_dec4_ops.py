"""Adversarial pass of 2026-12-04: a long live loop on a failing disk (locked, unwritable, full).

What the bot reads in a degraded decision must be true of the store *now*, and the protective
stops it receives must stay on the position's side of the close however long the store fails.
Both entry points, through the public API only (``AdvancedRiskManager``, ``MarketState``,
``Portfolio``, ``RiskConfig``). The "unwritable" store is simulated by making ``os.access`` say
so for the state file, the check the store runs before every operation (a real ``chmod 444``
does not stop root, and ``chattr +i`` needs root on ext4: ``test_immutable_store.py``).
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from advanced_risk import AdvancedRiskManager, MarketState, Portfolio, RiskConfig
from advanced_risk.engine.state import StateStore
from advanced_risk.types import RiskDecision

LATE = "journal not durable within the deadline"


class Feed:
    """Two assets, a long A and a long B; ``step(move)`` multiplies A's close by ``1 + move``."""

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        self.close = {"A": 100.0, "B": 50.0}

    def step(self, move: float | None = None) -> tuple[MarketState, Portfolio]:
        ra = float(self.rng.normal(0.0005, 0.01)) if move is None else move
        rb = float(self.rng.normal(0.0, 0.01))
        self.close = {"A": self.close["A"] * (1.0 + ra), "B": self.close["B"] * (1.0 + rb)}
        market = MarketState(returns={"A": ra, "B": rb}, prices=dict(self.close))
        return market, Portfolio(weights={"A": 0.5, "B": 0.2}, equity=1e6)


@contextmanager
def unwritable(monkeypatch: pytest.MonkeyPatch, path: Path) -> Iterator[None]:
    """The state file reads as not writable (as a read-only or immutable file does)."""
    real: Callable[..., bool] = os.access

    def access(file: Any, mode: int, *args: Any, **kwargs: Any) -> bool:
        if mode == os.W_OK and str(file) == str(path):
            return False
        return real(file, mode, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(os, "access", access)
        yield


@contextmanager
def write_locked(path: Path, seconds: float) -> Iterator[None]:
    """Another connection holds the write lock of ``path`` for ``seconds`` (from entry)."""
    taken = threading.Event()

    def hold() -> None:
        conn = sqlite3.connect(path, isolation_level=None, timeout=5.0)
        try:
            conn.execute("BEGIN IMMEDIATE")
            taken.set()
            time.sleep(seconds)
            conn.execute("COMMIT")
        finally:
            conn.close()

    holder = threading.Thread(target=hold)
    holder.start()
    assert taken.wait(5.0)
    try:
        yield
    finally:
        holder.join()


def _heal(risk: AdvancedRiskManager, feed: Feed) -> None:
    """Decide until the journal is healthy again (the store has healed)."""
    for _ in range(60):
        decision = risk.manage_risk_sync(*feed.step())
        if not decision.degraded and risk.metrics()["journal_healthy"]:
            return
        time.sleep(0.06)
    pytest.fail("the journal never recovered")


def test_a_late_row_after_recovery_does_not_blame_a_healed_store_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found in a live loop: once the store had failed (here: the file unwritable) and healed, every
    later late row, even on a healthy store, said ``journal not durable within the deadline (state
    store: ... risk.db is not writable)`` hours after the file was writable again: the writer's
    last error is kept for ever, and the late decision cited it whether or not the store was
    failing. An operator would chase a read-only (or full) disk that is not there."""
    path = tmp_path / "risk.db"
    risk = AdvancedRiskManager(RiskConfig(state_path=str(path), deadline_ms=20.0))
    feed = Feed()
    try:
        for _ in range(5):
            risk.manage_risk_sync(*feed.step())
        with unwritable(monkeypatch, path):
            failing = risk.manage_risk_sync(*feed.step())
        assert failing.degraded
        assert any("not writable" in a for a in failing.alerts), failing.alerts
        _heal(risk, feed)
        # healthy now; a commit that waits for another connection's lock makes this row late
        with write_locked(path, 0.3):
            late = risk.manage_risk_sync(*feed.step())
        assert late.degraded
        assert any(LATE in a for a in late.alerts), late.alerts
        assert not any("not writable" in a for a in late.alerts), late.alerts
        risk.manage_risk_sync(*feed.step())
        assert risk.metrics()["journal_healthy"]
        assert risk.read_decision(late.decision_id) is not None
    finally:
        risk.close_sync()


def test_a_longs_stop_stays_below_its_close_while_the_store_fails(tmp_path: Path) -> None:
    """A minute bot whose disk fails for a while keeps receiving decisions (degraded, as documented),
    but their ``stop_levels`` are frozen at the last healthy decision's: after A falls 1 % a bar
    for 20 bars, its long's stop is still ~18 % above the close. The docs: "A long's stop is
    ``sizing.atr_multiplier`` ATRs below the close and only rises; ... after a close through the
    stop ... it starts again from the close". The sync twin, on the same bars with the writer
    thread waiting on the lock (``journal not durable within the deadline``), does trail them:
    the two entry points disagree, though "same core, same decision"."""
    path = tmp_path / "risk.db"
    feed = Feed(seed=0)

    async def main() -> tuple[list[RiskDecision], list[float]]:
        decisions: list[RiskDecision] = []
        closes: list[float] = []
        config = RiskConfig(state_path=str(path), deadline_ms=50.0, rate_limit_per_s=None)
        async with AdvancedRiskManager(config) as risk:
            for _ in range(60):
                await risk.manage_risk(*feed.step())
            locker = sqlite3.connect(path, isolation_level=None, timeout=0.0)
            locker.execute("BEGIN EXCLUSIVE")
            try:
                for _ in range(20):
                    decisions.append(await risk.manage_risk(*feed.step(-0.01)))
                    closes.append(feed.close["A"])
            finally:
                locker.execute("COMMIT")
                locker.close()
        return decisions, closes

    decisions, closes = asyncio.run(main())
    assert all(d.degraded for d in decisions[1:])  # the store is failing: documented
    assert any("state store unavailable" in a for a in decisions[-1].alerts)
    pairs = zip(closes, decisions, strict=True)
    above = [(c, d.stop_levels["A"]) for c, d in pairs if d.stop_levels["A"] >= c]
    assert not above, f"a long's stop at or above its close: {above[-3:]}"


def _sqlite_memory_used() -> Callable[[], int]:
    """``sqlite3_memory_used`` of the SQLite library Python's sqlite3 runs on (skip if not found)."""
    name = ctypes.util.find_library("sqlite3")
    if name is None:
        pytest.skip("libsqlite3 not found")
    lib = ctypes.CDLL(name)
    lib.sqlite3_memory_used.restype = ctypes.c_int64
    return lambda: int(lib.sqlite3_memory_used())


def test_a_bounded_journal_does_not_keep_every_batch_size_of_payloads_in_sqlite() -> None:
    """Found by a 200,000-bar soak of the sync twin with the journal in memory (the default): RSS rose
    by ~0.36 KiB a decision (209 -> 263 MiB over 150,000 decisions of 5 assets with prices) while
    the ring held its 10,000 rows and the Python heap was flat. SQLite's own memory grew: every
    batch size had its own multi-row ``INSERT`` text, Python's sqlite3 caches 128 statements, and
    a cached statement keeps a copy of the payloads it was last bound to: up to 128 batches of
    rows (a 500-asset row is ~31 KiB) held for the life of the process, beside the ring."""
    used = _sqlite_memory_used()
    payload = "x" * 8192
    with StateStore(None, max_journal_rows=100) as store:
        store.append_decisions([(f"w{i}", payload) for i in range(100)])
        before = used()
        n = 0
        for size in range(1, 129):  # batch sizes as a lingering writer meets them
            store.append_decisions([(f"d{n + i}", payload) for i in range(size)])
            n += size
        grown = used() - before
        assert store.count() == 100
    # the ring holds 100 rows (~0.8 MiB); 128 retained batches of 1..128 rows would be ~64 MiB
    assert grown < 8 * 2**20, f"SQLite memory grew by {grown / 2**20:.1f} MiB"


def test_a_restart_measures_the_drawdown_as_the_running_manager_did(tmp_path: Path) -> None:
    """Found by SIGKILL restarts of a long run: a book that declines slowly is ACTIVE while running
    (the drawdown rules measure from the high-water mark of the last ``drawdown_window`` bars) and
    HALTED by the first bar after a restart, at the same equity: the restart measures from the
    all-time peak the state file keeps. A restart should not change the trading state."""
    path = str(tmp_path / "risk.db")
    config = RiskConfig(state_path=path, deadline_ms=500.0, drawdown_window=10, loss_streak=10_000)
    market = MarketState(returns={"A": 0.0, "B": 0.0}, prices={"A": 100.0, "B": 50.0})

    def book(equity: float) -> Portfolio:
        return Portfolio(weights={"A": 0.5, "B": 0.2}, equity=equity)

    equity = 1e6
    risk = AdvancedRiskManager(config)
    try:
        for _ in range(60):  # -1 % a bar: ~10 % below the 10-bar high, ~45 % below the peak
            equity *= 0.99
            running = risk.manage_risk_sync(market, book(equity))
    finally:
        risk.close_sync()
    risk = AdvancedRiskManager(config)
    try:
        restarted = risk.manage_risk_sync(market, book(equity))
    finally:
        risk.close_sync()
    assert running.trading_state.value != "halted", running.alerts
    why = (restarted.alerts, running.drawdown, restarted.drawdown)
    assert restarted.trading_state == running.trading_state, why


def test_a_longs_stop_trails_below_its_close_while_the_file_is_unwritable_sync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sync twin's side of the test above: a degraded decision (the state file not writable)
    trails the stops to the close and ATR observe moved, as a healthy one does."""
    path = tmp_path / "risk.db"
    risk = AdvancedRiskManager(RiskConfig(state_path=str(path), deadline_ms=50.0, rate_limit_per_s=None))
    feed = Feed(seed=0)
    try:
        for _ in range(60):
            risk.manage_risk_sync(*feed.step())
        with unwritable(monkeypatch, path):
            pairs = [(risk.manage_risk_sync(*feed.step(-0.01)), feed.close["A"]) for _ in range(20)]
    finally:
        risk.close_sync()
    assert all(d.degraded for d, _ in pairs)
    assert all(d.stop_levels["A"] < close for d, close in pairs), [(d.stop_levels["A"], c) for d, c in pairs]
    rising = [d.stop_levels["A"] for d, _ in pairs]
    assert rising[-1] < rising[0]  # traded through and restarted from the close, then trailed on
