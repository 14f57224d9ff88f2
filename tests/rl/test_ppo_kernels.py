"""The analytic PPO step's CPU kernels (``rl/ppo/kernels.py``) against the torch expressions they replace.

The references are ``gradients._head_torch`` (the loss head written with tensor operations, itself
checked against autograd in ``test_ppo_gradients.py``), ``delta * (1 - x * x)`` and float64
``np.tanh`` (for the rational ``tanh``). The head kernel
sums in another order (float64 accumulators), so it agrees up to float32 rounding; its selections
(the clip, the value clip's ties, NaN) are the same comparisons, so they agree exactly.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

from advanced_risk.measures.jit import NUMBA_DISABLED
from advanced_risk.rl.ppo import gradients
from advanced_risk.rl.ppo.kernels import (
    HALF_LOG_2PI,
    TANH_Q,
    _gaussian_sample_python,
    _normalized_advantages_python,
    _ppo_head_python,
    _tanh_grad_python,
    _tanh_python,
    gaussian_sample_kernel,
    normalized_advantages_kernel,
    ppo_head_kernel,
    tanh_grad_kernel,
    tanh_kernel,
)

Head = tuple[torch.Tensor, ...]


def _inputs(n: int, a: int, seed: int, spread: float = 0.3) -> Head:
    """A minibatch's head inputs: ratios inside and outside the clip range, value errors both sides."""
    gen = torch.Generator().manual_seed(seed)
    mean = torch.randn(n, a, generator=gen)
    log_std = 0.3 * torch.randn(1, a, generator=gen)
    actions = mean + torch.exp(log_std) * torch.randn(n, a, generator=gen)
    z = (actions - mean) * torch.exp(-log_std)
    log_probs = (-0.5 * z * z - log_std - 0.5 * np.log(2 * np.pi)).sum(-1)
    old_log_probs = log_probs + spread * torch.randn(n, generator=gen)
    value = torch.randn(n, generator=gen)
    old_values = value + spread * torch.randn(n, generator=gen)
    returns = value + torch.randn(n, generator=gen)
    advantages = torch.randn(n, generator=gen)
    return mean, value, actions, log_std, old_log_probs, old_values, returns, advantages


def _kernel(given: Head, *args: object) -> Head:
    out = ppo_head_kernel(*(t.numpy() for t in given), *args)
    return tuple(torch.from_numpy(x) for x in out)


def _assert_head_close(given: Head, clip: float, ent_coef: float, vf_coef: float, clip_vloss: bool) -> None:
    expected = gradients._head_torch(*given, clip, ent_coef, vf_coef, clip_vloss)
    got = _kernel(given, clip, ent_coef, vf_coef, clip_vloss)
    names = ("stats", "d_mean", "d_value", "d_log_std", "d_mean_sum", "d_value_sum")
    for name, g, e in zip(names, got, expected, strict=True):
        assert g.shape == e.shape, name
        assert g.dtype == torch.float32, name
        scale = float(e.abs().max()) if e.numel() else 0.0
        torch.testing.assert_close(g, e, rtol=2e-5, atol=2e-6 * max(scale, 1.0), msg=name)


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 64),
    a=st.integers(1, 8),
    seed=st.integers(0, 10_000),
    clip=st.sampled_from([0.05, 0.2, 0.5]),
    clip_vloss=st.booleans(),
    ent_coef=st.sampled_from([0.0, 0.01]),
    spread=st.sampled_from([0.0, 0.3, 2.0]),
)
def test_the_head_kernel_is_the_torch_head(
    n: int, a: int, seed: int, clip: float, clip_vloss: bool, ent_coef: float, spread: float
) -> None:
    _assert_head_close(_inputs(n, a, seed, spread), clip, ent_coef, 0.7, clip_vloss)


def test_exact_value_ties_split_the_gradient_as_the_torch_head() -> None:
    """Values mirrored around the clipped value: ``(v - R)^2 == (v_c - R)^2`` exactly, outside the range."""
    mean, value, actions, log_std, old_log_probs, _, _, advantages = _inputs(32, 3, seed=5)
    clip = 0.25
    old_values = value - 2 * clip
    returns = value - clip / 2
    given = (mean, value, actions, log_std, old_log_probs, old_values, returns, advantages)
    v_c = old_values + clip
    assert int(((value - returns) ** 2 == (v_c - returns) ** 2).sum()) > 0
    expected = gradients._head_torch(*given, clip, 0.0, 0.5, True)
    got = _kernel(given, clip, 0.0, 0.5, True)
    assert torch.equal(got[2], expected[2])  # per-row products of the same float32 operands


