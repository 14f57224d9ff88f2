"""Faults injected into manage_risk (issue 5): every call degrades in time, none raises, and it recovers.

Faults: the policy raises, the policy sleeps past the deadline, the tracker raises, the database is
locked by another connection (shorter and longer than the store's busy timeout), the database is
read-only. Each call must return a conservative decision (degraded, an alert naming the fault,
leverage cut, hedge on, no new position size) within ``deadline + 10 ms`` of wall time.
"""

from __future__ import annotations

import asyncio
import functools
import json
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from advanced_risk import manager as manager_module
from advanced_risk.config import RiskConfig
from advanced_risk.engine.state import StateStore
from advanced_risk.manager import AdvancedRiskManager
from advanced_risk.types import RiskDecision

from .conftest import BarFeed, FakeAllocator, assert_conservative, fast_config

pytestmark = pytest.mark.timing  # wall-clock bounds: run alone, not beside another worker

DEADLINE_MS = 40.0
SLACK_MS = 10.0


async def _timed(risk: AdvancedRiskManager, feed: BarFeed) -> tuple[RiskDecision, float]:
    start = time.perf_counter()
    decision = await risk.manage_risk(*feed.next())
    return decision, (time.perf_counter() - start) * 1000.0


async def _faulty_calls(risk: AdvancedRiskManager, feed: BarFeed, n: int, fault: str) -> list[RiskDecision]:
    out = []
    for _ in range(n):
        decision, wall_ms = await _timed(risk, feed)
        assert wall_ms <= DEADLINE_MS + SLACK_MS, (wall_ms, decision.alerts)
        assert_conservative(decision, fault)
        out.append(decision)
    return out


async def _recovers(risk: AdvancedRiskManager, feed: BarFeed, within_s: float = 3.0) -> int:
    """Calls until a healthy decision comes back; returns how many degraded ones came first."""
    give_up = time.monotonic() + within_s
    degraded = 0
    while True:
        decision, wall_ms = await _timed(risk, feed)
        assert wall_ms <= DEADLINE_MS + SLACK_MS, (wall_ms, decision.alerts)
        if not decision.degraded:
            return degraded
        degraded += 1
        assert time.monotonic() < give_up, decision.alerts
        await asyncio.sleep(0.02)


async def _journal_rows(risk: AdvancedRiskManager) -> tuple[int, int]:
    """(rows, late fallbacks among them) in the store.

    A call whose row was not durable in time returns a fallback under a new id, journalled too
    (issue 10): the journal holds one row per call plus one per fallback returned.
    """
    journal = risk._journal
    assert journal is not None
    entries = await asyncio.wrap_future(journal.call(lambda s: s.journal(limit=100_000)))
    late = sum(
        any("journal not durable within the deadline" in a for a in e.payload["alerts"]) for e in entries
    )
    return len(entries), late


def _config(tmp_path: Path | None = None, **overrides: Any) -> RiskConfig:
    path = None if tmp_path is None else str(tmp_path / "risk.db")
    return fast_config(deadline_ms=DEADLINE_MS, state_path=path, **overrides)


Warm = tuple[AdvancedRiskManager, FakeAllocator, BarFeed]


async def _warm(tmp_path: Path, journal_sync: bool) -> AsyncIterator[Warm]:
    policy = FakeAllocator(history_length=3)
    feed = BarFeed(seed=5)
    async with AdvancedRiskManager(_config(tmp_path, journal_sync=journal_sync), policy=policy) as risk:
        for _ in range(20):
            decision = await risk.manage_risk(*feed.next())
        assert not decision.degraded
        assert decision.uncertainty is not None
        assert any(size > 0 for size in decision.position_sizes.values())
        yield risk, policy, feed


@pytest_asyncio.fixture
async def warm(tmp_path: Path) -> AsyncIterator[Warm]:
    """A manager on a file store with a policy, past the policy's history and the ATR warm-up.

    Its decisions do not wait for their journal rows, so a slow disk on a busy CI machine cannot
    degrade a call here (the journal's own faults are tested with ``durable``).
    """
    async for value in _warm(tmp_path, journal_sync=False):
        yield value


