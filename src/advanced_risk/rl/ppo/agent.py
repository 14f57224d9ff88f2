"""PPOAgent: proximal policy optimisation for the portfolio allocator, CleanRL-style.

One training iteration reads like the paper (and like CleanRL's ``ppo_continuous_action.py``):

1. :meth:`PPOAgent.collect_rollout`: step the vector env ``num_steps`` times with the current policy,
   normalising observations with running statistics, storing *unclipped* actions and their
   log-probabilities, and the value of ``final_obs`` wherever an episode was truncated.
2. :func:`~advanced_risk.rl.ppo.buffer.compute_gae`: advantages and returns, bootstrapping from
   ``V(final_obs)`` on truncation and from nothing on termination.
3. :meth:`PPOAgent.update`: ``update_epochs`` passes of shuffled minibatches through the clipped
   surrogate, (optionally clipped) value loss and entropy bonus, with per-minibatch advantage
   normalisation, a global gradient-norm clip, a linearly annealed learning rate and an early stop
   once the approximate KL exceeds ``target_kl``.

Gradient accumulation splits each minibatch into ``grad_accum_steps`` micro-batches whose gradients
add up to the minibatch gradient (advantages are normalised over the whole minibatch first), so the
optimiser step is the same and only the peak memory changes. Mixed precision (``torch.autocast`` in
float16 with a ``GradScaler``) is active only when ``config.amp`` is set and the device is CUDA; on
CPU both are disabled and the code path is identical.

Speed on CPU (docs/performance.md, "Trainer"): the rollout's policy and value run in NumPy on views
of the weights (:class:`~advanced_risk.rl.ppo.network.RolloutSampler`; the Gaussian noise still
comes from the agent's torch generator), the update gathers each epoch's shuffle with one
``index_select``, clips the gradient norm in four foreach calls, steps a fused Adam and reads its
loss statistics once per update (once per minibatch only for the ``target_kl`` test).
Each minibatch's gradient comes from the hand-derived formulas of
:mod:`advanced_risk.rl.ppo.gradients` (``config.analytic_gradients``, the default; autograd through
:func:`~advanced_risk.rl.ppo.loss.ppo_loss` otherwise and under AMP). ``config.torch_compile``
compiles that step (opt-in: it pays only over long runs).

The agent never changes global torch state: weights are initialised and actions sampled from its own
generators (seeded by ``config.seed``), which also makes a restored :meth:`state_dict` continue
training bit for bit. Thread counts (``torch.set_num_threads``) are the caller's choice.
Inference (:meth:`select_action`) runs on a NumPy snapshot of the actor
(:mod:`advanced_risk.rl.ppo.inference`), refreshed automatically when weights or statistics change.
Policy files (:meth:`save`, :meth:`load`) are the torch-free format of :mod:`advanced_risk.rl.ppo.io`.

One module because it is one class, :class:`PPOAgent`, whose rollout, update and state share the
networks, the normaliser and the optimiser.
"""

from __future__ import annotations

import copy
import itertools
import os
import time
from collections.abc import Callable
from typing import Any, Protocol, Self

import numpy as np
import torch
from numpy.typing import NDArray

from advanced_risk.config import PPOConfig
from advanced_risk.errors import ConfigError, InvalidInputError, ModelLoadError
from advanced_risk.logs import get_logger
from advanced_risk.measures.validation import check_positive_int
from advanced_risk.rl.ppo.buffer import RolloutBatch, RolloutBuffer, compute_gae
from advanced_risk.rl.ppo.dropout_kernels import RunnerCache
from advanced_risk.rl.ppo.gradients import normalize_advantages, ppo_gradients
from advanced_risk.rl.ppo.inference import NumpyPolicy, check_obs
from advanced_risk.rl.ppo.io import PolicyFile, read_policy_file, write_policy_file
from advanced_risk.rl.ppo.loss import LOSS_STATS, ppo_loss
from advanced_risk.rl.ppo.network import ActorCriticNetwork, RolloutSampler
from advanced_risk.rl.ppo.normalize import RunningMeanStd
from advanced_risk.rl.ppo.optim import adam, clip_grad_norm_, fused_adam_step, grad_scaler

__all__ = ["PPOAgent", "VectorEnv", "compute_gae", "resolve_device"]

