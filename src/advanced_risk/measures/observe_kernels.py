"""Kernels of the per-bar ``observe`` step: the tracker's update and the streaming ATR (issue 14).

``RiskTracker.update`` and ``StreamingATR.update`` ran ~25 small NumPy calls per bar (the row's
magnitude check, two ring-buffer writes, the per-asset ages and warm-up mask; the true range,
counts, masks and three ``np.where``); inside the flow each first call pays for cold caches
(docs/performance.md). These kernels do the same float64 operations per element, in place, so their
results are bit for bit the NumPy formulation's (``tests/unit/test_observe_fast_paths.py`` compares
them). What they reproduce of NumPy's definitions:

- ``np.maximum(a, b)``: NaN when either is NaN, else ``a`` when ``a > b``, else ``b`` (NumPy's SIMD
  loops return the second operand on a tie, which only matters for ``+0.0`` against ``-0.0``;
  true ranges are magnitudes, never ``-0.0``);
- ``np.abs``, ``+``, ``-``, ``*``, ``/`` (an int operand promoted to float64), comparisons: per
  element, so any order gives the same bits;
- ``x.max() <= bound`` then ``np.flatnonzero(~(x <= bound))[0]``: the first element that is not
  ``<= bound`` (NaN included), found before anything is written.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from advanced_risk.measures.covariance import ewma_correlation_step_kernel
from advanced_risk.measures.jit import jit
from advanced_risk.measures.validation import FloatArray, IntArray

__all__ = ["atr_step_kernel", "maximum_kernel", "minimum_kernel", "tracker_step_kernel"]

BoolArray = NDArray[np.bool_]


def _maximum_python(a: float, b: float) -> float:
    """``np.maximum(a, b)`` of two floats: NaN propagates (``a``'s first), ties give ``b``."""
    if math.isnan(a):
        return a
    return a if a > b else b


def _minimum_python(a: float, b: float) -> float:
    """``np.minimum(a, b)`` of two floats: NaN propagates (``a``'s first), ties give ``b``."""
    if math.isnan(a):
        return a
    return a if a < b else b


_maximum_kernel = jit(_maximum_python)
_minimum_kernel = jit(_minimum_python)
maximum_kernel = _maximum_kernel
minimum_kernel = _minimum_kernel


def _atr_step_python(
    high: FloatArray,
    low: FloatArray,
    close: FloatArray,
    prev_close: FloatArray,
    counts: IntArray,
    total: FloatArray,
    value: FloatArray,
    period: int,
) -> None:
    """One bar of Wilder's ATR per asset, in place (``StreamingATR.update``'s NumPy formulation).

    Per asset with a previous close (not NaN), the true range ``tr = max(high - low, |high - pc|,
    |low - pc|)`` (NaN propagates) counts once: while fewer than ``period`` are counted it is added to
    ``total``; the ``period``-th sets ``value = (total + tr) / period``; later ones
    ``value = (value * (period - 1) + tr) / period``. An asset without a previous close (its first
    bar) counts nothing. Then ``prev_close`` becomes ``close``.
    """
    m = close.shape[0]
    if not (
        high.shape[0] == low.shape[0] == prev_close.shape[0] == counts.shape[0] == total.shape[0] == m
        and value.shape[0] == m
    ):  # numba does not bounds-check: a wrong length would read and write outside the arrays
        raise ValueError("atr_step_kernel: high, low, close and the ATR state must have one length")
    if period < 1:  # the divisions below (numba raises ZeroDivisionError midway, state half written)
        raise ValueError("atr_step_kernel: period must be >= 1")
    n = period
    for i in range(m):
        pc = prev_close[i]
        if not math.isnan(pc):  # an asset's first bar has no previous close: no true range yet
            h, lo = high[i], low[i]
            tr = _maximum_kernel(h - lo, _maximum_kernel(abs(h - pc), abs(lo - pc)))
            c = counts[i] + 1
            counts[i] = c
            if c < n:
                total[i] = total[i] + tr
            elif c == n:
                value[i] = (total[i] + tr) / n
            else:
                value[i] = (value[i] * (n - 1) + tr) / n
        prev_close[i] = close[i]


atr_step_kernel = jit(_atr_step_python)


def _tracker_step_python(
    row: FloatArray,
    buffer: FloatArray,
    pos: int,
    capacity: int,
    state: FloatArray,
    lam: float,
    age: IntArray,
    n_obs: int,
    warmup: int,
    max_abs: float,
) -> tuple[int, float]:
    """``(bad, fast)``: one bar of ``RiskTracker.update`` in place, or the index of a refused return.

    ``bad`` is the first index whose ``|row|`` is not ``<= max_abs`` (NaN included); then nothing is
    written and ``fast`` is NaN. Otherwise ``bad = -1``: the row is written at ``pos`` and
    ``pos + capacity`` of the doubled ring buffer, every asset's age grows by one, and the EWMA state
    takes the row (``ewma_correlation_step_kernel``) with the assets that are warm
    (``age >= warmup``) or have been there from the start (``age == n_obs``, the bars seen including
    this one) included; ``fast`` is its average pairwise correlation.
    """
    n = row.shape[0]
    if not (
        buffer.shape[1] == n
        and 0 <= pos < capacity
        and buffer.shape[0] == 2 * capacity
        and state.shape[0] == n
        and state.shape[1] == n
        and age.shape[0] == n
    ):  # numba does not bounds-check: a wrong shape would read and write outside the arrays
        raise ValueError("tracker_step_kernel: row, buffer, pos, state and age do not fit together")
    for j in range(n):
        if not abs(row[j]) <= max_abs:
            return j, np.nan
    include = np.empty(n, np.bool_)
    for j in range(n):
        x = row[j]
        buffer[pos, j] = x
        buffer[pos + capacity, j] = x
        a = age[j] + 1
        age[j] = a
        include[j] = a >= warmup or a == n_obs
    return -1, ewma_correlation_step_kernel(state, row, lam, include)


tracker_step_kernel = jit(_tracker_step_python)
