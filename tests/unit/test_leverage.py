"""Volatility-target leverage: formula, caps, monotonicity, shock cut, invalid volatility."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from advanced_risk.config import LeverageConfig, RiskConfig
from advanced_risk.errors import ConfigError, InvalidInputError
from advanced_risk.risk.leverage import (
    LongRunVolatility,
    VolatilityTargetLeverage,
    volatility_target_leverage,
)


@pytest.mark.parametrize(
    ("vol", "expected"),
    [(0.30, 0.5), (0.15, 1.0), (0.10, 1.5), (0.075, 2.0), (0.05, 2.0), (0.60, 0.25), (0.0, 2.0)],
    ids=["2x-target", "at-target", "calm", "at-cap", "capped", "4x-target", "zero-vol-max"],
)
def test_leverage_is_target_over_realised_volatility_capped(vol: float, expected: float) -> None:
    rule = VolatilityTargetLeverage(LeverageConfig(target_volatility=0.15, max_leverage=2.0))
    assert rule.leverage(vol) == pytest.approx(expected, rel=1e-12)


def test_leverage_floor_binds_in_turbulent_markets() -> None:
    rule = VolatilityTargetLeverage(
        LeverageConfig(target_volatility=0.15, min_leverage=0.5, max_leverage=2.0)
    )
    assert rule.leverage(3.0) == 0.5  # 0.05 raw, floored


def test_correlation_shock_cuts_leverage_by_the_factor() -> None:
    rule = VolatilityTargetLeverage(
        LeverageConfig(target_volatility=0.15, max_leverage=2.0, shock_factor=0.5)
    )
    assert rule.leverage(0.30, correlation_shock=True) == pytest.approx(0.25)
    assert rule.leverage(0.05, correlation_shock=True) == pytest.approx(1.0)  # capped 2.0, then halved


def test_correlation_shock_cut_respects_the_floor() -> None:
    cfg = LeverageConfig(target_volatility=0.15, min_leverage=0.4, max_leverage=2.0, shock_factor=0.5)
    assert VolatilityTargetLeverage(cfg).leverage(0.30, correlation_shock=True) == 0.4


def test_leverage_is_non_increasing_over_a_volatility_grid() -> None:
    rule = VolatilityTargetLeverage()
    vols = [i / 100 for i in range(0, 301)]
    levels = [rule.leverage(v) for v in vols]
    assert all(b <= a for a, b in itertools.pairwise(levels))
    assert levels[0] == rule.config.max_leverage


@pytest.mark.parametrize("vol", [math.nan, -0.2, -1e-12, math.inf, -math.inf, None, "0.2"], ids=repr)
def test_invalid_volatility_raises_naming_the_field(vol: object) -> None:
    with pytest.raises(InvalidInputError, match="realised_vol"):
        VolatilityTargetLeverage().leverage(vol)  # type: ignore[arg-type]


def test_negative_volatility_never_gives_high_leverage() -> None:
    # the seed returned 10x here; we refuse the input instead
    with pytest.raises(InvalidInputError, match=r"realised_vol must be in \[0.0, inf\), got -0.3"):
        volatility_target_leverage(-0.3)


def test_function_form_matches_the_class() -> None:
    assert volatility_target_leverage(0.3, 0.15, max_leverage=3.0) == pytest.approx(0.5)
    assert volatility_target_leverage(0.3, 0.15, correlation_shock=True, shock_factor=0.2) == pytest.approx(
        0.1
    )
    assert RiskConfig().leverage == VolatilityTargetLeverage().config


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"target_volatility": 0.0}, "target_volatility"),
        ({"target_volatility": math.nan}, "target_volatility"),
        ({"min_leverage": -0.1}, "min_leverage"),
        ({"max_leverage": 0.0}, "max_leverage"),
        ({"min_leverage": 3.0, "max_leverage": 2.0}, "min_leverage"),
        ({"shock_factor": 1.5}, "shock_factor"),
        ({"trend_factor": -0.1}, "trend_factor"),
        ({"trend_halflife": 0}, "trend_halflife"),
        ({"relative_target": 0.0}, "relative_target"),
        ({"relative_target": math.inf}, "relative_target"),
        ({"relative_halflife": 0}, "relative_halflife"),
    ],
    ids=[
        "target-zero",
        "target-nan",
        "min-neg",
        "max-zero",
        "min-gt-max",
        "factor-above-1",
        "trend-neg",
        "half-0",
        "relative-zero",
        "relative-inf",
        "relative-half-0",
    ],
)
def test_bad_leverage_settings_raise_naming_the_field(kwargs: dict[str, float], field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        LeverageConfig(**kwargs)


def test_the_trend_cut_multiplies_by_its_factor_before_the_shock_and_respects_the_floor() -> None:
    rule = VolatilityTargetLeverage(
        LeverageConfig(target_volatility=0.1, max_leverage=2.0, trend_factor=0.25)
    )
    assert rule.leverage(0.1, below_trend=True) == 0.25
    assert rule.leverage(0.1, below_trend=True, correlation_shock=True) == 0.125
    floored = VolatilityTargetLeverage(LeverageConfig(min_leverage=0.2, trend_factor=0.0))
    assert floored.leverage(0.15, below_trend=True) == 0.2


def test_the_relative_target_lowers_the_target_to_k_times_the_long_run_volatility() -> None:
    rule = VolatilityTargetLeverage(LeverageConfig(target_volatility=0.15, relative_target=0.5))
    assert rule.target(None) == 0.15  # no long-run volatility yet: the absolute target
    assert rule.target(0.10) == 0.05  # a calm book: half of its own risk
    assert rule.target(0.40) == 0.15  # a wild book: the absolute target binds
    assert rule.leverage(0.10, long_run_vol=0.10) == pytest.approx(0.5)
    assert rule.leverage(0.05, long_run_vol=0.10) == pytest.approx(1.0)  # calmer than usual: capped
    off = VolatilityTargetLeverage(LeverageConfig(target_volatility=0.15))
    assert off.leverage(0.10, long_run_vol=0.01) == 1.0  # relative_target None ignores it


@given(
    vol=st.floats(0.0, 5.0),
    long_run=st.floats(0.0, 5.0),
    k=st.floats(0.01, 3.0),
    shock=st.booleans(),
)
def test_the_relative_target_is_never_less_cautious_than_the_absolute_one(
    vol: float, long_run: float, k: float, shock: bool
) -> None:
    absolute = VolatilityTargetLeverage(LeverageConfig(max_leverage=2.0))
    relative = VolatilityTargetLeverage(LeverageConfig(max_leverage=2.0, relative_target=k))
    lev = relative.leverage(vol, long_run_vol=long_run, correlation_shock=shock)
    assert 0.0 <= lev <= absolute.leverage(vol, correlation_shock=shock)


@pytest.mark.parametrize("halflife", [1, 20, 500])
def test_the_long_run_volatility_is_pandas_adjusted_ewm_of_the_variance(halflife: int) -> None:
    vols = np.random.default_rng(halflife).uniform(0.05, 0.6, 300)
    reference = np.sqrt(pd.Series(vols**2).ewm(halflife=halflife, adjust=True).mean().to_numpy())
    lr = LongRunVolatility(halflife)
    got = np.array([lr.update(v) for v in vols])
    np.testing.assert_allclose(got, reference, rtol=1e-12)
    assert lr.value == got[-1]


@pytest.mark.parametrize("vol", [math.nan, math.inf, -0.1])
def test_the_long_run_volatility_refuses_a_bad_volatility_naming_it(vol: float) -> None:
    lr = LongRunVolatility(10)
    with pytest.raises(InvalidInputError, match="vol"):
        lr.update(vol)
    assert lr.value is None  # and nothing was entered
    with pytest.raises(InvalidInputError, match="halflife"):
        LongRunVolatility(0)
