"""The trainer's fast paths compute what the plain torch code computes.

NumPy rollout sampling against ``get_action_and_value``, the inlined gradient clip against
``clip_grad_norm_``, ``RolloutBatch.gather`` against indexing, and seeded training against itself.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from advanced_risk.config import PPOConfig
from advanced_risk.rl.ppo.agent import PPOAgent
from advanced_risk.rl.ppo.buffer import RolloutBatch
from advanced_risk.rl.ppo.network import ActorCriticNetwork

from .test_ppo import TargetVecEnv


def fast_config(**overrides: Any) -> PPOConfig:
    base = PPOConfig(
        num_envs=8, num_steps=32, num_minibatches=4, update_epochs=4, learning_rate=3e-3,
        total_timesteps=256 * 3, target_kl=None, device="cpu", seed=0, hidden_sizes=(32, 32),
    )  # fmt: skip
    return replace(base, **overrides)


def test_numpy_rollout_sampler_matches_the_torch_policy_for_the_same_noise() -> None:
    net = ActorCriticNetwork(7, 4, (16, 16), init_log_std=0.3, generator=torch.Generator().manual_seed(3))
    obs = np.random.default_rng(0).normal(size=(8, 7)).astype(np.float32)
    torch_action, torch_logp, _, torch_value = net.get_action_and_value(
        torch.from_numpy(obs), generator=torch.Generator().manual_seed(5)
    )
    noise = torch.randn((8, 4), generator=torch.Generator().manual_seed(5)).numpy()
    action, logp, value = net.rollout_sampler().sample(obs, noise)
    assert action.dtype == logp.dtype == value.dtype == np.float32
    np.testing.assert_allclose(action, torch_action.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(logp, torch_logp.detach().numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(value, torch_value.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_rollout_sampler_views_follow_in_place_weight_updates() -> None:
    net = ActorCriticNetwork(3, 2, (8,), generator=torch.Generator().manual_seed(0))
    sampler = net.rollout_sampler()
    obs = np.ones((1, 3), dtype=np.float32)
    before = sampler.value(obs).copy()
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.5)
    assert not np.array_equal(before, sampler.value(obs))
    np.testing.assert_allclose(
        sampler.value(obs), net.get_value(torch.from_numpy(obs)).detach().numpy(), rtol=1e-6
    )


def test_optimizer_step_clips_exactly_like_clip_grad_norm() -> None:
    agent = PPOAgent(3, 3, fast_config(max_grad_norm=0.1))
    agent.optimizer.step = lambda *a, **kw: None  # type: ignore[method-assign]  # look at the clip only
    gen = torch.Generator().manual_seed(1)
    for p in agent.network.parameters():
        p.grad = torch.randn(p.shape, generator=gen)
    copies = [nn.Parameter(p.detach().clone()) for p in agent.network.parameters()]
    for copied, p in zip(copies, agent.network.parameters(), strict=True):
        copied.grad = None if p.grad is None else p.grad.clone()
    nn.utils.clip_grad_norm_(copies, 0.1, foreach=True)
    reference = [c.grad for c in copies]
    agent._optimizer_step()
    clipped = [p.grad for p in agent.network.parameters()]
    for ours, theirs in zip(clipped, reference, strict=True):
        assert ours is not None
        assert theirs is not None
        assert torch.equal(ours, theirs)
    norm = torch.linalg.vector_norm(torch.cat([g.flatten() for g in clipped if g is not None]))
    assert float(norm) == pytest.approx(0.1)


def test_gather_equals_advanced_indexing() -> None:
    gen = torch.Generator().manual_seed(0)
    n = 50
    shapes: list[tuple[int, ...]] = [(n, 4), (n, 2), (n,), (n,), (n,), (n,)]
    batch = RolloutBatch(*(torch.randn(shape, generator=gen) for shape in shapes))
    index = torch.randperm(n, generator=gen)
    gathered, indexed = batch.gather(index), batch[index]
    for field in ("obs", "actions", "log_probs", "values", "advantages", "returns"):
        assert torch.equal(getattr(gathered, field), getattr(indexed, field))


def test_seeded_training_is_bit_for_bit_reproducible() -> None:
    runs = []
    for _ in range(2):
        agent = PPOAgent(3, 3, fast_config())
        history = agent.train(TargetVecEnv(p_terminate=0.1))
        runs.append(([p.detach().clone() for p in agent.network.parameters()], history))
    (w1, h1), (w2, h2) = runs
    assert all(torch.equal(a, b) for a, b in zip(w1, w2, strict=True))
    for a, b in zip(h1, h2, strict=True):
        assert {k: v for k, v in a.items() if k != "sps"} == {k: v for k, v in b.items() if k != "sps"}


@pytest.mark.slow
def test_torch_compile_option_trains_like_eager() -> None:
    eager, compiled = PPOAgent(3, 3, fast_config()), PPOAgent(3, 3, fast_config(torch_compile=True))
    h_eager = eager.train(TargetVecEnv(p_terminate=0.1), total_timesteps=256)
    h_compiled = compiled.train(TargetVecEnv(p_terminate=0.1), total_timesteps=256)
    for key in ("policy_loss", "value_loss", "approx_kl"):
        assert h_compiled[0][key] == pytest.approx(h_eager[0][key], rel=1e-3, abs=1e-6)
    for a, b in zip(eager.network.parameters(), compiled.network.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-5)


@pytest.mark.filterwarnings("ignore:.*GradScaler.*:FutureWarning")  # the old class, simulated on a new torch
def test_the_agent_trains_where_torch_has_no_fused_cpu_adam_or_amp_grad_scaler(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """torch 2.2-2.3 (the declared floor is 2.2): no fused Adam on CPU (2.4) and no
    ``torch.amp.GradScaler`` (2.3); the agent falls back to foreach Adam and the CUDA scaler class."""
    adam = torch.optim.Adam

    def no_fused_cpu(params: Any, **kw: Any) -> torch.optim.Adam:
        if kw.get("fused"):
            raise RuntimeError("`fused=True` requires all the params to be floating point Tensors of "
                               "supported devices: ['cuda', 'xpu', 'privateuseone'].")  # fmt: skip
        return adam(params, **kw)

    monkeypatch.setattr(torch.optim, "Adam", no_fused_cpu)
    monkeypatch.delattr(torch.amp, "GradScaler")
    agent = PPOAgent(3, 3, fast_config())
    assert not agent.optimizer.defaults["fused"]
    assert agent.optimizer.defaults["foreach"]
    history = agent.train(TargetVecEnv(p_terminate=0.1), total_timesteps=256)
    assert np.isfinite(history[-1]["policy_loss"])
    assert agent.state_dict()["scaler"] == {}
    # a checkpoint of a machine with fused Adam keeps this one's implementation when loaded
    monkeypatch.setattr(torch.optim, "Adam", adam)
    fused = PPOAgent(3, 3, fast_config())
    fused.train(TargetVecEnv(p_terminate=0.1), total_timesteps=256)
    assert fused.optimizer.param_groups[0]["fused"]
    agent.load_state_dict(fused.state_dict())
    assert not agent.optimizer.param_groups[0]["fused"]
    assert agent.optimizer.param_groups[0]["foreach"]
