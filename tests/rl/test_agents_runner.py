"""The buffered act of the risk agents (``rl/agents/runner.py``) against the allocating path it replaced.

``RiskAgents.act_arrays`` takes ``AgentsRunner`` where it applies and ``NumpyPolicy.mc_samples`` plus
the decoding kernels otherwise (also while another thread is inside the runner). Both must give the
same bits and draw the same masks, call after call (the buffers are reused); the advisor's direct
gating from the arrays must give the advice of ``RiskAgents.act`` + ``gate``.
"""

from __future__ import annotations

import copy
import itertools
import math
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from advanced_risk.config import EnvConfig, SizingConfig
from advanced_risk.rl.agents.advisor import RiskAgentsAdvisor
from advanced_risk.rl.agents.bookkeeping_kernel import first_bad_price_kernel
from advanced_risk.rl.agents.interface import AGENTS, obs_dim
from advanced_risk.rl.agents.policy import AgentActor, RiskAgents
from advanced_risk.rl.portfolio.accounting import market_features_kernel
from advanced_risk.rl.ppo.inference import NumpyPolicy
from advanced_risk.rl.ppo.normalize import RunningMeanStd

SHIPPED = Path(__file__).resolve().parents[2] / "models" / "risk_agents_sp500.armodel"
OUTPUTS = {"sizer": 1, "stop": 2, "monitor": 4}


def make_agents(assets: int, shared: bool, normalise: bool, hidden: tuple[int, ...], seed: int) -> RiskAgents:
    """Random actors (heads that often leave [-1, 1]) and normalisers, dropout 0.25."""
    rng = np.random.default_rng(seed)
    dims = {a: obs_dim(a, assets) for a in AGENTS}
    policies = {}
    for a in AGENTS:
        width = max(dims.values()) + len(AGENTS) if shared else dims[a]
        head = 4 if shared else OUTPUTS[a] + int(rng.integers(0, 2))
        sizes = (width, *hidden, head)
        net = NumpyPolicy(
            weights=tuple(
                rng.normal(0.0, 1.5 / math.sqrt(i), (i, o)).astype(np.float32)
                for i, o in itertools.pairwise(sizes)
            ),
            biases=tuple(rng.normal(0.0, 0.5, o).astype(np.float32) for o in sizes[1:]),
            log_std=np.zeros(head, np.float32),
            dropout=0.25,
            obs_mean=None,
            obs_scale=None,
            obs_clip=10.0,
        )
        policies[a] = AgentActor(net, width, OUTPUTS[a], a == "monitor")
    rms = None
    if normalise:
        rms = {a: RunningMeanStd((dims[a],)) for a in AGENTS}
        for a, r in rms.items():
            r.mean, r.var = rng.normal(0.0, 3.0, dims[a]), rng.lognormal(0.0, 2.0, dims[a])
    return RiskAgents(policies, rms, EnvConfig(asset_count=assets), share_parameters=shared, obs_clip=5.0)


def observations(agents: RiskAgents, rng: np.random.Generator, dtype: Any, scale: float) -> dict[str, Any]:
    return {a: (rng.normal(0.0, scale, agents.obs_dims[a])).astype(dtype) for a in AGENTS}


def allocating(agents: RiskAgents, obs: dict[str, Any], n_samples: int) -> tuple[np.ndarray, ...]:
    """``act_arrays`` through the allocating path: the runner is held busy, as by another thread."""
    runner = agents._runner_for(n_samples)
    assert runner is not None
    with runner._busy:
        return tuple(a.copy() for a in agents.act_arrays(obs, n_samples))


def assert_bits(new: tuple[np.ndarray, ...], old: tuple[np.ndarray, ...]) -> None:
    for x, y in zip(new, old, strict=True):
        assert x.dtype == y.dtype
        assert x.shape == y.shape
        assert np.array_equal(x, y, equal_nan=True), (x, y)
        assert np.array_equal(np.signbit(x), np.signbit(y))


CASES = list(
    itertools.product([2, 5, 20], [False, True], [False, True], [(8,), (16, 16), (24, 8, 16)], [2, 3, 10, 17])
)


@pytest.mark.parametrize(("assets", "shared", "normalise", "hidden", "n_samples"), CASES)
def test_the_runner_gives_the_allocating_paths_bits_call_after_call(
    assets: int, shared: bool, normalise: bool, hidden: tuple[int, ...], n_samples: int
) -> None:
    seed = assets * 1000 + len(hidden) * 10 + n_samples
    fast = make_agents(assets, shared, normalise, hidden, seed)
    slow = make_agents(assets, shared, normalise, hidden, seed)
    fast.reseed(7)
    slow.reseed(7)
    rng = np.random.default_rng(seed)
    for step in range(6):  # buffers reused; both generators advance alike
        dtype = np.float32 if step % 2 else np.float64
        obs = observations(fast, rng, dtype, 30.0 if step == 3 else 2.0)
        assert_bits(
            tuple(a.copy() for a in fast.act_arrays(obs, n_samples)), allocating(slow, obs, n_samples)
        )


def test_nan_and_infinite_observations_propagate_as_in_the_allocating_path() -> None:
    fast, slow = (make_agents(4, False, True, (16, 16), 3) for _ in range(2))
    fast.reseed(3)
    slow.reseed(3)
    rng = np.random.default_rng(3)
    for bad in (np.nan, np.inf, -np.inf):
        obs = observations(fast, rng, np.float64, 1.0)
        obs["stop"][2] = bad
        assert_bits(tuple(a.copy() for a in fast.act_arrays(obs, 10)), allocating(slow, obs, 10))


