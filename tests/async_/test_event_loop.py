"""The manager never blocks its caller's event loop (issue 5), even with the PPO policy and MC dropout."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from advanced_risk.config import PPOConfig
from advanced_risk.manager import AdvancedRiskManager

from .conftest import BarFeed, fast_config

N_ASSETS = 20
CALLS = 1000


@pytest.mark.asyncio
async def test_a_ticker_keeps_a_p99_lag_under_5_ms_during_1000_calls_with_the_policy() -> None:
    from advanced_risk.rl.portfolio.manager import RLPortfolioManager

    policy = RLPortfolioManager(asset_count=N_ASSETS, ppo_config=PPOConfig(device="cpu"))
    feed = BarFeed(seed=21, assets=tuple(f"s{i:02d}" for i in range(N_ASSETS)))
    bars = list(feed.bars(CALLS))
    config = fast_config(mc_samples=10, deadline_ms=250.0)
    done = asyncio.Event()

    async def ticker(lags: list[float]) -> None:
        while not done.is_set():
            start = time.perf_counter()
            await asyncio.sleep(0.001)
            lags.append((time.perf_counter() - start - 0.001) * 1000.0)

    # the machine's own lag (a shared CI runner's scheduler) is not the manager's doing
    idle: list[float] = []
    tick = asyncio.create_task(ticker(idle))
    await asyncio.sleep(0.5)
    done.set()
    await tick
    baseline = float(np.percentile(idle, 99))

    lags: list[float] = []
    done.clear()
    async with AdvancedRiskManager(config, policy=policy) as risk:
        tick = asyncio.create_task(ticker(lags))
        decisions = [await risk.manage_risk(market, book) for market, book in bars]
        done.set()
        await tick
        metrics = risk.metrics()
    with_policy = [d for d in decisions if d.uncertainty is not None]
    assert len(with_policy) > CALLS - 50  # the policy answered (after its history filled)
    assert metrics["calls"] == CALLS
    assert len(lags) > 100
    p99 = float(np.percentile(lags, 99))
    assert p99 < 5.0 + baseline, (
        f"event-loop lag p99 {p99:.2f} ms (max {max(lags):.2f} ms) over {len(lags)} ticks; "
        f"idle p99 {baseline:.2f} ms"
    )
