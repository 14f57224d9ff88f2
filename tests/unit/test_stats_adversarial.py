"""Adversarial checks of the backtests, performance measures and evaluation statistics.

Each public function is compared with an independent reference (scipy.stats, numpy/pandas,
arch.bootstrap, or plain-Python hand computations) and pushed on inputs a trading bot produces:
zero or all breaches, one observation, flat or all-zero returns, NaN/inf, lists, int arrays,
pandas Series with an index, returns below -1 and million-point series.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from arch.bootstrap import CircularBlockBootstrap, StationaryBootstrap
from hypothesis import example, given, settings
from hypothesis import strategies as st
from scipy import stats as ss
from scipy.special import xlogy

from advanced_risk.errors import InvalidInputError
from advanced_risk.evaluation.stats import (
    BootstrapKind,
    block_bootstrap_sharpe,
    bootstrap_sharpes,
    centred_p_value,
    mean_interval,
    paired_bootstrap_sharpe,
    paired_sign_flip_test,
    percentile_interval,
    percentile_p_value,
)
from advanced_risk.measures.backtest import (
    _location_scale,
    _standard_tail,
    acerbi_szekely_z2,
    christoffersen_independence,
    conditional_coverage,
    kupiec_pof,
    z2_test,
    z2_traffic_light,
)
from advanced_risk.measures.performance import (
    annualised_return,
    calmar_ratio,
    drawdown_series,
    max_drawdown,
    sharpe_ratio,
    sortino_ratio,
)
from advanced_risk.risk.var_backtest import backtest_table, backtest_var, forecast_var, forecast_var_cvar

HITS = st.lists(st.booleans(), min_size=2, max_size=300)
RETURNS = st.lists(
    st.floats(min_value=-1.0, max_value=2.0, allow_nan=False, allow_infinity=False), min_size=2, max_size=200
)


# ---------------------------------------------------------------- references


def _kupiec_ref(t: int, x: int, alpha: float) -> tuple[float, float]:
    p = 1.0 - alpha
    lr = -2.0 * (ss.binom.logpmf(x, t, p) - ss.binom.logpmf(x, t, x / t))
    lr = max(lr, 0.0)
    return lr, float(ss.chi2.sf(lr, 1))


def _christoffersen_ref(h: list[int]) -> float:
    n = {(i, j): 0 for i in (0, 1) for j in (0, 1)}
    for a, b in itertools.pairwise(h):
        n[(a, b)] += 1
    n00, n01, n10, n11 = n[(0, 0)], n[(0, 1)], n[(1, 0)], n[(1, 1)]
    pi = (n01 + n11) / (len(h) - 1)
    pi0 = n01 / (n00 + n01) if n00 + n01 else 0.0
    pi1 = n11 / (n10 + n11) if n10 + n11 else 0.0
    null = xlogy(n00 + n10, 1 - pi) + xlogy(n01 + n11, pi)
    alt = xlogy(n00, 1 - pi0) + xlogy(n01, pi0) + xlogy(n10, 1 - pi1) + xlogy(n11, pi1)
    return max(0.0, -2.0 * (null - alt))


def _drawdown_ref(r: list[float]) -> np.ndarray:
    equity = pd.Series(np.cumprod(1.0 + np.asarray(r, dtype=float)))
    peak = equity.cummax().clip(lower=1.0)  # equity starts at 1
    return (1.0 - equity / peak).to_numpy()


# ---------------------------------------------------------------- Kupiec / Christoffersen / CC


@pytest.mark.parametrize(
    ("t", "x", "alpha"),
    [
        (250, 0, 0.99),
        (250, 250, 0.99),
        (250, 7, 0.99),
        (1043, 57, 0.95),
        (1, 0, 0.99),
        (1, 1, 0.5),
        (10, 10, 0.9),
    ],
)
def test_kupiec_matches_scipy_binomial_lr(t: int, x: int, alpha: float) -> None:
    res = kupiec_pof(alpha=alpha, n_obs=t, n_hits=x)
    lr, p = _kupiec_ref(t, x, alpha)
    assert res.statistic == pytest.approx(lr, rel=1e-10, abs=1e-12)
    assert res.p_value == pytest.approx(p, rel=1e-9, abs=1e-300)


def test_kupiec_hits_forms_agree() -> None:
    h = [0, 0, 1, 0, 0, 0, 0, 1, 1, 0]
    expected = kupiec_pof(alpha=0.9, n_obs=10, n_hits=3)
    idx = pd.date_range("2024-01-01", periods=10)
    for form in (h, np.array(h), np.array(h, dtype=bool), pd.Series(h, index=idx), pd.Series(h, dtype=bool)):
        assert kupiec_pof(form, 0.9) == expected


def test_breaches_only_at_the_end_cluster() -> None:
    h = [0] * 95 + [1] * 5
    ind = christoffersen_independence(h)
    assert ind.statistic == pytest.approx(_christoffersen_ref(h), rel=1e-12)
    assert ind.p_value < 0.01  # five breaches in a row are a cluster
    assert kupiec_pof(h, 0.95).p_value == pytest.approx(1.0)  # but the count is exactly right


@pytest.mark.parametrize("h", [[0, 0, 0, 0], [1, 1, 1, 1], [0, 1], [1, 0], [0, 0, 0, 1]])
def test_degenerate_hit_series(h: list[int]) -> None:
    ind = christoffersen_independence(h)
    assert ind.statistic == pytest.approx(_christoffersen_ref(h), abs=1e-12)
    cc = conditional_coverage(h, 0.95)
    lr = kupiec_pof(h, 0.95).statistic + ind.statistic
    assert cc.statistic == pytest.approx(lr, abs=1e-12)
    assert cc.p_value == pytest.approx(float(ss.chi2.sf(lr, 2)), rel=1e-12, abs=1e-300)


@pytest.mark.parametrize(
    ("bad", "field"),
    [([0, 1, np.nan], "hits"), ([0, np.inf], "hits"), ([0, 2], "hits"), ([0.5, 1], "hits")],
)
def test_hits_refusals_name_the_field(bad: list[float], field: str) -> None:
    for f in (kupiec_pof, christoffersen_independence, conditional_coverage):
        with pytest.raises(InvalidInputError, match=field):
            f(bad)


def test_too_short_hit_series_refused() -> None:
    with pytest.raises(InvalidInputError, match="hits"):
        kupiec_pof([])
    with pytest.raises(InvalidInputError, match="hits"):
        christoffersen_independence([1])
    with pytest.raises(InvalidInputError, match="n_hits"):
        kupiec_pof(alpha=0.99, n_obs=5, n_hits=6)


@settings(max_examples=150, deadline=None)
@given(HITS, st.sampled_from([0.9, 0.95, 0.975, 0.99, 0.999]))
def test_lr_tests_match_references(h: list[bool], alpha: float) -> None:
    hits = [int(x) for x in h]
    pof = kupiec_pof(hits, alpha)
    lr, p = _kupiec_ref(len(hits), sum(hits), alpha)
    assert pof.statistic >= 0.0
    assert 0.0 <= pof.p_value <= 1.0
    assert pof.statistic == pytest.approx(lr, rel=1e-9, abs=1e-9)
    assert pof.p_value == pytest.approx(p, rel=1e-6, abs=1e-12)
    ind = christoffersen_independence(hits)
    assert ind.statistic >= 0.0
    assert 0.0 <= ind.p_value <= 1.0
    assert ind.statistic == pytest.approx(_christoffersen_ref(hits), rel=1e-9, abs=1e-9)
    assert ind.p_value == pytest.approx(float(ss.chi2.sf(ind.statistic, 1)), rel=1e-9, abs=1e-12)
    cc = conditional_coverage(hits, alpha)
    assert 0.0 <= cc.p_value <= 1.0
    assert cc.p_value == pytest.approx(float(ss.chi2.sf(cc.statistic, 2)), rel=1e-9, abs=1e-12)


def test_lr_tests_on_a_million_hits_are_linear() -> None:
    h = np.random.default_rng(0).random(1_000_000) < 0.01
    x = int(h.sum())
    assert kupiec_pof(h, 0.99) == kupiec_pof(alpha=0.99, n_obs=1_000_000, n_hits=x)
    assert 0.0 <= christoffersen_independence(h).p_value <= 1.0
    assert 0.0 <= conditional_coverage(h, 0.99).p_value <= 1.0


# ---------------------------------------------------------------- Acerbi-Szekely Z2


def test_z2_by_hand_at_97_5() -> None:
    # 16 days, alpha 97.5 %: p = 0.025, T p = 0.4
    returns = [0.004, -0.012, 0.007, -0.031, 0.0, 0.015, -0.044, 0.002,
               -0.009, 0.011, -0.027, 0.006, 0.003, -0.05, 0.008, -0.001]  # fmt: skip
    var = [0.025] * 8 + [0.03] * 8
    es = [0.035] * 8 + [0.04] * 8
    total = 0.0
    for x, v, e in zip(returns, var, es, strict=True):
        if x < -v:
            total += x / e
    # breaches: -0.031 (es .035), -0.044 (es .035), -0.05 (es .04); -0.027 is above -0.03
    assert total == pytest.approx(-0.031 / 0.035 - 0.044 / 0.035 - 0.05 / 0.04)
    expected = total / (16 * 0.025) + 1.0
    assert acerbi_szekely_z2(returns, var, es, 0.975) == pytest.approx(expected, rel=1e-14)
    assert z2_traffic_light(expected) == "red"  # about -6.3: far too much tail loss


def test_z2_no_breach_is_one_and_input_forms() -> None:
    r = pd.Series([0.01, -0.005, 0.002], index=pd.date_range("2024-01-01", periods=3))
    assert acerbi_szekely_z2(r, [0.02] * 3, np.array([3, 3, 3]) / 100) == 1.0
    assert acerbi_szekely_z2([0.0], [0.0], [0.01]) == 1.0  # one observation, no breach (strict <)
    res = z2_test([0.0], [0.0], [0.01], n_sims=50)
    assert res.statistic == 1.0
    assert 0.0 < res.p_value <= 1.0


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (([0.01, np.nan], [0.02, 0.02], [0.03, 0.03]), "returns"),
        (([0.01, 0.0], [0.02, np.inf], [0.03, 0.03]), "var"),
        (([0.01, 0.0], [0.02, 0.02], [0.03, np.nan]), "es"),
        (([0.01, 0.0], [0.02, 0.02], [0.03, 0.0]), "es"),
        (([0.01, 0.0], [0.02], [0.03, 0.03]), "var"),
    ],
)
def test_z2_refusals_name_the_field(args: tuple[list[float], ...], field: str) -> None:
    with pytest.raises(InvalidInputError, match=field):
        acerbi_szekely_z2(*args)
    with pytest.raises(InvalidInputError, match=field):
        z2_test(*args, n_sims=10)


@pytest.mark.parametrize("p", [0.025, 0.01, 0.05, 1e-4])
@pytest.mark.parametrize("df", [2.5, 3.0, 5.0, 30.0])
def test_student_t_tail_matches_scipy(p: float, df: float) -> None:
    q, m = _standard_tail(p, "student_t", df)
    assert q == pytest.approx(float(ss.t.ppf(p, df)), rel=1e-9)
    tail_mean = float(ss.t.expect(lambda x: x, args=(df,), ub=ss.t.ppf(p, df))) / p
    assert m == pytest.approx(tail_mean, rel=1e-6)


def test_location_scale_reproduces_the_forecasts() -> None:
    v, e = np.array([0.02, 0.05]), np.array([0.03, 0.09])
    for null, dist in (("normal", ss.norm()), ("student_t", ss.t(4.0))):
        q, m = _standard_tail(0.025, null, 4.0)
        mu, sigma = _location_scale(v, e, q, m)
        for i in range(2):
            x = ss.t(4.0, loc=mu[i], scale=sigma[i]) if null == "student_t" else ss.norm(mu[i], sigma[i])
            assert -x.ppf(0.025) == pytest.approx(v[i], rel=1e-8)
            es = -x.expect(lambda y: y, ub=x.ppf(0.025)) / 0.025
            assert es == pytest.approx(e[i], rel=1e-6)
        assert dist is not None


def test_z2_null_is_centred_and_p_value_counts() -> None:
    rng = np.random.default_rng(3)
    t = 250
    v, e = np.full(t, 1.959964), np.full(t, 2.337803)  # standard normal at 97.5 %
    paths = rng.standard_normal((4000, t))
    sims = np.array([acerbi_szekely_z2(row, v, e) for row in paths[:400]])
    assert abs(sims.mean()) < 0.1  # E[Z2] = 0 under a correct forecast
    x = rng.standard_normal(t)
    res = z2_test(x, v, e, null_returns=paths)
    z = acerbi_szekely_z2(x, v, e)
    all_sims = np.array([acerbi_szekely_z2(row, v, e) for row in paths])
    assert res.p_value == pytest.approx((1 + np.sum(all_sims <= z)) / (len(all_sims) + 1))
    # the published 5 % critical value -0.70 at T = 250 (normal null)
    assert np.quantile(all_sims, 0.05) == pytest.approx(-0.70, abs=0.12)


def test_z2_on_a_million_points() -> None:
    r = np.random.default_rng(0).standard_normal(1_000_000)
    res = z2_test(r, np.full(r.size, 1.959964), np.full(r.size, 2.337803), n_sims=5)
    assert abs(res.statistic) < 0.05
    assert 0.0 < res.p_value <= 1.0


# ---------------------------------------------------------------- performance


@settings(max_examples=200, deadline=None)
@given(RETURNS)
def test_drawdown_matches_pandas_and_is_a_fraction(r: list[float]) -> None:
    dd = drawdown_series(r)
    assert ((dd >= 0.0) & (dd <= 1.0)).all()
    mdd = max_drawdown(r)
    assert 0.0 <= mdd <= 1.0
    ref = _drawdown_ref(r)
    if np.isfinite(ref).all() and np.prod(1.0 + np.abs(r)) < 1e100:
        np.testing.assert_allclose(dd, ref, rtol=1e-9, atol=1e-9)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(min_value=-0.5, max_value=0.5, allow_nan=False), min_size=2, max_size=100),
    st.floats(min_value=1e-6, max_value=1e6),
)
@example([0.0, 8.678177397013299e-159], 1.0)  # a reference computed on x itself underflowed here
def test_sharpe_matches_numpy_and_is_scale_invariant(r: list[float], c: float) -> None:
    x = np.asarray(r)
    s = sharpe_ratio(x)
    sd = x.std(ddof=1)
    if sd > 1e-9 * max(np.abs(x).max(), 1e-300):
        # the reference on x / max|x| (the ratio is scale-free): squares of values near 1e-159
        # underflow to subnormals in NumPy's std and would make the reference, not the code, wrong
        y = x / np.abs(x).max()
        assert s == pytest.approx(math.sqrt(252) * y.mean() / y.std(ddof=1), rel=1e-9, abs=1e-9)
        assert sharpe_ratio(x * c) == pytest.approx(s, rel=1e-8, abs=1e-9)
        assert np.sign(sortino_ratio(x)) == np.sign(x.mean()) or abs(x.mean()) < 1e-12 * np.abs(x).max()


@pytest.mark.parametrize("r", [[0.01] * 10, [0.0] * 10, [-0.003] * 500, [1e-200] * 5])
def test_flat_returns(r: list[float]) -> None:
    assert sharpe_ratio(r) == 0.0
    mean = r[0]
    assert sortino_ratio(r) == (math.inf if mean > 0 else 0.0 if mean == 0 else -math.sqrt(252))


def test_cagr_and_calmar_against_numpy() -> None:
    r = np.random.default_rng(5).normal(0.0004, 0.01, 756)
    growth = np.prod(1.0 + r)
    cagr = growth ** (252 / r.size) - 1.0
    assert annualised_return(r) == pytest.approx(cagr, rel=1e-10)
    mdd = float(np.max(_drawdown_ref(list(r))))
    assert max_drawdown(r) == pytest.approx(mdd, rel=1e-10)
    assert calmar_ratio(r) == pytest.approx(cagr / mdd, rel=1e-9)


def test_performance_input_forms_and_refusals() -> None:
    idx = pd.date_range("2024-01-01", periods=5)
    s = pd.Series([0.01, -0.02, 0.03, -0.5, 0.1], index=idx)
    assert sharpe_ratio(s) == sharpe_ratio(s.to_list()) == sharpe_ratio(s.to_numpy())
    assert max_drawdown(s) == pytest.approx(0.5)
    assert sharpe_ratio(np.array([1, 2, 3])) == sharpe_ratio([1.0, 2.0, 3.0])  # ints are returns too
    assert max_drawdown([0.1, -1.0, 0.5]) == 1.0  # ruin stays ruin
    assert annualised_return([0.1, -1.0, 0.5]) == -1.0
    for f in (max_drawdown, annualised_return, calmar_ratio, drawdown_series):
        with pytest.raises(InvalidInputError, match="index 1"):
            f([0.01, -1.5])
    for f in (sharpe_ratio, sortino_ratio, max_drawdown, annualised_return):
        with pytest.raises(InvalidInputError, match="returns"):
            f([0.01, np.nan, 0.02])
        with pytest.raises(InvalidInputError, match="returns"):
            f(pd.Series([0.01, None, 0.02]))
    with pytest.raises(InvalidInputError, match="returns"):
        sharpe_ratio([0.01])  # one observation has no standard deviation


def test_performance_on_a_million_points() -> None:
    r = np.random.default_rng(0).normal(0.0002, 0.01, 1_000_000)
    assert 0.0 <= max_drawdown(r) <= 1.0
    assert sharpe_ratio(r) == pytest.approx(math.sqrt(252) * r.mean() / r.std(ddof=1), rel=1e-9)
    assert math.isfinite(calmar_ratio(r))


# ---------------------------------------------------------------- evaluation statistics


def test_mean_interval_matches_scipy() -> None:
    x = np.array([0.3, -0.1, 0.25, 0.4, 0.05, np.inf, np.nan])
    finite = x[np.isfinite(x)]
    lo, hi = ss.t.interval(0.9, finite.size - 1, loc=finite.mean(), scale=ss.sem(finite))
    mean, low, high = mean_interval(x, 0.9)
    assert (mean, low, high) == pytest.approx((finite.mean(), lo, hi), rel=1e-12)


@pytest.mark.parametrize(
    "d", [[0.1, -0.2, 0.3, 0.4], [1.0, 1.0, 1.0], [0.5, -0.5], [2.0, -1.0, 0.1, 0.0, 3.0]]
)
def test_sign_flip_exact_enumeration(d: list[float]) -> None:
    arr = np.asarray(d)
    obs = abs(arr.mean())
    signs = itertools.product([-1.0, 1.0], repeat=arr.size)
    count = sum(abs((np.array(s) * arr).mean()) >= obs * (1 - 1e-12) for s in signs)
    assert paired_sign_flip_test(d) == pytest.approx(count / 2**arr.size)


def test_sign_flip_batch_is_bounded_for_long_series(monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression: the batch was 2048 sign vectors whatever n, ~16 GB per array at n = 1e6."""
    import scipy.stats

    seen: dict[str, int] = {}

    class _Result:
        pvalue = 0.5

    def fake(data: tuple[np.ndarray, ...], *args: object, batch: int, **kwargs: object) -> _Result:
        seen["batch"], seen["n"] = batch, data[0].size
        return _Result()

    monkeypatch.setattr(scipy.stats, "permutation_test", fake)
    paired_sign_flip_test(np.full(1_000_000, 0.01))
    assert seen["batch"] * seen["n"] <= 1 << 21
    paired_sign_flip_test(np.full(10, 0.01))
    assert seen["batch"] == 2048  # short series keep the full batch (same results as before)
    paired_sign_flip_test(np.full(5_000_000, 0.01))
    assert seen["batch"] == 1


