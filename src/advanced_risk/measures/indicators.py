"""Technical indicators used as policy features: RSI, MACD, Bollinger bands, momentum, stochastic.

Every indicator matches TA-Lib (``talib.RSI``, ``MACD``, ``BBANDS``, ``MOM``, ``STOCH`` with their
default settings and SMA smoothing): the output has the input's length and a NaN prefix exactly as
long as TA-Lib's lookback, EMAs are seeded the way TA-Lib seeds them, and a flat window gives the
value TA-Lib gives (RSI 0, stochastic 0, band width 0). The oracle tests hold us to 1e-8.

The public functions check their inputs once (finite values; for bars, positive prices with
``high >= low``) and need at least ``lookback + 1`` values, so that at least one output is a number.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from advanced_risk.errors import InvalidInputError
from advanced_risk.measures.jit import jit
from advanced_risk.measures.validation import (
    FloatArray,
    as_array,
    check_positive_int,
    check_range,
    float_array,
)
from advanced_risk.measures.volatility import as_ohlc, rolling_mean_std_kernel

__all__ = ["bollinger_bands", "macd", "momentum", "rsi", "stochastic"]

FloatArray3 = tuple[FloatArray, FloatArray, FloatArray]


def _count_nonfinite_python(x: FloatArray) -> int:
    bad = 0
    for i in range(x.shape[0]):
        bad += not (abs(x[i]) < np.inf)  # no early exit, so the loop vectorises (~0.1 ns/value)
    return bad


_count_nonfinite = jit(_count_nonfinite_python)


def _as_series(values: ArrayLike, name: str, lookback: int) -> FloatArray:
    """A finite 1-D float64 series with at least ``lookback + 1`` values (one fast pass when valid).

    Text, complex numbers and a Python int beyond the float range (``10**400``) raise
    ``InvalidInputError`` naming ``name`` (:func:`~advanced_risk.measures.validation.float_array`).
    """
    arr = float_array(values, name)
    if arr.ndim != 1:
        return as_array(arr, name, ndim=1)  # raises, naming the field
    if arr.shape[0] <= lookback:
        raise InvalidInputError(
            f"{name} needs at least {lookback + 1} values (lookback {lookback} + 1), got {arr.shape[0]}"
        )
    if _count_nonfinite(arr):
        as_array(arr, name, ndim=1)  # raises, naming the first bad index
    return arr


# --- shared kernel -------------------------------------------------------------------------------


def _sma_into_python(x: FloatArray, first: int, n: int, out: FloatArray) -> None:
    """Write the n-bar simple moving average of ``x[first:]`` into ``out[first + n - 1:]``.

    Running sum, slid by ``x_in - x_out`` (one add on the critical path per bar).
    """
    inv_n = 1.0 / n
    total = 0.0
    for i in range(first, first + n):
        total += x[i]
    out[first + n - 1] = total * inv_n
    # Offset views instead of x[t - n]: no negative-index wraparound checks in the compiled loop.
    x_in = x[first + n :]
    x_out = x[first : x.shape[0] - n]
    dst = out[first + n :]
    for i in range(dst.shape[0]):
        total += x_in[i] - x_out[i]
        dst[i] = total * inv_n


_sma_into = jit(_sma_into_python)


# --- kernels -------------------------------------------------------------------------------------


def _rsi_into_python(close: FloatArray, n: int, out: FloatArray) -> None:
    """Wilder's RSI of ``close`` into ``out`` (the same length), as :func:`rsi`; trusts ``close``
    (finite, longer than ``n``) and ``n >= 1``."""
    out[:n] = np.nan
    gain = 0.0
    loss = 0.0
    for t in range(1, n + 1):
        d = close[t] - close[t - 1]
        if d < 0.0:
            loss -= d
        else:
            gain += d
    gain /= n
    loss /= n
    total = gain + loss
    out[n] = 100.0 * (gain / total) if total != 0.0 else 0.0
    # G = (G * (n - 1) + up) / n with the constants hoisted (a multiply-add on the critical path).
    keep = (n - 1) / n
    weight = 1.0 / n
    for t in range(n + 1, close.shape[0]):
        d = close[t] - close[t - 1]
        gain = gain * keep + max(d, 0.0) * weight
        loss = loss * keep + max(-d, 0.0) * weight
        total = gain + loss
        out[t] = 100.0 * (gain / total) if total != 0.0 else 0.0


rsi_into_kernel = jit(_rsi_into_python)


def _rsi_python(close: FloatArray, n: int) -> FloatArray:
    """Wilder's RSI as :func:`rsi` (a new array), trusting ``close`` and ``n`` as :func:`rsi_into_kernel`."""
    out = np.empty(close.shape[0])
    rsi_into_kernel(close, n, out)
    return out


rsi_kernel = jit(_rsi_python)


