"""RLPortfolioManager: leverage and Kelly rules, rebalance contract, env consistency, save/load, train."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from advanced_risk.config import EnvConfig, PPOConfig
from advanced_risk.errors import InvalidInputError, ModelLoadError
from advanced_risk.rl import TradingEnvironment, history_length
from advanced_risk.rl.portfolio.manager import RLPortfolioManager
from advanced_risk.rl.ppo.agent import PPOAgent

ENV = EnvConfig(asset_count=3, max_steps=40)
PPO = PPOConfig(device="cpu", num_envs=2, num_steps=64, num_minibatches=2, update_epochs=2, seed=3)


class FixedPath:
    """A market that always replays one given path (draws nothing from the generator)."""

    def __init__(self, path: np.ndarray) -> None:
        self.path = np.asarray(path, dtype=np.float64)

    @property
    def n_assets(self) -> int:
        return int(self.path.shape[1])

    def sample_path(self, rng: np.random.Generator, n_steps: int) -> np.ndarray:
        return self.path[:n_steps].copy()


@pytest.fixture(scope="module")
def manager() -> RLPortfolioManager:
    return RLPortfolioManager(ENV, PPO)


@pytest.fixture(scope="module")
def trained() -> RLPortfolioManager:
    m = RLPortfolioManager(ENV, PPO)
    m.train(total_timesteps=256)
    return m


def _history(rows: int = 60, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0004, 0.015, (rows, ENV.asset_count))


# -- construction ------------------------------------------------------------------------------------
def test_seed_keyword_form_overrides_env_config() -> None:
    m = RLPortfolioManager(asset_count=5, transaction_cost=0.002, ppo_config=PPO)
    assert (m.asset_count, m.env_config.transaction_cost) == (5, 0.002)
    assert (m.agent.obs_dim, m.agent.action_dim) == (m.obs_dim, 6)


def test_default_leverage_range_and_kelly_settings_are_documented_defaults() -> None:
    m = RLPortfolioManager(asset_count=2, ppo_config=PPO)
    assert m.leverage_range == (0.0, 2.0)
    assert m.target_volatility == 0.15
    assert (m.kelly.config.fraction, m.kelly.config.cap) == (0.5, 0.25)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"leverage_range": (2.0, 1.0)},
        {"leverage_range": (-1.0, 2.0)},
        {"leverage_range": 3.0},
        {"target_volatility": 0.0},
        {"kelly_fraction": 1.5},
        {"kelly_cap": -0.1},
        {"asset_count": 0},
    ],
    ids=[
        "min>max",
        "negative_min",
        "not_a_pair",
        "zero_target_vol",
        "fraction>1",
        "negative_cap",
        "no_assets",
    ],
)
def test_bad_settings_raise_invalid_input(kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidInputError):
        RLPortfolioManager(ppo_config=PPO, **kwargs)  # type: ignore[arg-type]


def test_agent_with_wrong_dims_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="obs_dim"):
        RLPortfolioManager(ENV, agent=PPOAgent(5, 4, PPO))


# -- compute_leverage ----------------------------------------------------------------------------------
@settings(max_examples=200, deadline=None)
@given(
    a=st.floats(0.0, 10.0, allow_nan=False),
    b=st.floats(0.0, 10.0, allow_nan=False),
    lo=st.floats(0.0, 1.0),
    span=st.floats(0.01, 5.0),
)
def test_leverage_is_non_increasing_in_volatility_and_inside_range(
    manager: RLPortfolioManager, a: float, b: float, lo: float, span: float
) -> None:
    m = RLPortfolioManager(ENV, agent=manager.agent, leverage_range=(lo, lo + span))  # shared policy
    low_vol, high_vol = sorted((a, b))
    la, lb = m.compute_leverage(low_vol), m.compute_leverage(high_vol)
    assert la >= lb
    for lev in (la, lb):
        assert lo <= lev <= lo + span


def test_leverage_targets_volatility_and_zero_vol_gives_max(manager: RLPortfolioManager) -> None:
    assert manager.compute_leverage(0.30) == pytest.approx(0.5)
    assert manager.compute_leverage(0.15) == pytest.approx(1.0)
    assert manager.compute_leverage(0.0) == 2.0
    assert manager.compute_leverage(0.30, correlation_shock=True) == pytest.approx(0.25)


@pytest.mark.parametrize(
    "volatility",
    [float("nan"), float("inf"), -float("inf"), -0.2, -1e-12, "0.2", None, True, [0.2]],
    ids=["nan", "inf", "-inf", "negative", "tiny_negative", "string", "none", "bool", "list"],
)
def test_invalid_volatility_raises_invalid_input(manager: RLPortfolioManager, volatility: object) -> None:
    with pytest.raises(InvalidInputError, match="volatility"):
        manager.compute_leverage(volatility)  # type: ignore[arg-type]


# -- apply_kelly_criterion ---------------------------------------------------------------------------
def test_kelly_negative_edge_is_zero(manager: RLPortfolioManager) -> None:
    assert manager.apply_kelly_criterion(0.4, 1.0, 1.0) == 0.0
    assert manager.apply_kelly_criterion(0.5, 0.5, 1.0) == 0.0


def test_kelly_is_half_of_full_kelly_below_the_cap(manager: RLPortfolioManager) -> None:
    full = 0.6 - 0.4 / 1.0  # p - (1 - p) / b = 0.2
    assert manager.apply_kelly_criterion(0.6, 1.0, 1.0) == pytest.approx(0.5 * full)


def test_kelly_is_capped() -> None:
    m = RLPortfolioManager(ENV, PPO, kelly_fraction=1.0, kelly_cap=0.3)
    assert m.apply_kelly_criterion(0.9, 2.0, 1.0) == 0.3  # full Kelly 0.85


@pytest.mark.parametrize(
    ("win_rate", "avg_win", "avg_loss"),
    [(1.2, 1.0, 1.0), (0.6, 0.0, 1.0), (0.6, 1.0, -1.0), (float("nan"), 1.0, 1.0)],
    ids=["win_rate>1", "zero_win", "negative_loss", "nan_rate"],
)
def test_kelly_bad_inputs_raise(
    manager: RLPortfolioManager, win_rate: float, avg_win: float, avg_loss: float
) -> None:
    with pytest.raises(InvalidInputError):
        manager.apply_kelly_criterion(win_rate, avg_win, avg_loss)


# -- rebalance ---------------------------------------------------------------------------------------
def test_rebalance_returns_long_only_weights_over_assets_and_cash(trained: RLPortfolioManager) -> None:
    for seed in range(5):
        w = trained.rebalance(_history(seed=seed))
        assert w.shape == (ENV.asset_count + 1,)
        assert (w >= 0).all()
        assert w.sum() == pytest.approx(1.0, abs=1e-12)


def test_rebalance_is_deterministic(trained: RLPortfolioManager) -> None:
    returns, weights = _history(), np.array([0.2, 0.3, 0.1, 0.4])
    first = trained.rebalance(returns, weights, 0.03)
    for _ in range(3):
        np.testing.assert_array_equal(trained.rebalance(returns, weights, 0.03), first)


def test_rebalance_with_uncertainty_keeps_the_decision_and_reports_a_std(trained: RLPortfolioManager) -> None:
    returns = _history()
    weights, std = trained.rebalance(returns, with_uncertainty=True)
    np.testing.assert_array_equal(weights, trained.rebalance(returns))
    assert std.shape == weights.shape
    assert (std >= 0).all()
    assert std.max() > 0  # PPOConfig's default dropout 0.1 is on


def test_observation_equals_the_env_observation_for_the_same_history(manager: RLPortfolioManager) -> None:
    h = history_length(ENV)
    path = _history(rows=h + ENV.max_steps, seed=7)
    env = TradingEnvironment(ENV, market=FixedPath(path))
    obs, info = env.reset(seed=0)
    actions = np.random.default_rng(1).normal(0.0, 2.0, (ENV.max_steps, ENV.asset_count + 1))
    for t in range(ENV.max_steps):
        mine = manager.observation(path[: h + t], info["weights"], info["drawdown"])
        np.testing.assert_array_equal(mine, obs)
        obs, _, terminated, truncated, info = env.step(actions[t].astype(np.float32))
        if terminated or truncated:
            break


def test_rebalance_equals_softmax_of_the_agent_action_on_the_env_observation(
    trained: RLPortfolioManager,
) -> None:
    h = history_length(ENV)
    path = _history(rows=h + ENV.max_steps, seed=8)
    obs, _ = TradingEnvironment(ENV, market=FixedPath(path)).reset(seed=0)
    action = trained.agent.select_action(obs)
    expected = np.exp(action - action.max()) / np.exp(action - action.max()).sum()
    np.testing.assert_allclose(trained.rebalance(path[:h]), expected, rtol=1e-6)


@pytest.mark.parametrize(
    ("returns", "weights", "drawdown", "match"),
    [
        (np.zeros((10, 3)), None, 0.0, "rows"),
        (np.zeros((60, 2)), None, 0.0, "column"),
        (np.full((60, 3), np.nan), None, 0.0, "finite"),
        (np.full((60, 3), -1.0), None, 0.0, "> -1"),
        (np.zeros((60, 3)), [0.5, 0.5, 0.5, 0.5], 0.0, "sum to 1"),
        (np.zeros((60, 3)), [1.2, -0.2, 0.0, 0.0], 0.0, ">= 0"),
        (np.zeros((60, 3)), [0.5, 0.5], 0.0, "shape"),
        (np.zeros((60, 3)), None, 1.0, "drawdown"),
        (np.zeros((60, 3)), None, -0.1, "drawdown"),
    ],
    ids=[
        "too_short",
        "wrong_assets",
        "nan",
        "minus_100pct",
        "weights_sum",
        "negative_weight",
        "weights_shape",
        "drawdown_1",
        "negative_drawdown",
    ],
)
def test_rebalance_bad_input_raises_invalid_input(
    manager: RLPortfolioManager, returns: np.ndarray, weights: object, drawdown: float, match: str
) -> None:
    with pytest.raises(InvalidInputError, match=match):
        manager.rebalance(returns, weights, drawdown)  # type: ignore[arg-type]


# -- save / load and train ---------------------------------------------------------------------------
def test_save_load_round_trip_gives_identical_rebalance(trained: RLPortfolioManager, tmp_path: Path) -> None:
    path = tmp_path / "manager.pt"
    trained.save(path)
    loaded = RLPortfolioManager.load(path)
    assert loaded.env_config == trained.env_config
    assert (loaded.leverage_range, loaded.target_volatility) == (trained.leverage_range, 0.15)
    assert loaded.kelly.config == trained.kelly.config
    for seed in range(3):
        returns, weights = _history(seed=seed), np.array([0.1, 0.2, 0.3, 0.4])
        np.testing.assert_array_equal(
            loaded.rebalance(returns, weights, 0.01), trained.rebalance(returns, weights, 0.01)
        )


def test_load_of_a_plain_agent_file_or_corrupt_file_raises_model_load_error(tmp_path: Path) -> None:
    plain = tmp_path / "agent.pt"
    PPOAgent(10, 4, PPO).save(plain)
    with pytest.raises(ModelLoadError, match="RLPortfolioManager"):
        RLPortfolioManager.load(plain)
    bad = tmp_path / "bad.pt"
    RLPortfolioManager(ENV, PPO).save(bad)
    data = bytearray(bad.read_bytes())
    data[-10] ^= 0xFF
    bad.write_bytes(bytes(data))
    with pytest.raises(ModelLoadError):
        RLPortfolioManager.load(bad)


def test_train_smoke_runs_whole_rollouts_and_changes_the_policy() -> None:
    m = RLPortfolioManager(ENV, PPO)
    returns = _history()
    before = m.rebalance(returns)
    history = m.train(total_timesteps=2 * PPO.batch_size)
    assert len(history) == 2
    assert m.agent.global_step == 2 * PPO.batch_size
    assert all(math.isfinite(s["policy_loss"]) for s in history)
    assert not np.array_equal(m.rebalance(returns), before)


def test_train_episodes_convert_to_timesteps() -> None:
    m = RLPortfolioManager(ENV, PPO)
    history = m.train(episodes=7)  # 7 * 40 = 280 steps -> 2 rollouts of 128
    assert len(history) == 280 // PPO.batch_size
    with pytest.raises(InvalidInputError):
        m.train(episodes=1, total_timesteps=100)
    with pytest.raises(InvalidInputError, match="episodes"):
        m.train(episodes=0)


@pytest.mark.parametrize(
    ("rate", "band"), [(0.5, 0.0), (1.0, 1.99), (0.3, 0.05)], ids=["partial", "inside_band", "both"]
)
def test_rebalance_trades_like_the_env_with_partial_rebalancing_and_band(rate: float, band: float) -> None:
    cfg = EnvConfig(asset_count=3, max_steps=40, rebalance_rate=rate, no_trade_band=band)
    h = history_length(cfg)
    path = _history(rows=h + cfg.max_steps, seed=9)
    path[h] = 0.0  # no drift on the first step: the env then holds exactly what it traded to
    m = RLPortfolioManager(cfg, PPO)
    env = TradingEnvironment(cfg, market=FixedPath(path))
    obs, _ = env.reset(seed=0)
    _, _, _, _, info = env.step(m.agent.select_action(obs))
    np.testing.assert_allclose(m.rebalance(path[:h]), info["weights"], rtol=0, atol=1e-7)
