"""PPO training of the portfolio allocator: the loop with its progress bar, TensorBoard scalars and
checkpoints.

:func:`train_agent` trains (or, with ``--resume``, continues) a
:class:`~advanced_risk.rl.ppo.agent.PPOAgent` on the data's train market; :class:`Monitor` is its
per-update callback. The whole run around it (data, config file, sweep, policy file, report) is
:func:`advanced_risk.training.pipeline.run`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from advanced_risk.config import PPOConfig
from advanced_risk.errors import InvalidInputError
from advanced_risk.logs import get_logger
from advanced_risk.rl.portfolio.accounting import observation_dim
from advanced_risk.rl.portfolio.env import VectorTradingEnv
from advanced_risk.rl.ppo.agent import PPOAgent, VectorEnv
from advanced_risk.training.checkpoint import (
    StatefulEnv,
    check_resume_settings,
    load_latest,
    restore,
    save_checkpoint,
)
from advanced_risk.training.data import DataBundle
from advanced_risk.training.settings import TrainingSettings, build_ppo_config

if TYPE_CHECKING:
    from torch.utils.tensorboard import SummaryWriter

__all__ = ["Monitor", "train_agent"]

log = get_logger(__name__)
Stats = dict[str, float]


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
        self.writer: SummaryWriter | None = None
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
    cfg = build_ppo_config(settings, data.env_config)
    agent = PPOAgent(observation_dim(data.env_config), data.env_config.asset_count + 1, cfg)
    vec_env: VectorEnv
    if make_env is None:
        vec_env = VectorTradingEnv(data.env_config, cfg.num_envs, seed=cfg.seed, market=data.train_market)
    else:
        vec_env = make_env(cfg)
    local_env = vec_env if isinstance(vec_env, StatefulEnv) else None
    reset = True
    if settings.resume:
        path, header, payload = load_latest(settings.run_dir / "checkpoints")
        check_resume_settings(header, settings.to_dict(), path)
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
