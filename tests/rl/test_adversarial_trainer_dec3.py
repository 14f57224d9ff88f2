"""Adversarial tests of the Dec 3 trainer changes: ``kernels.gaussian_sample_kernel``,
``optim.clip_grad_norm_`` and the compiled ``Book.observe``.

What broke before the fixes in this commit: a gradient list mixing dtypes clipped differently from
``torch.nn.utils.clip_grad_norm_`` in the last bit (torch stacks the per-tensor norms group by group
by device and dtype, not in list order); a ``max_norm`` beyond float32's range or an infinite norm
with an infinite ``max_norm`` emitted NumPy ``RuntimeWarning`` s (errors under this project's pytest
filter); the Gaussian kernel took the log-density of the unrounded float64 action when ``mean`` or
``noise`` was float64, and read past ``noise`` / ``log_std`` of a wrong shape; ``Book.observe`` read
out of bounds for a row index ``>= N`` or ``< -N``, read a boolean mask as the indices 0 and 1, and
truncated float indices.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

import advanced_risk.rl.ppo.agent as agent_module
from advanced_risk.config import EnvConfig, PPOConfig
from advanced_risk.errors import InvalidInputError
from advanced_risk.rl import TradingEnvironment, VectorTradingEnv
from advanced_risk.rl.portfolio.market import CorrelatedGBM
from advanced_risk.rl.ppo.agent import PPOAgent
from advanced_risk.rl.ppo.kernels import HALF_LOG_2PI, gaussian_sample_kernel
from advanced_risk.rl.ppo.optim import clip_grad_norm_

from .test_ppo import TargetVecEnv

# --------------------------------------------------------------------------- clip_grad_norm_


def _torch_clip(grads: list[torch.Tensor], max_norm: float) -> None:
    """The reference: ``torch.nn.utils.clip_grad_norm_(foreach=True)`` on parameters holding ``grads``."""
    params = []
    for g in grads:
        p = nn.Parameter(torch.zeros_like(g))
        p.grad = g
        params.append(p)
    nn.utils.clip_grad_norm_(params, max_norm, foreach=True)


def _bits(t: torch.Tensor) -> torch.Tensor:
    return t.contiguous().reshape(-1).view(torch.uint8)


def _assert_clips_like_torch(make: Callable[[], list[torch.Tensor]], max_norm: float) -> None:
    ours, theirs = make(), make()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a NumPy overflow/invalid warning is a failure here
        clip_grad_norm_(ours, max_norm)
    _torch_clip(theirs, max_norm)
    for a, b in zip(ours, theirs, strict=True):
        assert a.dtype == b.dtype
        assert torch.equal(_bits(a), _bits(b)), (max_norm, a, b)


def _randn(*shapes: tuple[int, ...], scale: float = 1.0, dtype: torch.dtype = torch.float32) -> Any:
    def make() -> list[torch.Tensor]:
        return [
            (torch.randn(s, generator=torch.Generator().manual_seed(i), dtype=torch.float64) * scale).to(
                dtype
            )
            for i, s in enumerate(shapes)
        ]

    return make


SPECIAL_MAX_NORMS = [0.5, 0.0, -0.0, -1.0, 1e-45, 3e38, float("inf"), float("-inf"), float("nan")]


@pytest.mark.parametrize("max_norm", [*SPECIAL_MAX_NORMS, 1e40, 1e300, -1e300])
def test_clip_is_torchs_for_any_max_norm_without_numpy_warnings(max_norm: float) -> None:
    """``max_norm`` 0, -0.0, negative, subnormal, at and past float32's range (torch rounds it to
    +-inf; NumPy's cast warned ``overflow``), infinite and NaN: bit for bit torch, no warning."""
    _assert_clips_like_torch(_randn((3, 4), (5,), (2, 2, 2)), max_norm)


@pytest.mark.parametrize("max_norm", SPECIAL_MAX_NORMS)
@pytest.mark.parametrize("special", [float("inf"), float("-inf"), float("nan"), 0.0, 1e38, 1e-30])
def test_clip_with_non_finite_or_extreme_gradients(special: float, max_norm: float) -> None:
    """An infinite norm with an infinite ``max_norm`` is ``0 * inf`` (NumPy warned ``invalid``)."""
    _assert_clips_like_torch(lambda: [torch.tensor([special, 1.0]), torch.ones(3)], max_norm)
    _assert_clips_like_torch(lambda: [torch.full((4,), special)], max_norm)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("max_norm", [0.5, 1e5, float("inf"), float("nan")])
