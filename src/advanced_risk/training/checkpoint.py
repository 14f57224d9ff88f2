"""Training checkpoints: atomic, verified files that let a killed run continue bit for bit.

A checkpoint is a :mod:`advanced_risk.rl.ppo.model_file` file of kind ``"training_checkpoint"`` (magic,
SHA-256 over header and payload, JSON header, ``torch.save`` payload read with
``weights_only=True``), written with a temporary file, fsync and rename, so a process killed at any
moment leaves either the previous checkpoint or the new one, never a torn file. The payload holds

- ``agent``: :meth:`PPOAgent.state_dict` (network, optimizer, grad scaler, observation
  statistics, its three RNG states, step and update counters, LR schedule, pending observation);
- ``env``: :meth:`VectorTradingEnv.state_dict` (every portfolio's book and each env's generator);
- ``torch_rng``: the global torch CPU generator state (restored too, for safety).

Files are named ``update_<N>.ckpt`` (``N`` = PPO updates so far, zero-padded); the newest
``keep`` are kept. :func:`load_latest` returns the newest one that verifies, skipping (and
reporting) any that does not.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Final, Protocol, runtime_checkable

import numpy as np
import torch

from advanced_risk.errors import ModelLoadError
from advanced_risk.logs import get_logger
from advanced_risk.rl.ppo.agent import PPOAgent
from advanced_risk.rl.ppo.model_file import read_model_file, write_model_file

__all__ = [
    "CHECKPOINT_KIND",
    "StatefulEnv",
    "checkpoint_files",
    "load_latest",
    "restore",
    "save_checkpoint",
    "to_numpy",
    "to_torch",
]

log = get_logger(__name__)
CHECKPOINT_KIND: Final = "training_checkpoint"
_PATTERN: Final = "update_*.ckpt"


@runtime_checkable
class StatefulEnv(Protocol):
    """A vector env whose state can be saved and restored (``VectorTradingEnv``, ``RayVectorEnv``)."""

    def state_dict(self) -> dict[str, Any]:
        """The env's full state."""
        ...

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        ...


def to_torch(value: Any) -> Any:
    """Numpy arrays -> tensors, recursively (``weights_only`` loading refuses numpy objects)."""
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(value))
    if isinstance(value, dict):
        return {k: to_torch(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_torch(v) for v in value]
    return value


def to_numpy(value: Any) -> Any:
    """Tensors -> numpy arrays, recursively (the inverse of :func:`to_torch`)."""
    if isinstance(value, torch.Tensor):
        return value.numpy()
    if isinstance(value, dict):
        return {k: to_numpy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_numpy(v) for v in value]
    return value


def checkpoint_files(directory: Path) -> list[Path]:
    """Checkpoint files in ``directory``, oldest first."""
    return sorted(directory.glob(_PATTERN))


def save_checkpoint(
    directory: Path,
    agent: PPOAgent,
    vec_env: StatefulEnv,
    metadata: dict[str, Any],
    keep: int = 3,
) -> Path:
    """Write ``update_<N>.ckpt`` atomically into ``directory`` and prune all but the newest ``keep``."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"update_{agent.num_updates:08d}.ckpt"
    payload = {
        "agent": agent.state_dict(),
        "env": to_torch(vec_env.state_dict()),
        "torch_rng": torch.get_rng_state(),
    }
    header = {"num_updates": agent.num_updates, "global_step": agent.global_step, **metadata}
    digest = write_model_file(path, payload, header, kind=CHECKPOINT_KIND)
    for old in checkpoint_files(directory)[:-keep]:
        with contextlib.suppress(OSError):
            old.unlink()
    log.info("checkpoint_saved", path=str(path), update=agent.num_updates, sha256=digest)
    return path


def load_latest(directory: Path) -> tuple[Path, dict[str, Any], dict[str, Any]]:
    """``(path, header, payload)`` of the newest checkpoint in ``directory`` that verifies.

    Stray temporary files left by a killed write are removed first.

    Raises
    ------
    ModelLoadError
        No checkpoint in ``directory``, or none of them verifies.
    """
    for tmp in directory.glob(".update_*.tmp"):
        with contextlib.suppress(OSError):
            tmp.unlink()
    files = checkpoint_files(directory) if directory.is_dir() else []
    if not files:
        raise ModelLoadError(f"no checkpoint to resume from in {directory}")
    problems = []
    for path in reversed(files):
        try:
            header, payload = read_model_file(path, kind=CHECKPOINT_KIND)
        except ModelLoadError as exc:
            log.warning("checkpoint_skipped", path=str(path), reason=str(exc))
            problems.append(str(exc))
            continue
        return path, header, payload
    raise ModelLoadError(f"no loadable checkpoint in {directory}: {problems[0]}")


def restore(payload: dict[str, Any], agent: PPOAgent, vec_env: StatefulEnv) -> None:
    """Put a checkpoint's state back into ``agent`` and ``vec_env`` (built with the same settings)."""
    try:
        agent.load_state_dict(payload["agent"])
        vec_env.load_state_dict(to_numpy(payload["env"]))
        torch.set_rng_state(payload["torch_rng"])
    except (KeyError, RuntimeError, TypeError, ValueError) as exc:
        raise ModelLoadError(f"checkpoint does not match this run's settings: {exc}") from exc
