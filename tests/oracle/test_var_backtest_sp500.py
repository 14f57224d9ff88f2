"""The VaR backtest and the GJR-GARCH fit on the S&P 500 index (1999-2018), against independent
computations written here.

- Historical VaR: the forecasts, breaches, Kupiec and Christoffersen statistics are recomputed in
  the test with pandas (``rolling(250).quantile(1 - alpha).shift(1)``) and scipy's chi-squared law.
- GJR-GARCH(1,1) with Student-t innovations: the test evaluates the log-likelihood by hand (the
  recursion, arch's back-cast start and ``scipy.stats.t``) at the parameters ``fit_gjr_garch``
  returns; it must equal the log-likelihood ``arch`` reports for its fit, and every small feasible
  step away from the parameters must lower it (they are a maximum).
- FHS-GARCH breach counts have no independent computation here: they are *regression values*,
  the figures this code produced when docs/var_calibration.md was written, kept to catch changes.

VaR for day t uses the 250 returns before t; a breach is ``r_t < -VaR_t``; 4,780 forecasts.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from advanced_risk.measures.var import VaRMethod
from advanced_risk.risk.garch import GarchParams, fit_gjr_garch
from advanced_risk.risk.var_backtest import backtest_table, backtest_var

WINDOW = 250
FHS_GARCH_REGRESSION_BREACHES = [(0.95, 239), (0.99, 57)]
"""Breaches of the calibrated FHS-GARCH method as this code counted them (docs/var_calibration.md);
a regression value, not an oracle."""


# -- historical VaR, recomputed with pandas ----------------------------------------------------------


def _pandas_hits(returns: np.ndarray, alpha: float) -> np.ndarray:
    """Breaches of historical VaR: the ``1 - alpha`` quantile (linear) of the 250 returns before t."""
    r = pd.Series(returns)
    threshold = r.rolling(WINDOW).quantile(1.0 - alpha).shift(1)  # bar t sees returns t-250 .. t-1
    return (r < threshold).to_numpy()[WINDOW:]


def _xlogy(x: float, y: float) -> float:
    return 0.0 if x == 0 else x * math.log(y)


def _kupiec_lr(hits: np.ndarray, alpha: float) -> float:
    t, x, p = hits.size, int(hits.sum()), 1.0 - alpha
    return -2.0 * (_xlogy(t - x, 1 - p) + _xlogy(x, p)) + 2.0 * (_xlogy(t - x, 1 - x / t) + _xlogy(x, x / t))


def _christoffersen_lr(hits: np.ndarray) -> float:
    prev, cur = hits[:-1], hits[1:]
    n00, n01 = int(np.sum(~prev & ~cur)), int(np.sum(~prev & cur))
    n10, n11 = int(np.sum(prev & ~cur)), int(np.sum(prev & cur))
    pi0, pi1, pi = n01 / (n00 + n01), n11 / (n10 + n11), (n01 + n11) / (n00 + n01 + n10 + n11)
    restricted = _xlogy(n00 + n10, 1 - pi) + _xlogy(n01 + n11, pi)
    free = _xlogy(n00, 1 - pi0) + _xlogy(n01, pi0) + _xlogy(n10, 1 - pi1) + _xlogy(n11, pi1)
    return -2.0 * (restricted - free)


@pytest.mark.parametrize("alpha", [0.95, 0.99])
def test_historical_var_breaches_and_kupiec_lr_match_a_pandas_rolling_quantile(
    sp500_index_returns: np.ndarray, alpha: float
) -> None:
    expected = _pandas_hits(sp500_index_returns, alpha)
    bt = backtest_var(sp500_index_returns, VaRMethod.HISTORICAL, alpha, window=WINDOW)
    assert bt.row.n_forecasts == expected.size == 4780
    np.testing.assert_array_equal(bt.hits, expected)
    assert bt.row.breaches == int(expected.sum())
    assert bt.row.kupiec_lr == pytest.approx(_kupiec_lr(expected, alpha), rel=1e-9)
    assert bt.row.kupiec_p == pytest.approx(stats.chi2.sf(_kupiec_lr(expected, alpha), 1), rel=1e-9)


def test_historical_var_fails_christoffersen_independence_at_both_levels_as_recomputed(
    sp500_index_returns: np.ndarray,
) -> None:
    rows = backtest_table(sp500_index_returns, [VaRMethod.HISTORICAL], (0.95, 0.99), window=WINDOW)
    for row in rows:
        lr = _christoffersen_lr(_pandas_hits(sp500_index_returns, row.alpha))
        assert row.christoffersen_lr == pytest.approx(lr, rel=1e-9)
        assert row.christoffersen_p == pytest.approx(stats.chi2.sf(lr, 1), rel=1e-9)
        assert row.christoffersen_p < 0.05
        assert not row.passed


def test_fhs_garch_keeps_its_regression_breaches_and_passes_both_tests(
    sp500_index_returns: np.ndarray,
) -> None:
    rows = backtest_table(sp500_index_returns, [VaRMethod.FHS_GARCH], (0.95, 0.99))
    assert [(x.alpha, x.breaches) for x in rows] == FHS_GARCH_REGRESSION_BREACHES
    for x in rows:  # the p-values are recomputed from the counts, so this much is not circular
        counts_only = np.arange(x.n_forecasts) < x.breaches  # Kupiec's LR depends on the counts alone
        assert x.kupiec_p == pytest.approx(stats.chi2.sf(_kupiec_lr(counts_only, x.alpha), 1), rel=1e-9)
        assert x.kupiec_p >= 0.05, x
        assert x.christoffersen_p >= 0.05, x
        assert x.passed


# -- GJR-GARCH(1,1)-t, its likelihood by hand -------------------------------------------------------


def _arch_backcast(r: np.ndarray) -> float:
    """arch's start of the variance recursion: ``sum_i w_i d_i^2`` over the first 75 deviations
    ``d = r - mean(r)``, ``w_i`` proportional to ``0.94 ** i``. arch computes it once, from the
    residuals at its starting value of mu (the sample mean), and keeps it through the fit."""
    d = r - r.mean()
    w = 0.94 ** np.arange(min(75, d.size))
    return float(np.sum(d[: w.size] ** 2 * w / w.sum()))


def _gjr_variance(
    r: np.ndarray, mu: float, omega: float, alpha: float, gamma: float, beta: float
) -> np.ndarray:
    """``s2_t = omega + (alpha + gamma 1[e_(t-1) < 0]) e_(t-1)^2 + beta s2_(t-1)``, ``e = r - mu``;
    before the sample ``e^2`` and ``s2`` are the back-cast and the asymmetric term is half of it."""
    e = r - mu
    b = _arch_backcast(r)
    s2 = np.empty(e.size)
    s2[0] = omega + (alpha + 0.5 * gamma + beta) * b
    for t in range(1, e.size):
        s2[t] = omega + (alpha + gamma * (e[t - 1] < 0.0)) * e[t - 1] ** 2 + beta * s2[t - 1]
    return s2


def _loglik(theta: np.ndarray, r: np.ndarray) -> float:
    """Log-likelihood of returns under GJR-GARCH(1,1) with standardised Student-t innovations.

    ``e_t = r_t - mu = s_t z_t`` with ``z_t sqrt(nu / (nu - 2)) ~ t(nu)``, so
    ``log f(e_t) = log t.pdf(e_t / s_t * c, nu) + log c - log s_t``, ``c = sqrt(nu / (nu - 2))``.
    """
    mu, omega, alpha, gamma, beta, nu = theta
    e = r - mu
    s2 = _gjr_variance(r, mu, omega, alpha, gamma, beta)
    c = math.sqrt(nu / (nu - 2.0))
    return float(np.sum(stats.t.logpdf(e / np.sqrt(s2) * c, nu) + math.log(c) - 0.5 * np.log(s2)))


def _theta(p: GarchParams) -> np.ndarray:
    assert p.nu is not None
    return np.array([p.mu, p.omega, p.alpha, p.gamma, p.beta, p.nu])


def _feasible(theta: np.ndarray) -> bool:
    """arch's constraints for GJR-GARCH-t: omega > 0, alpha, beta >= 0, alpha + gamma >= 0,
    alpha + gamma / 2 + beta < 1, nu > 2.05."""
    _, omega, alpha, gamma, beta, nu = theta
    return bool(omega > 0 and alpha >= 0 and beta >= 0 and alpha + gamma >= 0 and
                alpha + gamma / 2 + beta < 1 and nu > 2.05)  # fmt: skip


@pytest.fixture(scope="module")
def gjr_fit(sp500_index_returns: np.ndarray) -> tuple[np.ndarray, GarchParams]:
    r = sp500_index_returns[:2000]
    return r, fit_gjr_garch(r)


def test_the_hand_written_gjr_t_loglikelihood_at_the_fitted_parameters_is_the_one_arch_reports(
    gjr_fit: tuple[np.ndarray, GarchParams],
) -> None:
    from arch import arch_model

    r, params = gjr_fit
    res = arch_model(100.0 * r, mean="Constant", vol="GARCH", p=1, o=1, q=1, dist="t").fit(disp="off")
    # arch fits percent returns: the density of r is 100 times that of 100 r
    reported = res.loglikelihood + r.size * math.log(100.0)
    assert _loglik(_theta(params), r) == pytest.approx(reported, rel=1e-10)


def test_the_fitted_gjr_parameters_maximise_the_hand_written_loglikelihood(
    gjr_fit: tuple[np.ndarray, GarchParams],
) -> None:
    r, params = gjr_fit
    theta = _theta(params)
    best = _loglik(theta, r)
    steps = np.maximum(0.02 * np.abs(theta), [1e-5, 1e-8, 1e-3, 1e-3, 1e-3, 0.1])
    tried = 0
    for i in range(theta.size):
        for sign in (1.0, -1.0):
            moved = theta.copy()
            moved[i] += sign * steps[i]
            if not _feasible(moved):
                continue  # a parameter on its bound: only the inward step exists
            tried += 1
            assert _loglik(moved, r) < best, (i, sign, moved)
    assert tried >= 10


def test_the_gjr_variance_path_is_the_hand_written_recursion(gjr_fit: tuple[np.ndarray, GarchParams]) -> None:
    r, params = gjr_fit
    expected = _gjr_variance(r, params.mu, params.omega, params.alpha, params.gamma, params.beta)
    ours = params.variance(r, init=float(expected[0]))
    np.testing.assert_allclose(ours[:-1], expected, rtol=1e-12)
