"""The strategy's drawdown: the drawdown of the book asked for, before any cut of the risk layer.

A drawdown rule driven by the account's own equity can lock itself in: once it hedges or reduces
the book, the account earns a fraction of the market's recovery, so its drawdown shrinks slowly and
the cut stays on until the rolling high-water mark forgets the peak (measured: hedge on 83-85 % of
the bars of unseen books). This module follows instead a *reference book*: the allocation the bot
asked for (its weights, or the policy's), before volatility targeting, hedge, REDUCING and HALTED.
Its drawdown falls as the market recovers, whatever the cuts did to the account, so a rule driven
by it re-risks with the recovery: by the bar the book regains its peak at the latest (tested).

Definitions, per bar ``t`` with asset returns ``r_t`` and the reference weights ``w_{t-1}`` decided
at the previous bar::

    E_t = E_{t-1} * (1 + w_{t-1} . r_t)          E_0 = 1
    drawdown_t = 1 - E_t / max(E over the last ``window`` bars, the seed peak)

A reference return below -100 % (a book levered past its ruin) floors ``E`` at a tiny positive
value (drawdown 1). NaN returns count as 0 (an asset without a print this bar).

The trend (``trend_halflife`` given) is an exponential moving average of the log equity::

    M_t = a * M_{t-1} + (1 - a) * log E_t        a = 0.5 ** (1 / trend_halflife)
    below_trend_t = log E_t < M_t

``M`` starts at the seed peak (log 1 = 0), so a book restarted in drawdown starts below its trend:
a restart is not less cautious than the run before it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from advanced_risk.measures.decide_kernels import earned_return_kernel, finite_or_zero_kernel
from advanced_risk.measures.rolling_max import RollingMax
from advanced_risk.measures.validation import FloatArray, check_range, halflife_decay

__all__ = ["StrategyDrawdown"]

_FLOOR = 1e-12  # the reference equity after a loss of 100 % or more


class StrategyDrawdown:
    """Streaming drawdown of the reference book (see the module docstring).

    Parameters
    ----------
    window : bars of the rolling high-water mark (None: all-time).
    initial_drawdown : drawdown to start from, in [0, 1] (a restart seeds it from the account's
        restored drawdown, so a restart is not less cautious than the run before it).
    trend_halflife : half-life in bars of the trend's moving average (None: no trend followed;
        ``below_trend`` is then always False).

    Examples
    --------
    >>> s = StrategyDrawdown(window=None, trend_halflife=1)  # a = 0.5
    >>> s.set_weights(np.array([1.0]))
    >>> s.update(np.array([0.10])), s.below_trend          # M = log(1.1) / 2 < log 1.1
    (0.0, False)
    >>> round(s.update(np.array([-0.10])), 4), s.below_trend  # log 0.99 < M = (log 1.1 / 2 + log 0.99) / 2
    (0.1, True)
    """

    __slots__ = ("_decay", "_equity", "_peak", "_trend", "_weights")

    def __init__(
        self, window: int | None = 252, initial_drawdown: float = 0.0, trend_halflife: int | None = None
    ) -> None:
        dd = check_range(initial_drawdown, "initial_drawdown", 0.0, 1.0)
        self._peak = RollingMax(window)  # of the last ``window`` equities; the seed peak 1 counts as one
        self._peak.push(1.0)
        self._equity = max(1.0 - dd, _FLOOR)
        self._peak.push(self._equity)
        self._weights = np.empty(0)
        self._decay = None if trend_halflife is None else halflife_decay(trend_halflife, "trend_halflife")
        self._trend = 0.0  # log of the seed peak

    @property
    def below_trend(self) -> bool:
        """Whether the reference book's log equity is below its moving average (False without a trend)."""
        return self._decay is not None and math.log(self._equity) < self._trend

    @property
    def drawdown(self) -> float:
        """The reference book's drawdown from its (rolling) peak, in [0, 1]."""
        return min(max(1.0 - self._equity / self._peak.value, 0.0), 1.0)

    @property
    def weights(self) -> FloatArray:
        """The reference weights the next bar's return is earned on (a copy)."""
        return self._weights.copy()

    def update(self, returns: FloatArray) -> float:
        """Earn this bar's return on the reference weights; returns the new drawdown.

        Weights of another length than ``returns`` (none set yet) earn nothing.
        """
        if self._weights.shape == returns.shape:
            r = earned_return_kernel(self._weights, returns)  # a NaN product earns 0, as np.nansum
            self._equity = max(self._equity * (1.0 + r), _FLOOR)
        self._peak.push(self._equity)
        if self._decay is not None:
            self._trend = self._decay * self._trend + (1.0 - self._decay) * math.log(self._equity)
        return self.drawdown

    def set_weights(self, weights: FloatArray) -> None:
        """The reference book decided at this bar (the allocation asked for, before any cut)."""
        self._weights = finite_or_zero_kernel(np.asarray(weights, dtype=np.float64))

    def state(self) -> dict[str, np.ndarray]:
        """The reference book's equity, trend, weights and rolling peak as named arrays: what
        :meth:`from_state` restores exactly (a graceful restart's snapshot)."""
        indices, values, count = self._peak.state()
        return {
            "equity_trend": np.array([self._equity, self._trend]),
            "weights": self._weights.copy(),
            "peak_indices": np.array([*indices, count], dtype=np.int64),  # the count last
            "peak_values": np.array(values, dtype=np.float64),
        }

    @classmethod
    def from_state(
        cls, state: Mapping[str, np.ndarray], window: int | None = 252, trend_halflife: int | None = None
    ) -> StrategyDrawdown:
        """The reference book :meth:`state` saved, with the settings it was saved with (``ValueError``
        or ``KeyError`` if ``state`` is not one)."""
        out = cls(window, trend_halflife=trend_halflife)
        equity, trend = (float(v) for v in state["equity_trend"])
        indices = [int(i) for i in state["peak_indices"]]
        out._peak = RollingMax.from_state(window, indices[:-1], list(state["peak_values"]), indices[-1])
        out._equity, out._trend = max(equity, _FLOOR), trend
        out._weights = np.asarray(state["weights"], dtype=np.float64).copy()
        return out

    def reshape(self, left: Sequence[int], joined: int) -> None:
        """Follow a universe change: drop the assets that left, add ``joined`` assets at weight 0."""
        if self._weights.size:
            self._weights = np.append(np.delete(self._weights, list(left)), np.zeros(joined))
