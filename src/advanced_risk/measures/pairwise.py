"""NumPy's pairwise summation, reproduced in numba for kernels that must match NumPy bit for bit.

``np.sum`` / ``np.mean`` of a contiguous 1-D float64 array (and a ``(n, 1)`` column) use NumPy's
``pairwise_sum``: ranges of up to 128 values are summed with 8 accumulators (sequentially under 8
values), longer ranges are split in halves rounded down to a multiple of 8. A kernel that replaces a
NumPy reduction calls :data:`pairwise_sum_kernel` to keep the same order, hence the same bits
(``tests/unit/test_decide_fast_paths.py`` and ``tests/rl/test_agents_fast_decode.py`` check it
against NumPy at every length class). Used by ``measures.fhs_fused`` and ``rl.agents.decode``.
"""

from __future__ import annotations

import numpy as np

from advanced_risk.measures.jit import jit
from advanced_risk.measures.validation import FloatArray

__all__ = ["pairwise_sum_kernel"]

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


_leaf_kernel = jit(_leaf_python)
_pairwise_sum_kernel = jit(_pairwise_sum_python)
pairwise_sum_kernel = _pairwise_sum_kernel
"""NumPy's pairwise sum of a contiguous 1-D float64 array (a float; -0.0 for an empty one)."""
