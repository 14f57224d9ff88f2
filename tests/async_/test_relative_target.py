"""Issue 12, round 4: the relative volatility target through the manager.

A book calmer than ``target_volatility`` is held at ``relative_target`` of its own long-run risk on
average (the absolute target alone holds it whole), in any units of time, and a bot that stays out
of the market for a while does not drag its long-run volatility down.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from advanced_risk import AdvancedRiskManager, MarketState, Portfolio, RiskConfig
from advanced_risk.types import RiskDecision

from .conftest import LEVERAGE_ONLY

ASSETS = ("A", "B")
BASE = LEVERAGE_ONLY


def _relative(config: RiskConfig, k: float | None, halflife: int = 250) -> RiskConfig:
    lev = dataclasses.replace(config.leverage, relative_target=k, relative_halflife=halflife)
    return dataclasses.replace(config, leverage=lev)


def _calm_returns(n: int, daily_vol: float, seed: int = 0) -> np.ndarray:
    """Two assets, correlation ~0.9, each with this daily volatility: a book far calmer than 15 %."""
    rng = np.random.default_rng(seed)
    factor = rng.normal(0.0, daily_vol, (n, 1))
    return 0.95 * factor + rng.normal(0.0, daily_vol * 0.31, (n, 2))


def _run(config: RiskConfig, returns: np.ndarray, desired: np.ndarray | None = None) -> list[RiskDecision]:
    """The bot asks for ``desired[t]`` (equal weight by default) at each bar."""
    risk = AdvancedRiskManager(config)
    prices, out = np.full(2, 100.0), []
    try:
        for t, r in enumerate(returns):
            prices = prices * (1.0 + r)
            want = np.array([0.5, 0.5]) if desired is None else desired[t]
            market = MarketState(
                returns=dict(zip(ASSETS, r.tolist(), strict=True)),
                prices=dict(zip(ASSETS, prices.tolist(), strict=True)),
            )
            out.append(risk.manage_risk_sync(market, Portfolio(weights=dict(zip(ASSETS, want, strict=True)))))
    finally:
        risk.close_sync()
    return out


@pytest.mark.parametrize("k", [0.5, 0.7])
def test_a_calm_book_is_held_at_k_of_its_own_risk_on_average(k: float) -> None:
    returns = _calm_returns(700, 0.004)  # ~6 % a year: the absolute 15 % target holds it whole
    absolute = np.array([d.leverage for d in _run(BASE, returns)])
    relative = np.array([d.leverage for d in _run(_relative(BASE, k), returns)])
    assert np.all(absolute[200:] == 1.0)
    assert np.all(relative <= absolute)  # never less cautious than the absolute target
    # k sigma_long / sigma_t: its mean over the run is about k (sigma_t wanders around sigma_long)
    assert np.mean(relative[200:]) == pytest.approx(k, rel=0.1)


def test_the_relative_target_does_not_depend_on_the_units_of_time() -> None:
    """The same bars, annualised as daily or as minute bars, get the same relative leverage."""
    returns = _calm_returns(400, 0.004, seed=1)
    daily = _run(_relative(BASE, 0.6), returns)
    minute = _run(
        dataclasses.replace(
            _relative(BASE, 0.6),
            periods_per_year=252 * 390,
            leverage=dataclasses.replace(_relative(BASE, 0.6).leverage, target_volatility=100.0),
        ),
        returns,
    )
    lev_d = np.array([d.leverage for d in daily])
    lev_m = np.array([d.leverage for d in minute])
    np.testing.assert_allclose(lev_m[100:], lev_d[100:], rtol=1e-9)


def test_a_bot_out_of_the_market_keeps_its_long_run_risk() -> None:
    """Flat for 150 bars (zero weights: zero book volatility) and back: the leverage on return is the
    one a bot that never left gets, not the cap a long-run volatility dragged to zero would give."""
    returns = _calm_returns(600, 0.004, seed=2)
    desired = np.tile([0.5, 0.5], (600, 1))
    desired[300:450] = 0.0
    config = _relative(BASE, 0.6, halflife=50)
    stayed = np.array([d.leverage for d in _run(config, returns)])
    left = np.array([d.leverage for d in _run(config, returns, desired)])
    # the long-run volatility of the one that left misses 150 bars of entries: close, not equal
    np.testing.assert_allclose(left[450:470], stayed[450:470], rtol=0.25)
    assert np.max(left[450:470]) < 1.0