log = get_logger(__name__)
Stats = dict[str, float]
_KL = LOSS_STATS.index("approx_kl")


class VectorEnv(Protocol):
    """What the trainer needs from a vector env (``VectorTradingEnv`` satisfies it).

    ``step`` resets finished environments in the same call; ``info["final_obs"]`` holds their last
    observation and ``info["episode_return"]`` / ``info["episode_length"]`` their totals.
    """

    num_envs: int
    observation_dim: int
    action_dim: int
    single_action_space: Any

    def reset(self, seed: int | None = None) -> tuple[NDArray[np.float32], dict[str, Any]]: ...

    def step(
        self, actions: NDArray[np.float32]
    ) -> tuple[
        NDArray[np.float32], NDArray[np.float64], NDArray[np.bool_], NDArray[np.bool_], dict[str, Any]
    ]: ...


def resolve_device(spec: str) -> torch.device:
    """The torch device of a ``PPOConfig.device`` spec: ``"auto"`` is CUDA when available, else CPU.

    Raises ``InvalidInputError`` for a CUDA device on a machine without CUDA.
    """
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec.startswith("cuda") and not torch.cuda.is_available():
        raise InvalidInputError(f"device {spec!r} requested but CUDA is not available")
    return torch.device(spec)


def _compiled(fn: Callable[..., Any]) -> Any:
    """``fn`` under ``torch.compile`` with static shapes and Inductor's C++ wrapper (CPU-friendly)."""
    return torch.compile(fn, dynamic=False, options={"cpp_wrapper": True})