def test_act_returns_arrays_that_the_next_call_does_not_overwrite() -> None:
    agents = make_agents(3, False, True, (16,), 1)
    rng = np.random.default_rng(1)
    first = agents.act(observations(agents, rng, np.float64, 1.0))
    kept = {a: np.copy(v) for a, v in first.actions.items()}
    agents.act(observations(agents, rng, np.float64, 1.0))
    for a, v in first.actions.items():
        assert np.array_equal(v, kept[a])


def test_one_sample_and_no_dropout_take_the_allocating_path() -> None:
    agents = make_agents(3, False, False, (16,), 2)
    assert agents._runner_for(1) is None
    rng = np.random.default_rng(2)
    obs = observations(agents, rng, np.float32, 1.0)
    assert agents.act(obs, 1).uncertainty == dict.fromkeys(AGENTS, 0.0)


@pytest.fixture(scope="module")
def shipped() -> RiskAgents:
    return RiskAgents.load(SHIPPED)


@pytest.mark.parametrize("threshold", [None, 0.0, 0.02, {"sizer": 0.01, "stop": 1.0, "monitor": 0.05}])
def test_the_advisors_direct_gating_gives_the_advice_of_act_and_gate(
    shipped: RiskAgents, threshold: Any
) -> None:
    sizing = SizingConfig(atr_multiplier=2.3)  # not a float32 value: the rule's stop is read back
    fast, slow = (RiskAgentsAdvisor(shipped, sizing, 10, threshold) for _ in range(2))
    assert fast._slices is not None
    rng = np.random.default_rng(11)
    for step in range(40):
        shipped.reseed(step)
        scale = 40.0 if step % 7 == 3 else 1.5  # some observations far outside the training data
        obs: dict[str, Any] = observations(shipped, rng, np.float32, scale)
        obs["drift"] = None
        advice = fast.advise(obs)
        shipped.reseed(step)
        assert advice == slow._gated_advice(obs)


def warm_advisor(agents: RiskAgents, rng: np.random.Generator, bars: int) -> tuple[RiskAgentsAdvisor, Any]:
    advisor = RiskAgentsAdvisor(agents, SizingConfig(), 10)
    n = agents.asset_count
    returns = rng.normal(0.0, 0.02, (bars, n))
    close = 100.0 * np.cumprod(1.0 + returns, axis=0)
    held = (rng.random(n) < 0.6) / n
    stops = close[0] * 0.97
    for row in close:
        advisor.observe(row, held, float(rng.normal(0.0, 0.01)), stops)
    return advisor, returns[-advisor.history_length :]


@pytest.mark.parametrize("seed", range(8))
def test_the_fused_request_gives_the_numpy_blocks_and_the_drift_input(shipped: RiskAgents, seed: int) -> None:
    rng = np.random.default_rng(seed)
    advisor, returns = warm_advisor(shipped, rng, 40 + 7 * seed)
    if seed % 2:
        returns = np.asfortranarray(returns)
    drawdown, exposure = float(rng.random()), float(rng.random())
    fused = advisor.request(returns, drawdown, exposure)
    assert fused is not None
    close = advisor._close
    assert close is not None
    numpy = advisor._blocks(returns, close, drawdown, exposure)
    assert list(fused) == list(numpy)
    for a in AGENTS:
        assert fused[a].dtype == numpy[a].dtype
        assert np.array_equal(fused[a], numpy[a])
    layout = advisor._layout
    market = market_features_kernel(returns, returns.shape[0], advisor._window, 0)[0]
    shared = market[layout["rsi"].start : layout["volatility"].stop]
    atr_frac = np.maximum(advisor._atr.value / close, 1e-4)
    assert np.array_equal(advisor._drift_input, np.concatenate((shared, 100.0 * atr_frac)))


def test_a_zero_divisor_takes_the_numpy_blocks(shipped: RiskAgents) -> None:
    advisor, returns = warm_advisor(shipped, np.random.default_rng(5), 40)
    advisor._in_position[3] = True
    advisor._high[3] = 0.0  # from_high divides by it: NumPy gives inf (and warns)
    with np.errstate(divide="ignore"):
        observed = advisor.request(returns, 0.1, 0.5)
    assert observed is not None
    assert np.isinf(observed["stop"]).any()


def test_the_first_bad_price_is_numpys() -> None:
    rng = np.random.default_rng(4)
    specials = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, -1.0, 5e-324, 1e308, 1.0])
    for _ in range(500):
        close = rng.choice(specials, int(rng.integers(1, 12)))
        bad = ~((close > 0.0) & (close < math.inf))
        expected = int(np.flatnonzero(bad)[0]) if bad.any() else -1
        assert first_bad_price_kernel(close) == expected


def test_agents_pickle_and_copy_after_acting_and_act_alike() -> None:
    agents = make_agents(3, True, True, (16,), 9)
    agents.reseed(1)
    rng = np.random.default_rng(9)
    agents.act(observations(agents, rng, np.float64, 1.0))  # builds the runner (a lock inside)
    twin = pickle.loads(pickle.dumps(agents))
    clone = copy.deepcopy(agents)
    obs = observations(agents, rng, np.float64, 1.0)
    expected = tuple(a.copy() for a in agents.act_arrays(obs, 10))
    assert_bits(tuple(a.copy() for a in twin.act_arrays(obs, 10)), expected)
    assert_bits(tuple(a.copy() for a in clone.act_arrays(obs, 10)), expected)
