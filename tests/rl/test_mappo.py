"""MAPPO on the risk agents: structure, finite updates, fast learning on a rising market, and (slow)
learning on a regime market."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from advanced_risk.config import EnvConfig, PPOConfig
from advanced_risk.errors import InvalidInputError
from advanced_risk.rl.agents.env import AGENTS, RULE_ACTIONS, RiskAgentsEnv
from advanced_risk.rl.agents.mappo import MAPPOTrainer
from advanced_risk.rl.portfolio.market import CorrelatedGBM


def small_trainer(share_parameters: bool = False, seed: int = 0) -> MAPPOTrainer:
    cfg = PPOConfig(num_envs=2, num_steps=16, num_minibatches=2, update_epochs=2, device="cpu", seed=seed)
    return MAPPOTrainer(
        lambda: RiskAgentsEnv(EnvConfig(asset_count=2, market="regime", max_steps=10)),
        cfg,
        share_parameters=share_parameters,
    )


@pytest.mark.parametrize("share_parameters", [False, True], ids=["own_actors", "shared_actor"])
def test_mappo_runs_updates_with_finite_losses_and_returns(share_parameters: bool) -> None:
    trainer = small_trainer(share_parameters)
    history = trainer.train(3 * 32)
    assert len(history) == 3
    for stats in history:
        for key in ("policy_loss", "value_loss", "entropy", "approx_kl", "episode_return_mean"):
            assert np.isfinite(stats[key]), (key, stats)
    assert all(np.isfinite(trainer.buffers[a].returns).all() for a in AGENTS)


def test_all_agents_share_one_centralised_critic() -> None:
    trainer = small_trainer()
    critics = {id(trainer.policies[a].critic) for a in AGENTS}
    assert len(critics) == 1
    first_critic_layer = trainer.policies["sizer"].critic[0]
    assert first_critic_layer.in_features == trainer.state_dim  # the critic reads state(), not obs
    actors = {id(trainer.policies[a].actor_layers) for a in AGENTS}
    assert len(actors) == 3


def test_shared_parameters_use_one_actor_with_agent_one_hot() -> None:
    trainer = small_trainer(share_parameters=True)
    assert len({id(trainer.policies[a].actor_layers) for a in AGENTS}) == 1
    width = trainer.pad + len(AGENTS)
    assert all(trainer.policies[a].obs_dim == width for a in AGENTS)
    n_params = sum(p.numel() for p in trainer.network.parameters())
    own = small_trainer(share_parameters=False)
    assert n_params < sum(p.numel() for p in own.network.parameters())


def test_gae_is_per_agent_on_the_shared_reward() -> None:
    trainer = small_trainer()
    trainer.collect_rollout()
    rewards = [trainer.buffers[a].rewards for a in AGENTS]
    advantages = [trainer.buffers[a].advantages for a in AGENTS]
    assert all(np.array_equal(rewards[0], r) for r in rewards[1:])
    assert all(np.allclose(advantages[0], a) for a in advantages[1:])


def test_discrete_monitor_scores_its_own_sampled_actions() -> None:
    trainer = small_trainer()
    policy = trainer.policies["monitor"]
    x = torch.zeros(5, policy.obs_dim + trainer.state_dim)
    action, logp, entropy, value = policy.get_action_and_value(x, generator=torch.Generator().manual_seed(0))
    _, logp_again, _, _ = policy.get_action_and_value(x, action)
    assert action.shape == (5, 1)
    assert set(action.flatten().tolist()) <= {0.0, 1.0, 2.0, 3.0}
    assert torch.allclose(logp, logp_again)
    assert torch.all(entropy <= np.log(4) + 1e-6)
    assert value.shape == (5,)


def test_same_seed_trains_to_the_same_policy() -> None:
    a, b = small_trainer(seed=3), small_trainer(seed=3)
    a.train(32)
    b.train(32)
    for p, q in zip(a.network.parameters(), b.network.parameters(), strict=True):
        assert torch.equal(p, q)


@pytest.mark.slow
def test_mappo_improves_mean_episode_return_over_untrained_agents_on_regime_market() -> None:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny networks: one thread is fastest
    try:
        env_config = EnvConfig(asset_count=3, market="regime", max_steps=64)
        cfg = PPOConfig(num_envs=8, num_steps=128, num_minibatches=4, update_epochs=4,
                        learning_rate=1e-3, device="cpu", seed=0)  # fmt: skip
        trainer = MAPPOTrainer(lambda: RiskAgentsEnv(env_config), cfg)
        held_out = list(range(10_000, 10_048))  # common random numbers: same paths before and after
        before = trainer.evaluate(RiskAgentsEnv(env_config), held_out).mean()
        trainer.train(60 * cfg.batch_size)
        after = trainer.evaluate(RiskAgentsEnv(env_config), held_out).mean()
    finally:
        torch.set_num_threads(threads)
    assert after > before + 0.01, (before, after)


def _fixed_actions_return(env: RiskAgentsEnv, seeds: list[int], actions: dict[str, Any]) -> float:
    """Mean over ``seeds`` of the summed shared reward of one episode with the same joint action."""
    totals = []
    for seed in seeds:
        env.reset(seed=seed)
        total = 0.0
        while env.agents:
            _, rewards, _, _, _ = env.step(actions)
            total += rewards["sizer"]
        totals.append(total)
    return float(np.mean(totals))


def test_mappo_learns_to_hold_a_rising_market_within_seconds() -> None:
    """A fast learning check (the slow suite has the regime-market one).

    Two uncorrelated assets with a 100 % annual drift and 2 % volatility, no costs, log-return
    reward, 32-step episodes: holding is all that earns, so the best joint action is full size, no
    monitor cut, and a wide stop. Untrained, the sizer sits mid-range and the monitor's choice is
    arbitrary. Observations are not normalised: with so calm a market the features are nearly
    constant and their running variance ~0 would blow noise up to the clip. On seed 0, 20 updates
    (5,120 joint steps; 5-15 s on the 2-core development machine, one torch thread) take the
    deterministic policy's mean episode reward on 16 held-out paths from 0.064 to 0.127, next to
    0.125 for the best fixed action.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny networks: one thread is fastest, and results do not depend on it
    try:
        env_config = EnvConfig(
            asset_count=2, window=5, max_steps=32, reward="log_return", transaction_cost=0.0
        )

        def make() -> RiskAgentsEnv:
            return RiskAgentsEnv(env_config, market=CorrelatedGBM([1.0, 1.0], [0.02, 0.02], 0.0))

        cfg = PPOConfig(
            num_envs=4,
            num_steps=64,
            num_minibatches=2,
            update_epochs=4,
            learning_rate=3e-3,
            anneal_lr=False,
            hidden_sizes=(32, 32),
            norm_obs=False,
            device="cpu",
            seed=0,
        )
        trainer = MAPPOTrainer(make, cfg)
        held_out = list(range(10_000, 10_016))  # common random numbers: the same paths each time
        before = trainer.evaluate(make(), held_out).mean()
        trainer.train(20 * cfg.batch_size)
        after = trainer.evaluate(make(), held_out).mean()
    finally:
        torch.set_num_threads(threads)
    all_in = {"sizer": np.array([1.0], np.float32), "stop": np.array([5.0, 0.0], np.float32), "monitor": 0}
    best = _fixed_actions_return(make(), held_out, all_in)
    assert after > before + 0.03, (before, after, best)
    assert after > 0.8 * best, (before, after, best)


