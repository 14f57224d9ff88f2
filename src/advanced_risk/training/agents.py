"""``train_ppo_agent.py --agents risk``: train the MAPPO risk agents, save them, report on them.

The same run directory layout, data flags and exit codes as the allocator's pipeline
(:mod:`advanced_risk.training.pipeline`)::

    data -> (resume from the latest checkpoint) -> MAPPO on RiskAgentsEnv with progress bar,
    structlog events and atomic checkpoints every N updates -> risk_agents.armodel -> report

Training draws episodes from the data's train market (``--data regime``: regime-switching paths;
``--data sp500``: random windows of the train split). The report
(:mod:`advanced_risk.evaluation.agents`) compares the gated agents, the ungated agents, the
rule-based components and no risk layer on held-out regime-switching paths (common random numbers)
and on the real test period of the bundled S&P 500 stocks (the allocator's split).

Checkpoints hold the trainer's full state (:meth:`MAPPOTrainer.state_dict`: networks, optimizer,
normalisers, its generators, counters and every environment's episode) plus torch's global
generator, so ``--resume`` continues with the rollouts the uninterrupted run would have made.

One module because the run's steps (data, resume, training, checkpoints, save, report) share one
run directory and one set of settings; each step is a function of its own.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import shlex
import sys
import time
from pathlib import Path
from typing import Any, Final

import torch

from advanced_risk.config import MarketKind
from advanced_risk.errors import InvalidInputError, ModelLoadError
from advanced_risk.evaluation.agents import (
    PathEvaluation,
    PathsEvaluation,
    calibrate_threshold,
    default_policies,
    evaluate_on_path,
    evaluate_on_paths,
    format_path,
    format_paths,
)
from advanced_risk.files import atomic_write_bytes
from advanced_risk.logs import get_logger
from advanced_risk.rl.agents.drift import agents_reference
from advanced_risk.rl.agents.env import RULE_ACTIONS, RiskAgentsEnv
from advanced_risk.rl.agents.mappo import MAPPOTrainer
from advanced_risk.rl.agents.policy import MODEL_KIND, RiskAgents
from advanced_risk.rl.portfolio.drift import training_paths
from advanced_risk.rl.portfolio.market import make_market
from advanced_risk.rl.ppo.model_file import read_model_header
from advanced_risk.training.checkpoint import (
    check_resume_settings,
    checkpoint_files,
    load_latest,
    to_numpy,
    to_torch,
    write_checkpoint,
)
from advanced_risk.training.data import (
    EVAL_SEED_BASE,
    VALIDATION_SEED_BASE,
    DataBundle,
    align_to_model,
    load_data,
)
from advanced_risk.training.settings import TrainingSettings, build_ppo_config, settings_to_toml

__all__ = [
    "AGENTS_MODEL_FILE",
    "RISK_ENV_DEFAULTS",
    "RISK_PPO_DEFAULTS",
    "agents_model_asset_count",
    "evaluate_agents_file",
    "run_agents",
    "train_agents",
    "with_risk_defaults",
]

log = get_logger(__name__)
Stats = dict[str, float]

AGENTS_MODEL_FILE: Final = "risk_agents.armodel"
RISK_ENV_DEFAULTS: Final[dict[str, Any]] = {"reward": "log_return"}
"""EnvConfig fields the risk agents train with unless ``[env]`` sets them (see docs/risk_agents.md)."""
RISK_PPO_DEFAULTS: Final[dict[str, Any]] = {
    "learning_rate": 1e-3,
    "gamma": 0.9,
    "gae_lambda": 0.9,
    "num_steps": 256,
    "update_epochs": 4,
    "num_minibatches": 4,
}
"""PPOConfig fields MAPPO trains with unless ``[ppo]`` sets them."""
_TRAINER: Final = "mappo_risk_agents"
CALIBRATION_PATHS: Final = 16
"""Train-market paths on which each agent's 99th percentile of uncertainty becomes its gate threshold."""


def with_risk_defaults(settings: TrainingSettings) -> TrainingSettings:
    """``settings`` with :data:`RISK_ENV_DEFAULTS` / :data:`RISK_PPO_DEFAULTS` under its ``env`` / ``ppo``."""
    return dataclasses.replace(
        settings,
        env={**RISK_ENV_DEFAULTS, **settings.env},
        ppo={**RISK_PPO_DEFAULTS, **settings.ppo},
    )


def agents_model_file(settings: TrainingSettings) -> Path:
    """Where the agents are written (``--model-path``, default ``<out>/risk_agents.armodel``)."""
    return Path(settings.model_path) if settings.model_path else Path(settings.out) / AGENTS_MODEL_FILE


