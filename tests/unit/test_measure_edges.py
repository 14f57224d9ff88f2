"""Edges of the measures and components found by an adversarial review.

Each case was a raw ``OverflowError``/``ValueError``, a silent cast or a wrong number before; the
expected values are hand-computed (log-space identities) or refusals naming the field.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from advanced_risk.config import HedgeConfig, LeverageConfig
from advanced_risk.errors import InvalidInputError
from advanced_risk.measures.allocation import equal_weights
from advanced_risk.measures.indicators import rsi
from advanced_risk.measures.kelly import kelly_discrete
from advanced_risk.measures.performance import (
    annualised_return,
    calmar_ratio,
    drawdown_series,
    max_drawdown,
)
from advanced_risk.measures.validation import as_array
from advanced_risk.measures.volatility import wilder_atr
from advanced_risk.risk.hedging import HedgingStrategy
from advanced_risk.risk.leverage import VolatilityTargetLeverage
from advanced_risk.risk.tracker import RiskTracker


def test_drawdown_holds_where_the_equity_overflows() -> None:
    # 60 bars of +1e6 put the equity at 1e360 (inf as a product); the last bar halves it
    assert max_drawdown([1e6] * 60 + [-0.5]) == pytest.approx(0.5, rel=1e-12)
    assert np.all(np.isfinite(drawdown_series([1.0] * 1100 + [-0.25])))


def test_drawdown_series_matches_the_product_form_and_ruin_stays_one() -> None:
    r = np.array([0.1, -0.5, 0.2, -1.0, 0.3])
    equity = np.cumprod(1 + r[:3])
    expected = 1 - equity / np.maximum.accumulate(np.r_[1.0, equity])[1:]
    np.testing.assert_allclose(drawdown_series(r)[:3], expected, rtol=1e-12)
    assert drawdown_series(r)[3:].tolist() == [1.0, 1.0]


def test_annualised_return_in_log_space() -> None:
    # 1.5 ** 2000 overflows a float; annualised over 2000 daily bars it is 1.5 ** 252 - 1
    assert annualised_return([0.5] * 2000) == pytest.approx(1.5**252 - 1, rel=1e-9)
    assert annualised_return([0.1, -0.05], periods_per_year=2) == pytest.approx(0.045, rel=1e-12)
    assert annualised_return([0.1, -1.0]) == -1.0
    assert annualised_return([0.01, -0.005, 0.02], periods_per_year=252 * 390) == math.inf
    assert math.isfinite(calmar_ratio([0.5] * 2000 + [-0.1]))


def test_equal_weights_refuses_an_absurd_count() -> None:
    with pytest.raises(InvalidInputError, match="n_assets"):
        equal_weights(10**20)
    with pytest.raises(InvalidInputError, match="n_assets"):
        equal_weights(True)  # type: ignore[arg-type]


def test_kelly_refuses_a_ratio_whose_fraction_overflows() -> None:
    with pytest.raises(InvalidInputError, match="win_loss_ratio"):
        kelly_discrete(0.5, 1e-310)
    assert kelly_discrete(1.0, 1e-310) == 1.0


@pytest.mark.parametrize("bad", [[10**400] * 30, np.array([1 + 2j] * 30), pd.Series([1 + 0j] * 30)])
def test_indicators_refuse_huge_ints_and_complex(bad: object) -> None:
    with pytest.raises(InvalidInputError):
        rsi(bad)  # type: ignore[arg-type]


def test_atr_refuses_a_huge_int_naming_the_field() -> None:
    ok = [10.0] * 20
    with pytest.raises(InvalidInputError, match="high"):
        wilder_atr([10**400] * 20, ok, ok)


def test_as_array_refuses_complex_rather_than_dropping_the_imaginary_part() -> None:
    with pytest.raises(InvalidInputError, match="complex"):
        as_array(np.array([1 + 2j, 3.0]), "x", ndim=1)
    with pytest.raises(InvalidInputError, match="x"):
        as_array([1 + 0j, 2.0], "x", ndim=1)
    assert as_array([1, 2.5], "x", ndim=1).tolist() == [1.0, 2.5]


def test_leverage_validates_long_run_vol() -> None:
    lev = VolatilityTargetLeverage(LeverageConfig(relative_target=1.0))
    for bad in (math.nan, math.inf, -0.1, "0.2"):
        with pytest.raises(InvalidInputError, match="long_run_vol"):
            lev.target(bad)  # type: ignore[arg-type]
    assert lev.target(None) == LeverageConfig().target_volatility
    assert lev.target(0.0) == 0.0


def test_hedge_halted_must_be_a_bool() -> None:
    hedge = HedgingStrategy(config=HedgeConfig())
    with pytest.raises(InvalidInputError, match="halted"):
        hedge.execute_hedge(0.0, halted="no")  # type: ignore[arg-type]
    assert hedge.execute_hedge(0.0, halted=np.bool_(True)).ratio == 1.0


def test_tracker_remove_assets_and_recent_returns_check_their_arguments() -> None:
    tracker = RiskTracker(3)
    tracker.update(np.array([0.01, -0.02, 0.005]))
    for bad in ([0.7], [True], ["a"], [0, 0], [3], [-1], [0, 1, 2]):
        with pytest.raises(InvalidInputError, match="indices"):
            tracker.remove_assets(bad)
    tracker.remove_assets([])
    assert tracker.recent_returns(0).shape == (0, 3)
    for bad_rows in (-1, 1.5, True, "2"):
        with pytest.raises(InvalidInputError, match="n_rows"):
            tracker.recent_returns(bad_rows)  # type: ignore[arg-type]
    tracker.remove_assets([1])
    assert tracker.recent_returns().tolist() == [[0.01, 0.005]]
