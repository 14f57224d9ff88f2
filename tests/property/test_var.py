"""Property tests of measures/var.py: CVaR never below VaR, VaR monotone in alpha, finite in, finite out."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from advanced_risk.measures.validation import MAX_ABS_RETURN
from advanced_risk.measures.var import (
    cornish_fisher_cvar,
    cornish_fisher_var,
    gaussian_cvar,
    gaussian_var,
    historical_cvar,
    historical_var,
    rolling_historical_cvar,
    rolling_historical_var,
)

_returns = st.integers(2, 300).flatmap(
    lambda n: arrays(
        np.float64,
        n,
        elements=st.floats(-0.5, 0.5, allow_nan=False, allow_infinity=False, allow_subnormal=False),
    )
)
_alpha = st.floats(0.5, 0.999)


def _cf_is_monotone_on_the_tail(r: np.ndarray, alpha: float) -> bool:
    """z -> q_cf(z) is increasing on [-8, q], q = Phi^-1(1 - alpha): the expansion's valid domain there.

    dq_cf/dz = c1 + 2 c2 z + 3 c3 z^2 must be positive on the interval (its minimum is at an end or
    at the vertex). Below -8 the Gaussian tail mass is 6e-16, beneath the tests' tolerance. Outside
    this domain (strong skew with little kurtosis, e.g. lognormal returns) Cornish-Fisher is not a
    valid quantile function and its CVaR can fall below its VaR, as documented.
    """
    d = r - r.mean()
    m2 = (d**2).mean()
    if m2 <= (1e-15 * r.mean()) ** 2:
        return True  # a constant series: S = K = 0
    z = d / math.sqrt(m2)
    s, k = (z**3).mean(), (z**4).mean() - 3
    c1, c2, c3 = 1 - k / 8 + 5 * s**2 / 36, s / 6, k / 24 - s**2 / 18
    q = NormalDist().inv_cdf(1 - alpha)
    points = [-8.0, q] + ([-c2 / (3 * c3)] if c3 > 0 and -8.0 < -c2 / (3 * c3) < q else [])
    return all(c1 + 2 * c2 * x + 3 * c3 * x * x > 0 for x in points)


@settings(deadline=None, max_examples=50)
@given(returns=_returns, alpha=_alpha)
def test_historical_cvar_is_never_below_var(returns: np.ndarray, alpha: float) -> None:
    assert historical_cvar(returns, alpha) >= historical_var(returns, alpha)


@settings(deadline=None, max_examples=50)
@given(returns=_returns, alpha=_alpha)
def test_gaussian_cvar_is_never_below_var(returns: np.ndarray, alpha: float) -> None:
    assert gaussian_cvar(returns, alpha) >= gaussian_var(returns, alpha)


@settings(deadline=None, max_examples=50)
@given(returns=_returns, alpha=_alpha)
def test_cornish_fisher_cvar_is_never_below_var_where_the_expansion_is_monotone(
    returns: np.ndarray, alpha: float
) -> None:
    assume(_cf_is_monotone_on_the_tail(returns, alpha))
    var = cornish_fisher_var(returns, alpha)
    assert cornish_fisher_cvar(returns, alpha) >= var - 1e-12 * max(1.0, abs(var))


@settings(deadline=None, max_examples=50)
@given(returns=_returns, a=_alpha, b=_alpha)
def test_var_is_non_decreasing_in_alpha(returns: np.ndarray, a: float, b: float) -> None:
    lo, hi = min(a, b), max(a, b)
    assert historical_var(returns, lo) <= historical_var(returns, hi)
    assert gaussian_var(returns, lo) <= gaussian_var(returns, hi)
    if _cf_is_monotone_on_the_tail(returns, lo):  # increasing on [q(hi), q(lo)]
        assert cornish_fisher_var(returns, lo) <= cornish_fisher_var(returns, hi) + 1e-12


@settings(deadline=None, max_examples=50)
@given(returns=_returns, alpha=st.floats(0.001, 0.999))
def test_finite_returns_give_finite_var_and_cvar(returns: np.ndarray, alpha: float) -> None:
    for fn in (
        historical_var,
        historical_cvar,
        gaussian_var,
        gaussian_cvar,
        cornish_fisher_var,
        cornish_fisher_cvar,
    ):
        assert math.isfinite(fn(returns, alpha))


_accepted_returns = st.integers(2, 300).flatmap(
    lambda n: arrays(
        np.float64,
        n,
        elements=st.floats(-MAX_ABS_RETURN, MAX_ABS_RETURN, allow_nan=False, allow_infinity=False),
    )
)


@settings(deadline=None, max_examples=100)
@given(returns=_accepted_returns, alpha=st.floats(0.001, 0.999))
def test_every_accepted_return_series_gives_finite_var_and_cvar(returns: np.ndarray, alpha: float) -> None:
    # up to |r| = MAX_ABS_RETURN, the variance and the fourth moment of Cornish-Fisher cannot overflow
    for fn in (gaussian_var, gaussian_cvar, cornish_fisher_var, cornish_fisher_cvar, historical_cvar):
        assert math.isfinite(fn(returns, alpha))


@settings(deadline=None, max_examples=50)
@given(returns=_returns, alpha=st.floats(0.001, 0.999), window=st.integers(2, 40))
def test_rolling_historical_var_and_cvar_equal_the_static_measures_on_each_window(
    returns: np.ndarray, alpha: float, window: int
) -> None:
    assume(returns.size > window)
    var = rolling_historical_var(returns, window, alpha)
    cvar = rolling_historical_cvar(returns, window, alpha)
    assert np.isnan(var[:window]).all()
    for t in range(window, returns.size):
        assert var[t] == historical_var(returns[t - window : t], alpha)
        assert math.isclose(
            cvar[t], historical_cvar(returns[t - window : t], alpha), rel_tol=1e-12, abs_tol=1e-15
        )
