"""Adversarial whole-decision checks of today's fast paths (issue 14): the shipped policy given
as a path and as the same policy object (``PolicyAllocator(PortfolioPolicy.load(path))``),
``manage_risk_sync`` against ``await manage_risk``, dict input against ``manage_risk_arrays``, on
bundled bars: every decision identical (JSON without ``latency_ms`` and ``decision_id``), every
decision journalled exactly as returned, ids unique and increasing."""

from __future__ import annotations

import asyncio
import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from advanced_risk import AdvancedRiskManager, MarketState, Portfolio, RiskConfig
from advanced_risk.data import load_sp500_stocks
from advanced_risk.rl.portfolio.allocator import PolicyAllocator
from advanced_risk.rl.portfolio.policy import PortfolioPolicy
from advanced_risk.types import RiskDecision

POLICY = Path(__file__).resolve().parents[2] / "models" / "ppo_sp500_2012.armodel"
BARS = 200


@pytest.fixture(scope="module")
def bars() -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    prices = load_sp500_stocks()
    px = prices.to_numpy()[: BARS + 1]
    return tuple(prices.columns), px[1:] / px[:-1] - 1.0, px[1:]


def _manager(policy: Any) -> AdvancedRiskManager:
    return AdvancedRiskManager(RiskConfig(deadline_ms=5_000.0, rate_limit_per_s=None), policy=policy)


def _portfolio(names: tuple[str, ...], t: int) -> Portfolio:
    weights = {name: (0.6 if i == t % len(names) else 0.3) / len(names) for i, name in enumerate(names)}
    return Portfolio(weights=weights, equity=1e6 * (1.0 + 0.001 * np.sin(t)))


def _row(risk: AdvancedRiskManager, decision: RiskDecision) -> dict[str, Any]:
    row = json.loads(decision.to_json())
    assert risk.read_decision(decision.decision_id) == row  # journalled exactly as returned
    return {k: v for k, v in row.items() if k not in ("decision_id", "latency_ms")}


def _ids_increase(ids: list[str]) -> None:
    """Ids are ``<run>-<n>``: one run, ``n`` strictly increasing."""
    assert len({i.rsplit("-", 1)[0] for i in ids}) == 1
    numbers = [int(i.rsplit("-", 1)[1]) for i in ids]
    assert all(a < b for a, b in itertools.pairwise(numbers))


def _run(policy: Any, bars: Any, mode: str) -> list[dict[str, Any]]:
    names, returns, prices = bars
    risk = _manager(policy)
    rows, ids = [], []

    async def run_async() -> None:
        for t in range(BARS):
            if mode == "async arrays":
                d = await risk.manage_risk_arrays(
                    names, _portfolio(names, t), returns=returns[t], prices=prices[t]
                )
            else:
                market = MarketState(
                    returns=dict(zip(names, returns[t].tolist(), strict=True)),
                    prices=dict(zip(names, prices[t].tolist(), strict=True)),
                )
                d = await risk.manage_risk(market, _portfolio(names, t))
            rows.append(_row(risk, d))
            ids.append(d.decision_id)
        await risk.close()

    try:
        if mode.startswith("async"):
            asyncio.run(run_async())
        else:
            for t in range(BARS):
                if mode == "sync arrays":
                    d = risk.manage_risk_arrays_sync(
                        names, _portfolio(names, t), returns=returns[t], prices=prices[t]
                    )
                else:
                    market = MarketState(
                        returns=dict(zip(names, returns[t].tolist(), strict=True)),
                        prices=dict(zip(names, prices[t].tolist(), strict=True)),
                    )
                    d = risk.manage_risk_sync(market, _portfolio(names, t))
                rows.append(_row(risk, d))
                ids.append(d.decision_id)
    finally:
        if not mode.startswith("async"):
            risk.close_sync()
    _ids_increase(ids)
    return rows


@pytest.fixture(scope="module")
def reference(bars: Any) -> list[dict[str, Any]]:
    rows = _run(str(POLICY), bars, "sync dicts")
    assert any(r.get("alerts") == [] or not r.get("alerts") for r in rows)
    return rows


@pytest.mark.parametrize("mode", ["sync arrays", "async dicts", "async arrays"])
def test_entry_points_decide_alike_with_the_policy_path(bars: Any, reference: Any, mode: str) -> None:
    assert _run(str(POLICY), bars, mode) == reference


@pytest.mark.parametrize("mode", ["sync dicts", "async arrays"])
def test_the_policy_object_decides_as_its_path(bars: Any, reference: Any, mode: str) -> None:
    assert _run(PolicyAllocator(PortfolioPolicy.load(POLICY)), bars, mode) == reference