def test_sign_flip_long_series_real_run() -> None:
    d = np.random.default_rng(1).normal(0.01, 1.0, 50_000)
    p = paired_sign_flip_test(d, n_permutations=199)
    assert 0.0 < p <= 1.0


@pytest.mark.parametrize("kind", [BootstrapKind.CIRCULAR, BootstrapKind.STATIONARY])
def test_bootstrap_sharpes_match_arch(kind: BootstrapKind) -> None:
    rng = np.random.default_rng(2)
    x, y = rng.normal(0.0005, 0.01, 300), rng.normal(0.0, 0.01, 300)
    got = bootstrap_sharpes([x, y], reps=40, block=10, seed=11, kind=kind)
    make = CircularBlockBootstrap if kind is BootstrapKind.CIRCULAR else StationaryBootstrap
    bs = make(10, x, y, seed=np.random.default_rng(11))
    ref = np.array([[sharpe_ratio(a), sharpe_ratio(b)] for (a, b), _ in bs.bootstrap(40)])
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)


def test_block_bootstrap_sharpe_is_consistent() -> None:
    rng = np.random.default_rng(4)
    x, y = rng.normal(0.001, 0.01, 500), rng.normal(0.0, 0.01, 500)
    est, low, high, p = block_bootstrap_sharpe(x, y, n_boot=300, seed=1)
    assert est == pytest.approx(sharpe_ratio(x) - sharpe_ratio(y))
    boot = bootstrap_sharpes([x, y], reps=300, block=20, seed=1, kind="circular")
    diff = boot[:, 0] - boot[:, 1]
    assert (low, high) == percentile_interval(diff)
    assert p == percentile_p_value(diff)
    assert 0.0 < p <= 1.0
    pd_ = paired_bootstrap_sharpe(x, y[:400], n_boot=100)
    assert pd_.estimate == pytest.approx(sharpe_ratio(x[:400]) - sharpe_ratio(y[:400]))
    assert pd_.win_rate == pytest.approx(float(np.mean(x[:400] > y[:400])))


