"""``--resume`` of a ``--sweep`` run reuses the sweep its checkpoints were trained after (a second
sweep samples other hyperparameters, which the checkpoint's settings check would then refuse)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
import torch

from advanced_risk.errors import InvalidInputError, ModelLoadError
from advanced_risk.training import pipeline
from advanced_risk.training.data import DataBundle, load_data
from advanced_risk.training.ppo import train_agent
from advanced_risk.training.settings import TrainingSettings


def _settings(out: Path) -> TrainingSettings:
    return TrainingSettings(
        asset_count=3, max_steps=30, num_envs=2, seed=3, device="cpu", total_steps=4 * 2 * 32,
        checkpoint_every=1, out=str(out), sweep=2,
        ppo={"num_steps": 32, "update_epochs": 1, "num_minibatches": 2, "hidden_sizes": [16, 16]},
    )  # fmt: skip


class _RandomSweep:
    """Stands in for Ray Tune (not installed here): each call picks another learning rate."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(
        self, settings: TrainingSettings, data: DataBundle
    ) -> tuple[dict[str, Any], TrainingSettings]:
        self.calls += 1
        best = {"learning_rate": 1e-4 * (1 + self.calls), "gamma": 0.9, "ent_coef": 0.0}
        summary = {
            "trials": [{"params": best, "val_sharpe": 0.5}],
            "best": {"params": best, "val_sharpe": 0.5},
        }
        return summary, dataclasses.replace(settings, ppo={**settings.ppo, **best})


def test_a_resumed_sweep_run_reuses_the_sweep_and_continues(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    torch.set_num_threads(1)
    sweep = _RandomSweep()
    monkeypatch.setattr(pipeline, "run_sweep", sweep)
    first = _settings(tmp_path / "run")
    data = load_data(first)
    first.run_dir.mkdir(parents=True)  # the pipeline writes config.toml there first
    summary, chosen = pipeline.swept(first, data)
    assert sweep.calls == 1
    assert json.loads((first.run_dir / "sweep.json").read_text())["best"] == summary["best"]
    train_agent(chosen, data, stop_after=2)  # the crash after two updates

    resumed = dataclasses.replace(first, resume=True)
    again, settings = pipeline.swept(resumed, data)
    assert sweep.calls == 1  # no second sweep
    assert again == summary
    assert settings.ppo["learning_rate"] == chosen.ppo["learning_rate"]
    agent, history = train_agent(settings, data)  # the checkpoint's settings check passes
    assert agent.num_updates == 4
    assert len(history) == 2

    # what a second sweep would have done: another learning rate, refused by the settings check
    _, other = sweep(resumed, data)
    with pytest.raises(ModelLoadError, match="learning_rate"):
        train_agent(other, data)


def test_an_unreadable_sweep_result_on_resume_is_named(tmp_path: Path) -> None:
    settings = dataclasses.replace(_settings(tmp_path / "run"), resume=True)
    settings.run_dir.mkdir(parents=True)
    (settings.run_dir / "sweep.json").write_text("{not json")
    with pytest.raises(InvalidInputError, match=r"sweep\.json"):
        pipeline.swept(settings, load_data(settings))
