"""Unit tests of measures/backtest.py, risk/var_backtest.py and risk/garch.py (small synthetic cases)."""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest

import advanced_risk.measures.backtest as backtest_module
from advanced_risk.errors import InvalidInputError
from advanced_risk.measures import gjr_garch_variance, historical_cvar, historical_var
from advanced_risk.measures.backtest import (
    acerbi_szekely_z2,
    christoffersen_independence,
    conditional_coverage,
    kupiec_pof,
)
from advanced_risk.measures.var import VaRMethod
from advanced_risk.risk.garch import GarchFilter, GarchParams
from advanced_risk.risk.var_backtest import BacktestSettings, backtest_table, backtest_var, format_table


def test_kupiec_lr_is_0_46147_for_57_failures_in_1043_days_at_95() -> None:
    assert kupiec_pof(alpha=0.95, n_obs=1043, n_hits=57).statistic == pytest.approx(0.46147, abs=1e-4)


def test_kupiec_from_hits_equals_kupiec_from_counts() -> None:
    hits = np.zeros(500, dtype=bool)
    hits[::37] = True
    assert kupiec_pof(hits, 0.99) == kupiec_pof(alpha=0.99, n_obs=500, n_hits=int(hits.sum()))


def test_kupiec_with_no_breach_is_minus_2_t_log_1_minus_p() -> None:
    assert kupiec_pof(alpha=0.99, n_obs=250, n_hits=0).statistic == pytest.approx(-2 * 250 * math.log(0.99))


def test_kupiec_with_only_breaches_is_minus_2_t_log_p() -> None:
    assert kupiec_pof(alpha=0.99, n_obs=250, n_hits=250).statistic == pytest.approx(-2 * 250 * math.log(0.01))


def test_kupiec_is_zero_with_p_value_one_at_exact_coverage() -> None:
    res = kupiec_pof(alpha=0.95, n_obs=1000, n_hits=50)
    assert res.statistic == pytest.approx(0.0, abs=1e-9)
    assert res.p_value == pytest.approx(1.0, abs=1e-4)


def test_christoffersen_hand_computed_transition_counts() -> None:
    hits = [0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0, 1, 1, 0]
    # transitions: n00 = 6, n01 = 2, n10 = 2, n11 = 3
    n00, n01, n10, n11 = 6, 2, 2, 3
    pi, pi0, pi1 = 5 / 13, 2 / 8, 3 / 5
    null = (n00 + n10) * math.log(1 - pi) + (n01 + n11) * math.log(pi)
    alt = n00 * math.log(1 - pi0) + n01 * math.log(pi0) + n10 * math.log(1 - pi1) + n11 * math.log(pi1)
    assert christoffersen_independence(hits).statistic == pytest.approx(-2 * (null - alt), rel=1e-12)


def test_christoffersen_without_any_breach_is_zero_with_p_value_one() -> None:
    assert christoffersen_independence(np.zeros(100)) == (0.0, 1.0)


def test_conditional_coverage_is_pof_plus_independence_with_chi2_2_tail() -> None:
    rng = np.random.default_rng(0)
    hits = rng.random(400) < 0.04
    lr = kupiec_pof(hits, 0.97).statistic + christoffersen_independence(hits).statistic
    res = conditional_coverage(hits, 0.97)
    assert res.statistic == pytest.approx(lr, rel=1e-13)
    assert res.p_value == pytest.approx(math.exp(-lr / 2), rel=1e-13)


@pytest.mark.parametrize(
    "call",
    [
        lambda: kupiec_pof([0, 2, 1], 0.99),
        lambda: kupiec_pof([0, float("nan")], 0.99),
        lambda: kupiec_pof([], 0.99),
        lambda: kupiec_pof([0, 1], 1.0),
        lambda: kupiec_pof(alpha=0.99, n_obs=10, n_hits=11),
        lambda: kupiec_pof(alpha=0.99, n_obs=10),
        lambda: kupiec_pof([0, 1], 0.99, n_obs=2, n_hits=1),
        lambda: christoffersen_independence([1]),
        lambda: conditional_coverage([[0, 1], [1, 0]], 0.99),
    ],
    ids=["non_binary", "nan", "empty", "alpha_1", "hits_gt_obs", "no_hits", "both", "one_obs", "two_d"],
)
def test_backtests_reject_bad_input(call: object) -> None:
    with pytest.raises(InvalidInputError):
        call()  # type: ignore[operator]


def test_backtest_module_docstring_examples_run() -> None:
    result = doctest.testmod(backtest_module)
    assert result.attempted > 0
    assert result.failed == 0


