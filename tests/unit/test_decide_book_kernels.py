"""The policy-book kernels of the decision (``measures/decide_kernels.py``, issue 14) against the
NumPy formulation they replaced in ``DecisionEngine`` (kept here verbatim as the reference): every
output bit for bit (``np.array_equal`` on the bits, never a tolerance), on random books of every
length class of NumPy's pairwise summation, with shorts, zeros, ``-0.0``, over-invested books and
columns in and out of order."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from advanced_risk.measures.decide_kernels import (
    earned_return_kernel,
    finite_or_zero_kernel,
    policy_book_kernel,
    with_cash_kernel,
)

SIZES = st.sampled_from([1, 2, 7, 8, 9, 15, 16, 17, 20, 100, 127, 128, 129, 200, 500])


# -- the NumPy formulation before the kernels (engine/core.py at f72a634), verbatim but for `self` --
def reference_with_cash(held: np.ndarray) -> np.ndarray:
    longs = np.maximum(held, 0.0)
    total = float(longs.sum())
    if total > 1.0:
        longs = longs / total
    return np.append(longs, 1.0 - longs.sum())


def reference_policy_book(
    held: np.ndarray, cols: np.ndarray, weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    target = held.copy()
    mine = held[cols]
    target[cols] = np.where(mine < 0.0, mine, weights[:-1])
    outside = np.ones(held.shape[0], dtype=bool)
    outside[cols] = mine < 0.0
    return target, np.flatnonzero(outside & (held != 0.0))


def _bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float64).view(np.int64)


def _book(rng: np.random.Generator, n: int) -> np.ndarray:
    """Weights with exact zeros, -0.0, shorts (half the books) and gross exposure from tiny to ~3."""
    held = rng.normal(0.0, 1.0, n) * rng.choice([1e-3, 1.0 / n, 3.0 / n])
    held[rng.random(n) < 0.2] = 0.0
    held[rng.random(n) < 0.05] = -0.0
    return np.abs(held) if rng.random() < 0.5 else held  # long-only, as the policy's own books


def _columns(rng: np.random.Generator, m: int) -> np.ndarray:
    """All columns in order, a random subset in random order, or one column."""
    kind = rng.integers(3)
    if kind == 0:
        return np.arange(m)
    if kind == 1:
        return rng.permutation(m)[: rng.integers(1, m + 1)].astype(np.int64)
    return np.array([rng.integers(m)], dtype=np.int64)


@settings(max_examples=300, deadline=None)
@given(n=SIZES, seed=st.integers(0, 2**32 - 1))
def test_with_cash_kernel_is_the_numpy_formulation(n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    held = _book(rng, n)
    cols = _columns(rng, n)
    got = with_cash_kernel(held, cols)
    expected = reference_with_cash(held[cols])
    assert got.shape == expected.shape
    assert np.array_equal(_bits(got), _bits(expected))


@settings(max_examples=300, deadline=None)
@given(m=SIZES, seed=st.integers(0, 2**32 - 1))
def test_policy_book_kernel_is_the_numpy_formulation(m: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    held = _book(rng, m)
    cols = _columns(rng, m)
    weights = rng.dirichlet(np.ones(cols.size + 1))
    target, kept = policy_book_kernel(held, cols, weights)
    ref_target, ref_kept = reference_policy_book(held, cols, weights)
    assert np.array_equal(_bits(target), _bits(ref_target))
    assert np.array_equal(kept, ref_kept)
    assert not np.shares_memory(target, held)


def test_with_cash_of_an_over_invested_book_is_fully_invested() -> None:
    got = with_cash_kernel(np.array([0.8, 0.6, -0.5]), np.arange(3))
    np.testing.assert_array_equal(got, reference_with_cash(np.array([0.8, 0.6, -0.5])))
    longs = [0.8 / 1.4, 0.6 / 1.4]  # hand-computed: the longs scaled to a sum of 1, the short dropped
    np.testing.assert_array_equal(got, [*longs, 0.0, 1.0 - (longs[0] + longs[1])])


def test_policy_book_keeps_shorts_and_names_positions_outside_the_policy() -> None:
    held = np.array([0.2, -0.1, 0.3, 0.0])
    target, kept = policy_book_kernel(held, np.array([0, 1], dtype=np.int64), np.array([0.5, 0.4, 0.1]))
    np.testing.assert_array_equal(target, [0.5, -0.1, 0.3, 0.0])  # the short and the outsider kept
    np.testing.assert_array_equal(kept, [1, 2])


def test_kernels_refuse_columns_outside_the_book() -> None:
    held = np.zeros(3)
    with pytest.raises(IndexError):
        with_cash_kernel(held, np.array([0, 3], dtype=np.int64))
    with pytest.raises(IndexError):
        policy_book_kernel(held, np.array([-1], dtype=np.int64), np.array([1.0, 0.0]))
    with pytest.raises(ValueError, match="one value per column"):
        policy_book_kernel(held, np.array([0], dtype=np.int64), np.array([1.0]))


# -- StrategyDrawdown's reference book (risk/strategy_drawdown.py at f72a634), verbatim --------------
def reference_earned(weights: np.ndarray, returns: np.ndarray) -> float:
    earned = weights * returns
    earned[np.isnan(earned)] = 0.0
    return float(np.add.reduce(earned))


def reference_finite_or_zero(weights: np.ndarray) -> np.ndarray:
    return np.where(np.isfinite(weights), weights, 0.0).astype(np.float64)


def _with_gaps(rng: np.random.Generator, x: np.ndarray) -> np.ndarray:
    """``x`` with a few NaN, +-inf and -0.0 entries."""
    out = x.copy()
    for value in (np.nan, np.inf, -np.inf, -0.0):
        out[rng.random(x.size) < 0.05] = value
    return out


@settings(max_examples=300, deadline=None)
@given(n=SIZES, seed=st.integers(0, 2**32 - 1))
def test_earned_return_kernel_is_the_numpy_formulation(n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    weights = _with_gaps(rng, _book(rng, n))
    returns = _with_gaps(rng, rng.normal(0.0, 0.02, n))
    with np.errstate(invalid="ignore"):  # inf - inf: a NaN sum either way
        got, expected = earned_return_kernel(weights, returns), reference_earned(weights, returns)
    # ==: the same bits for every non-zero float; a zero sum's sign (-0.0 for an empty one) is not
    # used (the equity is multiplied by 1 + r)
    assert (np.isnan(got) and np.isnan(expected)) or got == expected


@settings(max_examples=200, deadline=None)
@given(n=SIZES, seed=st.integers(0, 2**32 - 1))
def test_finite_or_zero_kernel_is_the_numpy_formulation(n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    weights = _with_gaps(rng, _book(rng, n))
    got = finite_or_zero_kernel(weights)
    assert np.array_equal(_bits(got), _bits(reference_finite_or_zero(weights)))
    assert not np.shares_memory(got, weights)


def test_earned_return_refuses_arrays_of_two_lengths() -> None:
    with pytest.raises(ValueError, match="one length"):
        earned_return_kernel(np.zeros(3), np.zeros(2))
