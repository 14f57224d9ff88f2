"""Unit tests of measures/indicators.py: hand-computed cases, NaN prefixes, validation, jit parity."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from advanced_risk.errors import InvalidInputError
from advanced_risk.measures import indicators as ind
from advanced_risk.measures.indicators import bollinger_bands, macd, momentum, rsi, stochastic

NAN = float("nan")


def _bars(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))
    high = close * np.exp(np.abs(rng.normal(0.0, 0.005, n)))
    low = close * np.exp(-np.abs(rng.normal(0.0, 0.005, n)))
    return high, low, close


# ----------------------------------------------------------------------------------------------- RSI
def test_rsi_equals_hand_computed_values() -> None:
    # d = [1, -0.5, 1]; G = 0.5, L = 0.25 -> 66.67; then G = (0.5 + 1) / 2, L = 0.25 / 2 -> 85.71
    np.testing.assert_allclose(rsi([1.0, 2.0, 1.5, 2.5], n=2), [NAN, NAN, 200 / 3, 600 / 7], rtol=1e-14)


def test_rsi_is_100_on_a_rising_and_0_on_a_falling_or_flat_series() -> None:
    assert (rsi(np.arange(1.0, 31.0))[14:] == 100.0).all()
    assert (rsi(np.arange(31.0, 1.0, -1.0))[14:] == 0.0).all()
    assert (rsi(np.full(30, 5.0))[14:] == 0.0).all()


# ---------------------------------------------------------------------------------------------- MACD
def test_macd_equals_hand_computed_values_with_talib_seeding() -> None:
    # fast=2, slow=3, signal=2 on [1, 2, 4, 3, 5, 4]. Both EMAs start at bar 2, seeded with the
    # mean of their own last p closes: slow (1+2+4)/3 = 7/3, fast (2+4)/2 = 3 -> line 2/3; then
    # line = [1/3, 1/2, 7/36]; signal seeded at bar 3 with mean(2/3, 1/3) = 1/2, then 1/2, 8/27.
    line, signal, hist = macd([1.0, 2.0, 4.0, 3.0, 5.0, 4.0], fast=2, slow=3, signal=2)
    np.testing.assert_allclose(line, [NAN, NAN, NAN, 1 / 3, 1 / 2, 7 / 36], rtol=1e-14)
    np.testing.assert_allclose(signal, [NAN, NAN, NAN, 1 / 2, 1 / 2, 8 / 27], rtol=1e-14)
    np.testing.assert_allclose(hist, [NAN, NAN, NAN, -1 / 6, 0.0, -11 / 108], rtol=1e-14, atol=1e-15)


def test_macd_nan_prefix_is_slow_plus_signal_minus_two() -> None:
    _, _, close = _bars(100)
    for out in macd(close, fast=12, slow=26, signal=9):
        assert np.isnan(out[:33]).all()
        assert np.isfinite(out[33:]).all()


# ----------------------------------------------------------------------------------------- Bollinger
def test_bollinger_bands_equal_hand_computed_values() -> None:
    # windows [1, 3], [3, 3], [3, 5]: means 2, 3, 4; population stds 1, 0, 1; k = 1.5
    upper, middle, lower = bollinger_bands([1.0, 3.0, 3.0, 5.0], n=2, k=1.5)
    np.testing.assert_array_equal(middle, [NAN, 2.0, 3.0, 4.0])
    np.testing.assert_array_equal(upper, [NAN, 3.5, 3.0, 5.5])
    np.testing.assert_array_equal(lower, [NAN, 0.5, 3.0, 2.5])


def test_bollinger_bands_are_symmetric_around_the_middle() -> None:
    _, _, close = _bars(500, seed=1)
    upper, middle, lower = bollinger_bands(close)
    np.testing.assert_allclose(upper - middle, middle - lower, rtol=1e-9)


# ------------------------------------------------------------------------------------------ momentum
def test_momentum_equals_close_minus_close_n_bars_ago() -> None:
    np.testing.assert_array_equal(momentum([1.0, 2.0, 4.0, 7.0], n=2), [NAN, NAN, 3.0, 5.0])


# ---------------------------------------------------------------------------------------- stochastic
def test_stochastic_equals_hand_computed_values() -> None:
    # fastk (2-bar windows): 200/3, 100, 100/3, 50; slowk = SMA2: 250/3, 200/3, 125/3; slowd = SMA2.
    high = [3.0, 4.0, 5.0, 4.0, 6.0]
    low = [1.0, 2.0, 3.0, 2.0, 3.0]
    close = [2.0, 3.0, 5.0, 3.0, 4.0]
    slowk, slowd = stochastic(high, low, close, fastk_period=2, slowk_period=2, slowd_period=2)
    np.testing.assert_allclose(slowk, [NAN, NAN, NAN, 200 / 3, 125 / 3], rtol=1e-14)
    np.testing.assert_allclose(slowd, [NAN, NAN, NAN, 75.0, 325 / 6], rtol=1e-14)


def test_stochastic_is_zero_when_the_window_has_no_range() -> None:
    flat = np.full(20, 3.0)
    slowk, slowd = stochastic(flat, flat, flat)
    assert (slowk[8:] == 0.0).all()
    assert (slowd[8:] == 0.0).all()


# ---------------------------------------------------------------------------------------- validation
@pytest.mark.parametrize(
    ("call", "match"),
    [
        pytest.param(lambda: rsi([1.0, 2.0, NAN, 3.0], n=2), r"close must be finite.*index 2", id="rsi-nan"),
        pytest.param(lambda: rsi([1.0, 2.0], n=2), r"close needs at least 3 values", id="rsi-short"),
        pytest.param(lambda: rsi([1.0, 2.0, 3.0], n=1), r"n must be >= 2", id="rsi-n"),
        pytest.param(lambda: rsi([[1.0, 2.0, 3.0]], n=2), r"close must be 1-D", id="rsi-2d"),
        pytest.param(lambda: rsi(["x", "y", "z"], n=2), r"close must be numeric", id="rsi-text"),
        pytest.param(lambda: macd(np.ones(50), fast=26, slow=12), r"fast must be < slow", id="macd-order"),
        pytest.param(lambda: macd(np.ones(33)), r"close needs at least 34 values", id="macd-short"),
        pytest.param(lambda: macd(np.ones(50), signal=0), r"signal must be >= 1", id="macd-signal"),
        pytest.param(lambda: bollinger_bands(np.ones(30), k=-1.0), r"k must be in \[0.0, inf\)", id="bb-k"),
        pytest.param(lambda: bollinger_bands(np.ones(19)), r"close needs at least 20 values", id="bb-short"),
        pytest.param(lambda: momentum(np.ones(5), n=0), r"n must be >= 1", id="mom-n"),
        pytest.param(
            lambda: momentum([1.0, np.inf, 2.0], n=1), r"close must be finite.*index 1", id="mom-inf"
        ),
        pytest.param(
            lambda: stochastic([2.0] * 9, [1.0] * 8 + [3.0], [1.5] * 9),
            r"high must be >= low.*index 8",
            id="stoch-high-low",
        ),
        pytest.param(
            lambda: stochastic([2.0] * 8, [1.0] * 8, [1.5] * 8), r"at least 9 bars, got 8", id="stoch-short"
        ),
        pytest.param(
            lambda: stochastic([2.0] * 9, [1.0] * 9, [1.5] * 9, fastk_period=0),
            r"fastk_period must be >= 1",
            id="stoch-period",
        ),
    ],
)
def test_indicators_reject_bad_input_naming_the_field(call: Callable[[], object], match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        call()


def test_indicators_accept_lists_and_integer_prices() -> None:
    close = list(range(1, 41))
    np.testing.assert_array_equal(rsi(close), rsi(np.arange(1.0, 41.0)))
    assert momentum(close, n=1).dtype == np.float64


def test_indicators_return_arrays_of_the_input_length() -> None:
    high, low, close = _bars(120, seed=2)
    outputs = [
        rsi(close),
        momentum(close),
        *macd(close),
        *bollinger_bands(close),
        *stochastic(high, low, close),
    ]
    assert all(out.shape == (120,) for out in outputs)


# ------------------------------------------------------------------------------- python / jit parity
def test_indicator_kernels_equal_their_plain_python_versions() -> None:
    high, low, close = _bars(400, seed=4)
    cases = [
        (ind._rsi_python(close, 14), ind.rsi_kernel(close, 14)),
        (ind._macd_python(close, 12, 26, 9), ind._macd(close, 12, 26, 9)),
        (ind._bollinger_python(close, 20, 2.0), ind._bollinger(close, 20, 2.0)),
        (ind._stochastic_python(high, low, close, 5, 3, 3), ind._stochastic(high, low, close, 5, 3, 3)),
        (ind._stochastic_python(high, low, close, 14, 1, 4), ind._stochastic(high, low, close, 14, 1, 4)),
    ]
    for python_out, jit_out in cases:
        np.testing.assert_array_equal(np.asarray(python_out), np.asarray(jit_out))


def test_sma_kernel_equals_its_plain_python_version_and_a_convolution() -> None:
    _, _, close = _bars(100, seed=5)
    out_py, out_jit = np.full(100, np.nan), np.full(100, np.nan)
    ind._sma_into_python(close, 3, 5, out_py)
    ind._sma_into(close, 3, 5, out_jit)
    np.testing.assert_array_equal(out_py, out_jit)
    assert np.isnan(out_py[:7]).all()
    np.testing.assert_allclose(out_py[7:], np.convolve(close[3:], np.ones(5) / 5, mode="valid"), rtol=1e-12)


def test_finite_check_kernel_equals_its_plain_python_version() -> None:
    x = np.array([1.0, np.nan, 2.0, np.inf, -np.inf, 3.0])
    assert ind._count_nonfinite_python(x) == ind._count_nonfinite(x) == 3
    assert ind._count_nonfinite(np.arange(5.0)) == 0
