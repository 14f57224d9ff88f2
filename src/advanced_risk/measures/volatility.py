"""Volatility kernels: true range, Wilder ATR, realised volatility and the variance filters.

Bar measures (true range, ATR) follow TA-Lib's conventions exactly: same length as the input, with
a NaN prefix as long as TA-Lib's lookback. Rolling measures put NaN where the window is not full.

The variance filters (EWMA and GJR-GARCH(1,1) recursions) return one-step-ahead forecasts:
``out[t]`` is the variance forecast for bar ``t`` made with returns up to ``t - 1``, and
``out[T]`` is the forecast for the next, not yet seen bar. Filtered historical simulation
(``var.py``) divides returns by these forecasts and rescales by ``out[T]``.

One module because each function is a volatility estimate of one series (bar ranges, realised,
filtered) under the same input checks and NaN-prefix conventions.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from advanced_risk.errors import InvalidInputError
from advanced_risk.measures.jit import jit
from advanced_risk.measures.validation import (
    FloatArray,
    as_positive,
    as_returns,
    check_finite_scalar,
    check_positive_int,
    check_range,
    check_same_length,
    float_array,
)

__all__ = [
    "ewma_variance",
    "ewma_volatility",
    "gjr_garch_variance",
    "realised_volatility",
    "true_range",
    "wilder_atr",
]


def _ewma_variance_python(returns: FloatArray, lam: float, init: float) -> FloatArray:
    """EWMA variance forecasts as :func:`ewma_variance`, trusting ``lam`` in (0, 1) and ``init >= 0``."""
    n = returns.shape[0]
    out = np.empty(n + 1)
    out[0] = init
    for t in range(n):
        out[t + 1] = lam * out[t] + (1.0 - lam) * returns[t] * returns[t]
    return out


ewma_variance_kernel = jit(_ewma_variance_python)


def _gjr_garch_variance_python(
    returns: FloatArray, mu: float, omega: float, alpha: float, gamma: float, beta: float, init: float
) -> FloatArray:
    """GJR-GARCH(1,1) variance forecasts as :func:`gjr_garch_variance`, trusting the parameters."""
    n = returns.shape[0]
    out = np.empty(n + 1)
    out[0] = init
    for t in range(n):
        e = returns[t] - mu
        shock = alpha + (gamma if e < 0.0 else 0.0)
        out[t + 1] = omega + shock * e * e + beta * out[t]
    return out


gjr_garch_variance_kernel = jit(_gjr_garch_variance_python)


def ewma_variance(returns: ArrayLike, lam: float = 0.94, init: float | None = None) -> FloatArray:
    """RiskMetrics EWMA variance forecasts (zero mean).

    ``s2[t + 1] = lam * s2[t] + (1 - lam) * r[t]**2`` with ``s2[0] = init``.

    Parameters
    ----------
    returns : 1-D array of simple returns, finite, at least 2 values.
    lam : decay in (0, 1); RiskMetrics uses 0.94 for daily data.
    init : starting variance; defaults to the mean of squared returns (zero-mean sample variance).

    Returns
    -------
    Array of length ``len(returns) + 1``: ``out[t]`` forecasts bar ``t``; ``out[-1]`` the next bar.

    Examples
    --------
    >>> ewma_variance([0.01, -0.02], lam=0.5, init=1e-4).round(8).tolist()
    [0.0001, 0.0001, 0.00025]
    """
    r = as_returns(returns)
    check_range(lam, "lam", 0.0, 1.0, lo_open=True, hi_open=True)
    s0 = float(np.mean(r * r)) if init is None else check_range(init, "init", 0.0, np.inf, hi_open=True)
    return ewma_variance_kernel(r, float(lam), s0)


def gjr_garch_variance(
    returns: ArrayLike,
    *,
    mu: float,
    omega: float,
    alpha: float,
    gamma: float,
    beta: float,
    init: float | None = None,
) -> FloatArray:
    """GJR-GARCH(1,1) conditional variance forecasts for given parameters.

    ``e[t] = r[t] - mu``; ``s2[t + 1] = omega + (alpha + gamma * 1[e[t] < 0]) * e[t]**2 + beta * s2[t]``.
    Parameters come from a fit (``advanced_risk.risk.garch``, which uses the ``arch`` library);
    this kernel only filters, so it can run per bar in microseconds.

    Parameters
    ----------
    returns : 1-D array of returns (in the same units the parameters were fitted in).
    mu, omega, alpha, gamma, beta : GJR-GARCH(1,1) parameters (omega > 0; alpha, gamma, beta >= 0).
    init : starting variance; defaults to the sample variance of ``returns - mu``.

    Returns
    -------
    Array of length ``len(returns) + 1``: ``out[t]`` forecasts bar ``t``; ``out[-1]`` the next bar.
    """
    r = as_returns(returns)
    m = check_finite_scalar(mu, "mu")
    w = check_range(omega, "omega", 0.0, np.inf, lo_open=True, hi_open=True)
    a = check_range(alpha, "alpha", 0.0, np.inf, hi_open=True)
    g = check_range(gamma, "gamma", 0.0, np.inf, hi_open=True)
    b = check_range(beta, "beta", 0.0, 1.0, hi_open=True)
    s0 = (
        float(np.mean((r - m) ** 2)) if init is None else check_range(init, "init", 0.0, np.inf, hi_open=True)
    )
    return gjr_garch_variance_kernel(r, m, w, a, g, b, s0)


# --- OHLC validation (shared with indicators.stochastic) -----------------------------------------


def _count_bad_bars_python(high: FloatArray, low: FloatArray, close: FloatArray) -> int:
    # NaN fails every comparison, so this one test rejects NaN, inf, non-positive and high < low.
    # Counting (no early exit) lets the loop vectorise: valid input, the common case, pays ~1 ns/bar.
    bad = 0
    for i in range(high.shape[0]):
        h = high[i]
        lo = low[i]
        c = close[i]
        bad += not ((lo > 0.0) & (h >= lo) & (h < np.inf) & (c > 0.0) & (c < np.inf))
    return bad


_count_bad_bars = jit(_count_bad_bars_python)


def _as_price(values: ArrayLike, name: str) -> FloatArray:
    """A 1-D float64 price series; its values are checked by the caller's compiled pass.

    Text, complex numbers and a Python int beyond the float range raise ``InvalidInputError``
    naming ``name`` (:func:`~advanced_risk.measures.validation.float_array`).
    """
    arr = float_array(values, name)
    if arr.ndim != 1:
        return as_positive(arr, name)  # raises, naming the field
    return arr


def as_ohlc(
    high: ArrayLike, low: ArrayLike, close: ArrayLike, *, min_len: int = 2, check_values: bool = True
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Check one bar series: 1-D, same lengths, finite, positive prices, ``high >= low`` everywhere.

    The fast path is one compiled pass over the three arrays; only a failing series pays for the
    per-field checks that build the error message.

    Raises
    ------
    InvalidInputError
        Naming the field, the bad value and its index, e.g. ``"high must be >= low, got high=9.0 <
        low=10.0 at index 3"``.
    """
    h, lo, c = _as_price(high, "high"), _as_price(low, "low"), _as_price(close, "close")
    check_same_length("high", h, "low", lo)
    check_same_length("high", h, "close", c)
    if h.shape[0] < min_len:
        raise InvalidInputError(f"high, low and close need at least {min_len} bars, got {h.shape[0]}")
    if check_values and _count_bad_bars(h, lo, c):
        raise_bad_ohlc(h, lo, c)
    return h, lo, c


