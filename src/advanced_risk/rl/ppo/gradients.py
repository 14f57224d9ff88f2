"""The PPO loss and its exact gradient, derived by hand: one update step without autograd.

:func:`~advanced_risk.rl.ppo.loss.ppo_loss` is the definition of the objective; this module computes
the same loss statistics and the gradient of the same total loss with respect to every parameter of
an :class:`~advanced_risk.rl.ppo.network.ActorCriticNetwork` (tanh MLP actor and critic, a
state-independent log-std), in ~25 tensor operations instead of autograd's ~40 recorded nodes and
their bookkeeping. On a 2-core CPU this is a third of the cost of a minibatch's forward and backward
(docs/performance.md, "Trainer"); the arithmetic is the same up to float32 rounding, so it is the
same algorithm, not a bit-for-bit copy (``tests/rl/test_ppo_gradients.py`` checks it against
autograd on random batches, ties, NaN and every option).

On CPU in float32 the matrix products stay torch's and the elementwise work runs on the tensors'
memory, where torch's per-operation dispatch (~5-10 us each on a 256-row minibatch) was most of the
cost: the hidden layers' tanh in NumPy, the loss head (:func:`_head_torch`, ~35 operations) and the
tanh layers' gradient in the numba kernels of :mod:`advanced_risk.rl.ppo.kernels`
(``tests/rl/test_ppo_kernels.py`` checks them against the torch expressions, which CUDA and
``torch.compile`` keep).

Notation for one minibatch of ``n`` rows, as in :mod:`advanced_risk.rl.ppo.loss`: ``mu`` the actor's
output, ``s`` the log-std, ``a`` the stored action, ``z = (a - mu) exp(-s)``,
``log pi = sum_j(-z_j^2 / 2 - s_j - log(2 pi) / 2)``, ``r = exp(log pi - log pi_old)``, ``A`` the
(normalised) advantages, ``eps`` the clip coefficient, ``v`` the critic's value, ``R`` the return.

- **Surrogate.** ``L_clip = mean(max(-A r, -A clip(r, 1 - eps, 1 + eps)))``. Its derivative in
  ``r_i`` is ``-A_i / n`` where the unclipped term is the larger (or they tie), else 0: where the
  clipped term is strictly larger, ``r`` is outside the clip range and the clamp passes no gradient.
  (Autograd splits a tie half and half between both terms; a tie with ``A != 0`` means ``r`` is in
  the range, where both halves are ``-A``.) Then ``d log pi / d mu_j = z_j exp(-s_j)`` and
  ``d log pi / d s_j = z_j^2 - 1``, each times ``d r / d log pi = r``.
- **Entropy.** ``entropy = sum_j(1/2 + log(2 pi) / 2 + s_j)`` on every row: ``d / d s_j = 1``.
- **Value.** ``L_v = mean((v - R)^2) / 2``, or with ``clip_vloss``
  ``mean(max((v - R)^2, (v_c - R)^2)) / 2`` with ``v_c = v_old + clip(v - v_old, -eps, eps)``. Its
  derivative in ``v_i`` is ``(v_i - R_i) / n`` where the unclipped term is the larger,
  ``(v_c - R_i) / n`` where the clipped one is and ``v - v_old`` is inside the range (there ``v_c``
  is ``v`` up to a rounding, so either term can be the larger), 0 where it is outside; a tie gives
  half of each, as autograd does.
- **Total.** ``loss = L_clip - ent_coef * entropy + vf_coef * L_v``.
- **Layers.** Backpropagation through ``x_k = tanh(x_(k-1) W_k^T + b_k)``: with ``delta_k`` the
  gradient at the pre-activation of layer ``k``, ``dW_k = delta_k^T x_(k-1)``,
  ``db_k = sum_rows delta_k``, ``delta_(k-1) = (delta_k W_k) * (1 - x_(k-1)^2)``.

NaN policy: a NaN anywhere in the minibatch propagates into the gradient, as with autograd (the
selections above are written so that a NaN comparison keeps the term that carries it).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from advanced_risk.rl.ppo.kernels import (
    normalized_advantages_kernel,
    ppo_head_kernel,
    tanh_grad_kernel,
    tanh_kernel,
)
from advanced_risk.rl.ppo.network import HALF_LOG_2PI

__all__ = ["Layer", "normalize_advantages", "ppo_gradients"]

Layer = tuple[torch.Tensor, torch.Tensor]
"""A linear layer's ``(weight, bias)``: ``weight`` is ``(out, in)``, as ``nn.Linear`` stores it."""

