"""Adversarial tests of the PPO step's CPU tanh kernel and advantage normalisation.

Exhaustive float32 sweeps of the ranges where a rational ``tanh`` is most likely to slip (the clamp
at 9 and the float32 ``tanh`` of ``9 < x < 9.011`` which is still ``1 - 2^-24``, ``[0.5, 1)``, the
neighbourhood of ``2^-12`` where ``tanh(x)`` starts rounding to ``x``, subnormals); shapes, layouts
and read-only arrays; the uncompiled twins against the compiled kernels; and
``gradients.normalize_advantages`` on edge inputs (fewer than two values, overflow of float32 sums,
infinities, strided views, a tensor that requires grad, other dtypes and ranks).

A sweep of every positive float32 below 100 (run once, ~2 minutes, not here) gave at most 0.768 ulp.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from numpy.typing import NDArray

from advanced_risk.measures.jit import NUMBA_DISABLED
from advanced_risk.rl.ppo import gradients
from advanced_risk.rl.ppo.agent import PPOAgent
from advanced_risk.rl.ppo.kernels import (
    _normalized_advantages_python,
    _tanh_python,
    normalized_advantages_kernel,
    tanh_kernel,
)

from .test_ppo import TargetVecEnv
from .test_ppo_fast_paths import fast_config

SPARSER = 211 if NUMBA_DISABLED else 1
"""Uncompiled (``ADVANCED_RISK_DISABLE_NUMBA=1``, a Python loop) the sweeps take every 211th value."""


def _all_float32(lo: float, hi: float, stride: int = 1) -> NDArray[np.float32]:
    """Every ``stride``-th float32 of ``[lo, hi]`` (both positive)."""
    a, b = int(np.float32(lo).view(np.int32)), int(np.float32(hi).view(np.int32))
    out: NDArray[np.float32] = np.arange(a, b + 1, stride, dtype=np.int32).view(np.float32)
    return out


def _ulp_errors(values: NDArray[np.float32], x: NDArray[np.float32]) -> NDArray[np.float64]:
    """``|values - tanh(x)|`` in float32 ulp of the exact value's binade (float64 ``np.tanh``)."""
    exact = np.tanh(x.astype(np.float64))
    with np.errstate(divide="ignore"):
        exponent = np.maximum(np.floor(np.log2(np.abs(exact))), -126.0)
    ulp = np.ldexp(1.0, (exponent - 23).astype(np.int64))
    errors: NDArray[np.float64] = np.abs(values.astype(np.float64) - exact) / ulp
    return errors


def _kernel(x: NDArray[np.float32]) -> NDArray[np.float32]:
    out = x.reshape(-1, 1).copy()
    tanh_kernel(out)
    return out.ravel()


@pytest.mark.parametrize(
    ("lo", "hi", "stride"),
    [
        (8.9, 9.6, 1),  # the clamp: float32 tanh is 1 - 2^-24 up to ~9.0109, 1 beyond
        (9.6, 3.4e38, 4099),  # clamped: 1
        (0.5, 1.0, 3),
        (2.0**-13, 2.0**-11, 7),  # tanh(x) rounds to x below ~2^-12
        (1.4e-45, 1.1754942e-38, 5),  # subnormals
        (1.0, 8.9, 13),
    ],
)
def test_the_tanh_kernel_is_within_one_ulp_on_every_float32_of_a_range(
    lo: float, hi: float, stride: int
) -> None:
    x = _all_float32(lo, hi, stride * SPARSER)
    got = _kernel(x)
    errors = _ulp_errors(got, x)
    assert float(errors.max()) <= 0.77, float(x[int(np.argmax(errors))])
    assert bool(np.all(np.abs(got) <= 1.0))
    assert np.array_equal(_kernel(-x).view(np.int32), (-got).view(np.int32))  # exactly odd


def test_the_tanh_kernel_is_monotone_through_the_clamp() -> None:
    x = _all_float32(8.0, 10.0, SPARSER)
    got = _kernel(x)
    assert bool(np.all(np.diff(got) >= 0))
    assert got[-1] == 1.0


def test_the_uncompiled_twin_is_the_compiled_kernel_bit_for_bit() -> None:
    """Same float64 arithmetic (a Python float, not a NumPy float32 scalar, in the uncompiled loop)."""
    rng = np.random.default_rng(7)
    x = (rng.standard_normal((40, 50)) * 10.0 ** rng.uniform(-8, 1.2, size=(40, 50))).astype(np.float32)
    x[0, :6] = [np.nan, np.inf, -np.inf, -0.0, 9.0, -9.000001]
    compiled, plain = x.copy(), x.copy()
    tanh_kernel(compiled)
    _tanh_python(plain)
    assert np.array_equal(compiled.view(np.int32), plain.view(np.int32))


