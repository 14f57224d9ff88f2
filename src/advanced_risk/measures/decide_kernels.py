"""Kernels of the books a decision reads: the policy's input book, the book it asks for, and the
strategy's reference book (issue 14).

``DecisionEngine`` built the policy's view of the held book (``_with_cash``: ``np.maximum``, a sum,
a division, ``np.append``) and merged the policy's allocation into the held book (``_allocate``:
a copy, an index, ``np.where``, a mask and ``np.flatnonzero``), and ``StrategyDrawdown`` earned and
set its reference book (a product, a NaN mask, a sum; ``np.isfinite``, ``np.where``) with ~15 small
NumPy calls per bar, and ``checked_allocation`` validated and clipped the policy's answer with
~8 more;
inside the flow each first call pays for cold caches (docs/performance.md). These kernels do the
same float64 operations, so the results are bit for bit the NumPy formulation's
(``tests/unit/test_decide_book_kernels.py`` compares them). What they reproduce of NumPy's definitions:

- ``np.maximum(x, 0.0)``: NaN propagates, ties (``-0.0`` against ``0.0``) give the second operand;
- ``x.sum()`` of a contiguous 1-D float64 array: NumPy's pairwise summation
  (``measures.pairwise``);
- ``/``, ``-``, comparisons and copies: per element, so any order gives the same bits.
"""

from __future__ import annotations

import math

import numpy as np

from advanced_risk.measures.jit import jit
from advanced_risk.measures.observe_kernels import maximum_kernel
from advanced_risk.measures.pairwise import pairwise_sum_kernel
from advanced_risk.measures.validation import FloatArray, IntArray

__all__ = [
    "clipped_weights_kernel",
    "earned_return_kernel",
    "finite_or_zero_kernel",
    "policy_book_kernel",
    "warm_up",
    "with_cash_kernel",
]


def _with_cash_python(held: FloatArray, cols: IntArray) -> FloatArray:
    """``held[cols]`` as a long-only book plus cash: ``n + 1`` weights (``n = cols.size``).

    The longs are ``max(held[cols], 0)``, divided by their sum when it is above 1 (at most fully
    invested); the last entry is ``1 - sum(longs)``. NaN propagates (the engine's held weights are
    finite). As ``longs = np.maximum(held[cols], 0.0)``, ``longs / longs.sum()`` when that is > 1, and
    ``np.append(longs, 1.0 - longs.sum())``.
    """
    n = cols.shape[0]
    for j in range(n):  # numba does not bounds-check: an index outside held would read past it
        if not 0 <= cols[j] < held.shape[0]:
            raise IndexError("with_cash_kernel: a column is outside held")
    out = np.empty(n + 1)
    longs = out[:n]
    for j in range(n):
        longs[j] = maximum_kernel(held[cols[j]], 0.0)
    total = pairwise_sum_kernel(longs)
    if total > 1.0:
        for j in range(n):
            longs[j] = longs[j] / total
    out[n] = 1.0 - pairwise_sum_kernel(longs)
    return out


def _policy_book_python(held: FloatArray, cols: IntArray, weights: FloatArray) -> tuple[FloatArray, IntArray]:
    """``(target, kept)``: the held book with a long-only policy's allocation over its columns.

    ``weights`` are the policy's asset weights then cash (``cols.size + 1`` values). ``target`` is
    ``held`` with ``target[cols[j]] = weights[j]`` where ``held[cols[j]] >= 0`` (a short the policy
    cannot hold is kept as held; NaN compares False, so a NaN weight is replaced); ``kept`` the
    indices, ascending, of the non-zero held positions the policy does not set (outside its columns,
    or short). As ``target = held.copy(); target[cols] = np.where(held[cols] < 0.0, held[cols],
    weights[:-1])`` and ``np.flatnonzero(outside & (held != 0.0))``.
    """
    m, n = held.shape[0], cols.shape[0]
    if weights.shape[0] != n + 1:
        raise ValueError("policy_book_kernel: weights must hold one value per column, then cash")
    for j in range(n):
        if not 0 <= cols[j] < m:
            raise IndexError("policy_book_kernel: a column is outside held")
    target = held.copy()
    outside = np.ones(m, dtype=np.bool_)
    for j in range(n):
        c = cols[j]
        short = held[c] < 0.0
        target[c] = held[c] if short else weights[j]
        outside[c] = short
    count = 0
    for i in range(m):
        if outside[i] and held[i] != 0.0:
            count += 1
    kept = np.empty(count, dtype=np.int64)
    count = 0
    for i in range(m):
        if outside[i] and held[i] != 0.0:
            kept[count] = i
            count += 1
    return target, kept


