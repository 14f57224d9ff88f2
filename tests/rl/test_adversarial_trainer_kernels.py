"""Adversarial checks of the PPO trainer's CPU kernels and the agent's fast paths.

The analytic step's numba kernels (``gradients._tanh_``, ``_tanh_grad``, ``_head``),
the rollout's ``RunningMeanStd.update_normalize`` and the agent's cached parameter lists, on the
inputs most likely to break them: odd shapes, micro-batches, views, NaN, checkpoints.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
import torch

from advanced_risk.config import PPOConfig
from advanced_risk.rl.ppo import gradients
from advanced_risk.rl.ppo.agent import PPOAgent
from advanced_risk.rl.ppo.buffer import RolloutBatch
from advanced_risk.rl.ppo.kernels import _tanh_grad_python, tanh_grad_kernel
from advanced_risk.rl.ppo.network import ActorCriticNetwork
from advanced_risk.rl.ppo.normalize import RunningMeanStd

from .test_ppo import TargetVecEnv, fast_config, weights
from .test_ppo_gradients import _analytic, _autograd, _batch
from .test_ppo_rollout_kernels import assert_update_normalize_is_numpys


def _same(x: np.ndarray, y: np.ndarray) -> bool:
    """Equal bit for bit (dtype, shape, NaN and signed zeros included)."""
    return x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes()


def _relative_error(ours: dict[str, torch.Tensor], ref: dict[str, torch.Tensor]) -> float:
    assert ours.keys() == ref.keys()
    return max(float((ours[k] - ref[k]).abs().max()) / (float(ref[k].abs().max()) + 1e-6) for k in ref)


def _train(cfg: PPOConfig, dim: int = 3, **kw: Any) -> tuple[PPOAgent, list[dict[str, float]]]:
    agent = PPOAgent(dim, dim, cfg)
    history = agent.train(TargetVecEnv(num_envs=cfg.num_envs, dim=dim, p_terminate=0.1), **kw)
    return agent, history


# -- RunningMeanStd.update_normalize ---------------------------------------------------------------
@pytest.mark.parametrize("width", [1, 2, 6])
def test_update_normalize_refuses_a_batch_of_another_width(width: int) -> None:
    """The kernel indexed the statistics by the batch's width: a wider batch read past their end,
    a narrower one replaced them with statistics of another shape, both silently."""
    rms = RunningMeanStd((3,))
    with pytest.raises(ValueError, match="shape"):
        rms.update_normalize(np.ones((4, width), dtype=np.float32), 5.0)
    assert rms.mean.shape == rms.var.shape == (3,)
    assert rms.version == 0


@pytest.mark.parametrize("rows", [8, 9, 64, 300])
@pytest.mark.parametrize("layout", ["one feature", "fortran order"])
def test_update_normalize_is_update_then_normalize_for_one_feature_and_fortran_order(
    rows: int, layout: str
) -> None:
    """NumPy sums a column pairwise when it is contiguous in memory (one feature, or a batch in
    Fortran order): the kernel's row-by-row sum must not replace it there."""
    gen = np.random.default_rng(rows)
    mismatches = 0
    for _ in range(10):
        if layout == "one feature":
            x = (gen.standard_normal((rows, 1)) * 1e3 + 7).astype(np.float32)
        else:
            x = np.asfortranarray((gen.standard_normal((rows, 4)) * 1e3 + 7).astype(np.float32))
        ours, theirs = RunningMeanStd(x.shape[1:]), RunningMeanStd(x.shape[1:])
        out = ours.update_normalize(x, 10.0)
        theirs.update(x)
        expected = theirs.normalize(x, 10.0)
        same = _same(out, expected) and _same(ours.mean, theirs.mean) and _same(ours.var, theirs.var)
        mismatches += not same
    assert mismatches == 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rows", [1, 3])
@pytest.mark.parametrize("loaded", [False, True])
def test_update_normalize_with_nan_inf_a_row_float64_and_loaded_statistics(
    dtype: type, rows: int, loaded: bool
) -> None:
    x = (np.random.default_rng(rows).standard_normal((rows, 4)) * 3).astype(dtype)
    x[0, 1], x[-1, 2], x[0, 3] = np.nan, np.inf, -np.inf
    ours, theirs = RunningMeanStd((4,)), RunningMeanStd((4,))
    if loaded:
        state = {"mean": torch.tensor([1.0, 2, 3, 4]), "var": torch.tensor([0.5, 1, 2, 3]), "count": 17}
        ours.load_state_dict(state)
        theirs.load_state_dict(state)
    assert_update_normalize_is_numpys(ours, theirs, x, 5.0)


def test_training_without_observation_normalisation_leaves_the_statistics_alone() -> None:
    agent, history = _train(fast_config(norm_obs=False, total_timesteps=256))
    assert agent.obs_rms.count == pytest.approx(1e-4)
    assert agent.obs_rms.version == 0
    assert np.isfinite(history[-1]["policy_loss"])


