"""train_ppo_agent.py end to end: --help, --quick, a full run's artefacts, --config precedence."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import pytest

from advanced_risk.training.cli import build_parser, resolve_settings
from advanced_risk.training.settings import TrainingSettings

from .conftest import run_cli


def test_help_documents_every_flag_with_its_default() -> None:
    text = build_parser().format_help()
    flags = [f"--{name.replace('_', '-')}" for name in TrainingSettings.__dataclass_fields__
             if name not in ("env", "ppo")]  # fmt: skip
    for flag in [*flags, "--config"]:
        assert flag in text, flag
    assert text.count("(default:") >= len(flags) + 1


def test_quick_run_finishes_in_under_60_seconds_and_writes_a_report(tmp_path: Path) -> None:
    start = time.perf_counter()
    result = run_cli("--quick", "--out", str(tmp_path / "quick"))
    elapsed = time.perf_counter() - start
    assert result.returncode == 0, result.stderr[-2000:]
    assert elapsed < 60
    report = json.loads((tmp_path / "quick" / "report.json").read_text())
    assert report["data"]["rows"] == 500
    assert set(report["metrics"]) == {"ppo", "equal_weight", "min_variance", "buy_and_hold"}
    assert (tmp_path / "quick" / "report.md").read_text().startswith("# PPO allocator")


def test_full_run_writes_report_plots_and_tensorboard_with_real_numbers(
    tmp_path: Path, tiny_config: Path
) -> None:
    out = tmp_path / "x"
    result = run_cli("--config", str(tiny_config), "--episodes", "5", "--evaluate", "--plot", "--tensorboard",
                     "--out", str(out))  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads((out / "report.json").read_text())
    for strategy in ("ppo", "equal_weight", "min_variance", "buy_and_hold"):
        for metric in ("total_return", "annual_return", "annual_vol", "sharpe", "sortino", "max_drawdown",
                       "calmar", "turnover", "costs"):  # fmt: skip
            cell = report["metrics"][strategy][metric]
            assert math.isfinite(cell["mean"])
            assert cell["low"] <= cell["mean"] <= cell["high"]
        assert report["var_breaches"][strategy]["days"] > 0
    assert "| ppo |" in (out / "report.md").read_text()
    for png in ("equity.png", "drawdown.png", "weights.png"):
        data = (out / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        assert len(data) > 5000
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(out / "tensorboard"))
    acc.Reload()
    tags = acc.Tags()["scalars"]
    for tag in (
        "train/policy_loss",
        "train/approx_kl",
        "train/clipfrac",
        "train/entropy",
        "train/lr",
        "train/sps",
    ):
        assert tag in tags
        assert all(math.isfinite(e.value) for e in acc.Scalars(tag))
    assert (out / "model.pt").is_file()


def test_flags_override_the_toml_and_the_run_dir_stores_the_resolved_config(tiny_config: Path) -> None:
    settings = resolve_settings(["--config", str(tiny_config), "--asset-count", "4", "--seed", "7"])
    assert (settings.asset_count, settings.seed, settings.max_steps) == (4, 7, 30)
    assert settings.ppo["num_steps"] == 32


def test_resolved_config_round_trips_through_config_toml(tmp_path: Path, tiny_config: Path) -> None:
    from advanced_risk.training.settings import settings_to_toml

    settings = resolve_settings(["--config", str(tiny_config), "--total-steps", "64", "--out", str(tmp_path)])
    stored = tmp_path / "config.toml"
    stored.write_text(settings_to_toml(settings))
    assert resolve_settings(["--config", str(stored)]) == settings


@pytest.mark.parametrize("flag", ["--quick"])
def test_quick_keeps_explicit_flags(flag: str) -> None:
    settings = resolve_settings([flag, "--asset-count", "3", "--data", "synthetic"])
    assert (settings.asset_count, settings.data, settings.rows) == (3, "synthetic", 500)
