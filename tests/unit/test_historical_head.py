"""historical_kernel selects the tail by insertion; the result must be the sort's, bit for bit.

The reference is the formulation it replaced: ``sorted_tail_kernel(np.sort(x), n, 1 - alpha)``
(NumPy's sort, then the tail of the sorted values), itself checked against ``np.quantile`` and a
hand-computed case in tests/unit/test_var.py. Both the compiled kernel and its Python twin are
compared, on data built to stress the selection: ties at the quantile (beyond the kept head too),
descending runs (every value enters the head), a few distinct values, long windows past
``MAX_HEAD`` (the sort fallback).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from advanced_risk.measures.var_kernels import (
    MAX_HEAD,
    _historical_python,
    historical_kernel,
    sorted_tail_kernel,
)


def reference(x: np.ndarray, alpha: float) -> tuple[float, float]:
    return sorted_tail_kernel(np.sort(x), x.shape[0], 1.0 - alpha)


def assert_same_bits(got: tuple[float, float], want: tuple[float, float]) -> None:
    bits = np.asarray(got, dtype=np.float64).view(np.int64)
    assert np.array_equal(bits, np.asarray(want, dtype=np.float64).view(np.int64)), (got, want)


ALPHAS = st.sampled_from([0.5, 0.9, 0.95, 0.975, 0.99, 0.995, 0.999]) | st.floats(0.01, 0.999)
VALUES = st.sampled_from([-2.0, -1.0, -0.5, 0.5, 1.0, 3.0]) | st.floats(-1e3, 1e3, allow_subnormal=False)


@settings(max_examples=400, deadline=None)
@given(x=arrays(np.float64, st.integers(2, 600), elements=VALUES), alpha=ALPHAS)
@example(x=np.array([1.0, -1.0, -1.0, -1.0, 2.0] * 40), alpha=0.99)  # ties of q far beyond the head
@example(x=np.linspace(1.0, -1.0, 500), alpha=0.99)  # descending: each value enters the head
def test_historical_kernel_is_the_sorted_tail_bit_for_bit(x: np.ndarray, alpha: float) -> None:
    want = reference(x, alpha)
    assert_same_bits(historical_kernel(x, alpha), want)
    assert_same_bits(_historical_python(x, alpha), want)


def uses_head(n: int, alpha: float) -> bool:
    h = math.floor((n - 1) * (1.0 - alpha)) + 2
    return h <= MAX_HEAD and h < n


SIZES, LEVELS = [2, 3, 50, 500, 5000], [0.9, 0.99, 0.3]


def test_the_grid_covers_both_paths() -> None:
    paths = {uses_head(n, a) for n in SIZES for a in LEVELS}
    assert paths == {True, False}


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("alpha", LEVELS)
def test_head_and_sort_paths_agree_with_numpy(n: int, alpha: float) -> None:
    x = np.random.default_rng(n).standard_t(3, n)
    var, cvar = historical_kernel(x, alpha)
    assert var == pytest.approx(-np.quantile(x, 1.0 - alpha), rel=1e-12, abs=1e-15)
    assert cvar == pytest.approx(-x[x <= -var].mean(), rel=1e-12)
