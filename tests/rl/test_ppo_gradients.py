"""The hand-derived PPO gradient equals autograd's gradient of ``ppo_loss``.

The reference is autograd through :func:`advanced_risk.rl.ppo.loss.ppo_loss` (the definition of the
objective) on the same network and minibatch. The two sum in different orders, so they agree up to
float32 rounding, not bit for bit.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from advanced_risk.config import PPOConfig
from advanced_risk.errors import ConfigError
from advanced_risk.rl.ppo import gradients
from advanced_risk.rl.ppo.agent import PPOAgent
from advanced_risk.rl.ppo.buffer import RolloutBatch
from advanced_risk.rl.ppo.gradients import ppo_gradients
from advanced_risk.rl.ppo.loss import ppo_loss
from advanced_risk.rl.ppo.network import ActorCriticNetwork

from .test_ppo import TargetVecEnv
from .test_ppo_fast_paths import fast_config


def _batch(net: ActorCriticNetwork, n: int, seed: int, spread: float = 0.3) -> RolloutBatch:
    """A minibatch collected by ``net`` whose stored log-probs and values are perturbed by ``spread``,
    so that ratios fall inside and outside the clip range and value errors on both sides."""
    gen = torch.Generator().manual_seed(seed)
    obs = torch.randn(n, net.obs_dim, generator=gen)
    with torch.no_grad():
        actions, log_probs, _, values = net.get_action_and_value(obs, generator=gen)
    return RolloutBatch(
        obs,
        actions,
        log_probs + spread * torch.randn(n, generator=gen),
        values + spread * torch.randn(n, generator=gen),
        torch.randn(n, generator=gen),
        values + torch.randn(n, generator=gen),
    )


def _autograd(
    net: ActorCriticNetwork, batch: RolloutBatch, cfg: PPOConfig
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    net.zero_grad(set_to_none=True)
    loss, stats = ppo_loss(net, batch, batch.advantages, cfg)
    torch.autograd.backward(loss)
    grads = {name: p.grad.clone() for name, p in net.named_parameters() if p.grad is not None}
    net.zero_grad(set_to_none=True)
    return torch.stack(stats), grads


def _analytic(
    net: ActorCriticNetwork, batch: RolloutBatch, cfg: PPOConfig
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    actor, critic = net.linear_params()
    with torch.no_grad():
        stats, actor_grads, critic_grads, log_std_grad = ppo_gradients(
            actor, critic, net.actor_logstd, batch.obs, batch.actions, batch.log_probs, batch.values,
            batch.returns, batch.advantages, cfg.clip_coef, cfg.ent_coef, cfg.vf_coef, cfg.clip_vloss,
        )  # fmt: skip
    by_param = {id(p): g for layer, grads in zip(actor + critic, actor_grads + critic_grads, strict=True)
                for p, g in zip(layer, grads, strict=True)}  # fmt: skip
    by_param[id(net.actor_logstd)] = log_std_grad
    return stats, {name: by_param[id(p)] for name, p in net.named_parameters()}


def _assert_close(net: ActorCriticNetwork, batch: RolloutBatch, cfg: PPOConfig) -> None:
    ref_stats, ref = _autograd(net, batch, cfg)
    stats, ours = _analytic(net, batch, cfg)
    torch.testing.assert_close(stats, ref_stats, rtol=1e-5, atol=1e-6)
    assert ours.keys() == ref.keys()
    for name, grad in ref.items():
        scale = float(grad.abs().max()) + 1e-6
        torch.testing.assert_close(ours[name], grad, rtol=1e-4, atol=1e-5 * scale, msg=name)


@pytest.mark.parametrize("clip_vloss", [True, False])
@pytest.mark.parametrize("ent_coef", [0.0, 0.01])
def test_matches_autograd_on_a_perturbed_minibatch(clip_vloss: bool, ent_coef: float) -> None:
    net = ActorCriticNetwork(12, 5, (16, 8), init_log_std=-0.2, generator=torch.Generator().manual_seed(0))
    cfg = PPOConfig(clip_vloss=clip_vloss, ent_coef=ent_coef, vf_coef=0.7, clip_coef=0.2)
    batch = _batch(net, 64, seed=1)
    ratio = torch.exp(_autograd_logp(net, batch) - batch.log_probs)
    assert bool(((ratio - 1).abs() > 0.2).any())
    assert bool(((ratio - 1).abs() < 0.2).any())
    _assert_close(net, batch, cfg)


def _autograd_logp(net: ActorCriticNetwork, batch: RolloutBatch) -> torch.Tensor:
    with torch.no_grad():
        return net.get_action_and_value(batch.obs, batch.actions)[1]


@settings(max_examples=40, deadline=None)
@given(
    obs_dim=st.integers(1, 9),
    action_dim=st.integers(1, 6),
    hidden=st.lists(st.integers(1, 12), min_size=1, max_size=3),
    n=st.integers(1, 40),
    seed=st.integers(0, 10_000),
    clip_vloss=st.booleans(),
    clip=st.sampled_from([0.05, 0.2, 0.5]),
)
def test_matches_autograd_for_any_shape(
    obs_dim: int, action_dim: int, hidden: list[int], n: int, seed: int, clip_vloss: bool, clip: float
) -> None:
    net = ActorCriticNetwork(obs_dim, action_dim, hidden, generator=torch.Generator().manual_seed(seed))
    cfg = PPOConfig(clip_vloss=clip_vloss, clip_coef=clip, ent_coef=0.003)
    _assert_close(net, _batch(net, n, seed=seed + 1), cfg)


@pytest.fixture
def torch_tanh(monkeypatch: pytest.MonkeyPatch) -> None:
    """The analytic step with torch's tanh, as autograd's forward: exact ties in one are then exact
    ties in the other (on CPU the step's NumPy tanh may differ from torch's by an ulp)."""
    monkeypatch.setattr(gradients, "_tanh_", lambda y, in_numpy: torch.tanh_(y))


@pytest.mark.usefixtures("torch_tanh")
def test_ties_give_autograds_gradient() -> None:
    """Ratio exactly 1 (the collecting policy) ties the surrogate's two terms on every row; value
    errors mirrored around the clipped value tie the value loss's two terms outside the range."""
    net = ActorCriticNetwork(6, 3, (8,), generator=torch.Generator().manual_seed(4))
    gen = torch.Generator().manual_seed(5)
    obs = torch.randn(32, 6, generator=gen)
    with torch.no_grad():
        actions, log_probs, _, values = net.get_action_and_value(obs, generator=gen)
    clip = 0.25
    old_values = values - 2 * clip  # every new value is 2 * clip above its old one: clipped to + clip
    returns = values - clip / 2  # |v - R| == |v_c - R| == clip / 2: a tie outside the clip range
    batch = RolloutBatch(obs, actions, log_probs, old_values, torch.randn(32, generator=gen), returns)
    v_c = old_values + clip
    assert int(((values - returns) ** 2 == (v_c - returns) ** 2).sum()) > 0  # the tie is exact somewhere
    _assert_close(net, batch, PPOConfig(clip_coef=clip, clip_vloss=True))


