"""Volatility kernels: true range, Wilder ATR, realised volatility and the variance filters.

The variance filters (EWMA and GJR-GARCH(1,1) recursions) return one-step-ahead forecasts:
``out[t]`` is the variance forecast for bar ``t`` made with returns up to ``t - 1``, and
``out[T]`` is the forecast for the next, not yet seen bar. Filtered historical simulation
(``var.py``) divides returns by these forecasts and rescales by ``out[T]``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from advanced_risk.measures._jit import jit
from advanced_risk.measures._validation import FloatArray, as_returns, check_finite_scalar, check_range

__all__ = ["ewma_variance", "gjr_garch_variance"]


def _ewma_variance_python(returns: FloatArray, lam: float, init: float) -> FloatArray:
    n = returns.shape[0]
    out = np.empty(n + 1)
    out[0] = init
    for t in range(n):
        out[t + 1] = lam * out[t] + (1.0 - lam) * returns[t] * returns[t]
    return out


_ewma_variance = jit(_ewma_variance_python)


def _gjr_garch_variance_python(
    returns: FloatArray, mu: float, omega: float, alpha: float, gamma: float, beta: float, init: float
) -> FloatArray:
    n = returns.shape[0]
    out = np.empty(n + 1)
    out[0] = init
    for t in range(n):
        e = returns[t] - mu
        shock = alpha + (gamma if e < 0.0 else 0.0)
        out[t + 1] = omega + shock * e * e + beta * out[t]
    return out


_gjr_garch_variance = jit(_gjr_garch_variance_python)


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
    return _ewma_variance(r, float(lam), s0)


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
    s0 = float(np.mean((r - m) ** 2)) if init is None else check_range(init, "init", 0.0, np.inf, hi_open=True)
    return _gjr_garch_variance(r, m, w, a, g, b, s0)
