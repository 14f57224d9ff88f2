"""The training pipelines record the data's asset names (column order) in the models they write."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from advanced_risk.data import load_sp500_stocks
from advanced_risk.errors import InvalidInputError
from advanced_risk.rl.agents.policy import RiskAgents
from advanced_risk.rl.portfolio.allocator import load_allocator
from advanced_risk.rl.portfolio.manager import RLPortfolioManager
from advanced_risk.training.data import load_data
from advanced_risk.training.pipeline import run
from advanced_risk.training.settings import TrainingSettings

TINY_PPO = {"num_steps": 16, "update_epochs": 1, "num_minibatches": 2, "hidden_sizes": [8, 8]}


def _tickers(n: int) -> tuple[str, ...]:
    return tuple(str(c) for c in load_sp500_stocks().columns[:n])


def _tiny(out: Path, **overrides: object) -> TrainingSettings:
    values: dict[str, object] = {
        "data": "sp500", "asset_count": 3, "rows": 400, "max_steps": 20, "num_envs": 2, "device": "cpu",
        "total_steps": 64, "checkpoint_every": 0, "eval_episodes": 2, "out": str(out), "ppo": dict(TINY_PPO),
    }  # fmt: skip
    values.update(overrides)
    return TrainingSettings(**values)  # type: ignore[arg-type]


def test_table_data_names_its_assets_and_simulated_data_does_not(tmp_path: Path) -> None:
    assert load_data(_tiny(tmp_path, asset_count=4)).asset_names == _tickers(4)
    for market in ("synthetic", "regime"):
        assert load_data(_tiny(tmp_path, data=market)).asset_names is None


def test_csv_column_names_become_the_asset_names_and_cash_is_refused(tmp_path: Path) -> None:
    rows = [f"2020-{1 + d // 28:02d}-{1 + d % 28:02d},{100 + d},{50 + d % 7}" for d in range(300)]
    good = tmp_path / "good.csv"
    good.write_text("\n".join(["Date,SPY,TLT", *rows]) + "\n")
    assert load_data(_tiny(tmp_path, data_csv=str(good), asset_count=2, rows=None)).asset_names == (
        "SPY",
        "TLT",
    )
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(["Date,SPY,cash", *rows]) + "\n")
    with pytest.raises(InvalidInputError, match="may not contain 'cash'"):
        load_data(_tiny(tmp_path, data_csv=str(bad), asset_count=2, rows=None))


def test_allocator_run_writes_a_manager_file_with_the_tickers(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    settings = _tiny(tmp_path / "ppo")
    run(settings)
    manager = RLPortfolioManager.load(settings.model_file)
    assert manager.asset_names == _tickers(3)
    allocator = load_allocator(str(settings.model_file))
    assert getattr(allocator, "asset_names", None) == _tickers(3)


def test_risk_agents_run_writes_the_tickers(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    settings = _tiny(tmp_path / "risk", agents="risk")
    summary = run(settings)
    agents = RiskAgents.load(summary["model"])
    assert agents.asset_names == _tickers(3)


def test_evaluating_a_named_model_on_other_columns_says_so(tmp_path: Path) -> None:
    from structlog.testing import capture_logs

    from advanced_risk.training.data import warn_if_names_differ

    data = load_data(_tiny(tmp_path))
    with capture_logs() as events:
        warn_if_names_differ(_tickers(3), data, "same.armodel")
        warn_if_names_differ(None, data, "unnamed.armodel")
        warn_if_names_differ(("X", "Y", "Z"), data, "other.armodel")
    assert [(e["event"], e["model"]) for e in events] == [("asset_names_differ", "other.armodel")]
    assert events[0]["data_assets"] == list(_tickers(3))
