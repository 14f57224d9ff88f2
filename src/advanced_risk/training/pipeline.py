"""The training and evaluation run behind ``train_ppo_agent.py``.

One call, :func:`run`, does what a run directory records::

    data -> (resume from the latest checkpoint) -> PPO training with progress bar, TensorBoard
    scalars and atomic checkpoints every N updates -> policy file -> evaluation report

The policy file is an :class:`~advanced_risk.rl.portfolio.manager.RLPortfolioManager` file (so
``AdvancedRiskManager(policy=path)`` loads it) recording the data's asset names in column order
(None for simulated data). ``--agents risk`` runs :func:`advanced_risk.training.agents.run_agents`
instead, and ``--evaluate --model-path M`` alone evaluates ``M`` without training.

The settings are :class:`~advanced_risk.training.settings.TrainingSettings`, written to
``<out>/config.toml`` before training starts. The training loop is
:mod:`advanced_risk.training.ppo`, evaluation and the report :mod:`advanced_risk.training.report`,
checkpoints :mod:`advanced_risk.training.checkpoint`, data :mod:`advanced_risk.training.data` and
the Ray backend and sweeps :mod:`advanced_risk.training.distributed`. The library never configures
logging; the CLI (:mod:`advanced_risk.training.cli`) does.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from advanced_risk.errors import InvalidInputError
from advanced_risk.files import atomic_write_bytes
from advanced_risk.logs import get_logger
from advanced_risk.rl.portfolio.drift import REFERENCE_KEY, policy_reference, training_paths
from advanced_risk.rl.portfolio.manager import RLPortfolioManager
from advanced_risk.training import report as training_report
from advanced_risk.training.agents import agents_model_file, run_agents
from advanced_risk.training.checkpoint import load_latest
from advanced_risk.training.data import DataBundle, load_data
from advanced_risk.training.distributed import run_sweep, train_on_ray
from advanced_risk.training.ppo import train_agent
from advanced_risk.training.settings import TrainingSettings, build_ppo_config, settings_to_toml

__all__ = ["prepare_model_path", "prepare_run_dir", "run", "run_allocator", "swept"]

log = get_logger(__name__)


def prepare_run_dir(path: Path) -> None:
    """Create ``path`` and prove it is writable (a clear ``InvalidInputError`` otherwise)."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-"):
            pass
    except OSError as exc:
        raise InvalidInputError(f"--out {path} is not a writable directory: {exc.strerror or exc}") from exc


def prepare_model_path(path: Path) -> None:
    """Refuse a ``--model-path`` the trained model could not be written to, before training.

    A directory (the atomic write would fail only after the whole training run), or a parent that
    cannot be created or written: a clear ``InvalidInputError`` naming ``--model-path``.
    """
    if path.is_dir():
        raise InvalidInputError(f"--model-path {path} is a directory; give the file to write the model to")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".write-test-"):
            pass
    except OSError as exc:
        raise InvalidInputError(
            f"--model-path {path}: its directory is not writable: {exc.strerror or exc}"
        ) from exc


def run(settings: TrainingSettings) -> dict[str, Any]:
    """Run the pipeline for ``settings``; return a summary (paths, timings, headline numbers).

    Raises
    ------
    AdvancedRiskError
        Bad input (data, model file, settings) or an unwritable ``out``, before any model or
        checkpoint is written; the CLI turns it into one line and exit code 2.
    """
    torch.set_num_threads(settings.torch_threads)
    prepare_run_dir(settings.run_dir)
    if not settings.evaluate_only:  # training writes the model at the end: check its path first
        prepare_model_path(agents_model_file(settings) if settings.agents == "risk" else settings.model_file)
    if settings.agents == "risk":
        return run_agents(settings)
    if settings.evaluate_only:
        return training_report.evaluate_model_file(settings)
    return run_allocator(settings)


def run_allocator(settings: TrainingSettings) -> dict[str, Any]:
    """Train the PPO allocator (locally, on Ray, or after a sweep), save it and report on it."""
    t0 = time.perf_counter()
    data = load_data(settings)
    if settings.resume:
        load_latest(settings.run_dir / "checkpoints")  # fail early, before anything is written
    build_ppo_config(settings, data.env_config)  # validate the [ppo] table before writing anything
    atomic_write_bytes(settings.run_dir / "config.toml", settings_to_toml(settings).encode())
    sweep: dict[str, Any] | None = None
    if settings.sweep > 0:
        sweep, settings = swept(settings, data)
    if settings.backend == "ray":
        agent, history = train_on_ray(settings, data)
    else:
        agent, history = train_agent(settings, data)
    train_seconds = time.perf_counter() - t0
    metadata = {
        "env_config": data.env_config.to_dict(),
        "data": data.description,
        "settings": settings.to_dict(),
        # the drift monitor's training statistics (docs/drift.md)
        REFERENCE_KEY: policy_reference(
            training_paths(data.train_market, settings.seed), data.env_config, data.asset_names
        ).to_dict(),
    }
    settings.model_file.parent.mkdir(parents=True, exist_ok=True)
    RLPortfolioManager(data.env_config, agent=agent, asset_names=data.asset_names).save(
        settings.model_file, metadata
    )
    summary = training_report.write_report(settings, data, agent, history, sweep=sweep)
    summary |= {"train_seconds": round(train_seconds, 2), "total_seconds": round(time.perf_counter() - t0, 2)}
    atomic_write_bytes(settings.run_dir / "summary.json", _json(summary))
    log.info("run_finished", out=str(settings.run_dir), seconds=summary["total_seconds"])
    return summary


def swept(settings: TrainingSettings, data: DataBundle) -> tuple[dict[str, Any], TrainingSettings]:
    """``(sweep summary, settings with the best hyperparameters)``: the sweep run now, or with
    ``--resume`` the one the run's checkpoints were trained after (``sweep.json`` in the run folder).

    A sweep samples its trials at random, so a second one would choose other hyperparameters, and
    the checkpoint (trained with the first choice) could not be resumed with them.
    """
    stored = settings.run_dir / "sweep.json"
    if settings.resume and stored.is_file():
        try:
            summary: dict[str, Any] = json.loads(stored.read_text(encoding="utf-8"))
            best = dict(summary["best"]["params"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InvalidInputError(f"--resume: cannot read the run's sweep result {stored}: {exc}") from exc
        log.info("sweep_reused", path=str(stored), best=best)
        return summary, dataclasses.replace(settings, ppo={**settings.ppo, **best})
    summary, chosen = run_sweep(settings, data)
    atomic_write_bytes(stored, _json(summary))
    return summary, chosen


def _json(value: Any) -> bytes:
    return (json.dumps(value, indent=2, default=str, allow_nan=True) + os.linesep).encode()