Head = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]
"""The loss head's ``(stats, d_mean, d_value, d_log_std, d_mean_sum, d_value_sum)``."""


_is_compiling = getattr(torch.compiler, "is_compiling", None) or torch._dynamo.is_compiling
"""True while ``torch.compile`` traces (``torch.compiler.is_compiling`` from torch 2.3 on)."""


def _in_numpy(*tensors: torch.Tensor) -> bool:
    """Whether the step runs these tensors' elementwise work in NumPy and numba on their memory:
    CPU float32 tensors, except while ``torch.compile`` traces the step (Inductor fuses its own).
    ``is_cpu`` and ``dtype is`` (dtypes are singletons): ~3 us for a step's 19 tensors, against ~12
    for ``device.type == "cpu"``, which builds a device object per tensor."""
    return not _is_compiling() and all(t.is_cpu and t.dtype is torch.float32 for t in tensors)


def normalize_advantages(advantages: torch.Tensor) -> torch.Tensor:
    """``(A - mean(A)) / (std(A) + 1e-8)`` over a minibatch of at least 2 rows (``std`` unbiased).

    On CPU float32 (:func:`_in_numpy`) one call of ``kernels.normalized_advantages_kernel`` (float64
    sums, each value rounded once) instead of four torch operations' dispatch (~100 us in the
    trainer's flow); equal to the torch expression, used elsewhere, up to float32 rounding. Fewer
    than 2 values (the kernel would divide by ``n - 1 = 0`` or ``n = 0``) and a tensor that requires
    grad (the kernel's result is detached) take the torch expression: NaN for one value, empty for
    none, and a result that autograd differentiates.
    """
    if (
        _in_numpy(advantages)
        and advantages.dim() == 1
        and advantages.shape[0] > 1
        and not advantages.requires_grad
    ):
        return torch.from_numpy(normalized_advantages_kernel(advantages.detach().numpy()))
    return (advantages - advantages.mean()) / (advantages.std() + 1e-8)


def _tanh_(y: torch.Tensor, in_numpy: bool) -> torch.Tensor:
    """``tanh`` of a fresh activation, in place.

    ``in_numpy`` (:func:`_in_numpy`): ``kernels.tanh_kernel`` on the tensor's memory, a rational
    approximation within 0.77 ulp of the exact ``tanh`` (torch's and NumPy's CPU ``tanh`` are within
    ~1.4 ulp): torch's is not vectorised on x86 and NumPy's only with AVX-512 (53-87 us for
    256 x 64 on an AVX2 core against ~20 us, docs/performance.md, "Trainer"). Else torch's.
    """
    if not in_numpy:
        return torch.tanh_(y)
    tanh_kernel(y.detach().numpy())
    return y


def _forward(x: torch.Tensor, layers: Sequence[Layer], in_numpy: bool) -> list[torch.Tensor]:
    """The input, every hidden activation and the output of a tanh MLP (no tanh after the last)."""
    outs = [x]
    last = len(layers) - 1
    for k, (weight, bias) in enumerate(layers):
        y = torch.addmm(bias, outs[-1], weight.t())
        outs.append(y if k == last else _tanh_(y, in_numpy))
    return outs