@pytest_asyncio.fixture
async def durable(tmp_path: Path) -> AsyncIterator[Warm]:
    """``warm``, but every decision waits (within the deadline) until its journal row is durable."""
    async for value in _warm(tmp_path, journal_sync=True):
        yield value


@pytest.mark.asyncio
async def test_a_policy_that_raises_gives_degraded_decisions_in_time_and_the_next_healthy_call_recovers(
    warm: Warm,
) -> None:
    risk, policy, feed = warm
    policy.fail = True
    await _faulty_calls(risk, feed, 5, "policy failed: RuntimeError: policy exploded")
    policy.fail = False
    assert await _recovers(risk, feed) == 0


@pytest.mark.asyncio
async def test_a_policy_past_the_deadline_gives_degraded_decisions_in_time_and_recovers(
    warm: Warm,
) -> None:
    risk, policy, feed = warm
    policy.sleep_s = 2.5 * DEADLINE_MS / 1000.0
    decisions = await _faulty_calls(risk, feed, 4, "policy missed the deadline")
    assert len({d.decision_id for d in decisions}) == 4
    policy.sleep_s = 0.0
    # the last late inference still holds the policy thread for < 2.5 deadlines: a call or two more
    assert await _recovers(risk, feed) <= 3


@pytest.mark.asyncio
async def test_a_tracker_that_raises_gives_degraded_decisions_in_time_and_recovers(
    warm: Warm, monkeypatch: pytest.MonkeyPatch
) -> None:
    risk, _, feed = warm
    assert risk._engine is not None
    assert risk._engine.tracker is not None
    tracker = risk._engine.tracker

    def broken(returns_row: Any) -> None:
        raise FloatingPointError("covariance went singular")

    monkeypatch.setattr(tracker, "update", broken)
    await _faulty_calls(risk, feed, 5, "tracker failed: FloatingPointError")
    monkeypatch.undo()
    assert await _recovers(risk, feed) == 0


@pytest.mark.asyncio
async def test_the_decision_arithmetic_raising_gives_a_degraded_decision(
    warm: Warm, monkeypatch: pytest.MonkeyPatch
) -> None:
    risk, _, feed = warm
    engine = risk._engine
    assert engine is not None

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise ZeroDivisionError("bad leverage model")

    monkeypatch.setattr(engine, "_leverage", broken)
    await _faulty_calls(risk, feed, 3, "engine failed: ZeroDivisionError")
    monkeypatch.undo()
    assert await _recovers(risk, feed) == 0


def _lock_database(path: str) -> sqlite3.Connection:
    locker = sqlite3.connect(path, isolation_level=None, timeout=0.0)
    locker.execute("BEGIN EXCLUSIVE")
    return locker


@pytest.mark.asyncio
async def test_a_database_locked_shorter_than_the_busy_timeout_degrades_in_time_and_loses_nothing(
    durable: Warm,
) -> None:
    risk, _, feed = durable
    assert risk.config.state_path is not None
    locker = _lock_database(risk.config.state_path)
    try:  # the first call's inline commit waits for the lock until its deadline and fails: the
        # journal is then known to be down, so the next calls say so at once (the journal thread
        # retries meanwhile, waiting on the lock for its busy timeout of 5 s)
        decisions = await _faulty_calls(risk, feed, 6, "database is locked")
        assert "journal not durable within the deadline" in decisions[0].alerts[0]
        assert all(d.alerts[0].startswith("degraded: state store unavailable") for d in decisions[1:])
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    # SQLite's busy handler retries after sleeps of up to 100 ms, and the journal then drains the
    # writes queued meanwhile: the bound is on time (1 s), not on a count of ~60 ms calls
    await _recovers(risk, feed, within_s=1.0)
    await risk.flush()
    journal = risk._journal
    assert journal is not None
    for d in decisions:  # every returned decision lands, as returned, once the lock is gone
        assert risk.read_decision(d.decision_id) == json.loads(d.to_json()), d.decision_id
    rows, late = await _journal_rows(risk)
    assert late >= 1  # the first call's: a late fallback is a row of its own
    assert rows == risk.metrics()["calls"] + late


