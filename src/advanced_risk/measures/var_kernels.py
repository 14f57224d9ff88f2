"""The numba kernels behind ``var.py``: each returns a (VaR, CVaR) pair, so a measure and its CVaR
share one body.

Each kernel is plain Python over arrays and scalars (``_x_python``) compiled by the compat ``jit``
(``x_kernel``); the public, validating functions live in ``var.py``. Kernels trust their inputs:
finite float64 returns (at least 2), ``alpha`` in (0, 1), positive variances.
Quantiles are numpy's linear ones, interpolated exactly as ``numpy._lerp`` does it.
"""

from __future__ import annotations

import math

import numpy as np

from advanced_risk.measures.jit import jit
from advanced_risk.measures.validation import FloatArray


def _sorted_quantile_python(s: FloatArray, n: int, p: float) -> float:
    """NumPy's linear quantile at ``p`` of ``n`` values whose smallest sit sorted in ``s``.

    Reads ``s[floor((n - 1) p)]`` and the next one (only ``s[n - 1]`` at ``p`` = 1); interpolated
    exactly as ``numpy._lerp`` does it.
    """
    pos = (n - 1) * p
    lo = math.floor(pos)
    if lo >= n - 1:
        return float(s[n - 1])
    g = pos - lo
    d = s[lo + 1] - s[lo]
    return float(s[lo + 1] - d * (1.0 - g) if g >= 0.5 else s[lo] + d * g)


_sorted_quantile = jit(_sorted_quantile_python)


def _sorted_sum_to_python(s: FloatArray, n: int, q: float) -> tuple[float, int]:
    """``(sum, count)`` of the leading values of the sorted ``s[:n]`` that are ``<= q``, summed in order."""
    total = 0.0
    m = 0
    while m < n and s[m] <= q:
        total += s[m]
        m += 1
    return total, m


_sorted_sum_to = jit(_sorted_sum_to_python)


def _sorted_tail_python(s: FloatArray, n: int, p: float) -> tuple[float, float]:
    """(VaR, CVaR) of the first ``n`` values of the sorted ``s`` at tail probability ``p``.

    The quantile is numpy's linear one, interpolated exactly as ``numpy._lerp`` does it.
    """
    q = _sorted_quantile(s, n, p)
    total, m = _sorted_sum_to(s, n, q)
    tail_mean = min(total / m, q)  # min(): guards rounding only; mathematically mean <= q
    return -q, -tail_mean


sorted_tail_kernel = jit(_sorted_tail_python)


def _head_insert_python(head: FloatArray, hn: int, h: int, v: float) -> int:
    """Insert ``v`` into the sorted ``head[:hn]`` (capacity ``h``: when full, the largest drops out)."""
    if hn == h:
        if v >= head[h - 1]:
            return hn
        k = h - 1
    else:
        k = hn
        hn += 1
    while k > 0 and head[k - 1] > v:
        head[k] = head[k - 1]
        k -= 1
    head[k] = v
    return hn


_head_insert = jit(_head_insert_python)


MAX_HEAD = 64
"""The longest tail :func:`historical_kernel` selects by insertion; a longer one sorts the window."""


def _historical_python(x: FloatArray, alpha: float) -> tuple[float, float]:
    """Historical (VaR, CVaR) of ``x`` at level ``alpha``: ``sorted_tail_kernel`` of ``np.sort(x)``.

    Only the quantile's two order statistics and the values at or below it enter, so where that tail
    is short (``h = floor((n - 1)(1 - alpha)) + 2 <= MAX_HEAD`` values, below ``n``) only the ``h``
    smallest are kept, sorted by insertion: O(n) comparisons instead of a sort (6 values of 500 at
    alpha 0.99). The tail is summed in sorted order, as after a sort; values outside the head are at
    least its largest, so any of them at or below the quantile equals it and adds the quantile
    itself. The same floats in the same order: the sort's result bit for bit, except that a tie of
    ``-0.0`` and ``0.0`` may come out in another order (a sign of zero; NumPy's sort does not fix it
    either).
    """
    n = x.shape[0]
    p = 1.0 - alpha
    h = math.floor((n - 1) * p) + 2
    if h > MAX_HEAD or h >= n:
        return sorted_tail_kernel(np.sort(x), n, p)
    head = np.empty(h)
    hn = 0
    for i in range(n):
        hn = _head_insert(head, hn, h, x[i])
    q = _sorted_quantile(head, n, p)
    total, m = _sorted_sum_to(head, h, q)
    if m == h:  # ties of q beyond the head: each equals q
        m = 0
        for i in range(n):
            if x[i] <= q:
                m += 1
        for _ in range(h, m):
            total += q
    return -q, -min(total / m, q)


