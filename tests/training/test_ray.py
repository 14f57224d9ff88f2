"""The Ray backend and Ray Tune sweeps (slow; skipped when the ``distributed`` extra is missing)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import run_cli

pytestmark = pytest.mark.slow
pytest.importorskip("ray", reason="ray is not installed (pip install 'advanced_risk[distributed]')")


def test_ray_backend_with_two_workers_trains_and_evaluates(tmp_path: Path, tiny_config: Path) -> None:
    out = tmp_path / "ray"
    result = run_cli("--config", str(tiny_config), "--total-steps", "192", "--backend", "ray",
                     "--num-workers", "2", "--out", str(out), timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert report["training"]["global_step"] == 192
    assert set(report["metrics"]) == {"ppo", "equal_weight", "min_variance", "buy_and_hold"}


def test_ray_backend_reproduces_the_local_backend(tmp_path: Path) -> None:
    import torch

    from advanced_risk.training.data import load_data
    from advanced_risk.training.distributed import train_on_ray
    from advanced_risk.training.ppo import train_agent
    from advanced_risk.training.settings import TrainingSettings

    torch.set_num_threads(1)
    settings = TrainingSettings(asset_count=3, max_steps=30, num_envs=4, total_steps=256, device="cpu",
                                checkpoint_every=0, num_workers=2, out=str(tmp_path),
                                ppo={"num_steps": 32, "update_epochs": 2, "num_minibatches": 2})  # fmt: skip
    data = load_data(settings)
    local, _ = train_agent(settings, data)
    remote, _ = train_on_ray(settings, data)
    for a, b in zip(local.network.state_dict().values(), remote.network.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_sweep_of_two_trials_completes_and_reports_the_best(tmp_path: Path, tiny_config: Path) -> None:
    out = tmp_path / "sweep"
    result = run_cli("--config", str(tiny_config), "--total-steps", "128", "--sweep", "2", "--out", str(out),
                     timeout=400)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    sweep = json.loads((out / "report.json").read_text())["sweep"]
    assert len(sweep["trials"]) == 2
    assert sweep["best"]["val_sharpe"] == max(t["val_sharpe"] for t in sweep["trials"] if "val_sharpe" in t)
    assert "## Sweep" in (out / "report.md").read_text()
