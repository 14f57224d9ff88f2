"""Shared fixtures of the monitoring tests: a journal written by a real manager run on the bundled data."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from advanced_risk import AdvancedRiskManager, RiskConfig
from advanced_risk.engine.protocols import Allocation

BARS = 300
CRASH_BAR = 200  # the bot reports a 35 % loss here: the drawdown halts trading
FAILING_BARS = frozenset({120, 121, 260})  # the policy raises: degraded decisions


@dataclass
class InvestedAllocator:
    """80 % equal weight in the assets, 20 % cash; raises on the bars of ``FAILING_BARS``."""

    asset_count: int
    history_length: int = 5
    calls: int = 0

    def allocate(self, returns: np.ndarray, weights: np.ndarray, drawdown: float) -> Allocation:
        self.calls += 1
        if self.calls in FAILING_BARS:
            raise RuntimeError("policy exploded")
        w = np.full(self.asset_count + 1, 0.8 / self.asset_count)
        w[-1] = 0.2
        return Allocation(weights=w, uncertainty=0.01)


async def _run(path: Path, frame: pd.DataFrame) -> None:
    assets = [str(c) for c in frame.columns]
    px = frame.to_numpy(np.float64)
    config = RiskConfig(
        state_path=str(path), deadline_ms=1000.0, tracker={"method": "fhs_ewma", "window": 60}
    )
    equity, held = 100_000.0, np.zeros(len(assets))
    async with AdvancedRiskManager(config, policy=InvestedAllocator(len(assets))) as risk:
        for t in range(1, px.shape[0]):
            r = px[t] / px[t - 1] - 1.0
            equity *= (1.0 + float(held @ r)) * (0.65 if t == CRASH_BAR else 1.0)
            market = {
                "returns": dict(zip(assets, r.tolist(), strict=True)),
                "prices": dict(zip(assets, px[t].tolist(), strict=True)),
            }
            book = {"weights": dict(zip(assets, held.tolist(), strict=True)), "equity": equity}
            decision = await risk.manage_risk(market, book)
            held = np.array([decision.rebalance_weights[a] for a in assets]) * decision.leverage


@pytest.fixture(scope="session")
def manager_journal(tmp_path_factory: pytest.TempPathFactory, sp500_stocks: pd.DataFrame) -> Path:
    """The state file of a manager run over the bundled 20 stocks' last 301 closes (300 decisions).

    An invested book (80 %), a 35 % loss reported at bar 200 (REDUCING then HALTED), three policy
    failures (degraded decisions), EWMA FHS VaR over 60 bars (so most rows carry a VaR). A deadline
    of 1 s keeps a loaded test machine from adding degraded decisions (or replaced rows) of its own.
    """
    path = tmp_path_factory.mktemp("journal") / "s.db"
    asyncio.run(_run(path, sp500_stocks.iloc[-(BARS + 1) :]))
    return path
