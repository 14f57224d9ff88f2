"""TradingEnvironment: gymnasium contract, accounting by hand, observation layout, no lookahead."""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from hypothesis import given, settings
from hypothesis import strategies as st

from advanced_risk.config import EnvConfig, RewardKind
from advanced_risk.errors import ConfigError, InvalidInputError
from advanced_risk.rl import (
    TradingEnvironment,
    action_to_weights,
    history_length,
    observation_dim,
    observation_layout,
)
from advanced_risk.rl.portfolio.market import CorrelatedGBM


class FixedPath:
    """A market that always replays one given path (draws nothing from the generator)."""

    def __init__(self, path: np.ndarray) -> None:
        self.path = np.asarray(path, dtype=np.float64)

    @property
    def n_assets(self) -> int:
        return int(self.path.shape[1])

    def sample_path(self, rng: np.random.Generator, n_steps: int) -> np.ndarray:
        return self.path[:n_steps].copy()


def _random_path(config: EnvConfig, seed: int = 0, scale: float = 0.02) -> np.ndarray:
    rows = history_length(config) + config.max_steps
    return np.random.default_rng(seed).normal(0.0003, scale, (rows, config.asset_count))


def test_env_passes_gymnasium_check_env() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # advice about the [-10, 10] box and the unbounded observations
        check_env(TradingEnvironment(asset_count=3, max_steps=30))


def test_keyword_arguments_build_the_config() -> None:
    env = TradingEnvironment(asset_count=5, transaction_cost=0.002)
    assert env.config == EnvConfig(asset_count=5, transaction_cost=0.002)
    assert env.action_space.shape == (6,)
    assert env.observation_space.shape == (observation_dim(env.config),)


def test_keyword_arguments_override_a_given_config() -> None:
    env = TradingEnvironment(EnvConfig(asset_count=4, window=10), max_steps=7)
    assert (env.config.asset_count, env.config.window, env.config.max_steps) == (4, 10, 7)


def test_unknown_keyword_raises_config_error_naming_it() -> None:
    with pytest.raises(ConfigError, match="lookback"):
        TradingEnvironment(asset_count=3, lookback=5)


def test_market_with_wrong_width_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="asset_count"):
        TradingEnvironment(asset_count=3, market=CorrelatedGBM.default(2))


def test_observation_dim_formula() -> None:
    config = EnvConfig(asset_count=7, window=12)
    assert observation_dim(config) == 7 * (12 + 4) + 2


def test_observation_layout_matches_the_documented_blocks() -> None:
    config = EnvConfig(asset_count=2, window=5, max_steps=10)
    path = _random_path(config)
    env = TradingEnvironment(config, market=FixedPath(path))
    env.reset(seed=0)
    obs, _, _, _, info = env.step(np.array([1.0, 0.0, 0.5]))
    h, n, w, t = history_length(config), 2, 5, 1
    log_r = np.log1p(path[h + t - w : h + t])  # (w, n), oldest first
    np.testing.assert_allclose(obs[: n * w], log_r.T.ravel(), rtol=1e-6)
    prices = np.vstack([np.ones(n), np.cumprod(1 + path, axis=0)])
    momentum = prices[h + t] / prices[h + t - 10] - 1
    np.testing.assert_allclose(obs[n * w + n : n * w + 2 * n], momentum, rtol=1e-5)
    vol = path[h + t - w : h + t].std(axis=0, ddof=1) * np.sqrt(252)
    np.testing.assert_allclose(obs[n * w + 2 * n : n * w + 3 * n], vol, rtol=1e-5)
    assert np.all(np.abs(obs[n * w : n * w + n]) <= 0.5)  # RSI / 100 - 0.5
    np.testing.assert_allclose(obs[n * w + 3 * n : -1], info["weights"], rtol=1e-6)
    assert obs[-1] == pytest.approx(info["drawdown"], abs=1e-7)
    assert obs.dtype == np.float32
    layout = observation_layout(config)
    np.testing.assert_array_equal(obs[layout["weights"]], obs[n * w + 3 * n : -1])
    assert sum(s.stop - s.start for s in layout.values()) == observation_dim(config)


