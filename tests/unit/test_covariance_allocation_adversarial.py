"""Adversarial tests of measures/covariance.py and measures/allocation.py.

Independent references (pandas' ``ewm``/``rolling``, SciPy's SLSQP, the closed form, a hand-written
upper-triangle mean, the KKT conditions) and hostile inputs: one asset, singular, flat, indefinite,
tiny-scale and ill-conditioned covariances, NaN/inf, 1,000 assets and 1e6 rows.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import optimize

from advanced_risk.errors import InvalidInputError
from advanced_risk.measures.allocation import min_variance_weights
from advanced_risk.measures.covariance import (
    _ewma_step_python,
    average_pairwise_correlation,
    covariance_to_correlation,
    ewma_correlation,
    ewma_correlation_step_kernel,
    ewma_covariance,
    rolling_correlation,
)


def _returns(n_rows: int, n_assets: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mix = np.eye(n_assets) + rng.normal(size=(n_assets, n_assets)) / np.sqrt(n_assets)
    return rng.normal(0.0, 0.01, size=(n_rows, n_assets)) @ mix


def _slsqp(cov: np.ndarray, *, long_only: bool) -> np.ndarray:
    n = cov.shape[0]
    res = optimize.minimize(
        lambda w: w @ cov @ w,
        np.full(n, 1.0 / n),
        jac=lambda w: 2 * cov @ w,
        bounds=[(0.0, 1.0)] * n if long_only else None,
        constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1.0, "jac": lambda w: np.ones(n)}],
        method="SLSQP",
        options={"ftol": 1e-16, "maxiter": 1000},
    )
    return np.asarray(res.x)


def _ill_conditioned(n: int, cond: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    c = (q * (np.geomspace(1.0, 1.0 / cond, n) * 1e-4)) @ q.T
    return (c + c.T) / 2


# ------------------------------------------------------------------------------------- references
def test_ewma_covariance_matches_pandas_ewm_of_the_zero_mean_products() -> None:
    r = _returns(400, 5, seed=1)
    lam = 0.94
    df = pd.DataFrame(r)
    # zero-mean RiskMetrics = pandas' adjust=True EWMA mean of r_j r_k (weights (1-lam) lam^i / (1-lam^T))
    ref = np.array(
        [
            [(df[j] * df[k]).ewm(alpha=1 - lam, adjust=True).mean().iloc[-1] for k in range(5)]
            for j in range(5)
        ]
    )
    np.testing.assert_allclose(ewma_covariance(r, lam), ref, rtol=1e-12, atol=0)
    d = np.sqrt(np.diag(ref))
    np.testing.assert_allclose(ewma_correlation(r, lam), ref / np.outer(d, d), rtol=1e-12, atol=1e-15)


def test_rolling_correlation_matches_pandas_with_a_flat_stretch() -> None:
    r = _returns(250, 4, seed=2)
    r[100:140, 2] = 0.003  # a stale price: windows inside it are flat
    got = rolling_correlation(r, 25)
    ref = pd.DataFrame(r).rolling(25).corr().to_numpy().reshape(250, 4, 4)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
    np.testing.assert_allclose(got, ref, atol=1e-12, equal_nan=True)
    assert np.isnan(got[139, 2]).all()
    assert not np.isnan(got[140, 2]).any()


def test_average_pairwise_correlation_is_the_hand_upper_triangle_mean() -> None:
    corr = ewma_correlation(_returns(120, 7, seed=3))
    corr[4, :] = corr[:, 4] = np.nan  # an undefined asset: its pairs are skipped
    iu = np.triu_indices(7, k=1)
    upper = corr[iu]
    assert average_pairwise_correlation(corr) == pytest.approx(float(np.nanmean(upper)), rel=1e-14)


def test_unconstrained_min_variance_is_the_closed_form_and_slsqp_with_shorts() -> None:
    cov = np.cov(_returns(300, 8, seed=4).T)
    w = min_variance_weights(cov, long_only=False)
    x = np.linalg.solve(cov, np.ones(8))
    np.testing.assert_allclose(w, x / x.sum(), rtol=1e-12)
    assert w.sum() == pytest.approx(1.0, abs=1e-14)
    assert (w < 0).any()  # shorts are used
    ref = _slsqp(cov, long_only=False)
    assert w @ cov @ w <= ref @ cov @ ref * (1 + 1e-10)


def test_long_only_min_variance_matches_slsqp_on_a_well_conditioned_covariance() -> None:
    cov = np.cov(_returns(300, 8, seed=5).T)
    w = min_variance_weights(cov)
    ref = _slsqp(cov, long_only=True)
    np.testing.assert_allclose(w, ref, atol=1e-6)
    assert w @ cov @ w <= ref @ cov @ ref * (1 + 1e-12)


# ------------------------------------------------------------------------------------- regressions
@pytest.mark.parametrize(("cond", "n", "seed"), [(1e4, 10, 1), (1e8, 30, 2), (1e10, 30, 3)])
def test_long_only_min_variance_is_optimal_on_ill_conditioned_covariances(
    cond: float, n: int, seed: int
) -> None:
    """Bug: projected gradient stopped on small moves, far from the optimum (weights off by 1e-4,
    variance 2e-6 relative too high at condition 1e8); now refined by an exact solve on the support."""
    cov = _ill_conditioned(n, cond, seed)
    w = min_variance_weights(cov)
    assert (w >= 0).all()
    assert w.sum() == pytest.approx(1.0, abs=1e-13)
    grad = 2 * cov @ w
    on = w > 0
    mu = float(grad[on].mean())
    # KKT: equal gradient on the support, no smaller off it
    scale = float(np.abs(grad).max())
    assert np.abs(grad[on] - mu).max() <= 1e-10 * scale
    assert (grad[~on] >= mu - 1e-10 * scale).all()
    ref = _slsqp(cov, long_only=True)
    assert w @ cov @ w <= ref @ cov @ ref * (1 + 1e-12)


@pytest.mark.parametrize(
    "cov",
    [
        pytest.param([[1.0, 0.0], [0.0, -1.0]], id="indefinite-sum-zero"),
        pytest.param([[-1.0, 0.0], [0.0, -2.0]], id="negative-definite"),
        pytest.param([[1.0, 2.0], [2.0, 1.0]], id="indefinite"),
        pytest.param([[1.0, 1.0], [1.0, 1.0]], id="singular"),
    ],
)
def test_unconstrained_min_variance_refuses_a_non_positive_definite_cov(cov: list[list[float]]) -> None:
    """Bug: [[1, 0], [0, -1]] gave [inf, -inf]; [[-1, 0], [0, -2]] gave a maximum, [2/3, 1/3]."""
    with pytest.raises(InvalidInputError, match="cov must be positive definite"):
        min_variance_weights(cov, long_only=False)


def test_symmetry_check_is_scale_free() -> None:
    """Bug: atol=1e-14 made any covariance with entries ~1e-15 pass as symmetric."""
    with pytest.raises(InvalidInputError, match="symmetric"):
        min_variance_weights([[1e-15, 5e-15], [0.0, 1e-15]])
    cov = np.cov(_returns(200, 5, seed=6).T)
    for scale in (1e-12, 1.0, 1e6):
        np.testing.assert_allclose(min_variance_weights(cov * scale), min_variance_weights(cov), atol=1e-9)
        np.testing.assert_allclose(
            min_variance_weights(cov * scale, long_only=False),
            min_variance_weights(cov, long_only=False),
            rtol=1e-9,
        )


@pytest.mark.parametrize("kernel", [ewma_correlation_step_kernel, _ewma_step_python])
def test_streaming_average_correlation_of_perfectly_correlated_assets_stays_in_bounds(kernel: object) -> None:
    """Bug: the unclipped streaming average reached 1.0000000000000007 for assets x, 3x, 0.7x."""
    rng = np.random.default_rng(0)
    state = np.zeros((3, 3))
    include = np.ones(3, dtype=np.bool_)
    values = []
    for _ in range(500):
        x = rng.normal() * 0.01
        values.append(kernel(state, np.array([x, 3 * x, 0.7 * x]), 0.94, include))  # type: ignore[operator]
    assert max(values) == 1.0


# ------------------------------------------------------------------------------------- hostile inputs
def test_one_asset() -> None:
    r = _returns(50, 1)
    assert ewma_correlation(r).tolist() == [[1.0]]
    assert np.isnan(ewma_correlation(np.zeros((5, 1)))).all()
    assert np.isnan(rolling_correlation(r, 10)[9:]).sum() == 0
    assert min_variance_weights([[0.04]]).tolist() == [1.0]
    assert min_variance_weights([[0.04]], long_only=False).tolist() == [1.0]
    assert min_variance_weights([[0.0]]).tolist() == [1.0]
    with pytest.raises(InvalidInputError, match="n >= 2"):
        average_pairwise_correlation([[1.0]])


def test_perfectly_correlated_assets() -> None:
    x = _returns(200, 1, seed=7)[:, 0]
    r = np.column_stack([x, 2 * x, -x])
    corr = ewma_correlation(r)
    np.testing.assert_allclose(corr, [[1, 1, -1], [1, 1, -1], [-1, -1, 1]], atol=1e-12)
    assert np.abs(corr).max() <= 1.0
    assert np.abs(rolling_correlation(r, 20)[19:]).max() <= 1.0
    cov = np.cov(r.T)
    w = min_variance_weights(cov)  # singular but PSD: long-only is fine and hedges x with -x
    assert (w >= 0).all()
    assert w.sum() == pytest.approx(1.0, abs=1e-13)
    assert w @ cov @ w <= 1e-12 * cov.max()
    with pytest.raises(InvalidInputError, match="positive definite"):
        min_variance_weights(np.ones((2, 2)), long_only=False)


def test_a_flat_asset_has_nan_correlation_as_documented() -> None:
    r = _returns(100, 3, seed=8)
    r[:, 1] = 0.0
    corr = ewma_correlation(r)
    assert np.isnan(corr[1]).all()
    assert np.isnan(corr[:, 1]).all()
    assert not np.isnan(corr[[0, 2]][:, [0, 2]]).any()
    assert average_pairwise_correlation(corr) == pytest.approx(corr[0, 2])
    r[:, 1] = 0.002  # flat price path in level terms for rolling: constant return
    rc = rolling_correlation(r, 10)
    assert np.isnan(rc[9:, 1]).all()
    cov = covariance_to_correlation(np.diag([0.0, 1.0]))
    assert np.isnan(cov[0]).all()
    assert cov[1, 1] == 1.0


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_and_inf_are_refused_naming_the_field(bad: float) -> None:
    r = _returns(20, 3)
    r[5, 1] = bad
    for call in (lambda: ewma_covariance(r), lambda: ewma_correlation(r), lambda: rolling_correlation(r, 5)):
        with pytest.raises(InvalidInputError, match="returns"):
            call()
    cov = np.eye(3)
    cov[0, 0] = bad
    for long_only in (True, False):
        with pytest.raises(InvalidInputError, match="cov"):
            min_variance_weights(cov, long_only=long_only)
    with pytest.raises(InvalidInputError, match="cov"):
        covariance_to_correlation(cov)


def test_a_thousand_assets_is_fast() -> None:
    r = _returns(1200, 1000, seed=9)
    start = time.perf_counter()
    sigma = ewma_covariance(r[-60:])
    cov = np.cov(r.T)
    w = min_variance_weights(cov)
    w_short = min_variance_weights(cov, long_only=False)
    elapsed = time.perf_counter() - start
    assert elapsed < 8.0, elapsed
    np.testing.assert_array_equal(sigma, sigma.T)
    ew = np.full(1000, 1e-3)
    assert (w >= 0).all()
    assert w.sum() == pytest.approx(1.0, abs=1e-12)
    assert w @ cov @ w <= ew @ cov @ ew
    assert w_short @ cov @ w_short <= w @ cov @ w * (1 + 1e-12)


def test_a_million_rows_is_linear_time() -> None:
    r = _returns(1_000_000, 2, seed=10)
    rolling_correlation(r[:1000], 60)  # warm
    ewma_covariance(r[:1000])
    times = []
    for n_rows in (100_000, 1_000_000):
        start = time.perf_counter()
        out = rolling_correlation(r[:n_rows], 60)
        ewma_covariance(r[:n_rows])
        times.append(time.perf_counter() - start)
    assert times[1] < 2.0, times
    assert times[1] < 25 * max(times[0], 1e-3), times  # linear (10x rows), with slack for noise
    ref = np.corrcoef(r[-60:].T)
    np.testing.assert_allclose(out[-1], ref, atol=1e-12)  # no drift after 1e6 slides


# ------------------------------------------------------------------------------------- properties
_cov_returns = st.integers(3, 40).flatmap(
    lambda n_rows: st.integers(1, 6).flatmap(
        lambda n: arrays(
            np.float64,
            (n_rows, n),
            elements=st.floats(-0.2, 0.2, allow_nan=False, allow_infinity=False, allow_subnormal=False),
        )
    )
)


@settings(deadline=None, max_examples=60)
@given(returns=_cov_returns, lam=st.floats(0.5, 0.999))
def test_ewma_correlation_is_bounded_with_a_unit_diagonal(returns: np.ndarray, lam: float) -> None:
    corr = ewma_correlation(returns, lam)
    defined = ~np.isnan(np.diag(corr))
    np.testing.assert_array_equal(np.diag(corr)[defined], 1.0)
    sub = corr[np.ix_(defined, defined)]
    assert not np.isnan(sub).any()
    assert np.abs(sub).max(initial=0.0) <= 1.0
    np.testing.assert_array_equal(corr, corr.T)


@settings(deadline=None, max_examples=60)
@given(returns=_cov_returns)
def test_min_variance_weights_properties(returns: np.ndarray) -> None:
    cov = returns.T @ returns / returns.shape[0]  # PSD, possibly singular
    scale = max(float(np.abs(cov).max()), 1e-300)
    assert np.linalg.eigvalsh(cov).min() >= -1e-12 * scale
    n = cov.shape[0]
    w = min_variance_weights(cov)
    assert (w >= 0).all()
    assert w.sum() == pytest.approx(1.0, abs=1e-12)
    ew = np.full(n, 1.0 / n)
    assert w @ cov @ w <= ew @ cov @ ew + 1e-15 * scale
    try:
        w_short = min_variance_weights(cov, long_only=False)
    except InvalidInputError:
        return  # singular: documented refusal
    assert w_short.sum() == pytest.approx(1.0, abs=1e-9)
    assert w_short @ cov @ w_short <= w @ cov @ w * (1 + 1e-9) + 1e-15 * scale


@pytest.mark.parametrize("variance", [3.2e-313, 1e-300, 1e-200])
def test_a_tiny_covariance_gives_finite_weights(variance: float) -> None:
    """Bug: [[3.2e-313]] gave [nan]: the 1 / L step overflowed (found by the property above)."""
    for long_only in (True, False):
        assert min_variance_weights([[variance]], long_only=long_only).tolist() == [1.0]
        w = min_variance_weights(np.diag([variance, 4 * variance]), long_only=long_only)
        np.testing.assert_allclose(w, [0.8, 0.2], rtol=1e-9)
