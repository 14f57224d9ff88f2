"""The policy's observation of one bar in one kernel (``PortfolioPolicy.rebalance_trusted``, issue 14).

``check_obs(_observation(market, weights, drawdown), obs_dim)`` ran five NumPy calls per decision
(``np.concatenate``, ``astype(np.float32)``, ``np.asarray(..., np.float64)``, ``np.isfinite``,
``all``). :func:`observation_kernel` does the same casts per element (float64 -> float32 rounds to
nearest, float32 -> float64 is exact), so its vector is bit for bit theirs
(``tests/unit/test_observe_fast_paths.py``). ``policy._observation`` and ``check_obs`` stay the
definition and the refusing path: the kernel reports a non-finite entry and the caller then calls them.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from advanced_risk.measures.jit import jit

__all__ = ["observation_kernel"]

FloatArray = NDArray[np.float64]


def _observation_python(market: FloatArray, weights: FloatArray, drawdown: float) -> tuple[bool, FloatArray]:
    """``(ok, obs)``: ``[market, weights, drawdown]`` rounded to float32 and read back as float64.

    ``ok`` is False when an entry is NaN or infinite after the rounding (a float64 beyond the float32
    range becomes inf), where ``check_obs`` raises.
    """
    m, k = market.shape[0], weights.shape[0]
    out = np.empty(m + k + 1)
    ok = True
    for i in range(m + k + 1):
        x = market[i] if i < m else weights[i - m] if i < m + k else drawdown
        y = np.float64(np.float32(x))
        out[i] = y
        ok = ok and math.isfinite(y)
    return ok, out


observation_kernel = jit(_observation_python)
