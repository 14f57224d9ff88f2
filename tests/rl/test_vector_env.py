"""VectorTradingEnv: equals N single environments on identical seeds, autoreset, interface."""

from __future__ import annotations

import numpy as np
import pytest

from advanced_risk.config import EnvConfig, MarketKind, RewardKind
from advanced_risk.errors import InvalidInputError
from advanced_risk.rl import TradingEnvironment, VectorTradingEnv, observation_dim
from advanced_risk.rl.portfolio.market import CorrelatedGBM

N = 4


def _volatile(n: int) -> CorrelatedGBM:
    """A market wild enough that some episodes end in ruin (terminated) and others truncate."""
    return CorrelatedGBM(np.linspace(-0.5, 0.3, n), 0.9, 0.5)


def _run_parity(config: EnvConfig, *, use_weights: bool, seed: int = 11, steps: int = 130) -> set[str]:
    market = _volatile(config.asset_count)
    vec = VectorTradingEnv(config, N, seed=seed, market=market)
    singles = [TradingEnvironment(config, market=market) for _ in range(N)]
    obs, _ = vec.reset()
    for i, env in enumerate(singles):
        np.testing.assert_allclose(env.reset(seed=seed + i)[0], obs[i], rtol=0, atol=1e-12)
    rng = np.random.default_rng(0)
    endings: set[str] = set()
    for _ in range(steps):
        actions = rng.normal(0.0, 3.0, (N, vec.action_dim))
        if use_weights:
            weights = np.exp(actions) / np.exp(actions).sum(axis=1, keepdims=True)
            obs, rew, term, trunc, info = vec.step_weights(weights)
        else:
            obs, rew, term, trunc, info = vec.step(actions)
        for i, env in enumerate(singles):
            step = env.step_weights if use_weights else env.step
            o, r, te, tr, inf = step(weights[i] if use_weights else actions[i])
            assert (te, tr) == (bool(term[i]), bool(trunc[i]))
            assert r == pytest.approx(rew[i], rel=0, abs=1e-12)
            np.testing.assert_allclose(info["final_obs"][i], o, rtol=0, atol=1e-12)
            for key in ("portfolio_value", "cost", "drawdown", "turnover"):
                assert info[key][i] == pytest.approx(inf[key], rel=1e-12, abs=1e-12)
            np.testing.assert_allclose(info["weights"][i], inf["weights"], rtol=0, atol=1e-12)
            if te or tr:
                endings.add("terminated" if te else "truncated")
                o, _ = env.reset()  # later episodes draw from the env's own generator
            np.testing.assert_allclose(obs[i], o, rtol=0, atol=1e-12)
    return endings


@pytest.mark.parametrize("reward", list(RewardKind))
def test_vector_env_equals_single_envs_on_identical_seeds(reward: RewardKind) -> None:
    config = EnvConfig(asset_count=3, window=6, max_steps=25, reward=reward, ruin_fraction=0.8)
    endings = _run_parity(config, use_weights=False)
    assert endings == {"terminated", "truncated"}  # several episodes, both kinds of ending


def test_vector_step_weights_equals_single_step_weights() -> None:
    config = EnvConfig(asset_count=2, window=4, max_steps=20, no_trade_band=0.05, ruin_fraction=0.8)
    assert _run_parity(config, use_weights=True, steps=70)


def test_episode_statistics_of_finished_envs() -> None:
    config = EnvConfig(asset_count=2, window=4, max_steps=5)
    vec = VectorTradingEnv(config, 3, seed=0)
    vec.reset()
    total = np.zeros(3)
    for t in range(5):
        _, rewards, term, trunc, info = vec.step(np.zeros((3, 3)))
        total += rewards
        if t < 4:
            assert np.all(np.isnan(info["episode_return"]))
            assert np.all(info["episode_length"] == 0)
    assert np.all(trunc)
    assert not np.any(term)
    np.testing.assert_allclose(info["episode_return"], total, rtol=1e-12)
    assert np.all(info["episode_length"] == 5)
    assert np.all(info["portfolio_value"] > 0)


def test_constructor_seed_equals_reset_seed_and_none_continues() -> None:
    config = EnvConfig(asset_count=3, max_steps=10)
    a = VectorTradingEnv(config, 3, seed=5).reset()[0]
    vec = VectorTradingEnv(config, 3)
    b = vec.reset(seed=5)[0]
    np.testing.assert_array_equal(a, b)
    c = vec.reset()[0]  # new episodes from the same generators
    assert not np.array_equal(b, c)


