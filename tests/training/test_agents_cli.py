"""``train_ppo_agent.py --agents risk``: quick run end to end, exact resume, bad model files -> exit 2."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from advanced_risk.config import EnvConfig
from advanced_risk.rl.agents.policy import RiskAgents
from advanced_risk.training.agents import train_agents, with_risk_defaults
from advanced_risk.training.data import load_data
from advanced_risk.training.settings import TrainingSettings

from .conftest import REPO, run_cli


def _settings(out: Path) -> TrainingSettings:
    return with_risk_defaults(
        TrainingSettings(
            agents="risk", asset_count=2, max_steps=20, num_envs=2, seed=3, device="cpu",
            total_steps=5 * 2 * 16, checkpoint_every=1, out=str(out), data="regime",
            ppo={"num_steps": 16, "update_epochs": 2, "num_minibatches": 2, "hidden_sizes": [8, 8]},
        )
    )  # fmt: skip


def test_interrupted_and_resumed_agents_end_with_the_same_weights(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    straight = _settings(tmp_path / "straight")
    data = load_data(straight)
    full, _ = train_agents(straight, data)
    interrupted = _settings(tmp_path / "interrupted")
    first, _ = train_agents(interrupted, data, stop_after=2)
    assert first.num_updates == 2
    resumed, history = train_agents(dataclasses.replace(interrupted, resume=True), load_data(interrupted))
    assert len(history) == 3
    assert (resumed.num_updates, resumed.global_step) == (full.num_updates, full.global_step) == (5, 160)
    for a, b in zip(full.network.state_dict().values(), resumed.network.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    for agent in full.agents:
        np.testing.assert_array_equal(full.obs_rms[agent].mean, resumed.obs_rms[agent].mean)


@pytest.mark.slow
@pytest.mark.timing
def test_quick_risk_run_writes_model_and_report_in_under_60_seconds(tmp_path: Path) -> None:
    out = tmp_path / "quick"
    start = time.perf_counter()
    result = run_cli("--agents", "risk", "--quick", "--out", str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    assert time.perf_counter() - start < 60
    agents = RiskAgents.load(out / "risk_agents.armodel")
    assert agents.asset_count == 5
    report = json.loads((out / "report.json").read_text())
    assert report["kind"] == "risk_agents"
    assert set(report["regime_paths"]["summaries"]) == {"agents_gated", "agents", "rules", "no_risk"}
    assert report["test_period"]["days"] > 100
    assert (out / "report.md").read_text().startswith("# Risk agents (MAPPO)")
    resumed = run_cli("--resume", "--out", str(out))  # all updates done: restores and re-reports
    assert resumed.returncode == 0, resumed.stderr[-2000:]


@pytest.fixture
def tiny_agents(tmp_path: Path) -> Path:
    path = tmp_path / "agents.armodel"
    RiskAgents.untrained(EnvConfig(asset_count=3)).save(path, {"test": True})
    return path


def test_evaluate_an_agents_file_writes_the_report(tmp_path: Path, tiny_agents: Path) -> None:
    out = tmp_path / "eval"
    result = run_cli(
        "--evaluate", "--agents", "risk", "--model-path", str(tiny_agents), "--data", "regime",
        "--max-steps", "40", "--eval-episodes", "3", "--out", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads((out / "report.json").read_text())
    assert report["regime_paths"]["seeds"] == [1_000_000, 1_000_001, 1_000_002]
    assert report["test_period"]["data"]["tickers"] == ["AAPL", "AMD", "BAC"]


@pytest.mark.parametrize(
    ("model", "extra", "message"),
    [
        ("missing", [], "not found"),
        ("ppo", [], "expected a 'risk_agents'"),
        ("tiny", ["--asset-count", "5"], "trained on 3 assets"),
    ],
)
def test_bad_agents_model_is_one_line_and_exit_code_2(
    tmp_path: Path, tiny_agents: Path, model: str, extra: list[str], message: str
) -> None:
    path = {
        "missing": tmp_path / "nope.armodel",
        "ppo": REPO / "models" / "ppo_sp500_2012.armodel",
        "tiny": tiny_agents,
    }[model]
    result = run_cli(
        "--evaluate", "--agents", "risk", "--model-path", str(path), *extra, "--out", str(tmp_path / "o")
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert message in lines[0]
    assert "Traceback" not in result.stderr
