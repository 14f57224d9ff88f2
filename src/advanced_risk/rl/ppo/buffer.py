"""PPO's rollout storage and Generalised Advantage Estimation (GAE).

The buffer follows Stable-Baselines3's ``RolloutBuffer``: arrays preallocated once in ``reset()``,
filled step by step by the rollout collector, completed by :func:`compute_gae`, then handed to the
update as one flat batch of tensors. It stores NumPy arrays (float32 for network inputs, float64 for
rewards, values and advantages); the batch is moved to the training device once per rollout.

Truncation versus termination
-----------------------------
The vector environment resets finished episodes in the same step, so ``obs[t+1]`` of a finished
environment is already the first observation of the next episode. The value that belongs after step
``t`` is therefore:

- terminated (ruin): 0 -- there is no future;
- truncated (time limit): ``V(final_obs)``, the value of the last real observation, because the
  portfolio would have gone on;
- otherwise: ``V(obs[t+1])`` (``last_value`` after the final step).

and the advantage recursion restarts after any finished episode.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import NDArray

from advanced_risk.measures.validation import FloatArray

__all__ = ["RolloutBatch", "RolloutBuffer", "compute_gae"]

BoolArray = NDArray[np.bool_]


def compute_gae(
    rewards: NDArray[np.floating],
    values: NDArray[np.floating],
    terminated: NDArray[np.bool_],
    truncated: NDArray[np.bool_],
    next_values: NDArray[np.floating],
    gamma: float,
    gae_lambda: float,
) -> tuple[FloatArray, FloatArray]:
    """Generalised Advantage Estimation with correct handling of truncated episodes.

    ``delta_t = r_t + gamma * (1 - term_t) * next_values_t - values_t``
    ``A_t = delta_t + gamma * lambda * (1 - done_t) * A_(t+1)``, ``done_t = term_t or trunc_t``
    ``returns_t = A_t + values_t`` (the critic's regression target).

    Parameters
    ----------
    rewards, values : shape ``(T,)`` or ``(T, n_envs)``; ``values[t] = V(s_t)``.
    terminated, truncated : boolean flags of step ``t``, same shape.
    next_values : value of the state that follows step ``t`` within its episode: ``V(s_(t+1))``,
        ``V(final_obs_t)`` where truncated; ignored where terminated (NaN is fine there).
    gamma : discount factor.
    gae_lambda : bias/variance trade-off, 0 (one-step TD) to 1 (Monte Carlo).

    Returns
    -------
    (advantages, returns), float64 arrays shaped like ``rewards``.

    Examples
    --------
    One episode truncated after 2 steps, bootstrapped from V(final_obs) = 10:

    >>> adv, ret = compute_gae(np.array([1.0, 1.0]), np.array([0.0, 0.0]), np.array([False, False]),
    ...                        np.array([False, True]), np.array([0.0, 10.0]), gamma=0.5, gae_lambda=1.0)
    >>> adv.tolist()
    [4.0, 6.0]
    """
    r = np.asarray(rewards, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    term = np.asarray(terminated, dtype=bool)
    done = term | np.asarray(truncated, dtype=bool)
    bootstrap = np.where(term, 0.0, np.asarray(next_values, dtype=np.float64))
    deltas = r + gamma * bootstrap - v
    carry = gamma * gae_lambda * (~done)
    advantages = np.empty_like(deltas)
    last = np.zeros_like(deltas[0])
    for t in range(deltas.shape[0] - 1, -1, -1):
        last = deltas[t] + carry[t] * last
        advantages[t] = last
    return advantages, advantages + v


@dataclass(frozen=True, slots=True)
class RolloutBatch:
    """A flat batch of transitions on the training device (index it with an index array or a slice)."""

    obs: torch.Tensor
    """Normalised observations, ``(B, obs_dim)`` float32."""
    actions: torch.Tensor
    """Unclipped sampled actions, ``(B, action_dim)`` float32."""
    log_probs: torch.Tensor
    """Log-probabilities of ``actions`` under the collecting policy, ``(B,)``."""
    values: torch.Tensor
    """Critic values at collection time, ``(B,)``."""
    advantages: torch.Tensor
    """GAE advantages, ``(B,)`` (not normalised)."""
    returns: torch.Tensor
    """Value targets ``advantages + values``, ``(B,)``."""

    def __len__(self) -> int:
        return int(self.obs.shape[0])

    def __getitem__(self, index: torch.Tensor | slice) -> RolloutBatch:
        return RolloutBatch(
            self.obs[index],
            self.actions[index],
            self.log_probs[index],
            self.values[index],
            self.advantages[index],
            self.returns[index],
        )

    def gather(self, index: torch.Tensor) -> RolloutBatch:
        """The rows ``index`` (a 1-D integer tensor) of every field, as new contiguous tensors.

        The same rows as ``batch[index]``; ``index_select`` copies whole rows, several times faster
        than advanced indexing for the ``(B, obs_dim)`` observations.
        """
        return RolloutBatch(
            self.obs.index_select(0, index),
            self.actions.index_select(0, index),
            self.log_probs.index_select(0, index),
            self.values.index_select(0, index),
            self.advantages.index_select(0, index),
            self.returns.index_select(0, index),
        )


class RolloutBuffer:
    """Fixed-size storage for ``num_steps`` steps of ``num_envs`` environments.

    Parameters
    ----------
    num_steps : steps per environment per rollout (``T``).
    num_envs : environments stepped together (``N``).
    obs_dim, action_dim : vector sizes.
    """

    def __init__(self, num_steps: int, num_envs: int, obs_dim: int, action_dim: int) -> None:
        self.num_steps, self.num_envs = num_steps, num_envs
        self.obs_dim, self.action_dim = obs_dim, action_dim
        self.reset()

    def reset(self) -> None:
        """(Re)allocate every array and rewind; called once per rollout."""
        shape = (self.num_steps, self.num_envs)
        self.obs: NDArray[np.float32] = np.zeros((*shape, self.obs_dim), dtype=np.float32)
        self.actions: NDArray[np.float32] = np.zeros((*shape, self.action_dim), dtype=np.float32)
        self.log_probs: NDArray[np.float32] = np.zeros(shape, dtype=np.float32)
        self.values: FloatArray = np.zeros(shape, dtype=np.float64)
        self.rewards: FloatArray = np.zeros(shape, dtype=np.float64)
        self.terminated: BoolArray = np.zeros(shape, dtype=bool)
        self.truncated: BoolArray = np.zeros(shape, dtype=bool)
        self.final_values: FloatArray = np.zeros(shape, dtype=np.float64)
        self.advantages: FloatArray = np.zeros(shape, dtype=np.float64)
        self.returns: FloatArray = np.zeros(shape, dtype=np.float64)
        self.pos = 0

    @property
    def full(self) -> bool:
        """True once ``num_steps`` steps have been added."""
        return self.pos == self.num_steps

    def add(
        self,
        obs: NDArray[np.float32],
        actions: NDArray[np.float32],
        log_probs: NDArray[np.float32],
        values: NDArray[np.floating],
        rewards: NDArray[np.floating],
        terminated: NDArray[np.bool_],
        truncated: NDArray[np.bool_],
        final_values: NDArray[np.floating],
    ) -> None:
        """Store one vector step; ``final_values`` holds ``V(final_obs)`` where truncated (else 0)."""
        assert self.pos < self.num_steps, "rollout buffer is full; call reset()"
        t = self.pos
        self.obs[t] = obs
        self.actions[t] = actions
        self.log_probs[t] = log_probs
        self.values[t] = values
        self.rewards[t] = rewards
        self.terminated[t] = terminated
        self.truncated[t] = truncated
        self.final_values[t] = final_values
        self.pos += 1

    def compute_returns_and_advantage(
        self, last_value: NDArray[np.floating], gamma: float, gae_lambda: float
    ) -> None:
        """Fill ``advantages`` and ``returns``; ``last_value = V(obs after the last step)``."""
        assert self.full, "compute_returns_and_advantage needs a full buffer"
        next_values = np.empty_like(self.values)
        next_values[:-1] = self.values[1:]
        next_values[-1] = last_value
        next_values = np.where(self.truncated, self.final_values, next_values)
        self.advantages, self.returns = compute_gae(
            self.rewards, self.values, self.terminated, self.truncated, next_values, gamma, gae_lambda
        )

    def get(self, device: torch.device) -> RolloutBatch:
        """The whole rollout as one flat batch of tensors on ``device`` (float32)."""
        n = self.num_steps * self.num_envs

        def flat(x: NDArray[np.generic], *tail: int) -> torch.Tensor:
            return torch.as_tensor(np.ascontiguousarray(x.reshape(n, *tail), dtype=np.float32), device=device)

        return RolloutBatch(
            obs=flat(self.obs, self.obs_dim),
            actions=flat(self.actions, self.action_dim),
            log_probs=flat(self.log_probs),
            values=flat(self.values),
            advantages=flat(self.advantages),
            returns=flat(self.returns),
        )
