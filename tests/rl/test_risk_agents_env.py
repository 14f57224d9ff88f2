"""RiskAgentsEnv: PettingZoo API, seeding, documented dims, and hand-checked accounting and reward."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from pettingzoo.test import parallel_api_test

from advanced_risk.config import EnvConfig
from advanced_risk.measures.volatility import wilder_atr
from advanced_risk.rl.agents.env import (
    AGENTS,
    ATR_PERIOD,
    MonitorAction,
    RiskAgentsEnv,
    obs_dim,
    stop_exit_return,
    synthetic_bars,
)
from advanced_risk.rl.portfolio.accounting import history_length

INITIAL = 10_000.0


class FixedPath:
    """A market that always returns the same path (for hand-checkable cases)."""

    def __init__(self, path: np.ndarray) -> None:
        self.path = np.asarray(path, dtype=np.float64)

    @property
    def n_assets(self) -> int:
        return int(self.path.shape[1])

    def sample_path(self, rng: np.random.Generator, n_steps: int) -> np.ndarray:
        assert n_steps == self.path.shape[0]
        return self.path.copy()


def fixed_env(days: list[list[float]], **config: Any) -> RiskAgentsEnv:
    """An env whose history alternates +1% / -1% days and whose episode earns ``days``."""
    cfg = EnvConfig(asset_count=len(days[0]), max_steps=len(days), **config)
    h = history_length(cfg)
    history = np.tile(0.01 * (-1.0) ** np.arange(h)[:, None], (1, cfg.asset_count))
    return RiskAgentsEnv(cfg, market=FixedPath(np.vstack([history, np.array(days)])))


def atr_fraction_at_start(env: RiskAgentsEnv, asset: int = 0) -> float:
    """Oracle: Wilder ATR(14) / close at the episode's first step, from the measures kernel."""
    h = history_length(env.config)
    path = env.market.sample_path(np.random.default_rng(), h + env.config.max_steps)[:, asset]
    close = np.concatenate([[1.0], np.cumprod(1.0 + path)])
    high, low = synthetic_bars(close, env.wick)
    return float(wilder_atr(high, low, close, ATR_PERIOD)[h] / close[h])


def joint(scale: float = 1.0, k: float = 5.0, trailing: bool = False, monitor: int = 0) -> dict[str, Any]:
    return {
        "sizer": np.array([scale], np.float32),
        "stop": np.array([k, float(trailing)], np.float32),
        "monitor": monitor,
    }


def test_env_passes_pettingzoo_parallel_api_test() -> None:
    env = RiskAgentsEnv(EnvConfig(asset_count=3, market="regime", max_steps=30))
    parallel_api_test(env, num_cycles=100)


def test_observation_and_state_dims_match_the_documented_blocks() -> None:
    n = 2
    env = RiskAgentsEnv(EnvConfig(asset_count=n, max_steps=5))
    obs, _ = env.reset(seed=1)
    expected = {"sizer": 2 * n + 3, "stop": 4 * n + 1, "monitor": 3 * n + 3}
    assert {a: o.shape[0] for a, o in obs.items()} == expected
    assert {a: obs_dim(a, n) for a in AGENTS} == expected
    assert env.state().shape == (7 * n + 5,) == env.state_space.shape
    assert all(env.observation_space(a).contains(obs[a]) for a in AGENTS)


