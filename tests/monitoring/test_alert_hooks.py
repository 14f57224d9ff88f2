"""The ``on_alert`` hook (issue 15): which events page, and that a hook never touches a decision.

Both entry points; a hook that raises, one that is slow, one that hangs; a plain function and a
coroutine function; the edges of a degraded run and of a model's input drift.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field

import numpy as np
import pytest
from tests.async_.conftest import ASSETS, BarFeed, FakeAllocator, comparable

from advanced_risk import AdvancedRiskManager, RiskConfig
from advanced_risk.engine.protocols import Allocation
from advanced_risk.monitoring.alerts import AlertEvent, AlertKind, alert_kind
from advanced_risk.monitoring.hooks import AlertDispatcher
from advanced_risk.types import DriftStatus


@dataclass
class Recorder:
    """A hook that keeps what it receives (thread-safe) and can raise or sleep."""

    fail: bool = False
    sleep_s: float = 0.0
    events: list[AlertEvent] = field(default_factory=list)
    threads: set[str] = field(default_factory=set)

    def __call__(self, event: AlertEvent) -> None:
        self.threads.add(threading.current_thread().name)
        if self.sleep_s:
            time.sleep(self.sleep_s)
        self.events.append(event)
        if self.fail:
            raise RuntimeError("pager down")

    def kinds(self) -> list[AlertKind]:
        return [e.kind for e in self.events]


@dataclass
class DriftingAllocator(FakeAllocator):
    """An allocator whose inputs count as drifted on the bars in ``drifted_calls``."""

    drifted_calls: range = range(0)

    def allocate(self, returns: np.ndarray, weights: np.ndarray, drawdown: float) -> Allocation:
        allocation = super().allocate(returns, weights, drawdown)
        drifted = (self.calls - 1) in self.drifted_calls
        score = 0.9 if drifted else 0.05
        status = DriftStatus(score, 0.5, drifted, ("vol_aaa", "ret_bbb") if drifted else ())
        return Allocation(allocation.weights, allocation.uncertainty, status)


def _config(**kw: object) -> RiskConfig:
    return RiskConfig(deadline_ms=2_000.0, **kw)  # type: ignore[arg-type]


def _wait_for(predicate: object, timeout: float = 5.0) -> None:
    end = time.monotonic() + timeout
    while not predicate() and time.monotonic() < end:  # type: ignore[operator]
        time.sleep(0.01)


def _run_sync(risk: AdvancedRiskManager, bars: int, seed: int = 0) -> list[dict[str, object]]:
    feed = BarFeed(seed=seed)
    out = []
    for market, portfolio in feed.bars(bars):
        out.append(comparable(risk.manage_risk_sync(market, portfolio)))
    return out


def test_alert_kinds_of_every_engine_wording() -> None:
    cases = {
        "trading state active -> reducing: drawdown 0.11 >= 0.1": AlertKind.STATE_CHANGE,
        "trading state active -> halted: kill switch: fat finger": AlertKind.KILL_SWITCH,
        "degraded: policy raised RuntimeError": AlertKind.DEGRADED,
        "replaces abc-1: journal not durable within the deadline": AlertKind.DEGRADED,
        "input drift: policy score 0.9 > 0.5 (features: a); replaced by the rules": AlertKind.DRIFT,
        "correlation shock": AlertKind.CORRELATION_SHOCK,
        "policy uncertainty 0.3 > 0.1: leverage cut": AlertKind.POLICY,
        "policy idle: its asset(s) ['x'] are not in this bar; the held book is kept": AlertKind.POLICY,
        "risk agents: monitor requests hedge": AlertKind.RISK_AGENTS,
        "closing aaa (trading state halted)": AlertKind.POSITIONS,
        "VaR/CVaR: fewer than 250 bars of history for aaa; floored": AlertKind.WARM_UP,
        "something new": AlertKind.OTHER,
    }
    for text, kind in cases.items():
        assert alert_kind(text) is kind, text


def test_kill_switch_and_resume_page_on_both_entry_points() -> None:
    hook = Recorder()
    risk = AdvancedRiskManager(_config(), on_alert=hook)
    _run_sync(risk, 5)

    async def operate() -> None:
        assert await risk.engage_kill_switch("fat finger")
        assert await risk.resume("checked")

    asyncio.run(operate())
    _wait_for(lambda: len(hook.events) >= 2)
    assert hook.kinds() == [AlertKind.KILL_SWITCH, AlertKind.STATE_CHANGE]
    assert "fat finger" in hook.events[0].message
    assert hook.events[0].trading_state == "halted"
    assert hook.events[1].trading_state == "active"
    assert hook.threads == {"advanced-risk-alerts"}  # never the deciding thread
    risk.close_sync()


@pytest.mark.parametrize("hook", [Recorder(fail=True), Recorder(sleep_s=0.2)], ids=["raising", "slow"])
def test_a_failing_or_slow_hook_changes_no_decision(hook: Recorder) -> None:
    def run(on_alert: Recorder | None) -> tuple[list[dict[str, object]], float]:
        allocator = FakeAllocator(fail=False)
        risk = AdvancedRiskManager(_config(), policy=allocator, on_alert=on_alert)
        feed = BarFeed(seed=3)
        out, slowest = [], 0.0
        for i, (market, portfolio) in enumerate(feed.bars(40)):
            allocator.fail = 10 <= i < 13  # a degraded run: one page when it starts, one when it ends
            start = time.perf_counter()
            out.append(comparable(risk.manage_risk_sync(market, portfolio)))
            if i > 0:  # the first call opens the manager (warm-up)
                slowest = max(slowest, time.perf_counter() - start)
        risk.close_sync()
        return out, slowest

    plain, _ = run(None)
    hooked, slowest = run(hook)
    assert hooked == plain
    assert slowest < 0.15  # a 0.2 s hook is never waited for
    runs = [AlertKind.DEGRADED, AlertKind.RECOVERED]
    _wait_for(lambda: [k for k in hook.kinds() if k in runs] == runs)
    edges = [e for e in hook.events if e.kind in runs]
    assert [e.kind for e in edges] == runs  # one page when the run starts, one when it ends
    assert "policy" in edges[0].message
    assert "3 degraded" in edges[1].message
    assert set(hook.kinds()) <= {*runs, AlertKind.STATE_CHANGE}


def test_coroutine_hook_runs_on_the_bots_loop() -> None:
    seen: list[tuple[AlertEvent, asyncio.AbstractEventLoop]] = []

    async def page(event: AlertEvent) -> None:
        await asyncio.sleep(0)
        seen.append((event, asyncio.get_running_loop()))

    async def main() -> asyncio.AbstractEventLoop:
        async with AdvancedRiskManager(_config(), on_alert=page) as risk:
            feed = BarFeed()
            for market, portfolio in feed.bars(3):
                await risk.manage_risk(market, portfolio)
            await risk.engage_kill_switch("test")
            for _ in range(200):
                if seen:
                    break
                await asyncio.sleep(0.01)
        return asyncio.get_running_loop()

    loop = asyncio.run(main())
    assert [e.kind for e, _ in seen] == [AlertKind.KILL_SWITCH]
    assert seen[0][1] is loop


def test_coroutine_hook_from_the_sync_twin_runs_on_its_own_loop() -> None:
    seen: list[AlertEvent] = []

    async def page(event: AlertEvent) -> None:
        seen.append(event)

    risk = AdvancedRiskManager(_config(), policy=FakeAllocator(fail=True), on_alert=page)
    _run_sync(risk, 8)  # the policy is asked from the 6th bar (history_length=5)
    _wait_for(lambda: bool(seen))
    assert [e.kind for e in seen] == [AlertKind.DEGRADED]
    risk.close_sync()


def test_drift_replaces_the_policy_and_pages_once_per_episode() -> None:
    hook = Recorder()
    allocator = DriftingAllocator(drifted_calls=range(20, 26))
    risk = AdvancedRiskManager(_config(), policy=allocator, on_alert=hook)
    feed = BarFeed(seed=5)
    decisions = [risk.manage_risk_sync(m, p) for m, p in feed.bars(40)]
    risk.close_sync()
    drifted = [d for d in decisions if any(alert_kind(a) is AlertKind.DRIFT for a in d.alerts)]
    assert len(drifted) == 6
    for d in drifted:
        assert d.drift == {"policy": 0.9}
        assert "vol_aaa" in next(a for a in d.alerts if a.startswith("input drift"))
        held = 1.0 / (len(ASSETS) + 1)  # the feed's held book: the rules keep it
        assert all(d.rebalance_weights[a] == pytest.approx(held) for a in ASSETS)
    calm = decisions[-1]
    assert calm.drift == {"policy": 0.05}
    assert calm.rebalance_weights["aaa"] == pytest.approx(0.2)
    _wait_for(lambda: len(hook.events) >= 2)
    assert hook.kinds() == [AlertKind.DRIFT, AlertKind.RECOVERED]
    assert "policy input drift is over" in hook.events[1].message


@pytest.mark.timing
def test_a_hung_hook_drops_and_counts_but_never_blocks() -> None:
    release = threading.Event()

    def hang(event: AlertEvent) -> None:
        release.wait()

    dispatcher = AlertDispatcher(hang, max_pending=3)
    start = time.perf_counter()
    for i in range(10):
        dispatcher.emit(AlertEvent.now(f"degraded: {i}", "active"))
    assert time.perf_counter() - start < 0.05
    assert dispatcher.dropped >= 6  # one taken by the hung hook, three waiting, the rest dropped
    release.set()
    dispatcher.close()
    assert dispatcher.delivered == 10 - dispatcher.dropped


def test_on_alert_must_be_callable() -> None:
    from advanced_risk.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="on_alert"):
        AdvancedRiskManager(on_alert="page me")  # type: ignore[arg-type]