@pytest.mark.parametrize("field", [0, 1, 2, 4, 5, 6, 7])
def test_a_nan_propagates_where_the_torch_head_propagates_it(field: int) -> None:
    given = [t.clone() for t in _inputs(16, 3, seed=9)]
    given[field].view(-1)[5] = float("nan")
    expected = gradients._head_torch(*given, 0.2, 0.01, 0.5, True)
    got = _kernel(tuple(given), 0.2, 0.01, 0.5, True)
    for g, e in zip(got, expected, strict=True):
        assert torch.equal(torch.isnan(g), torch.isnan(e))


def test_the_python_kernel_is_the_compiled_one() -> None:
    """The uncompiled kernel (``ADVANCED_RISK_DISABLE_NUMBA=1``) computes the same head."""
    given = _inputs(24, 4, seed=11)
    compiled = ppo_head_kernel(*(t.numpy() for t in given), 0.2, 0.01, 0.5, True)
    python = _ppo_head_python(*(t.numpy() for t in given), 0.2, 0.01, 0.5, True)
    for c, p in zip(compiled, python, strict=True):
        np.testing.assert_allclose(c, p, rtol=1e-6, atol=1e-7)


@settings(max_examples=40, deadline=None)
@given(rows=st.integers(1, 40), cols=st.integers(1, 20), seed=st.integers(0, 10_000))
def test_the_tanh_gradient_kernel_is_torchs_expression_bit_for_bit(rows: int, cols: int, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    delta = torch.randn(rows, cols, generator=gen)
    x = torch.tanh(3 * torch.randn(rows, cols, generator=gen))
    expected = delta * (1.0 - x * x)
    out = delta.clone()
    sums = tanh_grad_kernel(out.numpy(), x.numpy())
    assert torch.equal(out, expected)
    torch.testing.assert_close(torch.from_numpy(sums), expected.sum(0), rtol=1e-5, atol=1e-5)
    again = delta.clone().numpy()
    assert np.array_equal(_tanh_grad_python(again, x.numpy()), sums)
    assert torch.equal(torch.from_numpy(again), expected)


def test_other_dtypes_take_the_torch_expressions() -> None:
    """float64 tensors (and any device but the CPU) keep torch's operations and dtype."""
    given = tuple(t.double() for t in _inputs(8, 2, seed=3))
    assert not gradients._in_numpy(*given)
    assert gradients._in_numpy(*_inputs(8, 2, seed=3))
    out = gradients._head_torch(*given, 0.2, 0.0, 0.5, False)
    assert {t.dtype for t in out} == {torch.float64}
    delta, x = torch.randn(4, 3, dtype=torch.float64), torch.rand(4, 3, dtype=torch.float64)
    got, sums = gradients._tanh_grad(delta.clone(), x, False)
    assert torch.equal(got, delta * (1.0 - x * x))
    assert torch.equal(sums, got.sum(0))
    y = torch.randn(4, 3, dtype=torch.float64)
    assert torch.equal(gradients._tanh_(y.clone(), False), torch.tanh(y))


def _float32_grid(stride: int) -> np.ndarray:
    """Every ``stride``-th float32 of ``[2^-20, 9.5]``, then their negatives."""
    lo, hi = np.float32(2.0**-20).view(np.int32), np.float32(9.5).view(np.int32)
    x = np.arange(lo, hi, stride, dtype=np.int32).view(np.float32)
    return np.concatenate([x, -x])


def _max_ulp(values: np.ndarray, x: np.ndarray) -> float:
    exact = np.tanh(x.astype(np.float64))
    ulp = np.spacing(np.abs(exact).astype(np.float32)).astype(np.float64)
    return float(np.max(np.abs(values.astype(np.float64) - exact) / ulp))


def test_the_tanh_kernel_is_within_one_ulp_of_the_exact_tanh() -> None:
    """Against float64 ``np.tanh`` on ~1.3 million float32 (every 41st of [2^-20, 9.5], both signs):
    at most 0.77 ulp measured (``benchmarks/fit_tanh.py``, every 7th: 0.768); NumPy's own float32
    ``tanh`` is at 1.37 ulp on the same grid. The uncompiled kernel too (a sparser grid)."""
    x = _float32_grid(41 if not NUMBA_DISABLED else 4_001)  # uncompiled: ~100 times fewer values
    out = x.reshape(-1, 1).copy()
    tanh_kernel(out)
    assert _max_ulp(out.ravel(), x) <= 0.8
    sparse = _float32_grid(40_009)
    slow = sparse.reshape(1, -1).copy()
    _tanh_python(slow)
    assert _max_ulp(slow.ravel(), sparse) <= 0.8


def test_the_tanh_kernel_is_odd_and_keeps_the_special_values() -> None:
    x = _float32_grid(997)
    out = x.reshape(2, -1).copy()
    tanh_kernel(out)
    half = x.size // 2
    assert np.array_equal(out.ravel()[:half], -out.ravel()[half:])  # exactly odd
    special = np.array([[np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-45, -1e-45, 1e-38, 9.0, 9.5, 1e30, -3.4e38]],
                       dtype=np.float32)  # fmt: skip
    got = special.copy()
    tanh_kernel(got)
    assert np.isnan(got[0, 0])
    assert got[0, 1:3].tolist() == [1.0, -1.0]
    assert got[0, 3] == 0.0
    assert not np.signbit(got[0, 3])
    assert got[0, 4] == 0.0
    assert np.signbit(got[0, 4])
    assert np.array_equal(got[0, 5:8], special[0, 5:8])  # tanh(x) rounds to x below ~2^-12
    assert got[0, 8:].tolist() == [1.0, 1.0, 1.0, -1.0]
    assert bool(np.all(np.abs(out) <= 1.0))


def test_the_tanh_kernels_denominator_never_vanishes() -> None:
    """``Q`` on ``[0, 81]`` (``x`` clamped to 9): at least 1, so the division needs no check."""
    u = np.linspace(0.0, 81.0, 200_001)
    assert float(np.polyval(np.array(TANH_Q)[::-1], u).min()) >= 1.0


def test_the_tanh_kernel_works_in_place_on_strided_views() -> None:
    base = np.random.default_rng(0).normal(size=(7, 5)).astype(np.float32) * 3
    expected = np.tanh(base.astype(np.float64)).astype(np.float32)
    view = base.T  # not C-contiguous
    tanh_kernel(view)
    np.testing.assert_allclose(base, expected, rtol=1.2e-7, atol=0)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(2, 300), seed=st.integers(0, 10_000), scale=st.sampled_from([1e-4, 1.0, 1e4]))
