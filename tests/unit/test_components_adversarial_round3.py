"""Adversarial round 3: the risk components used alone, checked against independent references.

References: TA-Lib's ``ATR`` (when installed) and a plain-Python Wilder recursion; the closed-form
Kelly fractions ``p - (1 - p) / b`` and ``mu / sigma**2``; ``min(cap, max(floor, target / vol))`` by
hand for volatility targeting. Found in this round (each has a regression test below):

- ``StreamingATR.remove_assets([-1])`` removed nothing (``setdiff1d`` ignores it), ``[5]`` on three
  assets was ignored, ``[0.7]`` removed asset 0; ``StreamingATR(-1, 14)`` / ``add_assets(1.5)`` gave
  raw NumPy errors and ``update`` of lists an ``AttributeError``;
- ``volatility_target_leverage(0.0, 0.1, max_leverage=3)`` returned the int 3;
- ``LongRunVolatility().update(1e160)`` returned inf (the square overflowed);
- ``kelly_multi_asset([1.0], [[1e-320]])`` returned ``[inf]`` (the scalar versions refuse);
- ``KellySizer().size(0.5, 5e-324, 1e300)`` and ``size(0.6, 1e308, 1e-308)`` raised about a
  ``win_loss_ratio`` never passed, ``size_from_trades([1e308, 1e308, -1.0])`` about ``avg_win``.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from advanced_risk.config import LeverageConfig
from advanced_risk.errors import InvalidInputError
from advanced_risk.measures.kelly import (
    fractional_kelly,
    kelly_continuous,
    kelly_discrete,
    kelly_multi_asset,
)
from advanced_risk.measures.stop_kernels import position_sizes_kernel, trail_stops_kernel
from advanced_risk.measures.volatility import wilder_atr
from advanced_risk.risk.atr import StreamingATR
from advanced_risk.risk.hedging import HedgingStrategy
from advanced_risk.risk.leverage import (
    LongRunVolatility,
    VolatilityTargetLeverage,
    volatility_target_leverage,
)
from advanced_risk.risk.sizing import KellySizer, PositionSizer

try:
    import talib
except ImportError:  # pragma: no cover - optional reference
    talib = None


def _hand_wilder(high: list[float], low: list[float], close: list[float], n: int) -> list[float]:
    """Wilder's ATR in plain Python: TR[t] for t >= 1, ATR[n] = mean(TR[1..n]), then smoothed."""
    out = [math.nan] * len(close)
    trs = [
        max(high[t] - low[t], abs(high[t] - close[t - 1]), abs(low[t] - close[t - 1]))
        for t in range(1, len(close))
    ]
    if len(trs) < n:
        return out
    atr = sum(trs[:n]) / n
    out[n] = atr
    for t in range(n + 1, len(close)):
        atr = (atr * (n - 1) + trs[t - 1]) / n
        out[t] = atr
    return out


