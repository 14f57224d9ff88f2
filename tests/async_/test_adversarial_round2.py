"""Second adversarial round on the manager and its engine: defects found, each pinned by a test."""

from __future__ import annotations

import subprocess
import sys
import textwrap

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
