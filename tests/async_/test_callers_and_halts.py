"""Callers on every path at once, and halts that no fault and no other process can undo.

Found by an adversarial review of the manager (2026-12-01): concurrent first calls opened the store
several times (a durable kill switch then lived in an engine that was thrown away), sync and async
callers were not serialised against each other, the manager was bound to its first event loop, a
degraded decision skipped the trading-state rules (no HALT while the store or the policy failed), a
refused kill switch was half applied, and a second process writing its own state change cleared a
kill switch an operator had engaged on the same file.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from advanced_risk import AdvancedRiskManager, RiskConfig
from advanced_risk.engine.callers import CallerLock
from advanced_risk.errors import InvalidInputError
from advanced_risk.types import TradingState

from .conftest import FakeAllocator


def _bar(rng: np.random.Generator, assets: tuple[str, ...]) -> dict[str, Any]:
    return {"returns": dict(zip(assets, rng.normal(0.0, 0.01, len(assets)).tolist(), strict=True))}


def _book(assets: tuple[str, ...], drawdown: float = 0.0) -> dict[str, Any]:
    return {"weights": dict.fromkeys(assets, 0.5 / len(assets)), "equity": 1.0, "current_drawdown": drawdown}


def _journal_threads() -> int:
    return sum(t.name == "advanced-risk-journal" and t.is_alive() for t in threading.enumerate())


SLOW_DISK = 5000.0
"""deadline_ms for the tests that assert a durable write: they are about what is written, not how
fast, and a loaded CI runner's fsync can take longer than the 5 ms default."""


def _stored(path: Path) -> tuple[str, int]:
    with sqlite3.connect(path) as conn:
        row = conn.execute("SELECT trading_state, kill_switch FROM risk_state").fetchone()
    return str(row[0]), int(row[1])


def test_concurrent_first_calls_open_once_and_keep_the_kill_switch(tmp_path: Path) -> None:
    path = tmp_path / "risk.db"
    assets = ("a", "b")
    before = _journal_threads()

    async def run() -> tuple[Any, list[Any], TradingState]:
        risk = AdvancedRiskManager(RiskConfig(state_path=str(path), deadline_ms=SLOW_DISK))
        rng = np.random.default_rng(0)
        kill, *decisions = await asyncio.gather(
            risk.engage_kill_switch("operator"),
            *[risk.manage_risk(_bar(rng, assets), _book(assets)) for _ in range(6)],
        )
        after = await risk.manage_risk(_bar(rng, assets), _book(assets))
        assert _journal_threads() == before + 1
        await risk.close()
        return kill, decisions, after.trading_state

    kill, _, state = asyncio.run(run())
    assert kill.durable
    assert state is TradingState.HALTED
    assert _stored(path) == ("halted", 1)
    assert _journal_threads() == before


def test_sync_and_async_callers_are_serialised_across_universe_changes() -> None:
    """A framework callback thread and the bot's loop share one manager while assets join and leave
    (before: hundreds of raw IndexErrors, and a tracker left broken for every later caller)."""
    risk = AdvancedRiskManager(RiskConfig())
    book = {"weights": {"A": 0.5, "B": 0.3}}
    problems: list[str] = []

    def sync_side() -> None:
        rng = np.random.default_rng(1)
        for i in range(300):
            names = ["A", "B"] + (["C"] if i % 7 else [])
            try:
                d = risk.manage_risk_sync({"returns": {a: float(rng.normal(0, 0.01)) for a in names}}, book)
            except Exception as exc:
                problems.append(f"sync raised {exc!r}")
            else:
                problems.extend(f"sync degraded: {d.alerts[0]}" for _ in range(d.degraded))

    async def main() -> None:
        await risk.open()
        thread = threading.Thread(target=sync_side)
        thread.start()
        rng = np.random.default_rng(2)
        for i in range(300):
            names = ["A", "B", "D"] if i % 5 else ["A", "B"]
            d = await risk.manage_risk({"returns": {a: float(rng.normal(0, 0.01)) for a in names}}, book)
            problems.extend(f"async degraded: {d.alerts[0]}" for _ in range(d.degraded))
            await asyncio.sleep(0)
        thread.join()
        await risk.close()

    asyncio.run(main())
    assert problems == []