def test_clip_of_other_dtypes_is_torchs(dtype: torch.dtype, max_norm: float) -> None:
    _assert_clips_like_torch(_randn((3, 4), (5,), scale=3.0, dtype=dtype), max_norm)


def test_clip_of_a_list_mixing_dtypes_is_torchs_bit_for_bit() -> None:
    """torch groups the gradients by (device, dtype) and stacks the per-tensor norms group by group
    (float32 before float16 whatever the list order); summing them in list order changed the total
    norm's last bit in ~5% of these lists before the fix."""
    rng = np.random.default_rng(0)
    dtypes = [torch.float32, torch.float64, torch.float16, torch.bfloat16]
    for _ in range(400):
        picked = [dtypes[i] for i in rng.integers(0, 4, size=rng.integers(2, 8))]
        values = [rng.standard_normal(rng.integers(1, 20)) * 10.0 ** rng.integers(-3, 3) for _ in picked]

        def make(values: list[np.ndarray] = values, picked: list[torch.dtype] = picked) -> list[torch.Tensor]:
            return [torch.tensor(v).to(d) for v, d in zip(values, picked, strict=True)]  # copies

        _assert_clips_like_torch(make, 0.5)


@pytest.mark.parametrize(
    "make",
    [
        _randn((7,)),  # a single gradient
        lambda: [torch.zeros(0), torch.zeros(3, 0)],  # only empty gradients: norm 0
        lambda: [torch.zeros(0), torch.ones(3) * 4.0],
        lambda: [torch.zeros(5), torch.zeros(2)],  # norm 0: coefficient 1e6, clamped to 1
        lambda: [-torch.zeros(3)],  # -0.0 kept (no multiply at 1)
        lambda: [torch.randn(6, 6, generator=torch.Generator().manual_seed(1)).t(), torch.arange(16.0)[::2]],
    ],
)
def test_clip_of_degenerate_and_strided_lists(make: Callable[[], list[torch.Tensor]]) -> None:
    for max_norm in (0.5, 1e-3, 1e9):
        _assert_clips_like_torch(make, max_norm)


def test_clip_of_an_empty_list_does_nothing() -> None:
    clip_grad_norm_([], 0.5)