historical_kernel = jit(_historical_python)


def _moments_python(x: FloatArray) -> tuple[float, float, float, float]:
    """Mean, standard deviation (ddof=1), population skewness and excess kurtosis of ``x``."""
    n = x.shape[0]
    mu = x.mean()
    d = x - mu
    m2 = (d * d).mean()
    sigma = math.sqrt(m2 * n / (n - 1))
    if m2 <= (1e-15 * mu) ** 2:  # constant series (scipy's test): no shape to correct
        return mu, sigma, 0.0, 0.0
    z = d / math.sqrt(m2)  # standardise first: m2**1.5 would underflow for tiny spreads
    return mu, sigma, (z**3).mean(), (z**4).mean() - 3.0


_moments = jit(_moments_python)


def _gaussian_python(x: FloatArray, alpha: float, q: float, phi_q: float) -> tuple[float, float]:
    """Gaussian (VaR, CVaR); ``q = Phi^-1(1 - alpha)`` and ``phi_q`` its density, from the caller."""
    mu, sigma, _, _ = _moments(x)
    return -(mu + q * sigma), -mu + sigma * phi_q / (1.0 - alpha)


gaussian_kernel = jit(_gaussian_python)


def _cornish_fisher_python(x: FloatArray, alpha: float, q: float, phi_q: float) -> tuple[float, float]:
    """Cornish-Fisher (VaR, CVaR); ``q``, ``phi_q`` as in the Gaussian kernel.

    The expansion ``q_cf(z) = c0 + c1 z + c2 z^2 + c3 z^3`` is a quantile only where it increases
    in ``z``. With extreme skewness and kurtosis (a flat history followed by a few losses: skewness
    -16, excess kurtosis 255) it has folded over at ``q`` and turned a long book's loss tail into a
    gain (a negative VaR, a CVaR below the VaR). Where it decreases at ``q`` (``c1 + 2 c2 q +
    3 c3 q^2 <= 0``), or its tail mean comes out below its quantile, the pair is the Gaussian one.
    """
    mu, sigma, s, k = _moments(x)
    p = 1.0 - alpha
    # q_cf(z) = c0 + c1 z + c2 z^2 + c3 z^3; its mean over z < q uses the Gaussian partial
    # moments M_k = E[Z^k; Z < q]: M0 = p, M1 = -phi, M2 = p - q phi, M3 = -(q^2 + 2) phi.
    c0, c1, c2, c3 = -s / 6.0, 1.0 - k / 8.0 + 5.0 * s * s / 36.0, s / 6.0, k / 24.0 - s * s / 18.0
    q_cf = q + (q * q - 1.0) * s / 6.0 + (q**3 - 3.0 * q) * k / 24.0 - (2.0 * q**3 - 5.0 * q) * s * s / 36.0
    tail = (c0 * p - c1 * phi_q + c2 * (p - q * phi_q) - c3 * (q * q + 2.0) * phi_q) / p
    if c1 + 2.0 * c2 * q + 3.0 * c3 * q * q <= 0.0 or tail > q_cf:  # folded over: Gaussian
        return -(mu + q * sigma), -mu + sigma * phi_q / p
    return -(mu + q_cf * sigma), -(mu + tail * sigma)


cornish_fisher_kernel = jit(_cornish_fisher_python)


def _fhs_python(returns: FloatArray, variance: FloatArray, mu: float, alpha: float) -> tuple[float, float]:
    """Filtered historical simulation (VaR, CVaR) for the next bar.

    ``z_t = (r_t - mu) / sqrt(variance[t])``; the historical pair of ``z`` rescaled by
    ``sqrt(variance[n])``. ``variance`` has ``len(returns) + 1`` positive entries.
    """
    n = returns.shape[0]
    z = (returns - mu) / np.sqrt(variance[:n])
    var_z, cvar_z = historical_kernel(z, alpha)
    sigma = math.sqrt(variance[n])
    return -mu + sigma * var_z, -mu + sigma * cvar_z


fhs_kernel = jit(_fhs_python)

FHS_SIGMA_FLOOR = 0.1
"""The risk tracker's FHS standardises each return by a filtered volatility of at least this share
of the window's root mean square return (:func:`floored_variance_kernel`). On market data a filter
stays well above it (a calm year's volatility is ~0.3x a window holding a crash); after a long run
of unchanged prices (a stale quote, a closed market on a 24/7 clock) an EWMA or GARCH variance
decays towards 0, and the first small move would standardise to thousands of sigmas: a CVaR of
1e64 times the equity, found by an adversarial test of one flat asset."""


