"""Adversarial round 3: resuming a run whose stored settings were changed since its checkpoint."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import torch

from advanced_risk.errors import ModelLoadError
from advanced_risk.training.agents import train_agents
from advanced_risk.training.checkpoint import check_resume_settings, load_latest
from advanced_risk.training.cli import main
from advanced_risk.training.data import load_data
from advanced_risk.training.ppo import train_agent
from advanced_risk.training.settings import TrainingSettings, settings_to_toml


def _settings(out: Path, **changes: Any) -> TrainingSettings:
    base = TrainingSettings(
        asset_count=2, max_steps=20, num_envs=2, seed=3, device="cpu", total_steps=4 * 2 * 16,
        checkpoint_every=1, out=str(out),
        ppo={"num_steps": 16, "update_epochs": 1, "num_minibatches": 2, "hidden_sizes": [8, 8]},
    )  # fmt: skip
    return dataclasses.replace(base, **changes)


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run directory holding the checkpoints of 2 of 4 updates."""
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("run")
    settings = _settings(out)
    train_agent(settings, load_data(settings), stop_after=2)
    return out


# Found: an edited config.toml resumed silently with another market or rollout length (or another
# total length, silently ignored), and another network size failed with torch's multi-line dump of
# every size mismatch.
CHANGES = {
    "data": ({"data": "regime"}, "data: checkpoint 'synthetic', now 'regime'"),
    "ppo.num_steps": (
        {"ppo": {"num_steps": 8, "update_epochs": 1, "num_minibatches": 2, "hidden_sizes": [8, 8]}},
        "ppo.num_steps: checkpoint 16, now 8",
    ),
    "ppo.hidden_sizes": (
        {"ppo": {"num_steps": 16, "update_epochs": 1, "num_minibatches": 2, "hidden_sizes": [4]}},
        "ppo.hidden_sizes: checkpoint [8, 8], now [4]",
    ),
    "total_steps": ({"total_steps": 512}, "total_steps: checkpoint 128, now 512"),
    "seed": ({"seed": 4}, "seed: checkpoint 3, now 4"),
    "env table": ({"env": {"transaction_cost": 0.01}}, "env.transaction_cost: checkpoint None, now 0.01"),
}


@pytest.mark.parametrize("case", list(CHANGES))
def test_resuming_under_changed_training_settings_is_refused_naming_each_change(
    case: str, interrupted: Path
) -> None:
    changes, message = CHANGES[case]
    settings = _settings(interrupted, resume=True, **changes)
    with pytest.raises(ModelLoadError, match="was written with other settings") as err:
        train_agent(settings, load_data(settings))
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_resuming_with_output_device_and_reporting_changes_still_continues(interrupted: Path) -> None:
    settings = _settings(
        interrupted, resume=True, plot=True, tensorboard=False, eval_episodes=7, checkpoint_every=0,
        torch_threads=2, grad_accum=1, model_path=str(interrupted / "elsewhere.armodel"),
    )  # fmt: skip
    agent, history = train_agent(settings, load_data(settings))
    assert (agent.num_updates, len(history)) == (4, 2)


def test_the_cli_reports_an_edited_config_as_one_line_with_exit_code_2(
    interrupted: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "copy"
    (run / "checkpoints").mkdir(parents=True)
    newest, _, _ = load_latest(interrupted / "checkpoints")
    (run / "checkpoints" / newest.name).write_bytes(newest.read_bytes())
    edited = _settings(run, data="regime")
    (run / "config.toml").write_text(settings_to_toml(edited))
    assert main(["--resume", "--out", str(run)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("error: checkpoint ")
    assert "data: checkpoint 'synthetic', now 'regime'" in err[0]


def test_a_checkpoint_without_stored_settings_is_not_checked(tmp_path: Path) -> None:
    check_resume_settings({"metadata": {}}, _settings(tmp_path).to_dict(), tmp_path / "x.ckpt")
    stored = {"metadata": {"settings": {"seed": 3}}}  # keys the checkpoint does not know: ignored
    check_resume_settings(stored, _settings(tmp_path).to_dict(), tmp_path / "x.ckpt")


def test_the_risk_agents_resume_is_checked_the_same_way(tmp_path: Path) -> None:
    settings = _settings(
        tmp_path, agents="risk", data="regime", total_steps=2 * 2 * 16,
        ppo={"num_steps": 16, "update_epochs": 1, "num_minibatches": 1, "hidden_sizes": [8]},
    )  # fmt: skip
    train_agents(settings, load_data(settings), stop_after=1)
    changed = dataclasses.replace(settings, resume=True, seed=9)
    with pytest.raises(ModelLoadError, match="seed: checkpoint 3, now 9"):
        train_agents(changed, load_data(changed))