def _earned_return_python(weights: FloatArray, returns: FloatArray) -> float:
    """``sum(weights * returns)`` with NaN products counted as 0 (``np.nansum``'s rule), summed in
    NumPy's pairwise order: as ``earned = weights * returns; earned[np.isnan(earned)] = 0.0;
    np.add.reduce(earned)`` (a zero sum is +0.0, as NumPy's). The values are read as float64 (the
    reference's of ``weights.astype(np.float64)``, ``returns.astype(np.float64)``). The arrays must
    have one length."""
    n = weights.shape[0]
    if returns.shape[0] != n:
        raise ValueError("earned_return_kernel: weights and returns must have one length")
    earned = np.empty(n)
    for i in range(n):
        v = np.float64(weights[i]) * np.float64(returns[i])  # read as float64 (not float32 * float32)
        earned[i] = 0.0 if np.isnan(v) else v
    return pairwise_sum_kernel(earned) + 0.0  # NumPy's sum starts at +0.0: never -0.0


def _finite_or_zero_python(x: FloatArray) -> FloatArray:
    """A copy of ``x`` with its NaN and infinite entries set to 0: ``np.where(np.isfinite(x), x, 0.0)``."""
    out = np.empty(x.shape[0])
    for i in range(x.shape[0]):
        out[i] = x[i] if np.isfinite(x[i]) else 0.0
    return out


def _clipped_weights_python(weights: FloatArray, out: FloatArray) -> tuple[bool, float]:
    """``(ok, total)`` of a policy's allocation, assets then cash (``engine.components``'
    ``checked_allocation``): ``ok`` when every weight is finite and in ``[-1e-9, 1 + 1e-9]`` (its
    ``weights.min()`` / ``max()`` test), ``total`` NumPy's pairwise ``weights.sum()``; ``out`` is
    ``np.clip(weights, 0.0, 1.0)`` (-0.0 kept, as there). NaN or inf: ``ok`` False. The values are
    read as float64 (as ``np.asarray(weights, dtype=np.float64)`` there, whatever the dtype)."""
    if out.shape[0] != weights.shape[0]:
        raise ValueError("clipped_weights_kernel: out must have the length of weights")
    ok = True
    for i in range(weights.shape[0]):
        out[i] = np.float64(weights[i])  # read as float64, as np.asarray(weights, dtype=np.float64)
        ok = ok and math.isfinite(out[i]) and -1e-9 <= out[i] <= 1.0 + 1e-9
    total = pairwise_sum_kernel(out) + 0.0  # summed in float64; NumPy's sum is never -0.0
    for i in range(out.shape[0]):
        v = out[i]
        out[i] = 0.0 if v < 0.0 else 1.0 if v > 1.0 else v
    return ok, total


with_cash_kernel = jit(_with_cash_python)
earned_return_kernel = jit(_earned_return_python)
finite_or_zero_kernel = jit(_finite_or_zero_python)
clipped_weights_kernel = jit(_clipped_weights_python)
policy_book_kernel = jit(_policy_book_python)


def warm_up() -> None:
    """Call every kernel of this module once, with the types the engine passes (float64 books,
    int64 columns), so that their compilation or load from numba's disk cache (up to seconds on a
    cold cache) is paid here, not inside the first decision with a policy: a policy on the worker
    thread compiling ``clipped_weights_kernel`` missed the deadline of the bars behind it."""
    held, cols = np.array([0.5, -0.25]), np.arange(2, dtype=np.int64)
    weights = np.array([0.5, 0.25, 0.25])
    with_cash_kernel(held, cols)
    policy_book_kernel(held, cols, weights)
    earned_return_kernel(held, np.array([0.01, -0.02]))
    finite_or_zero_kernel(held)
    clipped_weights_kernel(weights, np.empty(3))
