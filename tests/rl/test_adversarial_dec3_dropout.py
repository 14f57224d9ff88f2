"""Adversarial checks of the buffered MC dropout (``rl/ppo/dropout_kernels.py``, today's commits):
``RunnerCache.mc_dropout`` / ``DropoutRunner.run`` against ``NumpyPolicy.mc_dropout`` with a cloned
generator, bit for bit (actions, std and the generator's state after the call), on odd networks
(one hidden layer of width 1, a head of 2, 3+ hidden layers), with and without the normaliser, a
small clip, dropout near 0 and 1, 2 and 200 samples, alternating sample counts, and the agent's
path (after ``load_state_dict``, an optimizer-like in-place step, a replaced network, a worker
thread). The returned arrays must never alias the runner's buffers."""

from __future__ import annotations

import copy
import itertools
import threading

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from advanced_risk.rl.ppo.dropout_kernels import DropoutRunner, RunnerCache
from advanced_risk.rl.ppo.inference import NumpyPolicy


def _policy(
    rng: np.random.Generator,
    obs_dim: int,
    hidden: list[int],
    head: int,
    dropout: float,
    normalise: bool,
    clip: float,
) -> NumpyPolicy:
    dims = [obs_dim, *hidden, head]
    weights = tuple((rng.normal(0.0, 1.5, (a, b))).astype(np.float32) for a, b in itertools.pairwise(dims))
    biases = tuple(rng.normal(0.0, 0.5, b).astype(np.float32) for b in dims[1:])
    return NumpyPolicy(
        weights=weights,
        biases=biases,
        log_std=np.zeros(head, np.float32),
        dropout=dropout,
        obs_mean=rng.normal(0.0, 1.0, obs_dim) if normalise else None,
        obs_scale=rng.uniform(0.1, 2.0, obs_dim) if normalise else None,
        obs_clip=clip,
    )


def _bits(a: np.ndarray) -> bytes:
    return np.ascontiguousarray(a).tobytes()


def _same(got: tuple[np.ndarray, np.ndarray], ref: tuple[np.ndarray, np.ndarray]) -> None:
    for g, r in zip(got, ref, strict=True):
        assert g.dtype == r.dtype
        assert g.shape == r.shape
        assert _bits(g) == _bits(r), (g, r)


HIDDEN = st.sampled_from([[1], [3], [1, 1], [5, 4], [7, 3, 2], [4, 4, 4, 4], [64, 64]])
DROPOUT = st.sampled_from([1e-9, 1e-4, 0.1, 0.5, 0.9, 0.999, 1.0 - 1e-7])


@settings(max_examples=150, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    obs_dim=st.sampled_from([1, 2, 9]),
    hidden=HIDDEN,
    head=st.sampled_from([2, 3, 11]),
    dropout=DROPOUT,
    normalise=st.booleans(),
    clip=st.sampled_from([0.05, 1.0, 10.0]),
    n_samples=st.sampled_from([2, 3, 10, 200]),
    scale=st.sampled_from([1e-3, 1.0, 50.0]),
)
def test_runner_cache_is_numpy_mc_dropout(
    seed: int,
    obs_dim: int,
    hidden: list[int],
    head: int,
    dropout: float,
    normalise: bool,
    clip: float,
    n_samples: int,
    scale: float,
) -> None:
    rng = np.random.default_rng(seed)
    policy = _policy(rng, obs_dim, hidden, head, dropout, normalise, clip)
    cache = RunnerCache()
    draws = np.random.default_rng(seed + 1)
    twin = copy.deepcopy(draws)
    for _ in range(3):  # the buffers are reused: a second and third call must be as fresh
        obs = rng.normal(0.0, scale, obs_dim)
        got = cache.mc_dropout(policy, obs, n_samples, draws)
        _same(got, policy.mc_dropout(obs, n_samples, twin))
        assert draws.bit_generator.state == twin.bit_generator.state
    assert cache.runner_for(policy, n_samples) is not None


def test_alternating_sample_counts_and_returned_arrays_are_owned() -> None:
    rng = np.random.default_rng(3)
    policy = _policy(rng, 5, [6, 4], 3, 0.3, True, 2.0)
    cache = RunnerCache()
    draws, twin = np.random.default_rng(9), np.random.default_rng(9)
    kept = []
    for n in [2, 200, 2, 10, 10, 1, 200, 3]:
        obs = rng.normal(0.0, 1.0, 5)
        got = cache.mc_dropout(policy, obs, n, draws)
        ref = policy.mc_dropout(obs, n, twin)
        _same(got, ref)
        kept.append((got, ref))
    for got, ref in kept:  # later calls did not overwrite earlier answers
        _same(got, ref)
    runner = cache.runner_for(policy, 10)
    assert runner is not None
    for got, _ in kept:
        for buf in [runner._std, runner._h, *runner._mean, *runner._out]:
            assert not np.shares_memory(got[0], buf)
            assert not np.shares_memory(got[1], buf)


