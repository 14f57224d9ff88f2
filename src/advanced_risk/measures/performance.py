"""Performance measures of a return series or an equity curve.

Conventions: returns are simple per-period returns; ``periods_per_year`` annualises (default
``PERIODS_PER_YEAR``, 252, for daily bars); Sharpe and Sortino use ``ddof=1`` and a per-period
risk-free rate; drawdowns are positive fractions of the running peak (0.25 = 25 % below the peak).

Degenerate inputs, defined rather than left to floating point:

- NaN, inf or ``|r| > MAX_ABS_RETURN`` (1e6): ``InvalidInputError`` (``measures.validation``).
- A return below -1 (losing more than the whole equity) is impossible for the series these measures
  compound: drawdowns, the annualised return and Calmar raise ``InvalidInputError`` naming the
  index. A return of exactly -1 is ruin: equity 0, drawdown 1 from then on, annualised return -1.
- Zero variance: Sharpe is 0, Sortino is ``inf`` for a positive mean and 0 otherwise. A standard
  deviation (downside deviation) at or below ``ZERO_STD_RTOL`` (1e-12) times the largest input
  magnitude (``max(|r|)``, ``|risk_free|``, ``|target|``) counts as zero: it is the rounding noise
  of a mean of identical values (about 1e-16 relative), and real returns never vary only in their
  twelfth significant digit. So constant returns give exactly the zero-variance value.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

from advanced_risk.errors import InvalidInputError
from advanced_risk.measures.jit import jit
from advanced_risk.measures.validation import (
    PERIODS_PER_YEAR,
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

ZERO_STD_RTOL = 1e-12
"""A (downside) standard deviation at or below this fraction of the inputs' largest magnitude is
rounding noise and counts as zero in :func:`sharpe_ratio` and :func:`sortino_ratio`."""


def _as_compounded_returns(returns: ArrayLike) -> FloatArray:
    """Returns that can be compounded into an equity curve: validated, each ``>= -1``."""
    r = as_returns(returns, min_len=1)
    below = np.flatnonzero(r < -1.0)
    if below.size:
        i = int(below[0])
        raise InvalidInputError(
            f"returns must be >= -1 (a simple return below -100 % loses more than the whole equity), "
            f"got {r[i]} at index {i}"
        )
    return r


def _unit_scaled(excess: FloatArray) -> tuple[FloatArray, float]:
    """``(excess / s, s)`` with ``s = max|excess|`` (``(excess, 0.0)`` when all are 0).

    The scaled values lie in [-1, 1], so the squares of the largest ones neither overflow nor
    underflow to 0: a series of constant returns of 1e-200 keeps its exact Sortino of -sqrt(P).
    """
    scale = float(np.abs(excess).max())
    return (excess / scale if scale > 0.0 else excess), scale


def _noise_floor(values: FloatArray, reference: float) -> float:
    """The largest spread that is rounding noise for ``values`` offset by ``reference``."""
    return ZERO_STD_RTOL * max(float(np.abs(values).max()), abs(reference))


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
    """``1 - equity / peak`` computed in log space, so it holds where the equity itself overflows.

    ``gap = log(equity / peak) = log_equity - running_max(log_equity)`` (<= 0) follows its own
    recursion ``gap = min(0, gap + log1p(r))``: a bar that lifts the log equity above the peak sets
    a new peak (gap 0). Carrying the gap rather than the log equity and its peak keeps the numbers
    small, so no rounding of a large log equity (60 bars of +1e6 reach about 829) leaks into the
    drawdown. The drawdown is ``1 - exp(gap) = -expm1(gap)``; ruin (``r = -1``) makes the gap
    ``-inf`` for good, a drawdown of exactly 1.
    """
    n = returns.shape[0]
    out = np.empty(n)
    gap = 0.0
    for t in range(n):
        r = returns[t]
        # ruin is spelled out: log1p(-1) would warn (plain Python) or raise (math.log1p)
        gap = min(0.0, gap + (-math.inf if r == -1.0 else math.log1p(r)))
        # 0.0 - ...: a bar at its peak gives +0.0, never -0.0
        out[t] = 0.0 - math.expm1(gap)
    return out


_drawdown_series = jit(_drawdown_series_python)


def drawdown_series(returns: ArrayLike) -> FloatArray:
    """Drawdown after each period, ``1 - equity / running_peak``, starting from equity 1.

    Computed in log space, ``1 - exp(log_equity - running_max(log_equity))`` with ``log_equity =
    cumsum(log1p(r))``, so an equity beyond the float range (1.0 compounded 1100 times is 2**1100)
    still gives its drawdowns; results on ordinary series agree with the product form to rounding.

    Each value is in [0, 1]; a return of -1 (ruin) gives 1 from then on. A return below -1 raises
    ``InvalidInputError`` (see the module's degenerate-input rules).

    Examples
    --------
    >>> drawdown_series([0.1, -0.5, 0.2]).round(6).tolist()
    [0.0, 0.5, 0.4]
    """
    return _drawdown_series(_as_compounded_returns(returns))


def max_drawdown(returns: ArrayLike) -> float:
    """Largest drawdown of the compounded return series, a positive fraction in [0, 1].

    Computed from log equity (:func:`drawdown_series`), so it stays exact where the equity itself
    would overflow: ``max_drawdown([1e6] * 60 + [-0.5])`` is 0.5.

    Raises ``InvalidInputError`` for a return below -1 (which would give a "drawdown" above 1).
    """
    return float(_drawdown_series(_as_compounded_returns(returns)).max())


def _log_growth(returns: FloatArray) -> float:
    """``log(prod(1 + r)) = sum(log1p(r))``, ``-inf`` after ruin (a return of exactly -1).

    Summing logs keeps the total growth representable where the product itself would overflow
    (``[0.5] * 2000``: growth 1.5**2000) or underflow to 0.
    """
    if (returns == -1.0).any():  # log1p(-1) is -inf with a divide-by-zero warning: say it here
        return -math.inf
    return float(np.log1p(returns).sum())


def annualised_return(returns: ArrayLike, periods_per_year: int = PERIODS_PER_YEAR) -> float:
    """Geometric annualised return ``prod(1 + r) ** (periods_per_year / T) - 1`` (-1 after ruin).

    Computed in log space as ``expm1(sum(log1p(r)) * periods_per_year / T)``, so a growth whose
    product would overflow or underflow a float still gives its annualised value.

    Returns ``inf`` when the annualised growth itself exceeds the float range (about 1.8e308):
    e.g. three minute bars of +0.8 % in total with ``periods_per_year=252 * 390``, compounded over a
    year of minute bars. It is the value's limit (an astronomically large return), as a Sortino ratio
    is ``inf`` without downside; reports show it as not applicable.

    Raises ``InvalidInputError`` for a return below -1.

    Examples
    --------
    >>> round(annualised_return([0.1, -0.05], periods_per_year=2), 12)
    0.045
    >>> annualised_return([0.01, -0.005, 0.02], periods_per_year=252 * 390)
    inf
    """
    r = _as_compounded_returns(returns)
    ppy = check_positive_int(periods_per_year, "periods_per_year")
    log_growth = _log_growth(r)
    if log_growth == -math.inf:
        return -1.0
    try:
        return math.expm1(log_growth * (ppy / r.shape[0]))
    except OverflowError:  # math.expm1 raises beyond ~709.78 instead of returning inf
        return math.inf


def sharpe_ratio(
    returns: ArrayLike, risk_free: float = 0.0, periods_per_year: int = PERIODS_PER_YEAR
) -> float:
    """Annualised Sharpe ratio ``sqrt(P) * mean(r - rf) / std(r - rf, ddof=1)``; 0 for zero volatility.

    Zero volatility includes a std at or below ``ZERO_STD_RTOL * max(max|r|, |rf|)`` (rounding
    noise): constant returns give 0, not ``mean / 1e-18``.

    Examples
    --------
    >>> round(sharpe_ratio([0.01, -0.005, 0.02, 0.0], periods_per_year=1), 6)
    0.563735
    """
    r = as_returns(returns)
    rf = check_finite_scalar(risk_free, "risk_free")
    ppy = check_positive_int(periods_per_year, "periods_per_year")
    z, scale = _unit_scaled(r - rf)
    sd = float(z.std(ddof=1))
    if sd * scale <= _noise_floor(r, rf):  # also an all-zero excess (scale 0)
        return 0.0
    return math.sqrt(ppy) * float(z.mean()) / sd


def sortino_ratio(returns: ArrayLike, target: float = 0.0, periods_per_year: int = PERIODS_PER_YEAR) -> float:
    """Annualised Sortino ratio ``sqrt(P) * mean(r - t) / sqrt(mean(min(r - t, 0)**2))``.

    Returns ``inf`` when there is no downside and the mean excess is positive, 0 when both are 0.
    A downside deviation and a mean at or below ``ZERO_STD_RTOL * max(max|r|, |target|)`` are
    rounding noise and count as 0 (returns that equal the target up to rounding give 0).
    """
    r = as_returns(returns)
    t = check_finite_scalar(target, "target")
    ppy = check_positive_int(periods_per_year, "periods_per_year")
    z, scale = _unit_scaled(r - t)
    downside_z = math.sqrt(float(np.mean(np.minimum(z, 0.0) ** 2)))
    mean_z = float(z.mean())
    noise = _noise_floor(r, t)
    if downside_z * scale <= noise:
        return math.inf if mean_z * scale > noise else 0.0
    # the ratio of the scaled values: the scale cancels, and a subnormal one loses no digits
    return math.sqrt(ppy) * (mean_z / downside_z)


def calmar_ratio(returns: ArrayLike, periods_per_year: int = PERIODS_PER_YEAR) -> float:
    """Annualised return over maximum drawdown; ``inf`` when there is no drawdown and a gain.

    Also ``inf`` when the annualised return is (see :func:`annualised_return`). Raises
    ``InvalidInputError`` for a return below -1.
    """
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
