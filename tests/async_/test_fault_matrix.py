"""Issue 11: the failure policy on both entry points. Each row: a fault, the deadline kept (within 2x
``deadline_ms``), a degraded decision whose alert names the fault, and a healthy next call."""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
import sqlite3
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

from advanced_risk import AdvancedRiskManager, MarketState, Portfolio, RiskConfig
from advanced_risk.engine.protocols import Allocation
from advanced_risk.errors import InvalidInputError
from advanced_risk.types import RiskDecision, StateChange

pytestmark = pytest.mark.timing  # wall-clock bounds: run alone, not beside another worker

ASSETS = ("A", "B", "C")
DEADLINE_MS = 20.0  # generous for a loaded CI machine; the check is 2x this


class Allocator:
    """A user allocator whose answer a test replaces (``answer``) or slows down (``sleep_s``)."""

    asset_count = len(ASSETS)
    history_length = 3

    def __init__(self) -> None:
        self.sleep_s = 0.0
        self.answer: Callable[[], Any] | None = None

    def allocate(self, returns: np.ndarray, weights: np.ndarray, drawdown: float) -> Any:
        if self.sleep_s:
            time.sleep(self.sleep_s)
        if self.answer is not None:
            return self.answer()
        return Allocation(np.array([0.3, 0.3, 0.3, 0.1]), 0.01)


def _bars(n: int, seed: int = 0) -> list[tuple[MarketState, Portfolio]]:
    rng = np.random.default_rng(seed)
    prices = np.full(len(ASSETS), 100.0)
    out = []
    for _ in range(n):
        r = rng.normal(0.0005, 0.01, len(ASSETS))
        prices = prices * (1.0 + r)
        market = MarketState(
            returns=dict(zip(ASSETS, r.tolist(), strict=True)),
            prices=dict(zip(ASSETS, prices.tolist(), strict=True)),
        )
        out.append((market, Portfolio(weights=dict.fromkeys(ASSETS, 0.3), equity=1e5)))
    return out


def _config() -> RiskConfig:
    return RiskConfig(deadline_ms=DEADLINE_MS, rate_limit_per_s=None, deterministic_refits=True)


def _timed_sync(risk: AdvancedRiskManager, bar: tuple[MarketState, Portfolio]) -> tuple[RiskDecision, float]:
    start = time.perf_counter()
    decision = risk.manage_risk_sync(*bar)
    return decision, (time.perf_counter() - start) * 1000.0


async def _timed_async(
    risk: AdvancedRiskManager, bar: tuple[MarketState, Portfolio]
) -> tuple[RiskDecision, float]:
    start = time.perf_counter()
    decision = await risk.manage_risk(*bar)
    return decision, (time.perf_counter() - start) * 1000.0


BAD_ANSWERS: list[tuple[str, Callable[[], Any], str]] = [
    ("none", lambda: None, "not an Allocation"),
    ("nan-uncertainty", lambda: Allocation(np.array([0.3, 0.3, 0.3, 0.1]), math.nan), "uncertainty"),
    ("out-of-range", lambda: Allocation(np.array([-5.0, 3.0, 3.0, 0.0]), 0.0), r"in \[0, 1\]"),
    ("wrong-shape", lambda: Allocation(np.array([0.5, 0.5]), 0.0), "shape"),
    ("not-summing", lambda: Allocation(np.array([0.5, 0.5, 0.5, 0.0]), 0.0), "sum to 1"),
]


@pytest.mark.parametrize(("answer", "why"), [b[1:] for b in BAD_ANSWERS], ids=[b[0] for b in BAD_ANSWERS])
def test_a_bad_allocation_is_a_component_fault_sync_and_async(answer: Callable[[], Any], why: str) -> None:
    allocator = Allocator()
    bars = _bars(8)
    risk = AdvancedRiskManager(_config(), policy=allocator)
    try:
        for bar in bars[:5]:
            assert not risk.manage_risk_sync(*bar).degraded
        allocator.answer = answer
        decision = risk.manage_risk_sync(*bars[5])
        assert decision.degraded
        assert any(a.startswith("degraded: policy failed: ValueError:") for a in decision.alerts)
        assert any(re.search(why, a) for a in decision.alerts), decision.alerts
        allocator.answer = None
        assert not risk.manage_risk_sync(*bars[6]).degraded
    finally:
        risk.close_sync()

    async def run() -> None:
        async with AdvancedRiskManager(_config(), policy=Allocator()) as arisk:
            policy = arisk._allocator
            assert isinstance(policy, Allocator)
            for bar in bars[:5]:
                await arisk.manage_risk(*bar)
            policy.answer = answer
            assert (await arisk.manage_risk(*bars[5])).degraded
            policy.answer = None
            assert not (await arisk.manage_risk(*bars[6])).degraded

    asyncio.run(run())