def _backward(
    outs: Sequence[torch.Tensor],
    layers: Sequence[Layer],
    delta: torch.Tensor,
    delta_sum: torch.Tensor,
    in_numpy: bool,
) -> list[Layer]:
    """``(dW, db)`` per layer from ``delta``, the gradient at the output, and ``delta_sum``, its sum
    over the rows (the output layer's ``db``); no gradient for the input."""
    grads: list[Layer] = []
    for k in range(len(layers) - 1, -1, -1):
        x = outs[k]
        grads.append((delta.t().mm(x), delta_sum))
        if k > 0:
            delta, delta_sum = _tanh_grad(delta.mm(layers[k][0]), x, in_numpy)
    return grads[::-1]


def _tanh_grad(delta: torch.Tensor, x: torch.Tensor, in_numpy: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """``delta * (1 - x * x)``, the gradient through ``x = tanh(.)``, and its sum over the rows.

    ``delta`` is a fresh tensor: with ``in_numpy`` overwritten by ``kernels.tanh_grad_kernel`` (the
    same float32 operations in place; the sums in float64).
    """
    if not in_numpy:
        delta = delta * (1.0 - x * x)
        return delta, delta.sum(0)
    sums = tanh_grad_kernel(delta.detach().numpy(), x.detach().numpy())
    return delta, torch.from_numpy(sums)


def ppo_gradients(
    actor: Sequence[Layer],
    critic: Sequence[Layer],
    log_std: torch.Tensor,
    obs: torch.Tensor,
    actions: torch.Tensor,
    old_log_probs: torch.Tensor,
    old_values: torch.Tensor,
    returns: torch.Tensor,
    advantages: torch.Tensor,
    clip: float,
    ent_coef: float,
    vf_coef: float,
    clip_vloss: bool,
) -> tuple[torch.Tensor, list[Layer], list[Layer], torch.Tensor]:
    """The PPO loss statistics of one minibatch and the gradient of its total loss.

    Parameters
    ----------
    actor, critic : the ``(weight, bias)`` of each linear layer, input first (tanh between them).
    log_std : the policy's ``(1, action_dim)`` log standard deviation.
    obs, actions, old_log_probs, old_values, returns : the minibatch (:class:`RolloutBatch` fields).
    advantages : already normalised if the config asks for it.
    clip, ent_coef, vf_coef, clip_vloss : :class:`~advanced_risk.config.PPOConfig`'s.

    Returns
    -------
    (stats, actor_grads, critic_grads, log_std_grad)
        ``stats`` in :data:`~advanced_risk.rl.ppo.loss.LOSS_STATS` order (policy loss, value loss,
        entropy, approximate KL, clip fraction), as one tensor; the gradients of
        ``loss = L_clip - ent_coef * entropy + vf_coef * L_v`` shaped like the parameters.
    """
    given = (obs, actions, old_log_probs, old_values, returns, advantages, log_std)
    in_numpy = _in_numpy(*given, *[p for layer in (*actor, *critic) for p in layer])
    actor_outs = _forward(obs, actor, in_numpy)
    critic_outs = _forward(obs, critic, in_numpy)
    mean, value = actor_outs[-1], critic_outs[-1].squeeze(-1)

    head = _head_kernel if in_numpy else _head_torch
    stats, d_mean, d_value, d_log_std, d_mean_sum, d_value_sum = head(
        mean, value, actions, log_std, old_log_probs, old_values, returns, advantages,
        clip, ent_coef, vf_coef, clip_vloss,
    )  # fmt: skip
    actor_grads = _backward(actor_outs, actor, d_mean, d_mean_sum, in_numpy)
    critic_grads = _backward(critic_outs, critic, d_value.unsqueeze(-1), d_value_sum, in_numpy)
    return stats, actor_grads, critic_grads, d_log_std


def _head_kernel(
    mean: torch.Tensor,
    value: torch.Tensor,
    actions: torch.Tensor,
    log_std: torch.Tensor,
    old_log_probs: torch.Tensor,
    old_values: torch.Tensor,
    returns: torch.Tensor,
    advantages: torch.Tensor,
    clip: float,
    ent_coef: float,
    vf_coef: float,
    clip_vloss: bool,
) -> Head:
    """:func:`_head_torch` by its compiled twin on the tensors' memory (CPU float32:
    ``kernels.ppo_head_kernel``, one call instead of ~35 tensor operations' dispatch)."""
    given = (mean, value, actions, log_std, old_log_probs, old_values, returns, advantages)
    m, v, act, s, old_lp, old_v, ret, adv = (t.detach().numpy() for t in given)
    out = ppo_head_kernel(m, v, act, s, old_lp, old_v, ret, adv, clip, ent_coef, vf_coef, clip_vloss)
    stats, d_mean, d_value, d_log_std, d_mean_sum, d_value_sum = (torch.from_numpy(x) for x in out)
    return stats, d_mean, d_value, d_log_std, d_mean_sum, d_value_sum


def _head_torch(
    mean: torch.Tensor,
    value: torch.Tensor,
    actions: torch.Tensor,
    log_std: torch.Tensor,
    old_log_probs: torch.Tensor,
    old_values: torch.Tensor,
    returns: torch.Tensor,
    advantages: torch.Tensor,
    clip: float,
    ent_coef: float,
    vf_coef: float,
    clip_vloss: bool,
) -> Head:
    """The loss statistics and the gradient at the networks' outputs (the module docstring's
    derivation): ``stats`` in ``LOSS_STATS`` order, ``d_mean`` ``(n, a)``, ``d_value`` ``(n,)``,
    ``d_log_std`` ``(1, a)``, then ``d_mean`` and ``d_value`` summed over the rows (``(a,)``,
    ``(1,)``: the output layers' bias gradients)."""
    n = mean.shape[0]
    inv_std = torch.exp(-log_std)
    z = (actions - mean) * inv_std
    logratio = (-0.5 * z * z - log_std - HALF_LOG_2PI).sum(-1) - old_log_probs
    ratio = logratio.exp()
    neg_adv = -advantages
    unclipped = neg_adv * ratio
    clipped = neg_adv * ratio.clamp(1.0 - clip, 1.0 + clip)
    policy_loss = torch.max(unclipped, clipped).mean()
    approx_kl = ((ratio - 1.0) - logratio).mean()
    clipfrac = ((ratio - 1.0).abs() > clip).float().mean()
    entropy = (0.5 + HALF_LOG_2PI + log_std).sum()

    err = value - returns
    value_sq = err * err
    if clip_vloss:
        step = value - old_values
        clipped_err = old_values + step.clamp(-clip, clip) - returns
        clipped_sq = clipped_err * clipped_err
        value_loss = 0.5 * torch.max(value_sq, clipped_sq).mean()
        # the share of each term in the gradient: the larger one's, half each on a tie; the clipped
        # term passes gradient only inside the range (where v_c may differ from v by a rounding)
        share = torch.where(value_sq > clipped_sq, 1.0, torch.where(value_sq == clipped_sq, 0.5, 0.0))
        inside = (step >= -clip) & (step <= clip)
        d_value = (share * err + torch.where(inside, 1.0 - share, 0.0) * clipped_err) * (vf_coef / n)
    else:
        value_loss = 0.5 * value_sq.mean()
        d_value = err * (vf_coef / n)

    d_logp = torch.where(unclipped < clipped, 0.0, neg_adv) * (ratio / n)
    d_mean = (d_logp.unsqueeze(-1) * z) * inv_std
    d_log_std = (d_logp.unsqueeze(-1) * (z * z - 1.0)).sum(0, keepdim=True) - ent_coef

    stats = torch.stack((policy_loss, value_loss, entropy, approx_kl, clipfrac))
    return stats, d_mean, d_value, d_log_std, d_mean.sum(0), d_value.sum(0, keepdim=True)
