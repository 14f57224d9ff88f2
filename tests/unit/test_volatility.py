"""Unit tests of measures/volatility.py: true range, Wilder ATR, realised and EWMA volatility."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from advanced_risk.errors import InvalidInputError
from advanced_risk.measures import volatility as vol
from advanced_risk.measures.volatility import (
    as_ohlc,
    ewma_variance,
    ewma_volatility,
    realised_volatility,
    true_range,
    wilder_atr,
)

NAN = float("nan")

# Four bars computed by hand:
#   TR[1] = max(11 - 10, |11 - 9.5|, |10 - 9.5|)   = 1.5
#   TR[2] = max(12 - 9.5, |12 - 10.5|, |9.5 - 10.5|) = 2.5
#   TR[3] = max(12 - 11, |12 - 11|, |11 - 11|)       = 1.0
HIGH = [10.0, 11.0, 12.0, 12.0]
LOW = [9.0, 10.0, 9.5, 11.0]
CLOSE = [9.5, 10.5, 11.0, 11.5]


def _bars(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))
    return close * 1.01, close * 0.99, close


# ------------------------------------------------------------------------------------ true range, ATR
def test_true_range_equals_hand_computed_values() -> None:
    np.testing.assert_array_equal(true_range(HIGH, LOW, CLOSE), [NAN, 1.5, 2.5, 1.0])


def test_true_range_uses_gap_from_previous_close() -> None:
    # A gap up: the bar's own range is 1, the distance from the previous close to the high is 5.
    np.testing.assert_array_equal(true_range([10.0, 15.0], [9.0, 14.0], [10.0, 14.5]), [NAN, 5.0])


def test_wilder_atr_equals_hand_computed_values() -> None:
    # ATR[2] = mean(1.5, 2.5) = 2.0; ATR[3] = (2.0 * 1 + 1.0) / 2 = 1.5
    np.testing.assert_array_equal(wilder_atr(HIGH, LOW, CLOSE, n=2), [NAN, NAN, 2.0, 1.5])


def test_wilder_atr_of_period_one_is_the_true_range() -> None:
    h, lo, c = _bars(200)
    np.testing.assert_array_equal(wilder_atr(h, lo, c, n=1), true_range(h, lo, c))


def test_wilder_atr_has_nan_prefix_of_length_n() -> None:
    h, lo, c = _bars(100)
    out = wilder_atr(h, lo, c, n=14)
    assert out.shape == (100,)
    assert np.isnan(out[:14]).all()
    assert np.isfinite(out[14:]).all()


def test_wilder_atr_accepts_exactly_n_plus_one_bars() -> None:
    assert wilder_atr(HIGH, LOW, CLOSE, n=3)[-1] == pytest.approx((1.5 + 2.5 + 1.0) / 3)


# ------------------------------------------------------------------------------------ OHLC validation
@pytest.mark.parametrize(
    ("high", "low", "close", "match"),
    [
        pytest.param(
            [10.0, 9.0], [9.0, 10.0], [9.5, 9.5], r"high must be >= low.*index 1", id="high-below-low"
        ),
        pytest.param([10.0, 11.0], [9.0, 10.0], [9.5, NAN], r"close must be finite.*index 1", id="nan-close"),
        pytest.param(
            [10.0, np.inf], [9.0, 10.0], [9.5, 10.0], r"high must be finite.*index 1", id="inf-high"
        ),
        pytest.param([10.0, 11.0], [-1.0, 10.0], [9.5, 10.0], r"low must be > 0.*index 0", id="negative-low"),
        pytest.param([10.0, 11.0], [9.0, 10.0], [0.0, 10.0], r"close must be > 0.*index 0", id="zero-close"),
        pytest.param(
            [10.0, 11.0], [9.0], [9.5, 10.0], r"high and low must have the same length", id="lengths"
        ),
        pytest.param([10.0], [9.0], [9.5], r"at least 2 bars", id="too-short"),
        pytest.param([[10.0, 11.0]], [9.0, 10.0], [9.5, 10.0], r"high must be 1-D", id="2-d"),
        pytest.param(["a", "b"], [9.0, 10.0], [9.5, 10.0], r"high must be numeric", id="not-numeric"),
    ],
)
def test_true_range_rejects_bad_bars_naming_field_and_index(
    high: object, low: object, close: object, match: str
) -> None:
    with pytest.raises(InvalidInputError, match=match):
        true_range(high, low, close)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("n", "match"),
    [
        pytest.param(0, r"n must be >= 1", id="zero"),
        pytest.param(2.0, r"n must be an integer", id="float"),
        pytest.param(True, r"n must be an integer", id="bool"),
        pytest.param(4, r"at least 5 bars, got 4", id="longer-than-series"),
    ],
)
def test_wilder_atr_rejects_bad_period(n: object, match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        wilder_atr(HIGH, LOW, CLOSE, n=n)  # type: ignore[arg-type]


def test_as_ohlc_returns_float64_contiguous_arrays_from_lists() -> None:
    h, lo, c = as_ohlc([10, 11], [9, 10], [9, 11])
    for arr in (h, lo, c):
        assert arr.dtype == np.float64
        assert arr.flags.c_contiguous


# ------------------------------------------------------------------------------- realised volatility
def test_realised_volatility_equals_hand_computed_sample_std() -> None:
    out = realised_volatility([0.01, -0.01, 0.03], window=2)
    np.testing.assert_allclose(out, [NAN, math.sqrt(2e-4), math.sqrt(8e-4)], rtol=1e-12)


def test_realised_volatility_matches_pandas_rolling_std(sp500_index_returns: np.ndarray) -> None:
    for window in (2, 21, 250):
        expected = pd.Series(sp500_index_returns).rolling(window).std().to_numpy()
        np.testing.assert_allclose(
            realised_volatility(sp500_index_returns, window), expected, rtol=1e-9, atol=0.0, equal_nan=True
        )


def test_realised_volatility_annualises_by_sqrt_periods_per_year(sp500_index_returns: np.ndarray) -> None:
    daily = realised_volatility(sp500_index_returns, 21)
    yearly = realised_volatility(sp500_index_returns, 21, periods_per_year=252)
    np.testing.assert_allclose(yearly, daily * math.sqrt(252), rtol=1e-15)


def test_rolling_std_does_not_drift_over_a_long_price_series() -> None:
    # 200k bars of prices around 1e4: the O(1) slide is re-anchored every window, so the error
    # against an exact two-pass std stays at rounding level instead of growing with the length.
    _, _, close = _bars(200_000, seed=3)
    close *= 100.0
    window = 20
    mean, std = vol.rolling_mean_std_kernel(close, window, 0)
    windows = np.lib.stride_tricks.sliding_window_view(close, window)
    exact_std = windows.std(axis=1)
    np.testing.assert_allclose(mean[window - 1 :], windows.mean(axis=1), rtol=1e-12)
    assert np.max(np.abs(std[window - 1 :] - exact_std) / exact_std) < 1e-9


@pytest.mark.parametrize(
    ("returns", "window", "match"),
    [
        pytest.param([0.01, 0.02], 1, r"window must be >= 2", id="window-one"),
        pytest.param([0.01, 0.02], 3, r"at least 3 rows", id="too-short"),
        pytest.param([0.01, NAN, 0.0], 2, r"returns must be finite.*index 1", id="nan"),
    ],
)
def test_realised_volatility_rejects_bad_input(returns: list[float], window: int, match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        realised_volatility(returns, window)


def test_realised_volatility_rejects_non_positive_periods_per_year() -> None:
    with pytest.raises(InvalidInputError, match=r"periods_per_year must be >= 1"):
        realised_volatility([0.01, 0.02, 0.0], 2, periods_per_year=0)


# ------------------------------------------------------------------------------------ EWMA volatility
def test_ewma_volatility_is_sqrt_of_ewma_variance(sp500_index_returns: np.ndarray) -> None:
    np.testing.assert_array_equal(
        ewma_volatility(sp500_index_returns, lam=0.97), np.sqrt(ewma_variance(sp500_index_returns, lam=0.97))
    )


def test_ewma_volatility_equals_hand_computed_values() -> None:
    # s2 = [1e-4, 0.5 * 1e-4 + 0.5 * 1e-4, 0.5 * 1e-4 + 0.5 * 4e-4]
    np.testing.assert_allclose(
        ewma_volatility([0.01, -0.02], lam=0.5, init=1e-4), [0.01, 0.01, math.sqrt(2.5e-4)], rtol=1e-12
    )


def test_ewma_volatility_annualises_by_sqrt_periods_per_year() -> None:
    r = [0.01, -0.02, 0.005]
    np.testing.assert_allclose(
        ewma_volatility(r, periods_per_year=252), ewma_volatility(r) * math.sqrt(252), rtol=1e-15
    )


# ------------------------------------------------------------------------------- python / jit parity
def test_true_range_and_atr_kernels_equal_their_plain_python_versions() -> None:
    h, lo, c = _bars(300, seed=5)
    np.testing.assert_array_equal(vol._true_range_python(h, lo, c), vol._true_range(h, lo, c))
    # the compiled ATR may fuse multiply-adds (jit(contract=True)), so agreement is to rounding
    np.testing.assert_allclose(
        vol._wilder_atr_python(h, lo, c, 14)[0], vol._wilder_atr(h, lo, c, 14)[0], rtol=1e-14
    )


def test_rolling_mean_std_kernel_equals_its_plain_python_version() -> None:
    _, _, c = _bars(300, seed=6)
    for ddof in (0, 1):
        for got, want in zip(
            vol._rolling_mean_std_python(c, 7, ddof), vol.rolling_mean_std_kernel(c, 7, ddof), strict=True
        ):
            np.testing.assert_array_equal(got, want)


def test_bar_check_kernel_equals_its_plain_python_version() -> None:
    h, lo, c = _bars(50, seed=7)
    assert vol._count_bad_bars_python(h, lo, c) == vol._count_bad_bars(h, lo, c) == 0
    lo[17] = h[17] + 1.0
    c[30] = np.nan
    assert vol._count_bad_bars_python(h, lo, c) == vol._count_bad_bars(h, lo, c) == 2
