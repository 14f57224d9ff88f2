"""Issue 12: a drawdown rule must not lock in. A crash followed by a recovery: with the cuts driven by
the strategy's drawdown (the default ``drawdown_basis``: the drawdown of the book asked for), the
hedge comes off and trading is ACTIVE again within ``RELEASE_BARS`` bars of the book regaining its
pre-crash level, and stays so in the calm that follows, whatever the cuts did to the account.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from advanced_risk import AdvancedRiskManager, MarketState, Portfolio, RiskConfig
from advanced_risk.config import HedgeConfig, TrackerConfig
from advanced_risk.types import RiskDecision, TradingState

RELEASE_BARS = 20  # documented in docs/risk_rules.md: re-risking within 20 bars of the recovery
ASSETS = ("A", "B")


def _market(seed: int, crash: float, recovery_bars: int) -> tuple[np.ndarray, int]:
    """Daily returns of two assets driven by one factor: 300 calm bars, a 25-bar crash of about
    ``crash``, a recovery back to the pre-crash peak over ``recovery_bars`` bars, then 80 calm
    bars; and the index of the bar on which the book (equal weight) regains that peak."""
    rng = np.random.default_rng(seed)

    def phase(n: int, drift: float, vol: float) -> np.ndarray:
        factor = rng.normal(drift, vol, (n, 1))
        return factor + rng.normal(0.0, vol / 4.0, (n, 2))

    calm = phase(300, 0.0004, 0.004)
    down = phase(25, (1.0 - crash) ** (1 / 25) - 1.0, 0.012)
    up = phase(recovery_bars, 0.0, 0.004)
    after = phase(80, 0.0005, 0.002)
    # the recovery's drift brings the book (equal weight, rebalanced) back to its pre-crash peak
    calm_book = np.cumprod(1.0 + calm.mean(axis=1))
    shortfall = calm_book.max() / (calm_book[-1] * np.prod(1.0 + down.mean(axis=1)))
    up += shortfall ** (1.0 / recovery_bars) / np.prod(1.0 + up.mean(axis=1)) ** (1.0 / recovery_bars) - 1.0
    returns = np.vstack([calm, down, up, after])
    book = np.cumprod(1.0 + returns.mean(axis=1))
    back = int(np.argmax(book[300:] >= calm_book.max() * (1.0 - 1e-9))) + 300
    return returns, back


def _run(basis: str, returns: np.ndarray) -> list[RiskDecision]:
    config = RiskConfig(
        drawdown_basis=basis,
        hedge=HedgeConfig(max_drawdown_threshold=0.05, release_margin=0.01),
        reduce_drawdown=0.08,
        halt_drawdown=0.30,
        loss_streak=1000,  # this test is about the drawdown rules, not the losing streak
        deterministic_refits=True,
        rate_limit_per_s=None,
        tracker=TrackerConfig(method="fhs_ewma"),
    )
    return _run_config(config, returns)


def _run_config(config: RiskConfig, returns: np.ndarray) -> list[RiskDecision]:
    """The bot holds ``rebalance_weights x leverage x (1 - hedge ratio)`` decided at the previous bar."""
    risk = AdvancedRiskManager(config)
    decisions = []
    prices = np.full(2, 100.0)
    equity, held = 1.0, np.zeros(2)
    desired = np.array([0.5, 0.5])
    try:
        for r in returns:
            gross = float(held @ r)
            equity *= 1.0 + gross
            held = held * (1.0 + r) / (1.0 + gross)
            prices = prices * (1.0 + r)
            market = MarketState(
                returns=dict(zip(ASSETS, r.tolist(), strict=True)),
                prices=dict(zip(ASSETS, prices.tolist(), strict=True)),
            )
            d = risk.manage_risk_sync(
                market, Portfolio(weights=dict(zip(ASSETS, desired, strict=True)), equity=equity)
            )
            decisions.append(d)
            target = np.array([d.rebalance_weights[a] for a in ASSETS]) * d.leverage
            held = target * (1.0 - (d.hedge.ratio if d.hedge.active else 0.0))
    finally:
        risk.close_sync()
    return decisions


def _released(d: RiskDecision) -> bool:
    return not d.hedge.active and d.trading_state is TradingState.ACTIVE


@pytest.mark.parametrize(("seed", "crash", "recovery_bars"), [(0, 0.25, 60), (1, 0.35, 120), (2, 0.15, 30)])
def test_the_strategy_basis_re_risks_with_the_recovery(seed: int, crash: float, recovery_bars: int) -> None:
    returns, recovered = _market(seed, crash, recovery_bars)
    decisions = _run("strategy", returns)
    assert any(d.hedge.active for d in decisions[300:recovered]), "the crash must trigger the cuts"
    after = decisions[recovered:]
    first = next((i for i, d in enumerate(after) if _released(d)), None)
    assert first is not None, "never released after the recovery"
    assert first <= RELEASE_BARS, first
    assert all(_released(d) for d in after[first:]), "and it stays released in the calm"


@pytest.mark.parametrize(("seed", "crash", "recovery_bars"), [(0, 0.25, 60), (1, 0.35, 120), (2, 0.15, 30)])
def test_the_trend_cut_comes_off_with_the_recovery(seed: int, crash: float, recovery_bars: int) -> None:
    returns, recovered = _market(seed, crash, recovery_bars)
    base = RiskConfig(
        halt_drawdown=0.95,
        loss_streak=1000,
        reduce_drawdown=0.9,  # only the leverage rule: the trend cut against the same rule without it
        var_breach_streak=None,
        reduce_on_correlation_shock=False,
        deterministic_refits=True,
        rate_limit_per_s=None,
        tracker=TrackerConfig(method="fhs_ewma"),
    )
    trend = dataclasses.replace(base, leverage=dataclasses.replace(base.leverage, trend_halflife=50))
    plain, cut = _run_config(base, returns), _run_config(trend, returns)
    ratios = np.array(
        [c.leverage / p.leverage if p.leverage > 0 else 1.0 for p, c in zip(plain, cut, strict=True)]
    )
    assert set(np.round(ratios, 12)) <= {0.5, 1.0}  # the cut is the factor or nothing
    assert np.all(ratios[305:325] == 0.5)  # the crash: below the trend, leverage x trend_factor
    assert np.all(ratios[recovered:] == 1.0)  # back at the peak the cut is off, and stays off
