"""The resolved settings of one training run, and what is derived from them alone.

:class:`TrainingSettings` is the configuration of ``train_ppo_agent.py`` after merging its sources
(defaults < ``--quick`` sizes < ``--config`` TOML < CLI flags, see :mod:`advanced_risk.training.cli`).
Every field is a CLI flag (``_`` -> ``-``) and a TOML key; the one-line text under each field is
its ``--help``. The settings are written to ``<out>/config.toml`` (:func:`settings_to_toml`) before
training starts, and ``--resume`` reads them back.

This module is the leaf of the training package: every other training module takes a
``TrainingSettings``, and it imports none of them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from advanced_risk.config import EnvConfig, PPOConfig
from advanced_risk.errors import InvalidInputError

__all__ = [
    "QUICK_ROWS",
    "TrainingSettings",
    "apply_quick",
    "build_ppo_config",
    "settings_to_toml",
    "training_steps",
]

QUICK_ROWS = 500
"""``--quick`` trains and evaluates on the last 500 rows of its table."""

MIN_EVAL_EPISODES = 2
"""Fewest held-out paths an evaluation runs: its paired bootstrap needs two."""


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
    """Held-out paths for simulated data, >= 2 (more: tighter intervals)."""
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
        if not str(self.out).strip():
            problems.append("out must name a run directory, got an empty path")
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
        for name in ("checkpoint_every", "sweep", "num_workers"):
            if getattr(self, name) < 0:
                problems.append(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("asset_count", "max_steps"):
            # the top-level value always wins: a different [env] one was silently ignored
            if name in self.env and self.env[name] != getattr(self, name):
                problems.append(
                    f"[env] {name} = {self.env[name]!r} disagrees with {name} = {getattr(self, name)!r}, "
                    f"which wins; set {name} at the top level (or --{name.replace('_', '-')}), not in [env]"
                )
        if self.eval_episodes < MIN_EVAL_EPISODES:
            problems.append(
                f"eval_episodes must be >= {MIN_EVAL_EPISODES} (the paired comparison needs two paths), "
                f"got {self.eval_episodes}"
            )
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


def settings_to_toml(settings: TrainingSettings) -> str:
    """``config.toml`` text: top-level keys, then the ``[env]`` and ``[ppo]`` tables.

    None values are left out (TOML has no null; a missing key reads back as the field's default
    None), so ``resolve_settings(["--config", path])`` gives the same settings back.
    """
    data = _without_none(settings.to_dict())
    return "# resolved settings of this run; rerun with --config <this file>\n" + tomli_w.dumps(data)


def _without_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    return value


def training_steps(settings: TrainingSettings, env_config: EnvConfig) -> int | None:
    """Environment steps to train for: ``total_steps``, else ``episodes`` episodes of
    ``env_config.max_steps`` (the data may have shortened ``settings.max_steps``), else None."""
    if settings.total_steps is not None:
        return settings.total_steps
    if settings.episodes is not None:
        return settings.episodes * env_config.max_steps
    return None


def build_ppo_config(settings: TrainingSettings, env_config: EnvConfig) -> PPOConfig:
    """PPOConfig from the ``[ppo]`` table with the top-level flags applied on top.

    ``env_config`` is the data's environment (:attr:`DataBundle.env_config
    <advanced_risk.training.data.DataBundle.env_config>`), whose episode length turns
    ``episodes`` into ``total_timesteps``.

    Raises
    ------
    ConfigError
        A bad or unknown ``[ppo]`` field.
    """
    values = {
        **settings.ppo,
        "num_envs": settings.num_envs,
        "seed": settings.seed,
        "device": settings.device,
        "amp": settings.amp,
        "grad_accum_steps": settings.grad_accum,
    }
    steps = training_steps(settings, env_config)
    if steps is not None:
        values["total_timesteps"] = steps
    return PPOConfig.from_dict(values)
