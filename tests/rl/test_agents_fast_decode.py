"""The fused kernels of ``RiskAgents.act`` (``rl/agents/decode.py``) against the NumPy formulation they
replaced, kept here verbatim as the reference: every output bit for bit (``np.array_equal``, never a
tolerance), on random actors, observations, sample counts and head widths."""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from advanced_risk.config import EnvConfig
from advanced_risk.rl.agents.advisor import _clip
from advanced_risk.rl.agents.decode import (
    decode_kernel,
    fused_input_kernel,
    pairwise_sum_kernel,
    shifted_logits_kernel,
)
from advanced_risk.rl.agents.interface import (
    ACTION_BOUNDS,
    AGENTS,
    agent_observations,
    obs_dim,
    observation_blocks,
    shared_actor_rows,
)
from advanced_risk.rl.agents.observation_kernel import block_index, observations_kernel
from advanced_risk.rl.agents.policy import AgentActor, RiskAgents
from advanced_risk.rl.ppo.inference import NumpyPolicy
from advanced_risk.rl.ppo.normalize import RunningMeanStd

SHIPPED = Path(__file__).resolve().parents[2] / "models" / "risk_agents_sp500.armodel"
OUTPUTS = {"sizer": 1, "stop": 2, "monitor": 4}


# -- the NumPy formulation before the kernels (policy.py at c8915d4), verbatim but for `self` ---------
def _mean_std(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = x.sum(axis=0) / x.shape[0]
    return mean, np.sqrt(((x - mean) ** 2).sum(axis=0) / x.shape[0])


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = np.exp(logits - logits.max(axis=-1, keepdims=True))
    out: np.ndarray = z / z.sum(axis=-1, keepdims=True)
    return out


def reference_input(agents: RiskAgents, k: int, agent: str, obs: Any) -> tuple[np.ndarray, float | None]:
    x = np.asarray(obs, dtype=np.float64).reshape(1, -1)
    if agents.obs_rms is None:
        z, novelty = x.astype(np.float32), None
    else:
        r = agents.obs_rms[agent]
        raw = (x - r.mean.copy()) / np.sqrt(r.var + 1e-8)
        novelty = float(np.abs(raw).max())
        z = np.minimum(np.maximum(raw, -agents.obs_clip), agents.obs_clip).astype(np.float32)
    pad = max(agents.obs_dims.values())
    return (shared_actor_rows(z, k, len(AGENTS), pad) if agents.share_parameters else z), novelty


def reference_decode(
    everything: np.ndarray, heads: dict[str, slice], discrete: dict[str, bool], bounds: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, float]]:
    actions: dict[str, Any] = {}
    uncertainty: dict[str, float] = {}
    for a in heads:
        samples = everything[:, heads[a]]
        if discrete[a]:
            probs = _softmax(samples)
            mean, std = _mean_std(probs)
            actions[a] = int(mean.argmax())
            uncertainty[a] = float(std.max())
        else:
            low, high = bounds[a]
            scaled = low + (np.minimum(np.maximum(samples, -1.0), 1.0) + 1.0) / 2.0 * (high - low)
            mean, std = _mean_std(scaled)
            actions[a] = mean.astype(np.float32)
            uncertainty[a] = float((std / (high - low)).max())
    return actions, uncertainty


def reference_act(agents: RiskAgents, obs: dict[str, Any], n_samples: int, seed: int) -> tuple[Any, ...]:
    inputs = [reference_input(agents, k, a, obs[a]) for k, a in enumerate(AGENTS)]
    x = np.concatenate([z for z, _ in inputs], axis=1)
    novelty = {a: z for a, (_, z) in zip(AGENTS, inputs, strict=True) if z is not None}
    net, rng = agents._fused, np.random.default_rng(seed)
    raw = net.mc_samples(x, n_samples, rng) if n_samples > 1 else net.mean_action(x)[None]
    ends = np.cumsum([0] + [p.head_dim for p in agents.policies.values()])
    heads = {a: slice(int(ends[k]), int(ends[k]) + agents.policies[a].n_out) for k, a in enumerate(AGENTS)}
    bounds = {
        a: (np.array(lo, np.float64), np.array(hi, np.float64)) for a, (lo, hi) in ACTION_BOUNDS.items()
    }
    actions, uncertainty = reference_decode(raw[:, 0, :].astype(np.float64), heads, agents.discrete, bounds)
    return actions, uncertainty, novelty


