"""PPO's objective for one (micro-)batch: clipped surrogate, value loss, entropy bonus.

``ppo_loss`` is a pure function of the network, the stored batch and already-normalised advantages,
written with the paper's names (Schulman et al. 2017, eq. 7 and 9) so each term is one visible line:

- ``ratio = exp(log pi_new(a|s) - log pi_old(a|s))``
- ``L_clip = mean(max(-A * ratio, -A * clip(ratio, 1 - eps, 1 + eps)))`` (minimised)
- ``L_value = 0.5 * mean((V - R)^2)``, or CleanRL's clipped variant around the old values
- ``loss = L_clip - ent_coef * entropy + vf_coef * L_value``
"""

from __future__ import annotations

import torch

from advanced_risk.config import PPOConfig
from advanced_risk.rl.ppo.buffer import RolloutBatch
from advanced_risk.rl.ppo.network import ActorCriticNetwork

__all__ = ["LOSS_STATS", "ppo_loss"]

LOSS_STATS = ("policy_loss", "value_loss", "entropy", "approx_kl", "clipfrac")
"""Names of the statistics returned next to the loss, in order."""


def ppo_loss(
    network: ActorCriticNetwork, batch: RolloutBatch, advantages: torch.Tensor, cfg: PPOConfig
) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
    """Total PPO loss of ``batch`` and its detached statistics (see :data:`LOSS_STATS`).

    Parameters
    ----------
    network : the actor-critic being optimised (dropout is never active here).
    batch : transitions with the collecting policy's log-probs and values.
    advantages : the batch's advantages, already normalised if ``cfg.norm_adv``.
    cfg : supplies ``clip_coef``, ``clip_vloss``, ``ent_coef``, ``vf_coef``.
    """
    clip = cfg.clip_coef
    _, new_logp, entropy, new_value = network.get_action_and_value(batch.obs, batch.actions)
    logratio = new_logp.float() - batch.log_probs
    ratio = logratio.exp()
    with torch.no_grad():
        approx_kl = ((ratio - 1) - logratio).mean()  # Schulman's low-variance k3 estimator
        clipfrac = ((ratio - 1.0).abs() > clip).float().mean()
    neg_adv = -advantages
    policy_loss = torch.max(neg_adv * ratio, neg_adv * ratio.clamp(1 - clip, 1 + clip)).mean()
    new_value = new_value.float()
    value_loss_unclipped = (new_value - batch.returns) ** 2
    if cfg.clip_vloss:
        value_clipped = batch.values + (new_value - batch.values).clamp(-clip, clip)
        value_loss = 0.5 * torch.max(value_loss_unclipped, (value_clipped - batch.returns) ** 2).mean()
    else:
        value_loss = 0.5 * value_loss_unclipped.mean()
    entropy_mean = entropy.float().mean()
    loss = policy_loss - cfg.ent_coef * entropy_mean + cfg.vf_coef * value_loss
    stats = (policy_loss.detach(), value_loss.detach(), entropy_mean.detach(), approx_kl, clipfrac)
    return loss, stats
