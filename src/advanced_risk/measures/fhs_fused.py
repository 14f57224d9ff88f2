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

The pairwise summation is the one of ``rl.agents.decode`` (measures may not import from rl).
"""

from __future__ import annotations

import numpy as np

from advanced_risk.measures.jit import jit
from advanced_risk.measures.validation import MAX_ABS_RETURN, FloatArray
from advanced_risk.measures.var_kernels import fhs_kernel
from advanced_risk.measures.volatility import gjr_garch_variance_kernel

__all__ = ["fhs_garch_kernel", "mean_square_kernel", "pairwise_mean_kernel"]

_BLOCK = 128
"""NumPy's ``PW_BLOCKSIZE``: ranges up to this length are summed with 8 accumulators, longer ones split."""


def _leaf_python(a: FloatArray, lo: int, n: int) -> float:
    """NumPy's ``pairwise_sum`` of ``a[lo:lo + n]`` for ``n <= 128`` (no split)."""
    if n < 8:
        res = -0.0
        for i in range(lo, lo + n):
            res += a[i]
        return float(res)
    r0, r1, r2, r3 = a[lo], a[lo + 1], a[lo + 2], a[lo + 3]
    r4, r5, r6, r7 = a[lo + 4], a[lo + 5], a[lo + 6], a[lo + 7]
    i = 8
    while i < n - n % 8:
        k = lo + i
        r0, r1, r2, r3 = r0 + a[k], r1 + a[k + 1], r2 + a[k + 2], r3 + a[k + 3]
        r4, r5, r6, r7 = r4 + a[k + 4], r5 + a[k + 5], r6 + a[k + 6], r7 + a[k + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[lo + i]
        i += 1
    return float(res)


def _pairwise_sum_python(a: FloatArray) -> float:
    """NumPy's pairwise summation of the 1-D ``a`` (its recursion, unrolled onto an explicit stack)."""
    n = a.shape[0]
    if n <= _BLOCK:
        return _leaf_kernel(a, 0, n)
    los, ns = np.empty(64, np.int64), np.empty(64, np.int64)
    stage, left = np.zeros(64, np.int64), np.zeros(64)
    top, los[0], ns[0], value, returned = 0, 0, n, 0.0, False
    while True:
        if not returned:  # descend into the range on top of the stack
            m = ns[top]
            if m <= _BLOCK:
                value, returned, top = _leaf_kernel(a, los[top], m), True, top - 1
            else:
                half = m // 2
                half -= half % 8
                stage[top] = 1
                los[top + 1], ns[top + 1], stage[top + 1] = los[top], half, 0
                top += 1
        elif top < 0:
            return value
        elif stage[top] == 1:  # the left half is summed: now the right half
            half = ns[top] // 2
            half -= half % 8
            left[top], stage[top] = value, 2
            los[top + 1], ns[top + 1], stage[top + 1] = los[top] + half, ns[top] - half, 0
            top, returned = top + 1, False
        else:  # both halves summed
            value, top = left[top] + value, top - 1


def _pairwise_mean_python(a: FloatArray) -> float:
    """``np.mean(a)`` of a contiguous 1-D float64 ``a`` (at least one value)."""
    return float((0.0 + _pairwise_sum_kernel(a)) / a.shape[0])


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
    ``np.mean((q - mu) ** 2)``; as ``fhs_kernel(q, GarchParams.variance(q), mu, level)``.

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
    variance = gjr_garch_variance_kernel(q, mu, omega, alpha, gamma, beta, init)
    var, cvar = fhs_kernel(q, variance, mu, level)
    return var, cvar, True


_leaf_kernel = jit(_leaf_python)
_pairwise_sum_kernel = jit(_pairwise_sum_python)
_pairwise_mean_kernel = jit(_pairwise_mean_python)
pairwise_mean_kernel = _pairwise_mean_kernel
mean_square_kernel = jit(_mean_square_python)
fhs_garch_kernel = jit(_fhs_garch_python)
