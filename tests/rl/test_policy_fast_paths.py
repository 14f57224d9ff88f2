"""The buffered MC dropout of the decision's policy (``rl/ppo/dropout_kernels.py``, issue 14) against
the NumPy formulation it replaces (``NumpyPolicy.mc_dropout`` and its pieces, kept verbatim here as
the reference): every output bit for bit (``np.testing.assert_array_equal``, NaN equal, dtypes and
signed zeros compared), never a tolerance. Random inputs, signed zeros, NaN, batch rows, several
layer counts, sample counts and dropout rates; the runner's fallbacks (dropout 0, one sample); the
trade after it (``accounting.trade_kernel`` against ``execute(held, action_to_weights(action))``).
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from advanced_risk.config import EnvConfig
from advanced_risk.rl.portfolio.accounting import (
    ACTION_BOUND,
    action_to_weights,
    history_length,
    trade_kernel,
)
from advanced_risk.rl.portfolio.allocator import _mean as allocator_mean
from advanced_risk.rl.portfolio.policy import PortfolioPolicy, execute
from advanced_risk.rl.ppo.dropout_kernels import (
    DropoutRunner,
    head_std_kernel,
    masked_first_kernel,
    masked_kernel,
    normalize_kernel,
    rescale_kernel,
)
from advanced_risk.rl.ppo.inference import NumpyPolicy

F32 = NDArray[np.float32]


def _same(a: NDArray[Any], b: NDArray[Any]) -> None:
    """Bit for bit: same dtype, same shape, same values with NaN equal and the sign of zeros."""
    assert a.dtype == b.dtype
    assert a.shape == b.shape
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(np.signbit(a), np.signbit(b))


def _population_std_reference(x: F32) -> F32:
    n = x.shape[0]
    mean = x.sum(axis=0, keepdims=True)
    mean /= n
    dev = x - mean
    dev *= dev
    var = dev.sum(axis=0)
    var /= n
    out: F32 = np.sqrt(var, out=var)
    return out


def _spiky(rng: np.random.Generator, shape: tuple[int, ...], nan: bool = False) -> F32:
    """float32 values over many scales, with exact zeros of both signs (and NaN when asked)."""
    x = (rng.normal(size=shape) * 10.0 ** rng.integers(-3, 3, size=shape)).astype(np.float32)
    x[rng.random(shape) < 0.1] = 0.0
    x[rng.random(shape) < 0.1] = -0.0
    if nan:
        x[rng.random(shape) < 0.05] = np.nan
    return x


def _policy(rng: np.random.Generator, widths: list[int], dropout: float, normalise: bool) -> NumpyPolicy:
    weights = tuple(
        (rng.normal(size=(a, b)) / np.sqrt(a)).astype(np.float32) for a, b in itertools.pairwise(widths)
    )
    biases = tuple((rng.normal(size=b) * 0.1).astype(np.float32) for b in widths[1:])
    mean = rng.normal(size=widths[0]) if normalise else None
    scale = rng.uniform(0.1, 3.0, size=widths[0]) if normalise else None
    return NumpyPolicy(weights, biases, np.zeros(widths[-1], np.float32), dropout, mean, scale, 5.0)


def _runner(p: NumpyPolicy, n_samples: int) -> DropoutRunner:
    return DropoutRunner(p.weights, p.biases, p.dropout, p.obs_mean, p.obs_scale, p.obs_clip, n_samples)


@pytest.mark.parametrize("seed", range(20))
def test_normalize_kernel_is_numpy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 300))
    obs = rng.normal(size=n) * 10.0 ** rng.integers(-2, 3)
    obs[rng.random(n) < 0.05] = np.nan
    obs[rng.random(n) < 0.05] = -0.0
    mean, scale, clip = rng.normal(size=n), rng.uniform(1e-3, 5.0, size=n), float(rng.uniform(0.5, 10))
    out = np.empty(n, np.float32)
    normalize_kernel(obs, mean, scale, clip, out)
    _same(out, np.clip((obs - mean) / scale, -clip, clip).astype(np.float32))


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("rows", [1, 3])
def test_layer_kernels_are_numpy(seed: int, rows: int) -> None:
    rng = np.random.default_rng(seed)
    n_samples, width, offset = int(rng.integers(1, 12)), int(rng.integers(1, 40)), int(rng.integers(0, 5))
    keep = np.float32(rng.choice([0.5, 0.9, 1.0 - 0.1, 0.999]))
    draws = rng.random((n_samples * rows, offset + width), dtype=np.float32)
    kept = draws[:, offset : offset + width] < keep
    h = _spiky(rng, (rows, width), nan=True)
    out = np.empty((n_samples * rows, width), np.float32)
    masked_first_kernel(draws, offset, keep, h, out)
    _same(out, (kept.reshape(n_samples, rows, -1) * h).reshape(n_samples * rows, -1))

    x = _spiky(rng, (n_samples * rows, width), nan=True)
    masked_kernel(draws, offset, keep, x, out)
    _same(out, x * kept)

    b = _spiky(rng, (width,))
    y = x.copy()
    rescale_kernel(y, keep, b)
    _same(y, x / keep + b)


@pytest.mark.parametrize("seed", range(30))
@pytest.mark.parametrize("rows", [1, 2])
def test_head_std_kernel_is_numpy(seed: int, rows: int) -> None:
    rng = np.random.default_rng(seed)
    n_samples, m = int(rng.integers(1, 20)), int(rng.integers(2, 30))
    keep = np.float32(0.9)
    x = _spiky(rng, (n_samples * rows, m), nan=seed % 3 == 0)
    if seed % 5 == 0:  # columns of equal values, of signed zeros: std exactly 0
        x[:, 0] = x[0, 0]
        x[:, 1] = -0.0
    b = _spiky(rng, (m,))
    samples = x / keep + b
    std = np.empty((rows, m), np.float32)
    y = x.copy()
    head_std_kernel(y, keep, b, n_samples, std)
    _same(y, samples)
    _same(std, _population_std_reference(samples.reshape(n_samples, rows, m)).reshape(rows, m))


@pytest.mark.parametrize("seed", range(12))
def test_runner_is_mc_dropout(seed: int) -> None:
    rng = np.random.default_rng(seed)
    hidden = [int(w) for w in rng.integers(1, 70, size=int(rng.integers(1, 4)))]
    widths = [int(rng.integers(1, 200)), *hidden, int(rng.integers(2, 25))]
    p = _policy(rng, widths, float(rng.choice([0.05, 0.1, 0.5])), normalise=seed % 4 != 0)
    n_samples = int(rng.integers(2, 16))
    runner = _runner(p, n_samples)
    for t in range(5):
        obs = rng.normal(size=widths[0]) * 10.0 ** rng.integers(-2, 3)
        if t == 4:
            obs[0] = np.nan  # NaN propagates as in NumPy
        a1, s1 = p.mc_dropout(obs, n_samples, np.random.default_rng(t))
        a2, s2 = runner.run(obs, np.random.default_rng(t))
        _same(a2, a1)
        _same(s2, s1)


def test_runner_refuses_what_it_does_not_replicate() -> None:
    p = _policy(np.random.default_rng(0), [5, 4, 3], 0.1, normalise=True)
    for dropout, n_samples in [(0.0, 10), (1.0, 10), (0.1, 1)]:
        with pytest.raises(ValueError, match="DropoutRunner needs"):
            DropoutRunner(p.weights, p.biases, dropout, p.obs_mean, p.obs_scale, p.obs_clip, n_samples)
    one = _policy(np.random.default_rng(0), [5, 4, 1], 0.1, normalise=True)
    with pytest.raises(ValueError, match="DropoutRunner needs"):
        _runner(one, 10)


def _portfolio(dropout: float) -> PortfolioPolicy:
    shipped = PortfolioPolicy.load("models/ppo_sp500_2012.armodel")
    p = shipped.policy
    policy = NumpyPolicy(p.weights, p.biases, p.log_std, dropout, p.obs_mean, p.obs_scale, p.obs_clip)
    return PortfolioPolicy(policy, shipped.settings, 7)


@pytest.mark.parametrize("dropout", [0.0, 0.1])
@pytest.mark.parametrize("n_samples", [1, 2, 10])
def test_rebalance_trusted_is_the_numpy_path(dropout: float, n_samples: int) -> None:
    """The policy's decisions with and without the runner (the fallbacks included), bar after bar."""
    fast, slow = _portfolio(dropout), _portfolio(dropout)
    slow._dropout_runner = lambda n: None  # type: ignore[method-assign]
    rng = np.random.default_rng(n_samples)
    n = fast.asset_count
    for _ in range(5):
        returns = rng.normal(0.0, 0.01, size=(40, n))
        weights = rng.dirichlet(np.ones(n + 1))
        w1, s1 = slow.rebalance_trusted(returns, weights, 0.05, n_samples)
        w2, s2 = fast.rebalance_trusted(returns, weights, 0.05, n_samples)
        _same(w2, w1)
        _same(s2, s1)


