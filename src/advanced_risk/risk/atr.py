"""Streaming Wilder ATR for many assets at once: O(n) per bar, for the decision engine and the agents."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from advanced_risk.measures.observe_kernels import atr_step_kernel
from advanced_risk.measures.validation import BoolArray, FloatArray, check_positive_int

__all__ = ["StreamingATR"]


class StreamingATR:
    """Wilder ATR per asset, updated one bar at a time (TA-Lib's convention, like ``wilder_atr``).

    ``value[i]`` is NaN until asset ``i`` has shown ``period`` true ranges (``counts[i] >= period``),
    then equals :func:`~advanced_risk.measures.volatility.wilder_atr` on that asset's bars. Each
    asset warms up on its own, so assets may join (:meth:`add_assets`) and leave
    (:meth:`remove_assets`) between bars.
    """

    def __init__(self, n_assets: int, period: int) -> None:
        self.period = check_positive_int(period, "period")  # 0 would divide by zero in the kernel
        self.counts = np.zeros(n_assets, dtype=np.int64)
        self.total = np.zeros(n_assets)
        self.value = np.full(n_assets, np.nan)
        self.prev_close = np.full(n_assets, np.nan)

    @property
    def count(self) -> int:
        """True ranges seen by the youngest asset (all assets are warm when ``count >= period``)."""
        return int(self.counts.min()) if self.counts.size else 0

    @property
    def ready(self) -> BoolArray:
        """Boolean mask of the assets whose ATR is defined."""
        ready: BoolArray = self.counts >= self.period
        return ready

    def update(self, high: FloatArray, low: FloatArray, close: FloatArray) -> None:
        """Feed one bar of highs, lows and closes (one value per asset).

        The state arrays are updated in place by one kernel (``measures.observe_kernels``: the
        NumPy formulation's arithmetic per element, bit for bit; ``tests/unit/test_observe_fast_paths.py``).
        """
        expected = self.prev_close.shape
        if not high.shape == low.shape == close.shape == expected:  # the kernel does not bounds-check
            raise ValueError(
                f"high, low and close must have shape {expected}, "
                f"got {high.shape}, {low.shape}, {close.shape}"
            )
        atr_step_kernel(high, low, close, self.prev_close, self.counts, self.total, self.value, self.period)

    def add_assets(self, count: int) -> None:
        """Append ``count`` assets with no history."""
        self.counts = np.append(self.counts, np.zeros(count, dtype=np.int64))
        self.total = np.append(self.total, np.zeros(count))
        self.value = np.append(self.value, np.full(count, np.nan))
        self.prev_close = np.append(self.prev_close, np.full(count, np.nan))

    def remove_assets(self, indices: ArrayLike) -> None:
        """Drop the assets at ``indices``."""
        keep = np.setdiff1d(np.arange(self.counts.size), np.asarray(indices, dtype=np.int64))
        self.counts, self.total = self.counts[keep], self.total[keep]
        self.value, self.prev_close = self.value[keep], self.prev_close[keep]