# -- the analytic step's kernels ---------------------------------------------------------------------
@pytest.mark.parametrize("action_dim", [1, 3])
@pytest.mark.parametrize("hidden", [(8,), (8, 8, 8)])
@pytest.mark.parametrize("rows", [1, 2, 37])
@pytest.mark.parametrize("clip_vloss", [True, False])
def test_the_step_matches_autograd_for_small_shapes(
    action_dim: int, hidden: tuple[int, ...], rows: int, clip_vloss: bool
) -> None:
    net = ActorCriticNetwork(
        5, action_dim, hidden, init_log_std=0.2, generator=torch.Generator().manual_seed(1)
    )
    cfg = PPOConfig(device="cpu", clip_vloss=clip_vloss, ent_coef=0.0)
    batch = _batch(net, rows, 3)
    ref_stats, ref = _autograd(net, batch, cfg)
    stats, ours = _analytic(net, batch, cfg)
    torch.testing.assert_close(stats, ref_stats, rtol=1e-5, atol=1e-6)
    assert _relative_error(ours, ref) < 1e-5


def test_views_and_strided_inputs_give_the_contiguous_gradient_and_stay_untouched() -> None:
    net = ActorCriticNetwork(5, 3, (8, 8), init_log_std=0.2, generator=torch.Generator().manual_seed(1))
    cfg = PPOConfig(device="cpu")
    b = _batch(net, 40, 3)

    def strided(t: torch.Tensor) -> torch.Tensor:
        return t.t().contiguous().t() if t.dim() == 2 else t.repeat_interleave(2)[::2]

    views = RolloutBatch(
        *[strided(t) for t in (b.obs, b.actions, b.log_probs, b.values, b.advantages, b.returns)]
    )
    assert not views.obs.is_contiguous()
    assert not views.advantages.is_contiguous()
    originals = [t.clone() for t in (views.obs, views.actions, views.advantages)]
    stats, ours = _analytic(net, views, cfg)
    ref_stats, ref = _analytic(net, b, cfg)
    torch.testing.assert_close(stats, ref_stats, rtol=1e-6, atol=1e-7)
    assert _relative_error(ours, ref) < 1e-5  # the products' summation order differs for views
    assert all(
        torch.equal(a, o)
        for a, o in zip((views.obs, views.actions, views.advantages), originals, strict=True)
    )
    # a broadcast (stride 0) action is read as its expanded copy
    expanded = replace(b, actions=b.actions[:1].expand(40, 3))
    _, ours = _analytic(net, expanded, cfg)
    _, ref = _analytic(net, replace(b, actions=b.actions[:1].expand(40, 3).contiguous()), cfg)
    assert all(torch.equal(ours[k], ref[k]) for k in ref)


def test_tanh_and_its_gradient_work_in_place_on_transposed_views() -> None:
    gen = torch.Generator().manual_seed(0)
    base = torch.randn(6, 4, generator=gen)
    view = base.t()  # (4, 6), not contiguous
    expected = torch.tanh(view)
    out = gradients._tanh_(view, True)
    assert out is view
    torch.testing.assert_close(base.t(), expected, rtol=0, atol=3e-7)  # written through the view
    delta_base = torch.randn(6, 4, generator=gen)
    delta = delta_base.t()
    want = delta * (1.0 - view * view)
    got, sums = gradients._tanh_grad(delta, view, True)
    assert got is delta
    assert torch.equal(delta_base.t(), want)
    torch.testing.assert_close(sums, want.sum(0), rtol=1e-5, atol=1e-6)


def test_the_forward_pass_keeps_the_tanh_outputs_the_backward_pass_needs() -> None:
    net = ActorCriticNetwork(5, 2, (8, 8), generator=torch.Generator().manual_seed(2))
    obs = torch.randn(7, 5, generator=torch.Generator().manual_seed(3))
    actor, _ = net.linear_params()
    with torch.no_grad():
        outs = gradients._forward(obs, actor, True)
        x = obs
        for k, (w, b) in enumerate(actor):
            x = torch.nn.functional.linear(x, w, b)
            x = x if k == len(actor) - 1 else torch.tanh(x)
            torch.testing.assert_close(outs[k + 1], x, rtol=0, atol=5e-7)
    assert outs[0] is obs


def test_the_python_tanh_gradient_is_the_compiled_one() -> None:
    gen = np.random.default_rng(0)
    delta = gen.standard_normal((9, 5)).astype(np.float32)
    x = np.tanh(gen.standard_normal((9, 5))).astype(np.float32)
    assert _same(_tanh_grad_python(delta.copy(), x), tanh_grad_kernel(delta.copy(), x))


