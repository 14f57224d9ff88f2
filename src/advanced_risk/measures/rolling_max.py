"""The maximum of a sliding window of a stream, in O(1) amortised time per value.

A high-water mark over the last ``window`` bars (a rolling peak of equity) asked for every bar:
``max(deque)`` rescans the whole window each time (252 values, a few microseconds a bar in Python);
a monotonic queue keeps only the values that can still become the maximum.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from itertools import pairwise

from advanced_risk.measures.validation import check_positive_int

__all__ = ["RollingMax"]


class RollingMax:
    """Maximum of the last ``window`` values pushed (None: of every value since the last clear).

    The queue holds ``(index, value)`` pairs with decreasing values: a value is dropped once a
    later one is at least as large (it can never be the maximum again) or once it leaves the
    window. Its front is the maximum. Memory is bounded by ``window`` (one pair without a window).

    NaN policy: none. Values must not be NaN (a NaN compares False and would sit in the queue
    unseen); the callers push equities already checked to be finite and positive.

    Examples
    --------
    >>> peak = RollingMax(window=3)
    >>> for v in (5.0, 1.0, 2.0, 3.0):
    ...     peak.push(v)
    >>> peak.value  # 5.0 has left the window of the last three
    3.0
    """

    __slots__ = ("_count", "_maxima", "_window")

    def __init__(self, window: int | None) -> None:
        self._window = None if window is None else check_positive_int(window, "window")
        self._maxima: deque[tuple[int, float]] = deque()
        self._count = 0

    def push(self, value: float) -> None:
        """Enter the next value of the stream."""
        maxima = self._maxima
        if self._window is None:  # all-time: only the maximum itself can matter
            if not maxima or maxima[0][1] <= value:
                maxima.clear()
                maxima.append((self._count, value))
            self._count += 1
            return
        while maxima and maxima[-1][1] <= value:
            maxima.pop()
        maxima.append((self._count, value))
        self._count += 1
        if self._window is not None and maxima[0][0] <= self._count - 1 - self._window:
            maxima.popleft()  # at most one entry leaves the window per value

    def state(self) -> tuple[list[int], list[float], int]:
        """``(indices, values, count)``: the queue and the values pushed, what :meth:`from_state`
        rebuilds the window from exactly."""
        return [i for i, _ in self._maxima], [v for _, v in self._maxima], self._count

    @classmethod
    def from_state(
        cls, window: int | None, indices: Sequence[int], values: Sequence[float], count: int
    ) -> RollingMax:
        """The window :meth:`state` described (``ValueError`` if it cannot be one: lengths that
        differ, indices not increasing below ``count``, values not decreasing)."""
        out = cls(window)
        pairs = [(int(i), float(v)) for i, v in zip(indices, values, strict=True)]
        ordered = all(a[0] < b[0] and a[1] > b[1] for a, b in pairwise(pairs))
        if not ordered or (pairs and not 0 <= pairs[-1][0] < count):
            raise ValueError("not a RollingMax state: indices must increase below count, values decrease")
        out._maxima.extend(pairs)
        out._count = int(count)
        return out

    def clear(self) -> None:
        """Forget every value pushed."""
        self._maxima.clear()
        self._count = 0

    @property
    def value(self) -> float:
        """The maximum of the window (``IndexError`` when nothing was pushed since the last clear)."""
        return self._maxima[0][1]

    def __len__(self) -> int:
        """Values the window holds: ``min(pushed, window)``."""
        return self._count if self._window is None else min(self._count, self._window)
