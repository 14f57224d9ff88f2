"""Unit tests of the expected-shortfall backtest (Acerbi-Szekely Z2, measures/backtest.py).

References: a hand-computed case; scipy's Student-t quantiles and tail means; the critical value
published by Acerbi & Szekely (2014) (Z2 = -0.70 at 5 % for T = 250, alpha 97.5 %); E[Z2] = 0 by
construction under a correctly specified forecast.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from advanced_risk import measures
from advanced_risk.errors import InvalidInputError
from advanced_risk.measures.backtest import (
    Z2_CRITICAL_VALUES,
    _standard_tail,
    acerbi_szekely_z2,
    z2_test,
    z2_traffic_light,
)

# standard normal at 97.5 %: VaR = -q, ES = phi(q) / 0.025 (scipy: norm.ppf, norm.pdf)
Q975 = float(-stats.norm.ppf(0.025))
ES975 = float(stats.norm.pdf(stats.norm.ppf(0.025)) / 0.025)


def test_z2_hand_computed_eight_days_at_97_5() -> None:
    returns = [0.004, -0.021, 0.010, -0.020, -0.035, 0.002, -0.008, 0.015]
    var = [0.02] * 8
    es = [0.025, 0.028, 0.025, 0.030, 0.025, 0.025, 0.025, 0.025]
    # breaches (r < -VaR, strict): day 1 (-0.021) and day 4 (-0.035); day 3 (-0.020 = -VaR) is not.
    # sum X I / ES = -0.021 / 0.028 - 0.035 / 0.025 = -0.75 - 1.40 = -2.15; T p = 8 * 0.025 = 0.2
    # Z2 = -2.15 / 0.2 + 1 = -9.75
    assert acerbi_szekely_z2(returns, var, es, alpha=0.975) == pytest.approx(-9.75, rel=1e-12)


def test_z2_is_one_without_a_breach() -> None:
    assert acerbi_szekely_z2([0.01, -0.01, 0.0], [0.02] * 3, [0.03] * 3) == 1.0


def test_z2_is_zero_when_each_tail_loss_equals_its_es_at_the_expected_rate() -> None:
    # T p = 40 * 0.025 = 1 breach expected; one breach of exactly ES: Z2 = -1 / 1 + 1 = 0
    returns = np.zeros(40)
    returns[17] = -0.05
    assert acerbi_szekely_z2(returns, np.full(40, 0.03), np.full(40, 0.05)) == pytest.approx(0.0, abs=1e-15)


def test_z2_is_near_zero_for_correct_normal_es_and_negative_when_es_is_halved() -> None:
    rng = np.random.default_rng(11)
    sigma = 0.01 * np.exp(0.5 * np.sin(np.arange(200_000) / 500.0))  # time-varying scale, known
    x = sigma * rng.standard_normal(sigma.shape[0])
    var, es = Q975 * sigma, ES975 * sigma
    correct = acerbi_szekely_z2(x, var, es)
    assert abs(correct) < 0.05  # sd of Z2 at T = 200,000 is about 0.015
    # ES halved (VaR kept): each breach counts twice, E[Z2] = -2 + 1 = -1
    assert acerbi_szekely_z2(x, var, es / 2) == pytest.approx(-1.0, abs=0.1)
    # VaR and ES both halved: more breaches as well
    assert acerbi_szekely_z2(x, var / 2, es / 2) < -3.0


def test_z2_p_value_at_the_published_5_percent_critical_value_is_5_percent() -> None:
    # T = 250 at 97.5 %: build a series whose Z2 is exactly -0.70 (8 equal breaches)
    t, p = 250, 0.025
    total = (Z2_CRITICAL_VALUES[0.05] - 1.0) * t * p * ES975  # sum of the breach returns
    x = np.zeros(t)
    x[np.arange(8) * 31] = total / 8
    var, es = np.full(t, Q975), np.full(t, ES975)
    res = z2_test(x, var, es, n_sims=40_000, seed=3)
    assert res.statistic == pytest.approx(-0.70, abs=1e-12)
    assert res.p_value == pytest.approx(0.05, abs=0.005)  # Acerbi & Szekely (2014), normal null


def test_z2_test_rejects_a_halved_forecast_and_keeps_the_correct_one() -> None:
    rng = np.random.default_rng(5)
    x = 0.01 * rng.standard_t(5, 1000)
    q = float(stats.t.ppf(0.025, 5))
    m = float(stats.t(5).expect(lambda v: v, ub=q) / 0.025)
    var, es = np.full(1000, -0.01 * q), np.full(1000, -0.01 * m)
    for null in ("normal", "student_t"):
        assert z2_test(x, var, es, null=null, n_sims=2000).p_value > 0.05
        # the forecast distribution scaled by 1/2: VaR and ES halved (a parametric null needs ES > VaR)
        assert z2_test(x, var / 2, es / 2, null=null, n_sims=2000).p_value < 0.001


def test_student_t_null_tail_matches_scipy() -> None:
    for df in (3.0, 5.0, 12.5):
        q, m = _standard_tail(0.025, "student_t", df)
        ref_q = stats.t.ppf(0.025, df)
        assert q == pytest.approx(ref_q, rel=1e-10)
        assert m == pytest.approx(stats.t(df).expect(lambda v: v, ub=ref_q) / 0.025, rel=1e-8)


def test_z2_test_location_scale_null_reproduces_the_forecast_var_and_es() -> None:
    # a forecast with ES/VaR far from the normal ratio: the null shifts and scales Z to match it
    var, es = np.full(1, 0.02), np.full(1, 0.03)
    q, m = _standard_tail(0.025, "student_t", 4.0)
    sigma = (es - var) / (q - m)
    mu = -var - sigma * q
    draws = mu + sigma * np.random.default_rng(0).standard_t(4.0, 2_000_000)
    cut = np.quantile(draws, 0.025)
    assert -cut == pytest.approx(0.02, rel=0.01)
    assert -draws[draws <= cut].mean() == pytest.approx(0.03, rel=0.01)


def test_z2_test_with_user_supplied_null_paths() -> None:
    x = np.array([0.0, -0.05, 0.01, 0.0])
    var, es = np.full(4, 0.02), np.full(4, 0.04)
    # Z2 = (-0.05 / 0.04) / (4 * 0.5) + 1 = 0.375 at alpha 0.5
    paths = np.array([[0.0, 0.0, 0.0, 0.0], [-0.1, 0.0, 0.0, 0.0], [-0.05, 0.0, -0.05, 0.0]])
    # their Z2: 1, -0.25, -0.25 -> two of three <= 0.375: p = (1 + 2) / (3 + 1)
    res = z2_test(x, var, es, alpha=0.5, null_returns=paths)
    assert res == pytest.approx((0.375, 0.75))


def test_z2_traffic_light_zones() -> None:
    assert [z2_traffic_light(z) for z in (0.3, -0.70, -1.2, -1.80, -4.0)] == [
        "green",
        "yellow",
        "yellow",
        "red",
        "red",
    ]


def test_es_backtest_is_exported_from_measures() -> None:
    assert measures.acerbi_szekely_z2 is acerbi_szekely_z2
    assert {"acerbi_szekely_z2", "z2_test", "z2_traffic_light", "Z2_CRITICAL_VALUES"} <= set(measures.__all__)


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: acerbi_szekely_z2([0.0, np.nan], [0.1, 0.1], [0.2, 0.2]), "returns"),
        (lambda: acerbi_szekely_z2([0.0, 0.0], [0.1, np.inf], [0.2, 0.2]), "var"),
        (lambda: acerbi_szekely_z2([0.0, 0.0], [0.1, 0.1], [0.2, 0.0]), "es"),
        (lambda: acerbi_szekely_z2([0.0, 0.0], [0.1, 0.1, 0.1], [0.2, 0.2]), "var"),
        (lambda: acerbi_szekely_z2([0.0, 0.0], [0.1, 0.1], [0.2]), "es"),
        (lambda: acerbi_szekely_z2([0.0], [0.1], [0.2], alpha=1.0), "alpha"),
        (lambda: z2_test([0.0, 0.0], [0.1, 0.3], [0.2, 0.2]), "es must exceed var"),
        (lambda: z2_test([0.0], [0.1], [0.2], null="laplace"), "null"),  # type: ignore[arg-type]
        (lambda: z2_test([0.0], [0.1], [0.2], null="student_t", df=2.0), "df"),
        (lambda: z2_test([0.0], [0.1], [0.2], n_sims=0), "n_sims"),
        (lambda: z2_test([0.0, 0.0], [0.1, 0.1], [0.2, 0.2], null_returns=[[0.0, 0.0, 0.0]]), "null_returns"),
        (lambda: z2_traffic_light(float("nan")), "z2"),
    ],
    ids=["nan_returns", "inf_var", "zero_es", "var_len", "es_len", "alpha", "es_le_var", "null", "df",
         "n_sims", "null_shape", "nan_z2"],
)  # fmt: skip
def test_es_backtest_rejects_bad_input_naming_the_field(call: object, field: str) -> None:
    with pytest.raises(InvalidInputError, match=field):
        call()  # type: ignore[operator]