def _floored_variance_python(variance: FloatArray, mean_square: float) -> FloatArray:
    """``max(variance, (FHS_SIGMA_FLOOR ** 2) * mean_square)`` elementwise (a new array)."""
    return np.maximum(variance, FHS_SIGMA_FLOOR * FHS_SIGMA_FLOOR * mean_square)


floored_variance_kernel = jit(_floored_variance_python)


def _head_refill_python(head: FloatArray, hn: int, y: FloatArray, lo: int, hi: int) -> int:
    """Append the next order statistic of ``y[lo:hi]`` to ``head[:hn]`` (its ``hn`` smallest)."""
    top = head[hn - 1] if hn > 0 else -np.inf
    n_le = 0
    nxt = np.inf
    for i in range(lo, hi):
        if y[i] <= top:
            n_le += 1
        elif y[i] < nxt:
            nxt = y[i]
    head[hn] = top if n_le > hn else nxt  # a tie of the top value outside the head comes next
    return hn + 1


_head_refill = jit(_head_refill_python)


def _rolling_tail_python(
    x: FloatArray, window: int, alpha: float, start: int
) -> tuple[FloatArray, FloatArray]:
    """(VaR, CVaR) of ``x[max(0, t - window):t]`` for ``t`` in ``[start, len(x))``; needs start >= 1.

    Only the tail matters, so only a short sorted *head* is kept: the ``h`` smallest values of the
    window (of ``-x`` when ``1 - alpha > 0.5``), ``h`` = the quantile's rank + 2. A bar costs O(h);
    when the leaving value sits in the head, one O(window) scan refills its slot (probability
    ~h/window). At alpha = 0.99 and window 250 that is ~10x less work than a sorted window.
    """
    n = x.shape[0]
    p = 1.0 - alpha
    flip = p > 0.5
    y = -x if flip else x
    top = math.floor((window - 1) * p)
    h = min(window, window - top if flip else top + 2)
    head = np.empty(h)
    out_var = np.empty(n - start)
    out_cvar = np.empty(n - start)
    hn = 0
    for i in range(max(0, start - window), start):
        hn = _head_insert(head, hn, h, y[i])
    wsum = x[max(0, start - window) : start].sum()
    for t in range(start, n):
        lo = max(0, t - window)
        count = t - lo
        pos = (count - 1) * p
        li = math.floor(pos)
        a = -head[count - 1 - li] if flip else head[li]
        q = a
        if li < count - 1:  # numpy's linear interpolation, bit for bit (numpy's _lerp)
            b = -head[count - 2 - li] if flip else head[li + 1]
            g = pos - li
            q = b - (b - a) * (1.0 - g) if g >= 0.5 else a + (b - a) * g
        tot = 0.0
        m = 0
        if flip:  # mean of x <= q = (window sum - sum of x > q) / (count - #(x > q))
            while m < hn and head[m] < -q:
                tot += head[m]
                m += 1
            tot, m = wsum + tot, count - m
        else:
            while m < hn and head[m] <= q:
                tot += head[m]
                m += 1
            if m == hn < count:  # ties of q beyond the head: count them all
                tot, m = 0.0, 0
                for i in range(lo, t):
                    if x[i] <= q:
                        tot += x[i]
                        m += 1
        out_var[t - start] = -q
        out_cvar[t - start] = -min(tot / m, q)
        if t >= window:  # x[t - window] leaves the window
            wsum -= x[t - window]
            old = y[t - window]
            if old <= head[hn - 1]:  # it is in the head (by value): delete it, refill the slot
                for i in range(np.searchsorted(head[:hn], old), hn - 1):
                    head[i] = head[i + 1]
                hn -= 1
                if hn < count - 1:
                    hn = _head_refill(head, hn, y, t + 1 - window, t)
        wsum += x[t]
        hn = _head_insert(head, hn, h, y[t])
    return out_var, out_cvar


rolling_tail_kernel = jit(_rolling_tail_python)


def _rolling_fhs_python(
    returns: FloatArray, variance: FloatArray, mu: float, window: int, alpha: float, start: int
) -> tuple[FloatArray, FloatArray]:
    """Rolling filtered historical simulation (VaR, CVaR) for bars ``start..len(returns) - 1``."""
    n = returns.shape[0]
    z = (returns - mu) / np.sqrt(variance[:n])
    var_z, cvar_z = rolling_tail_kernel(z, window, alpha, start)
    sigma = np.sqrt(variance[start:n])
    return -mu + sigma * var_z, -mu + sigma * cvar_z


rolling_fhs_kernel = jit(_rolling_fhs_python)