def test_bootstrap_refusals_name_the_series() -> None:
    with pytest.raises(InvalidInputError, match=r"series\[1\]"):
        bootstrap_sharpes([[0.01, 0.02, 0.0], [0.01, np.nan, 0.0]], reps=5)
    with pytest.raises(InvalidInputError, match="reference"):
        block_bootstrap_sharpe([0.01, 0.02, 0.0], [0.01, np.inf, 0.0], n_boot=5)
    with pytest.raises(InvalidInputError, match="returns"):
        block_bootstrap_sharpe([0.01, np.nan, 0.0], n_boot=5)
    with pytest.raises(InvalidInputError, match="returns"):
        paired_bootstrap_sharpe([0.01, 0.02], [0.0, 0.0], n_boot=5)  # too short once aligned


def test_flat_bootstrap_and_p_values_nan_policy() -> None:
    assert (bootstrap_sharpes([[0.01, 0.01, 0.01]], reps=5, block=1) == 0.0).all()
    assert percentile_p_value(np.zeros(9)) == 1.0
    assert math.isnan(percentile_p_value([np.nan, 1.0, 2.0]))
    assert math.isnan(percentile_p_value([]))
    assert math.isnan(centred_p_value([1.0, 2.0], math.nan))  # was 1/3: "significant"
    assert math.isnan(centred_p_value([np.nan, 1.0], 1.0))
    assert math.isnan(centred_p_value([], 1.0))
    assert centred_p_value([0.9, 1.1], 0.0) == 1.0


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.floats(min_value=-10, max_value=10, allow_nan=False), min_size=1, max_size=200),
    st.floats(-5, 5),
)
def test_bootstrap_p_values_are_probabilities(x: list[float], est: float) -> None:
    assert 0.0 < percentile_p_value(x) <= 1.0
    assert 0.0 < centred_p_value(x, est) <= 1.0