def test_a_manager_serves_a_second_event_loop() -> None:
    risk = AdvancedRiskManager(RiskConfig())
    assets = ("a", "b")

    async def burst(seed: int) -> list[bool]:
        rng = np.random.default_rng(seed)
        decisions = await asyncio.gather(
            *[risk.manage_risk(_bar(rng, assets), _book(assets)) for _ in range(20)]
        )
        return [d.degraded for d in decisions]

    assert not any(asyncio.run(burst(0)))
    assert not any(asyncio.run(burst(1)))  # the first loop is closed by now
    risk.close_sync()


def test_a_sync_call_on_the_loop_thread_of_a_task_holding_the_lock_is_refused_not_deadlocked() -> None:
    lock = CallerLock()

    async def run() -> None:
        async with lock.held_async():
            with pytest.raises(RuntimeError, match="would deadlock"), lock.held():
                pass
        with lock.held():  # free again: the sync path takes it on the loop's thread too
            assert lock.locked()

    asyncio.run(run())
    assert not lock.locked()


def test_a_task_cancelled_while_waiting_for_the_lock_holds_nothing() -> None:
    lock = CallerLock()

    async def run() -> None:
        async def waiter() -> None:
            async with lock.held_async():
                pass

        with lock.held():  # held by "another thread" (here: this one, before the task runs)
            task = asyncio.ensure_future(waiter())
            await asyncio.sleep(0.01)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        async with lock.held_async():
            assert lock.locked()

    asyncio.run(run())
    assert not lock.locked()


@pytest.mark.parametrize("fault", ["policy", "store"])
def test_the_drawdown_halt_fires_while_decisions_are_degraded(fault: str, tmp_path: Path) -> None:
    assets = ("aaa", "bbb", "ccc", "ddd")
    path = tmp_path / "risk.db"
    allocator = FakeAllocator(fail=fault == "policy")
    config = RiskConfig(state_path=str(path), halt_drawdown=0.30, halt_confirmations=3)
    risk = AdvancedRiskManager(config, policy=allocator if fault == "policy" else None)
    rng = np.random.default_rng(3)
    for _ in range(5):
        risk.manage_risk_sync(_bar(rng, assets), _book(assets))
    if fault == "store":
        path.unlink()  # the store fails from here on (the file was deleted under the manager)
    states = []
    for _ in range(5):
        d = risk.manage_risk_sync(_bar(rng, assets), _book(assets, drawdown=0.5))
        assert d.degraded
        states.append(d.trading_state)
    risk.close_sync()
    assert states[:2] == [TradingState.ACTIVE, TradingState.ACTIVE] or TradingState.HALTED in states
    assert states[-1] is TradingState.HALTED
    assert d.rebalance_weights == dict.fromkeys(assets, 0.0) | {"cash": d.rebalance_weights.get("cash", 1.0)}
    assert any("-> halted" in alert for alert in d.alerts) or states[-2] is TradingState.HALTED


def test_a_refused_kill_switch_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "risk.db"
    assets = ("a", "b")

    async def run() -> None:
        async with AdvancedRiskManager(RiskConfig(state_path=str(path))) as risk:
            rng = np.random.default_rng(4)
            await risk.manage_risk(_bar(rng, assets), _book(assets))
            for reason in ("", "   ", None):
                with pytest.raises(InvalidInputError, match="reason"):
                    await risk.engage_kill_switch(reason)  # type: ignore[arg-type]
            engine = risk._require_engine()
            assert not engine.machine.kill_switch
            assert engine.machine.state is TradingState.ACTIVE
            with pytest.raises(InvalidInputError, match="reason"):
                await risk.reset_peak(2.0, "")
            d = await risk.manage_risk(_bar(rng, assets), _book(assets, drawdown=0.2))
            assert d.trading_state is not TradingState.HALTED

    asyncio.run(run())
    assert _stored(path)[1] == 0