def test_runner_follows_a_replaced_policy() -> None:
    pp = _portfolio(0.1)
    first = pp._dropout.runner_for(pp.policy, 10)
    assert first is not None
    assert pp._dropout.runner_for(pp.policy, 10) is first
    pp.policy = _portfolio(0.2).policy
    second = pp._dropout.runner_for(pp.policy, 10)
    assert second is not None
    assert second is not first
    assert second.keep == np.float32(0.8)


@pytest.mark.parametrize("seed", range(30))
def test_trade_kernel_is_execute(seed: int) -> None:
    """``trade_kernel`` against ``execute(held, action_to_weights(action))``: inside and outside the
    no-trade band, rate 1 and below, actions beyond the clip bound, NaN actions."""
    rng = np.random.default_rng(seed)
    m = int(rng.integers(2, 40))
    action = (rng.normal(size=m) * 10.0 ** rng.integers(-2, 2)).astype(np.float32)
    if seed % 7 == 0:
        action[0] = np.nan
    if seed % 5 == 0:
        action[-1] = 50.0
    held = rng.dirichlet(np.ones(m))
    config = EnvConfig(
        asset_count=m - 1,
        no_trade_band=float(rng.choice([0.0, 0.02, 0.5, 1.99])),
        rebalance_rate=float(rng.choice([1.0, 0.2, 0.7])),
    )
    out = np.empty(m)
    trade_kernel(action, held, ACTION_BOUND, config.no_trade_band, config.rebalance_rate, out)
    _same(out, execute(held, action_to_weights(action), config))