def test_initial_actions_make_the_untrained_agents_act_like_the_rules() -> None:
    cfg = PPOConfig(num_envs=1, num_steps=8, num_minibatches=1, device="cpu", seed=4)
    env = RiskAgentsEnv(EnvConfig(asset_count=3, market="regime", max_steps=20))
    trainer = MAPPOTrainer(lambda: env, cfg, initial_actions=RULE_ACTIONS)
    obs, _ = env.reset(seed=1)
    for _ in range(5):
        actions = trainer.act(obs, env.state())
        np.testing.assert_allclose(actions["sizer"], RULE_ACTIONS["sizer"], atol=0.05)
        np.testing.assert_allclose(actions["stop"], RULE_ACTIONS["stop"], atol=0.1)
        assert actions["monitor"] == RULE_ACTIONS["monitor"]
        obs, *_ = env.step(actions)


def test_initial_actions_outside_the_action_space_or_with_a_shared_actor_are_refused() -> None:
    cfg = PPOConfig(num_envs=1, num_steps=8, num_minibatches=1, device="cpu")

    def make() -> RiskAgentsEnv:
        return RiskAgentsEnv(EnvConfig(asset_count=2, max_steps=10))

    with pytest.raises(InvalidInputError, match="initial action"):
        MAPPOTrainer(make, cfg, initial_actions={"stop": (9.0, 0.0)})
    with pytest.raises(InvalidInputError, match="initial choice"):
        MAPPOTrainer(make, cfg, initial_actions={"monitor": 7})
    with pytest.raises(InvalidInputError, match="share_parameters"):
        MAPPOTrainer(make, cfg, share_parameters=True, initial_actions=RULE_ACTIONS)