def test_training_with_the_clip_firing_every_step_is_torchs_and_reproducible(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A tiny ``max_grad_norm`` makes every step clip (coefficient < 1): two runs with one seed end
    bit for bit alike, and equal to a run clipping with ``torch.nn.utils.clip_grad_norm_``."""
    config = PPOConfig(
        num_envs=4, num_steps=16, num_minibatches=2, update_epochs=2, learning_rate=3e-3,
        total_timesteps=64 * 3, target_kl=None, device="cpu", seed=3, hidden_sizes=(16, 16),
    )  # fmt: skip
    config = replace(config, max_grad_norm=1e-3)

    def weights() -> list[torch.Tensor]:
        agent = PPOAgent(3, 3, config)
        agent.train(TargetVecEnv(num_envs=4, p_terminate=0.1))
        return [p.detach().clone() for p in agent.network.parameters()]

    first, second = weights(), weights()
    monkeypatch.setattr(agent_module, "clip_grad_norm_", _torch_clip)
    reference = weights()
    for a, b, c in zip(first, second, reference, strict=True):
        assert torch.equal(_bits(a), _bits(b))
        assert torch.equal(_bits(a), _bits(c))


# --------------------------------------------------------------------------- gaussian_sample_kernel


def _inputs(n: int = 5, a: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    mean = rng.normal(0.0, 2.0, (n, a)).astype(np.float32)
    log_std = rng.uniform(-3.0, 1.0, (1, a)).astype(np.float32)
    noise = rng.standard_normal((n, a)).astype(np.float32)
    return mean, log_std, noise


def test_gaussian_log_prob_is_the_stored_float32_actions_with_float64_inputs() -> None:
    """float64 ``mean`` and ``noise``: ``mean + std * noise`` is float64 and was stored rounded while
    ``z`` was taken from the unrounded sum. Here the rounding erases the noise entirely (``1e4 +
    2e-9 * 3`` is ``1e4`` in float32), so the stored action's ``z`` is 0, not 3."""
    mean = np.array([[1e4]])
    log_std = np.array([[-20.0]], dtype=np.float32)
    noise = np.array([[3.0]])
    action, log_prob = gaussian_sample_kernel(mean, log_std, noise)
    assert action.dtype == log_prob.dtype == np.float32
    assert action[0, 0] == np.float32(1e4)
    assert log_prob[0] == pytest.approx(20.0 - HALF_LOG_2PI, rel=1e-6)  # z = 0: no -z^2/2 = -4.5


def test_gaussian_float64_inputs_agree_with_the_float32_kernel_on_float32_values() -> None:
    """Inputs exactly representable in float32 give the float32 kernel's action whatever their dtype."""
    mean, log_std, noise = _inputs(9, 4, seed=2)
    action, _ = gaussian_sample_kernel(mean, log_std, noise)
    mean64, noise64 = mean.astype(np.float64), noise.astype(np.float64)
    action64, log_prob64 = gaussian_sample_kernel(mean64, log_std, noise64)
    np.testing.assert_allclose(action64, action, rtol=1e-6, atol=1e-6)
    z = (action64.astype(np.float64) - mean64) / np.exp(log_std.astype(np.float64))
    exact = (-0.5 * z * z - log_std.astype(np.float64) - HALF_LOG_2PI).sum(-1)
    np.testing.assert_allclose(log_prob64, exact, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("noise_shape", "log_std_shape"),
    [
        ((2, 3), (1, 3)),
        ((5, 2), (1, 3)),
        ((5, 4), (1, 3)),
        ((5, 3), (1, 2)),
        ((5, 3), (0, 3)),
        ((5, 3), (2, 3)),
    ],
)
def test_gaussian_kernel_refuses_mismatched_shapes(
    noise_shape: tuple[int, int], log_std_shape: tuple[int, int]
) -> None:
    """Compiled, the loops are unchecked: a short ``noise`` or ``log_std`` was read out of bounds
    (garbage actions, no error)."""
    mean = np.zeros((5, 3), dtype=np.float32)
    with pytest.raises(ValueError, match="noise must be mean's shape"):
        gaussian_sample_kernel(mean, np.zeros(log_std_shape, np.float32), np.ones(noise_shape, np.float32))


def test_gaussian_kernel_takes_any_layout_and_read_only_arrays() -> None:
    mean, log_std, noise = _inputs(6, 4, seed=4)
    action, log_prob = gaussian_sample_kernel(mean, log_std, noise)
    wide_mean = np.repeat(mean, 2, axis=1)[:, ::2]
    frozen_std = log_std.copy()
    frozen_std.flags.writeable = False
    for m, s, z in [
        (np.asfortranarray(mean), log_std, np.asfortranarray(noise)),
        (wide_mean, log_std, noise[::-1][::-1]),
        (mean, frozen_std, noise),
    ]:
        got_action, got_log_prob = gaussian_sample_kernel(m, s, z)
        assert np.array_equal(got_action.view(np.int32), action.view(np.int32))
        assert np.array_equal(got_log_prob.view(np.int32), log_prob.view(np.int32))


@pytest.mark.parametrize("value", [100.0, -100.0, 88.8, -88.8, 50.0, -50.0, np.inf, -np.inf, np.nan])
def test_gaussian_kernel_with_extreme_log_std_is_the_numpy_expression(value: float) -> None:
    """``exp(+-100)`` over/underflows float32: the action and the pattern of infinite / NaN
    log-densities are the NumPy expression's the kernel replaced (``z = (action - mean) * inf`` is
    NaN where the action rounded to the mean, as torch's ``Normal.log_prob`` divides 0 by a variance
    of 0). ``np.errstate``: the uncompiled twin's NumPy scalars warn, the compiled kernel does not."""
    mean, _, noise = _inputs(4, 3, seed=1)
    log_std = np.full((1, 3), value, np.float32)
    with np.errstate(all="ignore"):
        action, log_prob = gaussian_sample_kernel(mean, log_std, noise)
        expected_action = (mean + np.exp(log_std) * noise).astype(np.float32)
        z = (expected_action - mean) * np.exp(-log_std)
        expected = (-0.5 * z * z - log_std - np.float32(HALF_LOG_2PI)).sum(-1)
    np.testing.assert_allclose(action, expected_action, rtol=1e-6, atol=0)
    np.testing.assert_allclose(log_prob, expected, rtol=1e-5, atol=0)  # NaN and inf where NumPy's


# --------------------------------------------------------------------------- Book.observe


def _market(n: int) -> CorrelatedGBM:
    return CorrelatedGBM(np.linspace(-0.5, 0.3, n), 0.9, 0.5)


@pytest.fixture
def stepped() -> VectorTradingEnv:
    vec = VectorTradingEnv(EnvConfig(asset_count=3, window=5, max_steps=20), 4, seed=3, market=_market(3))
    vec.reset()
    rng = np.random.default_rng(1)
    for _ in range(5):
        vec.step(rng.normal(0.0, 2.0, (4, vec.action_dim)))
    return vec


def _expected(vec: VectorTradingEnv, rows: Any) -> np.ndarray:
    book = vec._book
    md = book.features.shape[2]
    r = np.asarray(rows) if len(rows) else np.zeros(0, dtype=np.int64)
    out = np.empty((book.features[r].shape[0], vec.observation_dim), dtype=np.float32)
    out[:, :md] = book.features[r, book.t[r]]
    out[:, md:-1] = book.weights[r]
    out[:, -1] = 1.0 - book.value[r] / book.peak[r]
    return out


@pytest.mark.parametrize(
    "rows",
    [
        [2, 0],
        np.array([3, 1], np.int32),
        np.array([3, 1], np.uint8),
        [-1],
        [-4, 3, -4],  # negative and duplicated, as NumPy indexes
        np.array([True, False, True, True]),  # a mask (read as rows [1, 0, 1, 1] before the fix)
        np.ones(4, dtype=bool),
        np.array([], dtype=np.int64),
        [],
    ],
)
def test_observe_rows_index_as_numpy_does(stepped: VectorTradingEnv, rows: Any) -> None:
    expected = _expected(stepped, rows)
    got = np.full_like(expected, np.nan)
    stepped._book.observe(got, rows)
    assert np.array_equal(got.view(np.int32), expected.view(np.int32))


@pytest.mark.parametrize(
    "rows",
    [[4], [-5], [10**6], [2**63 - 1], np.array([2**64 - 1], np.uint64), [0.7], [[0, 1]], np.ones(3, bool)],
)
def test_observe_refuses_rows_out_of_range_before_reading(stepped: VectorTradingEnv, rows: Any) -> None:
    """An index ``>= N`` or ``< -N`` was read unchecked by the kernel (``t[e]`` past the array, then
    ``features[e]``): garbage or a crash. Floats were truncated, a short mask read as indices."""
    k = np.asarray(rows).shape[0]
    out = np.full((k, stepped.observation_dim), 7.0, dtype=np.float32)
    with pytest.raises(IndexError):
        stepped._book.observe(out, rows)
    assert (out == 7.0).all()  # refused before anything is written


def test_observe_out_layouts_and_a_read_only_out(stepped: VectorTradingEnv) -> None:
    expected = _expected(stepped, np.arange(4))
    for out in (np.zeros((8, stepped.observation_dim), np.float32)[::2], np.zeros_like(expected, order="F")):
        stepped._book.observe(out)
        assert np.array_equal(out, expected)
    frozen = np.zeros_like(expected)
    frozen.flags.writeable = False
    with pytest.raises(InvalidInputError, match="out must be float32"):
        stepped._book.observe(frozen)


@pytest.mark.parametrize("seed", [0, 7])
def test_vector_env_is_single_envs_bit_for_bit_through_many_autoresets(seed: int) -> None:
    """Short episodes (max_steps 6) in a volatile market: many truncations and some ruins, every
    observation (and final observation) bit for bit the single environments'."""
    config = EnvConfig(asset_count=2, window=4, max_steps=6, ruin_fraction=0.8)
    market, n = _market(2), 5
    vec = VectorTradingEnv(config, n, seed=seed, market=market)
    singles = [TradingEnvironment(config, market=market) for _ in range(n)]
    obs, _ = vec.reset()
    for i, env in enumerate(singles):
        assert np.array_equal(env.reset(seed=seed + i)[0], obs[i])
    rng = np.random.default_rng(seed)
    resets = 0
    for _ in range(40):
        actions = rng.normal(0.0, 3.0, (n, vec.action_dim))
        obs, _, term, trunc, info = vec.step(actions)
        for i, env in enumerate(singles):
            o, _, te, tr, _ = env.step(actions[i])
            assert (te, tr) == (bool(term[i]), bool(trunc[i]))
            assert np.array_equal(info["final_obs"][i], o)
            if te or tr:
                resets += 1
                o, _ = env.reset()
            assert np.array_equal(obs[i], o)
    assert resets >= 2 * n
