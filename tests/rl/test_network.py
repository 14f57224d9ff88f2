"""ActorCriticNetwork: initialisation, the Gaussian policy, MC dropout, and the NumPy inference copy."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.distributions import Normal

from advanced_risk.errors import InvalidInputError
from advanced_risk.rl.ppo.inference import NumpyPolicy
from advanced_risk.rl.ppo.network import ActorCriticNetwork
from advanced_risk.rl.ppo.normalize import RunningMeanStd

OBS, ACT = 12, 4


def make_net(dropout: float = 0.1, seed: int = 0) -> ActorCriticNetwork:
    return ActorCriticNetwork(
        OBS, ACT, (32, 32), -0.5, dropout, generator=torch.Generator().manual_seed(seed)
    )


def obs_batch(n: int = 16, seed: int = 1) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).standard_normal((n, OBS)).astype(np.float32))


def test_init_is_orthogonal_with_cleanrl_gains_and_log_std_below_zero() -> None:
    net = make_net()
    hidden = net.actor_layers[0]
    assert isinstance(hidden, nn.Linear)
    w = hidden.weight.detach()  # (32, 12): rows orthogonal with gain sqrt(2)
    np.testing.assert_allclose((w.T @ w).numpy(), 2.0 * np.eye(OBS), atol=1e-5)
    assert float(hidden.bias.detach().abs().max()) == 0.0
    head = net.actor_layers[-1]
    assert isinstance(head, nn.Linear)
    assert float(head.weight.detach().norm(dim=1).max()) == pytest.approx(0.01, rel=1e-4)  # tiny actor head
    critic_head = net.critic[-1]
    assert isinstance(critic_head, nn.Linear)
    assert float(critic_head.weight.detach().norm()) == pytest.approx(1.0, rel=1e-4)
    assert torch.equal(net.actor_logstd, torch.full((1, ACT), -0.5))


def test_same_generator_seed_gives_same_weights_without_touching_global_rng() -> None:
    state = torch.get_rng_state()
    a, b = make_net(seed=3), make_net(seed=3)
    assert torch.equal(torch.get_rng_state(), state)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)


def test_log_prob_and_entropy_match_torch_normal() -> None:
    net, obs = make_net(), obs_batch()
    with torch.no_grad():
        net.actor_logstd.copy_(torch.linspace(-1.0, 0.3, ACT).unsqueeze(0))
    action, logp, entropy, value = net.get_action_and_value(obs, generator=torch.Generator().manual_seed(0))
    dist = Normal(net.action_mean(obs), net.actor_logstd.exp().expand(len(obs), ACT))
    torch.testing.assert_close(logp, dist.log_prob(action).sum(-1))  # type: ignore[no-untyped-call]
    torch.testing.assert_close(entropy, dist.entropy().sum(-1))  # type: ignore[no-untyped-call]
    assert value.shape == (len(obs),)
    _, logp_again, _, _ = net.get_action_and_value(obs, action)
    torch.testing.assert_close(logp_again, logp)


def test_policy_ignores_train_mode_so_ppo_ratios_are_consistent() -> None:
    net, obs = make_net(dropout=0.5), obs_batch()
    action = torch.zeros(len(obs), ACT)
    net.train()
    _, logp_train, _, _ = net.get_action_and_value(obs, action)
    net.eval()
    _, logp_eval, _, _ = net.get_action_and_value(obs, action)
    assert torch.equal(logp_train, logp_eval)
    assert torch.equal(net(obs), net.action_mean(obs))


def test_predict_std_is_positive_with_dropout_and_zero_without() -> None:
    obs = obs_batch(5)
    mean, std = make_net(dropout=0.1).predict(obs, n_samples=10)
    assert mean.shape == std.shape == (5, ACT)
    assert bool((std > 0).all())
    mean0, std0 = make_net(dropout=0.0).predict(obs, n_samples=10)
    assert bool((std0 == 0).all())
    torch.testing.assert_close(mean0, make_net(dropout=0.0)(obs))


def test_predict_runs_all_samples_in_one_forward_pass() -> None:
    net, calls = make_net(), []
    net.actor_layers[0].register_forward_hook(lambda _m, inp, _out: calls.append(inp[0].shape[0]))
    net.predict(obs_batch(3), n_samples=10)
    assert calls == [30]


def test_predict_single_observation_and_rejects_zero_samples() -> None:
    net = make_net()
    mean, std = net.predict(obs_batch(1)[0], n_samples=7)
    assert mean.shape == std.shape == (ACT,)
    with pytest.raises(InvalidInputError, match="n_samples"):
        net.predict(obs_batch(1), n_samples=0)


@pytest.mark.parametrize("kwargs", [{"obs_dim": 0}, {"dropout": 1.0}, {"hidden_sizes": ()}], ids=str)
def test_invalid_constructor_arguments_raise(kwargs: dict[str, object]) -> None:
    args: dict[str, object] = {"obs_dim": OBS, "action_dim": ACT} | kwargs
    with pytest.raises(InvalidInputError):
        ActorCriticNetwork(**args)  # type: ignore[arg-type]


def _snapshot(net: ActorCriticNetwork) -> tuple[NumpyPolicy, RunningMeanStd]:
    rms = RunningMeanStd((OBS,))
    rms.update(np.random.default_rng(5).normal(3.0, 2.0, (100, OBS)))
    return net.numpy_policy(rms, obs_clip=10.0), rms


def test_numpy_policy_matches_torch_forward() -> None:
    net = make_net()
    with torch.no_grad():  # a non-trivial head so the comparison means something
        for p in net.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
    policy, rms = _snapshot(net)
    raw = np.random.default_rng(2).normal(3.0, 2.0, (64, OBS))
    expected = net(torch.from_numpy(rms.normalize(raw, 10.0))).detach().numpy()
    np.testing.assert_allclose(policy.mean_action(raw), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(policy.mean_action(raw[0]), expected[0], rtol=1e-5, atol=1e-5)


def test_numpy_mc_dropout_agrees_with_torch_in_distribution() -> None:
    net = make_net(dropout=0.2)
    policy, rms = _snapshot(net)
    raw = np.random.default_rng(3).normal(3.0, 2.0, OBS)
    action, std_np = policy.mc_dropout(raw, 4000, np.random.default_rng(0))
    torch.manual_seed(0)
    _, std_torch = net.predict(torch.from_numpy(rms.normalize(raw, 10.0)), n_samples=4000)
    np.testing.assert_allclose(action, policy.mean_action(raw))
    np.testing.assert_allclose(std_np, std_torch.numpy(), rtol=0.15)
    assert math.isclose(float(std_np.mean()), float(std_torch.mean()), rel_tol=0.1)
