"""Property tests of measures/covariance.py: EWMA covariance is symmetric PSD and finite."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from advanced_risk.measures.covariance import (
    average_pairwise_correlation,
    ewma_correlation,
    ewma_covariance,
    rolling_correlation,
)

_returns = st.integers(1, 60).flatmap(
    lambda n_rows: st.integers(1, 8).flatmap(
        lambda n_assets: arrays(
            np.float64,
            (n_rows, n_assets),
            elements=st.floats(-0.5, 0.5, allow_nan=False, allow_infinity=False, allow_subnormal=False),
        )
    )
)
_lam = st.floats(0.5, 0.999)


@settings(deadline=None, max_examples=50)
@given(returns=_returns, lam=_lam)
def test_ewma_covariance_is_symmetric_positive_semidefinite(returns: np.ndarray, lam: float) -> None:
    sigma = ewma_covariance(returns, lam)
    np.testing.assert_array_equal(sigma, sigma.T)
    scale = max(float(np.abs(sigma).max()), 1e-300)
    assert np.linalg.eigvalsh(sigma).min() >= -1e-12 * scale


@settings(deadline=None, max_examples=50)
@given(returns=_returns, lam=_lam)
def test_ewma_covariance_of_finite_returns_is_finite(returns: np.ndarray, lam: float) -> None:
    assert np.isfinite(ewma_covariance(returns, lam)).all()


@settings(deadline=None, max_examples=50)
@given(returns=_returns, lam=_lam)
def test_ewma_correlation_is_within_minus_one_and_one_where_defined(returns: np.ndarray, lam: float) -> None:
    corr = ewma_correlation(returns, lam)
    defined = corr[~np.isnan(corr)]
    assert (np.abs(defined) <= 1.0).all()


@settings(deadline=None, max_examples=50)
@given(returns=_returns, window=st.integers(2, 20))
def test_rolling_correlation_is_symmetric_and_bounded_where_defined(returns: np.ndarray, window: int) -> None:
    if window > returns.shape[0]:
        window = max(2, returns.shape[0])
    if returns.shape[0] < 2:
        returns = np.vstack([returns, returns + 0.01])
    out = rolling_correlation(returns, window)
    np.testing.assert_array_equal(out, np.swapaxes(out, 1, 2))
    defined = out[~np.isnan(out)]
    assert (np.abs(defined) <= 1.0).all()


@settings(deadline=None, max_examples=50)
@given(returns=_returns, lam=_lam)
def test_average_pairwise_correlation_lies_in_minus_one_and_one(returns: np.ndarray, lam: float) -> None:
    if returns.shape[1] < 2:
        returns = np.hstack([returns, -returns])
    avg = average_pairwise_correlation(ewma_correlation(returns, lam))
    assert np.isnan(avg) or -1.0 <= avg <= 1.0
