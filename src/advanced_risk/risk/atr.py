"""Streaming Wilder ATR for many assets at once: O(n) per bar, for the decision engine and the agents."""

from __future__ import annotations

import numpy as np

from advanced_risk.measures._validation import FloatArray

__all__ = ["StreamingATR"]


class StreamingATR:
    """Wilder ATR per asset, updated one bar at a time (TA-Lib's convention, like ``wilder_atr``).

    ``value`` is NaN until ``period`` true ranges have been seen (``count >= period``), then equals
    :func:`~advanced_risk.measures.volatility.wilder_atr` on the same bars.
    """

    def __init__(self, n_assets: int, period: int) -> None:
        self.period = period
        self.count = 0
        self.total = np.zeros(n_assets)
        self.value = np.full(n_assets, np.nan)
        self.prev_close: FloatArray | None = None

    def update(self, high: FloatArray, low: FloatArray, close: FloatArray) -> None:
        """Feed one bar of highs, lows and closes (one value per asset)."""
        if self.prev_close is not None:
            pc = self.prev_close
            tr = np.maximum(high - low, np.maximum(np.abs(high - pc), np.abs(low - pc)))
            self.count += 1
            n = self.period
            if self.count < n:
                self.total += tr
            elif self.count == n:
                self.value = (self.total + tr) / n
            else:
                self.value = (self.value * (n - 1) + tr) / n
        self.prev_close = close.copy()
