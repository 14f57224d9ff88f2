"""The manager never blocks its caller's event loop (issue 5), even with the PPO policy and MC dropout."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import numpy as np
import pytest

from advanced_risk.config import PPOConfig
from advanced_risk.manager import AdvancedRiskManager

from .conftest import BarFeed, fast_config

pytestmark = pytest.mark.timing  # wall-clock bounds: run alone, not beside another worker

N_ASSETS = 20
CALLS = 1000


WARMUP = 100  # bars before the ticker starts: the policy's history fills, kernels load from numba's cache


async def _ticker(lags: list[float], done: asyncio.Event) -> None:
    while not done.is_set():
        start = time.perf_counter()
        await asyncio.sleep(0.001)
        lags.append((time.perf_counter() - start - 0.001) * 1000.0)


async def _idle_p99_ms() -> float:
    """The machine's own loop lag (a shared runner's scheduler), which is not the manager's doing."""
    idle: list[float] = []
    done = asyncio.Event()
    tick = asyncio.create_task(_ticker(idle, done))
    await asyncio.sleep(0.5)
    done.set()
    await tick
    return float(np.percentile(idle, 99))


async def _lags_during_calls(risk: AdvancedRiskManager, bars: list[Any]) -> tuple[list[float], list[Any]]:
    lags: list[float] = []
    done = asyncio.Event()
    tick = asyncio.create_task(_ticker(lags, done))
    decisions = [await risk.manage_risk(market, book) for market, book in bars]
    done.set()
    await tick
    return lags, decisions


@pytest.mark.asyncio
async def test_a_ticker_keeps_a_p99_lag_under_5_ms_during_1000_calls_with_the_policy() -> None:
    from advanced_risk.rl.portfolio.manager import RLPortfolioManager

    policy = RLPortfolioManager(asset_count=N_ASSETS, ppo_config=PPOConfig(device="cpu"))
    feed = BarFeed(seed=21, assets=tuple(f"s{i:02d}" for i in range(N_ASSETS)))
    bars = list(feed.bars(WARMUP + 2 * CALLS))
    config = fast_config(mc_samples=10, deadline_ms=250.0)
    runs: list[str] = []
    async with AdvancedRiskManager(config, policy=policy) as risk:
        for market, book in bars[:WARMUP]:
            await risk.manage_risk(market, book)
        # A shared runner's scheduler burst can stall a few of ~300 ticks by 5-10 ms (seen once on
        # CI); the bound must hold in one of two runs of 1,000 calls, each against its own idle p99.
        for attempt in range(2):
            baseline = await _idle_p99_ms()
            chunk = bars[WARMUP + attempt * CALLS : WARMUP + (attempt + 1) * CALLS]
            lags, decisions = await _lags_during_calls(risk, chunk)
            assert all(d.uncertainty is not None for d in decisions)  # the policy answered every call
            assert len(lags) > 100
            p99 = float(np.percentile(lags, 99))
            runs.append(
                f"p99 {p99:.2f} ms (max {max(lags):.2f}) over {len(lags)} ticks, idle p99 {baseline:.2f}"
            )
            if p99 < 5.0 + baseline:
                break
        assert risk.metrics()["calls"] == WARMUP + CALLS * len(runs)
    assert p99 < 5.0 + baseline, f"event-loop lag in both runs: {runs}"