@pytest.mark.parametrize("shape", [(0, 5), (5, 0), (0, 0)])
def test_the_tanh_kernel_accepts_empty_arrays(shape: tuple[int, int]) -> None:
    for kernel in (tanh_kernel, _tanh_python):
        x = np.zeros(shape, dtype=np.float32)
        assert kernel(x) is None
        assert x.shape == shape


@pytest.mark.parametrize("shape", [(7,), (2, 3, 4)])
def test_the_tanh_kernel_refuses_other_ranks_and_leaves_them(shape: tuple[int, ...]) -> None:
    x = np.linspace(-3, 3, int(np.prod(shape)), dtype=np.float32).reshape(shape)
    before = x.copy()
    for kernel in (tanh_kernel, _tanh_python):
        with pytest.raises(Exception):  # noqa: B017, PT011 (numba's TypingError or unpacking's ValueError)
            kernel(x)
        assert np.array_equal(x, before)


def test_the_tanh_kernel_refuses_a_read_only_array() -> None:
    x = np.linspace(-3, 3, 12, dtype=np.float32).reshape(3, 4)
    before = x.copy()
    x.flags.writeable = False
    for kernel in (tanh_kernel, _tanh_python):
        with pytest.raises(Exception):  # noqa: B017, PT011
            kernel(x)
        assert np.array_equal(x, before)


@pytest.mark.parametrize("layout", ["fortran", "reversed", "reversed_columns_step_2"])
def test_the_tanh_kernel_on_other_layouts_touches_only_the_view(layout: str) -> None:
    base = (np.random.default_rng(1).standard_normal((9, 8)) * 4).astype(np.float32)
    if layout == "fortran":
        base = np.asfortranarray(base)
    original = base.copy()
    view = {"fortran": base, "reversed": base[::-1, ::-1], "reversed_columns_step_2": base[::-1, ::-2]}[
        layout
    ]
    expected = np.tanh(view.astype(np.float64)).astype(np.float32)
    tanh_kernel(view)
    np.testing.assert_allclose(view, expected, rtol=1.2e-7, atol=0)
    if layout == "reversed_columns_step_2":
        assert np.array_equal(base[:, 0::2], original[:, 0::2])


def test_the_steps_tanh_on_a_tensor_near_the_clamp() -> None:
    x = torch.from_numpy(_all_float32(8.99, 9.02, SPARSER)).reshape(-1, 1).repeat(1, 2)
    expected = torch.tanh(x.double()).float()
    out = gradients._tanh_(x, True)
    torch.testing.assert_close(out, expected, rtol=1.2e-7, atol=0)


# -- normalize_advantages ------------------------------------------------------------------------


def _float64_expression(adv: torch.Tensor) -> torch.Tensor:
    a = adv.double()
    return ((a - a.mean()) / (a.std() + 1e-8)).float()


def test_two_values_are_plus_minus_one_over_root_two() -> None:
    got = gradients.normalize_advantages(torch.tensor([1.0, 2.0]))
    assert torch.equal(got, _float64_expression(torch.tensor([1.0, 2.0])))
    assert got[1] == -got[0]


@pytest.mark.filterwarnings("ignore:std.*degrees of freedom:UserWarning")
def test_fewer_than_two_values_give_the_torch_expression() -> None:
    """One value: NaN (no unbiased standard deviation), as torch; none: empty (the kernel divided by 0)."""
    one = gradients.normalize_advantages(torch.tensor([1.5]))
    assert one.shape == (1,)
    assert bool(torch.isnan(one).all())
    assert gradients.normalize_advantages(torch.zeros(0)).shape == (0,)


@pytest.mark.parametrize(
    "values",
    [
        [1e30, -1e30, 3e38, 1e30],
        [3e38, 3.4e38, 3.4e38],  # float32 sums overflow: torch gives NaN, the float64 sums do not
        [1e-45, 0.0, 2e-45],
        [1.0, 1.0 + 2**-23],
        [2.0**24, 1.0, 1.0, 1.0, 1.0, -(2.0**24)],  # a float32 running sum would lose the ones
    ],
)
def test_extreme_values_are_the_float64_expression_rounded_once(values: list[float]) -> None:
    adv = torch.tensor(values, dtype=torch.float32)
    expected = _float64_expression(adv)
    assert bool(torch.isfinite(expected).all())
    assert torch.equal(gradients.normalize_advantages(adv), expected)
    assert np.array_equal(_normalized_advantages_python(adv.numpy()), expected.numpy())


