"""The actor-critic network of the PPO allocator, with Monte-Carlo-dropout uncertainty.

Two separate tanh MLPs (CleanRL's ``ppo_continuous_action`` layout): the actor maps an observation to
the mean of a diagonal Gaussian over unconstrained action vectors (the environment turns them into
portfolio weights with a softmax), the critic maps it to a state value. The log standard deviation is
a state-independent parameter that starts below 0 (std = exp(-0.5) ~ 0.61), so early policies do not
thrash the portfolio.

Dropout and PPO
---------------
Dropout is applied *only when asked for explicitly* (``mc_dropout=True``, used by :meth:`predict`),
never through ``train()``/``eval()``. PPO's probability ratio ``pi_new(a|s) / pi_old(a|s)`` must
compare log-probabilities of one and the same function of the weights; with dropout active while
collecting or updating, every forward pass would draw a different mask, the ratio would differ from 1
before any update, and clipping would fire on noise. So the policy distribution (collection, update
and deterministic inference) always uses the full network, and dropout serves only MC-dropout
uncertainty: ``predict`` runs ``n_samples`` masked copies of the observation in one batched forward
pass and reports the mean and the standard deviation of the action means. Because the weights are
not trained under dropout, that standard deviation measures how sensitive the decision is to losing
10% of the actor's units (large off the training distribution), not a calibrated posterior.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import cast

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn
from torch.nn import functional as F

from advanced_risk.errors import InvalidInputError
from advanced_risk.rl.ppo.inference import NumpyPolicy
from advanced_risk.rl.ppo.kernels import HALF_LOG_2PI, gaussian_sample_kernel
from advanced_risk.rl.ppo.normalize import RunningMeanStd

__all__ = ["HALF_LOG_2PI", "ActorCriticNetwork", "RolloutSampler", "layer_init", "mlp_forward"]


def layer_init(
    layer: nn.Linear,
    std: float = math.sqrt(2),
    bias_const: float = 0.0,
    generator: torch.Generator | None = None,
) -> nn.Linear:
    """Orthogonal weights with gain ``std`` and constant bias (CleanRL's ``layer_init``)."""
    nn.init.orthogonal_(layer.weight, std, generator=generator)
    nn.init.constant_(layer.bias, bias_const)
    return layer


def mlp_forward(x: torch.Tensor, linears: Sequence[nn.Linear]) -> torch.Tensor:
    """``x`` through ``linears`` with tanh between them (none after the last), as plain functional calls.

    The same arithmetic as an ``nn.Sequential`` of ``Linear`` and ``Tanh`` modules without the
    per-module call overhead (hooks, dispatch), which is most of a small MLP's cost on CPU.
    """
    *hidden, head = linears
    for layer in hidden:
        x = torch.tanh(F.linear(x, layer.weight, layer.bias))
    return F.linear(x, head.weight, head.bias)


F32 = NDArray[np.float32]
Layers = tuple[tuple[F32, F32], ...]


def numpy_mlp(x: F32, layers: Layers) -> F32:
    """``x`` through ``(weight, bias)`` pairs (``x @ weight.T + bias``) with tanh between them, in NumPy."""
    *hidden, (w, b) = layers
    for w_h, b_h in hidden:
        x = np.tanh(x @ w_h.T + b_h)
    out: F32 = x @ w.T + b
    return out


@dataclass(frozen=True, slots=True)
class RolloutSampler:
    """The policy and value of a CPU :class:`ActorCriticNetwork` in NumPy, for rollout collection.

    The arrays are views of the live parameters (no copies), so they follow every in-place update
    of the weights. A few rows through three small layers cost ~10 us in NumPy against ~100 us of
    torch dispatch; the Gaussian noise still comes from the caller's torch generator, so a seed
    gives the same sequence of draws as the torch path. The maths is
    :meth:`ActorCriticNetwork.get_action_and_value`'s in float32, equal to it up to rounding.
    """

    actor: Layers
    critic: Layers
    log_std: F32
    """``(1, action_dim)``."""

    def value(self, obs: F32) -> F32:
        """``V(obs)``, shape ``(batch,)``."""
        return numpy_mlp(obs, self.critic)[:, 0]

    def sample(self, obs: F32, noise: F32) -> tuple[F32, F32, F32]:
        """``(action, log_prob, value)`` with ``action = mean + exp(log_std) * noise``."""
        action, log_prob = gaussian_sample_kernel(numpy_mlp(obs, self.actor), self.log_std, noise)
        return action, log_prob, self.value(obs)


def mlp_linears(sizes: Sequence[int], head_std: float, generator: torch.Generator | None) -> list[nn.Linear]:
    """Linear layers ``sizes[0] -> ... -> sizes[-1]``: hidden gain sqrt(2), head gain ``head_std``."""
    layers = [layer_init(nn.Linear(a, b), math.sqrt(2), generator=generator) for a, b in pairwise(sizes[:-1])]
    layers.append(layer_init(nn.Linear(sizes[-2], sizes[-1]), head_std, generator=generator))
    return layers


class ActorCriticNetwork(nn.Module):
    """Separate MLP actor and critic, diagonal Gaussian policy, optional MC dropout in the actor.

    Parameters
    ----------
    obs_dim : length of an observation vector.
    action_dim : length of an action vector (assets + cash for the portfolio env).
    hidden_sizes : widths of the hidden layers of both MLPs.
    init_log_std : initial value of the state-independent log standard deviation (default -0.5).
    dropout : dropout probability after each hidden layer of the actor, used by :meth:`predict`
        only (see the module docstring); 0 disables MC dropout.
    generator : torch generator for the orthogonal initialisation (reproducible weights without
        touching the global RNG); None uses the global RNG.

    Notes
    -----
    All methods take float32 observations of shape ``(batch, obs_dim)``; :meth:`predict` and
    :meth:`forward` also take a single ``(obs_dim,)`` vector. Global torch settings (threads,
    default dtype) are left to the caller.

    Examples
    --------
    >>> net = ActorCriticNetwork(4, 3, generator=torch.Generator().manual_seed(0))
    >>> a, logp, ent, v = net.get_action_and_value(torch.zeros(2, 4))
    >>> tuple(a.shape), tuple(logp.shape), tuple(v.shape)
    ((2, 3), (2,), (2,))
    """

    def __init__(
        self,
        obs_dim: int,
        action_dim: int,
        hidden_sizes: Sequence[int] = (64, 64),
        init_log_std: float = -0.5,
        dropout: float = 0.1,
        *,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if obs_dim < 1 or action_dim < 1:
            raise InvalidInputError(f"obs_dim and action_dim must be >= 1, got {obs_dim}, {action_dim}")
        if len(hidden_sizes) < 1 or min(hidden_sizes) < 1:
            raise InvalidInputError(f"hidden_sizes must be positive integers, got {tuple(hidden_sizes)}")
        if not 0.0 <= dropout < 1.0:
            raise InvalidInputError(f"dropout must be in [0, 1), got {dropout}")
        self.obs_dim = int(obs_dim)
        self.action_dim = int(action_dim)
        self.hidden_sizes = tuple(int(h) for h in hidden_sizes)
        self.dropout = float(dropout)
        sizes = (self.obs_dim, *self.hidden_sizes)
        # nn.Linear's default init draws from the global RNG before layer_init overwrites it; with
        # our own generator, fork the global RNG so constructing a network leaves it untouched
        with torch.random.fork_rng(devices=[], enabled=generator is not None):
            critic_layers = mlp_linears((*sizes, 1), 1.0, generator)
            actor_layers = mlp_linears((*sizes, self.action_dim), 0.01, generator)
        critic: list[nn.Module] = []
        for layer in critic_layers:
            critic += [layer, nn.Tanh()]
        self.critic = nn.Sequential(*critic[:-1])  # no tanh after the value head
        self.actor_layers = nn.ModuleList(actor_layers)
        self.actor_logstd = nn.Parameter(torch.full((1, self.action_dim), float(init_log_std)))

    # -- the policy ------------------------------------------------------------------------------
    def _actor_linears(self) -> Sequence[nn.Linear]:
        return cast("Sequence[nn.Linear]", self.actor_layers)

    def _critic_linears(self) -> Sequence[nn.Linear]:
        return [m for m in self.critic if isinstance(m, nn.Linear)]

    def linear_params(
        self,
    ) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], list[tuple[torch.Tensor, torch.Tensor]]]:
        """The actor's and the critic's ``(weight, bias)`` per linear layer, input first (the live
        parameters, not copies)."""
        return (
            [(lin.weight, lin.bias) for lin in self._actor_linears()],
            [(lin.weight, lin.bias) for lin in self._critic_linears()],
        )

    def action_mean(self, obs: torch.Tensor, mc_dropout: bool = False) -> torch.Tensor:
        """Mean of the Gaussian policy; ``mc_dropout=True`` applies dropout after each hidden layer."""
        if not (mc_dropout and self.dropout > 0.0):
            return mlp_forward(obs, self._actor_linears())
        x = obs
        *hidden, head = self.actor_layers
        for layer in hidden:
            x = torch.tanh(layer(x))
            if mc_dropout and self.dropout > 0.0:
                x = F.dropout(x, self.dropout, training=True)
        out: torch.Tensor = head(x)
        return out

    def get_value(self, obs: torch.Tensor) -> torch.Tensor:
        """State values, shape ``(batch,)``."""
        return mlp_forward(obs, self._critic_linears()).squeeze(-1)

    def get_action_and_value(
        self,
        obs: torch.Tensor,
        action: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Sample (or score) actions: returns ``(action, log_prob, entropy, value)``.

        The policy distribution is :meth:`sample_or_score`'s around :meth:`action_mean` (dropout off),
        the value :meth:`get_value`'s.
        """
        action, log_prob, entropy = self.sample_or_score(self.action_mean(obs), action, generator)
        return action, log_prob, entropy, self.get_value(obs)

    def sample_or_score(
        self, mean: torch.Tensor, action: torch.Tensor | None = None, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The diagonal Gaussian policy around the actor's output: ``(action, log_prob, entropy)``.

        ``log_prob`` and ``entropy`` are summed over action dimensions, shape ``(batch,)``. With
        ``action=None`` a new action is drawn as ``mean + std * N(0, 1)`` from ``generator`` (the
        global RNG when None); otherwise the given actions are scored (PPO's update).
        """
        # the (1, action_dim) log-std broadcasts over the batch: every row gets the same numbers as
        # an expanded copy would, with the exp and the entropy computed once instead of per row
        log_std = self.actor_logstd
        if action is None:
            noise = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
            action = mean + log_std.exp() * noise
        # diagonal Gaussian: log N(a; mu, sigma) = -(a - mu)^2 / (2 sigma^2) - log sigma - log(2 pi) / 2
        z = (action - mean) * torch.exp(-log_std)
        log_prob = (-0.5 * z.pow(2) - log_std - HALF_LOG_2PI).sum(-1)
        entropy = (0.5 + HALF_LOG_2PI + log_std).sum(-1).expand(mean.shape[:-1])
        return action, log_prob, entropy

    def rollout_sampler(self) -> RolloutSampler:
        """NumPy views of the policy and value parameters (CPU networks only, see :class:`RolloutSampler`)."""

        def layers(linears: Sequence[nn.Linear]) -> Layers:
            return tuple((lin.weight.detach().numpy(), lin.bias.detach().numpy()) for lin in linears)

        return RolloutSampler(
            layers(self._actor_linears()), layers(self._critic_linears()), self.actor_logstd.detach().numpy()
        )

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """Deterministic action: the policy mean with dropout off (what inference acts on)."""
        return self.action_mean(obs)

    def numpy_policy(self, obs_rms: RunningMeanStd | None, obs_clip: float, eps: float = 1e-8) -> NumpyPolicy:
        """A NumPy snapshot of the actor (and of ``obs_rms``; None: observations not normalised).

        The same conversion as reading the weights from a model file
        (:meth:`NumpyPolicy.from_state_dict`), so a saved and reloaded actor acts bit for bit alike.
        """
        state = {
            name: tensor.detach().cpu().numpy()
            for name, tensor in self.state_dict().items()
            if name.startswith(("actor_layers.", "actor_logstd"))
        }
        return NumpyPolicy.from_state_dict(
            state,
            dropout=self.dropout,
            obs_mean=None if obs_rms is None else obs_rms.mean,
            obs_var=None if obs_rms is None else obs_rms.var,
            obs_clip=obs_clip,
            eps=eps,
        )

    # -- MC-dropout uncertainty ------------------------------------------------------------------
    @torch.no_grad()
    def predict(self, obs: torch.Tensor, n_samples: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
        """Monte-Carlo-dropout mean action and its per-dimension standard deviation.

        The observations are repeated ``n_samples`` times and pushed through the actor in one
        forward pass with dropout active; the result is the mean and population standard deviation
        over the samples. With ``dropout == 0`` or ``n_samples == 1`` every sample is the same, so
        the deterministic mean and an exact zero std are returned.

        Parameters
        ----------
        obs : ``(batch, obs_dim)`` or ``(obs_dim,)`` float32 observations.
        n_samples : number of dropout masks, >= 1.

        Returns
        -------
        (mean_action, std), both shaped like the action for ``obs``.
        """
        if n_samples < 1:
            raise InvalidInputError(f"n_samples must be >= 1, got {n_samples}")
        single = obs.dim() == 1
        x = obs.unsqueeze(0) if single else obs
        if self.dropout == 0.0 or n_samples == 1:
            mean = self.action_mean(x)
            std = torch.zeros_like(mean)
        else:
            batch = x.shape[0]
            samples = self.action_mean(x.repeat(n_samples, 1), mc_dropout=True)
            samples = samples.reshape(n_samples, batch, self.action_dim)
            mean = samples.mean(dim=0)
            std = samples.std(dim=0, correction=0)
        return (mean[0], std[0]) if single else (mean, std)
