"""Scale-out on Ray (the optional ``distributed`` extra): remote rollouts and Ray Tune sweeps.

``--backend ray``: :class:`RayVectorEnv` splits the ``num_envs`` portfolios over ``num_workers``
Ray actors, each holding a :class:`~advanced_risk.rl.portfolio.env.VectorTradingEnv` seeded so that
environment ``i`` is exactly the local backend's environment ``i`` (seed ``seed + i``). The
unchanged :class:`~advanced_risk.rl.ppo.agent.PPOAgent` collects rollouts through it (the policy runs
on the learner, the market simulation and portfolio accounting on the actors) and performs the
same updates, so a Ray run with a fixed seed reproduces the local run. It pays off only when
stepping the environments costs more than a round trip to the actors (large ``num_envs`` x
assets, or expensive markets); see ``docs/training.md`` for measurements.

``--sweep N``: N Ray Tune trials sample learning rate, gamma and entropy coefficient, each trains
a policy and is scored by its Sharpe ratio on validation data (simulated: paths seeded from
``VALIDATION_SEED_BASE``; tables: the last fifth of the train split, held out of the trial's
training); the best trial's hyperparameters then train the run's final model.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from advanced_risk.config import EnvConfig, PPOConfig
from advanced_risk.errors import InvalidInputError
from advanced_risk.evaluation.policy import Metric, PolicyStrategy, evaluate, evaluate_path
from advanced_risk.logs import get_logger
from advanced_risk.rl.portfolio.env import VectorTradingEnv
from advanced_risk.rl.portfolio.market import MarketModel
from advanced_risk.rl.ppo.agent import PPOAgent
from advanced_risk.training.data import VALIDATION_SEED_BASE, DataBundle, ReturnsReplay
from advanced_risk.training.ppo import train_agent
from advanced_risk.training.settings import TrainingSettings

__all__ = ["RayVectorEnv", "run_sweep", "train_on_ray"]

log = get_logger(__name__)
Stats = dict[str, float]
StepResult = tuple[
    NDArray[np.float32], NDArray[np.float64], NDArray[np.bool_], NDArray[np.bool_], dict[str, Any]
]
"""What a vector env's ``step`` returns: observations, rewards, terminated, truncated, info."""


def _ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise InvalidInputError(
            "--backend ray and --sweep need Ray: pip install 'advanced_risk[distributed]'"
        ) from exc
    return ray


def _init(settings: TrainingSettings) -> Any:  # the ray module (untyped)
    ray = _ray()
    if not ray.is_initialized():
        ray.init(
            address=settings.ray_address,
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
        )
    return ray


class _EnvWorker:
    """The actor: one slice of the portfolios (plain class; wrapped with ``ray.remote``)."""

    def __init__(self, config: EnvConfig, num_envs: int, seed: int, market: MarketModel) -> None:
        self.env = VectorTradingEnv(config, num_envs, seed=seed, market=market)

    def reset(self, seed: int | None) -> tuple[NDArray[np.float32], dict[str, Any]]:
        return self.env.reset(seed=seed)

    def step(self, actions: NDArray[np.float32]) -> StepResult:
        return self.env.step(actions)

    def state_dict(self) -> dict[str, Any]:
        return self.env.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.env.load_state_dict(state)


