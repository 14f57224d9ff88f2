"""The rollout's kernels against the NumPy code they replace, bit for bit.

``RunningMeanStd.update_normalize`` (one numba kernel) against ``update`` then ``normalize``.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from advanced_risk.rl.ppo.normalize import RunningMeanStd, _update_normalize_python


def _pair(d: int, seed: int, steps: int) -> tuple[RunningMeanStd, RunningMeanStd]:
    """Two normalisers with the same history of ``steps`` random batches."""
    gen = np.random.default_rng(seed)
    a, b = RunningMeanStd((d,)), RunningMeanStd((d,))
    for _ in range(steps):
        batch = gen.standard_normal((3, d)) * 5 + 2
        a.update(batch)
        b.update(batch)
    return a, b


def same_bits(x: np.ndarray, y: np.ndarray) -> bool:
    """Equal bit for bit (dtype, shape, NaN in the same places, signed zeros included)."""
    return x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes()


def assert_update_normalize_is_numpys(
    ours: RunningMeanStd, theirs: RunningMeanStd, x: np.ndarray, clip: float
) -> None:
    """``ours.update_normalize(x)`` against ``theirs.update(x)`` then ``theirs.normalize(x)``, bit for
    bit (two normalisers with the same history)."""
    with np.errstate(invalid="ignore"):  # NumPy warns on inf - inf (the compiled kernel does not)
        out = ours.update_normalize(x, clip)
        theirs.update(x)
        expected = theirs.normalize(x, clip)
    assert same_bits(out, expected)
    assert same_bits(ours.mean, theirs.mean)
    assert same_bits(ours.var, theirs.var)
    assert (ours.count, ours.version) == (theirs.count, theirs.version)


@settings(max_examples=60, deadline=None)
@given(
    x=arrays(
        np.float32,
        st.tuples(st.integers(1, 9), st.integers(1, 12)),
        elements=st.floats(-1e4, 1e4, width=32) | st.sampled_from([0.0, -0.0, 1e-30]),
    ),
    seed=st.integers(0, 1000),
    steps=st.integers(0, 3),
    clip=st.sampled_from([1.0, 5.0, 10.0]),
)
def test_update_normalize_is_update_then_normalize_bit_for_bit(
    x: np.ndarray, seed: int, steps: int, clip: float
) -> None:
    ours, theirs = _pair(x.shape[1], seed, steps)
    assert_update_normalize_is_numpys(ours, theirs, x, clip)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nan_and_infinity_go_where_numpy_puts_them(dtype: type) -> None:
    ours, theirs = _pair(4, 1, 2)
    x = np.array([[1.0, np.nan, 3.0, np.inf], [2.0, 0.5, -np.inf, 1.0]], dtype=dtype)
    assert_update_normalize_is_numpys(ours, theirs, x, 5.0)


def test_other_shapes_take_the_numpy_path() -> None:
    ours, theirs = RunningMeanStd((2, 3)), RunningMeanStd((2, 3))
    x = np.arange(12.0).reshape(2, 2, 3)
    out = ours.update_normalize(x, 5.0)
    theirs.update(x)
    assert same_bits(out, theirs.normalize(x, 5.0))


def test_the_python_kernel_is_the_compiled_one() -> None:
    gen = np.random.default_rng(3)
    x = gen.standard_normal((8, 30)).astype(np.float32)
    mean, var = gen.standard_normal(30), gen.random(30) + 0.1
    compiled = RunningMeanStd((30,))
    compiled.mean, compiled.var, compiled.count = mean.copy(), var.copy(), 17.0
    out = compiled.update_normalize(x, 10.0)
    m, v, c, o = _update_normalize_python(x, mean, var, 17.0, 10.0, 1e-8)
    assert same_bits(out, o)
    assert same_bits(compiled.mean, m)
    assert same_bits(compiled.var, v)
    assert compiled.count == c