def test_a_slow_user_allocator_misses_the_deadline_on_the_sync_twin_too() -> None:
    allocator = Allocator()
    bars = _bars(12)
    risk = AdvancedRiskManager(_config(), policy=allocator)
    try:
        for bar in bars[:5]:
            risk.manage_risk_sync(*bar)
        allocator.sleep_s = 0.5  # 25x the deadline
        decision, ms = _timed_sync(risk, bars[5])
        assert ms < 2 * DEADLINE_MS
        assert decision.degraded
        assert any("policy missed the deadline" in a for a in decision.alerts)
        # the late run is still going: the next call does not queue behind it, it says so on time
        decision, ms = _timed_sync(risk, bars[6])
        assert ms < 2 * DEADLINE_MS
        assert any("policy missed the deadline (still busy with an earlier bar" in a for a in decision.alerts)
        allocator.sleep_s = 0.0
        time.sleep(0.6)  # the late run ends; its result is dropped
        decision, _ = _timed_sync(risk, bars[7])
        assert not decision.degraded
    finally:
        risk.close_sync()


def test_a_slow_user_allocator_misses_the_deadline_async() -> None:
    async def run() -> None:
        allocator = Allocator()
        bars = _bars(12)
        async with AdvancedRiskManager(_config(), policy=allocator) as risk:
            for bar in bars[:5]:
                await risk.manage_risk(*bar)
            allocator.sleep_s = 0.5
            decision, ms = await _timed_async(risk, bars[5])
            assert ms < 2 * DEADLINE_MS
            assert decision.degraded
            decision, ms = await _timed_async(risk, bars[6])
            assert ms < 2 * DEADLINE_MS
            assert any("still busy" in a for a in decision.alerts)
            allocator.sleep_s = 0.0
            await asyncio.sleep(0.6)
            assert not (await risk.manage_risk(*bars[7])).degraded

    asyncio.run(run())


def test_a_huge_first_bar_is_refused_at_once_not_computed_for_seconds() -> None:
    names = [f"X{i}" for i in range(10_000)]
    risk = AdvancedRiskManager(_config())
    try:
        start = time.perf_counter()
        with pytest.raises(InvalidInputError, match=r"10000 assets, more than RiskConfig.max_assets=1000"):
            risk.manage_risk_sync(MarketState(returns=dict.fromkeys(names, 0.0)), Portfolio())
        assert time.perf_counter() - start < 1.0
        assert not risk.manage_risk_sync(*_bars(1)[0]).degraded
    finally:
        risk.close_sync()


async def _concurrent(config: RiskConfig, tasks: int = 100, calls: int = 20) -> tuple[float, float]:
    """``tasks`` x ``calls`` on one manager while a 1 ms ticker runs: (loop lag p99 ms, degraded share)."""
    bars = _bars(calls)
    lags: list[float] = []
    degraded = 0
    stop = asyncio.Event()

    async def ticker() -> None:
        while not stop.is_set():
            start = time.perf_counter()
            await asyncio.sleep(0.001)
            lags.append(time.perf_counter() - start - 0.001)

    async with AdvancedRiskManager(config) as risk:
        tick = asyncio.create_task(ticker())

        async def caller() -> None:
            nonlocal degraded
            for bar in bars:
                degraded += (await risk.manage_risk(*bar)).degraded

        await asyncio.gather(*(caller() for _ in range(tasks)))
        stop.set()
        await tick
    return float(np.percentile(np.array(lags) * 1000.0, 99)), degraded / (tasks * calls)


def test_concurrent_callers_take_turns_with_the_loop() -> None:
    """100 tasks x 20 calls on one manager, state in memory: a ticker keeps ticking."""
    lag_p99_ms, degraded = asyncio.run(_concurrent(RiskConfig(rate_limit_per_s=None)))
    # issue: < 5 ms on quiet cores (bench_manager); 50 ms still catches lockstep (100 decisions per tick)
    assert lag_p99_ms < 50.0, lag_p99_ms
    assert degraded == 0.0


def test_concurrent_callers_on_disk_get_durable_decisions_on_time(tmp_path: Any) -> None:
    """The same on disk with journal_sync=True: each row is committed inline, so almost no decision
    misses the deadline waiting for the journal thread (it was 89 %), and the loop still ticks."""
    config = RiskConfig(rate_limit_per_s=None, state_path=str(tmp_path / "risk.db"), journal_sync=True)
    lag_p99_ms, degraded = asyncio.run(_concurrent(config))
    assert lag_p99_ms < 50.0, lag_p99_ms
    assert degraded < 0.05, degraded  # issue: < 1 % on quiet cores (bench_manager); x5 for CI load


