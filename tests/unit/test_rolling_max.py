"""``RollingMax`` against ``max`` of the window (the definition), on random streams."""

from __future__ import annotations

from collections import deque

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from advanced_risk.errors import InvalidInputError
from advanced_risk.measures.rolling_max import RollingMax

values = st.lists(st.floats(-1e9, 1e9, allow_nan=False), min_size=1, max_size=200)


@settings(max_examples=200, deadline=None)
@given(values, st.one_of(st.none(), st.integers(1, 50)))
def test_the_value_is_the_max_of_the_last_window_values(stream: list[float], window: int | None) -> None:
    peak = RollingMax(window)
    reference: deque[float] = deque(maxlen=window)
    for v in stream:
        peak.push(v)
        reference.append(v)
        assert peak.value == max(reference)
        assert len(peak) == len(reference)


def test_memory_is_bounded_by_the_window_on_a_falling_stream() -> None:
    falling = -np.arange(10_000.0)
    for window, bound in ((None, 1), (252, 252)):
        peak = RollingMax(window)
        for v in falling:
            peak.push(float(v))
        assert len(peak._maxima) <= bound
        assert peak.value == (0.0 if window is None else -(10_000.0 - 252))


def test_clear_forgets_and_an_empty_window_has_no_value() -> None:
    peak = RollingMax(3)
    peak.push(5.0)
    peak.clear()
    with pytest.raises(IndexError):
        _ = peak.value
    peak.push(1.0)
    assert peak.value == 1.0


@pytest.mark.parametrize("window", [0, -1, 2.5, True])
def test_a_window_that_is_not_a_positive_int_is_refused(window: object) -> None:
    with pytest.raises(InvalidInputError, match="window"):
        RollingMax(window)  # type: ignore[arg-type]
