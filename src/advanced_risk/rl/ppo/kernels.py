"""The analytic PPO step's elementwise work in compiled kernels, for CPU float32 minibatches.

:func:`ppo_head_kernel`: the loss head of one minibatch, the CPU twin of ``gradients._head_torch``.
:func:`tanh_grad_kernel`: the gradient through a tanh layer, ``delta * (1 - x * x)`` in place, and
its column sums.

Between the two networks' forward and backward passes, the analytic step computes the loss
statistics and the gradient at the actor's mean, the critic's value and the log-std
(:mod:`advanced_risk.rl.ppo.gradients` derives them). In torch that is ~35 elementwise operations on
``(n,)`` and ``(n, action_dim)`` tensors, ~300 us of dispatch per 256-row minibatch on one CPU thread
for ~20 us of arithmetic (docs/performance.md, "Trainer"). :func:`ppo_head_kernel` computes the same
quantities row by row in one compiled call.

Arithmetic: float32 throughout, the torch expressions' operations in their order per element, with
the Python constants rounded to float32 as torch rounds a scalar operand; the sums over rows and over
the action's entries accumulate in float64 (torch sums float32 pairwise), so results agree with the
torch head up to float32 rounding (``tests/rl/test_ppo_kernels.py``). The selections are the
torch head's comparisons, so ties split the gradient as there and a NaN propagates as there.

:func:`tanh_kernel`: the hidden layers' ``tanh`` in place. NumPy's float32 ``tanh`` is vectorised only
with AVX-512; on an AVX2 core it takes 53-87 us for a 256 x 64 activation (torch's CPU ``tanh``
72 us), against ~20 us for this kernel, which evaluates a rational approximation in float64 that
LLVM vectorises: ``tanh(x) = x P(x^2) / Q(x^2)`` for ``|x| <= 9`` (beyond, ``x`` is clamped to
``+-9``, where float32 ``tanh`` is ``+-1`` within half an ulp). :data:`TANH_P` and :data:`TANH_Q`
(degree 6 in ``x^2``, ``Q(0) = 1``) are a weighted least-squares fit of ``tanh(x) / x`` on ``[0, 9]``
(``benchmarks/fit_tanh.py`` refits them and prints the error); rounded to float32 the result is
within 0.77 ulp of the exact ``tanh`` over every 7th float32 of ``[2^-20, 9.5]`` (NumPy's float32
``tanh``: 1.37 ulp), odd, NaN in NaN out, ``+-inf`` to ``+-1`` (``tests/rl/test_ppo_kernels.py``).

:func:`gaussian_sample_kernel`: the rollout's other elementwise step, a Gaussian action and its
log-density from the actor's mean (``RolloutSampler.sample``), in one call per step.

The tanh layer's gradient is three tensor operations in torch (``x * x``, ``1 - .``, ``delta * .``),
each allocating a ``(n, width)`` tensor, then a fourth for the bias gradient (the sum over rows);
:func:`tanh_grad_kernel` does the same three float32 operations per element in place, bit for bit
torch's, and the sums in float64. The head kernel sums its output gradients over the rows too.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from advanced_risk.measures.jit import jit

__all__ = [
    "HALF_LOG_2PI",
    "TANH_P",
    "TANH_Q",
    "gaussian_sample_kernel",
    "normalized_advantages_kernel",
    "ppo_head_kernel",
    "tanh_grad_kernel",
    "tanh_kernel",
]

F32 = NDArray[np.float32]

HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
"""``log(2 pi) / 2``, the constant of a Gaussian log-density: ``-z^2 / 2 - log(std) - HALF_LOG_2PI``."""


def _larger_python(a: np.float32, b: np.float32) -> np.float32:
    """``torch.max(a, b)`` of two scalars: NaN when either is NaN."""
    if math.isnan(a) or math.isnan(b):
        return np.float32(np.nan)
    return a if a > b else b


def _clamp_python(x: np.float32, lo: np.float32, hi: np.float32) -> np.float32:
    """``torch.clamp(x, lo, hi)`` of a scalar: NaN stays NaN."""
    if math.isnan(x):
        return x
    return lo if x < lo else (hi if x > hi else x)


_larger = jit(_larger_python)
_clamp = jit(_clamp_python)


def _ppo_head_python(
    mean: F32,
    value: F32,
    actions: F32,
    log_std: F32,
    old_log_probs: F32,
    old_values: F32,
    returns: F32,
    advantages: F32,
    clip: float,
    ent_coef: float,
    vf_coef: float,
    clip_vloss: bool,
) -> tuple[F32, F32, F32, F32, F32, F32]:
    """Loss statistics and the gradients at the networks' outputs for one minibatch of ``n`` rows.

    Parameters
    ----------
    mean : ``(n, a)`` the actor's output. value : ``(n,)`` the critic's.
    actions : ``(n, a)``. log_std : ``(1, a)``.
    old_log_probs, old_values, returns, advantages : ``(n,)``, advantages already normalised.
    clip, ent_coef, vf_coef, clip_vloss : ``PPOConfig``'s.

    Returns
    -------
    (stats, d_mean, d_value, d_log_std, d_mean_sum, d_value_sum)
        ``stats`` ``(5,)``: policy loss, value loss, entropy, approximate KL, clip fraction;
        ``d_mean`` ``(n, a)``, ``d_value`` ``(n,)`` and ``d_log_std`` ``(1, a)``: the gradient of
        ``L_clip - ent_coef * entropy + vf_coef * L_v`` at the actor's output, the critic's output
        and the log-std; ``d_mean_sum`` ``(a,)`` and ``d_value_sum`` ``(1,)``: their sums over the
        rows (the output layers' bias gradients), accumulated in float64.
    """
    n, a = mean.shape
    one, half, zero = np.float32(1.0), np.float32(0.5), np.float32(0.0)
    lo, hi = np.float32(1.0 - clip), np.float32(1.0 + clip)
    clip32 = np.float32(clip)
    n32 = np.float32(n)
    value_scale = np.float32(vf_coef / n)
    half_log_2pi = np.float32(HALF_LOG_2PI)
    entropy_constant = np.float32(0.5 + HALF_LOG_2PI)
    inv_std = np.empty(a, dtype=np.float32)
    entropy = np.float64(0.0)  # float64 accumulators (a Python 0.0 would stay float32 uncompiled)
    for j in range(a):
        inv_std[j] = np.exp(-log_std[0, j])
        entropy += entropy_constant + log_std[0, j]
    z = np.empty(a, dtype=np.float32)  # the row's standardised actions
    d_mean = np.empty((n, a), dtype=np.float32)
    d_value = np.empty(n, dtype=np.float32)
    d_log_std_sum = np.zeros(a)
    d_mean_sum = np.zeros(a)
    d_value_sum = np.zeros(1)
    policy_sum = value_sum = kl_sum = clipped_rows = np.float64(0.0)
    for i in range(n):
        log_prob = np.float64(0.0)
        for j in range(a):
            zij = (actions[i, j] - mean[i, j]) * inv_std[j]
            z[j] = zij
            log_prob += -half * zij * zij - log_std[0, j] - half_log_2pi
        logratio = np.float32(log_prob) - old_log_probs[i]
        ratio = np.exp(logratio)
        neg_adv = -advantages[i]
        unclipped = neg_adv * ratio
        clipped = neg_adv * _clamp(ratio, lo, hi)
        policy_sum += _larger(unclipped, clipped)
        kl_sum += (ratio - one) - logratio
        clipped_rows += 1.0 if abs(ratio - one) > clip32 else 0.0
        d_logp = (zero if unclipped < clipped else neg_adv) * (ratio / n32)
        for j in range(a):
            d_mean[i, j] = (d_logp * z[j]) * inv_std[j]
            d_mean_sum[j] += d_mean[i, j]
            d_log_std_sum[j] += d_logp * (z[j] * z[j] - one)
        err = value[i] - returns[i]
        value_sq = err * err
        if clip_vloss:
            step = value[i] - old_values[i]
            clipped_err = old_values[i] + _clamp(step, -clip32, clip32) - returns[i]
            clipped_sq = clipped_err * clipped_err
            value_sum += _larger(value_sq, clipped_sq)
            share = one if value_sq > clipped_sq else (half if value_sq == clipped_sq else zero)
            inside = one - share if -clip32 <= step <= clip32 else zero
            d_value[i] = (share * err + inside * clipped_err) * value_scale
        else:
            value_sum += value_sq
            d_value[i] = err * value_scale
        d_value_sum[0] += d_value[i]
    stats = np.empty(5, dtype=np.float32)
    stats[0] = policy_sum / n
    stats[1] = 0.5 * (value_sum / n)
    stats[2] = entropy
    stats[3] = kl_sum / n
    stats[4] = clipped_rows / n
    d_log_std = np.empty((1, a), dtype=np.float32)
    for j in range(a):
        d_log_std[0, j] = np.float32(d_log_std_sum[j]) - np.float32(ent_coef)
    return stats, d_mean, d_value, d_log_std, d_mean_sum.astype(np.float32), d_value_sum.astype(np.float32)


ppo_head_kernel = jit(_ppo_head_python)


def _tanh_grad_python(delta: F32, x: F32) -> F32:
    """``delta *= 1 - x * x`` elementwise (``delta`` and ``x`` of one shape, 2-D); returns the column
    sums of the result (the bias gradient of the layer below), accumulated in float64."""
    one = np.float32(1.0)
    rows, cols = delta.shape
    sums = np.zeros(cols)
    for i in range(rows):
        for j in range(cols):
            d = delta[i, j] * (one - x[i, j] * x[i, j])
            delta[i, j] = d
            sums[j] += d
    return sums.astype(np.float32)


tanh_grad_kernel = jit(_tanh_grad_python)


TANH_P = (
    0.9999999954436506, -0.15887202382360202, 0.03141635494084999, 0.007961863477084542,
    0.0002270998687406373, 1.3585832929000063e-06, 8.72731914514091e-10,
)  # fmt: skip
"""Numerator of :func:`tanh_kernel`'s ``tanh(x) / x = P(x^2) / Q(x^2)``, constant term first."""
TANH_Q = (
    1.0, 0.1744612101873976, -0.04376297850696689, 0.024080680251309848,
    0.0016351157814217913, 2.1599846541489436e-05, 5.112454048994408e-08,
)  # fmt: skip
"""Denominator, constant term first (positive: ``Q >= 1`` on ``[0, 81]``)."""
_TANH_CLAMP = 9.0


def _tanh_python(x: F32) -> None:
    """``x = tanh(x)`` elementwise in place (2-D float32): the module docstring's rational
    approximation in float64, rounded to float32 once; NaN stays NaN (the clamp's comparisons are
    false for NaN), ``+-inf`` becomes ``+-1``, ``-0.0`` stays ``-0.0``."""
    p0, p1, p2, p3, p4, p5, p6 = TANH_P
    q0, q1, q2, q3, q4, q5, q6 = TANH_Q
    rows, cols = x.shape
    for i in range(rows):
        for j in range(cols):
            v = float(x[i, j])
            v = _TANH_CLAMP if v > _TANH_CLAMP else v
            v = -_TANH_CLAMP if v < -_TANH_CLAMP else v
            u = v * v
            num = (((((p6 * u + p5) * u + p4) * u + p3) * u + p2) * u + p1) * u + p0
            den = (((((q6 * u + q5) * u + q4) * u + q3) * u + q2) * u + q1) * u + q0
            x[i, j] = np.float32(v * num / den)


tanh_kernel = jit(_tanh_python, contract=True, ieee_division=True)  # Q >= 1: no division by 0


def _normalized_advantages_python(adv: F32) -> F32:
    """``(adv - mean) / (std + 1e-8)`` of a 1-D float32 array (at least 2 values) as a new array:
    the mean and the unbiased standard deviation (``torch.std``'s ``n - 1``) accumulated in float64,
    each value computed in float64 and rounded to float32 once. A NaN anywhere makes every value NaN,
    as in torch; constant advantages give zeros."""
    n = adv.shape[0]
    total = 0.0
    for i in range(n):
        total += float(adv[i])
    mean = total / n
    squares = 0.0
    for i in range(n):
        d = float(adv[i]) - mean
        squares += d * d
    scale = 1.0 / (math.sqrt(squares / (n - 1)) + 1e-8)
    out = np.empty(n, dtype=np.float32)
    for i in range(n):
        out[i] = np.float32((float(adv[i]) - mean) * scale)
    return out


normalized_advantages_kernel = jit(_normalized_advantages_python)


def _gaussian_sample_python(mean: F32, log_std: F32, noise: F32) -> tuple[F32, F32]:
    """``(action, log_prob)`` of a rollout step: ``action = mean + exp(log_std) * noise`` and its
    log-density under the diagonal Gaussian ``N(mean, exp(log_std)^2)``.

    ``mean`` and ``noise`` are ``(n, a)``, ``log_std`` ``(1, a)``. Float32 per element, in the order of
    the NumPy expression it replaces (``mean + std * noise``, then ``z = (action - mean) / std`` as a
    product with ``exp(-log_std)``); the log-density's sum over the ``a`` entries accumulates the
    float32 terms ``-z^2 / 2 - log_std - HALF_LOG_2PI`` in float64 and rounds once, as
    :func:`ppo_head_kernel` computes the same log-probability during the update. One call instead of
    ~10 NumPy operations' dispatch (~10 us at 8 x 11, against ~2). NaN in, NaN out.

    The action is rounded to float32 before ``z`` is taken from it whatever the input dtypes, so the
    log-density is the stored action's (float64 ``mean`` or ``noise`` would otherwise give the density
    of the unrounded sum); the float32 arithmetic is unchanged. ``noise`` of another shape than
    ``mean``, or ``log_std`` not ``(1, a)``, raises ``ValueError`` (compiled, nothing is bounds
    checked: the loops would read past the arrays).
    """
    n, a = mean.shape
    if noise.shape[0] != n or noise.shape[1] != a or log_std.shape[0] != 1 or log_std.shape[1] != a:
        raise ValueError("gaussian_sample_kernel: noise must be mean's shape (n, a), log_std (1, a)")
    half, half_log_2pi = np.float32(0.5), np.float32(HALF_LOG_2PI)
    std = np.empty(a, dtype=np.float32)
    inv_std = np.empty(a, dtype=np.float32)
    for j in range(a):
        std[j] = np.exp(log_std[0, j])
        inv_std[j] = np.exp(-log_std[0, j])
    action = np.empty((n, a), dtype=np.float32)
    log_prob = np.empty(n, dtype=np.float32)
    for i in range(n):
        total = np.float64(0.0)  # a float64 accumulator (a Python 0.0 would stay float32 uncompiled)
        for j in range(a):
            act = np.float32(mean[i, j] + std[j] * noise[i, j])
            action[i, j] = act
            z = (act - mean[i, j]) * inv_std[j]
            total += -half * z * z - log_std[0, j] - half_log_2pi
        log_prob[i] = np.float32(total)
    return action, log_prob


gaussian_sample_kernel = jit(_gaussian_sample_python)
