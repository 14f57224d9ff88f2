"""Shared helpers of the training-pipeline tests: tiny settings and a CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "train_ppo_agent.py"

TINY_TOML = """\
asset_count = 3
max_steps = 30
num_envs = 2
eval_episodes = 4
data = "synthetic"

[ppo]
num_steps = 32
update_epochs = 2
num_minibatches = 2
hidden_sizes = [16, 16]
"""


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``train_ppo_agent.py`` in a subprocess with the test interpreter."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        env=env,
        check=False,
    )


@pytest.fixture
def tiny_config(tmp_path: Path) -> Path:
    """A TOML file of a run that trains in well under a second."""
    path = tmp_path / "tiny.toml"
    path.write_text(TINY_TOML)
    return path
