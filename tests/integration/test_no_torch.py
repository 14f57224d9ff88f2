"""A core install (``pip install advanced_risk``) runs the shipped policy and risk agents without torch.

A child process whose ``import torch`` (and gymnasium, pettingzoo, tensorboard, matplotlib, tqdm)
raises ``ImportError`` loads ``models/ppo_sp500_2012.armodel`` and ``models/risk_agents_sp500.armodel``
through ``AdvancedRiskManager`` and decides 1,000 bars of the bundled S&P 500 stocks; this process
decides the same bars with the torch classes (``RLPortfolioManager.load``, ``RiskAgents.load``), and
every decision's JSON must be the same. The package metadata keeps the training stack in extras.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

from packaging.requirements import Requirement

REPLAY = Path(__file__).with_name("replay_shipped_models.py")
BARS = 1000
TRAINING_STACK = {"torch", "gymnasium", "pettingzoo", "tensorboard", "matplotlib", "tqdm"}


def _replay_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("replay_shipped_models", REPLAY)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_shipped_models_decide_without_the_training_stack_as_with_torch() -> None:
    child = subprocess.Popen(
        [sys.executable, str(REPLAY), "decisions", "--bars", str(BARS), "--no-training-stack"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:  # the torch run here while the child runs (two cores)
        with_torch = list(_replay_module().manager_decisions(BARS, torch_objects=True))
        out, err = child.communicate(timeout=300)
    finally:
        child.kill()
    assert child.returncode == 0, err[-3000:]
    without_torch = out.splitlines()
    assert len(without_torch) == BARS
    assert "torch" in sys.modules  # this process did use the torch classes
    first_difference = next(
        (t for t, (a, b) in enumerate(zip(without_torch, with_torch, strict=True)) if a != b), None
    )
    assert first_difference is None, f"decisions differ from bar {first_difference}"
    assert without_torch == with_torch


def test_core_requirements_leave_the_training_stack_to_extras() -> None:
    requirements = [Requirement(r) for r in importlib.metadata.requires("advanced_risk") or []]
    core = {r.name.lower() for r in requirements if r.marker is None}
    train = {
        r.name.lower() for r in requirements if r.marker is not None and r.marker.evaluate({"extra": "train"})
    }
    assert core, "no unconditional requirements found"
    assert not core & TRAINING_STACK
    assert {"numpy", "safetensors"} <= core
    assert train >= TRAINING_STACK