def _macd_python(close: FloatArray, fast: int, slow: int, signal: int) -> FloatArray3:
    size = close.shape[0]
    line = np.empty(size)
    sig = np.empty(size)
    hist = np.empty(size)
    first = slow + signal - 2  # TA-Lib's lookback: the first bar with all three values
    line[:first] = np.nan
    sig[:first] = np.nan
    hist[:first] = np.nan
    # EMA_p = EMA_p + (x - EMA_p) * k written as EMA_p * (1 - k) + x * k (multiply-add critical path).
    k_fast = 2.0 / (fast + 1)
    k_slow = 2.0 / (slow + 1)
    k_sig = 2.0 / (signal + 1)
    keep_fast = 1.0 - k_fast
    keep_slow = 1.0 - k_slow
    keep_sig = 1.0 - k_sig
    # As in TA-Lib, both EMAs start at bar slow - 1, each seeded with the mean of its last p closes.
    total = 0.0
    for i in range(slow):
        total += close[i]
    ema_slow = total / slow
    total = 0.0
    for i in range(slow - fast, slow):
        total += close[i]
    ema_fast = total / fast
    # The signal EMA is seeded with the mean of the first `signal` MACD values (bars slow-1..first).
    seed = ema_fast - ema_slow
    for t in range(slow, first + 1):
        ema_slow = ema_slow * keep_slow + close[t] * k_slow
        ema_fast = ema_fast * keep_fast + close[t] * k_fast
        seed += ema_fast - ema_slow
    value = ema_fast - ema_slow
    ema_sig = seed / signal
    line[first] = value
    sig[first] = ema_sig
    hist[first] = value - ema_sig
    for t in range(first + 1, size):
        ema_slow = ema_slow * keep_slow + close[t] * k_slow
        ema_fast = ema_fast * keep_fast + close[t] * k_fast
        value = ema_fast - ema_slow
        ema_sig = ema_sig * keep_sig + value * k_sig
        line[t] = value
        sig[t] = ema_sig
        hist[t] = value - ema_sig
    return line, sig, hist


_macd = jit(_macd_python)


def _bollinger_python(close: FloatArray, n: int, k: float) -> FloatArray3:
    middle, std = rolling_mean_std_kernel(close, n, 0)
    upper = np.empty(close.shape[0])
    lower = np.empty(close.shape[0])
    for t in range(close.shape[0]):
        width = k * std[t]
        upper[t] = middle[t] + width
        lower[t] = middle[t] - width
    return upper, middle, lower


_bollinger = jit(_bollinger_python)


def _stochastic_python(
    high: FloatArray,
    low: FloatArray,
    close: FloatArray,
    fastk_period: int,
    slowk_period: int,
    slowd_period: int,
) -> tuple[FloatArray, FloatArray]:
    size = close.shape[0]
    fastk = np.empty(size)
    lowest_idx = -1
    highest_idx = -1
    lowest = 0.0
    highest = 0.0
    for t in range(fastk_period - 1, size):
        trailing = t - fastk_period + 1
        # Track the window's lowest low and highest high; rescan only when the extreme drops out.
        if lowest_idx < trailing:
            lowest_idx = trailing
            lowest = low[trailing]
            for i in range(trailing + 1, t + 1):
                if low[i] < lowest:
                    lowest_idx = i
                    lowest = low[i]
        elif low[t] <= lowest:
            lowest_idx = t
            lowest = low[t]
        if highest_idx < trailing:
            highest_idx = trailing
            highest = high[trailing]
            for i in range(trailing + 1, t + 1):
                if high[i] > highest:
                    highest_idx = i
                    highest = high[i]
        elif high[t] >= highest:
            highest_idx = t
            highest = high[t]
        diff = (highest - lowest) / 100.0
        fastk[t] = (close[t] - lowest) / diff if diff != 0.0 else 0.0
    lookback = fastk_period + slowk_period + slowd_period - 3
    slowk = np.empty(size)
    slowd = np.empty(size)
    slowk[:lookback] = np.nan
    slowd[:lookback] = np.nan
    _sma_into(fastk, fastk_period - 1, slowk_period, slowk)
    _sma_into(slowk, fastk_period + slowk_period - 2, slowd_period, slowd)
    slowk[:lookback] = np.nan
    return slowk, slowd


_stochastic = jit(_stochastic_python)


# --- public functions ----------------------------------------------------------------------------


def rsi(close: ArrayLike, n: int = 14) -> FloatArray:
    """Wilder's relative strength index, in [0, 100] (TA-Lib's ``RSI``).

    With ``d[t] = close[t] - close[t-1]``, the average gain ``G`` and loss ``L`` start as the means of
    ``max(d, 0)`` and ``max(-d, 0)`` over bars ``1..n`` and are then smoothed as
    ``G[t] = (G[t-1] * (n - 1) + max(d[t], 0)) / n`` (same for ``L``);
    ``RSI[t] = 100 * G[t] / (G[t] + L[t])``, and 0 when ``G + L = 0`` (a flat window, as TA-Lib).

    Parameters
    ----------
    close : 1-D finite series, at least ``n + 1`` values.
    n : smoothing period, >= 2.

    Returns
    -------
    Array of the input's length; ``out[:n]`` is NaN.

    Examples
    --------
    >>> rsi([1.0, 2.0, 1.5, 2.5], n=2).round(4).tolist()
    [nan, nan, 66.6667, 85.7143]
    """
    period = check_positive_int(n, "n", minimum=2)
    return rsi_kernel(_as_series(close, "close", period), period)