def agents_model_asset_count(path: Path) -> int:
    """The asset count stored in a risk-agents file's header.

    Raises
    ------
    ModelLoadError
        Missing, corrupt or not a risk-agents file.
    """
    header = read_model_header(path, kind=MODEL_KIND)
    try:
        return int(header["metadata"]["risk_agents"]["env_config"]["asset_count"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelLoadError(f"model file {path} records no asset count: {exc}") from exc


# -- training --------------------------------------------------------------------------------------
def make_trainer(settings: TrainingSettings, data: DataBundle) -> MAPPOTrainer:
    """A fresh MAPPO trainer on ``num_envs`` risk-agent environments over the train market."""
    cfg = build_ppo_config(settings, data.env_config)
    env_config, market = data.env_config, data.train_market
    # the actors start at the rules' usual action and learn deviations from it
    return MAPPOTrainer(lambda: RiskAgentsEnv(env_config, market=market), cfg, initial_actions=RULE_ACTIONS)


def _save_checkpoint(directory: Path, trainer: MAPPOTrainer, metadata: dict[str, Any], keep: int = 3) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"update_{trainer.num_updates:08d}.ckpt"
    state = trainer.state_dict()
    for key in ("envs", "obs", "episode_return"):
        state[key] = to_torch(state[key])
    payload = {"trainer": state, "torch_rng": torch.get_rng_state()}
    header = {"trainer": _TRAINER, "num_updates": trainer.num_updates, "global_step": trainer.global_step}
    digest = write_checkpoint(path, payload, header | metadata)
    for old in checkpoint_files(directory)[:-keep]:
        with contextlib.suppress(OSError):
            old.unlink()
    log.info("checkpoint_saved", path=str(path), update=trainer.num_updates, sha256=digest)
    return path


def _restore(directory: Path, trainer: MAPPOTrainer, settings: TrainingSettings) -> Path:
    path, header, payload = load_latest(directory)
    if header.get("metadata", {}).get("trainer") != _TRAINER:
        raise ModelLoadError(f"checkpoint {path} is not a risk-agents (MAPPO) checkpoint")
    check_resume_settings(header, settings.to_dict(), path)
    try:
        state = dict(payload["trainer"])
        for key in ("envs", "obs", "episode_return"):
            state[key] = to_numpy(state[key])
        trainer.load_state_dict(state)
        torch.set_rng_state(payload["torch_rng"])
    except (KeyError, RuntimeError, TypeError, ValueError, InvalidInputError) as exc:
        raise ModelLoadError(f"checkpoint {path} does not match this run's settings: {exc}") from exc
    return path


def train_agents(
    settings: TrainingSettings, data: DataBundle, *, stop_after: int | None = None
) -> tuple[MAPPOTrainer, list[Stats]]:
    """Train (or, with ``settings.resume``, continue) the agents; return the trainer and update stats.

    The learning rate anneals linearly over ``max(1, total_timesteps // batch_size)`` updates;
    ``stop_after`` ends training once the trainer has made that many updates (tests use it to
    simulate an interrupted run).
    """
    from tqdm.auto import tqdm

    trainer = make_trainer(settings, data)
    cfg = trainer.config
    checkpoints = Path(settings.out) / "checkpoints"
    if settings.resume:
        path = _restore(checkpoints, trainer, settings)
        log.info(
            "training_resumed", checkpoint=str(path), update=trainer.num_updates, step=trainer.global_step
        )
    n_updates = max(1, cfg.total_timesteps // cfg.batch_size)
    bar = tqdm(total=n_updates, initial=trainer.num_updates, unit="update", desc="mappo", dynamic_ncols=True)
    history: list[Stats] = []
    last_return, t_start = math.nan, time.perf_counter()
    try:
        while trainer.num_updates < n_updates:
            t0 = time.perf_counter()
            k = trainer.num_updates
            lr = cfg.learning_rate * (1.0 - k / n_updates if cfg.anneal_lr else 1.0)
            stats = trainer.collect_rollout() | trainer.update(lr)
            stats |= {"update": float(trainer.num_updates), "global_step": float(trainer.global_step),
                      "sps": cfg.batch_size / (time.perf_counter() - t0)}  # fmt: skip
            history.append(stats)
            log.info("mappo_update", **stats)
            if not math.isnan(stats["episode_return_mean"]):
                last_return = stats["episode_return_mean"]
            loss = stats.get("policy_loss", 0.0) + stats.get("value_loss", 0.0)
            bar.set_postfix(sps=f"{stats['sps']:.0f}", ep_return=f"{last_return:.3f}", loss=f"{loss:.4f}")
            bar.update(1)
            every = settings.checkpoint_every
            if every and trainer.num_updates % every == 0:
                _save_checkpoint(checkpoints, trainer, {"settings": settings.to_dict()})
            if stop_after is not None and trainer.num_updates >= stop_after:
                break
    finally:
        bar.close()
    log.info(
        "training_finished",
        updates=trainer.num_updates,
        global_step=trainer.global_step,
        seconds=round(time.perf_counter() - t_start, 2),
    )
    return trainer, history


# -- evaluation and report -------------------------------------------------------------------------
def _test_path_bundle(settings: TrainingSettings, data: DataBundle) -> DataBundle | None:
    """The data whose test period the agents walk: the run's own table, else the bundled S&P 500."""
    if data.test_path is not None:
        return data
    if data.env_config.asset_count > 20:
        return None
    return load_data(dataclasses.replace(settings, data="sp500", data_csv=None, rows=None))


def evaluate_agents(
    settings: TrainingSettings, data: DataBundle, agents: RiskAgents
) -> tuple[PathsEvaluation, PathEvaluation | None, dict[str, Any]]:
    """Held-out regime paths (common random numbers) and, when there is one, the real test period."""
    policies = default_policies(agents, seed=settings.seed)
    regime = dataclasses.replace(data.env_config, market=MarketKind.REGIME)
    seeds = [EVAL_SEED_BASE + 1000 * settings.seed + k for k in range(settings.eval_episodes)]
    paths = evaluate_on_paths(policies, regime, seeds, market=make_market(regime))
    test = _test_path_bundle(settings, data)
    path_eval, test_info = None, {}
    if test is not None and test.test_path is not None:
        cfg = dataclasses.replace(data.env_config, market=test.env_config.market)
        path_eval = evaluate_on_path(policies, cfg, test.test_path, n_boot=1000)
        test_info = {k: test.description.get(k) for k in ("source", "file", "test", "train", "tickers")}
    return paths, path_eval, test_info


def _markdown(
    settings: TrainingSettings,
    data: DataBundle,
    paths: PathsEvaluation,
    path_eval: PathEvaluation | None,
    test_info: dict[str, Any],
    training: dict[str, Any],
) -> str:
    lines = ["# Risk agents (MAPPO): evaluation", ""]
    lines += [f"- data: `{json.dumps(data.description, default=str)}`",
              f"- model: `{training.get('model')}`",
              f"- training: {json.dumps({k: v for k, v in training.items() if k != 'model'}, default=str)}",
              "- policies: `agents_gated` (MC-dropout mean, gated to the rule above the uncertainty "
              "threshold, as deployed), `agents` (ungated), `rules` (half-Kelly sizer on the base "
              "portfolio's last 60 days, fixed 2 ATR stop, drawdown rules: >=5 % reduce, >=8 % hedge "
              "(cut 0.5), >=15 % halt), "
              "`no_risk` (scale 1, 5 ATR stop, monitor none)",
              ""]  # fmt: skip
    lines += ["## Held-out regime-switching paths", "", format_paths(paths)]
    if path_eval is not None:
        lines += [
            "## Real test period",
            "",
            f"`{json.dumps(test_info, default=str)}`",
            "",
            format_path(path_eval),
        ]
    else:
        lines += ["## Real test period", "", "Not evaluated (more than the 20 bundled assets).", ""]
    return "\n".join(lines)


def write_agents_report(
    settings: TrainingSettings, data: DataBundle, agents: RiskAgents, training: dict[str, Any]
) -> dict[str, Any]:
    """Evaluate ``agents`` and write ``report.md`` and ``report.json`` into ``settings.out``."""
    paths, path_eval, test_info = evaluate_agents(settings, data, agents)
    out = Path(settings.out)
    body = {
        "kind": "risk_agents",
        "data": data.description,
        "training": training,
        "regime_paths": paths.to_dict(),
        "test_period": None if path_eval is None else path_eval.to_dict() | {"data": test_info},
    }
    atomic_write_bytes(out / "report.json", json.dumps(_clean(body), indent=2, default=str).encode())
    atomic_write_bytes(
        out / "report.md", _markdown(settings, data, paths, path_eval, test_info, training).encode()
    )
    log.info("report_written", out=str(out))
    gated = paths.summaries["agents_gated"]
    return {
        "out": str(out),
        "model": str(agents_model_file(settings)),
        "regime_sharpe": {k: v["sharpe"][0] for k, v in paths.to_dict()["summaries"].items()},
        "regime_max_drawdown": {k: v["max_drawdown"][0] for k, v in paths.to_dict()["summaries"].items()},
        "agents_gated_sharpe": gated[next(iter(gated))][0],
    }


def _clean(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


# -- entry points ----------------------------------------------------------------------------------
def _model_env(path: Path, settings: TrainingSettings) -> TrainingSettings:
    """Settings whose ``env`` / ``asset_count`` follow the stored model (a mismatch is an error)."""
    agents_count = agents_model_asset_count(path)
    if agents_count != settings.asset_count:
        raise ModelLoadError(
            f"model {path} was trained on {agents_count} assets, --asset-count is {settings.asset_count}"
        )
    stored = read_model_header(path, kind=MODEL_KIND)["metadata"]["risk_agents"]["env_config"]
    env = {k: v for k, v in stored.items() if k not in ("asset_count", "max_steps", "market", "split")}
    return dataclasses.replace(settings, env={**env, **settings.env})


def evaluate_agents_file(settings: TrainingSettings) -> dict[str, Any]:
    """``--evaluate --agents risk --model-path M``: load ``M`` (verified) and write the report."""
    path = agents_model_file(settings)
    settings = _model_env(path, settings)
    agents = RiskAgents.load(path)
    data = load_data(settings)
    if data.env_config.asset_count != agents.asset_count:
        raise ModelLoadError(
            f"model {path} has {agents.asset_count} assets, the data gives {data.env_config.asset_count}"
        )
    data = align_to_model(agents.asset_names, data, str(path))
    return write_agents_report(settings, data, agents, {"model": str(path), "evaluated_only": True})


def run_agents(settings: TrainingSettings) -> dict[str, Any]:
    """The ``--agents risk`` pipeline (see the module docstring); returns a summary."""
    if settings.evaluate_only:
        return evaluate_agents_file(settings)
    if settings.backend != "local" or settings.sweep:
        raise InvalidInputError("--agents risk supports only --backend local without --sweep")
    t0 = time.perf_counter()
    settings = settings if settings.resume else with_risk_defaults(settings)
    data = load_data(settings)
    if settings.resume:
        load_latest(Path(settings.out) / "checkpoints")  # fail early, before anything is written
    build_ppo_config(settings, data.env_config)  # validate the [ppo] table before writing anything
    atomic_write_bytes(Path(settings.out) / "config.toml", settings_to_toml(settings).encode())
    trainer, history = train_agents(settings, data)
    train_seconds = time.perf_counter() - t0
    agents = RiskAgents.from_trainer(trainer, asset_names=data.asset_names)
    calibration = [VALIDATION_SEED_BASE + 1000 * settings.seed + k for k in range(CALIBRATION_PATHS)]
    agents.uncertainty_threshold = calibrate_threshold(
        agents, data.env_config, calibration, market=data.train_market, seed=settings.seed
    )
    log.info(
        "uncertainty_threshold_calibrated", threshold=agents.uncertainty_threshold, paths=len(calibration)
    )
    # the drift monitor's training statistics (docs/drift.md), saved by agents.save
    agents.observation_reference = agents_reference(
        training_paths(data.train_market, settings.seed), data.env_config, data.asset_names
    )
    model = agents_model_file(settings)
    model.parent.mkdir(parents=True, exist_ok=True)
    metadata = {
        "data": data.description,
        "split": {"train_end": settings.train_end, "test_start": settings.test_start,
                  "train": data.description.get("train"), "test": data.description.get("test")},
        "command": shlex.join(sys.argv),
        "seed": settings.seed,
        "settings": settings.to_dict(),
        "env_config": data.env_config.to_dict(),
        "global_step": trainer.global_step,
        "updates": trainer.num_updates,
        "uncertainty_threshold": {"value": agents.uncertainty_threshold, "quantile": 0.99,
                                  "paths": f"{CALIBRATION_PATHS} train-market paths, seeds from "
                                           f"{calibration[0]}"},
    }  # fmt: skip
    digest = agents.save(model, metadata)
    finished = [h["episode_return_mean"] for h in history if not math.isnan(h["episode_return_mean"])]
    training = {
        "model": str(model),
        "sha256": digest,
        "command": metadata["command"],
        "updates": trainer.num_updates,
        "global_step": trainer.global_step,
        "train_seconds": round(train_seconds, 2),
        "last_episode_return_mean": finished[-1] if finished else None,
        "uncertainty_threshold": agents.uncertainty_threshold,
    }
    summary = write_agents_report(settings, data, agents, training)
    summary |= {"train_seconds": round(train_seconds, 2), "total_seconds": round(time.perf_counter() - t0, 2)}
    atomic_write_bytes(
        Path(settings.out) / "summary.json", (json.dumps(_clean(summary), indent=2) + "\n").encode()
    )
    log.info("run_finished", out=str(settings.out), seconds=summary["total_seconds"])
    return summary