class PPOAgent:
    """PPO actor-critic agent: rollout collection, GAE, clipped updates, fast inference, save/load.

    Parameters
    ----------
    state_dim : observation length.
    action_dim : action length (assets + cash for the portfolio env).
    config : hyperparameters; ``config.device`` picks CPU or CUDA.

    Examples
    --------
    >>> agent = PPOAgent(4, 3, PPOConfig(device="cpu", seed=1))
    >>> agent.select_action(np.zeros(4, dtype=np.float32)).shape
    (3,)
    """

    def __init__(self, state_dim: int, action_dim: int, config: PPOConfig | None = None) -> None:
        cfg = config if config is not None else PPOConfig()
        self.config, self.obs_dim, self.action_dim = cfg, int(state_dim), int(action_dim)
        self.device = resolve_device(cfg.device)
        init_gen = torch.Generator().manual_seed(cfg.seed)
        self.network = ActorCriticNetwork(
            state_dim, action_dim, cfg.hidden_sizes, cfg.init_log_std, cfg.dropout, generator=init_gen
        ).to(self.device)
        self.optimizer = adam(list(self.network.parameters()), cfg.learning_rate)
        self.use_amp = cfg.amp and self.device.type == "cuda"
        # the hand-derived gradient (rl/ppo/gradients.py) unless asked for autograd; AMP's autocast
        # and loss scaling need autograd
        self.analytic = cfg.analytic_gradients and not self.use_amp
        actor, critic = self.network.linear_params()  # the live parameters, looked up once
        params = [*[p for layer in actor for p in layer], *[p for layer in critic for p in layer]]
        self._analytic_params = (actor, critic, [*params, self.network.actor_logstd])
        # opt-in (docs/performance.md): Inductor fuses the elementwise work into C++ kernels called
        # from a C++ wrapper, for ~10-20 s of compilation on first use
        self._loss = _compiled(ppo_loss) if cfg.torch_compile and not self.analytic else ppo_loss
        self._gradients = _compiled(ppo_gradients) if cfg.torch_compile and self.analytic else ppo_gradients
        self.scaler = grad_scaler(self.device.type, self.use_amp)
        self.obs_rms = RunningMeanStd((self.obs_dim,))
        self.buffer = RolloutBuffer(cfg.num_steps, cfg.num_envs, self.obs_dim, self.action_dim)
        self.torch_generator = torch.Generator(device=self.device).manual_seed(cfg.seed)
        self.rng = np.random.default_rng(cfg.seed)  # minibatch shuffles
        self.inference_rng = np.random.default_rng(cfg.seed + 1)  # stochastic / MC-dropout inference
        self._dropout = RunnerCache()
        self.global_step = 0  # environment steps collected over the agent's life
        self.num_updates = 0  # PPO updates over the agent's life
        self.schedule = (0, max(1, cfg.total_timesteps // cfg.batch_size))  # (first update, length)
        self._next_obs: NDArray[np.float32] | None = None
        self._env_id: int | None = None
        self._policy: NumpyPolicy | None = None
        self._policy_key: tuple[int, ...] = ()
        self._policy_net: ActorCriticNetwork | None = None
        self._policy_params: tuple[torch.Tensor, ...] = ()

    # -- inference -------------------------------------------------------------------------------
    def _inference_policy(self) -> NumpyPolicy:
        """The NumPy snapshot of the actor, rebuilt when any weight or statistic has changed."""
        if self.network is not self._policy_net:  # a replaced network has new parameter objects
            self._policy_net, self._policy = self.network, None
            self._policy_params = tuple(self.network.parameters())
        # every in-place change (optimizer step, load_state_dict, no_grad edits) bumps _version
        key = (self.obs_rms.version, *[p._version for p in self._policy_params])
        if self._policy is None or key != self._policy_key:
            rms = self.obs_rms if self.config.norm_obs else None
            self._policy = self.network.numpy_policy(rms, self.config.obs_clip)
            self._policy_key = key
        return self._policy

    def _check_obs(self, obs: NDArray[np.floating] | Any) -> NDArray[np.float64]:
        return check_obs(obs, self.obs_dim)

    def select_action(self, obs: NDArray[np.floating], deterministic: bool = True) -> NDArray[np.float32]:
        """Action for one observation ``(obs_dim,)`` or a batch ``(n, obs_dim)``.

        Deterministic: the policy mean with dropout off (what the allocator trades on); otherwise a
        Gaussian sample. Observations are normalised with the frozen training statistics. Runs in
        NumPy, ~15 us for one observation; the env's softmax turns the vector into weights.
        """
        x, policy = self._check_obs(obs), self._inference_policy()
        if deterministic:
            return policy.mean_action(x)
        return policy.sample_action(x, self.inference_rng)

    def select_action_with_uncertainty(
        self, obs: NDArray[np.floating], n_samples: int = 10
    ) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        """Deterministic action and its MC-dropout standard deviation over ``n_samples`` masks.

        The action equals :meth:`select_action`'s (uncertainty never moves the decision); the std is
        0 when the network has no dropout.
        """
        if n_samples < 1:
            raise InvalidInputError(f"n_samples must be >= 1, got {n_samples}")
        # one observation: the buffered runner (rl/ppo/dropout_kernels.py), bit for bit the same
        return self._dropout.mc_dropout(
            self._inference_policy(), self._check_obs(obs), n_samples, self.inference_rng
        )

    # -- rollout ---------------------------------------------------------------------------------
    def _normalize(self, obs: NDArray[np.floating]) -> NDArray[np.float32]:
        if not self.config.norm_obs:
            return np.asarray(obs, dtype=np.float32)
        return self.obs_rms.normalize(obs, self.config.obs_clip)

    def _values(self, obs: NDArray[np.float32]) -> NDArray[np.float64]:
        if self.device.type == "cpu":
            return self.network.rollout_sampler().value(obs).astype(np.float64)
        with torch.inference_mode():
            value = self.network.get_value(torch.as_tensor(obs, device=self.device))
        return value.double().cpu().numpy()

    def _act(
        self, obs: NDArray[np.float32], sampler: RolloutSampler | None
    ) -> tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.float64]]:
        """``(action, log_prob, value)`` of a batch of normalised observations under the current policy.

        On CPU (``sampler`` given) the forward pass runs in NumPy on views of the weights; the noise is
        drawn from ``torch_generator`` in both paths, so the seeded sequence of draws is the same.
        """
        if sampler is not None:
            noise = torch.randn((obs.shape[0], self.action_dim), generator=self.torch_generator).numpy()
            action, logp, value = sampler.sample(obs, noise)
            return action, logp, value.astype(np.float64)
        with torch.inference_mode():
            action_t, logp_t, _, value_t = self.network.get_action_and_value(
                torch.as_tensor(obs, device=self.device), generator=self.torch_generator
            )
        return action_t.cpu().numpy(), logp_t.cpu().numpy(), value_t.double().cpu().numpy()

    def collect_rollout(self, vec_env: VectorEnv) -> Stats:
        """Fill the buffer with ``num_steps`` steps of every env and compute GAE; return episode stats.

        The env is reset (with ``config.seed``) on first use and whenever a different env object is
        passed; otherwise collection continues where the previous rollout stopped.
        """
        cfg, buf = self.config, self.buffer
        if vec_env.num_envs != cfg.num_envs or vec_env.observation_dim != self.obs_dim:
            raise InvalidInputError(
                f"vec_env has num_envs={vec_env.num_envs}, observation_dim={vec_env.observation_dim}; "
                f"the agent expects {cfg.num_envs} and {self.obs_dim}"
            )
        if self._next_obs is None or self._env_id not in (None, id(vec_env)):
            self._next_obs, _ = vec_env.reset(seed=cfg.seed)
        self._env_id = id(vec_env)
        space = vec_env.single_action_space
        low, high = np.asarray(space.low, np.float32), np.asarray(space.high, np.float32)
        buf.reset()
        sampler = self.network.rollout_sampler() if self.device.type == "cpu" else None
        raw_obs = self._next_obs
        returns: list[float] = []
        lengths: list[float] = []
        for _ in range(cfg.num_steps):
            if cfg.norm_obs:  # merge the statistics, then normalise with them (one kernel)
                obs = self.obs_rms.update_normalize(raw_obs, cfg.obs_clip)
            else:
                obs = self._normalize(raw_obs)
            action, logp, value = self._act(obs, sampler)
            raw_obs, reward, terminated, truncated, info = vec_env.step(np.clip(action, low, high))
            final_values = np.zeros(cfg.num_envs)
            if truncated.any():  # bootstrap from the last real observation, not the reset one
                final_values[truncated] = self._values(self._normalize(info["final_obs"][truncated]))
            buf.add(obs, action, logp, value, reward, terminated, truncated, final_values)
            done = terminated | truncated
            if done.any():
                returns += np.asarray(info["episode_return"])[done].tolist()
                lengths += np.asarray(info["episode_length"])[done].tolist()
            self.global_step += cfg.num_envs
        self._next_obs = raw_obs
        buf.compute_returns_and_advantage(self._values(self._normalize(raw_obs)), cfg.gamma, cfg.gae_lambda)
        return {
            "episodes": float(len(returns)),
            "episode_return_mean": float(np.mean(returns)) if returns else float("nan"),
            "episode_length_mean": float(np.mean(lengths)) if lengths else float("nan"),
        }

    # -- update ----------------------------------------------------------------------------------
    def _accumulate_gradients(self, mb: RolloutBatch) -> torch.Tensor:
        """Zero the gradients, then backpropagate the PPO loss of ``mb`` in ``grad_accum_steps`` slices.

        Each slice's loss is weighted by its share of the minibatch, so the accumulated gradient is
        the gradient of the whole minibatch's mean loss. Returns the minibatch's loss statistics as
        one detached tensor in :data:`LOSS_STATS` order (read by the caller once per update).
        """
        cfg, n = self.config, len(mb)
        k = min(cfg.grad_accum_steps, n)
        if not (self.analytic and k == 1):  # one analytic slice assigns every gradient
            self.optimizer.zero_grad(set_to_none=True)
        advantages = mb.advantages
        # per minibatch, over the whole minibatch (not per slice); one row has no standard deviation
        # (its normalised advantage would be NaN, and so every weight): left as it is, as SB3 does
        if cfg.norm_adv and n > 1:
            advantages = normalize_advantages(advantages)
        if self.analytic:
            return self._analytic_gradients(mb, advantages, k)
        if k == 1 and not self.use_amp:  # the common case: one backward, no scaling by a share of 1
            loss, stats = self._loss(self.network, mb, advantages, cfg)
            torch.autograd.backward(loss)
            return torch.stack(stats)
        totals = torch.zeros(len(LOSS_STATS), device=self.device)
        bounds = np.cumsum([0, *[n // k + (i < n % k) for i in range(k)]])  # torch.tensor_split's sizes
        for lo, hi in itertools.pairwise(bounds.tolist()):  # slices are views: no copies per micro-batch
            share = (hi - lo) / n
            with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.use_amp):
                loss, stats = self._loss(self.network, mb[lo:hi], advantages[lo:hi], cfg)
            torch.autograd.backward(self.scaler.scale(loss * share))
            totals += share * torch.stack(stats)
        return totals

    @torch.no_grad()
    def _analytic_gradients(self, mb: RolloutBatch, advantages: torch.Tensor, k: int) -> torch.Tensor:
        """:meth:`_accumulate_gradients` with the gradient of :func:`ppo_gradients` (no autograd).

        With ``k`` micro-batches, each slice's gradient is weighted by its share of the minibatch,
        as the autograd path weights each slice's loss.
        """
        cfg, net = self.config, self.network
        actor, critic, params = self._analytic_params
        n = len(mb)
        bounds = [0, n] if k == 1 else np.cumsum([0, *[n // k + (i < n % k) for i in range(k)]]).tolist()
        totals: torch.Tensor | None = None
        for lo, hi in itertools.pairwise(bounds):  # torch.tensor_split's sizes
            part = mb if k == 1 else mb[lo:hi]
            stats, actor_grads, critic_grads, log_std_grad = self._gradients(
                actor, critic, net.actor_logstd, part.obs, part.actions, part.log_probs, part.values,
                part.returns, advantages if k == 1 else advantages[lo:hi],
                cfg.clip_coef, cfg.ent_coef, cfg.vf_coef, cfg.clip_vloss,
            )  # fmt: skip
            grads = [
                *[g for layer in actor_grads for g in layer],
                *[g for layer in critic_grads for g in layer],
            ]
            grads.append(log_std_grad)
            if k == 1:
                for p, g in zip(params, grads, strict=True):
                    p.grad = g
                return stats
            share = (hi - lo) / n
            for p, g in zip(params, grads, strict=True):
                p.grad = g * share if p.grad is None else p.grad.add_(g, alpha=share)
            totals = share * stats if totals is None else totals + share * stats
        assert totals is not None
        return totals

    def _optimizer_step(self) -> None:
        """Clip the global gradient norm to ``max_grad_norm`` and take one Adam step.

        The clip is ``torch.nn.utils.clip_grad_norm_``'s arithmetic bit for bit (per-tensor norms, the
        norm of those, ``grad *= min(1, max_norm / (norm + 1e-6))``; :func:`optim.clip_grad_norm_`) on
        the optimizer's own parameter list, without its per-call grouping and checks.
        """
        if self.use_amp:
            self.scaler.unscale_(self.optimizer)
        grads = [p.grad for p in self.optimizer.param_groups[0]["params"] if p.grad is not None]
        clip_grad_norm_(grads, self.config.max_grad_norm)
        if self.use_amp:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        elif not fused_adam_step(self.optimizer):  # the fused kernel without Optimizer.step's Python
            self.optimizer.step()

    def current_learning_rate(self) -> float:
        """Learning rate of the next update: linear decay over the current schedule when annealing."""
        if not self.config.anneal_lr:
            return self.config.learning_rate
        start, length = self.schedule
        frac = max(0.0, 1.0 - (self.num_updates - start) / length)
        return frac * self.config.learning_rate

    def update(self) -> Stats:
        """One PPO update on the collected rollout; returns the mean statistics of its minibatches.

        Keys: ``policy_loss``, ``value_loss``, ``entropy``, ``approx_kl``, ``clipfrac``,
        ``explained_variance``, ``lr``, ``epochs_run``, ``optimizer_steps``, ``early_stop``.
        """
        cfg = self.config
        assert self.buffer.full, "update() needs a full rollout; call collect_rollout() first"
        lr = self.current_learning_rate()
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        batch = self.buffer.get(self.device)
        sums = torch.zeros(len(LOSS_STATS), device=self.device)
        minibatches = epochs_run = steps = 0
        early_stop = False
        for _epoch in range(cfg.update_epochs):
            epochs_run += 1
            shuffled = batch.gather(torch.as_tensor(self.rng.permutation(len(batch)), device=self.device))
            for start in range(0, len(batch), cfg.minibatch_size):  # contiguous views of one gather
                stats = self._accumulate_gradients(shuffled[start : start + cfg.minibatch_size])
                minibatches += 1
                sums += stats
                if cfg.target_kl is not None and float(stats[_KL]) > cfg.target_kl:
                    early_stop = True  # stop before this step moves the policy further away
                    break
                self._optimizer_step()
                steps += 1
            if early_stop:
                log.debug(
                    "ppo_early_stop", epoch=epochs_run, approx_kl=float(stats[_KL]), target_kl=cfg.target_kl
                )
                break
        self.num_updates += 1
        y_true, y_pred = self.buffer.returns, self.buffer.values
        var_y = float(np.var(y_true))
        explained_var = float("nan") if var_y == 0 else 1.0 - float(np.var(y_true - y_pred)) / var_y
        out = dict(zip(LOSS_STATS, (sums / minibatches).tolist(), strict=True))
        out |= {"explained_variance": explained_var, "lr": lr, "epochs_run": float(epochs_run),
                "optimizer_steps": float(steps), "early_stop": float(early_stop)}  # fmt: skip
        return out

    def train(
        self,
        vec_env: VectorEnv,
        total_timesteps: int | None = None,
        callback: Callable[[int, Stats], bool | None] | None = None,
        *,
        reset_num_timesteps: bool = True,
    ) -> list[Stats]:
        """Collect-and-update for ``total_timesteps`` environment steps; return per-update stats.

        Parameters
        ----------
        vec_env : the vector environment (``VectorTradingEnv`` or anything with its interface).
        total_timesteps : steps of this run (default ``config.total_timesteps``), rounded down to
            whole rollouts (at least one). The learning rate anneals over this run.
        callback : ``callback(update_idx, stats)`` after every update (``update_idx`` counts from 1
            within the run); a truthy return value stops training.
        reset_num_timesteps : True starts a new run (new LR schedule); False continues the schedule
            of a restored :meth:`state_dict` up to its end (resuming from a checkpoint).

        Each stats dict holds :meth:`update`'s keys plus ``update``, ``global_step``, ``episodes``,
        ``episode_return_mean``, ``episode_length_mean`` (NaN when no episode ended) and ``sps``.
        """
        if reset_num_timesteps:  # 0 or a negative count was silently one whole update
            steps = (
                self.config.total_timesteps
                if total_timesteps is None
                else check_positive_int(total_timesteps, "total_timesteps")
            )
            self.schedule = (self.num_updates, max(1, steps // self.config.batch_size))
        start, length = self.schedule
        history: list[Stats] = []
        while self.num_updates < start + length:
            t0 = time.perf_counter()
            stats = self.collect_rollout(vec_env)
            stats |= self.update()
            elapsed = time.perf_counter() - t0
            stats |= {"update": float(self.num_updates - start), "global_step": float(self.global_step),
                      "sps": self.config.batch_size / elapsed}  # fmt: skip
            history.append(stats)
            log.info("ppo_update", **stats)
            if callback is not None and callback(self.num_updates - start, stats):
                log.info("ppo_training_stopped_by_callback", update=self.num_updates - start)
                break
        return history

    # -- checkpoints and model files --------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue training bit for bit (tensors, arrays and plain values).

        Network, optimizer, grad scaler, observation statistics, the three RNG states, progress
        counters, the LR schedule and the pending observation of the vector env. Training
        checkpoints (:mod:`advanced_risk.training.checkpoint`) store it; restore the environment's
        own state alongside it.
        """
        next_obs = self._next_obs
        return {
            "obs_dim": self.obs_dim,
            "action_dim": self.action_dim,
            "config": self.config.to_dict(),
            "network": self.network.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "obs_rms": self.obs_rms.state_dict(),
            "rng": {
                "torch": self.torch_generator.get_state(),
                "numpy": self.rng.bit_generator.state,
                "inference": self.inference_rng.bit_generator.state,
            },
            "progress": {
                "global_step": self.global_step,
                "num_updates": self.num_updates,
                "schedule": list(self.schedule),
            },
            "next_obs": None if next_obs is None else np.array(next_obs),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`; dims must match this agent's (else ``InvalidInputError``)."""
        if (state["obs_dim"], state["action_dim"]) != (self.obs_dim, self.action_dim):
            raise InvalidInputError(
                f"state has obs_dim={state['obs_dim']}, action_dim={state['action_dim']}; "
                f"this agent has {self.obs_dim}, {self.action_dim}"
            )
        self.network.load_state_dict(state["network"])
        # the saved groups carry the saving machine's Adam implementation (fused or foreach); this
        # torch keeps the one it was built with (no fused CPU Adam before torch 2.4)
        implementation = {k: self.optimizer.param_groups[0].get(k) for k in ("fused", "foreach")}
        # torch's load keeps the given state tensors (no copy): two agents loading one state would
        # then step each other's moments
        self.optimizer.load_state_dict(copy.deepcopy(state["optimizer"]))
        for group in self.optimizer.param_groups:
            group.update(implementation)
        self.scaler.load_state_dict(state["scaler"])
        self.obs_rms.load_state_dict(state["obs_rms"])
        self.torch_generator.set_state(state["rng"]["torch"])
        self.rng.bit_generator.state = state["rng"]["numpy"]
        self.inference_rng.bit_generator.state = state["rng"]["inference"]
        progress = state["progress"]
        self.global_step, self.num_updates = int(progress["global_step"]), int(progress["num_updates"])
        self.schedule = (int(progress["schedule"][0]), int(progress["schedule"][1]))
        next_obs = state["next_obs"]
        self._next_obs = None if next_obs is None else np.asarray(next_obs, dtype=np.float32).copy()
        self._env_id = None  # continue with whichever (restored) env is passed next

    def save(self, path: str | os.PathLike[str], metadata: dict[str, Any] | None = None) -> str:
        """Write the policy (network + observation statistics) atomically; return its SHA-256.

        Format: :mod:`advanced_risk.rl.ppo.io` (safetensors arrays, JSON header); ``metadata`` (JSON
        values) is stored in the header under ``"user"`` next to dims, config and versions.
        """
        digest = write_policy_file(
            path,
            network={k: v.detach().cpu().numpy() for k, v in self.network.state_dict().items()},
            obs_rms=self.obs_rms.state_dict(),
            obs_dim=self.obs_dim,
            action_dim=self.action_dim,
            config=self.config,
            global_step=self.global_step,
            num_updates=self.num_updates,
            user=metadata,
        )
        log.info(
            "model_saved", path=str(path), sha256=digest, obs_dim=self.obs_dim, action_dim=self.action_dim
        )
        return digest

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        map_location: str | torch.device = "cpu",
        *,
        expected_obs_dim: int | None = None,
        expected_action_dim: int | None = None,
    ) -> Self:
        """Load a policy saved by :meth:`save` onto ``map_location``.

        Raises
        ------
        ModelLoadError
            Missing, truncated or corrupt file (SHA-256 mismatch), unknown format, a file of another
            kind, dims different from ``expected_obs_dim`` / ``expected_action_dim``, or weights that
            do not fit the stored config.
        """
        stored = read_policy_file(
            path, expected_obs_dim=expected_obs_dim, expected_action_dim=expected_action_dim
        )
        return cls.from_policy_file(stored, map_location, path)

    @classmethod
    def from_policy_file(
        cls, stored: PolicyFile, map_location: str | torch.device, path: str | os.PathLike[str]
    ) -> Self:
        """A new agent on ``map_location`` with the weights, statistics and counters of ``stored``.

        Raises ``ModelLoadError`` (naming ``path``) when the weights do not fit the stored config.
        """
        try:
            device = str(torch.device(map_location))
            config = PPOConfig.from_dict({**stored.config.to_dict(), "device": device})
            agent = cls(stored.obs_dim, stored.action_dim, config)
            agent.network.load_state_dict({k: torch.from_numpy(v) for k, v in stored.network.items()})
            agent.obs_rms.load_state_dict(
                {"mean": stored.obs_mean, "var": stored.obs_var, "count": stored.obs_count}
            )
            agent.global_step, agent.num_updates = stored.global_step, stored.num_updates
        except (ConfigError, KeyError, RuntimeError, TypeError, ValueError) as exc:
            raise ModelLoadError(f"model file {path} does not match this PPOAgent: {exc}") from exc
        log.info("model_loaded", path=str(path), obs_dim=stored.obs_dim, action_dim=stored.action_dim)
        return agent
