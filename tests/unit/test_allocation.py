from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from advanced_risk.errors import InvalidInputError
from advanced_risk.measures import equal_weights, min_variance_weights, simple_returns
from advanced_risk.measures.allocation import _project_simplex, _project_simplex_python

from .conftest import slsqp_long_only_min_variance


def test_long_only_min_variance_matches_scipy_slsqp_on_sp500(sp500_stocks: pd.DataFrame) -> None:
    r = simple_returns(sp500_stocks.iloc[-1000:].to_numpy())
    cov = np.cov(r.T)
    ours = min_variance_weights(cov)
    ref = slsqp_long_only_min_variance(cov)
    assert ours @ cov @ ours <= ref @ cov @ ref * (1 + 1e-9)
    np.testing.assert_allclose(ours, ref, atol=1e-5)
    assert ours.min() >= 0.0
    assert ours.sum() == pytest.approx(1.0, abs=1e-12)


def test_unconstrained_min_variance_is_the_closed_form() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4, 4))
    cov = a @ a.T + np.eye(4)
    x = np.linalg.solve(cov, np.ones(4))
    np.testing.assert_allclose(min_variance_weights(cov, long_only=False), x / x.sum(), rtol=1e-12)


def test_uncorrelated_min_variance_weights_are_inverse_variance() -> None:
    var = np.array([0.04, 0.01, 0.02])
    expected = (1 / var) / (1 / var).sum()
    np.testing.assert_allclose(min_variance_weights(np.diag(var)), expected, atol=1e-10)


def test_simplex_projection_kernel_matches_python_and_lands_on_simplex() -> None:
    v = np.random.default_rng(1).normal(size=12)
    np.testing.assert_allclose(_project_simplex(v), _project_simplex_python(v), atol=1e-15)
    p = _project_simplex(v)
    assert p.min() >= 0.0
    assert p.sum() == pytest.approx(1.0, abs=1e-12)


def test_equal_weights_sum_to_one() -> None:
    assert equal_weights(7).sum() == pytest.approx(1.0, abs=1e-15)


@pytest.mark.parametrize(
    ("cov", "message"),
    [
        pytest.param(np.ones((2, 3)), "square", id="not-square"),
        pytest.param(np.array([[1.0, 0.5], [0.0, 1.0]]), "symmetric", id="asymmetric"),
        pytest.param(np.array([[1.0, 2.0], [2.0, 1.0]]), "semi-definite", id="indefinite"),
    ],
)
def test_min_variance_rejects_bad_covariance(cov: np.ndarray, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        min_variance_weights(cov)