# ---------------------------------------------------------------- walk-forward VaR backtest


@pytest.mark.parametrize("n", [100, 250, 251])
def test_backtest_too_short_is_an_input_error(n: int) -> None:
    """Regression: fewer returns than the window gave numpy's ValueError (negative dimensions)."""
    r = np.random.default_rng(0).normal(0.0, 0.01, n)
    with pytest.raises(InvalidInputError, match="window"):
        backtest_var(r, "historical", 0.95, window=250)
    with pytest.raises(InvalidInputError, match="window"):
        backtest_table(r, ["historical"], window=250)
    if n <= 250:
        with pytest.raises(InvalidInputError, match="window"):
            forecast_var(r, "gaussian", [0.95], window=250)
    else:
        assert forecast_var(r, "gaussian", [0.95], window=250).shape == (1, 1)


def test_historical_forecasts_and_hits_against_numpy() -> None:
    rng = np.random.default_rng(9)
    r = rng.standard_t(4, 400) * 0.01
    w, a = 100, 0.95
    var, cvar = forecast_var_cvar(pd.Series(r, index=pd.RangeIndex(400)), "historical", [a], window=w)
    for t in range(w, 400, 37):
        hist = r[t - w : t]
        v = -np.quantile(hist, 1 - a)
        assert var[0, t - w] == pytest.approx(v, rel=1e-10)
        assert cvar[0, t - w] == pytest.approx(-hist[hist <= -v].mean(), rel=1e-10)
    assert (cvar >= var - 1e-15).all()  # CVaR is never below the VaR
    bt = backtest_var(r, "historical", a, window=w)
    hits = r[w:] < -var[0]
    assert (bt.hits == hits).all()
    assert bt.row.breaches == int(hits.sum())
    assert bt.row.kupiec_lr == pytest.approx(_kupiec_ref(300, int(hits.sum()), a)[0], rel=1e-9)
    assert bt.row.christoffersen_lr == pytest.approx(_christoffersen_ref(hits.astype(int).tolist()), abs=1e-9)


