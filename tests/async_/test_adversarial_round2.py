"""Second adversarial round on the manager and its engine: defects found, each pinned by a test."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from typing import Any

import pytest

_HANGING_ALLOCATOR = textwrap.dedent(
    """
    import asyncio, sys, time

    import numpy as np

    from advanced_risk import AdvancedRiskManager, MarketState, Portfolio, RiskConfig
    from advanced_risk.engine.protocols import Allocation


    class Hangs:
        asset_count = 2
        history_length = 2
        asset_names = ("a", "b")

        def allocate(self, returns, weights, drawdown):
            time.sleep(3600)  # a user's allocator that never returns
            return Allocation(np.array([0.5, 0.5, 0.0]), None)


    async def main(entry):
        risk = AdvancedRiskManager(RiskConfig(deadline_ms=20.0, rate_limit_per_s=None), policy=Hangs())
        for i in range(6):
            market = MarketState(returns={"a": 0.001 * i, "b": -0.001 * i})
            book = Portfolio(weights={"a": 0.5, "b": 0.3})
            if entry == "sync":
                decision = risk.manage_risk_sync(market, book)
            else:
                decision = await risk.manage_risk(market, book)
        assert decision.degraded, decision
        await risk.close()
        print("closed", flush=True)


    asyncio.run(main(sys.argv[1]))
    """
)


@pytest.mark.parametrize("entry", ["sync", "async"])
def test_a_hanging_allocator_does_not_keep_the_process_from_exiting(entry: str) -> None:
    """The policy worker was a ThreadPoolExecutor, whose threads the interpreter joins at exit: a
    user's allocator that never returns kept the bot's process alive after ``close()`` forever."""
    done = subprocess.run(
        [sys.executable, "-c", _HANGING_ALLOCATOR, entry], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "closed" in done.stdout


def test_a_series_labelled_in_another_order_is_refused_not_misread() -> None:
    """``from_arrays`` reads values by position: a pandas Series indexed by asset in another order
    gave each asset another asset's return without a word (here A's -50 % went to B)."""
    pd = pytest.importorskip("pandas")
    from advanced_risk import AdvancedRiskManager, InvalidInputError, MarketState

    with pytest.raises(InvalidInputError, match=r"market_state\.returns is labelled \['B', 'A'\]"):
        MarketState.from_arrays(["A", "B"], returns=pd.Series({"B": 0.05, "A": -0.5}))
    with pytest.raises(InvalidInputError, match=r"market_state\.prices is labelled"):
        MarketState.from_arrays(["A", "B"], prices=pd.Series({"A": 1.0, "C": 2.0}))
    risk = AdvancedRiskManager()
    with pytest.raises(InvalidInputError, match="labelled"):
        risk.manage_risk_arrays_sync(["A", "B"], {"A": 0.5}, returns=pd.Series({"B": 0.01, "A": 0.0}))
    # labelled by the assets in their order, or positionally: read as before
    assert MarketState.from_arrays(["A", "B"], returns=pd.Series({"A": -0.5, "B": 0.05})).returns == {
        "A": -0.5,
        "B": 0.05,
    }
    assert MarketState.from_arrays(["A", "B"], returns=pd.Series([0.1, 0.2])).returns == {"A": 0.1, "B": 0.2}
    assert MarketState.from_arrays(["A", "B"], returns=[0.1, 0.2]).returns == {"A": 0.1, "B": 0.2}
    risk.close_sync()


def test_a_kill_switch_from_a_loop_gets_in_between_back_to_back_sync_calls() -> None:
    """A thread calling ``manage_risk_sync`` back to back re-took the released lock at once, so an
    operator's ``engage_kill_switch`` (a task polling for the lock) waited as long as it called."""
    import asyncio
    import threading
    import time

    from advanced_risk import AdvancedRiskManager

    risk = AdvancedRiskManager()
    risk.manage_risk_sync({"returns": {"a": 0.001}}, {"a": 0.5})
    stop = threading.Event()

    def bars() -> None:
        while not stop.is_set():
            risk.manage_risk_sync({"returns": {"a": 0.001}}, {"a": 0.5})

    threads = [threading.Thread(target=bars, daemon=True) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(0.05)
        start = time.perf_counter()
        change = asyncio.run(asyncio.wait_for(risk.engage_kill_switch("operator"), timeout=10.0))
        assert change.changed
        assert time.perf_counter() - start < 5.0
    finally:
        stop.set()
        for thread in threads:
            thread.join(10.0)
    assert risk.trading_state == "halted"
    risk.close_sync()


def test_close_during_a_decision_on_another_thread_loses_no_journal_row(tmp_path: Any) -> None:
    """``close_sync`` did not wait for a decision in flight on another thread: the journal closed
    under it, and the decision the bot received (and later ones) never reached the journal."""
    import threading
    import time

    from advanced_risk import AdvancedRiskManager, RiskConfig

    config = RiskConfig(state_path=str(tmp_path / "risk.db"), deadline_ms=20.0)
    risk = AdvancedRiskManager(config)
    risk.manage_risk_sync({"returns": {"a": 0.001}}, {"a": 0.5})
    decisions: list[Any] = []
    stop = threading.Event()

    def bars() -> None:
        while not stop.is_set():
            decisions.append(risk.manage_risk_sync({"returns": {"a": 0.001}}, {"a": 0.5}))

    thread = threading.Thread(target=bars, daemon=True)
    thread.start()
    try:
        for _ in range(5):
            time.sleep(0.05)
            risk.close_sync()
    finally:
        stop.set()
        thread.join(30.0)
    risk.close_sync()
    reader = AdvancedRiskManager(config)
    assert decisions
    missing = [d.decision_id for d in decisions if reader.read_decision(d.decision_id) is None]
    assert missing == []
    reader.close_sync()
