"""Adversarial checks of today's decision kernels (``measures/decide_kernels.py``), the
``checked_allocation`` fast path (``engine/components.py``) and ``accounting.trade_kernel``: every
output bit for bit NumPy's formulation (the references of ``tests/unit/test_decide_book_kernels.py``
and the ``checked_allocation`` of f72a634, verbatim), or a clear refusal; never an out-of-bounds
read or write.

Bugs these caught (fixed in the same commit):
- ``earned_return_kernel`` returned ``-0.0`` where ``np.add.reduce`` gives ``+0.0`` (an empty book,
  or every product ``-0.0``: weights 0 times a negative return), and summed two float32 inputs'
  products in float64 where NumPy rounds them to float32: the values are now read as float64 (the
  documented conversion) and the sum is NumPy's (``+ 0.0``: NumPy's reduction starts at +0.0);
- ``clipped_weights_kernel`` summed a float32 vector in float32 (``checked_allocation`` sums it as
  float64) and gave ``-0.0`` for an all ``-0.0`` / empty vector; it now reads float64 like
  ``np.asarray(weights, dtype=np.float64)``, and refuses an ``out`` of another length;
- ``trade_kernel`` with a ``held`` or ``out`` shorter than the action read past ``held`` and wrote
  past ``out`` (heap corruption: "corrupted size vs. prev_size", an aborted process): ``ValueError``.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.unit.test_policy_fast_paths_allocation import reference_checked_allocation

from advanced_risk.engine.components import checked_allocation
from advanced_risk.engine.protocols import Allocation
from advanced_risk.measures.decide_kernels import (
    clipped_weights_kernel,
    earned_return_kernel,
    finite_or_zero_kernel,
    policy_book_kernel,
    with_cash_kernel,
)
from advanced_risk.rl.portfolio.accounting import ACTION_BOUND, action_to_weights, trade_kernel
from advanced_risk.rl.portfolio.policy import execute

sys.path.insert(0, str(Path(__file__).parent))
from test_decide_book_kernels import (
    reference_earned,
    reference_finite_or_zero,
    reference_policy_book,
    reference_with_cash,
)

SPECIAL = [0.0, -0.0, 5e-324, -5e-324, 2.2250738585072014e-308, 1e-300, 0.3, 1.0, 1.5, 1e308, -1e308]
VALUES = st.one_of(
    st.sampled_from([*SPECIAL, np.nan, np.inf, -np.inf]),
    st.floats(-2.0, 2.0, allow_nan=False),
)
LENGTHS = st.sampled_from([0, 1, 2, 7, 8, 9, 16, 17, 128, 129, 300])


def _bits(x: Any) -> bytes:
    return np.ascontiguousarray(np.asarray(x, dtype=np.float64)).tobytes()


def _vector(draw: Any, n: int) -> np.ndarray:
    return np.array(draw(st.lists(VALUES, min_size=n, max_size=n)), dtype=np.float64)


@st.composite
def books(draw: Any) -> tuple[np.ndarray, np.ndarray, str]:
    """A held book (maybe a strided view, read-only, float32 or int) and its columns (maybe int32,
    strided, duplicated, in any order)."""
    n = draw(LENGTHS)
    held = _vector(draw, n)
    layout = draw(st.sampled_from(["plain", "strided", "readonly", "float32", "int64"]))
    if layout == "strided":
        held = np.repeat(held, 2)[::2]
    elif layout == "readonly":
        held.flags.writeable = False
    elif layout == "float32":
        with np.errstate(over="ignore"):
            held = held.astype(np.float32)
    elif layout == "int64":
        held = np.nan_to_num(held, posinf=0.0, neginf=0.0).clip(-5, 5).round().astype(np.int64)
    cols = np.array(draw(st.lists(st.integers(0, max(n - 1, 0)), max_size=n if n else 0)), dtype=np.int64)
    kind = draw(st.sampled_from(["int64", "int32", "strided"]))
    if kind == "int32":
        cols = cols.astype(np.int32)
    elif kind == "strided":
        cols = np.repeat(cols, 2)[::2]
    return held, cols, layout


@settings(max_examples=150, deadline=None)
@given(book=books())
def test_with_cash_is_numpy_on_any_book(book: tuple[np.ndarray, np.ndarray, str]) -> None:
    """Documented conversion: ``held``'s values are read as float64 (the engine's books are float64):
    a float32 or int book gives the reference of ``held[cols].astype(np.float64)``."""
    held, cols, _ = book
    with np.errstate(all="ignore"):
        got = with_cash_kernel(held, cols)
        expected = reference_with_cash(held[cols].astype(np.float64))
    assert got.dtype == np.float64
    assert got.shape == expected.shape
    assert _bits(got) == _bits(expected)


@settings(max_examples=150, deadline=None)
@given(book=books(), data=st.data())
def test_policy_book_is_numpy_on_any_book(book: tuple[np.ndarray, np.ndarray, str], data: Any) -> None:
    """``target`` keeps ``held``'s dtype, as ``held.copy()`` there; duplicate columns: the last wins.
    An int book (never the engine's: its books are float64) is not a case: float weights written into
    it are cast by NumPy's rules in numba, refused by Python's int() without it."""
    held, cols, layout = book
    if layout == "int64":
        held = held.astype(np.float64)
    weights = _vector(data.draw, cols.shape[0] + 1)
    with np.errstate(all="ignore"):  # a float64 weight past float32's range: inf in both
        target, kept = policy_book_kernel(held, cols, weights)
        ref_target, ref_kept = reference_policy_book(held, cols, weights)
    assert target.dtype == ref_target.dtype
    assert target.tobytes() == ref_target.tobytes()
    assert np.array_equal(kept, ref_kept)
    assert not np.shares_memory(target, held)


@settings(max_examples=150, deadline=None)
@given(
    n=LENGTHS, data=st.data(), layout=st.sampled_from(["plain", "strided", "float32", "mixed", "readonly"])
)
def test_earned_return_and_finite_or_zero_are_numpy(n: int, data: Any, layout: str) -> None:
    """Bit for bit, the sign of a zero sum included; values read as float64 (documented)."""
    weights, returns = _vector(data.draw, n), _vector(data.draw, n)
    if layout == "strided":
        weights, returns = np.repeat(weights, 2)[::2], np.repeat(returns, 2)[1::2]
    elif layout in ("float32", "mixed"):
        with np.errstate(over="ignore"):
            returns = returns.astype(np.float32)
            weights = weights.astype(np.float32) if layout == "float32" else weights
    elif layout == "readonly":
        weights.flags.writeable = returns.flags.writeable = False
    with np.errstate(all="ignore"):
        got = earned_return_kernel(weights, returns)
        expected = reference_earned(weights.astype(np.float64), returns.astype(np.float64))
    assert _bits(got) == _bits(expected) or (math.isnan(got) and math.isnan(expected))
    zeroed = finite_or_zero_kernel(weights)
    assert zeroed.tobytes() == reference_finite_or_zero(weights).tobytes()
    assert not np.shares_memory(zeroed, weights)


@pytest.mark.parametrize("n", [0, 1, 5, 8, 40, 200])
def test_earned_return_of_zero_products_is_plus_zero(n: int) -> None:
    """An all-cash reference book on a falling bar: every product is -0.0; NumPy's sum is +0.0."""
    weights, returns = np.zeros(n), np.full(n, -0.01)
    got = earned_return_kernel(weights, returns)
    assert _bits(got) == _bits(reference_earned(weights, returns)) == _bits(0.0)


def test_kernels_refuse_bad_shapes_and_columns() -> None:
    held = np.array([0.2, 0.3, 0.5])
    for cols in (np.array([3]), np.array([-1]), np.array([2**40])):
        with pytest.raises(IndexError, match="outside held"):
            with_cash_kernel(held, cols)
        with pytest.raises(IndexError, match="outside held"):
            policy_book_kernel(held, cols, np.array([0.5, 0.5]))
    with pytest.raises(ValueError, match="one value per column"):
        policy_book_kernel(held, np.array([0, 1]), np.array([1.0]))
    with pytest.raises(ValueError, match="one length"):
        earned_return_kernel(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="length of weights"):
        clipped_weights_kernel(np.array([0.5, 0.5]), np.empty(1))
    for bad in (held.reshape(1, 3), [0.2, 0.3, 0.5]):  # 2-D or a list: refused (numba: a TypingError)
        with pytest.raises(Exception):  # noqa: B017, PT011
            with_cash_kernel(bad, np.array([0]))
        with pytest.raises(Exception):  # noqa: B017, PT011
            finite_or_zero_kernel(bad)


# -- checked_allocation: the fast path against the NumPy checks of f72a634 ---------------------------


def _outcome(check: Any, allocation: Allocation, n_assets: int) -> tuple[Any, ...]:
    try:
        got = check(allocation, n_assets)
    except Exception as exc:
        return ("refused", type(exc), str(exc))
    u = got.uncertainty
    return ("ok", type(got.weights), got.weights.dtype, got.weights.tobytes(), type(u), repr(u), got.drift)


class _Sub(np.ndarray):
    pass


BASE = np.array([0.25, 0.25, 0.5])
WEIGHTS = {
    "plain": BASE,
    "-0.0": np.array([-0.0, 0.5, 0.5]),
    "1+1e-10": np.array([1.0 + 1e-10, 0.0, 0.0]),
    "1+2e-9": np.array([1.0 + 2e-9, 0.0, 0.0]),
    "-1e-9": np.array([-1e-9, 0.5, 0.5 + 1e-9]),
    "-1.1e-9": np.array([-1.1e-9, 0.5, 0.5]),
    "sum+1e-6": np.array([0.5, 0.5, 1e-6]),
    "sum+1.0000001e-6": np.array([0.5, 0.5, 1.0000001e-6]),
    "sum-1e-6": np.array([0.5, 0.5 - 1e-6, 0.0]),
    "sum-1.0000001e-6": np.array([0.5, 0.5 - 1.0000001e-6, 0.0]),
    "nan": np.array([np.nan, 0.5, 0.5]),
    "inf": np.array([np.inf, 0.5, 0.5]),
    "denormal": np.array([-5e-324, 0.5, 0.5]),
    "huge": np.array([1e308, -1e308, 1.0]),
    "strided": np.array([0.25, 9.0, 0.25, 9.0, 0.5])[::2],
    "subclass": BASE.copy().view(_Sub),
    "float32": BASE.astype(np.float32),
    "float32 off": np.array([0.1, 0.2, 0.7], dtype=np.float32),
    "int": np.array([0, 0, 1]),
    "list": [0.25, 0.25, 0.5],
    "short": BASE[:2],
    "2-D": BASE.reshape(1, 3),
    "column": np.asfortranarray(BASE.reshape(3, 1)),
    "readonly": np.frombuffer(BASE.tobytes()),
}
UNCERTAINTY = [
    0.1, 0.0, -0.0, None, np.float32(0.1), np.float64(0.1), np.float16(0.5), True, False, 1, np.int64(2),
    np.nan, np.inf, -np.inf, -1e-300, "0.1", np.bool_(True),
]  # fmt: skip


@pytest.mark.parametrize("name", list(WEIGHTS))
def test_checked_allocation_is_the_numpy_checks(name: str) -> None:
    for u in UNCERTAINTY:
        for drift in (None, "drifted"):
            allocation = Allocation(WEIGHTS[name], u, drift)  # type: ignore[arg-type]
            with np.errstate(all="ignore"):
                got = _outcome(checked_allocation, allocation, 2)
                expected = _outcome(reference_checked_allocation, allocation, 2)
            assert got == expected, (name, u, drift)


@settings(max_examples=300, deadline=None)
@given(n=st.sampled_from([1, 2, 7, 8, 9, 20, 128, 200]), data=st.data())
def test_checked_allocation_on_near_valid_books(n: int, data: Any) -> None:
    """Dirichlet books nudged around every boundary (1e-9 bounds, the 1e-6 sum, -0.0)."""
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    weights = rng.dirichlet(np.ones(n + 1))
    nudge = data.draw(st.sampled_from([0.0, 1e-10, -1e-10, 9e-7, -9e-7, 1.1e-6, -1.1e-6, 2e-9, -2e-9]))
    weights[rng.integers(n + 1)] += nudge
    weights[rng.random(n + 1) < 0.1] = -0.0
    allocation = Allocation(weights, float(rng.random()), None)
    assert _outcome(checked_allocation, allocation, n) == _outcome(
        reference_checked_allocation, allocation, n
    )


def test_checked_allocation_never_aliases_the_callers_weights() -> None:
    weights = BASE.copy()
    got = checked_allocation(Allocation(weights, 0.1), 2)
    weights[:] = [1.0, 0.0, 0.0]  # the caller reuses its array
    assert got.weights.tolist() == [0.25, 0.25, 0.5]
    assert not np.shares_memory(got.weights, weights)


# -- trade_kernel against execute(held, action_to_weights(action), config) -----------------------
@settings(max_examples=300, deadline=None)
@given(
    m=st.sampled_from([1, 2, 3, 8, 9, 17, 130]),
    seed=st.integers(0, 2**32 - 1),
    band=st.sampled_from([0.0, 1e-12, 0.02, 0.5, 1.99, 2.0, 3.0]),
    rate=st.sampled_from([1.0, 0.999999, 0.5, 0.2, 0.0]),
    special=st.sampled_from(["none", "nan", "inf", "-inf", "huge", "-0.0", "held=target", "strided"]),
)
def test_trade_kernel_is_execute(m: int, seed: int, band: float, rate: float, special: str) -> None:
    rng = np.random.default_rng(seed)
    action = (rng.normal(size=m) * 10.0 ** rng.integers(-3, 3)).astype(np.float32)
    held = rng.dirichlet(np.ones(m))
    if special in ("nan", "inf", "-inf", "huge", "-0.0"):
        action[rng.integers(m)] = {"nan": np.nan, "inf": np.inf, "-inf": -np.inf, "huge": 3e38, "-0.0": -0.0}[
            special
        ]
    elif special == "held=target":
        held = action_to_weights(action)
    elif special == "strided":
        held = np.repeat(held, 2)[::2]
    # execute reads the band and the rate only: a namespace lets the test go past EnvConfig's ranges
    config = SimpleNamespace(no_trade_band=band, rebalance_rate=rate)
    out = np.empty(m)
    with np.errstate(all="ignore"):
        trade_kernel(action, held, ACTION_BOUND, band, rate, out)
        expected = execute(held, action_to_weights(action), config)  # type: ignore[arg-type]
    assert out.tobytes() == np.ascontiguousarray(expected).tobytes()


def test_trade_kernel_refuses_arrays_of_other_lengths() -> None:
    """Before the fix: a held of 2 for an action of 5 read past held, and an out of 1 wrote past it
    ("corrupted size vs. prev_size", an aborted process)."""
    action = np.zeros(5, dtype=np.float32)
    for held, out in (
        (np.full(2, 0.5), np.empty(5)),
        (np.full(5, 0.2), np.empty(1)),
        (np.full(6, 0.2), np.empty(5)),
    ):
        with pytest.raises(ValueError, match="one length"):
            trade_kernel(action, held, ACTION_BOUND, 0.0, 0.5, out)
