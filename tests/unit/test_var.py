"""Unit tests of measures/var.py: hand-computed cases, input validation, kernel parity."""

from __future__ import annotations

import doctest
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import advanced_risk.measures.var as var_module
import advanced_risk.measures.var_kernels as kernels
from advanced_risk.errors import InvalidInputError
from advanced_risk.measures import ewma_variance
from advanced_risk.measures.var import (
    VaRMethod,
    cornish_fisher_cvar,
    cornish_fisher_var,
    filtered_historical_cvar,
    filtered_historical_var,
    gaussian_cvar,
    gaussian_var,
    historical_cvar,
    historical_var,
    portfolio_cvar,
    portfolio_var,
    rolling_fhs_cvar,
    rolling_fhs_var,
    rolling_historical_cvar,
    rolling_historical_var,
)

R5 = [-0.05, -0.01, 0.0, 0.01, 0.02]
SIMPLE: list[Callable[[Any, float], float]] = [
    historical_var,
    historical_cvar,
    gaussian_var,
    gaussian_cvar,
    cornish_fisher_var,
    cornish_fisher_cvar,
]


def _t_returns(n: int = 600, seed: int = 0) -> np.ndarray:
    return 0.01 * np.random.default_rng(seed).standard_t(4, n)


def test_historical_var_of_five_returns_interpolates_between_the_two_lowest() -> None:
    # quantile 0.2 of 5 sorted values sits at index 0.8: -0.05 + 0.8 * 0.04 = -0.018
    assert historical_var(R5, 0.8) == pytest.approx(0.018, abs=1e-15)


def test_historical_cvar_of_five_returns_is_the_mean_beyond_var() -> None:
    assert historical_cvar(R5, 0.8) == pytest.approx(0.05, abs=1e-15)
    assert historical_cvar(R5, 0.5) == pytest.approx((0.05 + 0.01 + 0.0) / 3, abs=1e-15)


def test_gaussian_var_of_symmetric_three_points_is_z_times_sample_sigma() -> None:
    # mean 0, sample sigma (ddof=1) = 0.02, Phi^-1(0.05) = -1.6448536269514722
    assert gaussian_var([-0.02, 0.0, 0.02], 0.95) == pytest.approx(1.6448536269514722 * 0.02, rel=1e-14)


def test_gaussian_cvar_of_standard_sample_is_phi_over_tail_probability() -> None:
    # phi(1.6448536) / 0.05 = 2.0627128075074
    assert gaussian_cvar([-0.02, 0.0, 0.02], 0.95) == pytest.approx(2.0627128075074 * 0.02, rel=1e-12)


def test_cornish_fisher_equals_gaussian_when_the_sample_has_no_shape() -> None:
    # a constant series: S = K = 0 by convention, VaR = -mu for both
    r = [0.01] * 10
    assert cornish_fisher_var(r, 0.99) == pytest.approx(gaussian_var(r, 0.99), abs=1e-15)
    assert cornish_fisher_cvar(r, 0.99) == pytest.approx(gaussian_cvar(r, 0.99), abs=1e-15)


def test_cornish_fisher_var_is_larger_than_gaussian_for_fat_left_tail() -> None:
    r = _t_returns()
    r[:5] = -0.08
    assert cornish_fisher_var(r, 0.99) > gaussian_var(r, 0.99)


def test_portfolio_var_is_the_var_of_the_weighted_return_series() -> None:
    rng = np.random.default_rng(3)
    r = 0.01 * rng.standard_normal((300, 4))
    w = np.array([0.4, 0.3, 0.2, 0.1])
    for method in (VaRMethod.HISTORICAL, VaRMethod.GAUSSIAN, VaRMethod.CORNISH_FISHER):
        ref = {VaRMethod.HISTORICAL: historical_var, VaRMethod.GAUSSIAN: gaussian_var}.get(
            method, cornish_fisher_var
        )
        assert portfolio_var(w, r, 0.99, method) == pytest.approx(ref(r @ w, 0.99), rel=1e-13)
    assert portfolio_cvar(w, r, 0.95) == pytest.approx(historical_cvar(r @ w, 0.95), rel=1e-13)


def test_portfolio_fhs_ewma_uses_the_riskmetrics_filter() -> None:
    rng = np.random.default_rng(4)
    r = 0.01 * rng.standard_normal((300, 2))
    p = r @ np.array([0.5, 0.5])
    v = ewma_variance(p, 0.94)
    got = portfolio_var([0.5, 0.5], r, 0.99, "fhs_ewma")
    assert got == pytest.approx(filtered_historical_var(p, v, 0.99), rel=1e-13)


def test_portfolio_var_refuses_fhs_garch_without_fitted_parameters() -> None:
    with pytest.raises(InvalidInputError, match="GARCH"):
        portfolio_var([1.0], [[0.01], [0.02], [-0.01]], 0.99, VaRMethod.FHS_GARCH)


