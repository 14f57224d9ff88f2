"""Streaming Wilder ATR for many assets at once: O(n) per bar, for the decision engine and the agents."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from advanced_risk.measures.observe_kernels import atr_step_kernel
from advanced_risk.measures.validation import BoolArray, asset_indices, check_positive_int

__all__ = ["StreamingATR"]


class StreamingATR:
    """Wilder ATR per asset, updated one bar at a time (TA-Lib's convention, like ``wilder_atr``).

    ``value[i]`` is NaN until asset ``i`` has shown ``period`` true ranges (``counts[i] >= period``),
    then equals :func:`~advanced_risk.measures.volatility.wilder_atr` on that asset's bars. Each
    asset warms up on its own, so assets may join (:meth:`add_assets`) and leave
    (:meth:`remove_assets`) between bars.

    NaN policy: :meth:`update` does not check the prices (it is the engine's per-bar hot path; the
    engine and the risk advisor validate their bars first). A NaN or infinite price propagates as in
    the NumPy formulation: a NaN high or low (with a known previous close) makes that asset's true
    range NaN, so its ``value`` stays NaN for good; a NaN close only skips the next bar's true range.
    A standalone user who cannot vouch for the data should check it (or use
    :func:`~advanced_risk.measures.volatility.wilder_atr`, which refuses such bars).
    ``n_assets``, the counts of :meth:`add_assets` and the indices of :meth:`remove_assets` are
    checked (``InvalidInputError`` naming the argument).

    Examples
    --------
    >>> atr = StreamingATR(1, 2)
    >>> for h, lo, c in [(10.0, 9.0, 9.5), (11.0, 10.0, 10.5), (12.0, 9.5, 11.0), (12.0, 11.0, 11.5)]:
    ...     atr.update(np.array([h]), np.array([lo]), np.array([c]))
    >>> atr.value.tolist()  # wilder_atr(..., n=2)[-1]
    [1.5]
    """

    def __init__(self, n_assets: int, period: int) -> None:
        self.period = check_positive_int(period, "period")  # 0 would divide by zero in the kernel
        n_assets = check_positive_int(n_assets, "n_assets", minimum=0)
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

    def update(self, high: ArrayLike, low: ArrayLike, close: ArrayLike) -> None:
        """Feed one bar of highs, lows and closes (one value per asset).

        The state arrays are updated in place by one kernel (``measures.observe_kernels``: the
        NumPy formulation's arithmetic per element, bit for bit; ``tests/unit/test_observe_fast_paths.py``).
        ``high``, ``low`` and ``close`` are 1-D arrays with one entry per asset (a list is converted
        with ``np.asarray``); another shape raises ``ValueError``. Prices are not checked (see the
        class's NaN policy).
        """
        h, lo, c = np.asarray(high), np.asarray(low), np.asarray(close)  # no copy of an array
        expected = self.prev_close.shape
        if not h.shape == lo.shape == c.shape == expected:  # the kernel does not bounds-check
            raise ValueError(
                f"high, low and close must have shape {expected}, got {h.shape}, {lo.shape}, {c.shape}"
            )
        atr_step_kernel(h, lo, c, self.prev_close, self.counts, self.total, self.value, self.period)

    def add_assets(self, count: int) -> None:
        """Append ``count`` assets (an integer >= 0) with no history."""
        count = check_positive_int(count, "count", minimum=0)
        self.counts = np.append(self.counts, np.zeros(count, dtype=np.int64))
        self.total = np.append(self.total, np.zeros(count))
        self.value = np.append(self.value, np.full(count, np.nan))
        self.prev_close = np.append(self.prev_close, np.full(count, np.nan))

    def remove_assets(self, indices: ArrayLike) -> None:
        """Drop the assets at ``indices``: integer positions in ``[0, n_assets)``, each at most once.

        Anything else (a negative index, which ``setdiff1d`` ignored, so ``[-1]`` removed nothing; an
        index past the end, also ignored; a float such as 0.7, truncated to asset 0; a bool; text)
        raises ``InvalidInputError`` naming ``indices`` before anything is changed. An empty sequence
        removes nothing; all the assets may leave.
        """
        keep = np.setdiff1d(np.arange(self.counts.size), asset_indices(indices, self.counts.size))
        self.counts, self.total = self.counts[keep], self.total[keep]
        self.value, self.prev_close = self.value[keep], self.prev_close[keep]
