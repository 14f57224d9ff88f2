"""The training and evaluation pipeline behind ``train_ppo_agent.py``.

One call, :func:`run`, does what a run directory records::

    data -> (resume from the latest checkpoint) -> PPO training with progress bar, TensorBoard
    scalars and atomic checkpoints every N updates -> policy file -> evaluation report

The policy file is an :class:`~advanced_risk.rl.portfolio.manager.RLPortfolioManager` file (so
``AdvancedRiskManager(policy=path)`` loads it) recording the data's asset names in column order
(None for simulated data).

:class:`TrainingSettings` is the resolved configuration (defaults < ``--config`` TOML < CLI flags);
it is written to ``<out>/config.toml`` before training starts, and ``--resume`` reads it back.
Evaluation and the report live in :mod:`advanced_risk.training.report`, checkpoints in
:mod:`advanced_risk.training.checkpoint`, data in :mod:`advanced_risk.training.data` and the Ray
backend and sweeps in :mod:`advanced_risk.training.distributed`. The library never configures logging;
the CLI (:mod:`advanced_risk.training.cli`) does.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from advanced_risk.config import PPOConfig
from advanced_risk.errors import InvalidInputError
from advanced_risk.files import atomic_write_bytes
from advanced_risk.logs import get_logger
from advanced_risk.rl.portfolio.accounting import observation_dim
from advanced_risk.rl.portfolio.env import VectorTradingEnv
from advanced_risk.rl.portfolio.manager import RLPortfolioManager
from advanced_risk.rl.ppo.agent import PPOAgent, VectorEnv
from advanced_risk.training.checkpoint import StatefulEnv, load_latest, restore, save_checkpoint
from advanced_risk.training.data import DataBundle, load_data

__all__ = ["TrainingSettings", "apply_quick", "build_ppo_config", "run", "settings_to_toml", "train_agent"]

log = get_logger(__name__)
Stats = dict[str, float]

QUICK_ROWS = 500
"""``--quick`` trains and evaluates on the last 500 rows of its table."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TrainingSettings:
    """The resolved settings of one run; every field is a CLI flag (``_`` -> ``-``) and a TOML key."""

    episodes: int | None = None
    """Training length in episodes of ``max_steps`` (the original script's unit)."""
    total_steps: int | None = None
    """Training length in environment steps (wins over ``episodes``; default PPOConfig's 200000)."""
    asset_count: int = 5
    """Number of risky assets (table data: the first N columns)."""
    max_steps: int = 252
    """Episode length in trading days (cut to fit a short train split)."""
    data: str = "synthetic"
    """Market: synthetic (correlated GBM), regime (Markov regimes) or sp500 (bundled 20 stocks)."""
    data_csv: str | None = None
    """A CSV of prices (Date + one column per asset) or OHLCV; validated, SHA-256 recorded."""
    rows: int | None = None
    """Use only the last N rows of the table (``--quick``: 500)."""
    train_end: str | None = None
    """Last date of the train split (sp500 default 2012-12-31; other tables: first 70 %)."""
    test_start: str | None = None
    """First date of the test split (sp500 default 2013-01-01)."""
    num_envs: int = 8
    """Parallel portfolios per rollout."""
    seed: int = 0
    """Seed of the policy, the training environments and the evaluation paths."""
    device: str = "auto"
    """auto, cpu or cuda."""
    amp: bool = False
    """Mixed precision (float16 autocast + GradScaler) on CUDA; ignored on CPU."""
    grad_accum: int = 1
    """Micro-batches per minibatch (same update, less peak memory)."""
    torch_threads: int = 1
    """torch CPU threads (1 is fastest for this small network on shared cores)."""
    checkpoint_every: int = 10
    """Write a checkpoint every N PPO updates (0: never)."""
    resume: bool = False
    """Continue the run in --out from its newest checkpoint."""
    out: str = "runs/ppo"
    """Run directory: config, checkpoints, model, report, plots, TensorBoard events."""
    model_path: str | None = None
    """Policy file to write (default <out>/model.pt) or, with --evaluate alone, to evaluate."""
    evaluate: bool = False
    """Evaluate; with --model-path and no training length, evaluate that model without training."""
    eval_episodes: int = 32
    """Held-out paths for simulated data (more: tighter intervals)."""
    plot: bool = False
    """Also write PNGs: equity curves, drawdowns, policy weights over time."""
    tensorboard: bool = False
    """Write TensorBoard scalars to <out>/tensorboard."""
    quick: bool = False
    """A 500-row end-to-end validation run (data, a few updates, evaluation, report)."""
    backend: str = "local"
    """local, or ray (environments stepped on --num-workers Ray actors)."""
    ray_address: str | None = None
    """Ray cluster address (default: start a local Ray)."""
    num_workers: int = 2
    """Ray actors for --backend ray and concurrent trials for --sweep."""
    sweep: int = 0
    """Run N Ray Tune trials over learning rate, gamma and entropy; keep the best by validation Sharpe."""
    log_json: bool = False
    """JSON log lines instead of console ones (the CLI's logging)."""
    agents: str = "allocator"
    """allocator (the PPO portfolio policy) or risk (the MAPPO sizer, stop and monitor agents)."""
    env: dict[str, Any] = field(default_factory=dict)
    """EnvConfig fields (TOML table [env])."""
    ppo: dict[str, Any] = field(default_factory=dict)
    """PPOConfig fields (TOML table [ppo]); top-level flags win for seed, num_envs, device, amp."""

    def __post_init__(self) -> None:
        problems = []
        if self.data not in ("synthetic", "regime", "sp500"):
            problems.append(f"data must be synthetic, regime or sp500, got {self.data!r}")
        if self.agents not in ("allocator", "risk"):
            problems.append(f"agents must be allocator or risk, got {self.agents!r}")
        if self.backend not in ("local", "ray"):
            problems.append(f"backend must be local or ray, got {self.backend!r}")
        if self.device not in ("auto", "cpu", "cuda") and not self.device.startswith("cuda:"):
            problems.append(f"device must be auto, cpu or cuda, got {self.device!r}")
        for name in ("episodes", "total_steps", "rows"):
            value = getattr(self, name)
            if value is not None and value < 1:
                problems.append(f"{name} must be >= 1, got {value}")
        for name in ("asset_count", "max_steps", "num_envs", "grad_accum", "torch_threads"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("checkpoint_every", "sweep", "eval_episodes", "num_workers"):
            if getattr(self, name) < 0:
                problems.append(f"{name} must be >= 0, got {getattr(self, name)}")
        if problems:
            raise InvalidInputError("; ".join(problems))

    @property
    def run_dir(self) -> Path:
        """The run directory (``out``)."""
        return Path(self.out)

    @property
    def model_file(self) -> Path:
        """Where the trained policy is written."""
        return Path(self.model_path) if self.model_path else self.run_dir / "model.pt"

    @property
    def evaluate_only(self) -> bool:
        """``--evaluate --model-path M`` with no training length and no resume: evaluate M as is."""
        return (
            self.evaluate
            and self.model_path is not None
            and self.episodes is None
            and self.total_steps is None
            and not self.resume
            and not self.quick
            and self.sweep == 0
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain values (the content of ``config.toml``)."""
        return dataclasses.asdict(self)


def apply_quick(values: dict[str, Any], explicit: set[str]) -> dict[str, Any]:
    """The ``--quick`` sizes, for every key the user did not set explicitly."""
    quick: dict[str, Any] = {
        "data": "sp500",
        "rows": QUICK_ROWS,
        "asset_count": 5,
        "max_steps": 60,
        "num_envs": 4,
        "total_steps": 3 * 4 * 64,
        "eval_episodes": 8,
        "checkpoint_every": 1,
        "out": "runs/quick",
    }
    if "data_csv" in explicit:
        quick.pop("data")
    out = dict(values)
    for key, value in quick.items():
        if key not in explicit:
            out[key] = value
    out["ppo"] = {"num_steps": 64, "update_epochs": 2, "num_minibatches": 2, **values.get("ppo", {})}
    return out


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def settings_to_toml(settings: TrainingSettings) -> str:
    """``config.toml`` text: top-level keys then ``[env]`` and ``[ppo]`` (None values omitted)."""
    data = settings.to_dict()
    lines = ["# resolved settings of this run; rerun with --config <this file>"]
    for key, value in data.items():
        if key not in ("env", "ppo") and value is not None:
            lines.append(f"{key} = {_toml_value(value)}")
    for table in ("env", "ppo"):
        lines.append(f"\n[{table}]")
        lines += [f"{k} = {_toml_value(v)}" for k, v in data[table].items() if v is not None]
    return "\n".join(lines) + "\n"


def prepare_run_dir(path: Path) -> None:
    """Create ``path`` and prove it is writable (a clear ``InvalidInputError`` otherwise)."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-"):
            pass
    except OSError as exc:
        raise InvalidInputError(f"--out {path} is not a writable directory: {exc.strerror or exc}") from exc


def build_ppo_config(settings: TrainingSettings, data: DataBundle) -> PPOConfig:
    """PPOConfig from the ``[ppo]`` table with the top-level flags applied on top."""
    values = {
        **settings.ppo,
        "num_envs": settings.num_envs,
        "seed": settings.seed,
        "device": settings.device,
        "amp": settings.amp,
        "grad_accum_steps": settings.grad_accum,
    }
    steps = training_steps(settings, data)
    if steps is not None:
        values["total_timesteps"] = steps
    return PPOConfig.from_dict(values)


def training_steps(settings: TrainingSettings, data: DataBundle) -> int | None:
    """Environment steps to train for: ``total_steps``, else ``episodes * max_steps``, else None."""
    if settings.total_steps is not None:
        return settings.total_steps
    if settings.episodes is not None:
        return settings.episodes * data.env_config.max_steps
    return None


class Monitor:
    """The per-update callback: progress bar, TensorBoard scalars, checkpoints, an optional stop."""

    def __init__(
        self,
        settings: TrainingSettings,
        agent: PPOAgent,
        vec_env: StatefulEnv | None,
        total_updates: int,
        stop_after: int | None = None,
    ) -> None:
        from tqdm.auto import tqdm

        self.settings, self.agent, self.vec_env, self.stop_after = settings, agent, vec_env, stop_after
        done = agent.num_updates - agent.schedule[0]
        self.bar = tqdm(total=total_updates, initial=done, unit="update", desc="ppo", dynamic_ncols=True)
        self.writer: Any = None
        if settings.tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(log_dir=str(settings.run_dir / "tensorboard"), purge_step=done)
        self.last_return = math.nan

    def __call__(self, update: int, stats: Stats) -> bool:
        if not math.isnan(stats.get("episode_return_mean", math.nan)):
            self.last_return = stats["episode_return_mean"]
        loss = stats.get("policy_loss", 0.0) + stats.get("value_loss", 0.0)
        self.bar.set_postfix(
            sps=f"{stats['sps']:.0f}", ep_return=f"{self.last_return:.3f}", loss=f"{loss:.4f}"
        )
        self.bar.update(1)
        step = int(stats["global_step"])
        if self.writer is not None:
            for key, value in stats.items():
                if math.isfinite(value):
                    self.writer.add_scalar(f"train/{key}", value, step)
        every = self.settings.checkpoint_every
        if every and self.vec_env is not None and self.agent.num_updates % every == 0:
            save_checkpoint(
                self.settings.run_dir / "checkpoints",
                self.agent,
                self.vec_env,
                {"settings": self.settings.to_dict()},
            )
        return self.stop_after is not None and self.agent.num_updates >= self.stop_after

    def close(self) -> None:
        """Close the bar and flush the event file."""
        self.bar.close()
        if self.writer is not None:
            self.writer.flush()
            self.writer.close()


def train_agent(
    settings: TrainingSettings,
    data: DataBundle,
    *,
    stop_after: int | None = None,
    make_env: Callable[[PPOConfig], VectorEnv] | None = None,
) -> tuple[PPOAgent, list[Stats]]:
    """Train (or, with ``settings.resume``, continue) the policy; return it and the update stats.

    ``stop_after`` ends training once the agent has made that many updates (tests use it to
    simulate an interrupted run); ``make_env`` replaces the local vector env (the Ray backend).
    """
    cfg = build_ppo_config(settings, data)
    agent = PPOAgent(observation_dim(data.env_config), data.env_config.asset_count + 1, cfg)
    vec_env: VectorEnv
    if make_env is None:
        vec_env = VectorTradingEnv(data.env_config, cfg.num_envs, seed=cfg.seed, market=data.train_market)
    else:
        vec_env = make_env(cfg)
    local_env = vec_env if isinstance(vec_env, StatefulEnv) else None
    reset = True
    if settings.resume:
        path, _header, payload = load_latest(settings.run_dir / "checkpoints")
        if local_env is None:
            raise InvalidInputError("--resume needs an environment whose state can be restored")
        restore(payload, agent, local_env)
        reset = False
        log.info("training_resumed", checkpoint=str(path), update=agent.num_updates, step=agent.global_step)
    else:
        agent.schedule = (0, max(1, cfg.total_timesteps // cfg.batch_size))
    start, length = agent.schedule
    monitor = Monitor(settings, agent, local_env, length, stop_after)
    t0 = time.perf_counter()
    try:
        history = agent.train(vec_env, cfg.total_timesteps, monitor, reset_num_timesteps=False)
    finally:
        monitor.close()
    log.info(
        "training_finished",
        updates=agent.num_updates - start,
        global_step=agent.global_step,
        seconds=round(time.perf_counter() - t0, 2),
        reset=reset,
    )
    return agent, history


def run(settings: TrainingSettings) -> dict[str, Any]:
    """Run the pipeline for ``settings``; return a summary (paths, timings, headline numbers).

    Raises
    ------
    AdvancedRiskError
        Bad input (data, model file, settings) or an unwritable ``out``, before any model or
        checkpoint is written; the CLI turns it into one line and exit code 2.
    """
    from advanced_risk.training import report as training_report

    t0 = time.perf_counter()
    torch.set_num_threads(settings.torch_threads)
    prepare_run_dir(settings.run_dir)
    if settings.agents == "risk":
        from advanced_risk.training.agents import run_agents

        return run_agents(settings)
    if settings.evaluate_only:
        return training_report.evaluate_model_file(settings)
    data = load_data(settings)
    if settings.resume:
        load_latest(settings.run_dir / "checkpoints")  # fail early, before anything is written
    build_ppo_config(settings, data)  # validate the [ppo] table before writing anything
    atomic_write_bytes(settings.run_dir / "config.toml", settings_to_toml(settings).encode())
    sweep: dict[str, Any] | None = None
    if settings.sweep > 0:
        from advanced_risk.training.distributed import run_sweep

        sweep, settings = run_sweep(settings, data)
    if settings.backend == "ray":
        from advanced_risk.training.distributed import train_on_ray

        agent, history = train_on_ray(settings, data)
    else:
        agent, history = train_agent(settings, data)
    train_seconds = time.perf_counter() - t0
    metadata = {
        "env_config": data.env_config.to_dict(),
        "data": data.description,
        "settings": settings.to_dict(),
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


def _json(value: Any) -> bytes:
    import json

    return (json.dumps(value, indent=2, default=str, allow_nan=True) + os.linesep).encode()