def test_observations_up_to_t_ignore_perturbed_future_prices() -> None:
    config = EnvConfig(asset_count=3, window=8, max_steps=40)
    path = _random_path(config, seed=3)
    t0 = 15
    future = path.copy()
    future[history_length(config) + t0 :] *= -3.0  # rewrite every return the agent has not yet seen
    actions = np.random.default_rng(9).normal(size=(t0, 4))

    def rollout(p: np.ndarray) -> list[np.ndarray]:
        env = TradingEnvironment(config, market=FixedPath(p))
        obs, _ = env.reset(seed=0)
        seen = [obs]
        for a in actions:
            seen.append(env.step(a)[0])
        return seen

    original, perturbed = rollout(path), rollout(future)
    for t in range(t0 + 1):
        np.testing.assert_array_equal(original[t], perturbed[t], err_msg=f"observation {t} saw the future")
    env_a = TradingEnvironment(config, market=FixedPath(path))
    env_b = TradingEnvironment(config, market=FixedPath(future))
    for env in (env_a, env_b):
        env.reset(seed=0)
        for a in actions:
            env.step(a)
    assert not np.array_equal(env_a.step(actions[0])[0], env_b.step(actions[0])[0])  # the test can fail


def test_step_accounting_matches_hand_computation() -> None:
    config = EnvConfig(asset_count=2, transaction_cost=0.01, max_steps=3, reward=RewardKind.LOG_RETURN)
    path = np.zeros((history_length(config) + 3, 2))
    h = history_length(config)
    path[h] = [0.10, -0.05]
    path[h + 1] = [0.0, 0.20]
    env = TradingEnvironment(config, market=FixedPath(path))
    env.reset(seed=0)
    _, reward, _, _, info = env.step_weights([0.5, 0.3, 0.2])
    cost = 0.01 * (0.5 + 0.3)  # traded asset value / V from all-cash
    growth = 0.5 * 1.10 + 0.3 * 0.95 + 0.2
    v1 = 10_000 * (1 - cost) * growth
    assert info["portfolio_value"] == pytest.approx(v1, rel=1e-12)
    assert info["cost"] == pytest.approx(10_000 * cost, rel=1e-12)
    assert info["turnover"] == pytest.approx(0.8, rel=1e-12)
    np.testing.assert_allclose(info["weights"], [0.55 / growth, 0.285 / growth, 0.2 / growth], rtol=1e-12)
    assert reward == pytest.approx(np.log(v1 / 10_000), rel=1e-12)
    held = info["weights"]
    _, _, _, _, info2 = env.step_weights(held)  # buy and hold: trades nothing
    assert info2["cost"] == 0.0
    growth2 = held[0] + held[1] * 1.2 + held[2]
    assert info2["portfolio_value"] == pytest.approx(v1 * growth2, rel=1e-12)


def test_shaped_reward_matches_its_definition() -> None:
    config = EnvConfig(asset_count=1, window=3, max_steps=6, drawdown_free=0.0, transaction_cost=0.002)
    h = history_length(config)
    path = np.zeros((h + 6, 1))
    path[h:, 0] = [0.05, -0.10, 0.02, -0.04, 0.03, 0.01]
    env = TradingEnvironment(config, market=FixedPath(path))
    env.reset(seed=0)
    values, step_returns = [10_000.0], []
    targets = [[1.0, 0.0], [0.5, 0.5], [0.8, 0.2], [0.8, 0.2], [0.1, 0.9], [0.3, 0.7]]
    for target in targets:
        _, reward, _, _, info = env.step_weights(target)
        values.append(info["portfolio_value"])
        step_returns.append(values[-1] / values[-2] - 1)
        vol = np.std(step_returns[-3:])
        dd = 1 - values[-1] / max(values)
        c = info["cost"] / values[-2]
        expected = step_returns[-1] - 0.1 * vol - 2.0 * dd - 10.0 * c
        assert reward == pytest.approx(expected, rel=1e-10, abs=1e-14)
        assert info["drawdown"] == pytest.approx(dd, rel=1e-12, abs=1e-15)


def test_no_trade_band_skips_small_rebalances() -> None:
    config = EnvConfig(asset_count=2, no_trade_band=0.1, max_steps=5)
    env = TradingEnvironment(config, market=FixedPath(_random_path(config)))
    env.reset(seed=0)
    _, _, _, _, info = env.step_weights([0.4, 0.4, 0.2])
    held = info["weights"]
    nudged = held + np.array([0.02, -0.02, 0.0])  # L1 distance 0.04 < band
    _, _, _, _, info = env.step_weights(nudged)
    assert info["cost"] == 0.0
    assert info["turnover"] == 0.0
    _, _, _, _, info = env.step_weights([0.1, 0.1, 0.8])  # far outside the band: trades
    assert info["cost"] > 0.0


