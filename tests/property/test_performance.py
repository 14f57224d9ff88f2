"""Property tests of measures/performance.py: the documented values of degenerate input hold for any input."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from advanced_risk.measures import drawdown_series, max_drawdown, sharpe_ratio, sortino_ratio
from advanced_risk.measures.validation import MAX_ABS_RETURN

_value = st.floats(-0.99, MAX_ABS_RETURN, allow_nan=False, allow_infinity=False)


@settings(deadline=None, max_examples=200)
@given(value=_value, n=st.integers(2, 2000), rf=st.floats(-0.01, 0.01))
def test_constant_returns_have_the_zero_volatility_sharpe(value: float, n: int, rf: float) -> None:
    assert sharpe_ratio(np.full(n, value), risk_free=rf) == 0.0


@settings(deadline=None, max_examples=200)
@given(value=_value, n=st.integers(2, 2000))
@example(value=-5e-324, n=2)  # subnormal: sqrt(252) * mean / downside rounded to -16 before
def test_constant_returns_have_the_documented_sortino(value: float, n: int) -> None:
    out = sortino_ratio(np.full(n, value))
    if value > 0:
        assert out == math.inf
    elif value == 0:
        assert out == 0.0
    else:  # downside deviation |v|, mean v: sqrt(252) * v / |v|
        assert out == pytest.approx(-math.sqrt(252), rel=1e-12)


@settings(deadline=None, max_examples=100)
@given(
    returns=st.integers(1, 300).flatmap(
        lambda n: arrays(np.float64, n, elements=st.floats(-1.0, 10.0, allow_nan=False, allow_infinity=False))
    )
)
def test_drawdowns_of_possible_returns_are_fractions(returns: np.ndarray) -> None:
    dd = drawdown_series(returns)
    assert ((dd >= 0.0) & (dd <= 1.0)).all()
    assert max_drawdown(returns) == dd.max()