class RayVectorEnv:
    """A ``VectorEnv`` whose environments live on Ray actors (see the module docstring)."""

    def __init__(self, data: DataBundle, cfg: PPOConfig, num_workers: int) -> None:
        ray = _ray()
        if not 1 <= num_workers <= cfg.num_envs:
            raise InvalidInputError(
                f"--num-workers must be in 1..num_envs ({cfg.num_envs}), got {num_workers}"
            )
        self._ray = ray
        sizes = [cfg.num_envs // num_workers + (k < cfg.num_envs % num_workers) for k in range(num_workers)]
        self._offsets = np.cumsum([0, *sizes])
        actor = ray.remote(num_cpus=1)(_EnvWorker)
        self._workers = [
            actor.remote(data.env_config, n, cfg.seed + int(off), data.train_market)
            for n, off in zip(sizes, self._offsets[:-1], strict=True)
        ]
        probe = VectorTradingEnv(data.env_config, 1, seed=0, market=data.train_market)
        self.num_envs, self.observation_dim = cfg.num_envs, probe.observation_dim
        self.action_dim, self.single_action_space = probe.action_dim, probe.single_action_space

    def reset(self, seed: int | None = None) -> tuple[NDArray[np.float32], dict[str, Any]]:
        """Reset every actor; ``seed`` gives env ``i`` seed ``seed + i`` as locally."""
        seeds = [None if seed is None else seed + int(off) for off in self._offsets[:-1]]
        parts = self._ray.get([w.reset.remote(s) for w, s in zip(self._workers, seeds, strict=True)])
        return np.concatenate([p[0] for p in parts]), _merge([p[1] for p in parts])

    def step(self, actions: NDArray[np.float32]) -> StepResult:
        """Step every actor with its slice of ``actions``; outputs concatenated in env order."""
        a = np.asarray(actions)
        bounds = zip(self._offsets[:-1], self._offsets[1:], strict=True)
        refs = [w.step.remote(a[lo:hi]) for w, (lo, hi) in zip(self._workers, bounds, strict=True)]
        parts = self._ray.get(refs)
        obs, rew, term, trunc = (np.concatenate([p[i] for p in parts]) for i in range(4))
        return obs, rew, term, trunc, _merge([p[4] for p in parts])

    def state_dict(self) -> dict[str, Any]:
        """Every actor's environment state (resume with the same ``num_workers``)."""
        return {"workers": self._ray.get([w.state_dict.remote() for w in self._workers])}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        if len(state["workers"]) != len(self._workers):
            raise InvalidInputError(
                f"checkpoint has {len(state['workers'])} Ray workers, run has {len(self._workers)}"
            )
        self._ray.get(
            [w.load_state_dict.remote(s) for w, s in zip(self._workers, state["workers"], strict=True)]
        )

    def close(self) -> None:
        """Stop the actors."""
        for w in self._workers:
            self._ray.kill(w)


def _merge(infos: list[dict[str, Any]]) -> dict[str, Any]:
    return {k: np.concatenate([np.asarray(i[k]) for i in infos]) for k in infos[0]}


def train_on_ray(settings: TrainingSettings, data: DataBundle) -> tuple[PPOAgent, list[Stats]]:
    """:func:`~advanced_risk.training.ppo.train_agent` with a :class:`RayVectorEnv`."""
    _init(settings)
    envs: list[RayVectorEnv] = []

    def make_env(cfg: PPOConfig) -> RayVectorEnv:
        envs.append(RayVectorEnv(data, cfg, settings.num_workers))
        return envs[-1]

    try:
        log.info("ray_training_started", num_workers=settings.num_workers, num_envs=settings.num_envs)
        return train_agent(settings, data, make_env=make_env)
    finally:
        for env in envs:
            env.close()


def validation_sharpe(agent: PPOAgent, data: DataBundle, episodes: int = 8) -> float:
    """The policy's Sharpe ratio on validation data (never the test data)."""
    if data.validation_path is None:
        seeds = [VALIDATION_SEED_BASE + k for k in range(episodes)]
        report = evaluate([PolicyStrategy(agent)], data.env_config, seeds, market=data.train_market)
        return float(report.summaries["ppo"][Metric.SHARPE].mean)
    path_report = evaluate_path([PolicyStrategy(agent)], data.env_config, data.validation_path, n_boot=10)
    return float(path_report.values["ppo"][Metric.SHARPE])


def _trial(config: dict[str, Any], settings: TrainingSettings, data: DataBundle) -> dict[str, float]:
    """One Tune trial: train with ``config``'s hyperparameters, score on validation data."""
    import torch

    torch.set_num_threads(1)
    trial_settings = dataclasses.replace(
        settings,
        ppo={**settings.ppo, **config},
        checkpoint_every=0,
        tensorboard=False,
        resume=False,
        backend="local",
    )
    agent, history = train_agent(trial_settings, data)
    score = validation_sharpe(agent, data)
    last = history[-1]["episode_return_mean"] if history else float("nan")
    return {"val_sharpe": score, "episode_return_mean": float(last)}


def _trial_data(data: DataBundle) -> DataBundle:
    """For tables, the train split without its validation tail (when episodes still fit)."""
    if data.validation_path is None or not isinstance(data.train_market, ReturnsReplay):
        return data
    returns = data.train_market.returns[: -len(data.validation_path)]
    from advanced_risk.rl.portfolio.accounting import history_length

    if returns.shape[0] < history_length(data.env_config) + data.env_config.max_steps:
        log.warning(
            "sweep_validation_in_sample", reason="train split too short to hold out a validation tail"
        )
        return data
    return dataclasses.replace(data, train_market=ReturnsReplay(returns))


def run_sweep(settings: TrainingSettings, data: DataBundle) -> tuple[dict[str, Any], TrainingSettings]:
    """Run ``settings.sweep`` Tune trials; return (sweep summary, settings with the best hyperparameters)."""
    ray = _init(settings)
    from ray import tune

    space = {
        "learning_rate": tune.loguniform(1e-4, 3e-3),
        "gamma": tune.choice([0.8, 0.9, 0.95, 0.99]),
        "ent_coef": tune.choice([0.0, 0.001, 0.01]),
    }

    def trainable(config: dict[str, Any], settings: TrainingSettings, data: DataBundle) -> None:
        tune.report(_trial(config, settings, data))

    tuner = tune.Tuner(
        tune.with_resources(
            tune.with_parameters(trainable, settings=settings, data=_trial_data(data)), {"cpu": 1}
        ),
        param_space=space,
        tune_config=tune.TuneConfig(
            num_samples=settings.sweep,
            metric="val_sharpe",
            mode="max",
            max_concurrent_trials=max(1, settings.num_workers),
        ),
        run_config=tune.RunConfig(
            storage_path=str(Path(settings.out).resolve() / "sweep"), name="tune", verbose=0
        ),
    )
    results = tuner.fit()
    trials: list[dict[str, Any]] = []
    for index in range(len(results)):
        result = results[index]
        if result.error is not None:
            trials.append({"params": result.config, "error": str(result.error).splitlines()[0]})
            continue
        metrics: dict[str, Any] = result.metrics or {}
        trials.append({"params": result.config, "val_sharpe": float(metrics["val_sharpe"])})
    scored = [t for t in trials if "val_sharpe" in t]
    if not scored:
        raise InvalidInputError(f"every sweep trial failed: {trials[0].get('error')}")
    best = max(scored, key=lambda t: t["val_sharpe"])
    rows = ["| trial | learning_rate | gamma | ent_coef | validation Sharpe |", "|---|---|---|---|---|"]
    for k, t in enumerate(trials):
        p = t["params"]
        score = f"{t['val_sharpe']:.3f}" if "val_sharpe" in t else f"failed: {t['error']}"
        rows.append(f"| {k} | {p['learning_rate']:.2e} | {p['gamma']} | {p['ent_coef']} | {score} |")
    rows.append(f"\nBest by validation Sharpe: {best['params']} -> final model trained with it.")
    log.info("sweep_finished", trials=len(trials), best=best)
    ray.shutdown() if settings.backend != "ray" else None
    summary = {"trials": trials, "best": best, "markdown": "\n".join(rows)}
    return summary, dataclasses.replace(settings, ppo={**settings.ppo, **best["params"]})