def _bars(rng: np.random.Generator, size: int, scale: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    close = scale * np.exp(np.cumsum(rng.normal(0.0, 0.02, size)))
    high = close * (1.0 + rng.uniform(0.0, 0.03, size))
    low = close * (1.0 - rng.uniform(0.0, 0.03, size))
    gap = rng.random(size) < 0.1  # gap bars: high == low == close
    high[gap] = low[gap] = close[gap]
    return high, low, close


# -- ATR ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("scale", [1e-6, 1.0, 100.0, 1e12])
@pytest.mark.parametrize("period", [1, 3, 14])
def test_atr_matches_talib_and_a_hand_wilder_recursion(scale: float, period: int) -> None:
    rng = np.random.default_rng(period)
    high, low, close = _bars(rng, 60, scale)
    hand = np.array(_hand_wilder(high.tolist(), low.tolist(), close.tolist(), period))
    batch = wilder_atr(high, low, close, n=period)
    np.testing.assert_allclose(batch, hand, rtol=1e-12, atol=0.0, equal_nan=True)
    if talib is not None:
        np.testing.assert_allclose(
            batch, talib.ATR(high, low, close, timeperiod=period), rtol=1e-10, equal_nan=True
        )
    streaming = StreamingATR(1, period)
    values = []
    for h, lo, c in zip(high, low, close, strict=True):
        streaming.update(np.array([h]), np.array([lo]), np.array([c]))
        values.append(streaming.value[0])
    np.testing.assert_allclose(values, hand, rtol=1e-12, atol=0.0, equal_nan=True)
    assert PositionSizer(atr_period=period).latest_atr(high, low, close) == pytest.approx(hand[-1], rel=1e-12)


def test_atr_of_flat_prices_and_gap_bars_is_zero_and_int_bars_match() -> None:
    flat = [5.0] * 20
    assert PositionSizer(atr_period=14).latest_atr(flat, flat, flat) == 0.0
    high, low, close = list(range(12, 32)), list(range(10, 30)), list(range(11, 31))
    hand = _hand_wilder([float(x) for x in high], [float(x) for x in low], [float(x) for x in close], 5)
    assert PositionSizer(atr_period=5).latest_atr(high, low, close) == pytest.approx(hand[-1], rel=1e-12)
    streaming = StreamingATR(1, 5)
    for h, lo, c in zip(high, low, close, strict=True):
        streaming.update(np.array([h]), np.array([lo]), np.array([c]))  # int64 arrays
    assert streaming.value[0] == pytest.approx(hand[-1], rel=1e-12)


def test_streaming_atr_with_assets_joining_and_leaving_matches_each_assets_own_history() -> None:
    rng = np.random.default_rng(11)
    period, bars = 4, 30
    series = [_bars(rng, bars, s) for s in (1.0, 50.0, 1e-6, 1e12)]
    atr = StreamingATR(2, period)
    live = [0, 1]  # which series each column holds
    start = {0: 0, 1: 0}
    for t in range(bars):
        if t == 8:  # series 2 and 3 join
            atr.add_assets(2)
            live += [2, 3]
            start.update({2: 8, 3: 8})
        if t == 15:  # series 0 leaves
            atr.remove_assets([0])
            live.remove(0)
        atr.update(*(np.array([series[k][j][t] for k in live]) for j in range(3)))
    for col, k in enumerate(live):
        h, lo, c = (x[start[k] :] for x in series[k])
        hand = _hand_wilder(h.tolist(), lo.tolist(), c.tolist(), period)
        assert atr.value[col] == pytest.approx(hand[-1], rel=1e-12)
    assert atr.ready.all()


@pytest.mark.parametrize("bad", [[-1], [3], [0.7], [True], ["a"], [0, 0], [[0]], [[0, 1], [2]]])
def test_streaming_atr_remove_assets_refuses_bad_indices_and_changes_nothing(bad: object) -> None:
    atr = StreamingATR(3, 2)
    atr.update([2.0, 3.0, 4.0], [1.0, 2.0, 3.0], [1.5, 2.5, 3.5])  # lists are accepted
    before = atr.prev_close.copy()
    with pytest.raises(InvalidInputError, match="indices"):
        atr.remove_assets(bad)  # type: ignore[arg-type]
    assert atr.prev_close.tolist() == before.tolist()
    atr.remove_assets([])
    atr.remove_assets(np.array([2], dtype=np.uint8))
    assert atr.prev_close.tolist() == [1.5, 2.5]
    atr.remove_assets([0, 1])  # all may leave
    assert atr.counts.size == 0


def test_streaming_atr_counts_are_checked() -> None:
    for bad in (-1, 1.5, True, "2"):
        with pytest.raises(InvalidInputError, match="n_assets"):
            StreamingATR(bad, 14)  # type: ignore[arg-type]
        with pytest.raises(InvalidInputError, match="count"):
            StreamingATR(1, 14).add_assets(bad)  # type: ignore[arg-type]
    atr = StreamingATR(np.int64(0), 3)  # type: ignore[arg-type]
    atr.add_assets(np.int32(2))  # type: ignore[arg-type]
    assert atr.counts.shape == (2,)


def test_streaming_atr_nan_policy_is_the_documented_one() -> None:
    """Not validated (hot path): a NaN high poisons that asset only; a NaN close skips one range."""
    atr = StreamingATR(2, 1)
    atr.update([2.0, 2.0], [1.0, 1.0], [1.5, math.nan])
    atr.update([math.nan, 2.0], [1.0, 1.0], [1.5, 1.5])
    assert math.isnan(atr.value[0])
    assert atr.counts[1] == 0
    atr.update([2.0, 2.0], [1.0, 1.0], [1.5, 1.5])
    assert math.isnan(atr.value[0])
    assert atr.value[1] == 1.0
    assert "NaN policy" in (StreamingATR.__doc__ or "")


# -- Kelly ----------------------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    p=st.floats(0.0, 1.0),
    win=st.floats(1e-6, 1e6),
    loss=st.floats(1e-6, 1e6),
    fraction=st.floats(0.01, 1.0),
    cap=st.floats(0.0, 5.0),
)
def test_kelly_sizer_is_the_clipped_closed_form(
    p: float, win: float, loss: float, fraction: float, cap: float
) -> None:
    b = win / loss
    full = p - (1.0 - p) / b
    got = KellySizer(fraction=fraction, cap=cap).size(p, win, loss)
    assert 0.0 <= got <= cap
    assert got == pytest.approx(min(max(fraction * full, 0.0), cap), rel=1e-12, abs=1e-15)
    assert kelly_discrete(p, b) == pytest.approx(full, rel=1e-12, abs=1e-15)


