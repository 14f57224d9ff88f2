"""GAE against hand-computed numbers, and the rollout buffer's bootstrap bookkeeping."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from advanced_risk.rl.ppo.buffer import RolloutBuffer, compute_gae

# One environment, five steps, gamma = 0.9, lambda = 0.8 (so gamma * lambda = 0.72):
#   steps 0-1: episode A, TERMINATED at step 1 (ruin: no bootstrap)
#   steps 2-3: episode B, TRUNCATED at step 3 (time limit: bootstrap from V(final_obs) = 2.0)
#   step  4  : episode C, still running; V(obs after the rollout) = last_value = 1.5
GAMMA, LAMBDA = 0.9, 0.8
REWARDS = np.array([1.0, 2.0, 0.5, 1.0, -1.0])
VALUES = np.array([0.5, 1.0, 0.2, 0.4, 0.3])
TERMINATED = np.array([False, True, False, False, False])
TRUNCATED = np.array([False, False, False, True, False])
FINAL_VALUE, LAST_VALUE = 2.0, 1.5
# next_values[t]: V(s_t+1) inside an episode; V(final_obs) on truncation; anything (NaN) on termination
NEXT_VALUES = np.array([1.0, np.nan, 0.4, FINAL_VALUE, LAST_VALUE])
# delta_t = r_t + gamma * next_value_t * (1 - terminated_t) - V(s_t)
#   t0: 1.0 + 0.9 * 1.0 - 0.5 = 1.40
#   t1: 2.0 + 0         - 1.0 = 1.00   (terminated)
#   t2: 0.5 + 0.9 * 0.4 - 0.2 = 0.66
#   t3: 1.0 + 0.9 * 2.0 - 0.4 = 2.40   (truncated: bootstrapped from V(final_obs))
#   t4: -1. + 0.9 * 1.5 - 0.3 = 0.05
# A_t = delta_t + 0.72 * (1 - done_t) * A_t+1, from the end:
#   A4 = 0.05;  A3 = 2.40;  A2 = 0.66 + 0.72 * 2.40 = 2.388;  A1 = 1.00;  A0 = 1.40 + 0.72 * 1.00 = 2.12
EXPECTED_ADVANTAGES = np.array([2.12, 1.00, 2.388, 2.40, 0.05])
EXPECTED_RETURNS = EXPECTED_ADVANTAGES + VALUES  # [2.62, 2.00, 2.588, 2.80, 0.35]


def test_gae_matches_hand_computed_case_with_truncation_and_termination() -> None:
    adv, ret = compute_gae(REWARDS, VALUES, TERMINATED, TRUNCATED, NEXT_VALUES, GAMMA, LAMBDA)
    np.testing.assert_allclose(adv, EXPECTED_ADVANTAGES, rtol=0, atol=1e-12)
    np.testing.assert_allclose(ret, [2.62, 2.00, 2.588, 2.80, 0.35], rtol=0, atol=1e-12)


def test_gae_bootstraps_on_truncation_not_termination() -> None:
    adv, _ = compute_gae(REWARDS, VALUES, TERMINATED, TRUNCATED, NEXT_VALUES, GAMMA, LAMBDA)
    # truncated step: r + gamma * V(final_obs) - V(s) = 2.4, not r - V(s) = 0.6
    assert adv[3] == pytest.approx(1.0 + 0.9 * FINAL_VALUE - 0.4)
    # terminated step: r - V(s) = 1.0, whatever next_values holds there (NaN here)
    assert adv[1] == pytest.approx(2.0 - 1.0)
    # treating the truncation as a termination would give 0.6: the classic bug this guards against
    wrong, _ = compute_gae(REWARDS, VALUES, TERMINATED | TRUNCATED, TRUNCATED, NEXT_VALUES, GAMMA, LAMBDA)
    assert wrong[3] == pytest.approx(0.6)


def test_gae_does_not_leak_advantage_across_episode_boundaries() -> None:
    rewards = REWARDS.copy()
    rewards[2:] += 100.0  # a later episode's windfall must not reach episode A
    adv, _ = compute_gae(rewards, VALUES, TERMINATED, TRUNCATED, NEXT_VALUES, GAMMA, LAMBDA)
    np.testing.assert_allclose(adv[:2], EXPECTED_ADVANTAGES[:2], atol=1e-12)


@pytest.mark.parametrize(("lam", "name"), [(0.0, "one_step_td"), (1.0, "monte_carlo")])
def test_gae_limits_are_td_and_monte_carlo(lam: float, name: str) -> None:
    rewards, values = np.array([1.0, 2.0, 3.0]), np.array([0.5, 0.5, 0.5])
    no = np.zeros(3, dtype=bool)
    next_values = np.array([0.5, 0.5, 4.0])
    _, ret = compute_gae(rewards, values, no, no, next_values, 0.9, lam)
    if name == "one_step_td":
        np.testing.assert_allclose(ret, rewards + 0.9 * next_values)
    else:
        discounted = [1 + 0.9 * 2 + 0.81 * 3 + 0.729 * 4, 2 + 0.9 * 3 + 0.81 * 4, 3 + 0.9 * 4]
        np.testing.assert_allclose(ret, discounted)


def test_gae_handles_many_envs_independently() -> None:
    cols = [
        compute_gae(REWARDS * k, VALUES, TERMINATED, TRUNCATED, NEXT_VALUES, GAMMA, LAMBDA)[0] for k in (1, 2)
    ]
    stacked, _ = compute_gae(
        np.stack([REWARDS, 2 * REWARDS], 1),
        np.stack([VALUES, VALUES], 1),
        np.stack([TERMINATED, TERMINATED], 1),
        np.stack([TRUNCATED, TRUNCATED], 1),
        np.stack([NEXT_VALUES, NEXT_VALUES], 1),
        GAMMA,
        LAMBDA,
    )
    np.testing.assert_allclose(stacked, np.stack(cols, 1), atol=1e-12)


def test_buffer_builds_next_values_from_final_obs_values_and_last_value() -> None:
    buf = RolloutBuffer(num_steps=5, num_envs=1, obs_dim=2, action_dim=1)
    for t in range(5):
        buf.add(
            obs=np.full((1, 2), t, dtype=np.float32),
            actions=np.zeros((1, 1), dtype=np.float32),
            log_probs=np.zeros(1, dtype=np.float32),
            values=VALUES[t : t + 1],
            rewards=REWARDS[t : t + 1],
            terminated=TERMINATED[t : t + 1],
            truncated=TRUNCATED[t : t + 1],
            final_values=np.array([FINAL_VALUE if TRUNCATED[t] else 0.0]),
        )
    assert buf.full
    buf.compute_returns_and_advantage(np.array([LAST_VALUE]), GAMMA, LAMBDA)
    np.testing.assert_allclose(buf.advantages[:, 0], EXPECTED_ADVANTAGES, atol=1e-12)
    batch = buf.get(torch.device("cpu"))
    assert batch.obs.shape == (5, 2)
    assert batch.returns.dtype == torch.float32
    np.testing.assert_allclose(batch.returns.numpy(), EXPECTED_RETURNS, atol=1e-6)


def test_buffer_reset_rewinds_and_refuses_overfill() -> None:
    buf = RolloutBuffer(num_steps=1, num_envs=2, obs_dim=1, action_dim=1)
    row = (np.zeros((2, 1), np.float32), np.zeros((2, 1), np.float32), np.zeros(2, np.float32))
    flags = np.zeros(2, dtype=bool)
    buf.add(*row, np.zeros(2), np.ones(2), flags, flags, np.zeros(2))
    with pytest.raises(AssertionError, match="full"):
        buf.add(*row, np.zeros(2), np.ones(2), flags, flags, np.zeros(2))
    buf.reset()
    assert buf.pos == 0
    assert not buf.rewards.any()