def test_interface_shapes_and_dtypes() -> None:
    config = EnvConfig(asset_count=4, window=10, max_steps=8)
    vec = VectorTradingEnv(config, num_envs=5, seed=1)
    assert (vec.num_envs, vec.action_dim, vec.observation_dim) == (5, 5, observation_dim(config))
    assert vec.single_observation_space.shape == (vec.observation_dim,)
    assert vec.single_action_space.shape == (vec.action_dim,)
    assert vec.config is config
    obs, _ = vec.reset()
    assert obs.shape == (5, vec.observation_dim)
    assert obs.dtype == np.float32
    obs, rew, term, trunc, info = vec.step(np.zeros((5, 5), dtype=np.float32))
    assert [str(x.dtype) for x in (obs, rew, term, trunc)] == ["float32", "float64", "bool", "bool"]
    assert info["final_obs"].shape == obs.shape
    assert info["weights"].shape == (5, 5)
    for key in ("portfolio_value", "cost", "drawdown", "episode_return", "episode_length"):
        assert info[key].shape == (5,)


def test_historical_vector_env_runs_on_the_train_split() -> None:
    config = EnvConfig(asset_count=5, market=MarketKind.HISTORICAL, max_steps=50)
    vec = VectorTradingEnv(config, 2, seed=0)
    obs, _ = vec.reset()
    for _ in range(50):
        obs, *_ = vec.step(np.zeros((2, 6)))
    assert np.all(np.isfinite(obs))


@pytest.mark.parametrize(
    ("call", "match"),
    [
        pytest.param(lambda v: v.step(np.zeros((3, 3))), "shape", id="wrong-batch"),
        pytest.param(lambda v: v.step(np.full((2, 3), np.nan)), "NaN", id="nan"),
        pytest.param(lambda v: v.step_weights(np.full((2, 3), 0.5)), "sum to 1", id="bad-weights"),
    ],
)
def test_bad_vector_actions_raise(call: object, match: str) -> None:
    vec = VectorTradingEnv(EnvConfig(asset_count=2, max_steps=5), 2, seed=0)
    vec.reset()
    with pytest.raises(InvalidInputError, match=match):
        call(vec)  # type: ignore[operator]


def test_num_envs_must_be_positive() -> None:
    with pytest.raises(InvalidInputError, match="num_envs"):
        VectorTradingEnv(EnvConfig(), 0)


def test_the_observation_kernel_is_the_numpy_indexing_it_replaces() -> None:
    """``Book.observe`` (one compiled pass) against the NumPy expression of the observation layout,
    bit for bit, for all rows and for a subset in any order; a wrong ``out`` or a step past the
    episode's features is refused instead of read out of bounds."""
    config = EnvConfig(asset_count=3, window=5, max_steps=20)
    vec = VectorTradingEnv(config, N, seed=3, market=_volatile(3))
    vec.reset()
    rng = np.random.default_rng(1)
    for _ in range(7):
        vec.step(rng.normal(0.0, 2.0, (N, vec.action_dim)))
    book = vec._book
    md = book.features.shape[2]
    for rows in (np.arange(N), np.array([3, 0, 2])):
        expected = np.empty((rows.size, vec.observation_dim), dtype=np.float32)
        expected[:, :md] = book.features[rows, book.t[rows]]
        expected[:, md:-1] = book.weights[rows]
        expected[:, -1] = 1.0 - book.value[rows] / book.peak[rows]
        got = np.full_like(expected, np.nan)
        book.observe(got, None if rows.size == N else rows)
        assert np.array_equal(got.view(np.int32), expected.view(np.int32))
    with pytest.raises(InvalidInputError, match="out must be float32"):
        book.observe(np.empty((N - 1, vec.observation_dim), dtype=np.float32))
    with pytest.raises(InvalidInputError, match="out must be float32"):
        book.observe(np.empty((N, vec.observation_dim)))
    book.t[1] = book.features.shape[1]
    with pytest.raises(IndexError, match="past the end"):
        book.observe(np.empty((N, vec.observation_dim), dtype=np.float32))