@settings(max_examples=200, deadline=None)
@given(
    mu=st.floats(-1.0, 1.0),
    sigma=st.floats(1e-4, 2.0),
    fraction=st.floats(0.01, 1.0),
    cap=st.floats(0.0, 5.0),
)
def test_continuous_kelly_is_mu_over_sigma_squared_clipped(
    mu: float, sigma: float, fraction: float, cap: float
) -> None:
    assert kelly_continuous(mu, sigma) == pytest.approx(mu / sigma**2, rel=1e-12, abs=1e-300)
    got = KellySizer(fraction=fraction, cap=cap).size_continuous(mu, sigma)
    assert 0.0 <= got <= cap
    assert got == pytest.approx(min(max(fraction * mu / sigma**2, 0.0), cap), rel=1e-12, abs=1e-300)
    assert fractional_kelly(mu / sigma**2, fraction, cap) == pytest.approx(got, rel=1e-12, abs=1e-300)


def test_kelly_sizer_takes_the_limit_at_ratios_beyond_the_float_range() -> None:
    sizer = KellySizer(fraction=0.5, cap=1.0)
    assert sizer.size(0.6, 1e308, 1e-308) == 0.3  # b = inf: full Kelly p
    assert sizer.size(0.5, 5e-324, 1e300) == 0.0  # b = 0: -inf, no position
    assert sizer.size(0.5, 1e-300, 1e10) == 0.0  # (1 - p) / b overflows
    assert sizer.size(1.0, 5e-324, 1e300) == 0.5  # a sure win: 1 for every b
    assert sizer.size_from_trades([1e308, 1e308, -1.0]) == pytest.approx(0.5 * (2 / 3 - (1 / 3) / 1e308))
    assert sizer.size_from_trades([5e-324, -1e300]) == 0.0
    assert sizer.size_from_trades([1.0, 2.0, -1.0]) == pytest.approx(0.5 * (2 / 3 - (1 / 3) / 1.5))
    for bad in (math.nan, math.inf, -1.0):
        with pytest.raises(InvalidInputError, match="avg_win"):
            sizer.size(0.5, bad, 1.0)


def test_kelly_multi_asset_matches_a_solve_and_refuses_an_overflow() -> None:
    rng = np.random.default_rng(3)
    a = rng.normal(size=(30, 30))
    cov = a @ a.T / 30 + 0.01 * np.eye(30)
    mu = rng.normal(0.0, 0.01, 30)
    np.testing.assert_allclose(kelly_multi_asset(mu, cov), np.linalg.solve(cov, mu), rtol=1e-8)
    with pytest.raises(InvalidInputError, match="cov"):
        kelly_multi_asset([1.0], [[1e-320]])
    with pytest.raises(InvalidInputError, match="mu"):
        kelly_multi_asset([math.nan], [[1.0]])


# -- volatility-target leverage ------------------------------------------------------------------------

VOL = st.one_of(st.floats(0.0, 10.0), st.sampled_from([0.0, 5e-324, 1e-300, 1e300]))


@settings(max_examples=300, deadline=None)
@given(
    vol=VOL,
    vol2=VOL,
    target=st.floats(1e-4, 1.0),
    lo=st.floats(0.0, 1.0),
    span=st.floats(1e-3, 5.0),
    shock=st.booleans(),
    trend=st.booleans(),
)
def test_leverage_is_min_cap_target_over_vol_bounded_and_monotone(
    vol: float, vol2: float, target: float, lo: float, span: float, shock: bool, trend: bool
) -> None:
    hi = lo + span
    rule = VolatilityTargetLeverage(
        LeverageConfig(target_volatility=target, min_leverage=lo, max_leverage=hi)
    )
    by_hand = hi if vol == 0.0 else min(hi, max(lo, target / vol))
    assert rule.leverage(vol) == by_hand
    got = rule.leverage(vol, correlation_shock=shock, below_trend=trend)
    assert type(got) is float
    assert lo <= got <= hi
    assert got <= by_hand  # a cut never raises it
    a, b = sorted((vol, vol2))
    assert rule.leverage(b, correlation_shock=shock, below_trend=trend) <= rule.leverage(
        a, correlation_shock=shock, below_trend=trend
    )


