"""StrategyDrawdown: the reference book's drawdown, checked against hand computations."""

from __future__ import annotations

from collections import deque

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from advanced_risk.errors import InvalidInputError
from advanced_risk.risk.strategy_drawdown import StrategyDrawdown


def test_the_reference_book_earns_the_weights_set_at_the_previous_bar() -> None:
    dd = StrategyDrawdown(window=None)
    assert dd.update(np.array([0.1, 0.1])) == 0.0  # no weights yet: earns nothing
    dd.set_weights(np.array([0.5, 0.5]))
    assert dd.update(np.array([0.10, -0.10])) == 0.0  # 0.5 * 0.1 - 0.5 * 0.1 = 0
    dd.set_weights(np.array([1.0, 0.0]))
    assert dd.update(np.array([-0.20, 0.5])) == pytest.approx(0.20)  # equity 1 -> 0.8
    dd.set_weights(np.array([2.0, 0.0]))
    # 0.8 * (1 + 2 * 0.1) = 0.96: drawdown 4 %
    assert dd.update(np.array([0.10, 0.0])) == pytest.approx(0.04)


def test_the_high_water_mark_rolls_with_the_window() -> None:
    dd = StrategyDrawdown(window=3)
    dd.set_weights(np.array([1.0]))
    for r in (0.0, -0.5, 0.0, 0.0):  # the peak (1.0) leaves the 3-bar window after 3 more bars
        dd.update(np.array([r]))
    assert dd.drawdown == 0.0


def test_a_restart_is_seeded_with_the_accounts_drawdown_and_a_ruin_floors_at_one() -> None:
    dd = StrategyDrawdown(window=252, initial_drawdown=0.3)
    assert dd.drawdown == pytest.approx(0.3)
    dd.set_weights(np.array([3.0]))
    assert dd.update(np.array([-0.5])) == pytest.approx(1.0)  # a -150 % bar: equity floored


def test_a_universe_change_keeps_the_weights_of_the_assets_that_stay() -> None:
    dd = StrategyDrawdown()
    dd.set_weights(np.array([0.1, 0.2, 0.3]))
    dd.reshape([1], 2)
    np.testing.assert_array_equal(dd.weights, [0.1, 0.3, 0.0, 0.0])


def test_nan_weights_and_returns_count_as_zero_and_bad_settings_are_refused() -> None:
    dd = StrategyDrawdown(window=None)
    dd.set_weights(np.array([np.nan, 1.0]))
    assert dd.update(np.array([0.5, np.nan])) == 0.0
    with pytest.raises(InvalidInputError, match="initial_drawdown"):
        StrategyDrawdown(initial_drawdown=1.5)
    with pytest.raises(InvalidInputError, match="window"):
        StrategyDrawdown(window=0)


def test_the_trend_is_the_ewma_of_log_equity_by_hand() -> None:
    dd = StrategyDrawdown(window=None, trend_halflife=2)
    a = 0.5**0.5
    dd.set_weights(np.array([1.0]))
    trend, equity = 0.0, 1.0
    for r in (0.02, 0.03, -0.01, -0.04, -0.02, 0.05, 0.06):
        dd.update(np.array([r]))
        equity *= 1.0 + r
        trend = a * trend + (1.0 - a) * np.log(equity)
        assert dd.below_trend == (np.log(equity) < trend), r


def test_no_trend_without_a_half_life_and_a_restart_in_drawdown_starts_below_it() -> None:
    plain = StrategyDrawdown(window=None, initial_drawdown=0.3)
    assert not plain.below_trend  # no trend followed
    restarted = StrategyDrawdown(window=None, initial_drawdown=0.3, trend_halflife=50)
    assert restarted.below_trend  # log 0.7 < the seed peak's log 1: as cautious as before the restart
    assert not StrategyDrawdown(window=None, trend_halflife=50).below_trend  # a fresh start is at its trend
    with pytest.raises(InvalidInputError, match="trend_halflife"):
        StrategyDrawdown(trend_halflife=0)


def test_a_steady_decline_goes_below_the_trend_and_a_recovery_comes_back_above() -> None:
    dd = StrategyDrawdown(window=None, trend_halflife=20)
    dd.set_weights(np.array([1.0]))
    states = [(dd.update(np.array([r])), dd.below_trend)[1] for r in [-0.005] * 60 + [0.01] * 60]
    assert all(states[5:60])  # a slow bear: below the trend throughout
    assert not any(states[100:])  # the recovery: back above it, the cut comes off


@given(
    window=st.one_of(st.none(), st.integers(1, 30)),
    seed_dd=st.floats(0.0, 0.9),
    returns=st.lists(st.one_of(st.floats(-0.5, 0.5), st.just(float("nan"))), min_size=1, max_size=120),
)
@settings(max_examples=200, deadline=None)
def test_the_rolling_peak_and_the_return_equal_the_plain_formulation(
    window: int | None, seed_dd: float, returns: list[float]
) -> None:
    """The monotonic queue against ``max`` over a ``deque(maxlen=window)``; the return against
    ``np.nansum`` (bit for bit)."""
    dd = StrategyDrawdown(window=window, initial_drawdown=seed_dd)
    dd.set_weights(np.array([0.7, -0.4]))
    peaks: deque[float] = deque([1.0], maxlen=window)
    equity = max(1.0 - seed_dd, 1e-12)
    peaks.append(equity)
    for r in returns:
        bar = np.array([r, -r / 2.0])
        equity = max(equity * (1.0 + float(np.nansum(np.array([0.7, -0.4]) * bar))), 1e-12)
        peaks.append(equity)
        assert dd.update(bar) == min(max(1.0 - equity / max(peaks), 0.0), 1.0)


def test_a_trend_half_life_too_large_for_a_float_is_an_equal_weight_mean_not_an_overflow() -> None:
    """10**400 is a valid integer half-life: the decay is its float limit, 1 (the trend stays at the
    seed), rather than ``OverflowError`` at the first bar of a manager."""
    s = StrategyDrawdown(window=None, trend_halflife=10**400)
    s.set_weights(np.array([1.0]))
    s.update(np.array([-0.10]))
    assert s.below_trend  # log 0.9 < M = 0 (a = 1: the seed)
    with pytest.raises(InvalidInputError, match="trend_halflife"):
        StrategyDrawdown(trend_halflife=0)