def macd(close: ArrayLike, fast: int = 12, slow: int = 26, signal: int = 9) -> FloatArray3:
    """Moving average convergence/divergence (TA-Lib's ``MACD``): ``(macd, signal, hist)``.

    ``EMA_p[t] = EMA_p[t-1] + (close[t] - EMA_p[t-1]) * 2 / (p + 1)``. As in TA-Lib, the slow and
    the fast EMA both start at bar ``slow - 1``, each seeded with the simple mean of its last ``p``
    closes there; ``macd = EMA_fast - EMA_slow``; ``signal`` is the EMA of ``macd`` with period
    ``signal``, seeded with the mean of its first ``signal`` values; ``hist = macd - signal``.

    Parameters
    ----------
    close : 1-D finite series, at least ``slow + signal - 1`` values.
    fast, slow : EMA periods, ``2 <= fast < slow``.
    signal : signal-line period, >= 1.

    Returns
    -------
    Three arrays of the input's length; the first ``slow + signal - 2`` entries of each are NaN.
    """
    f = check_positive_int(fast, "fast", minimum=2)
    s = check_positive_int(slow, "slow", minimum=2)
    g = check_positive_int(signal, "signal")
    if f >= s:
        raise InvalidInputError(f"fast must be < slow, got fast={f} and slow={s}")
    return _macd(_as_series(close, "close", s + g - 2), f, s, g)


def bollinger_bands(close: ArrayLike, n: int = 20, k: float = 2.0) -> FloatArray3:
    """Bollinger bands (TA-Lib's ``BBANDS`` with an SMA): ``(upper, middle, lower)``.

    ``middle[t] = mean(close[t-n+1..t])``, ``sd[t]`` the population (ddof=0) standard deviation of
    the same window, ``upper = middle + k * sd``, ``lower = middle - k * sd``.

    Parameters
    ----------
    close : 1-D finite series, at least ``n`` values.
    n : window, >= 2.
    k : band width in standard deviations, >= 0.

    Returns
    -------
    Three arrays of the input's length; the first ``n - 1`` entries of each are NaN.

    Examples
    --------
    >>> [b.tolist() for b in bollinger_bands([1.0, 3.0, 3.0], n=2, k=2.0)]
    [[nan, 4.0, 3.0], [nan, 2.0, 3.0], [nan, 0.0, 3.0]]
    """
    period = check_positive_int(n, "n", minimum=2)
    width = check_range(k, "k", 0.0, np.inf, hi_open=True)
    return _bollinger(_as_series(close, "close", period - 1), period, width)


def momentum(close: ArrayLike, n: int = 10) -> FloatArray:
    """Momentum (TA-Lib's ``MOM``): ``mom[t] = close[t] - close[t - n]``.

    Parameters
    ----------
    close : 1-D finite series, at least ``n + 1`` values.
    n : lag, >= 1.

    Returns
    -------
    Array of the input's length; ``out[:n]`` is NaN.

    Examples
    --------
    >>> momentum([1.0, 2.0, 4.0], n=1).tolist()
    [nan, 1.0, 2.0]
    """
    period = check_positive_int(n, "n")
    c = _as_series(close, "close", period)
    # One vectorised subtraction: numpy's ufunc beats a numba loop here (no kernel dispatch, and
    # numba's fresh allocation per call costs more than the work at 100k bars).
    out = np.empty(c.shape[0])
    out[:period] = np.nan
    np.subtract(c[period:], c[:-period], out=out[period:])
    return out


def stochastic(
    high: ArrayLike,
    low: ArrayLike,
    close: ArrayLike,
    fastk_period: int = 5,
    slowk_period: int = 3,
    slowd_period: int = 3,
) -> tuple[FloatArray, FloatArray]:
    """Slow stochastic oscillator (TA-Lib's ``STOCH`` with SMA smoothing): ``(slowk, slowd)``.

    ``fastk[t] = 100 * (close[t] - LL) / (HH - LL)`` with ``LL``, ``HH`` the lowest low and highest
    high of bars ``t-fastk_period+1..t`` (0 when ``HH = LL``); ``slowk = SMA(fastk, slowk_period)``;
    ``slowd = SMA(slowk, slowd_period)``.

    Parameters
    ----------
    high, low, close : 1-D price arrays of the same length, finite, > 0, ``high >= low``, at least
        ``fastk_period + slowk_period + slowd_period - 2`` bars.
    fastk_period, slowk_period, slowd_period : window and smoothing periods, each >= 1.

    Returns
    -------
    Two arrays of the input's length; the first ``fastk_period + slowk_period + slowd_period - 3``
    entries of each are NaN.
    """
    fk = check_positive_int(fastk_period, "fastk_period")
    sk = check_positive_int(slowk_period, "slowk_period")
    sd = check_positive_int(slowd_period, "slowd_period")
    h, lo, c = as_ohlc(high, low, close, min_len=fk + sk + sd - 2)
    return _stochastic(h, lo, c, fk, sk, sd)