def test_leverage_is_a_float_when_bounds_are_ints_and_refuses_bad_vols() -> None:
    assert type(volatility_target_leverage(0.0, 0.1, max_leverage=3)) is float
    assert type(volatility_target_leverage(1.0, 0.1, min_leverage=1, max_leverage=3)) is float
    assert volatility_target_leverage(0, 0.1, max_leverage=3) == 3.0  # an int vol
    for bad in (math.nan, math.inf, -1e-12, "0.2", None):
        with pytest.raises(InvalidInputError, match="realised_vol"):
            volatility_target_leverage(bad)  # type: ignore[arg-type]


def test_long_run_volatility_refuses_a_vol_whose_square_overflows() -> None:
    lr = LongRunVolatility(halflife=10)
    assert lr.update(0.2) == 0.2
    with pytest.raises(InvalidInputError, match="vol"):
        lr.update(1e160)
    assert lr.value == 0.2  # unchanged
    assert math.isfinite(lr.update(1e150))


# -- position sizing ------------------------------------------------------------------------------------

PRICE = st.one_of(st.floats(1e-6, 1e12), st.sampled_from([1e-6, 1.0, 1e12]))


@settings(max_examples=300, deadline=None)
@given(
    balance=st.one_of(st.just(0.0), st.floats(1.0, 1e9)),  # no subnormal rounding
    atr=st.floats(1e-8, 1e11),
    atr2=st.floats(1e-8, 1e11),
    price=PRICE,
    risk=st.floats(1e-4, 1.0),
    mult=st.floats(0.1, 10.0),
    cap=st.floats(0.01, 5.0),
    lev=st.one_of(st.just(0.0), st.floats(1e-6, 10.0)),
    short=st.booleans(),
)
def test_plan_respects_the_risk_budget_and_cap_and_puts_the_stop_on_the_right_side(
    balance: float,
    atr: float,
    atr2: float,
    price: float,
    risk: float,
    mult: float,
    cap: float,
    lev: float,
    short: bool,
) -> None:
    sizer = PositionSizer(risk_per_trade=risk, atr_multiplier=mult, max_position_fraction=cap)
    side = "short" if short else "long"
    plan = sizer.plan(balance, atr, price, side=side, leverage=lev)
    assert plan.units >= 0.0
    assert plan.risk_amount <= balance * risk * (1 + 1e-12)
    assert plan.notional <= balance * cap * lev * (1 + 1e-12)
    assert plan.units == pytest.approx(
        min(balance * risk / (mult * atr), balance * cap * lev / price), rel=1e-12
    )
    if short:
        assert plan.stop_price > price or plan.stop_price == pytest.approx(price, rel=1e-15)
        assert plan.stop_price == price + mult * atr
    else:
        assert 0.0 <= plan.stop_price < price or plan.stop_price == pytest.approx(price, rel=1e-15)
    lo, hi = sorted((atr, atr2))  # more volatility: never a larger size
    assert sizer.calculate_size(balance, hi, price, leverage=lev) <= sizer.calculate_size(
        balance, lo, price, leverage=lev
    )


@settings(max_examples=100, deadline=None)
@given(
    path=st.lists(st.floats(1e-3, 1e6), min_size=2, max_size=30),
    atr=st.floats(1e-4, 1e3),
    short=st.booleans(),
)
def test_trailing_stop_only_tightens_and_stays_on_its_side_when_placed(
    path: list[float], atr: float, short: bool
) -> None:
    sizer = PositionSizer(atr_multiplier=2.0)
    side = "short" if short else "long"
    stop = 0.0
    for price in path:
        new = sizer.update_trailing_stop(stop, price, atr, side=side)
        if short:
            assert stop == 0.0 or new <= stop  # a short's stop only moves down
            assert new <= price + 2.0 * atr
        else:
            assert new >= stop  # a long's stop only moves up
            assert new >= max(price - 2.0 * atr, 0.0)
        stop = new
    first = sizer.update_trailing_stop(0.0, path[0], atr, side=side)
    assert (first > path[0]) if short else (first < path[0])
    assert not sizer.stop_hit(first, path[0], side=side)


