"""Kernels of the engine's protective stops and position sizes (issue 14).

``DecisionEngine._trail_stops`` and ``_position_sizes`` ran ~20 small elementwise NumPy calls per
decision (``np.where``, ``np.maximum``, ``np.fmin``, comparisons); inside the flow each first call
pays for cold caches (docs/performance.md). These kernels do the same float64 operations per element,
so their outputs are bit for bit the NumPy formulation's (``tests/unit/test_decide_fast_paths.py``
compares them). What they reproduce of NumPy's scalar definitions:

- ``np.maximum(a, b)`` / ``np.minimum(a, b)``: ``a`` when ``a >= b`` (``a <= b``) or ``a`` is NaN, else
  ``b`` (NaN propagates);
- ``np.fmax(a, b)`` / ``np.fmin(a, b)``: ``a`` when ``a >= b`` (``a <= b``) or ``b`` is NaN, else ``b``
  (NaN is ignored);
- ``np.where``, ``!=``, ``<``, ``>``, ``np.isnan``, ``+``, ``-``, ``*``, ``/``: per element.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from advanced_risk.measures.jit import jit
from advanced_risk.measures.validation import FloatArray

__all__ = ["position_sizes_kernel", "trail_stops_kernel"]

BoolArray = NDArray[np.bool_]


def _trail_stops_python(
    target: FloatArray,
    held: FloatArray,
    prices: FloatArray,
    atr: FloatArray,
    multiple: float,
    ready: BoolArray,
    previous: FloatArray,
    previous_short: BoolArray,
    trailing: bool,
) -> tuple[FloatArray, BoolArray, FloatArray, BoolArray]:
    """``(distance, short, stop, stop_short)``: the stop distance ``multiple * atr``, each position's
    side (the sign of its target weight, else of its held weight) and the trailed stops.

    Per asset, as ``DecisionEngine._trail_stops``: the candidate is ``distance`` above the close of a
    short and ``max(close - distance, 0)`` below that of a long; a live stop (held, not NaN, same
    side, the close not through it) keeps the tighter of itself and the candidate (itself when not
    ``trailing``), any other restarts at the candidate; assets not ``ready`` keep their stop and side.
    """
    n = target.shape[0]
    distance = np.empty(n)
    short = np.empty(n, np.bool_)
    stop = np.empty(n)
    stop_short = np.empty(n, np.bool_)
    for i in range(n):
        d = multiple * atr[i]
        distance[i] = d
        s = target[i] < 0.0 if target[i] != 0.0 else held[i] < 0.0
        short[i] = s
        prev = previous[i]
        if not ready[i]:
            stop[i] = prev
            stop_short[i] = previous_short[i]
            continue
        stop_short[i] = s
        if s:
            candidate = prices[i] + d
        else:
            below = prices[i] - d
            candidate = below if (below >= 0.0 or math.isnan(below)) else 0.0
        inside = prices[i] < prev if s else prices[i] > prev  # the close has not crossed the stop
        if held[i] != 0.0 and not math.isnan(prev) and s == previous_short[i] and inside:
            if not trailing:
                stop[i] = prev
            elif s:
                stop[i] = prev if (prev <= candidate or math.isnan(candidate)) else candidate
            else:
                stop[i] = prev if (prev >= candidate or math.isnan(candidate)) else candidate
        else:
            stop[i] = candidate
    return distance, short, stop, stop_short


def _position_sizes_python(
    distance: FloatArray, prices: FloatArray, at_risk: float, capped: float
) -> FloatArray:
    """``np.minimum(at_risk / np.maximum(distance, 1e-12), capped / prices)``."""
    n = distance.shape[0]
    out = np.empty(n)
    for i in range(n):
        d = distance[i]
        floor = d if (d >= 1e-12 or math.isnan(d)) else 1e-12
        by_risk = at_risk / floor
        by_cap = capped / prices[i]
        out[i] = by_risk if (by_risk <= by_cap or math.isnan(by_risk)) else by_cap
    return out


trail_stops_kernel = jit(_trail_stops_python)
position_sizes_kernel = jit(_position_sizes_python)