@pytest.mark.parametrize("values", [[1.0, float("inf"), 2.0], [-float("inf"), float("inf"), 2.0]])
def test_infinities_make_every_value_nan_as_torch(values: list[float]) -> None:
    adv = torch.tensor(values)
    assert bool(torch.isnan(gradients.normalize_advantages(adv)).all())
    assert bool(torch.isnan((adv - adv.mean()) / (adv.std() + 1e-8)).all())


def test_constant_values_give_exact_zeros() -> None:
    for value in (0.1, -3.4e38, 1e-45):
        assert gradients.normalize_advantages(torch.full((7,), value)).tolist() == [0.0] * 7


def test_a_strided_view_is_its_contiguous_copy() -> None:
    base = torch.randn(41, generator=torch.Generator().manual_seed(3))
    view = base[::2]
    assert not view.is_contiguous()
    assert torch.equal(
        gradients.normalize_advantages(view), gradients.normalize_advantages(view.contiguous())
    )
    assert torch.equal(
        gradients.normalize_advantages(base.flip(0)), gradients.normalize_advantages(base).flip(0)
    )


def test_a_tensor_that_requires_grad_keeps_its_gradient() -> None:
    adv = torch.randn(9, generator=torch.Generator().manual_seed(4), requires_grad=True)
    got = gradients.normalize_advantages(adv)
    assert got.requires_grad
    (got * torch.arange(9.0)).sum().backward()
    assert adv.grad is not None
    assert bool(adv.grad.abs().sum() > 0)
    torch.testing.assert_close(
        got.detach(), gradients.normalize_advantages(adv.detach()), rtol=2e-6, atol=2e-6
    )


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_other_dtypes_and_ranks_take_the_torch_expression(dtype: torch.dtype) -> None:
    adv = torch.randn(6, generator=torch.Generator().manual_seed(5)).to(dtype)
    got = gradients.normalize_advantages(adv)
    assert got.dtype == dtype
    assert torch.equal(got, (adv - adv.mean()) / (adv.std() + 1e-8))
    matrix = torch.randn(4, 3, generator=torch.Generator().manual_seed(6))
    assert torch.equal(
        gradients.normalize_advantages(matrix), (matrix - matrix.mean()) / (matrix.std() + 1e-8)
    )


def test_the_uncompiled_normalisation_is_the_compiled_one() -> None:
    rng = np.random.default_rng(2)
    for n in (2, 3, 17, 257):
        adv = (rng.standard_normal(n) * 10.0 ** rng.uniform(-30, 30)).astype(np.float32)
        assert np.array_equal(_normalized_advantages_python(adv), normalized_advantages_kernel(adv))


# -- end to end ----------------------------------------------------------------------------------


def test_training_without_advantage_normalisation_follows_autograd() -> None:
    agents = [PPOAgent(3, 3, fast_config(analytic_gradients=flag, norm_adv=False)) for flag in (True, False)]
    histories = [agent.train(TargetVecEnv(p_terminate=0.1), total_timesteps=256 * 2) for agent in agents]
    for key in ("policy_loss", "value_loss", "approx_kl", "clipfrac"):
        assert histories[0][0][key] == pytest.approx(histories[1][0][key], rel=1e-3, abs=1e-6)
    for a, b in zip(agents[0].network.parameters(), agents[1].network.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("norm_adv", [True, False])
def test_accumulated_analytic_gradients_match_autograd(norm_adv: bool) -> None:
    """``grad_accum_steps=3`` on a 86-row minibatch (uneven slices): the analytic gradient is the
    autograd one, and the normalisation is over the whole minibatch on both paths."""
    results = []
    for analytic in (True, False):
        agent = PPOAgent(
            3, 3, fast_config(grad_accum_steps=3, analytic_gradients=analytic, norm_adv=norm_adv)
        )
        agent.collect_rollout(TargetVecEnv(p_terminate=0.1))
        batch = agent.buffer.get(agent.device)
        with torch.no_grad():
            agent.network.actor_logstd.add_(0.3)
        stats = agent._accumulate_gradients(batch[torch.arange(len(batch)) % 3 == 0])
        results.append((stats, [p.grad.clone() for p in agent.network.parameters() if p.grad is not None]))
    (s_analytic, g_analytic), (s_autograd, g_autograd) = results
    torch.testing.assert_close(s_analytic, s_autograd, rtol=1e-5, atol=1e-6)
    assert len(g_analytic) == len(g_autograd)
    for a, b in zip(g_analytic, g_autograd, strict=True):
        scale = float(b.abs().max()) + 1e-6
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5 * scale)
