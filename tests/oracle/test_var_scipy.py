"""Oracle tests: VaR/CVaR and the backtests' chi-square tails against numpy and scipy."""

from __future__ import annotations

from importlib.resources import as_file, files

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats

from advanced_risk.measures import (
    christoffersen_independence,
    conditional_coverage,
    cornish_fisher_cvar,
    cornish_fisher_var,
    gaussian_cvar,
    gaussian_var,
    historical_cvar,
    historical_var,
    kupiec_pof,
)

ALPHAS = [0.9, 0.95, 0.975, 0.99, 0.999]


@pytest.fixture(scope="module")
def sp500_returns() -> np.ndarray:
    """Simple returns of the bundled S&P 500 index's Adj Close (5,030 values)."""
    path = files("advanced_risk") / "datasets" / "sp500_index_ohlcv.csv.gz"
    with as_file(path) as f:
        close = pd.read_csv(f)["Adj Close"].to_numpy()
    return close[1:] / close[:-1] - 1.0


def _samples() -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    return [
        0.01 * rng.standard_normal(250),
        0.01 * rng.standard_t(3, 1000),
        0.02 * (rng.lognormal(0.0, 0.5, 500) - 1.1),  # right skew
        -0.02 * (rng.lognormal(0.0, 0.5, 500) - 1.1),  # left skew
    ]


def _cf_quantile(z: np.ndarray | float, s: float, k: float) -> np.ndarray | float:
    return z + (z**2 - 1) * s / 6 + (z**3 - 3 * z) * k / 24 - (2 * z**3 - 5 * z) * s**2 / 36


@pytest.mark.parametrize("alpha", ALPHAS)
def test_historical_var_equals_minus_numpy_linear_quantile(alpha: float, sp500_returns: np.ndarray) -> None:
    for r in [*_samples(), sp500_returns, sp500_returns[-250:]]:
        assert historical_var(r, alpha) == pytest.approx(-np.quantile(r, 1 - alpha), abs=1e-12)
        q = np.quantile(r, 1 - alpha)
        assert historical_cvar(r, alpha) == pytest.approx(-r[r <= q].mean(), abs=1e-12)


@pytest.mark.parametrize("alpha", ALPHAS)
def test_gaussian_var_and_cvar_match_scipy_norm(alpha: float) -> None:
    for r in _samples():
        mu, sigma = r.mean(), r.std(ddof=1)
        q = stats.norm.ppf(1 - alpha)
        assert gaussian_var(r, alpha) == pytest.approx(-(mu + q * sigma), abs=1e-10)
        assert gaussian_cvar(r, alpha) == pytest.approx(
            -mu + sigma * stats.norm.pdf(q) / (1 - alpha), abs=1e-10
        )


@pytest.mark.parametrize("alpha", ALPHAS)
def test_cornish_fisher_var_matches_scipy_skew_and_kurtosis(alpha: float) -> None:
    for r in _samples():
        s, k = stats.skew(r), stats.kurtosis(r)  # population moments, excess kurtosis
        q_cf = _cf_quantile(stats.norm.ppf(1 - alpha), s, k)
        assert cornish_fisher_var(r, alpha) == pytest.approx(-(r.mean() + q_cf * r.std(ddof=1)), abs=1e-10)


@pytest.mark.parametrize("alpha", ALPHAS)
def test_cornish_fisher_cvar_is_the_tail_mean_of_the_cf_quantile_by_quadrature(alpha: float) -> None:
    for r in _samples():
        s, k = stats.skew(r), stats.kurtosis(r)
        p = 1 - alpha
        # integrate over z = Phi^-1(u): (1/p) * int_{-inf}^{q} q_cf(z) phi(z) dz
        integral, _ = integrate.quad(
            lambda z, s=s, k=k: _cf_quantile(z, s, k) * stats.norm.pdf(z),
            -np.inf,
            stats.norm.ppf(p),
            epsabs=1e-14,
            epsrel=1e-12,
        )
        ref = -(r.mean() + r.std(ddof=1) * integral / p)
        assert cornish_fisher_cvar(r, alpha) == pytest.approx(ref, abs=1e-10)


def test_kupiec_and_christoffersen_p_values_match_scipy_chi2() -> None:
    rng = np.random.default_rng(11)
    for rate in (0.005, 0.01, 0.03, 0.08):
        hits = rng.random(1500) < rate
        pof = kupiec_pof(hits, 0.99)
        ind = christoffersen_independence(hits)
        cc = conditional_coverage(hits, 0.99)
        assert pof.p_value == pytest.approx(stats.chi2.sf(pof.statistic, 1), rel=1e-12, abs=1e-300)
        assert ind.p_value == pytest.approx(stats.chi2.sf(ind.statistic, 1), rel=1e-12, abs=1e-300)
        assert cc.p_value == pytest.approx(stats.chi2.sf(cc.statistic, 2), rel=1e-12, abs=1e-300)