@example(n=2, seed=555, scale=1e-4)  # two nearly equal values: the float32 expression's cancellation
def test_normalized_advantages_are_the_torch_expression(n: int, seed: int, scale: float) -> None:
    adv = scale * torch.randn(n, generator=torch.Generator().manual_seed(seed)) + scale
    expected = (adv - adv.mean()) / (adv.std() + 1e-8)
    got = gradients.normalize_advantages(adv)
    assert got.dtype == torch.float32
    # the kernel: the expression in float64, each value rounded once to float32
    a = adv.double()
    torch.testing.assert_close(got, ((a - a.mean()) / (a.std() + 1e-8)).float(), rtol=2.4e-7, atol=1e-12)
    # torch's float32 expression loses ~eps32 * |mean| / std to cancellation (a mean far above the
    # spread: scale 1e-4 with n = 2 gave a 9e-5 relative difference, the float32 expression's error)
    cancellation = 4 * 1.2e-7 * (float(a.mean().abs() / a.std()) + 1.0)
    torch.testing.assert_close(got, expected, rtol=2e-5, atol=max(2e-5, cancellation))
    assert np.array_equal(
        _normalized_advantages_python(adv.numpy()), normalized_advantages_kernel(adv.numpy())
    )
    assert torch.equal(adv, scale * torch.randn(n, generator=torch.Generator().manual_seed(seed)) + scale)


def test_normalized_advantages_keep_nan_and_constants_and_other_dtypes() -> None:
    nan = gradients.normalize_advantages(torch.tensor([1.0, float("nan"), 2.0]))
    assert bool(torch.isnan(nan).all())
    assert gradients.normalize_advantages(torch.full((5,), 3.25)).tolist() == [0.0] * 5
    double = torch.tensor([1.0, 2.0, 4.0], dtype=torch.float64)
    got = gradients.normalize_advantages(double)
    assert got.dtype == torch.float64
    assert torch.equal(got, (double - double.mean()) / (double.std() + 1e-8))