def test_same_seed_gives_the_same_episode() -> None:
    def episode(seed: int) -> list[np.ndarray]:
        env = RiskAgentsEnv(EnvConfig(asset_count=3, market="regime", max_steps=40))
        obs, _ = env.reset(seed=seed)
        for a in AGENTS:
            env.action_space(a).seed(seed)
        trace = [env.state()]
        while env.agents:
            obs, rewards, _, _, _ = env.step({a: env.action_space(a).sample() for a in AGENTS})
            trace += [env.state(), obs["stop"], np.array([rewards["sizer"]])]
        return trace

    first, again, other = episode(7), episode(7), episode(8)
    assert all(np.array_equal(x, y) for x, y in zip(first, again, strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(first, other, strict=True))


def test_target_weights_scale_base_allocation_by_sizer_and_monitor_cut() -> None:
    env = fixed_env([[0.0, 0.0]] * 3)
    env.reset(seed=0)
    assert env.target_weights(0.8, MonitorAction.REDUCE).tolist() == pytest.approx([0.3, 0.3, 0.4])
    assert env.target_weights(0.8, MonitorAction.HEDGE).tolist() == pytest.approx([0.2, 0.2, 0.6])
    assert env.target_weights(1.0, MonitorAction.HALT).tolist() == pytest.approx([0.0, 0.0, 1.0])


def test_first_step_reward_is_return_minus_cost_penalty_on_a_hand_case() -> None:
    # all cash -> 50/50: turnover 1, cost 0.001; growth 0.5 * 1.01 + 0.5 * 0.99 = 1, no stop hit
    env = fixed_env([[0.01, -0.01], [0.0, 0.0]], transaction_cost=0.001, cost_penalty=10.0)
    env.reset(seed=0)
    _, rewards, _, _, infos = env.step(joint(scale=1.0, k=5.0))
    value = INITIAL * (1 - 0.001) * 1.0
    assert infos["sizer"]["portfolio_value"] == pytest.approx(value, rel=1e-12)
    # R = -0.001; vol of one return = 0; drawdown 0.001 < drawdown_free: reward = R - 10 * c
    assert rewards == pytest.approx(dict.fromkeys(AGENTS, -0.001 - 10.0 * 0.001), rel=1e-9)
    assert not infos["stop"]["stops_hit"].any()


def test_stop_hit_earns_the_stop_exit_return_and_goes_flat_until_reentry() -> None:
    # k = 1: the stop sits at entry * (1 - atr); a -10% day's low is far below it
    env = fixed_env([[-0.10], [0.05], [0.05], [0.05]], transaction_cost=0.0)
    env.reset(seed=0)
    atr = atr_fraction_at_start(env)
    assert 0.005 < atr < 0.05
    obs, _, _, _, infos = env.step(joint(scale=1.0, k=1.0))
    assert infos["sizer"]["stops_hit"].tolist() == [True]
    assert infos["sizer"]["portfolio_value"] == pytest.approx(INITIAL * (1 - atr), rel=1e-12)
    assert obs["sizer"][-1] == 0.0  # in_position_fraction: flat after the stop
    _, _, _, _, infos = env.step(joint(scale=1.0, k=1.0))
    assert infos["sizer"]["weights"].tolist() == [0.0, 1.0]  # sold into cash, earns nothing


def test_reentry_after_the_delay_at_that_days_close() -> None:
    env = fixed_env([[-0.10]] + [[0.0]] * 4, transaction_cost=0.0)
    env.reentry_delay = 2
    obs, _ = env.reset(seed=0)
    flags = []
    while env.agents:
        obs, *_ = env.step(joint(scale=1.0, k=1.0))
        flags.append(float(obs["sizer"][-1]))
    assert flags == [0.0, 0.0, 1.0, 1.0, 1.0]


def test_trailing_stop_follows_the_high_and_fixed_stop_does_not() -> None:
    # day 1: +10% with no exposure (the high moves to 1.1 x entry); day 2: -2% fully invested,
    # low = 0.98 * 0.99 of the previous close: below a 0.5-ATR stop under the high (ATR ~ 2-3%),
    # far above the same stop under the entry (~ 0.9 of the previous close)
    hits = {}
    for trailing in (True, False):
        env = fixed_env([[0.10], [-0.02], [0.0]])
        env.reset(seed=0)
        env.step(joint(scale=0.0, k=0.5, trailing=trailing))
        _, _, _, _, infos = env.step(joint(scale=1.0, k=0.5, trailing=trailing))
        hits[trailing] = bool(infos["sizer"]["stops_hit"][0])
    assert hits == {True: True, False: False}


def test_stop_exit_return_is_the_stop_or_the_open_when_the_stop_is_above_it() -> None:
    earned, hit = stop_exit_return(np.array([-0.05, 0.02, -0.001]), np.array([0.97, 1.01, 0.9]), 0.5)
    assert hit.tolist() == [True, True, False]
    assert earned.tolist() == pytest.approx([-0.03, 0.0, -0.001])


def test_halt_keeps_the_book_in_cash_with_zero_reward() -> None:
    env = fixed_env([[0.03, -0.04]] * 3)
    env.reset(seed=0)
    while env.agents:
        _, rewards, _, _, infos = env.step(joint(monitor=int(MonitorAction.HALT)))
        assert rewards["monitor"] == 0.0
    assert infos["monitor"]["portfolio_value"] == INITIAL


def test_step_after_the_episode_ended_raises() -> None:
    env = fixed_env([[0.0]])
    env.reset(seed=0)
    env.step(joint())
    with pytest.raises(ValueError, match="reset"):
        env.step(joint())
