"""The risk agents' per-bar bookkeeping in one kernel (``RiskAgentsAdvisor.observe``, issue 14).

:func:`bookkeeping_kernel` does what ``RiskAgentsAdvisor.observe`` did with ~20 small NumPy calls
(the synthetic bar of :func:`~advanced_risk.rl.agents.advisor._synthetic_bar`, the ATR update, the
positions' ages, restarts, entries and highest closes), with the same float64 operations per element,
so bit for bit (``tests/unit/test_observe_fast_paths.py`` compares it with that NumPy formulation).
``np.maximum`` / ``np.minimum`` are ``measures.observe_kernels``' (NaN propagates); comparisons with
NaN are False, as NumPy's.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from advanced_risk.measures.jit import jit
from advanced_risk.measures.observe_kernels import atr_step_kernel, maximum_kernel, minimum_kernel
from advanced_risk.rl.agents.interface import LOW_FLOOR

__all__ = ["bookkeeping_kernel", "first_bad_price_kernel"]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]


def _ratio_python(c: float, prev: float) -> float:
    """``c / prev`` with NumPy's IEEE result where ``prev`` is zero (numba and Python raise
    ``ZeroDivisionError`` there): a NaN ``c`` stays that NaN, ``0 / 0`` is NaN, else a signed inf."""
    if prev != 0.0:  # NaN included: no exception, NaN
        return c / prev
    if math.isnan(c):
        return c
    if c == 0.0:
        return np.nan
    return math.copysign(math.inf, c) * math.copysign(1.0, prev)


_ratio_kernel = jit(_ratio_python)


def _bookkeeping_python(
    last_close: FloatArray, close: FloatArray, held: FloatArray, stops: FloatArray, has_stops: bool,
    wick: float, horizon: int, atr_prev_close: FloatArray, atr_counts: IntArray, atr_total: FloatArray,
    atr_value: FloatArray, atr_period: int, entry: FloatArray, high: FloatArray,
    in_position: BoolArray, age: IntArray,
) -> None:  # fmt: skip
    """One bar of the agents' state, in place; ``last_close`` (the previous bar's closes) becomes ``close``.

    Per asset, as the NumPy formulation:

    - the synthetic bar of the closes ``[prev, close]``: ``r = |close / prev - 1|``, high
      ``max(prev, close) * (1 + wick * r)``, low ``min(prev, close) * (1 - wick * r)``, fed to the
      ATR state (``atr_step_kernel``);
    - ``held > 0`` is a position; its age grows while it stays held, else is 0. It restarts (age 0,
      entry and highest close at this close) when it is entered, has been held ``horizon`` bars or
      its close is at or below its stop (``has_stops``; a NaN stop never triggers);
    - the highest close of a held position is ``max(highest, close)``; ``in_position`` becomes
      ``held > 0``.
    """
    n = close.shape[0]
    if not (
        last_close.shape[0] == held.shape[0] == entry.shape[0] == high.shape[0] == n
        and in_position.shape[0] == age.shape[0] == n
        and (stops.shape[0] == n or not has_stops)
    ):  # numba does not bounds-check: a wrong length would read and write outside the arrays
        raise ValueError("bookkeeping_kernel: close, held, stops and the agents' state must have one length")
    bar_high = np.empty(n)
    bar_low = np.empty(n)
    for i in range(n):
        prev, c = last_close[i], close[i]
        r = abs(_ratio_kernel(c, prev) - 1.0)  # a zero previous close: inf or NaN, as NumPy's
        bar_high[i] = maximum_kernel(prev, c) * (1.0 + wick * r)
        down = 1.0 - wick * r
        if down <= 0.0:  # interface.LOW_FLOOR (NaN compares False and stays NaN, as np.where's)
            down = LOW_FLOOR
        bar_low[i] = minimum_kernel(prev, c) * down
    atr_step_kernel(bar_high, bar_low, close, atr_prev_close, atr_counts, atr_total, atr_value, atr_period)
    for i in range(n):
        c = close[i]
        held_now = held[i] > 0.0
        was = in_position[i]
        a = age[i] + 1 if held_now and was else 0
        stopped = has_stops and c <= stops[i]  # False where the stop is NaN
        h = high[i]
        if held_now and (not was or a >= horizon or stopped):
            a = 0
            entry[i] = c
            h = c
        high[i] = maximum_kernel(h, c) if held_now else h
        age[i] = a
        in_position[i] = held_now
        last_close[i] = c


def _first_bad_price_python(close: FloatArray) -> int:
    """The index of the first entry that is not a finite number > 0 (NaN included), or -1: the
    first ``True`` of ``~((close > 0.0) & (close < inf))``."""
    for i in range(close.shape[0]):
        c = close[i]
        if not (c > 0.0 and c < math.inf):
            return i
    return -1


bookkeeping_kernel = jit(_bookkeeping_python)
first_bad_price_kernel = jit(_first_bad_price_python)
