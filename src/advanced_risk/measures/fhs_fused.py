"""Fused kernels of the tracker's filtered historical simulation (issue 14).

``RiskTracker._fhs_pair`` ran ~10 small NumPy calls per decision (``np.mean(p * p)``, the rescaling,
``as_returns``, the GARCH filter's starting ``np.mean((q - mu) ** 2)``); inside the flow each first
call pays for cold caches (docs/performance.md). These kernels do the same float64 arithmetic in the
same order, so the results are bit for bit the NumPy formulation's
(``tests/unit/test_decide_fast_paths.py`` compares them):

- elementwise ``*``, ``-``, ``/`` and ``x ** 2`` (NumPy computes it as ``x * x``): exact in any order;
- ``np.mean`` of a contiguous 1-D float64 array: ``(0.0 + pairwise_sum(x)) / n`` with NumPy's
  pairwise summation (8 accumulators in blocks of up to 128, longer ranges split in halves rounded
  down to a multiple of 8; sequential under 8 values).

The pairwise summation is ``measures.pairwise``'s.
"""

from __future__ import annotations

import numpy as np

from advanced_risk.measures.jit import jit
from advanced_risk.measures.pairwise import pairwise_sum_kernel
from advanced_risk.measures.validation import MAX_ABS_RETURN, FloatArray
from advanced_risk.measures.var_kernels import fhs_kernel, floored_variance_kernel
from advanced_risk.measures.volatility import gjr_garch_variance_kernel

__all__ = ["fhs_garch_kernel", "mean_square_kernel", "pairwise_mean_kernel"]


def _pairwise_mean_python(a: FloatArray) -> float:
    """``np.mean(a)`` of a contiguous 1-D float64 ``a`` (at least one value)."""
    return float((0.0 + pairwise_sum_kernel(a)) / a.shape[0])


def _mean_square_python(p: FloatArray) -> float:
    """``np.mean(p * p)``."""
    return float(_pairwise_mean_kernel(p * p))


def _fhs_garch_python(
    p: FloatArray,
    scale: float,
    mu: float,
    omega: float,
    alpha: float,
    gamma: float,
    beta: float,
    level: float,
) -> tuple[float, float, bool]:
    """FHS (VaR, CVaR) of ``q = p / scale`` filtered by GJR-GARCH, the filter started at
    ``np.mean((q - mu) ** 2)`` and floored (``floored_variance_kernel``, by that mean); as
    ``fhs_kernel(q, floored_variance_kernel(GarchParams.variance(q), init), mu, level)``.

    The third value is False (and the pair NaN) when ``q`` would fail ``as_returns`` (a value
    non-finite or beyond ``MAX_ABS_RETURN``): the caller then takes the validating path.
    """
    n = p.shape[0]
    q = p / scale
    dev = np.empty(n)
    for i in range(n):
        if not abs(q[i]) <= MAX_ABS_RETURN:
            return np.nan, np.nan, False
        e = q[i] - mu
        dev[i] = e * e
    init = _pairwise_mean_kernel(dev)
    variance = floored_variance_kernel(
        gjr_garch_variance_kernel(q, mu, omega, alpha, gamma, beta, init), init
    )
    var, cvar = fhs_kernel(q, variance, mu, level)
    return var, cvar, True


_pairwise_mean_kernel = jit(_pairwise_mean_python)
pairwise_mean_kernel = _pairwise_mean_kernel
mean_square_kernel = jit(_mean_square_python)
fhs_garch_kernel = jit(_fhs_garch_python)
