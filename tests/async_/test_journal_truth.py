"""The journal tells the truth (issue 10): every decision returned is journalled exactly as returned.

``read_decision(d.decision_id) == json.loads(d.to_json())`` for healthy, degraded and late-fallback
decisions, sync and async, state in memory and on disk, while the row is still queued, once it is
committed and after ``close``; ``latency_ms`` is part of the row; an unknown id reads as None.
"""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from advanced_risk.config import RiskConfig
from advanced_risk.engine.journal import JournalWriter
from advanced_risk.engine.state import StateStore
from advanced_risk.manager import AdvancedRiskManager
from advanced_risk.types import RiskDecision

from .conftest import BarFeed, FakeAllocator, assert_conservative, fast_config

DEADLINE_MS = 40.0
LATE = "journal not durable within the deadline"


def _config(tmp_path: Path | None, **overrides: Any) -> RiskConfig:
    path = None if tmp_path is None else str(tmp_path / "risk.db")
    return fast_config(deadline_ms=DEADLINE_MS, state_path=path, **overrides)


def _assert_journalled(risk: AdvancedRiskManager, decision: RiskDecision) -> dict[str, Any]:
    row = risk.read_decision(decision.decision_id)
    assert row == json.loads(decision.to_json())
    assert row is not None
    assert row["latency_ms"] == decision.latency_ms > 0.0
    return row


def _replaced_id(decision: RiskDecision) -> str:
    """The id a late fallback names in its alert ("replaces <id>: journal not durable ...")."""
    found = [m.group(1) for a in decision.alerts if (m := re.search(r"replaces (\S+): " + LATE, a))]
    assert len(found) == 1, decision.alerts
    return found[0]


@contextmanager
def _locked(path: str) -> Iterator[None]:
    """Another connection holds the write lock: the journal thread's commit waits (busy timeout 5 s)."""
    locker = sqlite3.connect(path, isolation_level=None, timeout=0.0)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        yield
    finally:
        locker.execute("ROLLBACK")
        locker.close()


def _flush(risk: AdvancedRiskManager) -> None:
    journal = risk._journal
    assert journal is not None
    journal.flush().result(timeout=5.0)


# -- (a) (d) healthy decisions, sync and async, memory and disk ---------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize("on_disk", [False, True], ids=["memory", "disk"])
async def test_an_async_decision_reads_back_as_returned_queued_and_committed(
    tmp_path: Path, on_disk: bool
) -> None:
    feed = BarFeed(seed=1)
    config = _config(tmp_path if on_disk else None)
    async with AdvancedRiskManager(config, policy=FakeAllocator(history_length=2)) as risk:
        decisions = [await risk.manage_risk(*feed.next()) for _ in range(5)]
        assert not any(d.degraded for d in decisions)
        for d in decisions:  # memory: the rows may still linger in the journal
            _assert_journalled(risk, d)
        await risk.flush()
        for d in decisions:  # committed: read from the store on the journal thread
            _assert_journalled(risk, d)
        assert risk.metrics()["latency_max_ms"] >= max(d.latency_ms for d in decisions)


@pytest.mark.parametrize("on_disk", [False, True], ids=["memory", "disk"])
def test_a_sync_decision_reads_back_as_returned_queued_and_committed(tmp_path: Path, on_disk: bool) -> None:
    feed = BarFeed(seed=2)
    risk = AdvancedRiskManager(_config(tmp_path if on_disk else None), policy=FakeAllocator(history_length=2))
    try:
        decisions = [risk.manage_risk_sync(*feed.next()) for _ in range(5)]
        assert not any(d.degraded for d in decisions)
        for d in decisions:
            _assert_journalled(risk, d)
        _flush(risk)
        for d in decisions:
            _assert_journalled(risk, d)
    finally:
        risk.close_sync()


def test_a_row_still_lingering_is_read_from_memory_without_ending_the_linger() -> None:
    journal = JournalWriter(StateStore(None), linger_s=5.0)
    try:
        journal.submit("lazy", '{"x":1}', urgent=False)
        journal.submit("mapping", {"y": 2.0}, urgent=False)
        start = time.monotonic()
        assert journal.read_decision("lazy") == {"x": 1}
        assert journal.read_decision("mapping") == {"y": 2.0}
        assert time.monotonic() - start < 1.0
        assert journal.committed == 0  # answered from memory: the linger still runs
        assert journal.read_decision("unknown") is None  # a query ends the linger
        assert journal.committed == 2
        assert journal.read_decision("lazy") == {"x": 1}  # now from the store
    finally:
        journal.close()


def test_the_returned_latency_is_the_journalled_one_and_the_metrics_keep_the_full_call(
    tmp_path: Path,
) -> None:
    risk = AdvancedRiskManager(_config(tmp_path, journal_sync=True))
    try:
        decision = risk.manage_risk_sync(*BarFeed(seed=3).next())
        row = _assert_journalled(risk, decision)  # durable before it returned: read from the store
        assert row["latency_ms"] > 0.0
        # the metrics include the wait for the fsync after the hand-off to the journal
        assert risk.metrics()["latency_max_ms"] >= decision.latency_ms
    finally:
        risk.close_sync()


# -- (b) degraded decisions ---------------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize("on_disk", [False, True], ids=["memory", "disk"])
async def test_a_degraded_decision_reads_back_as_returned(tmp_path: Path, on_disk: bool) -> None:
    feed = BarFeed(seed=4)
    policy = FakeAllocator(history_length=2)
    async with AdvancedRiskManager(_config(tmp_path if on_disk else None), policy=policy) as risk:
        for _ in range(3):
            await risk.manage_risk(*feed.next())
        policy.fail = True
        degraded = await risk.manage_risk(*feed.next())
        assert_conservative(degraded, "policy failed: RuntimeError: policy exploded")
        _assert_journalled(risk, degraded)
        sync_degraded = risk.manage_risk_sync(*feed.next())
        assert sync_degraded.degraded
        await risk.flush()
        _assert_journalled(risk, degraded)
        _assert_journalled(risk, sync_degraded)


