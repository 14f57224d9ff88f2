"""MAPPO for the risk agents: decentralised actors, one centralised critic, PPO's clipped update.

Multi-agent PPO (Yu et al. 2022) on :class:`~advanced_risk.rl.agents.env.RiskAgentsEnv`, built
from the single-agent pieces rather than beside them:

- each agent's policy is an :class:`AgentPolicy`, an
  :class:`~advanced_risk.rl.ppo.network.ActorCriticNetwork` whose input row is
  ``[actor input | joint state]``: the actor reads only its own (normalised) observation, the value
  comes from the one critic on ``state()`` shared by every agent. So the unchanged
  :func:`~advanced_risk.rl.ppo.loss.ppo_loss` (clipped surrogate, clipped value loss, entropy) scores
  each agent. The monitor's discrete action uses a categorical head over the actor's outputs.
- one :class:`~advanced_risk.rl.ppo.buffer.RolloutBuffer` per agent, filled with the shared reward and
  the critic's value, completed by :func:`~advanced_risk.rl.ppo.buffer.compute_gae` (bootstrapping from
  ``V(final state)`` on truncation, from nothing on ruin);
- observations and the state are normalised by :class:`~advanced_risk.rl.ppo.normalize.RunningMeanStd`;
- hyperparameters are a :class:`~advanced_risk.config.PPOConfig` (``num_envs`` environments are
  stepped one after another, each ``num_steps`` steps per rollout).

The update minimises the mean over agents of their PPO losses on the same shuffled minibatch
(the critic thus gets one value loss), clips the global gradient norm, anneals the learning rate
linearly and stops an epoch early once any agent's approximate KL exceeds ``target_kl``.

With ``share_parameters=True`` all agents use one actor MLP whose input is the agent's observation
zero-padded to the longest one plus the agent's one-hot id; each agent reads the first outputs it
needs (its action dims or logits) and keeps its own log standard deviation.

One module because the trainer, its per-agent policies and the central critic are one algorithm
whose update touches all of them at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn
from torch.nn import functional as F

from advanced_risk.config import PPOConfig
from advanced_risk.errors import InvalidInputError
from advanced_risk.logs import get_logger
from advanced_risk.measures.validation import check_positive_int
from advanced_risk.rl.agents.env import RiskAgentsEnv, obs_dim
from advanced_risk.rl.agents.interface import shared_actor_rows
from advanced_risk.rl.ppo.agent import resolve_device
from advanced_risk.rl.ppo.buffer import RolloutBuffer
from advanced_risk.rl.ppo.loss import LOSS_STATS, ppo_loss
from advanced_risk.rl.ppo.network import ActorCriticNetwork, mlp_linears
from advanced_risk.rl.ppo.normalize import RunningMeanStd

__all__ = ["AgentPolicy", "MAPPOTrainer", "central_critic", "shared_actor_rows"]

log = get_logger(__name__)
Stats = dict[str, float]


def central_critic(state_dim: int, hidden_sizes: Sequence[int], generator: torch.Generator) -> nn.Sequential:
    """The centralised value MLP on the joint state (tanh hidden layers, linear head)."""
    layers: list[nn.Module] = []
    for layer in mlp_linears((state_dim, *hidden_sizes, 1), 1.0, generator):
        layers += [layer, nn.Tanh()]
    return nn.Sequential(*layers[:-1])


class AgentPolicy(ActorCriticNetwork):
    """One agent's actor next to the shared critic, in :class:`ActorCriticNetwork`'s interface.

    Input rows are ``[actor input (actor_dim) | state (state_dim)]``. ``action_mean`` reads the
    first part, ``get_value`` the second (through ``critic``, shared by every agent), and a discrete
    agent's ``sample_or_score`` is a categorical; the rest (``get_action_and_value``, ``predict``)
    is :class:`ActorCriticNetwork`'s own, on top of these three.

    Parameters
    ----------
    actor_dim : length of the actor's input.
    action_dim : action length (continuous) or number of choices (discrete).
    critic : the centralised critic module (shared, not copied).
    discrete : categorical policy over ``action_dim`` logits (actions stored as one float index).
    head_dim : actor outputs (``>= action_dim``; larger when the actor is shared).
    hidden_sizes, init_log_std, dropout, generator : as for :class:`ActorCriticNetwork` (dropout
        serves MC-dropout uncertainty only, see :mod:`advanced_risk.rl.ppo.network`).
    """

    def __init__(
        self,
        actor_dim: int,
        action_dim: int,
        critic: nn.Sequential,
        *,
        discrete: bool = False,
        head_dim: int | None = None,
        hidden_sizes: Sequence[int] = (64, 64),
        init_log_std: float = -0.5,
        dropout: float = 0.1,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(
            actor_dim, head_dim or action_dim, hidden_sizes, init_log_std, dropout, generator=generator
        )
        self.critic = critic
        self.discrete = discrete
        self.n_out = int(action_dim)
        self.actor_logstd = nn.Parameter(torch.full((1, self.n_out), float(init_log_std)))

    def action_mean(self, obs: torch.Tensor, mc_dropout: bool = False) -> torch.Tensor:
        """Gaussian mean (or logits) from the actor part of ``obs``."""
        return super().action_mean(obs[..., : self.obs_dim], mc_dropout)[..., : self.n_out]

    def get_value(self, obs: torch.Tensor) -> torch.Tensor:
        """Centralised value ``V(state)`` from the state part of ``obs``, shape ``(batch,)``."""
        value: torch.Tensor = self.critic(obs[..., self.obs_dim :])
        return value.squeeze(-1)

    def sample_or_score(
        self, mean: torch.Tensor, action: torch.Tensor | None = None, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """:class:`ActorCriticNetwork`'s Gaussian, or for a discrete agent the categorical over the
        logits ``mean`` (actions ``(B, 1)`` holding the choice as a float)."""
        if not self.discrete:
            return super().sample_or_score(mean, action, generator)
        log_p = F.log_softmax(mean, dim=-1)
        if action is None:
            action = torch.multinomial(log_p.exp(), 1, generator=generator).to(log_p.dtype)
        log_prob = log_p.gather(-1, action.long()).squeeze(-1)
        entropy = -(log_p.exp() * log_p).sum(-1)
        return action, log_prob, entropy

    def deterministic(self, obs: torch.Tensor) -> torch.Tensor:
        """The mean action, or the most likely choice ``(B, 1)`` for a discrete agent."""
        mean = self.action_mean(obs)
        return mean.argmax(-1, keepdim=True).to(mean.dtype) if self.discrete else mean


INITIAL_CHOICE_LOGIT = 3.0
"""Head bias of the initial discrete choice over the others' 0: probability ``e^3 / (e^3 + k - 1)``
(0.87 for 4 choices), so the other choices are still explored."""


def set_initial_action(
    policy: AgentPolicy, action: Any, bounds: tuple[NDArray[np.float32], NDArray[np.float32]] | None
) -> None:
    """Make ``action`` the untrained actor's mean action by setting its head's bias.

    The head's weights are initialised with gain 0.01, so the mean action is ~its bias. A box action
    ``x`` maps to the pre-rescaling ``2 (x - low) / (high - low) - 1`` (the inverse of the
    trainer's rescaling, in [-1, 1]); a discrete choice gets :data:`INITIAL_CHOICE_LOGIT`.
    """
    head = policy.actor_layers[-1]
    assert isinstance(head, nn.Linear)
    bias = torch.zeros_like(head.bias)
    if policy.discrete:
        choice = int(action)
        if not 0 <= choice < policy.n_out:
            raise InvalidInputError(f"initial choice must be in [0, {policy.n_out}), got {action!r}")
        bias[choice] = INITIAL_CHOICE_LOGIT
    else:
        assert bounds is not None  # a box agent always has bounds
        low, high = (np.asarray(b, np.float64) for b in bounds)
        x = np.asarray(action, np.float64).reshape(-1)
        if x.shape != low.shape or not np.all((x >= low) & (x <= high)):
            raise InvalidInputError(f"initial action must lie in [{low}, {high}], got {action!r}")
        raw = 2.0 * (x - low) / (high - low) - 1.0
        bias[: policy.n_out] = torch.as_tensor(raw, dtype=bias.dtype)
    with torch.no_grad():
        head.bias.copy_(bias)


class MAPPOTrainer:
    """MAPPO on ``config.num_envs`` copies of a :class:`RiskAgentsEnv` (see the module docstring).

    Parameters
    ----------
    make_env : builds one environment; env ``i`` is reset with seed ``config.seed + i``.
    config : PPO hyperparameters (``total_timesteps`` counts joint steps over all envs).
    share_parameters : one actor MLP for all agents (padded observation + agent one-hot).
    initial_actions : agent name -> the action its untrained actor should take on average (env
        units: a box action, or a discrete choice), set through the actor head's bias (see
        :func:`set_initial_action`); e.g. :data:`~advanced_risk.rl.agents.env.RULE_ACTIONS`, so
        training starts from the rules and learns deviations from them. None: the zero-mean head
        (mid-range box actions, uniform choices). Needs separate actors (``share_parameters=False``).

    Examples
    --------
    >>> from advanced_risk.config import EnvConfig
    >>> cfg = PPOConfig(num_envs=2, num_steps=8, num_minibatches=2, update_epochs=1, device="cpu")
    >>> trainer = MAPPOTrainer(lambda: RiskAgentsEnv(EnvConfig(asset_count=2, max_steps=5)), cfg)
    >>> stats = trainer.train(16)
    >>> len(stats), bool(np.isfinite(stats[0]["value_loss"]))
    (1, True)
    """

    def __init__(
        self,
        make_env: Callable[[], RiskAgentsEnv],
        config: PPOConfig | None = None,
        *,
        share_parameters: bool = False,
        initial_actions: Mapping[str, Any] | None = None,
    ) -> None:
        cfg = config if config is not None else PPOConfig()
        if initial_actions and share_parameters:
            raise InvalidInputError("initial_actions needs one actor per agent (share_parameters=False)")
        self.config, self.share_parameters = cfg, share_parameters
        self.device = resolve_device(cfg.device)
        self.envs = [make_env() for _ in range(cfg.num_envs)]
        env = self.envs[0]
        self.agents = list(env.possible_agents)
        spaces = {a: env.action_space(a) for a in self.agents}
        self.obs_dims = {a: obs_dim(a, env.config.asset_count) for a in self.agents}
        self.state_dim = obs_dim("state", env.config.asset_count)
        self.discrete = {a: isinstance(s, gym.spaces.Discrete) for a, s in spaces.items()}
        self.bounds = {a: (np.asarray(s.low, np.float32), np.asarray(s.high, np.float32))
                       for a, s in spaces.items() if isinstance(s, gym.spaces.Box)}  # fmt: skip
        self.act_dims = {a: 1 if self.discrete[a] else len(self.bounds[a][0]) for a in self.agents}
        outs = {
            a: int(s.n) if isinstance(s, gym.spaces.Discrete) else self.act_dims[a] for a, s in spaces.items()
        }
        self.pad = max(self.obs_dims.values())
        actor_dims = {
            a: self.pad + len(self.agents) if share_parameters else self.obs_dims[a] for a in self.agents
        }
        gen = torch.Generator().manual_seed(cfg.seed)
        critic = central_critic(self.state_dim, cfg.hidden_sizes, gen)
        policies: dict[str, AgentPolicy] = {}
        for a in self.agents:
            policies[a] = AgentPolicy(
                actor_dims[a], outs[a], critic, discrete=self.discrete[a],
                head_dim=max(outs.values()) if share_parameters else None,
                hidden_sizes=cfg.hidden_sizes, init_log_std=cfg.init_log_std, dropout=cfg.dropout,
                generator=gen,
            )  # fmt: skip
            if share_parameters:
                policies[a].actor_layers = policies[self.agents[0]].actor_layers
        for a, action in (initial_actions or {}).items():
            set_initial_action(policies[a], action, self.bounds.get(a))
        self.policies = policies
        self.network = nn.ModuleDict(policies).to(self.device)  # parameters() lists shared ones once
        self.optimizer = torch.optim.Adam(self.network.parameters(), lr=cfg.learning_rate, eps=1e-5)
        self.obs_rms = {a: RunningMeanStd((self.obs_dims[a],)) for a in self.agents}
        self.state_rms = RunningMeanStd((self.state_dim,))
        self.buffers = {
            a: RolloutBuffer(cfg.num_steps, cfg.num_envs, actor_dims[a] + self.state_dim, self.act_dims[a])
            for a in self.agents
        }
        self.torch_generator = torch.Generator(device=self.device).manual_seed(cfg.seed)
        self.rng = np.random.default_rng(cfg.seed)
        self.num_updates, self.global_step = 0, 0
        self._obs = [e.reset(seed=cfg.seed + i)[0] for i, e in enumerate(self.envs)]
        self._episode_return = np.zeros(cfg.num_envs)

    # -- inputs ----------------------------------------------------------------------------------
    def _norm(self, rms: RunningMeanStd, x: NDArray[np.floating]) -> NDArray[np.float32]:
        if not self.config.norm_obs:
            return np.asarray(x, dtype=np.float32)
        return rms.normalize(x, self.config.obs_clip)

    def inputs(
        self, obs: Sequence[dict[str, NDArray[np.float32]]], states: NDArray[np.float32]
    ) -> dict[str, NDArray[np.float32]]:
        """Each agent's network input rows ``[actor input | normalised state]`` for a batch of envs."""
        state = self._norm(self.state_rms, states)
        out = {}
        for k, a in enumerate(self.agents):
            x = self._norm(self.obs_rms[a], np.stack([o[a] for o in obs]))
            if self.share_parameters:
                x = shared_actor_rows(x, k, len(self.agents), self.pad)
            out[a] = np.concatenate([x, state], axis=1)
        return out

    def env_action(self, agent: str, action: NDArray[np.float32]) -> Any:
        """What the env receives: the discrete choice as an int, or the action rescaled to the box.

        Continuous policies act in ``[-1, 1]`` (SB3's convention): ``low + (clip(a, -1, 1) + 1) / 2 *
        (high - low)``, so an untrained policy (mean ~0) starts mid-range, not at a bound.
        """
        if self.discrete[agent]:
            return int(action[0])
        low, high = self.bounds[agent]
        return low + (np.clip(action, -1.0, 1.0) + 1.0) / 2.0 * (high - low)

    @torch.inference_mode()
    def act(self, obs: dict[str, NDArray[np.float32]], state: NDArray[np.float32]) -> dict[str, Any]:
        """Deterministic joint action for one env (policy means, most likely monitor action)."""
        x = self.inputs([obs], state[None, :])
        return {
            a: self.env_action(
                a, self.policies[a].deterministic(torch.as_tensor(x[a], device=self.device))[0].cpu().numpy()
            )
            for a in self.agents
        }

    @torch.inference_mode()
    def _value(self, states: NDArray[np.float32]) -> NDArray[np.float64]:
        critic = self.policies[self.agents[0]].critic
        value = critic(torch.as_tensor(self._norm(self.state_rms, states), device=self.device))
        return value.squeeze(-1).double().cpu().numpy()  # type: ignore[no-any-return]

    # -- rollout ---------------------------------------------------------------------------------
    def collect_rollout(self) -> Stats:
        """``num_steps`` joint steps of every env into the agents' buffers, then GAE per agent."""
        cfg, n = self.config, self.config.num_envs
        for buf in self.buffers.values():
            buf.reset()
        finished: list[float] = []
        for _ in range(cfg.num_steps):
            states = np.stack([e.state() for e in self.envs])
            if cfg.norm_obs:
                self.state_rms.update(states)
                for a in self.agents:
                    self.obs_rms[a].update(np.stack([o[a] for o in self._obs]))
            x = self.inputs(self._obs, states)
            sampled: dict[str, tuple[NDArray[np.float32], NDArray[np.float32]]] = {}
            with torch.inference_mode():
                for a in self.agents:
                    policy, rows = self.policies[a], torch.as_tensor(x[a], device=self.device)
                    mean = policy.action_mean(rows)
                    act, logp, _ = policy.sample_or_score(mean, generator=self.torch_generator)
                    sampled[a] = (act.cpu().numpy(), logp.cpu().numpy())
                # the critic is shared and every agent's rows carry the same state: one value pass
                value = policy.get_value(rows).double().cpu().numpy()
            reward, term, trunc = np.zeros(n), np.zeros(n, bool), np.zeros(n, bool)
            final_states = np.zeros((n, self.state_dim), np.float32)
            for i, env in enumerate(self.envs):
                joint = {a: self.env_action(a, sampled[a][0][i]) for a in self.agents}
                obs, rewards, terminations, truncations, _ = env.step(joint)
                reward[i], term[i], trunc[i] = rewards["sizer"], terminations["sizer"], truncations["sizer"]
                self._episode_return[i] += reward[i]
                self._obs[i] = obs
                if term[i] or trunc[i]:
                    final_states[i] = env.state()
                    finished.append(float(self._episode_return[i]))
                    self._episode_return[i] = 0.0
                    self._obs[i] = env.reset()[0]
            final_values = np.zeros(n)
            if trunc.any():
                final_values[trunc] = self._value(final_states[trunc])
            for a in self.agents:
                self.buffers[a].add(
                    x[a], sampled[a][0], sampled[a][1], value, reward, term, trunc, final_values
                )
            self.global_step += n
        last_value = self._value(np.stack([e.state() for e in self.envs]))
        for buf in self.buffers.values():
            buf.compute_returns_and_advantage(last_value, cfg.gamma, cfg.gae_lambda)
        return {
            "episodes": float(len(finished)),
            "episode_return_mean": float(np.mean(finished)) if finished else float("nan"),
        }

    # -- update ----------------------------------------------------------------------------------
    def update(self, lr: float) -> Stats:
        """One MAPPO update of every actor and the critic; returns mean loss statistics."""
        cfg = self.config
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        batches = {a: buf.get(self.device) for a, buf in self.buffers.items()}
        size = cfg.batch_size
        sums = np.zeros(len(LOSS_STATS))
        minibatches = 0
        for _epoch in range(cfg.update_epochs):
            order = torch.as_tensor(self.rng.permutation(size), device=self.device)
            kl_exceeded = False
            for start in range(0, size, cfg.minibatch_size):
                idx = order[start : start + cfg.minibatch_size]
                losses, stats = [], []
                for a in self.agents:
                    mb = batches[a][idx]
                    adv = mb.advantages
                    if cfg.norm_adv:
                        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
                    loss, stat = ppo_loss(self.policies[a], mb, adv, cfg)
                    losses.append(loss)
                    stats.append(torch.stack(stat))
                stat_mean = torch.stack(stats).mean(0).cpu().numpy()
                sums += stat_mean
                minibatches += 1
                if cfg.target_kl is not None and max(float(s[3]) for s in stats) > cfg.target_kl:
                    kl_exceeded = True
                    break
                self.optimizer.zero_grad(set_to_none=True)
                torch.stack(losses).mean().backward()  # type: ignore[no-untyped-call]
                nn.utils.clip_grad_norm_(self.network.parameters(), cfg.max_grad_norm)
                self.optimizer.step()
            if kl_exceeded:
                break
        self.num_updates += 1
        buf = self.buffers[self.agents[0]]
        var_y = float(np.var(buf.returns))
        explained = float("nan") if var_y == 0 else 1.0 - float(np.var(buf.returns - buf.values)) / var_y
        out = dict(zip(LOSS_STATS, (sums / max(minibatches, 1)).tolist(), strict=True))
        return out | {"explained_variance": explained, "lr": lr}

    # -- resume ----------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything training depends on: networks, optimizer, normalisers, RNGs, counters, envs.

        With :meth:`load_state_dict` on a trainer built with the same settings, the next rollouts
        and updates are the ones the saved trainer would have made.
        """
        return {
            "network": self.network.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "obs_rms": {a: r.state_dict() for a, r in self.obs_rms.items()},
            "state_rms": self.state_rms.state_dict(),
            "torch_generator": self.torch_generator.get_state(),
            "rng": self.rng.bit_generator.state,
            "num_updates": self.num_updates,
            "global_step": self.global_step,
            "episode_return": self._episode_return.copy(),
            "obs": [{a: o[a].copy() for a in self.agents} for o in self._obs],
            "envs": [e.state_dict() for e in self.envs],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (raises ``ValueError``/``KeyError`` on a mismatch)."""
        if len(state["envs"]) != len(self.envs):
            raise ValueError(f"state has {len(state['envs'])} envs, this trainer {len(self.envs)}")
        self.network.load_state_dict(state["network"])
        self.optimizer.load_state_dict(state["optimizer"])
        for a in self.agents:
            self.obs_rms[a].load_state_dict(state["obs_rms"][a])
        self.state_rms.load_state_dict(state["state_rms"])
        self.torch_generator.set_state(state["torch_generator"])
        self.rng.bit_generator.state = state["rng"]
        self.num_updates, self.global_step = int(state["num_updates"]), int(state["global_step"])
        self._episode_return = np.asarray(state["episode_return"], dtype=np.float64).copy()
        self._obs = [{a: np.asarray(o[a], dtype=np.float32) for a in self.agents} for o in state["obs"]]
        for env, env_state in zip(self.envs, state["envs"], strict=True):
            env.load_state_dict(env_state)

    def train(self, total_timesteps: int | None = None) -> list[Stats]:
        """Collect-and-update for ``total_timesteps`` joint env steps (whole rollouts, at least one)."""
        cfg = self.config
        steps = (
            cfg.total_timesteps
            if total_timesteps is None
            else check_positive_int(total_timesteps, "total_timesteps")
        )
        n_updates = max(1, steps // cfg.batch_size)
        history = []
        for k in range(n_updates):
            t0 = time.perf_counter()
            lr = cfg.learning_rate * (1.0 - k / n_updates if cfg.anneal_lr else 1.0)
            stats = self.collect_rollout() | self.update(lr)
            stats |= {"update": float(k + 1), "global_step": float(self.global_step),
                      "sps": cfg.batch_size / (time.perf_counter() - t0)}  # fmt: skip
            history.append(stats)
            log.info("mappo_update", **stats)
        return history

    def evaluate(self, env: RiskAgentsEnv, seeds: Sequence[int]) -> NDArray[np.float64]:
        """Sum of shared rewards of one deterministic episode per seed (common random numbers)."""
        out = np.zeros(len(seeds))
        for k, seed in enumerate(seeds):
            obs, _ = env.reset(seed=seed)
            while env.agents:
                obs, rewards, _, _, _ = env.step(self.act(obs, env.state()))
                out[k] += rewards["sizer"]
        return out
