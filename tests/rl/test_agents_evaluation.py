"""The rule-based risk components and the agents-vs-rules evaluation (common random numbers)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from advanced_risk.config import EnvConfig, HedgeConfig, RiskConfig
from advanced_risk.errors import InvalidInputError
from advanced_risk.evaluation.agents import (
    AgentsMetric,
    FixedPath,
    NamedPolicy,
    calibrate_threshold,
    default_policies,
    evaluate_on_path,
    evaluate_on_paths,
    format_path,
    format_paths,
    monitor_rule,
    no_risk_actions,
    rule_actions,
    rules_policy,
    run_episode,
    sizer_rule,
)
from advanced_risk.rl.agents.env import MonitorAction, RiskAgentsEnv
from advanced_risk.rl.agents.policy import RiskAgents
from advanced_risk.rl.portfolio.accounting import history_length

CFG = EnvConfig(asset_count=3, market="regime", max_steps=30)


@pytest.mark.parametrize(
    ("drawdown", "expected"),
    [
        (0.0, MonitorAction.NONE),
        (0.0499, MonitorAction.NONE),
        (0.05, MonitorAction.REDUCE),
        (0.0799, MonitorAction.REDUCE),
        (0.08, MonitorAction.HEDGE),
        (0.1499, MonitorAction.HEDGE),
        (0.15, MonitorAction.HALT),
        (0.6, MonitorAction.HALT),
    ],
)
def test_monitor_rule_maps_drawdown_thresholds_to_actions(drawdown: float, expected: MonitorAction) -> None:
    assert monitor_rule(drawdown) is expected


def test_monitor_rule_follows_the_config_and_rejects_bad_drawdowns() -> None:
    cfg = RiskConfig(reduce_drawdown=0.2, halt_drawdown=0.3, hedge=HedgeConfig(max_drawdown_threshold=0.05))
    assert monitor_rule(0.15, cfg) is MonitorAction.REDUCE
    assert monitor_rule(0.25, cfg) is MonitorAction.HEDGE
    with pytest.raises(InvalidInputError, match="drawdown"):
        monitor_rule(-0.1)
    with pytest.raises(InvalidInputError, match="drawdown"):
        monitor_rule(math.nan)


def test_sizer_rule_is_half_kelly_of_a_known_series() -> None:
    mu, sigma = 0.001, 0.05  # Kelly mu / sigma^2 = 0.4, half-Kelly 0.2
    s = sigma / math.sqrt(2.0)  # two returns mu +- s have sample std sigma
    assert sizer_rule(np.array([mu + s, mu - s])) == pytest.approx(0.2)
    assert sizer_rule(np.array([mu + s, mu - s]), fraction=1.0) == pytest.approx(0.4)
    assert sizer_rule(np.array([-mu + s, -mu - s])) == 0.0  # negative edge: no position
    assert sizer_rule(np.array([0.02, 0.01, 0.015])) == 1.0  # capped at the full budget
    assert sizer_rule(np.array([0.01])) == 0.5  # no estimate: the Kelly fraction


def _crash_path(rows: int, day: int, drop: float) -> np.ndarray:
    path = np.where(np.arange(rows)[:, None] % 2 == 0, 0.03, -0.028) * np.ones((1, 3))  # ATR ~ 4 %
    path[day : day + 3] = drop
    return path


def test_rule_actions_use_only_the_past_and_fixed_two_atr_stops() -> None:
    h = history_length(CFG)
    path = np.random.default_rng(0).normal(0.0, 0.01, (h + CFG.max_steps, 3))
    env = RiskAgentsEnv(CFG, market=FixedPath(path))
    env.reset(seed=0)
    actions = rule_actions(env)
    np.testing.assert_allclose(actions["stop"], [2.0, 0.0])
    assert actions["monitor"] == MonitorAction.NONE
    expected = sizer_rule(path[:h] @ np.full(3, 1 / 3), 0.5)
    assert float(actions["sizer"][0]) == pytest.approx(expected, rel=1e-6)
    env.step(no_risk_actions())
    np.testing.assert_allclose(env.past_base_returns(1000), path[: h + 1] @ np.full(3, 1 / 3))
    np.testing.assert_allclose(env.past_base_returns(5), path[h - 4 : h + 1] @ np.full(3, 1 / 3))


def test_rule_actions_halt_after_a_crash() -> None:
    h = history_length(CFG)
    env = RiskAgentsEnv(CFG, market=FixedPath(_crash_path(h + CFG.max_steps, h + 2, -0.07)))
    env.reset(seed=0)
    for _ in range(6):
        env.step(no_risk_actions())
    assert env.drawdown >= 0.15
    assert rule_actions(env)["monitor"] == MonitorAction.HALT


def test_same_seeds_give_the_same_paths_for_every_policy() -> None:
    agents = RiskAgents.untrained(CFG)
    seen: dict[str, list[np.ndarray]] = {}
    for policy in default_policies(agents):
        env = RiskAgentsEnv(CFG)
        seen[policy.name] = []
        for k, seed in enumerate((11, 12)):
            episode = run_episode(policy, env, seed, k)
            assert episode.returns.size == CFG.max_steps
            seen[policy.name].append(env.past_base_returns(10_000))
    reference = seen["rules"]
    for paths in seen.values():
        for a, b in zip(paths, reference, strict=True):
            np.testing.assert_array_equal(a, b)
    assert not np.array_equal(reference[0], reference[1])


def test_evaluate_on_paths_compares_every_policy_with_the_rules() -> None:
    agents = RiskAgents.untrained(CFG)
    ev = evaluate_on_paths(default_policies(agents), CFG, [5, 6, 7], n_permutations=200)
    assert list(ev.summaries) == ["agents_gated", "agents", "rules", "no_risk"]
    assert set(ev.differences) == {"agents_gated", "agents", "no_risk"}
    assert ev.metrics["no_risk"][AgentsMetric.EXPOSURE].min() > 0.9
    for name in ev.summaries:
        assert ev.metrics[name][AgentsMetric.MAX_DRAWDOWN].shape == (3,)
    again = evaluate_on_paths(default_policies(agents), CFG, [5, 6, 7], n_permutations=200)
    np.testing.assert_array_equal(
        ev.metrics["agents_gated"][AgentsMetric.SHARPE], again.metrics["agents_gated"][AgentsMetric.SHARPE]
    )
    text = format_paths(ev)
    assert "| rules |" in text
    assert "Paired differences" in text
    assert ev.to_dict()["differences_vs_rules"]["no_risk"]["sharpe"][0] == pytest.approx(
        float(np.mean(ev.metrics["no_risk"][AgentsMetric.SHARPE] - ev.metrics["rules"][AgentsMetric.SHARPE]))
    )


def test_evaluate_on_path_walks_one_fixed_path() -> None:
    h = history_length(CFG)
    path = np.random.default_rng(1).normal(0.0003, 0.01, (h + 80, 3))
    ev = evaluate_on_path(
        [rules_policy(), NamedPolicy("none", lambda e, o: (no_risk_actions(), {}))], CFG, path, n_boot=100
    )
    assert ev.days == 80
    assert ev.daily_returns["rules"].size == 80
    assert set(ev.sharpe_vs_rules) == {"none"}
    assert "One walk over 80 days" in format_path(ev)
    with pytest.raises(InvalidInputError, match="path"):
        evaluate_on_path([rules_policy()], CFG, path[:, :2])


def test_calibrated_thresholds_are_quantiles_of_each_agents_own_uncertainty() -> None:
    agents = RiskAgents.untrained(CFG)
    low = calibrate_threshold(agents, CFG, [3, 4], quantile=0.5)
    high = calibrate_threshold(agents, CFG, [3, 4], quantile=0.99)
    assert set(high) == {"sizer", "stop", "monitor"}
    for agent in high:
        assert 0.0 < low[agent] <= high[agent]
    assert calibrate_threshold(agents, CFG, [3, 4], quantile=0.99) == high  # reseeded: reproducible
    with pytest.raises(InvalidInputError, match="quantile"):
        calibrate_threshold(agents, CFG, [3], quantile=1.0)