@pytest.mark.usefixtures("torch_tanh")
def test_values_inside_the_clip_range_whose_clipped_term_rounds_larger_keep_their_gradient() -> None:
    """Inside the range ``v_c = v_old + (v - v_old)`` is ``v`` only up to a rounding, so on some rows
    the clipped term is the larger by an ulp and carries the gradient (autograd's choice)."""
    net = ActorCriticNetwork(5, 2, (8,), generator=torch.Generator().manual_seed(6))
    gen = torch.Generator().manual_seed(7)
    n = 4096
    obs = torch.randn(n, 5, generator=gen)
    with torch.no_grad():
        net.linear_params()[1][-1][0].mul_(0.05)  # values near 0, steps of up to 0.19: v_c rounds often
        actions, log_probs, _, values = net.get_action_and_value(obs, generator=gen)
    old_values = values + 0.19 * (2 * torch.rand(n, generator=gen) - 1)  # inside the 0.2 range
    returns = values + torch.randn(n, generator=gen)
    v_c = old_values + (values - old_values).clamp(-0.2, 0.2)
    assert int(((v_c - returns) ** 2 > (values - returns) ** 2).sum()) > 0
    batch = RolloutBatch(obs, actions, log_probs, old_values, torch.randn(n, generator=gen), returns)
    _assert_close(net, batch, PPOConfig(clip_coef=0.2, clip_vloss=True))