def test_portfolio_var_rejects_weights_of_wrong_length_and_unknown_method() -> None:
    with pytest.raises(InvalidInputError, match="one entry per asset"):
        portfolio_var([0.5, 0.5, 0.0], [[0.01, 0.0], [0.02, 0.01]], 0.99)
    with pytest.raises(InvalidInputError, match="method must be one of"):
        portfolio_var([1.0], [[0.01], [0.02]], 0.99, "monte_carlo")


def test_fhs_with_constant_variance_equals_historical() -> None:
    r = _t_returns()
    v = np.full(r.size + 1, 2.5e-4)
    assert filtered_historical_var(r, v, 0.99) == pytest.approx(historical_var(r, 0.99), rel=1e-13)
    assert filtered_historical_cvar(r, v, 0.95) == pytest.approx(historical_cvar(r, 0.95), rel=1e-13)


def test_fhs_rescales_the_residual_quantile_by_the_next_bar_volatility() -> None:
    r = _t_returns(300)
    v = np.full(r.size + 1, 1e-4)
    v[-1] = 4e-4  # next bar twice as volatile
    mu = 0.0005
    z = (r - mu) / 0.01
    assert filtered_historical_var(r, v, 0.99, mu) == pytest.approx(
        -mu + 0.02 * historical_var(z, 0.99), rel=1e-13
    )


def test_fhs_rejects_variance_of_wrong_length_or_sign() -> None:
    with pytest.raises(InvalidInputError, match="len\\(returns\\) \\+ 1"):
        filtered_historical_var([0.01, 0.02], [1e-4, 1e-4])
    with pytest.raises(InvalidInputError, match="variance must be > 0"):
        filtered_historical_var([0.01, 0.02], [1e-4, 0.0, 1e-4])


def test_rolling_historical_var_uses_the_window_before_each_day() -> None:
    r = _t_returns(400)
    out = rolling_historical_var(r, 50, 0.95)
    cvar = rolling_historical_cvar(r, 50, 0.95)
    assert np.isnan(out[:50]).all()
    assert np.isnan(cvar[:50]).all()
    for t in (50, 51, 200, 399):
        assert out[t] == historical_var(r[t - 50 : t], 0.95)
        assert cvar[t] == pytest.approx(historical_cvar(r[t - 50 : t], 0.95), rel=1e-13)


@pytest.mark.parametrize("alpha", [0.999, 0.99, 0.95, 0.7, 0.5, 0.2, 0.01])
def test_rolling_historical_var_equals_numpy_quantile_with_ties_at_every_level(alpha: float) -> None:
    r = np.round(_t_returns(700), 3)  # rounding makes many ties
    r[100:180] = 0.0
    out = rolling_historical_var(r, 60, alpha)
    ref = np.array([-np.quantile(r[t - 60 : t], 1 - alpha) for t in range(60, r.size)])
    np.testing.assert_array_equal(out[60:], ref)
    cvar = rolling_historical_cvar(r, 60, alpha)
    ref_c = np.array([-r[t - 60 : t][r[t - 60 : t] <= -ref[t - 60]].mean() for t in range(60, r.size)])
    np.testing.assert_allclose(cvar[60:], ref_c, rtol=1e-12, atol=1e-15)


def test_rolling_historical_var_of_a_matrix_is_computed_per_column() -> None:
    r = 0.01 * np.random.default_rng(5).standard_normal((300, 3))
    out = rolling_historical_var(r, 100, 0.99)
    assert out.shape == (300, 3)
    for j in range(3):
        np.testing.assert_array_equal(out[:, j], rolling_historical_var(r[:, j], 100, 0.99))


def test_rolling_fhs_var_equals_fhs_on_each_expanding_then_rolling_window() -> None:
    r = _t_returns(500)
    v = ewma_variance(r, 0.94)
    out = rolling_fhs_var(r, v, window=200, alpha=0.99, mu=0.0002, start=50)
    cvar = rolling_fhs_cvar(r, v, window=200, alpha=0.99, mu=0.0002, start=50)
    assert np.isnan(out[:50]).all()
    for t in (50, 120, 200, 201, 499):
        lo = max(0, t - 200)
        window_v = np.append(v[lo:t], v[t])
        assert out[t] == pytest.approx(filtered_historical_var(r[lo:t], window_v, 0.99, 0.0002), rel=1e-13)
        assert cvar[t] == pytest.approx(filtered_historical_cvar(r[lo:t], window_v, 0.99, 0.0002), rel=1e-13)


BAD_RETURNS = {
    "nan": [0.01, float("nan"), 0.02],
    "inf": [0.01, float("inf"), 0.02],
    "empty": [],
    "one_value": [0.01],
    "two_d": [[0.01, 0.02], [0.0, 0.01]],
    "text": ["a", "b"],
}


@pytest.mark.parametrize("fn", SIMPLE, ids=lambda f: f.__name__)
@pytest.mark.parametrize("returns", BAD_RETURNS.values(), ids=BAD_RETURNS.keys())
def test_simple_measures_reject_bad_returns(fn: Callable[[Any, float], float], returns: Any) -> None:
    with pytest.raises(InvalidInputError, match="returns"):
        fn(returns, 0.99)