def test_ruin_terminates_and_max_steps_truncates() -> None:
    config = EnvConfig(asset_count=1, max_steps=4, ruin_fraction=0.5)
    h = history_length(config)
    crash = np.zeros((h + 4, 1))
    crash[h + 1, 0] = -0.6
    env = TradingEnvironment(config, market=FixedPath(crash))
    env.reset(seed=0)
    assert env.step_weights([1.0, 0.0])[2:4] == (False, False)
    assert env.step_weights([1.0, 0.0])[2:4] == (True, False)
    with pytest.raises(InvalidInputError, match="reset"):
        env.step_weights([1.0, 0.0])
    env = TradingEnvironment(config, market=FixedPath(np.zeros((h + 4, 1))))
    env.reset(seed=0)
    flags = [env.step(np.zeros(2))[2:4] for _ in range(4)]
    assert flags == [(False, False)] * 3 + [(False, True)]


def test_same_seed_gives_same_episode_and_different_seeds_differ() -> None:
    env = TradingEnvironment(asset_count=3, max_steps=20)
    a = env.reset(seed=42)[0]
    b = env.reset(seed=42)[0]
    c = env.reset(seed=43)[0]
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_action_to_weights_is_a_clipped_softmax() -> None:
    a = np.array([1.0, -2.0, 0.5, 30.0])
    clipped = np.clip(a, -10, 10)
    expected = np.exp(clipped) / np.exp(clipped).sum()
    np.testing.assert_allclose(action_to_weights(a), expected, rtol=1e-15)
    batch = action_to_weights(np.array([[np.inf, -np.inf, 0.0], [1e300, 1e300, -1e300]]))
    assert np.all(np.isfinite(batch))
    np.testing.assert_allclose(batch.sum(axis=1), 1.0, rtol=1e-15)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        pytest.param(lambda e: e.step(np.array([np.nan, 0, 0, 0])), "NaN", id="nan-action"),
        pytest.param(lambda e: e.step(np.zeros(3)), "shape", id="short-action"),
        pytest.param(lambda e: e.step_weights([0.5, 0.5, 0.5, -0.5]), ">= 0", id="negative-weight"),
        pytest.param(lambda e: e.step_weights([0.5, 0.5, 0.5, 0.5]), "sum to 1", id="weights-sum-2"),
        pytest.param(lambda e: e.step_weights([0.5, np.inf, 0, 0]), "finite", id="inf-weight"),
    ],
)
def test_bad_actions_raise_invalid_input(call: object, match: str) -> None:
    env = TradingEnvironment(asset_count=3, max_steps=5)
    env.reset(seed=0)
    with pytest.raises(InvalidInputError, match=match):
        call(env)  # type: ignore[operator]


def test_step_before_reset_raises() -> None:
    with pytest.raises(InvalidInputError, match="reset"):
        TradingEnvironment(asset_count=2).step(np.zeros(3))


extreme = st.one_of(
    st.floats(-50.0, 50.0),
    st.sampled_from([1e300, -1e300, np.inf, -np.inf, 0.0, 10.0, -10.0]),
)


@settings(deadline=None, max_examples=50)
@given(
    actions=st.lists(st.lists(extreme, min_size=4, max_size=4), min_size=1, max_size=40),
    seed=st.integers(0, 2**16),
    band=st.sampled_from([0.0, 0.05]),
)
def test_cash_non_negative_weights_sum_to_one_value_positive(
    actions: list[list[float]], seed: int, band: float
) -> None:
    env = TradingEnvironment(asset_count=3, max_steps=40, transaction_cost=0.05, no_trade_band=band)
    env.reset(seed=seed)
    for a in actions:
        obs, reward, terminated, truncated, info = env.step(np.array(a))
        w = info["weights"]
        assert w[-1] >= 0.0
        assert np.all(w >= 0.0)
        assert abs(w.sum() - 1.0) <= 1e-12
        assert np.isfinite(info["portfolio_value"])
        assert info["portfolio_value"] > 0.0
        assert np.isfinite(float(reward))
        assert np.all(np.isfinite(obs))
        if terminated or truncated:
            break


def test_importing_the_package_does_not_import_rl_and_rl_does_not_import_torch() -> None:
    code = (
        "import sys, advanced_risk; a = 'advanced_risk.rl' in sys.modules\n"
        "import advanced_risk.rl.portfolio.env, advanced_risk.rl.portfolio.market; "
        "print(a, 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