def test_historical_backtest_breach_is_return_below_minus_var_of_prior_window() -> None:
    r = 0.01 * np.random.default_rng(1).standard_t(4, 400)
    bt = backtest_var(r, VaRMethod.HISTORICAL, 0.95, window=100)
    ref = np.array([historical_var(r[t - 100 : t], 0.95) for t in range(100, 400)])
    np.testing.assert_array_equal(bt.var, ref)
    np.testing.assert_array_equal(bt.hits, r[100:] < -ref)
    assert bt.row.breaches == int((r[100:] < -ref).sum())
    assert bt.row.expected == pytest.approx(15.0)


def test_backtest_table_has_one_row_per_method_and_alpha_and_formats() -> None:
    r = 0.01 * np.random.default_rng(2).standard_normal(700)
    settings = BacktestSettings(fhs_window=200, refit_every=200)
    rows = backtest_table(r, alphas=(0.95, 0.99), window=250, settings=settings)
    assert [(x.method, x.alpha) for x in rows] == [(m, a) for m in VaRMethod for a in (0.95, 0.99)]
    assert all(x.n_forecasts == 450 for x in rows)
    text = format_table(rows)
    assert len(text.splitlines()) == 2 + len(rows)
    assert "fhs_garch" in text


def test_historical_es_backtest_is_z2_of_the_prior_window_var_and_cvar_at_97_5() -> None:
    r = 0.01 * np.random.default_rng(6).standard_t(4, 500)
    row = backtest_var(r, VaRMethod.HISTORICAL, 0.99, window=200).row
    var = np.array([historical_var(r[t - 200 : t], 0.975) for t in range(200, 500)])
    es = np.array([historical_cvar(r[t - 200 : t], 0.975) for t in range(200, 500)])
    assert row.es_alpha == 0.975
    assert row.z2 == pytest.approx(acerbi_szekely_z2(r[200:], var, es, 0.975), rel=1e-12)
    assert 0.0 < row.z2_p <= 1.0


def test_backtest_table_shares_one_z2_per_method_and_prints_it_once() -> None:
    r = 0.01 * np.random.default_rng(7).standard_normal(600)
    rows = backtest_table(r, methods=("gaussian", "historical"), alphas=(0.95, 0.99), window=250)
    assert rows[0].z2 == rows[1].z2 != rows[2].z2 == rows[3].z2
    lines = format_table(rows).splitlines()
    assert "Z2@97.5%" in lines[0]
    assert len(lines[2].split()) == len(lines[3].split()) + 2  # Z2 and p on a method's first row only
    off = backtest_table(r, methods=("gaussian",), settings=BacktestSettings(es_alpha=None))
    assert all(math.isnan(x.z2) for x in off)
    assert "Z2" not in format_table(off)


def test_garch_params_variance_matches_the_measures_kernel() -> None:
    p = GarchParams(mu=0.0003, omega=2e-6, alpha=0.02, gamma=0.15, beta=0.88)
    r = 0.01 * np.random.default_rng(3).standard_normal(200)
    ref = gjr_garch_variance(r, mu=p.mu, omega=p.omega, alpha=p.alpha, gamma=p.gamma, beta=p.beta, init=1e-4)
    np.testing.assert_array_equal(p.variance(r, init=1e-4), ref)
    assert p.persistence == pytest.approx(0.975)


def test_garch_filter_streams_the_recursion_between_refits() -> None:
    r = 0.01 * np.random.default_rng(4).standard_t(5, 400)
    f = GarchFilter(refit_every=1000, min_obs=300)
    out = [f.update(x) for x in r]
    assert np.isnan(out[298])
    assert f.params is not None
    p = f.params
    # after the fit at bar 300 the forecasts follow the kernel from the fitted state
    path = p.variance(r[:300])
    ref = p.variance(r[300:], init=float(path[-1]))
    np.testing.assert_allclose(out[299:], ref, rtol=1e-12)
    assert f.var(0.99, window=250) > 0
    assert f.cvar(0.99, window=250) >= f.var(0.99, window=250)


def test_garch_filter_refuses_a_forecast_before_its_first_fit() -> None:
    f = GarchFilter(min_obs=100)
    f.update(0.01)
    with pytest.raises(InvalidInputError, match="needs 100 returns"):
        f.var(0.99)


def test_garch_and_var_backtest_docstring_examples_run() -> None:
    import advanced_risk.risk.garch as garch_module
    import advanced_risk.risk.var_backtest as var_backtest_module

    for module in (garch_module, var_backtest_module):
        result = doctest.testmod(module)
        assert result.attempted > 0
        assert result.failed == 0
