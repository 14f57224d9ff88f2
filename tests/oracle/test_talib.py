"""Oracle tests: our indicators and ATR against TA-Lib on the bundled S&P 500 index OHLCV.

Every comparison asserts the same NaN prefix (same length, NaN exactly where TA-Lib has NaN) and
then agreement to an ABSOLUTE tolerance of 1e-8 (``rtol=0``), even for Bollinger bands whose values
are in the thousands: the absolute bound is the stricter one there, and it holds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from advanced_risk.measures import (
    bollinger_bands,
    macd,
    momentum,
    rsi,
    stochastic,
    true_range,
    wilder_atr,
)

from ..conftest import require

talib = require("talib")

ATOL = 1e-8

HLC = tuple[np.ndarray, np.ndarray, np.ndarray]


@pytest.fixture(scope="module")
def hlc(sp500_index: pd.DataFrame) -> HLC:
    high, low, close = (sp500_index[col].to_numpy(dtype=np.float64) for col in ("High", "Low", "Close"))
    return high, low, close


def _random_bars(n: int, start: float, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    close = start * np.exp(np.cumsum(rng.normal(0.0, 0.02, n)))
    high = close * np.exp(np.abs(rng.normal(0.0, 0.01, n)))
    low = close * np.exp(-np.abs(rng.normal(0.0, 0.01, n)))
    return high, low, close


def assert_matches_talib(ours: np.ndarray | tuple[np.ndarray, ...], ref: object) -> None:
    ours_arrays = ours if isinstance(ours, tuple) else (ours,)
    ref_arrays = ref if isinstance(ref, tuple) else (ref,)
    assert len(ours_arrays) == len(ref_arrays)
    for got, want in zip(ours_arrays, ref_arrays, strict=True):
        assert got.shape == want.shape
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        assert np.isfinite(got[~np.isnan(want)]).all()
        np.testing.assert_allclose(got, want, rtol=0.0, atol=ATOL, equal_nan=True)


def test_true_range_matches_talib_trange_on_sp500(hlc: HLC) -> None:
    assert_matches_talib(true_range(*hlc), talib.TRANGE(*hlc))


@pytest.mark.parametrize("n", [1, 5, 14, 50])
def test_wilder_atr_matches_talib_on_sp500(hlc: HLC, n: int) -> None:
    assert_matches_talib(wilder_atr(*hlc, n=n), talib.ATR(*hlc, timeperiod=n))


@pytest.mark.parametrize("n", [2, 14, 30])
def test_rsi_matches_talib_on_sp500(hlc: HLC, n: int) -> None:
    close = hlc[2]
    assert_matches_talib(rsi(close, n=n), talib.RSI(close, timeperiod=n))


@pytest.mark.parametrize(("fast", "slow", "signal"), [(12, 26, 9), (5, 35, 5), (3, 10, 1), (2, 3, 2)])
def test_macd_matches_talib_on_sp500(hlc: HLC, fast: int, slow: int, signal: int) -> None:
    close = hlc[2]
    assert_matches_talib(
        macd(close, fast=fast, slow=slow, signal=signal),
        talib.MACD(close, fastperiod=fast, slowperiod=slow, signalperiod=signal),
    )


@pytest.mark.parametrize(("n", "k"), [(20, 2.0), (5, 1.0), (50, 2.5), (2, 0.0)])
def test_bollinger_bands_match_talib_on_sp500(hlc: HLC, n: int, k: float) -> None:
    close = hlc[2]
    assert_matches_talib(
        bollinger_bands(close, n=n, k=k), talib.BBANDS(close, timeperiod=n, nbdevup=k, nbdevdn=k, matype=0)
    )


@pytest.mark.parametrize("n", [1, 10, 100])
def test_momentum_matches_talib_on_sp500(hlc: HLC, n: int) -> None:
    close = hlc[2]
    assert_matches_talib(momentum(close, n=n), talib.MOM(close, timeperiod=n))


@pytest.mark.parametrize(
    ("fastk", "slowk", "slowd"), [(5, 3, 3), (14, 3, 3), (1, 1, 1), (9, 1, 5), (3, 7, 2)]
)
def test_stochastic_matches_talib_on_sp500(hlc: HLC, fastk: int, slowk: int, slowd: int) -> None:
    ref = talib.STOCH(
        *hlc, fastk_period=fastk, slowk_period=slowk, slowk_matype=0, slowd_period=slowd, slowd_matype=0
    )
    assert_matches_talib(stochastic(*hlc, fastk_period=fastk, slowk_period=slowk, slowd_period=slowd), ref)


@pytest.mark.parametrize(("start", "seed"), [(0.01, 1), (50.0, 2), (30_000.0, 3)])
def test_all_indicators_match_talib_on_random_walks_at_several_price_scales(start: float, seed: int) -> None:
    high, low, close = _random_bars(3000, start, seed)
    assert_matches_talib(wilder_atr(high, low, close), talib.ATR(high, low, close))
    assert_matches_talib(rsi(close), talib.RSI(close))
    assert_matches_talib(macd(close), talib.MACD(close))
    assert_matches_talib(bollinger_bands(close), talib.BBANDS(close, 20, 2.0, 2.0, 0))
    assert_matches_talib(momentum(close), talib.MOM(close))
    assert_matches_talib(stochastic(high, low, close), talib.STOCH(high, low, close))


def test_flat_windows_give_talib_values_rsi_zero_band_width_zero_stochastic_zero() -> None:
    flat = np.full(60, 7.5)
    assert_matches_talib(rsi(flat), talib.RSI(flat))
    assert_matches_talib(bollinger_bands(flat), talib.BBANDS(flat, 20, 2.0, 2.0, 0))
    assert_matches_talib(stochastic(flat, flat, flat), talib.STOCH(flat, flat, flat))
    assert_matches_talib(macd(flat), talib.MACD(flat))
    assert rsi(flat)[-1] == 0.0
    assert stochastic(flat, flat, flat)[0][-1] == 0.0