def test_an_absurd_equity_print_is_refused_and_reset_peak_moves_the_peak(tmp_path: Any) -> None:
    path = str(tmp_path / "risk.db")
    bars = _bars(6)

    async def run() -> None:
        # a generous deadline: a loaded host's slow fsync would leave the resume pending (still
        # HALTED) and the reset_peak below refused; the deadline's own behaviour is tested elsewhere
        config = RiskConfig(
            rate_limit_per_s=None, deterministic_refits=True, state_path=path, deadline_ms=10_000.0
        )
        async with AdvancedRiskManager(config) as risk:
            market, _ = bars[0]
            await risk.manage_risk(market, Portfolio(weights=dict.fromkeys(ASSETS, 0.3), equity=1e5))
            for bad in ({"equity": 1e308}, {"equity": 2e6}, {"equity": 1e5, "peak_equity": 1e12}):
                with pytest.raises(InvalidInputError, match="max_equity_jump"):
                    await risk.manage_risk(bars[1][0], Portfolio(weights=dict.fromkeys(ASSETS, 0.3), **bad))
            # a deposit: the bot says so, and the peak moves (durably, with a journal row)
            await risk.reset_peak(2e6, "deposit")
            decision = await risk.manage_risk(
                bars[2][0], Portfolio(weights=dict.fromkeys(ASSETS, 0.3), equity=1.9e6)
            )
            assert decision.trading_state.value == "active"
            await risk.engage_kill_switch("test")
            with pytest.raises(InvalidInputError, match="resume"):
                await risk.reset_peak(1e5, "lower while halted")
            assert (await risk.resume("operator")).durable
            await risk.reset_peak(1e5, "withdrawal")
        from advanced_risk.engine.state import StateStore

        with StateStore(path) as store:
            assert store.load().peak_equity == pytest.approx(1e5)
            events = [e for e in store.journal(50) if "reset_peak" in str(e)]
            assert len(events) == 2

    asyncio.run(run())


def _query_only(on: bool) -> Callable[[Any], None]:
    def run(store: Any) -> None:
        with store._op("test") as conn:
            conn.execute(f"PRAGMA query_only = {int(on)}")

    return run


@contextlib.contextmanager
def _store_fault(kind: str, risk: AdvancedRiskManager, path: str) -> Iterator[None]:
    """The store refuses writes ("read-only") or another process holds its write lock ("locked")."""
    if kind == "read-only":
        journal = risk._journal
        assert journal is not None
        journal.call(_query_only(True), ordered=False).result(timeout=5.0)
        try:
            yield
        finally:
            journal.call(_query_only(False), ordered=False).result(timeout=10.0)
        return
    locker = sqlite3.connect(path, isolation_level=None, timeout=0.0)
    locker.execute("BEGIN EXCLUSIVE")  # engage_kill_switch blocked 11.95 s on this before
    try:
        yield
    finally:
        locker.execute("ROLLBACK")
        locker.close()


@pytest.mark.parametrize("kind", ["read-only", "locked"])
def test_a_kill_switch_on_a_failing_store_returns_on_time_is_retried_and_lands(
    tmp_path: Any, kind: str
) -> None:
    """The store refuses writes: the halt holds in memory at once, the call returns within the
    deadline saying it is not durable, decisions say so, and the halt lands once the store heals."""
    from advanced_risk.engine.state import StateStore

    path = str(tmp_path / "risk.db")
    bars = _bars(12)

    async def run() -> None:
        config = RiskConfig(deadline_ms=DEADLINE_MS, rate_limit_per_s=None, state_path=path)
        async with AdvancedRiskManager(config) as risk:
            for bar in bars[:3]:
                await risk.manage_risk(*bar)
            with _store_fault(kind, risk, path):
                start = time.perf_counter()
                change = await risk.engage_kill_switch("exchange outage")
                assert (time.perf_counter() - start) * 1000.0 < 2 * DEADLINE_MS
                assert change == StateChange(changed=True, durable=False)
                decision, ms = await _timed_async(risk, bars[3])
                assert ms < 2 * DEADLINE_MS
                assert decision.trading_state.value == "halted"
                assert decision.degraded
                assert any("not durable" in a for a in decision.alerts), decision.alerts
                with StateStore(path, read_only=True) as reader:
                    assert reader.load().trading_state.value == "active"  # not landed: memory is ahead
            await risk.flush()
            decision = await risk.manage_risk(*bars[4])
            assert decision.trading_state.value == "halted"
        with StateStore(path, read_only=True) as reader:
            state = reader.load()
            assert state.trading_state.value == "halted"
            assert state.kill_switch

    asyncio.run(run())


async def _halted_with_a_pending_resume(risk: AdvancedRiskManager, bar: Any) -> Callable[[bool], Any]:
    """One decision, the kill switch, then a resume asked while the store refuses writes (it waits
    for the store). Returns ``set_read_only(on)`` for the test to heal the store with."""
    await risk.manage_risk(*bar)
    assert (await risk.engage_kill_switch("test")).durable
    journal = risk._journal
    assert journal is not None

    def set_read_only(on: bool) -> Any:
        return asyncio.wrap_future(journal.call(_query_only(on), ordered=False))

    await set_read_only(True)
    assert await risk.resume("desk") == StateChange(changed=False, durable=False, pending=True)
    return set_read_only