def test_backtest_refuses_nan_and_flat_returns_give_defined_rows() -> None:
    r = list(np.random.default_rng(0).normal(0.0, 0.01, 130))
    r[120] = math.nan
    with pytest.raises(InvalidInputError, match="returns"):
        backtest_var(r, "historical", 0.95, window=100)
    # Regression: a flat stretch (a bot out of the market) made ES = 0 and the Z2 step raised
    # "es must be > 0" out of backtest_var; Z2 is undefined there and is reported as NaN.
    for method in ("gaussian", "historical", "cornish_fisher"):
        bt = backtest_var([0.0] * 130, method, 0.95, window=100)
        assert bt.row.breaches == 0
        assert math.isnan(bt.row.z2)
        assert math.isnan(bt.row.z2_p)
    rising = list(np.linspace(0.001, 0.01, 130))  # no loss in any window: ES < 0
    rows = backtest_table(rising, ["historical", "gaussian"], alphas=(0.95,), window=100)
    assert all(math.isnan(x.z2) and math.isnan(x.z2_p) for x in rows)
    r = np.random.default_rng(1).normal(0.0, 0.01, 160)
    ok = backtest_var(r, "gaussian", 0.95, window=100)
    assert math.isfinite(ok.row.z2)
    assert 0.0 < ok.row.z2_p <= 1.0