@pytest.mark.parametrize("obs_kind", ["float32", "list", "batch", "nan"])
def test_other_observations_fall_back_or_match(obs_kind: str) -> None:
    rng = np.random.default_rng(5)
    policy = _policy(rng, 4, [3, 3], 2, 0.2, True, 1.5)
    x = rng.normal(0.0, 1.0, 4)
    obs: object = {
        "float32": x.astype(np.float32),
        "list": x.tolist(),
        "batch": rng.normal(0.0, 1.0, (3, 4)),
        "nan": np.array([np.nan, 1.0, 2.0, 3.0]),
    }[obs_kind]
    draws, twin = np.random.default_rng(1), np.random.default_rng(1)
    if obs_kind == "list":  # the runner reads arrays: a list is refused clearly, never misread
        with pytest.raises((AttributeError, TypeError)):
            RunnerCache().mc_dropout(policy, obs, 10, draws)  # type: ignore[arg-type]
        return
    with np.errstate(invalid="ignore"):
        got = RunnerCache().mc_dropout(policy, obs, 10, draws)  # type: ignore[arg-type]
        _same(got, policy.mc_dropout(obs, 10, twin))  # type: ignore[arg-type]


def test_one_output_head_and_no_dropout_use_numpy() -> None:
    rng = np.random.default_rng(2)
    cache = RunnerCache()
    for policy in (_policy(rng, 3, [2], 1, 0.3, False, 1.0), _policy(rng, 3, [2], 2, 0.0, False, 1.0)):
        assert cache.runner_for(policy, 10) is None
        obs = rng.normal(0.0, 1.0, 3)
        draws, twin = np.random.default_rng(4), np.random.default_rng(4)
        _same(cache.mc_dropout(policy, obs, 10, draws), policy.mc_dropout(obs, 10, twin))
    with pytest.raises(ValueError, match="0 < dropout < 1"):
        DropoutRunner(policy.weights, policy.biases, 0.0, None, None, 1.0, 10)


def test_zero_clip_normalisation_is_numpy_clip() -> None:
    """obs_clip 0: NumPy's clip gives +0.0 for a clipped negative (its max, then min); the kernel too."""
    rng = np.random.default_rng(8)
    policy = _policy(rng, 6, [3, 3], 2, 0.2, True, 0.0)
    obs = rng.normal(0.0, 5.0, 6)
    draws, twin = np.random.default_rng(1), np.random.default_rng(1)
    _same(RunnerCache().mc_dropout(policy, obs, 5, draws), policy.mc_dropout(obs, 5, twin))
    runner = RunnerCache().runner_for(policy, 5)
    assert runner is not None
    runner.run(obs, np.random.default_rng(0))
    assert _bits(runner._z) == _bits(policy.normalize(obs))


# -- the agent ----------------------------------------------------------------------------------
def _agent(dropout: float = 0.2):  # type: ignore[no-untyped-def]
    from advanced_risk.config import PPOConfig
    from advanced_risk.rl.ppo.agent import PPOAgent

    cfg = PPOConfig(hidden_sizes=(8, 5), dropout=dropout, seed=3)
    return PPOAgent(6, 3, config=cfg)


def _reference(agent, obs: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[no-untyped-def]
    """The NumPy formulation on a clone of the agent's inference generator (which is advanced too)."""
    twin = copy.deepcopy(agent.inference_rng)
    rms = agent.obs_rms if agent.config.norm_obs else None
    policy = agent.network.numpy_policy(rms, agent.config.obs_clip)
    out = policy.mc_dropout(obs, n, twin)
    return out


def _check(agent, obs: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[no-untyped-def]
    ref = _reference(agent, obs, n)
    got = agent.select_action_with_uncertainty(obs, n_samples=n)
    _same(got, ref)
    return got


def test_agent_follows_load_state_dict_steps_and_a_replaced_network() -> None:
    agent = _agent()
    rng = np.random.default_rng(0)
    obs = rng.normal(0.0, 1.0, 6)
    first = _check(agent, obs, 10)
    other = _agent()
    with torch.no_grad():
        for p in other.network.parameters():
            p.add_(0.25)
    agent.load_state_dict(other.state_dict())
    second = _check(agent, obs, 10)
    assert _bits(first[0]) != _bits(second[0])
    with torch.no_grad():  # an optimizer step: in place on the live parameters
        for p in agent.network.parameters():
            p.mul_(0.9)
    _check(agent, obs, 2)
    _check(agent, obs, 10)
    agent.obs_rms.update(rng.normal(0.0, 3.0, (50, 6)))
    _check(agent, obs, 10)
    agent.network = copy.deepcopy(other.network)
    _check(agent, obs, 10)
    _check(agent, obs.astype(np.float32), 200)


def test_agent_on_a_worker_thread_and_inline_alternately() -> None:
    agent = _agent()
    rng = np.random.default_rng(1)
    answers: list[tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray]]] = []
    for i in range(8):
        obs = rng.normal(0.0, 1.0, 6)
        ref = _reference(agent, obs, 10)
        if i % 2:
            box: list[tuple[np.ndarray, np.ndarray]] = []
            t = threading.Thread(
                target=lambda o=obs, b=box: b.append(agent.select_action_with_uncertainty(o, 10))
            )
            t.start()
            t.join()
            got = box[0]
        else:
            got = agent.select_action_with_uncertainty(obs, 10)
        _same(got, ref)
        answers.append((*got, tuple(np.copy(a) for a in ref)))  # type: ignore[arg-type]
    for action, std, ref in answers:  # no answer was overwritten by a later call
        _same((action, std), ref)
