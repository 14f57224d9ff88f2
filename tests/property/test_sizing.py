"""Properties of position sizing and leverage: sizes are non-negative and never exceed their caps."""

from __future__ import annotations

import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st

from advanced_risk.config import LeverageConfig
from advanced_risk.risk.leverage import VolatilityTargetLeverage
from advanced_risk.risk.sizing import KellySizer, PositionSizer, Side

_REL = 1e-9
balances = st.floats(0.0, 1e9)
prices = st.floats(1e-4, 1e6)
atrs = st.floats(1e-6, 1e4)
risks = st.floats(1e-4, 1.0)
fractions = st.floats(1e-3, 10.0)
leverages = st.floats(0.0, 20.0)
sides = st.sampled_from(list(Side))


@given(balances, atrs, prices, risks, st.floats(0.1, 10.0), fractions, leverages)
@settings(max_examples=300)
def test_size_is_non_negative_and_within_risk_budget_and_position_cap(
    balance: float, atr: float, price: float, risk: float, mult: float, frac: float, leverage: float
) -> None:
    sizer = PositionSizer(risk_per_trade=risk, atr_multiplier=mult, max_position_fraction=frac)
    units = sizer.calculate_size(balance, atr, price, leverage=leverage)
    assert units >= 0.0
    assert units * price <= balance * frac * leverage * (1 + _REL) + 1e-12
    assert units * mult * atr <= balance * risk * (1 + _REL) + 1e-12


@given(balances, prices, st.floats(1e-6, 1e4), risks, leverages)
def test_size_with_explicit_stop_never_loses_more_than_the_budget(
    balance: float, price: float, stop_points: float, risk: float, leverage: float
) -> None:
    plan = PositionSizer(risk_per_trade=risk).plan(
        balance, 0.0, price, stop_points=stop_points, leverage=leverage
    )
    assert plan.units >= 0.0
    assert plan.risk_amount <= balance * risk * (1 + _REL) + 1e-12


@given(st.floats(1.0, 1e4), atrs, sides, st.lists(st.floats(1e-2, 1e6), min_size=1, max_size=30))
def test_trailing_stop_never_loosens(entry: float, atr: float, side: Side, path: list[float]) -> None:
    sizer = PositionSizer()
    stop = sizer.stop_level(entry, atr, side)
    for price in path:
        new = sizer.update_trailing_stop(stop, price, atr, side)
        assert (new >= stop) if side is Side.LONG else (new <= stop)
        stop = new


@given(st.floats(0.0, 1.0), st.floats(1e-6, 1e6), st.floats(1e-6, 1e6), st.floats(1e-3, 1.0), st.floats(0, 5))
def test_kelly_size_lies_between_zero_and_the_cap(
    p: float, win: float, loss: float, fraction: float, cap: float
) -> None:
    size = KellySizer(fraction=fraction, cap=cap).size(p, win, loss)
    assert 0.0 <= size <= cap


@given(
    st.floats(0.0, 50.0),
    st.floats(0.0, 50.0),
    st.floats(1e-3, 2.0),
    st.floats(0.0, 3.0),
    st.floats(0.0, 5.0),
    st.floats(0.0, 1.0),
    st.booleans(),
)
@settings(max_examples=300)
def test_leverage_is_non_increasing_in_volatility_and_within_its_bounds(
    vol_a: float,
    vol_b: float,
    target: float,
    lo: float,
    extra: float,
    factor: float,
    shock: bool,
) -> None:
    cfg = LeverageConfig(
        target_volatility=target, min_leverage=lo, max_leverage=lo + extra + 1e-3, shock_factor=factor
    )
    rule = VolatilityTargetLeverage(cfg)
    low_vol, high_vol = sorted((vol_a, vol_b))
    calm = rule.leverage(low_vol, correlation_shock=shock)
    wild = rule.leverage(high_vol, correlation_shock=shock)
    assert wild <= calm
    for lev in (calm, wild):
        assert cfg.min_leverage <= lev <= cfg.max_leverage
    assert rule.leverage(low_vol, correlation_shock=True) <= rule.leverage(low_vol)
    trend = VolatilityTargetLeverage(dataclasses.replace(cfg, trend_factor=factor))
    cut = trend.leverage(low_vol, below_trend=True, correlation_shock=shock)
    assert cfg.min_leverage <= cut <= trend.leverage(low_vol, correlation_shock=shock)  # never raises it