# -- helpers -----------------------------------------------------------------------------------------
def assert_same(new: dict[str, Any], old: dict[str, Any]) -> None:
    assert list(new) == list(old)
    for a in old:
        assert type(new[a]) is type(old[a]), a
        if isinstance(old[a], np.ndarray):
            assert new[a].dtype == old[a].dtype, a
            assert new[a].shape == old[a].shape, a
        assert np.array_equal(new[a], old[a], equal_nan=True), (a, new[a], old[a])
        assert np.array_equal(np.signbit(new[a]), np.signbit(old[a])), a


def make_agents(assets: int, shared: bool, normalise: bool, hidden: int, seed: int) -> RiskAgents:
    """Random actors (weights large enough that the heads often leave [-1, 1]) and normalisers."""
    rng = np.random.default_rng(seed)
    dims = {a: obs_dim(a, assets) for a in AGENTS}
    policies = {}
    for a in AGENTS:
        width = max(dims.values()) + len(AGENTS) if shared else dims[a]
        head = 4 if shared else OUTPUTS[a] + int(rng.integers(0, 2))
        sizes = (width, hidden, hidden, head)
        layers = itertools.pairwise(sizes)
        net = NumpyPolicy(
            weights=tuple(rng.normal(0.0, 1.5 / math.sqrt(i), (i, o)).astype(np.float32) for i, o in layers),
            biases=tuple(rng.normal(0.0, 0.5, o).astype(np.float32) for o in sizes[1:]),
            log_std=np.zeros(head, np.float32),
            dropout=0.25,
            obs_mean=None,
            obs_scale=None,
            obs_clip=10.0,
        )  # fmt: skip
        policies[a] = AgentActor(net, width, OUTPUTS[a], a == "monitor")
    rms = None
    if normalise:
        rms = {a: RunningMeanStd((dims[a],)) for a in AGENTS}
        for a, r in rms.items():
            r.mean, r.var = rng.normal(0.0, 3.0, dims[a]), rng.lognormal(0.0, 2.0, dims[a])
    return RiskAgents(policies, rms, EnvConfig(asset_count=assets), share_parameters=shared, obs_clip=5.0)


@pytest.fixture(scope="module")
def shipped() -> RiskAgents:
    return RiskAgents.load(SHIPPED)


def _observation(draw: Any, dims: dict[str, int], specials: bool, dtype: Any) -> dict[str, np.ndarray]:
    values = st.floats(-1e6, 1e6, width=32) | st.floats(-30.0, 30.0, width=32)
    if specials:
        values = values | st.sampled_from([np.nan, np.inf, -np.inf, -0.0])
    return {a: draw(arrays(dtype, dims[a], elements=values)) for a in AGENTS}


# -- act: the kernels against the reference ----------------------------------------------------------
# NaN and inf observations: NumPy warns (invalid values) in the reference and in the MC-dropout pass
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


@settings(max_examples=60, deadline=None)
@given(
    data=st.data(),
    assets=st.integers(1, 4),
    shared=st.booleans(),
    normalise=st.booleans(),
    n_samples=st.sampled_from([1, 2, 7, 8, 9, 10, 16, 129, 130, 300]),
    seed=st.integers(0, 2**16),
)
def test_act_equals_the_numpy_formulation_bit_for_bit(
    data: st.DataObject, assets: int, shared: bool, normalise: bool, n_samples: int, seed: int
) -> None:
    agents = make_agents(assets, shared, normalise, hidden=16, seed=seed)
    dtype = data.draw(st.sampled_from([np.float32, np.float64]))
    obs = _observation(data.draw, agents.obs_dims, data.draw(st.booleans()), dtype)
    actions, uncertainty, novelty = reference_act(agents, obs, n_samples, seed)
    agents.reseed(seed)
    new = agents.act(obs, n_samples)
    assert_same(new.actions, actions)
    assert_same(new.uncertainty, uncertainty)
    assert_same(new.novelty, novelty)


