"""Adversarial round 3 on the RL side: model files that verify but hold unusable weights or
settings, and custom markets whose paths break the ``MarketModel`` contract.

A file written by ``write_model_file`` passes every integrity check (magic, length, SHA-256) whatever
its arrays hold, so these are the files a diverged training run, a hand-edited header or another
tool would produce. Each must be refused with a ``ModelLoadError`` naming what is wrong, never
loaded into a policy that trades on NaN.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from advanced_risk.config import EnvConfig, PPOConfig
from advanced_risk.errors import InvalidInputError, ModelLoadError
from advanced_risk.rl.agents.env import RiskAgentsEnv
from advanced_risk.rl.agents.policy import RiskAgents
from advanced_risk.rl.portfolio.env import TradingEnvironment, VectorTradingEnv
from advanced_risk.rl.portfolio.manager import RLPortfolioManager
from advanced_risk.rl.portfolio.market import FixedPath
from advanced_risk.rl.portfolio.policy import PortfolioPolicy
from advanced_risk.rl.ppo.agent import PPOAgent
from advanced_risk.rl.ppo.model_file import Arrays, read_model_file, write_model_file

Edit = Callable[[Arrays, dict[str, Any]], None]


@pytest.fixture(scope="module")
def manager_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("round3") / "manager.armodel"
    RLPortfolioManager(asset_count=2, ppo_config=PPOConfig(device="cpu", hidden_sizes=(8, 8))).save(path)
    return path


def _rewritten(source: Path, target: Path, edit: Edit) -> Path:
    """``source`` with its arrays and metadata edited, written as a valid (verifying) model file."""
    header, arrays = read_model_file(source)
    meta = copy.deepcopy(header["metadata"])
    edit(arrays, meta)
    write_model_file(target, arrays, meta, kind=header["kind"])
    return target


def _set(name: str, index: tuple[int, ...], value: float) -> Edit:
    def edit(arrays: Arrays, meta: dict[str, Any]) -> None:
        arrays[name][index] = value

    return edit


def _settings(key: str, value: Any) -> Edit:
    def edit(arrays: Arrays, meta: dict[str, Any]) -> None:
        meta["user"]["rl_portfolio_manager"][key] = value

    return edit


BAD_POLICIES = {
    "nan actor weight": (_set("network.actor_layers.0.weight", (0, 0), np.nan), "actor_layers.0.weight"),
    "inf head bias": (_set("network.actor_layers.2.bias", (0,), np.inf), "actor_layers.2.bias"),
    "nan log-std": (_set("network.actor_logstd", (0,), np.nan), "actor_logstd"),
    "nan critic weight": (_set("network.critic.0.weight", (0, 0), np.nan), "critic.0.weight"),
    "nan observation mean": (_set("obs_rms.mean", (0,), np.nan), "obs_rms.mean"),
    "negative observation variance": (_set("obs_rms.var", (0,), -1.0), "obs_rms.var"),
    "infinite observation variance": (_set("obs_rms.var", (0,), np.inf), "obs_rms.var"),
    "negative observation count": (
        lambda arrays, meta: meta.__setitem__("obs_rms_count", -5.0),
        "obs_rms_count",
    ),
    "integer weights": (
        lambda arrays, meta: arrays.__setitem__(
            "network.actor_layers.0.weight", arrays["network.actor_layers.0.weight"].astype(np.int8)
        ),
        "dtype int8",
    ),
    "log-std of another action size": (
        lambda arrays, meta: arrays.__setitem__("network.actor_logstd", np.zeros(5, np.float32)),
        "actor_logstd has 5 entries",
    ),
}
BAD_SETTINGS = {
    "reversed leverage range": (_settings("leverage_range", [3.0, 1.0]), "min_leverage"),
    "kelly fraction above one": (_settings("kelly_fraction", 4.0), "fraction"),
    "negative uncertainty threshold": (_settings("uncertainty_threshold", -1.0), "uncertainty_threshold"),
}
LOADERS = {
    "PortfolioPolicy": PortfolioPolicy.load,
    "RLPortfolioManager": RLPortfolioManager.load,
    "PPOAgent": PPOAgent.load,
}


@pytest.mark.parametrize("case", list(BAD_POLICIES))
@pytest.mark.parametrize("loader", list(LOADERS))
def test_a_verifying_policy_file_with_unusable_weights_is_refused_naming_the_array(
    case: str, loader: str, manager_file: Path, tmp_path: Path
) -> None:
    edit, named = BAD_POLICIES[case]
    bad = _rewritten(manager_file, tmp_path / "bad.armodel", edit)
    with pytest.raises(ModelLoadError, match=named):
        LOADERS[loader](bad)


@pytest.mark.parametrize("case", list(BAD_SETTINGS))
@pytest.mark.parametrize("loader", ["PortfolioPolicy", "RLPortfolioManager"])
def test_both_manager_loaders_refuse_stored_settings_the_constructor_refuses(
    case: str, loader: str, manager_file: Path, tmp_path: Path
) -> None:
    edit, named = BAD_SETTINGS[case]
    bad = _rewritten(manager_file, tmp_path / "bad.armodel", edit)
    with pytest.raises(ModelLoadError, match=named):
        LOADERS[loader](bad)


def test_the_unedited_file_still_loads_and_trades(manager_file: Path) -> None:
    policy = PortfolioPolicy.load(manager_file)
    returns = np.random.default_rng(0).normal(0.0, 0.01, (40, 2))
    weights, std = policy.rebalance_trusted(returns, np.array([0.3, 0.3, 0.4]), 0.0)
    assert np.isfinite(weights).all()
    assert np.isfinite(std).all()
    assert weights.sum() == pytest.approx(1.0)
    assert RLPortfolioManager.load(manager_file).rebalance(returns, np.array([0.3, 0.3, 0.4]), 0.0).shape == (
        3,
    )


@pytest.fixture(scope="module")
def agents_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("round3") / "agents.armodel"
    RiskAgents.untrained(EnvConfig(asset_count=2)).save(path)
    return path


def test_risk_agents_with_a_nan_weight_are_refused_naming_the_array(
    agents_file: Path, tmp_path: Path
) -> None:
    _, arrays = read_model_file(agents_file)
    name = next(k for k in arrays if k.endswith("actor_layers.0.weight"))
    bad = _rewritten(agents_file, tmp_path / "bad.armodel", _set(name, (0, 0), np.nan))
    with pytest.raises(ModelLoadError, match=name.replace(".", r"\.")):
        RiskAgents.load(bad)


SHIPPED_AGENTS = Path(__file__).resolve().parents[2] / "models" / "risk_agents_regime.armodel"


def test_risk_agents_with_a_negative_normaliser_variance_are_refused(tmp_path: Path) -> None:
    # the shipped agents were trained with observation normalisation (untrained ones are not)
    bad = _rewritten(SHIPPED_AGENTS, tmp_path / "bad.armodel", _set("sizer.obs_rms.var", (0,), -1.0))
    with pytest.raises(ModelLoadError, match=r"sizer\.obs_rms\.var holds a negative value"):
        RiskAgents.load(bad)
    assert RiskAgents.load(SHIPPED_AGENTS).env_config.asset_count > 0  # the shipped file still loads


# -- a custom market that breaks the MarketModel contract ------------------------------------------
class _Market:
    """A custom market that answers every request with one given path, whatever it is."""

    n_assets = 2

    def __init__(self, path: Any) -> None:
        self.path = path

    def sample_path(self, rng: np.random.Generator, n_steps: int) -> Any:
        return self.path


ROWS = 28 + 10  # history_length of the default window, then max_steps
GOOD = np.full((ROWS, 2), 0.001)


def _with(row: int, value: float) -> np.ndarray:
    path = GOOD.copy()
    path[row, 0] = value
    return path


BAD_PATHS = {
    "short": (GOOD[:20], r"shape \(38, 2\), got \(20, 2\)"),
    "another asset count": (np.full((ROWS, 3), 0.001), r"shape \(38, 2\), got \(38, 3\)"),
    "one-dimensional": (GOOD[:, 0], r"shape \(38, 2\), got \(38,\)"),
    "nan": (_with(30, np.nan), "nan at row 30, asset 0"),
    "inf": (_with(5, np.inf), "inf at row 5, asset 0"),
    "a price below zero": (_with(30, -1.5), "-1.5 at row 30, asset 0"),
    "a price of zero": (_with(3, -1.0), "-1.0 at row 3, asset 0"),
    "text": (np.full((ROWS, 2), "x"), "real numbers"),
}


def _portfolio_env(path: Any) -> object:
    return TradingEnvironment(EnvConfig(asset_count=2, max_steps=10), market=_Market(path))


def _vector_env(path: Any) -> object:
    return VectorTradingEnv(EnvConfig(asset_count=2, max_steps=10), 2, market=_Market(path))


def _agents_env(path: Any) -> object:
    return RiskAgentsEnv(EnvConfig(asset_count=2, max_steps=10), market=_Market(path))


ENVS = {"TradingEnvironment": _portfolio_env, "VectorTradingEnv": _vector_env, "RiskAgentsEnv": _agents_env}


@pytest.mark.parametrize("case", list(BAD_PATHS))
@pytest.mark.parametrize("env", list(ENVS))
def test_a_market_path_that_breaks_the_interface_is_refused_at_reset(case: str, env: str) -> None:
    path, message = BAD_PATHS[case]
    environment = ENVS[env](path)
    with pytest.raises(InvalidInputError, match=message):
        environment.reset(seed=0)  # type: ignore[attr-defined]


@pytest.mark.parametrize("env", list(ENVS))
def test_a_custom_market_of_lists_or_integers_still_works(env: str) -> None:
    for path in (GOOD.tolist(), np.zeros((ROWS, 2), dtype=np.int64)):
        environment = ENVS[env](path)
        obs, _ = environment.reset(seed=0)  # type: ignore[attr-defined]
        values = obs.values() if isinstance(obs, dict) else [obs]
        assert all(np.isfinite(v).all() for v in values)


def test_a_fixed_path_that_is_not_a_table_of_returns_is_refused_when_built() -> None:
    with pytest.raises(InvalidInputError, match=r"shape \(rows, assets\), got \(5,\)"):
        FixedPath(np.zeros(5))
    with pytest.raises(InvalidInputError, match="nan at row 30"):
        FixedPath(_with(30, np.nan))
    assert FixedPath(GOOD).n_assets == 2


def test_a_directory_given_as_a_model_file_is_named_a_directory_not_missing(tmp_path: Path) -> None:
    # Found: "model file not found: DIR" for a directory that exists.
    for load in (PortfolioPolicy.load, RiskAgents.load):
        with pytest.raises(ModelLoadError, match="is a directory, not a model file"):
            load(tmp_path)
    with pytest.raises(ModelLoadError, match="model file not found"):
        PortfolioPolicy.load(tmp_path / "missing.armodel")