# -- the agent -------------------------------------------------------------------------------------
def _minibatch_gradients(cfg: PPOConfig, dim: int) -> tuple[torch.Tensor, list[torch.Tensor]]:
    agent = PPOAgent(dim, dim, cfg)
    agent.collect_rollout(TargetVecEnv(dim=dim, p_terminate=0.1))
    batch = agent.buffer.get(agent.device)
    minibatch = batch[torch.arange(len(batch)) % 3 == 0]  # 86 rows
    with torch.no_grad():
        agent.network.actor_logstd.add_(0.3)
    stats = agent._accumulate_gradients(minibatch)
    return stats, [p.grad.clone() for p in agent.network.parameters() if p.grad is not None]


@pytest.mark.parametrize("k", [1, 3, 86, 200])
@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"norm_adv": False},
        {"clip_vloss": False, "ent_coef": 0.0},
        {"hidden_sizes": (8,)},
        {"hidden_sizes": (8, 8, 8)},
    ],
)
@pytest.mark.parametrize("dim", [1, 3])
def test_micro_batches_accumulate_autograds_gradient(k: int, overrides: dict[str, Any], dim: int) -> None:
    ref_stats, ref = _minibatch_gradients(
        fast_config(analytic_gradients=False, grad_accum_steps=k, **overrides), dim
    )
    stats, ours = _minibatch_gradients(fast_config(grad_accum_steps=k, **overrides), dim)
    assert len(ours) == len(ref) == 2 * 2 * (len(fast_config(**overrides).hidden_sizes) + 1) + 1
    torch.testing.assert_close(stats, ref_stats, rtol=1e-5, atol=1e-6)
    for g, r in zip(ours, ref, strict=True):
        assert float((g - r).abs().max()) <= 1e-5 * (float(r.abs().max()) + 1e-6)


@pytest.mark.parametrize("analytic", [True, False])
def test_a_one_row_minibatch_with_advantage_normalisation_keeps_the_weights_finite(analytic: bool) -> None:
    """One row has no standard deviation: normalising its advantage made it NaN and every weight NaN."""
    cfg = fast_config(num_envs=2, num_steps=8, num_minibatches=16, update_epochs=1, total_timesteps=16 * 2)
    agent, history = _train(replace(cfg, analytic_gradients=analytic))
    assert all(bool(torch.isfinite(w).all()) for w in weights(agent))
    assert np.isfinite(history[-1]["policy_loss"])


def test_early_stop_takes_autograds_steps_and_repeats_bit_for_bit() -> None:
    cfg = fast_config(target_kl=0.01)
    first, h1 = _train(cfg)
    second, _h2 = _train(cfg)
    _, reference = _train(replace(cfg, analytic_gradients=False))
    assert [h["optimizer_steps"] for h in h1] == [h["optimizer_steps"] for h in reference]
    assert any(h["early_stop"] for h in h1)
    assert all(torch.equal(a, b) for a, b in zip(weights(first), weights(second), strict=True))


@pytest.mark.parametrize(
    "overrides", [{"grad_accum_steps": 3, "target_kl": 0.02}, {"hidden_sizes": (8, 8, 8)}]
)
def test_resuming_from_a_state_dict_or_continuing_is_the_uninterrupted_run(overrides: dict[str, Any]) -> None:
    cfg = fast_config(**overrides)
    straight, _ = _train(cfg)
    env = TargetVecEnv(p_terminate=0.1)
    first = PPOAgent(3, 3, cfg)
    first.train(env, callback=lambda update, _stats: update == 2)
    state, env_copy = copy.deepcopy(first.state_dict()), copy.deepcopy(env)
    resumed = PPOAgent(3, 3, cfg)
    resumed.load_state_dict(state)
    resumed.train(env_copy, reset_num_timesteps=False)
    first.train(env, reset_num_timesteps=False)  # the same agent, gradients of its last minibatch still set
    for a, b, c in zip(weights(straight), weights(resumed), weights(first), strict=True):
        assert torch.equal(a, b)
        assert torch.equal(a, c)


def test_one_action_and_one_hidden_layer_still_learn() -> None:
    cfg = fast_config(hidden_sizes=(32,), total_timesteps=256 * 12)
    agent, env = PPOAgent(1, 1, cfg), TargetVecEnv(dim=1)
    probe = np.linspace(-1, 1, 101, dtype=np.float32)[:, None]
    before = float(np.mean((agent.select_action(probe) - probe) ** 2))
    agent.train(env)
    after = float(np.mean((agent.select_action(probe) - probe) ** 2))
    assert before > 0.3
    assert after < 0.5 * before


@pytest.mark.slow
def test_torch_compile_trains_with_micro_batches_and_early_stop() -> None:
    cfg = fast_config(grad_accum_steps=2, target_kl=0.02, total_timesteps=256 * 2)
    eager, h_eager = _train(cfg)
    compiled, h_compiled = _train(replace(cfg, torch_compile=True))
    assert [h["optimizer_steps"] for h in h_compiled] == [h["optimizer_steps"] for h in h_eager]
    for a, b in zip(weights(eager), weights(compiled), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-5)