def raise_bad_ohlc(high: FloatArray, low: FloatArray, close: FloatArray) -> None:
    """The slow path of :func:`as_ohlc`: raise the error naming the first bad field and index.

    Kernels that count bad bars inside their own pass (``check_values=False``) call this when
    their count is non-zero.
    """
    for name, arr in (("high", high), ("low", low), ("close", close)):
        as_positive(arr, name)
    i = int(np.argmax(high < low))
    raise InvalidInputError(f"high must be >= low, got high={high[i]} < low={low[i]} at index {i}")


def check_period(value: object, name: str, minimum: int = 1) -> int:
    """:func:`check_positive_int` with a fast path for a plain ``int`` (called on every indicator call)."""
    if type(value) is int and value >= minimum:
        return value
    return check_positive_int(value, name, minimum=minimum)


# --- true range and Wilder ATR -------------------------------------------------------------------


def _bar_range_python(high: float, low: float, prev_close: float) -> float:
    tr = high - low
    up = abs(prev_close - high)
    down = abs(prev_close - low)
    if up > tr:
        tr = up
    if down > tr:
        tr = down
    return tr


_bar_range = jit(_bar_range_python)


def _true_range_python(high: FloatArray, low: FloatArray, close: FloatArray) -> FloatArray:
    out = np.empty(high.shape[0])
    out[0] = np.nan
    for t in range(1, high.shape[0]):
        out[t] = _bar_range(high[t], low[t], close[t - 1])
    return out


_true_range = jit(_true_range_python)