def _sample_inputs(n: int, a: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    mean = rng.normal(0.0, 2.0, (n, a)).astype(np.float32)
    log_std = rng.uniform(-3.0, 1.0, (1, a)).astype(np.float32)
    noise = rng.standard_normal((n, a)).astype(np.float32)
    return mean, log_std, noise


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 9), st.integers(1, 13), st.integers(0, 2**31))
@example(3, 1, 104593)  # a small std: the twins' densities differ by ~8e-6 (one ulp of their actions)
def test_the_gaussian_sample_kernel_is_the_numpy_expression(n: int, a: int, seed: int) -> None:
    """Against the NumPy expression it replaces in ``RolloutSampler.sample`` (the action, up to one
    rounding of ``exp``) and the log-density computed in float64 from the kernel's own action."""
    mean, log_std, noise = _sample_inputs(n, a, seed)
    action, log_prob = gaussian_sample_kernel(mean, log_std, noise)
    assert action.dtype == np.float32
    assert action.shape == (n, a)
    assert log_prob.dtype == np.float32
    assert log_prob.shape == (n,)
    np.testing.assert_allclose(action, mean + np.exp(log_std) * noise, rtol=1e-6, atol=1e-6)
    z = (action.astype(np.float64) - mean) / np.exp(log_std.astype(np.float64))
    exact = (-0.5 * z * z - log_std.astype(np.float64) - HALF_LOG_2PI).sum(-1)
    np.testing.assert_allclose(log_prob, exact, rtol=1e-5, atol=1e-5 * a)
    python_action, python_log_prob = _gaussian_sample_python(mean, log_std, noise)  # exp: libm vs NumPy
    np.testing.assert_allclose(python_action, action, rtol=1e-6, atol=1e-6)
    # each twin's density is of its own action: an action one ulp apart moves z by ulp / std, which a
    # small std turns into ~1e-5 of log-density (hypothesis found n=3, a=1, seed=104593)
    z = (python_action.astype(np.float64) - mean) / np.exp(log_std.astype(np.float64))
    exact = (-0.5 * z * z - log_std.astype(np.float64) - HALF_LOG_2PI).sum(-1)
    np.testing.assert_allclose(python_log_prob, exact, rtol=1e-5, atol=1e-5 * a)


def test_the_gaussian_sample_kernel_matches_the_torch_policys_log_prob() -> None:
    """The log-probability the rollout stores is the one ``get_action_and_value`` computes for the
    same action (what the first epoch's probability ratio compares), up to float32 rounding."""
    from advanced_risk.rl.ppo.network import ActorCriticNetwork

    net = ActorCriticNetwork(6, 4, generator=torch.Generator().manual_seed(0))
    obs = torch.randn(8, 6, generator=torch.Generator().manual_seed(1))
    noise = torch.randn(8, 4, generator=torch.Generator().manual_seed(2))
    action, log_prob, _ = net.rollout_sampler().sample(obs.numpy(), noise.numpy())
    with torch.no_grad():
        _, reference, _, _ = net.get_action_and_value(obs, torch.from_numpy(action))
    np.testing.assert_allclose(log_prob, reference.numpy(), rtol=1e-5, atol=1e-5)


def test_the_gaussian_sample_kernel_propagates_nan_and_takes_an_empty_batch() -> None:
    mean, log_std, noise = _sample_inputs(3, 4, seed=5)
    mean[1, 2] = np.nan
    action, log_prob = gaussian_sample_kernel(mean, log_std, noise)
    assert np.isnan(action[1, 2])
    assert np.isnan(log_prob[1])
    assert np.isfinite(np.delete(action, 1, axis=0)).all()
    assert np.isfinite(log_prob[[0, 2]]).all()
    log_std[0, 0] = np.nan
    action, log_prob = gaussian_sample_kernel(mean, log_std, noise)
    assert np.isnan(action[:, 0]).all()
    assert np.isnan(log_prob).all()
    empty_action, empty_log_prob = gaussian_sample_kernel(mean[:0], log_std, noise[:0])
    assert empty_action.shape == (0, 4)
    assert empty_log_prob.shape == (0,)