@pytest.mark.parametrize("fn", SIMPLE, ids=lambda f: f.__name__)
@pytest.mark.parametrize("alpha", [0.0, 1.0, -0.5, 1.5, float("nan"), True, "0.99"])
def test_simple_measures_reject_alpha_outside_open_unit_interval(
    fn: Callable[[Any, float], float], alpha: Any
) -> None:
    with pytest.raises(InvalidInputError, match="alpha"):
        fn([0.01, -0.02, 0.0], alpha)


@pytest.mark.parametrize(
    "call",
    [
        lambda: rolling_historical_var([0.01, float("nan"), 0.0, 0.01], 2),
        lambda: rolling_historical_var([0.01, 0.02], 5),
        lambda: rolling_historical_var(np.zeros((2, 2, 2)), 1),
        lambda: rolling_historical_var([0.01, 0.02, 0.0], 2, alpha=1.0),
        lambda: rolling_fhs_var([0.01, 0.02, 0.0], [1e-4] * 4, window=2, start=1),
        lambda: rolling_fhs_var([0.01, 0.02, 0.0], [1e-4] * 4, window=2, start=9),
        lambda: filtered_historical_var([0.01, 0.02], [1e-4, 1e-4, float("inf")]),
        lambda: filtered_historical_var([0.01, 0.02], [1e-4, 1e-4, 1e-4], mu=float("nan")),
        lambda: portfolio_var([1.0], [0.01, 0.02], 0.99),
    ],
    ids=[
        "rolling_nan",
        "rolling_short",
        "rolling_3d",
        "rolling_alpha_1",
        "fhs_start_1",
        "fhs_start_past_end",
        "fhs_inf_variance",
        "fhs_nan_mu",
        "portfolio_1d_returns",
    ],
)
def test_rolling_fhs_and_portfolio_measures_reject_bad_input(call: Callable[[], object]) -> None:
    with pytest.raises(InvalidInputError):
        call()


KERNELS = [
    ("historical", lambda x: (x, 0.97)),
    ("gaussian", lambda x: (x, 0.97, -1.880793608151251, 0.06804194086216)),
    ("cornish_fisher", lambda x: (x, 0.97, -1.880793608151251, 0.06804194086216)),
    ("moments", lambda x: (x,)),
    ("fhs", lambda x: (x, np.full(x.size + 1, 1e-4), 0.001, 0.99)),
    ("rolling_tail", lambda x: (x, 50, 0.95, 10)),
    ("rolling_tail", lambda x: (x, 50, 0.3, 60)),
]


@pytest.mark.parametrize(("name", "args"), KERNELS, ids=[f"{k[0]}_{i}" for i, k in enumerate(KERNELS)])
def test_python_kernel_and_jitted_kernel_agree(
    name: str, args: Callable[[np.ndarray], tuple[Any, ...]]
) -> None:
    python = getattr(kernels, f"_{name}_python")
    public = f"{name}_kernel"  # the kernels other modules call; helpers like _moments stay private
    jitted = getattr(kernels, public if hasattr(kernels, public) else f"_{name}")
    a = args(_t_returns(300))
    for p, j in zip(np.atleast_1d(*python(*a)), np.atleast_1d(*jitted(*a)), strict=True):
        np.testing.assert_allclose(p, j, rtol=1e-12, atol=0)


def test_var_module_docstring_examples_run() -> None:
    result = doctest.testmod(var_module)
    assert result.attempted > 0
    assert result.failed == 0


# ------------------------------------------------------------------------------------ overflow
@pytest.mark.parametrize("measure", [gaussian_var, gaussian_cvar, cornish_fisher_var, historical_var])
def test_returns_whose_moments_would_overflow_are_refused(measure: Callable[..., float]) -> None:
    # the reported bug: gaussian_var on +-1e300 was inf (the variance overflowed)
    with pytest.raises(InvalidInputError, match=r"returns must be within \[-1e\+06, 1e\+06\].*index 0"):
        measure([1e300, -1e300, 1e300], alpha=0.95)


def test_rolling_and_portfolio_var_refuse_returns_beyond_the_bound() -> None:
    with pytest.raises(InvalidInputError, match="index 3"):
        rolling_historical_var([0.01, 0.02, -0.01, -2e6, 0.0], window=2, alpha=0.9)
    with pytest.raises(InvalidInputError, match=r"index \(1, 0\)"):
        portfolio_var([0.5, 0.5], [[0.01, 0.0], [1e300, 0.0], [0.0, 0.01]], alpha=0.9)


def test_gaussian_var_at_the_return_bound_is_finite_and_exact() -> None:
    import statistics
    from statistics import NormalDist

    r = [1e6, -1e6, 5e5, -1e6, 1e6]  # every return at or near MAX_ABS_RETURN
    mu, sigma = statistics.fmean(r), statistics.stdev(r)  # exact-rounded reference moments
    q = NormalDist().inv_cdf(0.05)
    assert gaussian_var(r, alpha=0.95) == pytest.approx(-(mu + q * sigma), rel=1e-12)
    assert np.isfinite(
        [cornish_fisher_var(r, 0.95), cornish_fisher_cvar(r, 0.95), gaussian_cvar(r, 0.95)]
    ).all()