def test_fhs_ewma_backtest_of_a_flat_start_forecasts_no_loss_then_follows_the_moves() -> None:
    # a bot out of the market for the first window: the EWMA variance starts at 0; floored as the
    # risk tracker floors it, the flat bars forecast a VaR of 0 (not 0/0) and the moves after them
    # are standardised by at least a tenth of the window's root mean square
    moves = np.random.default_rng(0).normal(0.0, 0.01, 300)
    flat = backtest_var(np.zeros(130), "fhs_ewma", 0.95, window=100)
    assert np.all(flat.var == 0.0)
    assert flat.row.breaches == 0
    mixed = backtest_var(np.r_[np.zeros(120), moves], "fhs_ewma", 0.99, window=100)
    assert np.all(np.isfinite(mixed.var))
    assert np.all(mixed.var[:20] == 0.0)
    assert np.all(mixed.var[-100:] > 0.01)  # ~2.3 sigma of 1 % moves once the window has them
    assert np.all(mixed.var < 0.1)  # not thousands of sigmas at the first small move


@pytest.mark.parametrize("values", ["abc", [[1.0, 2.0], [3.0, 4.0]], [1.0, "x"], [1 + 2j, 1.0]])
def test_mean_interval_refuses_values_that_are_not_one_row_of_numbers(values: object) -> None:
    with pytest.raises(InvalidInputError, match="values"):
        mean_interval(values)  # type: ignore[arg-type]