def test_plan_many_matches_plan_per_asset_for_a_thousand_assets_and_is_fast() -> None:
    rng = np.random.default_rng(7)
    n = 1000
    atr = rng.uniform(1e-3, 5.0, n)
    price = np.exp(rng.uniform(np.log(1e-6), np.log(1e12), n))
    short = rng.random(n) < 0.5
    sizer = PositionSizer(risk_per_trade=0.01, atr_multiplier=3.0, max_position_fraction=0.2)
    units, stops = sizer.plan_many(1e6, atr, price, short=short, leverage=1.5)
    for i in range(0, n, 37):
        plan = sizer.plan(1e6, atr[i], price[i], side="short" if short[i] else "long", leverage=1.5)
        assert (units[i], stops[i]) == (plan.units, plan.stop_price)
    assert (stops[short] > price[short]).all()
    assert (stops[~short] < price[~short]).all()
    start = time.perf_counter()
    for _ in range(200):
        sizer.plan_many(1e6, atr, price, short=short, leverage=1.5)
    assert (time.perf_counter() - start) / 200 < 2e-3  # measured ~70 us
    one_units, one_stop = sizer.plan_many(1e4, [2.5], [100.0], short=["short"])
    assert one_units.tolist() == [100 / 7.5]
    assert one_stop.tolist() == [107.5]


# -- the engine's stop and size kernels, called alone -----------------------------------------------


@settings(max_examples=100, deadline=None)
@given(
    weights=st.lists(st.floats(-1.0, 1.0), min_size=1, max_size=8),
    moves=st.lists(st.floats(-0.2, 0.2), min_size=2, max_size=10),
)
def test_trail_stops_kernel_short_stops_sit_above_and_only_move_down(
    weights: list[float], moves: list[float]
) -> None:
    target = np.array(weights)
    assume((target != 0.0).all())
    n = target.size
    prices = np.full(n, 100.0)
    atr = np.full(n, 1.0)
    ready = np.ones(n, dtype=bool)
    stop, stop_short = np.full(n, np.nan), np.zeros(n, dtype=bool)
    held = np.zeros(n)
    for move in moves:
        prices = prices * (1.0 + move)
        prev = stop.copy()
        _, short, stop, stop_short = trail_stops_kernel(
            target, held, prices, atr, 2.0, ready, prev, stop_short, True
        )
        assert (short == (target < 0)).all()
        assert (stop[short] > prices[short]).all()
        assert (stop[~short] < prices[~short]).all()
        alive = (held != 0.0) & ~np.isnan(prev)
        alive &= np.where(short, prices < prev, prices > prev)
        assert (stop[alive & short] <= prev[alive & short]).all()
        assert (stop[alive & ~short] >= prev[alive & ~short]).all()
        held = target.copy()


@settings(max_examples=100, deadline=None)
@given(
    distance=st.lists(st.floats(0.0, 1e6), min_size=1, max_size=10),
    price=st.floats(1e-6, 1e12),
    at_risk=st.floats(0.0, 1e6),
    capped=st.floats(0.0, 1e9),
)
def test_position_sizes_kernel_never_exceeds_the_risk_budget_or_the_cap(
    distance: list[float], price: float, at_risk: float, capped: float
) -> None:
    d = np.array(distance)
    sizes = position_sizes_kernel(d, np.full(d.size, price), at_risk, capped)
    # relative rounding, plus an absolute allowance for subnormal sizes (capped ~1e-308 currency:
    # a size of 1e-317 units carries far more than 1e-12 relative error, and matters to nobody)
    tiny = 1e-300
    assert (sizes * np.maximum(d, 1e-12) <= at_risk * (1 + 1e-12) + tiny).all()
    assert (sizes * price <= capped * (1 + 1e-12) + tiny).all()


# -- hedging --------------------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    threshold=st.floats(0.0, 0.5),
    width=st.floats(1e-3, 0.5),
    margin_share=st.floats(0.0, 1.0),
    path=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=30),
)
def test_hedge_ratio_is_bounded_hysteretic_and_monotone(
    threshold: float, width: float, margin_share: float, path: list[float]
) -> None:
    halt = min(threshold + width, 1.0)
    assume(halt > threshold)
    hedger = HedgingStrategy(threshold, halt, margin_share * threshold)
    for dd in path:
        was = hedger.active
        preview = hedger.compute_hedge_ratio(dd)
        higher = hedger.compute_hedge_ratio(min(1.0, dd + 0.01))
        assert higher >= preview  # monotone for a given state
        out = hedger.execute_hedge(dd)
        assert out.ratio == preview
        assert 0.0 <= out.ratio <= 1.0
        if was:
            assert out.active == (dd > hedger.release_level)
        else:
            assert out.active == (dd > threshold)
        if dd >= halt:
            assert out.ratio == 1.0
    assert hedger.execute_hedge(0.0, halted=True).ratio == 1.0