def test_a_kill_switch_engaged_by_another_process_is_kept_and_obeyed(tmp_path: Path) -> None:
    """The operator's manager halts the file; the bot's manager, running on the same file, writes
    its own state change (REDUCING) afterwards: the file stays halted, and the bot halts too."""
    path = tmp_path / "risk.db"
    assets = ("a", "b")
    config = RiskConfig(state_path=str(path), reduce_drawdown=0.1)
    bot = AdvancedRiskManager(config)
    rng = np.random.default_rng(5)
    for _ in range(3):
        bot.manage_risk_sync(_bar(rng, assets), _book(assets))

    async def operator() -> None:
        async with AdvancedRiskManager(RiskConfig(state_path=str(path), deadline_ms=SLOW_DISK)) as op:
            assert (await op.engage_kill_switch("operator from another process")).durable

    asyncio.run(operator())
    assert _stored(path) == ("halted", 1)
    states = [
        bot.manage_risk_sync(_bar(rng, assets), _book(assets, drawdown=0.3)).trading_state for _ in range(4)
    ]
    assert _stored(path) == ("halted", 1)  # the bot's own REDUCING did not clear it
    assert states[-1] is TradingState.HALTED  # after the next commit read the file
    bot.close_sync()

    restarted = AdvancedRiskManager(config)
    assert restarted.manage_risk_sync(_bar(rng, assets), _book(assets)).trading_state is TradingState.HALTED
    restarted.close_sync()


def test_a_resume_is_not_undone_by_the_halt_it_lifted(tmp_path: Path) -> None:
    path = tmp_path / "risk.db"
    assets = ("a", "b")

    async def run() -> list[TradingState]:
        async with AdvancedRiskManager(RiskConfig(state_path=str(path), deadline_ms=SLOW_DISK)) as risk:
            rng = np.random.default_rng(6)
            await risk.manage_risk(_bar(rng, assets), _book(assets))
            await risk.engage_kill_switch("test")
            for _ in range(3):
                await risk.manage_risk(_bar(rng, assets), _book(assets))
            assert (await risk.resume("test over")).durable
            return [
                (await risk.manage_risk(_bar(rng, assets), _book(assets))).trading_state for _ in range(5)
            ]

    assert set(asyncio.run(run())) == {TradingState.ACTIVE}
    assert _stored(path) == ("active", 0)


def test_a_call_cancelled_while_its_policy_runs_still_decides_and_journals_its_bar() -> None:
    """The bar is consumed once observed; the cancelled call's decision is journalled (degraded,
    saying so) and the cancellation reaches the caller: the state never holds a bar without its
    decision."""

    class SlowPolicy:
        asset_count = 2
        history_length = 5
        asset_names = ("A", "B")

        def allocate(self, returns: np.ndarray, weights: np.ndarray, drawdown: float) -> Any:
            from advanced_risk.engine.protocols import Allocation

            time.sleep(0.02)
            return Allocation(np.array([0.4, 0.4, 0.2]), 0.01)

    async def run() -> tuple[int, int, list[Any]]:
        async with AdvancedRiskManager(RiskConfig(deadline_ms=100.0), policy=SlowPolicy()) as risk:
            bar, book = {"returns": {"A": -0.01, "B": 0.01}}, {"weights": {"A": 0.4, "B": 0.4}}
            for _ in range(8):
                await risk.manage_risk(bar, book)
            engine = risk._require_engine()
            seen = engine.tracker.n_observations if engine.tracker is not None else 0
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(risk.manage_risk(bar, book), timeout=0.005)
            await risk.flush()
            rows = risk._journal._store.journal(limit=3) if risk._journal is not None else []
            after = engine.tracker.n_observations if engine.tracker is not None else 0
            return seen, after, rows

    seen, after, rows = asyncio.run(run())
    assert after == seen + 1
    latest = rows[-1].payload  # oldest first
    assert latest["degraded"]
    assert any("cancelled" in alert for alert in latest["alerts"])
