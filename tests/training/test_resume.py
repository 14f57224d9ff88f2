"""Checkpoints and resume: bit-identical continuation, and SIGKILL never leaves an unloadable checkpoint."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch

from advanced_risk.rl.ppo.model_file import read_model_file
from advanced_risk.training.checkpoint import CHECKPOINT_KIND, checkpoint_files, load_latest, restore
from advanced_risk.training.cli import resolve_settings
from advanced_risk.training.data import load_data
from advanced_risk.training.ppo import train_agent
from advanced_risk.training.settings import TrainingSettings

from .conftest import SCRIPT, run_cli


def _settings(out: Path) -> TrainingSettings:
    return TrainingSettings(
        asset_count=3, max_steps=30, num_envs=2, seed=3, device="cpu", total_steps=6 * 2 * 32,
        checkpoint_every=1, out=str(out),
        ppo={"num_steps": 32, "update_epochs": 2, "num_minibatches": 2, "hidden_sizes": [16, 16]},
    )  # fmt: skip


def test_interrupted_and_resumed_run_ends_with_the_same_weights(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    straight = _settings(tmp_path / "straight")
    data = load_data(straight)
    full, _ = train_agent(straight, data)
    interrupted = _settings(tmp_path / "interrupted")
    first, _ = train_agent(interrupted, data, stop_after=2)
    assert first.num_updates == 2
    resumed, history = train_agent(dataclasses.replace(interrupted, resume=True), load_data(interrupted))
    assert len(history) == 4
    assert (resumed.num_updates, resumed.global_step) == (full.num_updates, full.global_step)
    for a, b in zip(full.network.state_dict().values(), resumed.network.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    opt_a, opt_b = full.optimizer.state_dict()["state"], resumed.optimizer.state_dict()["state"]
    for key in opt_a:
        assert torch.equal(opt_a[key]["exp_avg_sq"], opt_b[key]["exp_avg_sq"])
    assert np.array_equal(full.obs_rms.state_dict()["mean"], resumed.obs_rms.state_dict()["mean"])


def test_load_latest_skips_a_torn_newest_checkpoint(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    train_agent(settings, load_data(settings), stop_after=2)
    directory = tmp_path / "checkpoints"
    newest = checkpoint_files(directory)[-1]
    torn = directory / "update_00000099.ckpt"
    torn.write_bytes(newest.read_bytes()[:-100])
    (directory / ".update_00000100.ckpt.abc.tmp").write_bytes(b"partial")
    path, header, _ = load_latest(directory)
    assert path == newest
    assert header["metadata"]["num_updates"] == 2
    assert not list(directory.glob(".*.tmp"))


def test_sigkill_during_checkpointing_never_leaves_an_unloadable_checkpoint(tmp_path: Path) -> None:
    out = tmp_path / "run"
    config = tmp_path / "big.toml"
    # a wide network makes each checkpoint a few MB, so kills land inside writes
    config.write_text(
        "asset_count = 3\nmax_steps = 30\nnum_envs = 2\ntotal_steps = 64000\ncheckpoint_every = 1\n"
        "[ppo]\nnum_steps = 32\nupdate_epochs = 1\nnum_minibatches = 1\nhidden_sizes = [512, 512]\n"
    )
    rng = np.random.default_rng(0)
    args = ["--config", str(config), "--out", str(out)]
    kills = 0
    for attempt in range(4):
        extra = ["--resume"] if attempt and checkpoint_files(out / "checkpoints") else []
        proc = subprocess.Popen([sys.executable, str(SCRIPT), *args, *extra], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, cwd=SCRIPT.parent)  # fmt: skip
        deadline = time.monotonic() + 60
        while not checkpoint_files(out / "checkpoints") and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(float(rng.uniform(0.1, 0.8)))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        kills += 1
        files = checkpoint_files(out / "checkpoints")
        assert files, "no checkpoint was written before the kill"
        for path in files:  # every file under a checkpoint name verifies; only *.tmp may be torn
            read_model_file(path, kind=CHECKPOINT_KIND)
    _, _, payload = load_latest(out / "checkpoints")
    settings = TrainingSettings(asset_count=3, max_steps=30, num_envs=2, out=str(out), device="cpu",
                                ppo={"num_steps": 32, "update_epochs": 1, "num_minibatches": 1,
                                     "hidden_sizes": [512, 512]})  # fmt: skip
    from advanced_risk.rl.portfolio.accounting import observation_dim
    from advanced_risk.rl.portfolio.env import VectorTradingEnv
    from advanced_risk.rl.ppo.agent import PPOAgent
    from advanced_risk.training.settings import build_ppo_config

    data = load_data(settings)
    agent = PPOAgent(observation_dim(data.env_config), 4, build_ppo_config(settings, data.env_config))
    restore(payload, agent, VectorTradingEnv(data.env_config, 2, seed=0, market=data.train_market))
    assert agent.num_updates >= 1
    assert kills == 4


@pytest.mark.slow  # two CLI runs (~20 s); the resume itself is the fast tests' subject
def test_resume_continues_a_moved_run_in_the_out_given_not_the_stored_one(
    tmp_path: Path, tiny_config: Path
) -> None:
    first, moved = tmp_path / "runA", tmp_path / "runB"
    trained = run_cli("--config", str(tiny_config), "--total-steps", "128", "--checkpoint-every", "1",
                      "--device", "cpu", "--out", str(first))  # fmt: skip
    assert trained.returncode == 0, trained.stderr[-2000:]
    first.rename(moved)  # config.toml still says out = ".../runA"
    for name in ("model.pt", "report.md"):
        (moved / name).unlink()
    resumed = run_cli("--resume", "--out", str(moved))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert not first.exists(), "the stored out was recreated"
    assert str(moved / "checkpoints") in resumed.stderr  # the checkpoint resumed from is the moved one
    assert (moved / "model.pt").is_file()
    assert (moved / "report.md").is_file()
    assert tomllib.loads((moved / "config.toml").read_text())["out"] == str(moved)


def test_resume_replaces_the_stored_out_and_a_model_path_inside_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "copy").mkdir()
    (tmp_path / "copy" / "config.toml").write_text(
        'out = "original"\nmodel_path = "original/policy.pt"\nasset_count = 3\n'
    )
    settings = resolve_settings(["--resume", "--out", "copy"])
    assert (settings.out, settings.model_path, settings.resume) == (
        "copy",
        str(Path("copy", "policy.pt")),
        True,
    )
    assert settings.run_dir.resolve() == (tmp_path / "copy").resolve()  # relative to the cwd at resume
    (tmp_path / "copy" / "config.toml").write_text('out = "original"\nmodel_path = "/elsewhere/policy.pt"\n')
    assert resolve_settings(["--resume", "--out", "copy"]).model_path == "/elsewhere/policy.pt"