@pytest.mark.asyncio
async def test_a_database_locked_past_the_busy_timeout_names_the_lock_and_recovers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(manager_module, "StateStore", functools.partial(StateStore, busy_timeout_s=0.05))
    feed = BarFeed(seed=9)
    async with AdvancedRiskManager(_config(tmp_path)) as risk:
        for _ in range(3):
            assert not (await risk.manage_risk(*feed.next())).degraded
        locker = _lock_database(str(tmp_path / "risk.db"))
        try:
            await _faulty_calls(risk, feed, 3, "degraded: ")  # not durable in time, then the lock error
            await asyncio.sleep(0.2)  # the busy timeout has run out: the store reports the lock
            decisions = await _faulty_calls(risk, feed, 4, "database is locked")
            assert all(d.alerts[0].startswith("degraded: state store unavailable") for d in decisions)
        finally:
            locker.execute("ROLLBACK")
            locker.close()
        assert await _recovers(risk, feed) <= 2
        await risk.flush()
        metrics = risk.metrics()
        assert metrics["journal_healthy"]
        assert metrics["journal_pending"] == 0
        rows, late = await _journal_rows(risk)
        assert late >= 1  # the first locked calls: not durable in time
        assert metrics["journal_committed"] == rows == metrics["calls"] + late


def _query_only(on: bool) -> Callable[[StateStore], None]:
    def run(store: StateStore) -> None:
        with store._op("test") as conn:
            conn.execute(f"PRAGMA query_only = {int(on)}")

    return run


@pytest.mark.asyncio
async def test_a_read_only_database_degrades_in_time_and_recovers_after_the_journal_retry(
    durable: Warm,
) -> None:
    risk, _, feed = durable
    journal = risk._journal
    assert journal is not None
    await asyncio.wrap_future(journal.call(_query_only(True), ordered=False))
    await _faulty_calls(risk, feed, 1, "journal not durable within the deadline (state store:")
    decisions = await _faulty_calls(risk, feed, 5, "readonly")
    assert all(d.latency_ms < DEADLINE_MS / 2 for d in decisions)  # a known-bad store is not waited on
    await asyncio.wrap_future(journal.call(_query_only(False), ordered=False))
    assert await _recovers(risk, feed) <= 2
    await risk.flush()
    metrics = risk.metrics()
    assert metrics["journal_healthy"]
    assert metrics["journal_pending"] == 0
    rows, late = await _journal_rows(risk)
    assert late >= 1
    assert rows == metrics["calls"] + late  # the rows kept for retry were all written


@pytest.mark.asyncio
async def test_the_sync_twin_degrades_the_same_way(tmp_path: Path) -> None:
    policy = FakeAllocator(history_length=3)
    feed = BarFeed(seed=2)
    risk = AdvancedRiskManager(_config(tmp_path), policy=policy)
    try:
        for _ in range(10):
            assert not risk.manage_risk_sync(*feed.next()).degraded
        policy.fail = True
        assert_conservative(risk.manage_risk_sync(*feed.next()), "policy failed")
        policy.fail = False
        assert not risk.manage_risk_sync(*feed.next()).degraded
    finally:
        risk.close_sync()


@pytest.mark.asyncio
async def test_a_degraded_decision_adds_no_risk(
    warm: Warm,
) -> None:
    risk, policy, feed = warm
    market, book = feed.next()
    policy.fail = True
    decision = await risk.manage_risk(market, book)
    assert decision.degraded
    for asset, held in book["weights"].items():
        assert decision.rebalance_weights[asset] <= held + 1e-12
    assert risk.metrics()["degraded"] == 1
