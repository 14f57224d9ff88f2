"""Performance measures of a return series or an equity curve.

Conventions: returns are simple per-period returns; ``periods_per_year`` annualises (252 for daily
bars); Sharpe and Sortino use ``ddof=1`` and a per-period risk-free rate; drawdowns are positive
fractions of the running peak (0.25 = 25 % below the peak).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

from advanced_risk.measures._jit import jit
from advanced_risk.measures._validation import (
    FloatArray,
    as_array,
    as_positive,
    as_returns,
    check_finite_scalar,
    check_positive_int,
)

__all__ = [
    "annualised_return",
    "calmar_ratio",
    "drawdown_series",
    "log_returns",
    "max_drawdown",
    "sharpe_ratio",
    "simple_returns",
    "sortino_ratio",
    "turnover",
]


def simple_returns(prices: ArrayLike) -> FloatArray:
    """Simple returns ``p[t] / p[t-1] - 1`` of a 1-D price series or a (T, n) price matrix.

    Examples
    --------
    >>> simple_returns([100.0, 110.0, 99.0]).round(6).tolist()
    [0.1, -0.1]
    """
    p = as_positive(prices, "prices", ndim=(1, 2), min_len=2)
    out: FloatArray = p[1:] / p[:-1] - 1.0
    return out


def log_returns(prices: ArrayLike) -> FloatArray:
    """Log returns ``ln(p[t] / p[t-1])`` of a 1-D price series or a (T, n) price matrix."""
    p = as_positive(prices, "prices", ndim=(1, 2), min_len=2)
    out: FloatArray = np.diff(np.log(p), axis=0)
    return out


def _drawdown_series_python(returns: FloatArray) -> FloatArray:
    n = returns.shape[0]
    out = np.empty(n)
    equity = 1.0
    peak = 1.0
    for t in range(n):
        equity *= 1.0 + returns[t]
        peak = max(peak, equity)
        out[t] = 1.0 - equity / peak
    return out


_drawdown_series = jit(_drawdown_series_python)


def drawdown_series(returns: ArrayLike) -> FloatArray:
    """Drawdown after each period, ``1 - equity / running_peak``, starting from equity 1.

    Examples
    --------
    >>> drawdown_series([0.1, -0.5, 0.2]).round(6).tolist()
    [0.0, 0.5, 0.4]
    """
    return _drawdown_series(as_returns(returns, min_len=1))


def max_drawdown(returns: ArrayLike) -> float:
    """Largest drawdown of the compounded return series, a positive fraction in [0, 1]."""
    return float(_drawdown_series(as_returns(returns, min_len=1)).max())


def annualised_return(returns: ArrayLike, periods_per_year: int = 252) -> float:
    """Geometric annualised return ``prod(1 + r) ** (periods_per_year / T) - 1`` (-1 after ruin)."""
    r = as_returns(returns, min_len=1)
    ppy = check_positive_int(periods_per_year, "periods_per_year")
    growth = float(np.prod(1.0 + r))
    return -1.0 if growth <= 0.0 else growth ** (ppy / r.shape[0]) - 1.0


def sharpe_ratio(returns: ArrayLike, risk_free: float = 0.0, periods_per_year: int = 252) -> float:
    """Annualised Sharpe ratio ``sqrt(P) * mean(r - rf) / std(r - rf, ddof=1)``; 0 for zero volatility.

    Examples
    --------
    >>> round(sharpe_ratio([0.01, -0.005, 0.02, 0.0], periods_per_year=1), 6)
    0.563735
    """
    excess = as_returns(returns) - check_finite_scalar(risk_free, "risk_free")
    ppy = check_positive_int(periods_per_year, "periods_per_year")
    sd = float(excess.std(ddof=1))
    return 0.0 if sd == 0.0 else math.sqrt(ppy) * float(excess.mean()) / sd


def sortino_ratio(returns: ArrayLike, target: float = 0.0, periods_per_year: int = 252) -> float:
    """Annualised Sortino ratio ``sqrt(P) * mean(r - t) / sqrt(mean(min(r - t, 0)**2))``.

    Returns ``inf`` when there is no downside and the mean excess is positive, 0 when both are 0.
    """
    excess = as_returns(returns) - check_finite_scalar(target, "target")
    ppy = check_positive_int(periods_per_year, "periods_per_year")
    downside = math.sqrt(float(np.mean(np.minimum(excess, 0.0) ** 2)))
    mean = float(excess.mean())
    if downside == 0.0:
        return math.inf if mean > 0 else 0.0
    return math.sqrt(ppy) * mean / downside


def calmar_ratio(returns: ArrayLike, periods_per_year: int = 252) -> float:
    """Annualised return over maximum drawdown; ``inf`` when there is no drawdown and a gain."""
    ann = annualised_return(returns, periods_per_year)
    mdd = max_drawdown(returns)
    if mdd == 0.0:
        return math.inf if ann > 0 else 0.0
    return ann / mdd


def turnover(weights: ArrayLike) -> float:
    """Average two-way turnover per rebalance: ``mean_t sum_i |w[t, i] - w[t-1, i]|``.

    ``weights`` is a (T, n) matrix of held weights (include the cash column to count cash moves).
    Moving fully from one asset to another is a turnover of 2.

    Examples
    --------
    >>> turnover([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    1.0
    """
    w = as_array(weights, "weights", ndim=2, min_len=2)
    return float(np.abs(np.diff(w, axis=0)).sum(axis=1).mean())
