"""Training checkpoints: atomic, verified files that let a killed run continue bit for bit.

A checkpoint is a :mod:`advanced_risk.rl.ppo.model_file` file of kind ``"training_checkpoint"`` (magic,
SHA-256 over header and payload, JSON header, safetensors payload: no pickle), written with a
temporary file, fsync and rename, so a process killed at any moment leaves either the previous
checkpoint or the new one, never a torn file. A training state is a tree of dicts, lists, tuples,
tensors, arrays and plain values; :func:`pack` splits it into a JSON tree (in the header's
``metadata.state``) whose tensors and arrays are references into the payload, and :func:`unpack`
puts it back together, tensors as tensors and arrays as arrays. The state holds

- ``agent``: :meth:`PPOAgent.state_dict` (network, optimizer, grad scaler, observation
  statistics, its three RNG states, step and update counters, LR schedule, pending observation);
- ``env``: :meth:`VectorTradingEnv.state_dict` (every portfolio's book and each env's generator);
- ``torch_rng``: the global torch CPU generator state (restored too, for safety).

Files are named ``update_<N>.ckpt`` (``N`` = PPO updates so far, zero-padded); the newest
``keep`` are kept. :func:`load_latest` returns the newest one that verifies, skipping (and
reporting) any that does not; :func:`check_resume_settings` refuses to continue it under settings
other than those it was written with.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, Protocol, runtime_checkable

import numpy as np
import torch

from advanced_risk.errors import ModelLoadError
from advanced_risk.logs import get_logger
from advanced_risk.rl.ppo.agent import PPOAgent
from advanced_risk.rl.ppo.model_file import Arrays, read_model_file, write_model_file

__all__ = [
    "CHECKPOINT_KIND",
    "StatefulEnv",
    "check_resume_settings",
    "checkpoint_files",
    "load_latest",
    "pack",
    "read_checkpoint",
    "restore",
    "save_checkpoint",
    "to_numpy",
    "to_torch",
    "unpack",
    "write_checkpoint",
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
    """Numpy arrays -> tensors, recursively."""
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


_TAGS: Final = ("__tensor__", "__array__", "__scalar__", "__float__", "__tuple__", "__items__")


def pack(value: Any, path: str = "state") -> tuple[Any, Arrays]:
    """A training state as ``(JSON tree, arrays)``: tensors and arrays become references.

    A tensor becomes ``{"__tensor__": name}`` and an array ``{"__array__": name}`` with
    ``arrays[name]`` its (CPU, contiguous) NumPy copy; a NumPy scalar ``{"__scalar__": name}`` (a
    0-d array); a non-finite float ``{"__float__": "nan" | "inf" | "-inf"}``; a tuple
    ``{"__tuple__": [...]}``; a dict with a key that is not a string (an optimizer's parameter ids)
    ``{"__items__": [[key, value], ...]}``. Names are the ``/``-joined path from the root.

    Raises
    ------
    TypeError
        A value of another type (not a dict, list, tuple, str, int, float, bool, None, tensor or array).
    """
    arrays: Arrays = {}

    def walk(x: Any, where: str) -> Any:
        if isinstance(x, torch.Tensor):
            arrays[where] = np.require(x.detach().cpu().numpy(), requirements="C")
            return {"__tensor__": where}
        if isinstance(x, np.ndarray):
            arrays[where] = np.require(x, requirements="C")
            return {"__array__": where}
        if isinstance(x, np.generic):
            arrays[where] = np.asarray(x)
            return {"__scalar__": where}
        if isinstance(x, float) and not math.isfinite(x):
            return {"__float__": repr(x)}
        if x is None or isinstance(x, str | int | float):
            return x
        if isinstance(x, tuple):
            return {"__tuple__": [walk(v, f"{where}/{i}") for i, v in enumerate(x)]}
        if isinstance(x, list):
            return [walk(v, f"{where}/{i}") for i, v in enumerate(x)]
        if isinstance(x, Mapping):
            if all(isinstance(k, str) and k not in _TAGS for k in x):
                return {k: walk(v, f"{where}/{k}") for k, v in x.items()}
            return {"__items__": [[walk(k, f"{where}/{i}.key"), walk(v, f"{where}/{i}")]
                                  for i, (k, v) in enumerate(x.items())]}  # fmt: skip
        raise TypeError(f"{where}: cannot store a {type(x).__name__} in a checkpoint")

    return walk(value, path), arrays


def unpack(tree: Any, arrays: Mapping[str, np.ndarray]) -> Any:
    """The training state :func:`pack` split into ``(tree, arrays)`` (``KeyError`` on a missing array)."""
    if isinstance(tree, list):
        return [unpack(v, arrays) for v in tree]
    if not isinstance(tree, dict):
        return tree
    if "__tensor__" in tree:
        return torch.from_numpy(arrays[tree["__tensor__"]])
    if "__array__" in tree:
        return arrays[tree["__array__"]]
    if "__scalar__" in tree:
        return arrays[tree["__scalar__"]][()]
    if "__float__" in tree:
        return float(tree["__float__"])
    if "__tuple__" in tree:
        return tuple(unpack(v, arrays) for v in tree["__tuple__"])
    if "__items__" in tree:
        return {unpack(k, arrays): unpack(v, arrays) for k, v in tree["__items__"]}
    return {k: unpack(v, arrays) for k, v in tree.items()}


def write_checkpoint(path: str | os.PathLike[str], state: Any, metadata: Mapping[str, Any]) -> str:
    """Write ``state`` (see :func:`pack`) with ``metadata`` (JSON values) atomically; return the SHA-256."""
    tree, arrays = pack(state)
    return write_model_file(path, arrays, {**metadata, "state": tree}, kind=CHECKPOINT_KIND)


def read_checkpoint(path: str | os.PathLike[str]) -> tuple[dict[str, Any], Any]:
    """``(header, state)`` of a checkpoint file; ``ModelLoadError`` when it does not verify or decode."""
    header, arrays = read_model_file(path, kind=CHECKPOINT_KIND)
    try:
        state = unpack(header["metadata"].pop("state"), arrays)
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelLoadError(f"checkpoint {path} has no valid training state: {exc!r}") from exc
    return header, state


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
        "env": vec_env.state_dict(),
        "torch_rng": torch.get_rng_state(),
    }
    header = {"num_updates": agent.num_updates, "global_step": agent.global_step, **metadata}
    digest = write_checkpoint(path, payload, header)
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
            header, payload = read_checkpoint(path)
        except ModelLoadError as exc:
            log.warning("checkpoint_skipped", path=str(path), reason=str(exc))
            problems.append(str(exc))
            continue
        return path, header, payload
    raise ModelLoadError(f"no loadable checkpoint in {directory}: {problems[0]}")


RESUME_MAY_CHANGE: Final = frozenset(
    {
        "out", "resume", "model_path", "evaluate", "eval_episodes", "plot", "tensorboard", "log_json",
        "checkpoint_every", "torch_threads", "device", "amp", "grad_accum", "backend", "num_workers",
        "ray_address", "sweep", "quick", "ppo.device", "ppo.amp", "ppo.grad_accum_steps",
        "ppo.torch_compile",
    }
)  # fmt: skip
"""Settings a resumed run may hold differently from its checkpoint: where files go, what is
reported, and how the same updates are computed (device, precision, micro-batches, workers)."""


def check_resume_settings(header: Mapping[str, Any], settings: Mapping[str, Any], path: Path) -> None:
    """Raise ``ModelLoadError`` when ``settings`` differ from those checkpoint ``path`` was written with.

    ``header`` is the checkpoint's header (its ``metadata.settings``: the run's settings when it
    was written; a checkpoint without them is not checked) and ``settings`` the resumed run's
    ``TrainingSettings.to_dict()``. Every setting that shapes training (data, split, environment,
    network, PPO hyperparameters, seed, length) must be equal: an edited ``config.toml`` would
    otherwise continue silently on another market or with other hyperparameters, or fail deep in
    torch. Settings in :data:`RESUME_MAY_CHANGE` and top-level keys the checkpoint does not know
    are ignored.
    """
    stored = header.get("metadata", {}).get("settings")
    if not isinstance(stored, Mapping):
        return
    current = json.loads(json.dumps(settings, default=str))  # tuples as lists, as stored
    changed = [
        f"{key}: checkpoint {before!r}, now {after!r}"
        for key, before, after in _differences(stored, current, "")
        if key not in RESUME_MAY_CHANGE
    ]
    if changed:
        raise ModelLoadError(
            f"checkpoint {path} was written with other settings ({'; '.join(changed)}); "
            "--resume continues a run with the settings it was trained with: restore its "
            "config.toml or start a new run in another --out"
        )


def _differences(
    stored: Mapping[str, Any], current: Mapping[str, Any], prefix: str
) -> list[tuple[str, Any, Any]]:
    """``(dotted key, stored, current)`` for every setting whose value differs, tables key by key.

    A top-level key ``stored`` lacks is skipped (a setting newer than the checkpoint); a key
    missing from one side of an ``[env]`` / ``[ppo]`` table is unset there (``None``).
    """
    out: list[tuple[str, Any, Any]] = []
    for key in sorted(set(stored) | set(current)):
        before, after = stored.get(key), current.get(key)
        name = prefix + str(key)
        if isinstance(before, Mapping) and isinstance(after, Mapping):
            out += _differences(before, after, name + ".")
        elif (key in stored or prefix) and before != after:  # a table's missing key: unset, None
            out.append((name, before, after))
    return out


def restore(payload: dict[str, Any], agent: PPOAgent, vec_env: StatefulEnv) -> None:
    """Put a checkpoint's state back into ``agent`` and ``vec_env`` (built with the same settings)."""
    try:
        agent.load_state_dict(payload["agent"])
        vec_env.load_state_dict(to_numpy(payload["env"]))
        torch.set_rng_state(payload["torch_rng"])
    except (KeyError, RuntimeError, TypeError, ValueError) as exc:
        raise ModelLoadError(f"checkpoint does not match this run's settings: {exc}") from exc
