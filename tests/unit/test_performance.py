from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

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
