from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from advanced_risk.errors import InvalidInputError
from advanced_risk.measures import (
    annualised_return,
    calmar_ratio,
    drawdown_series,
    log_returns,
    max_drawdown,
    sharpe_ratio,
    simple_returns,
    sortino_ratio,
    turnover,
)
from advanced_risk.measures.performance import _drawdown_series, _drawdown_series_python


def test_simple_and_log_returns_match_pandas_on_sp500(sp500_stocks: pd.DataFrame) -> None:
    prices = sp500_stocks.iloc[:500]
    np.testing.assert_allclose(simple_returns(prices.to_numpy()), prices.pct_change().iloc[1:], rtol=1e-12)
    np.testing.assert_allclose(
        log_returns(prices.to_numpy()), np.log(prices).diff().iloc[1:], rtol=1e-12, atol=1e-15
    )


def test_max_drawdown_matches_hand_computed_equity_curve() -> None:
    # equity: 1.1, 0.55, 0.66, 1.32 -> worst fall from 1.1 to 0.55 = 50 %
    assert max_drawdown([0.1, -0.5, 0.2, 1.0]) == pytest.approx(0.5, abs=1e-15)
    np.testing.assert_allclose(drawdown_series([0.1, -0.5, 0.2, 1.0]), [0.0, 0.5, 0.4, 0.0], atol=1e-15)


def test_drawdown_kernel_python_and_jit_agree() -> None:
    r = np.random.default_rng(1).normal(0, 0.02, 1000)
    np.testing.assert_array_equal(_drawdown_series(r), _drawdown_series_python(r))


def test_sharpe_matches_numpy_definition() -> None:
    r = np.random.default_rng(2).normal(0.0005, 0.01, 1000)
    expected = math.sqrt(252) * (r.mean() - 0.0001) / (r - 0.0001).std(ddof=1)
    assert sharpe_ratio(r, risk_free=0.0001) == pytest.approx(expected, rel=1e-12)


def test_sortino_uses_downside_deviation_against_target() -> None:
    r = np.array([0.02, -0.01, 0.03, -0.02])
    downside = math.sqrt((0.01**2 + 0.02**2) / 4)
    assert sortino_ratio(r, periods_per_year=1) == pytest.approx(r.mean() / downside, rel=1e-12)


def test_sortino_is_infinite_without_downside() -> None:
    assert sortino_ratio([0.01, 0.02]) == math.inf


def test_annualised_return_is_geometric() -> None:
    r = np.full(252, 0.001)
    assert annualised_return(r) == pytest.approx(1.001**252 - 1, rel=1e-12)


def test_annualised_return_after_ruin_is_minus_one() -> None:
    assert annualised_return([0.1, -1.0, 0.2]) == -1.0


def test_calmar_is_annual_return_over_max_drawdown() -> None:
    r = np.random.default_rng(3).normal(0.0005, 0.01, 756)
    assert calmar_ratio(r) == pytest.approx(annualised_return(r) / max_drawdown(r), rel=1e-12)


def test_turnover_counts_two_way_weight_changes() -> None:
    w = np.array([[0.5, 0.5, 0.0], [0.2, 0.5, 0.3], [0.2, 0.5, 0.3]])
    assert turnover(w) == pytest.approx((0.6 + 0.0) / 2, abs=1e-15)


def test_zero_volatility_sharpe_is_zero() -> None:
    assert sharpe_ratio([0.0, 0.0, 0.0]) == 0.0


# ----------------------------------------------------------------------------- degenerate input
@pytest.mark.parametrize("measure", [max_drawdown, drawdown_series, annualised_return, calmar_ratio])
def test_a_return_below_minus_one_is_refused_naming_the_index(measure: object) -> None:
    # the reported bug: max_drawdown([0.1, -2.0]) was 2.0, a "drawdown" of 200 % of the peak
    with pytest.raises(InvalidInputError, match=r"returns must be >= -1.*got -2\.0 at index 1"):
        measure([0.1, -2.0])  # type: ignore[operator]


def test_a_return_of_minus_one_is_ruin_with_drawdown_one_from_then_on() -> None:
    # by hand: equity 1.1, 0, 0 -> drawdowns 0, 1, 1
    np.testing.assert_array_equal(drawdown_series([0.1, -1.0, 0.5]), [0.0, 1.0, 1.0])
    assert max_drawdown([0.1, -1.0, 0.5]) == 1.0
    assert annualised_return([0.1, -1.0, 0.5]) == -1.0


@pytest.mark.parametrize("value", [0.01, -0.003, 0.1, 1e-5, 0.7, 3.0])
@pytest.mark.parametrize("n", [3, 10, 100, 1000, 100_000])
def test_sharpe_of_constant_returns_is_the_zero_volatility_value(value: float, n: int) -> None:
    r = np.full(n, value)
    # the reported bug: rounding in the mean left a std of ~1e-18 and a Sharpe near 1e17
    assert sharpe_ratio(r) == 0.0
    assert sharpe_ratio(r, risk_free=0.002) == 0.0


@pytest.mark.parametrize("value", [0.01, 0.1, 1e-5, 3.0])
def test_sortino_of_constant_returns_is_inf_zero_or_minus_sqrt_p(value: float) -> None:
    r = np.full(250, value)
    assert sortino_ratio(r) == math.inf  # no downside, a gain
    assert sortino_ratio(r, target=value) == 0.0
    # by hand: every excess is -v, downside deviation v, mean -v: sqrt(252) * (-v) / v
    assert sortino_ratio(-r) == pytest.approx(-math.sqrt(252), rel=1e-12)


def test_returns_equal_to_the_target_up_to_rounding_give_zero() -> None:
    # a price compounding at exactly 1 % a bar: its simple returns are 0.01 up to rounding
    r = simple_returns(100.0 * 1.01 ** np.arange(300))
    assert np.ptp(r) > 0.0  # not exactly constant
    assert sharpe_ratio(r) == 0.0
    assert sharpe_ratio(r, risk_free=0.01) == 0.0
    assert sortino_ratio(r, target=0.01) == 0.0


def test_a_small_but_real_spread_is_not_mistaken_for_rounding_noise() -> None:
    r = np.array([0.01, 0.01 + 1e-9, 0.01 - 1e-9, 0.01])  # varies in the 7th significant digit
    expected = math.sqrt(252) * r.mean() / r.std(ddof=1)  # numpy's definition, as in the test above
    assert sharpe_ratio(r) == pytest.approx(expected, rel=1e-6)
    target = 0.01 + 5e-10
    downside = math.sqrt(np.mean(np.minimum(r - target, 0.0) ** 2))
    expected = math.sqrt(252) * (r - target).mean() / downside
    assert expected < -1.0
    assert sortino_ratio(r, target=target) == pytest.approx(expected, rel=1e-6)


def test_returns_beyond_max_abs_return_are_refused() -> None:
    with pytest.raises(InvalidInputError, match=r"returns must be within \[-1e\+06, 1e\+06\].*index 1"):
        sharpe_ratio([0.01, 1e300])
