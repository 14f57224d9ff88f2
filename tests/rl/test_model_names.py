"""Model files record the asset names their model was trained on (issue 10).

``RLPortfolioManager`` and ``RiskAgents`` keep ``asset_names`` (training order) in their saved
settings; a file saved without names loads with None; bad names are refused on the way in
(InvalidInputError) and out (ModelLoadError); the engine's adapters forward the names; the shipped
models carry the bundled tickers.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from advanced_risk.config import EnvConfig, PPOConfig, SizingConfig
from advanced_risk.data import load_sp500_stocks
from advanced_risk.errors import InvalidInputError, ModelLoadError
from advanced_risk.rl.agents.advisor import RiskAgentsAdvisor, load_risk_agents
from advanced_risk.rl.agents.policy import MODEL_KIND as AGENTS_KIND
from advanced_risk.rl.agents.policy import RiskAgents
from advanced_risk.rl.portfolio.allocator import PolicyAllocator, load_allocator
from advanced_risk.rl.portfolio.asset_names import check_asset_names
from advanced_risk.rl.portfolio.manager import RLPortfolioManager
from advanced_risk.rl.ppo.io import MODEL_KIND as PPO_KIND
from advanced_risk.rl.ppo.model_file import read_model_file, read_model_header, write_model_file

MODELS = Path(__file__).resolve().parents[2] / "models"
SP500 = [
    "AAPL", "AMD", "BAC", "BBY", "CVX", "GE", "HD", "JNJ", "JPM", "KO",
    "LLY", "MRK", "MSFT", "PEP", "PFE", "PG", "RRC", "UNH", "WMT", "XOM",
]  # fmt: skip
NAMES = ("SPY", "TLT", "GLD")
ENV = EnvConfig(asset_count=3, max_steps=40)
PPO = PPOConfig(device="cpu", num_envs=2, num_steps=16, num_minibatches=2, hidden_sizes=(8, 8), seed=1)

BAD_NAMES: list[tuple[Any, str]] = [
    (("SPY", "TLT"), "2 names for 3 assets"),
    (("SPY", "TLT", "GLD", "QQQ"), "4 names for 3 assets"),
    (("SPY", "SPY", "GLD"), "unique"),
    (("SPY", "cash", "GLD"), "'cash'"),
    (("SPY", "", "GLD"), "blank"),
    (("SPY", "  ", "GLD"), "blank"),
    (("SPY", 3, "GLD"), "strings"),
    ("SPYTLTGLD", "sequence of strings"),
    (7, "sequence of strings"),
]


def _manager(names: Any = None) -> RLPortfolioManager:
    return RLPortfolioManager(ENV, PPO, asset_names=names)


@functools.cache
def _untrained() -> RiskAgents:
    return RiskAgents.untrained(ENV)  # builds a MAPPO trainer: once per module


def _agents(names: Any = None) -> RiskAgents:
    base = _untrained()
    return RiskAgents(base.policies, base.obs_rms, ENV, asset_names=names)


def _rewrite(path: Path, kind: str, edit: Any) -> None:
    """Re-write ``path`` (valid checksum) after ``edit(header_metadata)`` changed its header."""
    header, payload = read_model_file(path, kind=kind)
    metadata = header["metadata"]
    edit(metadata)
    write_model_file(path, payload, metadata, kind=kind)


def _ppo_settings(meta: dict[str, Any]) -> dict[str, Any]:
    settings: dict[str, Any] = meta["user"]["rl_portfolio_manager"]
    return settings


def _agents_settings(meta: dict[str, Any]) -> dict[str, Any]:
    settings: dict[str, Any] = meta["risk_agents"]
    return settings


# -- the check itself --------------------------------------------------------------------------------
def test_valid_names_become_a_tuple_and_none_stays_none() -> None:
    assert check_asset_names(["SPY", "TLT", "GLD"], 3) == NAMES
    assert check_asset_names(iter(NAMES), 3) == NAMES
    assert check_asset_names(np.array(NAMES), 3) == NAMES  # numpy strings become plain str
    assert all(type(n) is str for n in check_asset_names(np.array(NAMES), 3) or ())
    assert check_asset_names(None, 3) is None
    assert check_asset_names(("CASH", "Cash", "cash_fund"), 3) == ("CASH", "Cash", "cash_fund")  # only "cash"


@pytest.mark.parametrize(("names", "message"), BAD_NAMES)
def test_bad_names_are_refused_with_the_reason(names: Any, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        check_asset_names(names, 3)


# -- PPO policy --------------------------------------------------------------------------------------
def test_ppo_names_round_trip_and_sit_in_the_manager_settings(tmp_path: Path) -> None:
    manager = _manager(["SPY", "TLT", "GLD"])
    assert manager.asset_names == NAMES
    path = tmp_path / "policy.armodel"
    manager.save(path, {"note": "x"})
    assert _ppo_settings(read_model_header(path)["metadata"])["asset_names"] == list(NAMES)
    loaded = RLPortfolioManager.load(path)
    assert loaded.asset_names == NAMES
    assert isinstance(loaded.asset_names, tuple)
    returns = np.random.default_rng(0).normal(0.0, 0.01, (40, 3))
    np.testing.assert_array_equal(loaded.rebalance(returns), manager.rebalance(returns))


def test_ppo_without_names_saves_null_and_loads_none(tmp_path: Path) -> None:
    path = tmp_path / "policy.armodel"
    _manager().save(path)
    assert _ppo_settings(read_model_header(path)["metadata"])["asset_names"] is None
    assert RLPortfolioManager.load(path).asset_names is None


def test_ppo_file_from_before_names_loads_with_none(tmp_path: Path) -> None:
    path = tmp_path / "old.armodel"
    _manager(NAMES).save(path)
    _rewrite(path, PPO_KIND, lambda meta: _ppo_settings(meta).pop("asset_names"))
    assert "asset_names" not in _ppo_settings(read_model_header(path)["metadata"])
    assert RLPortfolioManager.load(path).asset_names is None


@pytest.mark.parametrize(("names", "message"), BAD_NAMES)
def test_ppo_bad_names_are_refused_by_the_constructor_and_the_setter(names: Any, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        _manager(names)
    manager = _manager(NAMES)
    with pytest.raises(InvalidInputError, match=message):
        manager.asset_names = names
    assert manager.asset_names == NAMES  # unchanged by the refused assignment


@pytest.mark.parametrize(
    ("stored", "message"),
    [
        (["SPY", "TLT"], "2 names for 3 assets"),
        (["SPY", "SPY", "GLD"], "unique"),
        (["SPY", "cash", "GLD"], "'cash'"),
        (["SPY", "", "GLD"], "blank"),
        (["SPY", 1, "GLD"], "strings"),
        ("SPY,TLT,GLD", "expected a list"),
        ({"0": "SPY"}, "expected a list"),
    ],
)
def test_a_file_with_bad_names_is_a_model_load_error(tmp_path: Path, stored: Any, message: str) -> None:
    ppo, agents = tmp_path / "ppo.armodel", tmp_path / "agents.armodel"
    _manager(NAMES).save(ppo)
    _agents(NAMES).save(agents)
    _rewrite(ppo, PPO_KIND, lambda meta: _ppo_settings(meta).__setitem__("asset_names", stored))
    _rewrite(agents, AGENTS_KIND, lambda meta: _agents_settings(meta).__setitem__("asset_names", stored))
    with pytest.raises(ModelLoadError, match=message):
        RLPortfolioManager.load(ppo)
    with pytest.raises(ModelLoadError, match=message):
        RiskAgents.load(agents)


def test_policy_allocator_forwards_the_names() -> None:
    assert PolicyAllocator(_manager(NAMES)).asset_names == NAMES
    assert PolicyAllocator(_manager()).asset_names is None


def test_load_allocator_of_a_path_carries_the_names(tmp_path: Path) -> None:
    path = tmp_path / "policy.armodel"
    _manager(NAMES).save(path)
    allocator = load_allocator(str(path))
    assert getattr(allocator, "asset_names", None) == NAMES


# -- risk agents -------------------------------------------------------------------------------------
def test_agents_names_round_trip_and_sit_in_the_agents_settings(tmp_path: Path) -> None:
    agents = _agents()
    assert agents.asset_names is None
    agents.asset_names = ["SPY", "TLT", "GLD"]
    assert agents.asset_names == NAMES
    path = tmp_path / "agents.armodel"
    agents.save(path, {"note": "x"})
    assert _agents_settings(read_model_header(path)["metadata"])["asset_names"] == list(NAMES)
    assert read_model_header(path)["metadata"]["user"] == {"note": "x"}
    loaded = RiskAgents.load(path)
    assert loaded.asset_names == NAMES


def test_agents_constructor_and_from_trainer_take_names() -> None:
    base = _untrained()
    agents = RiskAgents(base.policies, base.obs_rms, ENV, asset_names=NAMES)
    assert agents.asset_names == NAMES
    with pytest.raises(InvalidInputError, match="'cash'"):
        RiskAgents(base.policies, base.obs_rms, ENV, asset_names=("a", "cash", "b"))


def test_agents_without_names_save_null_and_a_file_from_before_names_loads_with_none(
    tmp_path: Path,
) -> None:
    path = tmp_path / "agents.armodel"
    _agents().save(path)
    assert _agents_settings(read_model_header(path)["metadata"])["asset_names"] is None
    assert RiskAgents.load(path).asset_names is None
    _rewrite(path, AGENTS_KIND, lambda meta: _agents_settings(meta).pop("asset_names"))
    assert RiskAgents.load(path).asset_names is None


@pytest.mark.parametrize(("names", "message"), BAD_NAMES)
def test_agents_bad_names_are_refused_by_the_setter(names: Any, message: str) -> None:
    agents = _agents(NAMES)
    with pytest.raises(InvalidInputError, match=message):
        agents.asset_names = names
    assert agents.asset_names == NAMES


def test_risk_agents_advisor_forwards_the_names(tmp_path: Path) -> None:
    assert RiskAgentsAdvisor(_agents(NAMES), SizingConfig()).asset_names == NAMES
    assert RiskAgentsAdvisor(_agents(), SizingConfig()).asset_names is None
    path = tmp_path / "agents.armodel"
    _agents(NAMES).save(path)
    advisor = load_risk_agents(str(path), SizingConfig())
    assert advisor is not None
    assert advisor.asset_names == NAMES


# -- the shipped models ------------------------------------------------------------------------------
def test_the_bundled_columns_are_the_documented_tickers() -> None:
    assert [str(c) for c in load_sp500_stocks().columns] == SP500


def test_shipped_sp500_models_carry_the_bundled_tickers_in_column_order() -> None:
    ppo = RLPortfolioManager.load(MODELS / "ppo_sp500_2012.armodel")
    assert ppo.asset_names == tuple(SP500)
    assert PolicyAllocator(ppo).asset_names == tuple(SP500)
    agents = RiskAgents.load(MODELS / "risk_agents_sp500.armodel")
    assert agents.asset_names == tuple(SP500)
    # the names agree with the tickers the training run recorded beside them
    user = read_model_header(MODELS / "risk_agents_sp500.armodel")["metadata"]["user"]
    assert user["data"]["tickers"] == SP500


def test_shipped_regime_agents_model_unnamed_simulated_assets() -> None:
    agents = RiskAgents.load(MODELS / "risk_agents_regime.armodel")
    assert agents.asset_count == 20
    assert agents.asset_names is None
    assert (
        "asset_names"
        not in read_model_header(MODELS / "risk_agents_regime.armodel")["metadata"]["risk_agents"]
    )
