"""Adversarial round 2: the RL library's training and inference entry points at their edges."""

from __future__ import annotations

import numpy as np
import pytest

from advanced_risk.config import EnvConfig, PPOConfig
from advanced_risk.errors import InvalidInputError
from advanced_risk.rl.agents.env import RiskAgentsEnv
from advanced_risk.rl.agents.mappo import MAPPOTrainer
from advanced_risk.rl.portfolio.env import TradingEnvironment, VectorTradingEnv
from advanced_risk.rl.ppo.agent import PPOAgent

TINY = PPOConfig(num_steps=8, num_envs=2, update_epochs=1, num_minibatches=1, hidden_sizes=(8, 8))


def _agent() -> tuple[PPOAgent, VectorTradingEnv, np.ndarray]:
    env = TradingEnvironment(asset_count=1, max_steps=10)
    obs, _ = env.reset(seed=0)
    agent = PPOAgent(env.observation_dim, env.action_dim, TINY)
    return agent, VectorTradingEnv(EnvConfig(asset_count=1, max_steps=10), num_envs=2, seed=0), obs


@pytest.mark.parametrize("steps", [0, -5, 2.5, True])
def test_ppo_train_refuses_a_length_that_is_not_a_positive_integer(steps: object) -> None:
    # Found: train(vec_env, 0) and train(vec_env, -5) each ran one full update silently.
    agent, vec_env, _ = _agent()
    with pytest.raises(InvalidInputError, match="total_timesteps"):
        agent.train(vec_env, steps)  # type: ignore[arg-type]
    assert agent.num_updates == 0


def test_ppo_train_still_rounds_a_short_positive_length_up_to_one_rollout() -> None:
    agent, vec_env, _ = _agent()
    assert len(agent.train(vec_env, 1)) == 1


@pytest.mark.parametrize("steps", [0, -1])
def test_mappo_train_refuses_a_length_below_one(steps: int) -> None:
    trainer = MAPPOTrainer(lambda: RiskAgentsEnv(EnvConfig(asset_count=1, max_steps=10)), TINY)
    with pytest.raises(InvalidInputError, match="total_timesteps"):
        trainer.train(steps)
    assert trainer.num_updates == 0


@pytest.mark.parametrize(
    "bad",
    [
        lambda obs: obs.astype(np.complex128),  # was cast with a ComplexWarning, imaginary part dropped
        lambda obs: ["x"] * obs.shape[0],  # was a bare ValueError from NumPy
        lambda obs: [obs.tolist(), obs.tolist()[:-1]],  # ragged batch
    ],
)
def test_select_action_refuses_observations_that_are_not_real_numbers(bad) -> None:  # type: ignore[no-untyped-def]
    agent, _, obs = _agent()
    with pytest.raises(InvalidInputError, match="obs must be real numbers"):
        agent.select_action(bad(obs))


def test_select_action_still_takes_lists_and_integer_arrays() -> None:
    agent, _, obs = _agent()
    assert np.array_equal(agent.select_action(obs.tolist()), agent.select_action(obs))
    assert agent.select_action(np.zeros(obs.shape, dtype=np.int64)).shape == (2,)


def test_a_bar_that_triples_has_a_positive_synthetic_low_in_the_env_and_the_advisor() -> None:
    # Found: a +250 % day (|r| >= 1 / wick) gave low = min(C_prev, C) * (1 - 0.5 * 2.5) < 0, and
    # --agents risk on such a CSV stopped with "error: low must be > 0, got ... at index 150".
    from advanced_risk.rl.agents.advisor import _synthetic_bar
    from advanced_risk.rl.agents.interface import LOW_FLOOR, synthetic_bars
    from advanced_risk.training.data import ReturnsReplay

    close = np.array([[10.0, 10.0], [35.0, 10.5], [36.0, np.nan]])
    high, low = synthetic_bars(close, 0.5)
    assert low[1, 0] == 10.0 * LOW_FLOOR
    assert low[1, 1] == 10.0 * (1.0 - 0.5 * abs(10.5 / 10.0 - 1.0))  # ordinary bars: unchanged
    assert np.isnan(low[2, 1])
    one_high, one_low = _synthetic_bar(close[0], close[1])
    assert np.array_equal(one_low, low[1])
    assert np.array_equal(one_high, high[1])

    returns = np.random.default_rng(0).normal(0.0, 0.01, (120, 2))
    returns[60, 0] = 2.5
    env = RiskAgentsEnv(EnvConfig(asset_count=2, max_steps=60), market=ReturnsReplay(returns))
    for seed in range(5):
        obs, _ = env.reset(seed=seed)
        assert all(np.isfinite(o).all() for o in obs.values())