def test_a_nan_propagates_into_the_gradient_as_with_autograd() -> None:
    net = ActorCriticNetwork(4, 2, (8,), generator=torch.Generator().manual_seed(2))
    batch = _batch(net, 16, seed=3)
    for field in ("advantages", "returns", "log_probs"):
        values = getattr(batch, field).clone()
        values[5] = float("nan")
        broken = replace(batch, **{field: values})
        cfg = PPOConfig()
        _, ref = _autograd(net, broken, cfg)
        _, ours = _analytic(net, broken, cfg)
        for name in ref:
            assert bool(torch.isnan(ours[name]).any()) == bool(torch.isnan(ref[name]).any()), (field, name)


def test_training_with_analytic_gradients_follows_autograd() -> None:
    """A few whole updates (rollouts, shuffles, clip, Adam) with either gradient end close."""
    agents = [PPOAgent(3, 3, fast_config(analytic_gradients=flag)) for flag in (True, False)]
    histories = [agent.train(TargetVecEnv(p_terminate=0.1), total_timesteps=256 * 2) for agent in agents]
    assert agents[0].analytic
    assert not agents[1].analytic
    for key in ("policy_loss", "value_loss", "approx_kl", "clipfrac"):
        assert histories[0][0][key] == pytest.approx(histories[1][0][key], rel=1e-3, abs=1e-6)
    for a, b in zip(agents[0].network.parameters(), agents[1].network.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("analytic", [True, False])
def test_grad_accumulation_equals_one_minibatch_on_both_paths(analytic: bool) -> None:
    grads = []
    for k in (1, 3):
        agent = PPOAgent(3, 3, fast_config(grad_accum_steps=k, analytic_gradients=analytic))
        agent.collect_rollout(TargetVecEnv(p_terminate=0.1))
        batch = agent.buffer.get(agent.device)
        with torch.no_grad():
            agent.network.actor_logstd.add_(0.3)
        stats = agent._accumulate_gradients(batch[torch.arange(len(batch)) % 3 == 0])
        grads.append((stats, [p.grad.clone() for p in agent.network.parameters() if p.grad is not None]))
    (s1, g1), (s3, g3) = grads
    torch.testing.assert_close(s3, s1, rtol=1e-5, atol=1e-6)
    for a, b in zip(g1, g3, strict=True):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6)


def test_the_switch_must_be_a_bool() -> None:
    with pytest.raises(ConfigError, match="analytic_gradients must be True or False"):
        PPOConfig(analytic_gradients="yes")  # type: ignore[arg-type]
    assert PPOConfig().analytic_gradients is True
    assert np.isfinite(PPOConfig().clip_coef)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(-30.0, 30.0, width=32), min_size=1, max_size=300))
def test_the_steps_tanh_is_the_exact_tanh_within_one_ulp_and_in_place(values: list[float]) -> None:
    """The analytic step's CPU tanh (the rational kernel, in place) against float64 tanh rounded to
    float32 (torch's float32 tanh is itself within ~1.4 ulp): within 1 ulp."""
    y = torch.tensor(values, dtype=torch.float32).reshape(-1, 1).expand(-1, 3).contiguous()
    expected = torch.tanh(y.double()).float()
    out = gradients._tanh_(y, True)
    assert out is y
    torch.testing.assert_close(out, expected, rtol=1.2e-7, atol=1e-45)  # 1 ulp (2^-23 relative)
    assert bool((out.abs() <= 1.0).all())


def test_the_steps_tanh_keeps_nan_and_infinities() -> None:
    y = torch.tensor([[float("nan"), float("inf"), -float("inf"), 0.0, -0.0]])
    out = gradients._tanh_(y.clone(), True)
    assert torch.isnan(out[0, 0])
    assert out[0, 1:].tolist() == [1.0, -1.0, 0.0, -0.0]
    assert torch.signbit(out[0, 4])