@settings(max_examples=40, deadline=None)
@given(data=st.data(), n_samples=st.sampled_from([1, 3, 10, 10, 10, 64, 200]), seed=st.integers(0, 2**16))
def test_the_shipped_agents_act_as_the_numpy_formulation(
    shipped: RiskAgents, data: st.DataObject, n_samples: int, seed: int
) -> None:
    obs = _observation(data.draw, shipped.obs_dims, data.draw(st.booleans()), np.float32)
    actions, uncertainty, novelty = reference_act(shipped, obs, n_samples, seed)
    shipped.reseed(seed)
    new = shipped.act(obs, n_samples)
    assert_same(new.actions, actions)
    assert_same(new.uncertainty, uncertainty)
    assert_same(new.novelty, novelty)


def test_other_observation_forms_are_converted_and_checked_as_before(shipped: RiskAgents) -> None:
    rng = np.random.default_rng(3)
    obs = {a: rng.normal(0.0, 2.0, (1, d)).tolist() for a, d in shipped.obs_dims.items()}
    obs["stop"] = np.asarray(obs["stop"], np.float16)
    actions, uncertainty, novelty = reference_act(shipped, obs, 10, 5)
    shipped.reseed(5)
    new = shipped.act(obs, 10)
    assert_same(new.actions, actions)
    assert_same(new.uncertainty, uncertainty)
    assert_same(new.novelty, novelty)
    obs["monitor"] = np.zeros(shipped.obs_dims["monitor"] + 1, np.float32)
    with pytest.raises(Exception, match=r"obs\['monitor'\] has 64 values, expected 63"):
        shipped.act(obs)


# -- the decoding kernels on any head widths ---------------------------------------------------------
@settings(max_examples=80, deadline=None)
@given(
    data=st.data(),
    n_samples=st.integers(1, 600),
    widths=st.lists(st.tuples(st.integers(1, 12), st.booleans()), min_size=1, max_size=4),
)
def test_decoding_equals_the_numpy_formulation_for_any_heads(
    data: st.DataObject, n_samples: int, widths: list[tuple[int, bool]]
) -> None:
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    total = sum(w for w, _ in widths) + 1
    scales = rng.choice([0.01, 1.0, 30.0], total)
    raw = (rng.normal(0.0, 1.0, (n_samples, 1, total)) * scales).astype(np.float32)
    if data.draw(st.booleans()):  # specials somewhere
        special = rng.choice([np.nan, np.inf, -np.inf, -0.0])
        raw[rng.integers(0, n_samples), 0, rng.integers(0, total)] = special
    names = [f"h{k}" for k in range(len(widths))]
    spec: list[tuple[int, int, int, int]] = []
    low: list[float] = []
    high: list[float] = []
    heads: dict[str, slice] = {}
    bounds: dict[str, Any] = {}
    first, width = 1, 0
    for name, (w, discrete) in zip(names, widths, strict=True):
        heads[name] = slice(first, first + w)
        if discrete:
            spec.append((first, w, 1, width))
            width += w
        else:
            lo = rng.normal(0.0, 2.0, w)
            hi = lo + rng.lognormal(0.0, 1.0, w)
            bounds[name] = (lo, hi)
            spec.append((first, w, 0, len(low)))
            low, high = low + lo.tolist(), high + hi.tolist()
        first += w
    spec_array = np.array(spec, np.int64)
    logits = shifted_logits_kernel(raw, spec_array, width)
    np.exp(logits, out=logits)
    values, choices, spread = decode_kernel(raw, logits, spec_array, np.array(low), np.array(high))
    actions, uncertainty = reference_decode(
        raw[:, 0, :].astype(np.float64), heads, {n: w[1] for n, w in zip(names, widths, strict=True)}, bounds
    )
    for k, (name, (_, discrete)) in enumerate(zip(names, widths, strict=True)):
        if discrete:
            assert choices[k] == actions[name]
        else:
            start, w = spec[k][3], spec[k][1]
            assert np.array_equal(values[start : start + w], actions[name], equal_nan=True)
        assert np.array_equal(spread[k], uncertainty[name], equal_nan=True)


