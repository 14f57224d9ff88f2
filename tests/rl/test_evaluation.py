"""Evaluation helpers: hand-checkable baselines, common random numbers, paired tests, intervals."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest
from scipy import stats

from advanced_risk.config import EnvConfig
from advanced_risk.evaluation.policy import (
    BuyAndHold,
    EqualWeight,
    Metric,
    MinimumVariance,
    baselines,
    evaluate,
    evaluate_path,
    format_report,
    run_strategy,
    sample_paths,
)
from advanced_risk.evaluation.stats import (
    block_bootstrap_sharpe,
    mean_interval,
    normal_quantile,
    paired_sign_flip_test,
    student_t_quantile,
)
from advanced_risk.rl.portfolio.accounting import history_length
from advanced_risk.rl.portfolio.env import TradingEnvironment
from advanced_risk.rl.portfolio.market import CorrelatedGBM

# Two assets, no costs: asset 0 alternates +10 % / -10 %, asset 1 earns +1 % every day.
TWO = EnvConfig(asset_count=2, window=2, max_steps=4, transaction_cost=0.0)
H = history_length(TWO)


def two_asset_path() -> np.ndarray:
    path = np.zeros((H + TWO.max_steps, 2))
    path[H:, 0] = [0.10, -0.10, 0.10, -0.10]
    path[H:, 1] = 0.01
    return path


class AllIn:
    """Everything in asset ``k`` (a clearly different strategy for the paired tests)."""

    def __init__(self, k: int, name: str) -> None:
        self.k, self.name = k, name

    def reset(self) -> None:
        pass

    def step(self, env: TradingEnvironment, obs: Any, info: Mapping[str, Any], past: np.ndarray) -> Any:
        w = np.zeros(env.config.asset_count + 1)
        w[self.k] = 1.0
        return env.step_weights(w)


def test_equal_weight_on_two_assets_earns_the_average_return_each_day() -> None:
    run = run_strategy(EqualWeight(), TWO, [two_asset_path()])
    expected = [0.5 * 0.10 + 0.5 * 0.01, 0.5 * -0.10 + 0.5 * 0.01] * 2
    np.testing.assert_allclose(run.daily_returns[0], expected, atol=1e-12)
    assert run.metrics[Metric.LOG_WEALTH][0] == pytest.approx(np.log(np.prod(1 + np.array(expected))))


def test_buy_and_hold_compounds_each_asset_from_an_equal_start() -> None:
    path = two_asset_path()
    run = run_strategy(BuyAndHold(), TWO, [path])
    wealth = 0.5 * np.prod(1 + path[H:, 0]) + 0.5 * np.prod(1 + path[H:, 1])
    assert np.prod(1 + run.daily_returns[0]) == pytest.approx(wealth, abs=1e-12)
    # with costs, buy-and-hold pays only for the first purchase
    costly = EnvConfig(asset_count=2, window=2, max_steps=4, transaction_cost=0.01)
    run = run_strategy(BuyAndHold(), costly, [path])
    assert np.prod(1 + run.daily_returns[0]) == pytest.approx(0.99 * wealth, abs=1e-12)
    assert run.metrics[Metric.TURNOVER][0] == pytest.approx(1.0 * 252 / 4)


def test_equal_weight_turnover_and_costs_match_the_hand_computed_rebalance() -> None:
    costly = EnvConfig(asset_count=2, window=2, max_steps=2, transaction_cost=0.01)
    path = two_asset_path()[: H + 2]
    run = run_strategy(EqualWeight(), costly, [path])
    # day 2: weights drifted to (0.55, 0.505) / 1.055; trading back to (0.5, 0.5) is a turnover of
    # |0.55 / 1.055 - 0.5| + |0.505 / 1.055 - 0.5|
    traded = abs(0.55 / 1.055 - 0.5) + abs(0.505 / 1.055 - 0.5)
    years = 2 / 252
    assert run.metrics[Metric.TURNOVER][0] == pytest.approx((1.0 + traded) / years)
    assert run.metrics[Metric.COSTS][0] == pytest.approx(0.01 * (1.0 + traded) / years)


def test_minimum_variance_holds_the_lower_variance_asset() -> None:
    cfg = EnvConfig(asset_count=2, window=2, max_steps=3, transaction_cost=0.0)
    rng = np.random.default_rng(0)
    path = np.column_stack([rng.normal(0, 0.03, 40), rng.normal(0, 0.01, 40)])[: history_length(cfg) + 3]
    run = run_strategy(MinimumVariance(lookback=60), cfg, [path])
    r = path[history_length(cfg) :]
    # w_1 = var0 / (var0 + var1) for uncorrelated assets: mostly asset 1, whose returns dominate
    assert np.corrcoef(run.daily_returns[0], r[:, 1])[0, 1] > 0.9


def test_all_strategies_see_the_same_paths_for_the_same_seeds() -> None:
    cfg = EnvConfig(asset_count=3, window=5, max_steps=20)
    paths = sample_paths(cfg, [7, 8])
    env = TradingEnvironment(cfg)
    env.reset(seed=7)
    np.testing.assert_array_equal(env._book.paths[0], paths[0])
    report = evaluate([EqualWeight(), BuyAndHold()], cfg, [7, 8], n_permutations=100)
    # on day 1 both hold equal weight bought from cash: identical returns on identical paths
    first = [report.runs[n].daily_returns[k][0] for n in ("equal_weight", "buy_and_hold") for k in (0, 1)]
    assert first[0] == first[2]
    assert first[1] == first[3]
    assert first[0] != first[1]


def test_identical_strategies_give_p_value_one_and_a_zero_difference() -> None:
    cfg = EnvConfig(asset_count=3, window=5, max_steps=30)
    twin = EqualWeight()
    twin.name = "equal_weight_twin"
    report = evaluate([EqualWeight(), twin], cfg, range(20), n_permutations=500)
    for c in report.comparisons:
        assert c.p_value == 1.0
        assert c.mean_difference == 0.0


def test_a_clearly_better_strategy_gets_a_small_p_value() -> None:
    cfg = EnvConfig(asset_count=2, window=5, max_steps=60, transaction_cost=0.0)
    market = CorrelatedGBM([0.0, 0.6], [0.2, 0.2], 0.9)  # same noise, much higher drift on asset 1
    report = evaluate([AllIn(1, "best"), AllIn(0, "worst")], cfg, range(30), market=market)
    log_wealth = next(c for c in report.comparisons if c.metric is Metric.LOG_WEALTH)
    assert log_wealth.mean_difference > 0
    assert log_wealth.p_value < 0.01
    assert "best - worst" in format_report(report)


def test_confidence_interval_contains_the_mean_and_matches_scipy() -> None:
    x = np.random.default_rng(1).normal(0.3, 1.0, 50)
    mean, low, high = mean_interval(x, 0.95)
    assert low < mean < high
    sp_low, sp_high = stats.t.interval(0.95, len(x) - 1, loc=x.mean(), scale=stats.sem(x))
    assert (low, high) == pytest.approx((sp_low, sp_high), abs=1e-4)


@pytest.mark.parametrize("dof", [3, 5, 10, 30, 99, 1000])
@pytest.mark.parametrize("p", [0.9, 0.95, 0.975, 0.995])
def test_t_and_normal_quantiles_match_scipy(dof: int, p: float) -> None:
    assert normal_quantile(p) == pytest.approx(stats.norm.ppf(p), abs=1e-8)
    assert student_t_quantile(p, dof) == pytest.approx(stats.t.ppf(p, dof), abs=1e-6)


def test_sign_flip_test_is_uniform_ish_under_the_null() -> None:
    rng = np.random.default_rng(3)
    p = [paired_sign_flip_test(rng.normal(0, 1, 40), 999, seed=k) for k in range(200)]
    assert 0.02 < np.mean(np.array(p) < 0.05) < 0.10


def test_block_bootstrap_sharpe_interval_covers_the_estimate_and_pairs() -> None:
    r = np.random.default_rng(4).normal(0.0005, 0.01, 1000)
    est, low, high, p = block_bootstrap_sharpe(r, n_boot=500)
    assert low < est < high
    assert 0 <= p <= 1
    assert est == pytest.approx(math.sqrt(252) * r.mean() / r.std(ddof=1))
    diff, dlow, dhigh, dp = block_bootstrap_sharpe(r, r, n_boot=200)
    assert diff == dlow == dhigh == 0.0
    assert dp == 1.0


def test_evaluate_path_reports_every_baseline_on_one_path() -> None:
    cfg = EnvConfig(asset_count=3, window=5, max_steps=10)
    path = sample_paths(EnvConfig(asset_count=3, window=5, max_steps=200), [0])[0]
    report = evaluate_path(baselines(lookback=60), cfg, path, n_boot=100)
    assert set(report.values) == {"equal_weight", "min_variance", "buy_and_hold"}
    assert len(report.runs["equal_weight"].daily_returns[0]) == path.shape[0] - history_length(cfg)
    assert "block-bootstrap" in format_report(report)


def test_buy_and_hold_converges_to_the_drifted_portfolio_under_partial_rebalancing() -> None:
    cfg = EnvConfig(asset_count=2, window=2, max_steps=60, transaction_cost=0.0, rebalance_rate=0.3)
    path = np.zeros((history_length(cfg) + 60, 2))
    path[history_length(cfg) :, 0] = 0.01
    run = run_strategy(BuyAndHold(), cfg, [path])
    # on the last day the book holds the equal-weight portfolio drifted for 59 days, (1.01^59, 1) / sum
    # (the gap closes by a factor 0.7 a day, so after 59 days it is ~1e-9)
    w0 = 1.01**59 / (1.01**59 + 1.0)
    assert run.daily_returns[0][-1] == pytest.approx(0.01 * w0, abs=1e-8)