def _wilder_atr_python(
    high: FloatArray, low: FloatArray, close: FloatArray, n: int
) -> tuple[FloatArray, int]:
    size = high.shape[0]
    out = np.empty(size)
    # Pass 1: true range and the validation count of as_ohlc in the same vectorised loop (at 5k
    # bars a separate checking pass and kernel call cost as much as the ATR itself).
    bad = 0
    bad += not (
        (low[0] > 0.0) & (high[0] >= low[0]) & (high[0] < np.inf) & (close[0] > 0.0) & (close[0] < np.inf)
    )
    for t in range(1, size):
        h = high[t]
        lo = low[t]
        c = close[t]
        bad += not ((lo > 0.0) & (h >= lo) & (h < np.inf) & (c > 0.0) & (c < np.inf))
        out[t] = _bar_range(h, lo, close[t - 1])
    total = 0.0
    for t in range(1, n + 1):
        total += out[t]
    atr = total / n
    out[:n] = np.nan
    out[n] = atr
    # Pass 2: ATR[t] = ATR[t-1] * keep + TR[t] * weight, keep = (n-1)/n, weight = 1/n. The recursion
    # is latency-bound, so it advances two bars per step: ATR[t+1] = ATR[t-1] * keep^2 +
    # (w TR[t] keep + w TR[t+1]), which halves the dependency chain (same formula, rounding ~1e-16).
    keep = (n - 1) / n
    keep2 = keep * keep
    weight = 1.0 / n
    t = n + 1
    while t + 1 < size:
        a = out[t] * weight
        b = out[t + 1] * weight
        out[t] = atr * keep + a
        atr = atr * keep2 + (a * keep + b)
        out[t + 1] = atr
        t += 2
    if t < size:
        out[t] = atr * keep + out[t] * weight
    return out, bad


_wilder_atr = jit(_wilder_atr_python, contract=True)


def true_range(high: ArrayLike, low: ArrayLike, close: ArrayLike) -> FloatArray:
    """True range of each bar.

    ``TR[t] = max(H[t] - L[t], |H[t] - C[t-1]|, |L[t] - C[t-1]|)`` for ``t >= 1``; ``TR[0]`` is NaN
    (no previous close), as in TA-Lib's ``TRANGE``.

    Parameters
    ----------
    high, low, close : 1-D price arrays of the same length (at least 2), finite, > 0, ``high >= low``.

    Returns
    -------
    Array of the same length as the input; ``out[0]`` is NaN.

    Examples
    --------
    >>> true_range([10.0, 11.0, 12.0], [9.0, 10.0, 9.5], [9.5, 10.5, 11.0]).tolist()
    [nan, 1.5, 2.5]
    """
    h, lo, c = as_ohlc(high, low, close, min_len=2)
    return _true_range(h, lo, c)


def wilder_atr(high: ArrayLike, low: ArrayLike, close: ArrayLike, n: int = 14) -> FloatArray:
    """Wilder's average true range (TA-Lib's ``ATR``).

    ``ATR[n] = mean(TR[1..n])``, then ``ATR[t] = (ATR[t-1] * (n - 1) + TR[t]) / n`` for ``t > n``.

    Parameters
    ----------
    high, low, close : 1-D price arrays of the same length (at least ``n + 1``), finite, > 0,
        ``high >= low``.
    n : smoothing period, >= 1 (``n = 1`` gives the true range).

    Returns
    -------
    Array of the same length as the input; ``out[:n]`` is NaN (TA-Lib's lookback of ``n``).

    Examples
    --------
    >>> wilder_atr([10.0, 11.0, 12.0, 12.0], [9.0, 10.0, 9.5, 11.0], [9.5, 10.5, 11.0, 11.5], n=2).tolist()
    [nan, nan, 2.0, 1.5]
    """
    p = check_period(n, "n")
    h, lo, c = as_ohlc(high, low, close, min_len=p + 1, check_values=False)
    out, bad = _wilder_atr(h, lo, c, p)
    if bad:
        raise_bad_ohlc(h, lo, c)
    return out


# --- realised and EWMA volatility ----------------------------------------------------------------