def test_a_resume_on_a_failing_store_waits_for_the_store(tmp_path: Any) -> None:
    """Less caution goes to the store first: not durable -> memory stays HALTED; lands -> resumes."""
    config = RiskConfig(deadline_ms=DEADLINE_MS, rate_limit_per_s=None, state_path=str(tmp_path / "risk.db"))
    bars = _bars(8)

    async def run() -> None:
        async with AdvancedRiskManager(config) as risk:
            set_read_only = await _halted_with_a_pending_resume(risk, bars[0])
            assert (await risk.manage_risk(*bars[1])).trading_state.value == "halted"
            await set_read_only(False)
            await risk.flush()
            assert (await risk.manage_risk(*bars[2])).trading_state.value == "active"

    asyncio.run(run())


def test_a_resume_that_lands_supersedes_one_still_waiting(tmp_path: Any) -> None:
    """Found by the stateful test: a resume asked during an outage, then a second one after the
    store heals (no decision between). The second lands and resumes; the first is not left waiting
    to resume again later."""
    config = RiskConfig(deadline_ms=DEADLINE_MS, rate_limit_per_s=None, state_path=str(tmp_path / "risk.db"))
    bars = _bars(4)

    async def run() -> None:
        async with AdvancedRiskManager(config) as risk:
            set_read_only = await _halted_with_a_pending_resume(risk, bars[0])
            await set_read_only(False)
            await risk.flush()
            assert await risk.resume("desk, again") == StateChange(changed=True, durable=True)
            assert risk._pending_resume is None
            assert (await risk.manage_risk(*bars[1])).trading_state.value == "active"

    asyncio.run(run())


def test_a_deleted_state_file_is_a_store_fault_on_both_entry_points(tmp_path: Any) -> None:
    import os

    path = tmp_path / "risk.db"
    bars = _bars(10)
    config = RiskConfig(deadline_ms=DEADLINE_MS, rate_limit_per_s=None, state_path=str(path))
    risk = AdvancedRiskManager(config)
    try:
        for bar in bars[:3]:
            assert not risk.manage_risk_sync(*bar).degraded
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(f"{path}{suffix}"):
                os.unlink(f"{path}{suffix}")
        seen = [_timed_sync(risk, bar) for bar in bars[3:8]]
    finally:
        risk.close_sync()
    assert all(ms < 2 * DEADLINE_MS for _, ms in seen)
    assert all(d.degraded for d, _ in seen[1:])
    assert any("deleted or replaced" in a for d, _ in seen for a in d.alerts)


def test_a_stalling_disk_sends_commits_back_to_the_journal_thread(tmp_path: Any) -> None:
    """An fsync that takes 3x the deadline: the async path commits inline, so the first calls return
    late but durable; three in a row and commits go to the journal thread for a while, where the
    stall gives degraded decisions on time (the loop is not blocked). Healthy again once it passes."""
    from advanced_risk.engine.state import StateStore

    config = RiskConfig(
        deadline_ms=DEADLINE_MS,
        rate_limit_per_s=None,
        deterministic_refits=True,
        state_path=str(tmp_path / "r.db"),
    )
    bars = _bars(14)
    stall_s = 3 * DEADLINE_MS / 1000.0
    original = StateStore.append_decisions

    def slow(self: StateStore, *args: Any, **kwargs: Any) -> Any:
        time.sleep(stall_s)
        return original(self, *args, **kwargs)

    async def run() -> list[tuple[RiskDecision, float]]:
        async with AdvancedRiskManager(config) as risk:
            for bar in bars[:3]:
                assert not (await risk.manage_risk(*bar)).degraded
            StateStore.append_decisions = slow  # type: ignore[method-assign]
            try:
                seen = [await _timed_async(risk, bar) for bar in bars[3:10]]
            finally:
                StateStore.append_decisions = original  # type: ignore[method-assign]
            await risk.flush()
            seen += [await _timed_async(risk, bar) for bar in bars[10:]]
            return seen

    seen = asyncio.run(run())
    inline, thread, healed = seen[:3], seen[3:7], seen[7:]
    assert all(not d.degraded and ms >= stall_s * 1000.0 for d, ms in inline)  # durable, late
    assert all(ms < 2 * DEADLINE_MS for _, ms in thread)  # the thread stalls, the call does not
    assert all(d.degraded for d, _ in thread)
    assert any("journal not durable within the deadline" in a for d, _ in thread for a in d.alerts)
    assert all(not d.degraded for d, _ in healed)