@pytest.mark.parametrize("seed", range(20))
def test_uncertainty_mean_is_numpy(seed: int) -> None:
    """``allocator._mean`` (the pairwise kernel) against ``float(x.mean())``, NaN and odd layouts included."""
    rng = np.random.default_rng(seed)
    x = np.abs(rng.normal(size=int(rng.integers(1, 300)))) * 10.0 ** rng.integers(-4, 2)
    if seed % 4 == 0:
        x[0] = np.nan
    for y in (x, x[::2], x.astype(np.float32), x.reshape(1, -1)):
        assert_same_float(allocator_mean(y), float(y.mean()))


def assert_same_float(a: float, b: float) -> None:
    np.testing.assert_array_equal(np.float64(a), np.float64(b))


@pytest.mark.parametrize(("dropout", "n_samples"), [(0.1, 10), (0.3, 2), (0.0, 10), (0.1, 1)])
def test_agent_uncertainty_is_the_numpy_path_before_and_after_a_weight_change(
    dropout: float, n_samples: int
) -> None:
    """``PPOAgent.select_action_with_uncertainty`` (the runner, for one observation) gives
    ``NumpyPolicy.mc_dropout``'s bits and draws, for one observation and a batch, and follows an
    in-place change of the weights (the snapshot is rebuilt, and so is the runner)."""
    torch = pytest.importorskip("torch")
    from advanced_risk.config import PPOConfig
    from advanced_risk.rl.ppo.agent import PPOAgent

    agent = PPOAgent(12, 4, PPOConfig(dropout=dropout, hidden_sizes=(16, 8), device="cpu", seed=3))
    rng = np.random.default_rng(4)
    for step in range(3):
        for obs in (rng.normal(size=12), rng.normal(size=(5, 12))):
            twin = np.random.default_rng()
            twin.bit_generator.state = agent.inference_rng.bit_generator.state
            expected = agent._inference_policy().mc_dropout(obs, n_samples, twin)
            got = agent.select_action_with_uncertainty(obs, n_samples)
            for a, b in zip(got, expected, strict=True):
                _same(a, b)
            assert agent.inference_rng.bit_generator.state == twin.bit_generator.state
        first = got[0].copy()
        agent.select_action_with_uncertainty(rng.normal(size=12), n_samples)
        np.testing.assert_array_equal(got[0], first)  # the caller's arrays are not the runner's buffers
        with torch.no_grad():  # an in-place edit, as an optimizer step
            next(agent.network.parameters()).add_(0.05 * (step + 1))


def test_manager_rebalance_trusted_trades_as_execute_bit_for_bit() -> None:
    """``RLPortfolioManager.rebalance_trusted`` (the object a bot may pass as its policy) trades with
    ``policy.trade``: the same bits as ``execute(weights, action_to_weights(action))`` on the action
    and draws of ``select_action_with_uncertainty``; a list book takes the NumPy formulation."""
    pytest.importorskip("torch")
    from advanced_risk.config import PPOConfig
    from advanced_risk.rl.portfolio.manager import RLPortfolioManager
    from advanced_risk.rl.portfolio.policy import trade

    cfg = EnvConfig(asset_count=4, no_trade_band=0.01, rebalance_rate=0.5)
    manager = RLPortfolioManager(env_config=cfg, ppo_config=PPOConfig(device="cpu", seed=5))
    rng = np.random.default_rng(6)
    for _ in range(20):
        returns = rng.normal(0.0, 0.01, (history_length(cfg), 4))
        weights = rng.dirichlet(np.ones(5))
        state = manager.agent.inference_rng.bit_generator.state
        got, std = manager.rebalance_trusted(returns, weights, 0.05, 10)
        manager.agent.inference_rng.bit_generator.state = state
        obs = manager._observation_trusted(returns, weights, 0.05)
        action, expected_std = manager.agent.select_action_with_uncertainty(obs, 10)
        _same(got, execute(weights, action_to_weights(action), cfg))
        _same(std, expected_std.astype(np.float64))
        _same(trade(list(weights), action, cfg), execute(list(weights), action_to_weights(action), cfg))