@pytest.mark.parametrize("n", [1, 2, 7, 8, 9, 15, 16, 17, 127, 128, 129, 130, 255, 256, 257, 1000, 5001])
def test_pairwise_sum_is_numpys_sum_of_a_column(n: int) -> None:
    rng = np.random.default_rng(n)
    x = rng.normal(0.0, 1.0, (n, 1)) * 10.0 ** rng.integers(-4, 4, (n, 1))
    assert 0.0 + pairwise_sum_kernel(x[:, 0]) == x.sum(axis=0)[0]


def test_fused_input_without_normalisers_is_the_float32_cast() -> None:
    obs = (np.array([1e-40, 0.1, -0.0]), np.array([3.4e39]), np.array([np.nan, 1.0 + 2**-30]))
    template = np.zeros((1, 6), np.float32)
    x, novelty = fused_input_kernel(obs, np.zeros(0), np.zeros(0), 10.0, False, template, np.arange(6))
    assert np.array_equal(x[0], np.concatenate(obs).astype(np.float32), equal_nan=True)
    assert np.array_equal(np.signbit(x[0]), np.signbit(np.concatenate(obs).astype(np.float32)))
    assert not novelty.any()


_EDGES = [np.nan, -np.inf, np.inf, -0.0, 0.0, -1e-300, 0.49999999999999994, 0.5, 5.0, 5.000000000000001, 7.0]


@pytest.mark.parametrize("value", _EDGES)
@pytest.mark.parametrize(("low", "high"), [(0.0, 1.0), (0.5, 5.0)])
def test_clip_is_numpys_clip(value: float, low: float, high: float) -> None:
    for v in (value, float(np.float32(value))):
        expected = float(np.clip(v, low, high))
        got = _clip(v, low, high)
        assert np.array_equal(got, expected, equal_nan=True)
        assert math.copysign(1, got) == math.copysign(1, expected)


# -- the observations of one bar ---------------------------------------------------------------------
@settings(max_examples=80, deadline=None)
@given(data=st.data(), n=st.integers(1, 25), specials=st.booleans())
def test_observations_kernel_equals_observation_blocks(data: st.DataObject, n: int, specials: bool) -> None:
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    market = rng.normal(0.0, 30.0, 5 * n + 3)
    close, high, entry = (rng.lognormal(0.0, 1.0, n) for _ in range(3))
    atr_frac = np.maximum(rng.lognormal(-4.0, 1.0, n), 1e-4)
    in_position = rng.random(n) < data.draw(st.sampled_from([0.0, 0.5, 1.0]))
    scalars = [float(x) for x in rng.normal(0.0, 1.0, 3)]
    if specials:
        market[rng.integers(0, market.size)] = rng.choice([np.nan, np.inf, -0.0])
        close[rng.integers(0, n)] = rng.choice([np.nan, np.inf])
        scalars[rng.integers(0, 3)] = float(rng.choice([np.nan, -0.0, np.inf]))
    dd, exposure, last = scalars
    blocks = observation_blocks(
        rsi=market[n : 2 * n], momentum=market[2 * n : 3 * n], volatility=market[3 * n : 4 * n],
        close=close, atr_frac=atr_frac, high=high, entry=entry, in_position=in_position,
        drawdown=scalars[0], exposure=scalars[1], last_return=scalars[2],
    )  # fmt: skip
    expected = agent_observations(blocks)
    ok, *got = observations_kernel(
        market, n, 2 * n, 3 * n, close, atr_frac, high, entry, in_position, dd, exposure, last, block_index(n)
    )
    assert ok
    assert_same(dict(zip(AGENTS, got, strict=True)), expected)


def test_observations_kernel_declines_a_zero_divisor() -> None:
    n = 2
    ones = np.ones(n)
    index = block_index(n)
    for zero in ("high", "entry", "atr_frac"):
        args = {"high": ones.copy(), "entry": ones.copy(), "atr_frac": ones.copy()}
        args[zero][1] = 0.0
        held = np.array([True, True])
        ok, *_ = observations_kernel(
            np.ones(5 * n),
            0,
            n,
            2 * n,
            ones,
            args["atr_frac"],
            args["high"],
            args["entry"],
            held,
            0.0,
            1.0,
            0.0,
            index,
        )
        assert not ok
