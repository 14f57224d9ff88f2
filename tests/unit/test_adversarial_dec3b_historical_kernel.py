"""Adversarial checks of ``historical_kernel`` (tail selected by insertion, f4f4b0f).

Expected behaviour: its (VaR, CVaR) is bit for bit ``sorted_tail_kernel(np.sort(x), n, 1 - alpha)``
(the sort it replaced) except the sign of a zero, for every finite input the public functions
accept (|x| <= 1e6, tiny and subnormal values too) and every alpha in (0, 1), 1e-12 and 1 - 1e-12
included; the VaR is minus NumPy's linear quantile and the CVaR minus the mean of the values at or
below it. Run this file with ``ADVANCED_RISK_DISABLE_NUMBA=1`` too: the twins are then plain Python.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from advanced_risk.measures.var import historical_cvar, historical_var
from advanced_risk.measures.var_kernels import (
    MAX_HEAD,
    _historical_python,
    historical_kernel,
    sorted_tail_kernel,
)

EXTREME_ALPHAS = [1e-12, 1e-6, 0.01, 0.5, 1.0 - 1.0 / 64.0, 0.99, 0.999, 1.0 - 1e-6, 1.0 - 1e-12]


def reference(x: np.ndarray, alpha: float) -> tuple[float, float]:
    return sorted_tail_kernel(np.sort(x), x.shape[0], 1.0 - alpha)


def assert_same_up_to_zero_sign(got: tuple[float, float], want: tuple[float, float]) -> None:
    """Equal bits, or both zeros (the documented -0.0 / 0.0 exception)."""
    for g, w in zip(got, want, strict=True):
        same_bits = np.float64(g).view(np.int64) == np.float64(w).view(np.int64)
        assert same_bits or (g == 0.0 and w == 0.0), (got, want)


def both_twins(x: np.ndarray, alpha: float) -> None:
    want = reference(x, alpha)
    assert_same_up_to_zero_sign(historical_kernel(x, alpha), want)
    assert_same_up_to_zero_sign(_historical_python(x, alpha), want)


ALPHA = st.sampled_from(EXTREME_ALPHAS) | st.floats(1e-12, 1.0 - 1e-12)
MAGNITUDE = st.sampled_from([1e6, 1.0, 1e-3, 1e-150, 5e-324, 1e-308])
FEW_VALUES = st.sampled_from([-1e6, -1.0, -5e-324, -0.0, 0.0, 5e-324, 1e-300, 1.0, 1e6])


@settings(max_examples=300, deadline=None)
@given(
    x=arrays(np.float64, st.integers(2, 400), elements=st.floats(-1e6, 1e6)),
    alpha=ALPHA,
)
@example(x=np.array([-0.0, 0.0] * 50), alpha=0.99)
@example(x=np.full(300, 7.0), alpha=1.0 - 1e-12)
@example(x=np.full(300, -5e-324), alpha=0.995)
def test_the_head_is_the_sorted_tail_on_any_accepted_input(x: np.ndarray, alpha: float) -> None:
    """Bit for bit the sort's (VaR, CVaR), except a zero's sign, on wide-range finite inputs."""
    both_twins(x, alpha)


@settings(max_examples=300, deadline=None)
@given(x=arrays(np.float64, st.integers(2, 300), elements=FEW_VALUES), alpha=ALPHA, scale=MAGNITUDE)
def test_the_head_is_the_sorted_tail_with_heavy_ties(x: np.ndarray, alpha: float, scale: float) -> None:
    """Heavy ties at the quantile, far beyond the kept head, at huge and subnormal magnitudes."""
    with np.errstate(all="ignore"):
        y = x * scale if scale >= 1e-3 else np.sign(x) * scale
    both_twins(y, alpha)


@pytest.mark.parametrize("n", [2, 3, 4, 5, 63, 64, 65, 66, 125, 127, 500, 5000])
@pytest.mark.parametrize("alpha", EXTREME_ALPHAS)
@pytest.mark.parametrize("shape", ["ascending", "descending", "equal", "two_levels", "random"])
def test_edge_sizes_and_levels_match_the_sort_and_numpy(n: int, alpha: float, shape: str) -> None:
    """n = 2..5000 and alpha near 0 and 1: the sort's bits, NumPy's quantile and tail mean."""
    rng = np.random.default_rng(n)
    x = {
        "ascending": np.linspace(-1.0, 1.0, n),
        "descending": np.linspace(1.0, -1.0, n),
        "equal": np.full(n, 0.0123),
        "two_levels": np.where(rng.random(n) < 0.5, -0.02, 0.01),
        "random": rng.standard_t(2, n) * 0.01,
    }[shape]
    both_twins(x, alpha)
    var, cvar = historical_kernel(x, alpha)
    q = float(np.quantile(x, 1.0 - alpha))
    assert var == pytest.approx(-q, rel=1e-12, abs=1e-300)
    assert cvar == pytest.approx(-x[x <= -var].mean(), rel=1e-12, abs=1e-300)
    assert cvar >= var


def test_the_head_path_is_taken_at_the_boundary_sizes() -> None:
    """The grid above exercises h = MAX_HEAD (n = 125, alpha 0.5) and h = MAX_HEAD + 1 (n = 127)."""
    assert math.floor((125 - 1) * 0.5) + 2 == MAX_HEAD
    assert math.floor((127 - 1) * 0.5) + 2 == MAX_HEAD + 1


def test_public_functions_agree_with_numpy_at_extreme_levels() -> None:
    """historical_var / historical_cvar (validated entry points) at alpha 1e-12 and 1 - 1e-12."""
    x = np.random.default_rng(1).normal(0.0, 0.01, 1000)
    for alpha in (1e-12, 1.0 - 1e-12):
        var = historical_var(x, alpha)
        assert var == pytest.approx(-np.quantile(x, 1.0 - alpha), rel=1e-12)
        assert historical_cvar(x, alpha) == pytest.approx(-x[x <= -var].mean(), rel=1e-12)