# -- (c) late fallbacks -------------------------------------------------------------------------------


async def _late_fallbacks(risk: AdvancedRiskManager, feed: BarFeed, path: str) -> list[RiskDecision]:
    """Two calls (sync, then async) whose rows cannot become durable within the deadline.

    Sync first: its row goes to the journal thread, which then waits out the busy timeout holding
    the commit lock, so the async call's inline commit cannot start either. (Async first, its inline
    commit fails at once on the lock: the store is then known to be down, and the next decision is
    degraded for that reason instead, not waited for.)
    """
    with _locked(path):
        late = [risk.manage_risk_sync(*feed.next()), await risk.manage_risk(*feed.next())]
        for fallback in late:
            assert fallback.degraded
            replaced = _replaced_id(fallback)
            assert replaced != fallback.decision_id
            _assert_journalled(risk, fallback)  # both rows are still queued: read from memory
            queued = risk.read_decision(replaced)
            assert queued is not None
            assert queued["decision_id"] == replaced
            assert LATE not in " ".join(queued["alerts"])  # the decision as decided, before the lock
    return late


@pytest.mark.asyncio
async def test_a_late_fallback_is_journalled_under_its_own_id_next_to_the_row_it_replaces(
    tmp_path: Path,
) -> None:
    feed = BarFeed(seed=5)
    config = _config(tmp_path, journal_sync=True)
    path = str(tmp_path / "risk.db")
    async with AdvancedRiskManager(config) as risk:
        for _ in range(3):
            assert not (await risk.manage_risk(*feed.next())).degraded
        late = await _late_fallbacks(risk, feed, path)
        for fallback in late:
            assert_conservative(fallback, LATE)
            assert not risk.read_decision(_replaced_id(fallback))["degraded"]  # type: ignore[index]
        await risk.flush()  # the lock is gone: every row lands
        for fallback in late:
            _assert_journalled(risk, fallback)
            assert risk.read_decision(_replaced_id(fallback)) is not None
        calls = risk.metrics()["calls"]
    with StateStore(path) as store:
        assert store.count() == calls + len(late)  # one row per call, plus one per fallback returned
    for fallback in late:  # (f) after close, from the file
        _assert_journalled(risk, fallback)
        assert risk.read_decision(_replaced_id(fallback)) is not None


@pytest.mark.asyncio
async def test_an_already_degraded_decision_that_is_late_gets_a_new_id_and_row_with_the_extra_alert(
    tmp_path: Path,
) -> None:
    feed = BarFeed(seed=6)
    policy = FakeAllocator(history_length=2)
    path = str(tmp_path / "risk.db")
    async with AdvancedRiskManager(_config(tmp_path, journal_sync=True), policy=policy) as risk:
        for _ in range(3):
            await risk.manage_risk(*feed.next())
        policy.fail = True
        late = await _late_fallbacks(risk, feed, path)
        for fallback in late:
            assert fallback.alerts[0].startswith("degraded: policy failed")  # the first fault first
            queued = risk.read_decision(_replaced_id(fallback))
            assert queued is not None
            assert queued["degraded"]
            assert queued["alerts"] == list(fallback.alerts[:-1])  # the same decision, minus the alert
        await risk.flush()
        for fallback in late:
            _assert_journalled(risk, fallback)


# -- (e) unknown ids, (f) after close -----------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize("on_disk", [False, True], ids=["memory", "disk"])
async def test_an_unknown_id_reads_as_none(tmp_path: Path, on_disk: bool) -> None:
    risk = AdvancedRiskManager(_config(tmp_path if on_disk else None))
    assert risk.read_decision("nope") is None  # never opened (and no file yet)
    assert not (tmp_path / "risk.db").exists()  # reading creates nothing
    async with risk:
        await risk.manage_risk(*BarFeed(seed=7).next())
        assert risk.read_decision("nope") is None
        assert risk.read_decision("") is None
    assert risk.read_decision("nope") is None


@pytest.mark.asyncio
async def test_decisions_read_back_after_close_from_the_file_and_not_from_a_closed_memory_store(
    tmp_path: Path,
) -> None:
    feed = BarFeed(seed=8)
    async with AdvancedRiskManager(_config(tmp_path, journal_sync=False)) as on_disk:
        disk = [await on_disk.manage_risk(*feed.next()) for _ in range(3)]
    sync_twin = AdvancedRiskManager(_config(tmp_path))  # the same file: it sees the earlier rows
    disk.append(sync_twin.manage_risk_sync(*feed.next()))
    sync_twin.close_sync()
    for risk in (on_disk, sync_twin):
        for d in disk:
            _assert_journalled(risk, d)
    async with AdvancedRiskManager(_config(None)) as in_memory:
        gone = await in_memory.manage_risk(*feed.next())
        _assert_journalled(in_memory, gone)
    assert in_memory.read_decision(gone.decision_id) is None  # nothing survives close in memory


@pytest.mark.asyncio
async def test_a_read_racing_close_falls_back_to_the_file(tmp_path: Path) -> None:
    feed = BarFeed(seed=9)
    async with AdvancedRiskManager(_config(tmp_path)) as risk:
        decision = await risk.manage_risk(*feed.next())
        journal = risk._journal
        assert journal is not None
        await asyncio.to_thread(journal.close)  # closed under the manager: its calls now fail fast
        assert journal.closed
        _assert_journalled(risk, decision)
