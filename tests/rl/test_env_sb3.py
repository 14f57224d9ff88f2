"""Stable-Baselines3 (a test-only oracle) accepts and trains on TradingEnvironment unchanged."""

from __future__ import annotations

import warnings

import numpy as np

from advanced_risk.rl import TradingEnvironment

from ..conftest import require

sb3 = require("stable_baselines3")


def test_sb3_env_checker_accepts_the_env() -> None:
    from stable_baselines3.common.env_checker import check_env

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # advice about the [-10, 10] action box
        check_env(TradingEnvironment(asset_count=3, max_steps=30))


def test_sb3_ppo_trains_for_2048_steps() -> None:
    env = TradingEnvironment(asset_count=3, window=10, max_steps=252)
    model = sb3.PPO("MlpPolicy", env, n_steps=2048, batch_size=256, n_epochs=2, seed=0, device="cpu")
    model.learn(total_timesteps=2048)
    assert model.num_timesteps >= 2048
    obs, _ = env.reset(seed=1)
    action, _ = model.predict(obs, deterministic=True)
    _, reward, *_ = env.step(action)
    assert np.isfinite(float(reward))