def _rolling_mean_std_into_python(
    x: FloatArray, window: int, ddof: int, mean: FloatArray, std: FloatArray
) -> None:
    """Rolling mean (running sum) and standard deviation with ``ddof`` into ``mean`` and ``std``
    (each as long as ``x``), O(1) per bar.

    The window sum and the sum of squared deviations ``ss`` slide with
    ``ss += (x_in - x_out) * (x_in - mean_new + x_out - mean_old)`` and are recomputed exactly
    (two-pass over the window) every ``4 * window`` bars, so rounding cannot drift along a long
    series; the textbook ``sum(x^2)/n - mean^2`` would lose digits on prices far from zero.
    """
    size = x.shape[0]  # std holds ss until the last pass turns it into the std in place
    mean[: window - 1] = np.nan
    std[: window - 1] = np.nan
    inv_w = 1.0 / window
    start = window - 1
    while True:
        total = 0.0  # exact two-pass sum and squared deviations at bar `start`
        for i in range(start - window + 1, start + 1):
            total += x[i]
        mu = total * inv_w
        ss = 0.0
        for i in range(start - window + 1, start + 1):
            d = x[i] - mu
            ss += d * d
        mean[start] = mu
        std[start] = ss
        stop = min(start + 1 + 4 * window, size)
        # Offset views instead of x[t - window]: no negative-index wraparound checks when compiled.
        x_in = x[start + 1 : stop]
        x_out = x[start + 1 - window : stop - window]
        mean_dst = mean[start + 1 : stop]
        std_dst = std[start + 1 : stop]
        for i in range(x_in.shape[0]):
            dx = x_in[i] - x_out[i]
            total += dx
            mu_new = total * inv_w
            ss += dx * (x_in[i] - mu_new + x_out[i] - mu)
            mu = mu_new
            mean_dst[i] = mu
            std_dst[i] = ss
        if stop == size:
            break
        start = stop - 1  # re-anchor: recompute ss exactly at the last bar of this block
    scale = 1.0 / (window - ddof)
    for t in range(window - 1, size):
        std[t] = np.sqrt(max(std[t], 0.0) * scale)  # a separate pass, so the square roots vectorise


rolling_mean_std_into_kernel = jit(_rolling_mean_std_into_python)


def _rolling_mean_std_python(x: FloatArray, window: int, ddof: int) -> tuple[FloatArray, FloatArray]:
    """Rolling mean and standard deviation as :func:`rolling_mean_std_into_kernel` (new arrays)."""
    mean = np.empty(x.shape[0])
    std = np.empty(x.shape[0])
    rolling_mean_std_into_kernel(x, window, ddof, mean, std)
    return mean, std


rolling_mean_std_kernel = jit(_rolling_mean_std_python)


def _annualise(periods_per_year: int | None) -> float:
    if periods_per_year is None:
        return 1.0
    return float(np.sqrt(check_positive_int(periods_per_year, "periods_per_year")))


def realised_volatility(
    returns: ArrayLike, window: int, *, periods_per_year: int | None = None
) -> FloatArray:
    """Rolling realised volatility: the sample standard deviation of the last ``window`` returns.

    ``vol[t] = sqrt(sum_{i=t-w+1..t} (r[i] - mean)^2 / (w - 1)) * sqrt(periods_per_year)``.

    Parameters
    ----------
    returns : 1-D array of simple returns, finite, at least ``window`` values.
    window : number of returns per estimate, >= 2.
    periods_per_year : if given (252 for daily bars), annualise by ``sqrt(periods_per_year)``;
        by default the volatility is per period, in the units of ``returns``.

    Returns
    -------
    Array of the same length as ``returns``; ``out[:window - 1]`` is NaN, ``out[t]`` uses
    ``returns[t - window + 1 .. t]`` (matches ``pandas.Series.rolling(window).std()``).

    Examples
    --------
    >>> realised_volatility([0.01, -0.01, 0.03], window=2).round(6).tolist()
    [nan, 0.014142, 0.028284]
    """
    w = check_period(window, "window", minimum=2)
    r = as_returns(returns, min_len=w)
    scale = _annualise(periods_per_year)
    std = rolling_mean_std_kernel(r, w, 1)[1]
    return std * scale if scale != 1.0 else std


def ewma_volatility(
    returns: ArrayLike, lam: float = 0.94, *, init: float | None = None, periods_per_year: int | None = None
) -> FloatArray:
    """RiskMetrics EWMA volatility forecasts: the square root of :func:`ewma_variance`.

    ``vol[t] = sqrt(s2[t])`` with ``s2[t + 1] = lam * s2[t] + (1 - lam) * r[t]**2``, optionally
    times ``sqrt(periods_per_year)``.

    Parameters
    ----------
    returns : 1-D array of simple returns, finite, at least 2 values.
    lam : decay in (0, 1); RiskMetrics uses 0.94 for daily data.
    init : starting variance (per period); defaults to the mean of squared returns.
    periods_per_year : if given, annualise by ``sqrt(periods_per_year)``; by default per period.

    Returns
    -------
    Array of length ``len(returns) + 1``: ``out[t]`` forecasts bar ``t``; ``out[-1]`` the next bar.

    Examples
    --------
    >>> ewma_volatility([0.01, -0.02], lam=0.5, init=1e-4).round(6).tolist()
    [0.01, 0.01, 0.015811]
    """
    scale = _annualise(periods_per_year)
    vol: FloatArray = np.sqrt(ewma_variance(returns, lam, init))
    return vol * scale if scale != 1.0 else vol
