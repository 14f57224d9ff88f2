"""The PPO policy file: what ``PPOAgent.save`` writes and what both loaders read, without torch.

A policy file is a :mod:`advanced_risk.rl.ppo.model_file` file of kind ``"ppo_agent"``:

- arrays: ``network.<name>`` for every entry of the
  :class:`~advanced_risk.rl.ppo.network.ActorCriticNetwork` state dict (torch's names and
  ``(out, in)`` layout, float32; the critic included, so training can continue from the file) and
  ``obs_rms.mean`` / ``obs_rms.var`` (float64), the observation normaliser's moments;
- metadata: ``obs_dim``, ``action_dim``, ``config`` (``PPOConfig.to_dict()``), ``global_step``,
  ``num_updates``, ``obs_rms_count`` and ``user`` (the caller's JSON values; an
  ``RLPortfolioManager`` keeps its settings there).

:func:`read_policy_file` verifies and decodes a file into a :class:`PolicyFile` with NumPy only;
``PPOAgent.load`` builds its torch network from it, and the trading path takes the actor's NumPy
snapshot directly (:meth:`PolicyFile.numpy_policy`), so the shipped policy runs without torch.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from advanced_risk.config import PPOConfig
from advanced_risk.errors import ConfigError, ModelLoadError
from advanced_risk.rl.ppo.inference import NumpyPolicy
from advanced_risk.rl.ppo.model_file import Arrays, read_model_file, write_model_file

__all__ = [
    "MODEL_KIND",
    "PolicyFile",
    "check_dims",
    "check_weights",
    "read_policy_file",
    "write_policy_file",
]

MODEL_KIND: Final = "ppo_agent"
_NETWORK: Final = "network."


@dataclass(frozen=True, slots=True, kw_only=True)
class PolicyFile:
    """A decoded policy file (see the module docstring).

    Attributes
    ----------
    obs_dim, action_dim : the network's input and output lengths.
    config : the agent's hyperparameters as saved (``device`` as it was when saved).
    global_step, num_updates : training progress when saved.
    user : the caller's metadata (JSON values).
    network : the network's state dict as NumPy arrays, torch's names and layout.
    obs_mean, obs_var, obs_count : the observation normaliser's moments and count.
    """

    obs_dim: int
    action_dim: int
    config: PPOConfig
    global_step: int
    num_updates: int
    user: dict[str, Any]
    network: Arrays
    obs_mean: NDArray[np.float64]
    obs_var: NDArray[np.float64]
    obs_count: float

    def numpy_policy(self) -> NumpyPolicy:
        """The actor's NumPy snapshot, normalising observations iff ``config.norm_obs`` (as trained)."""
        norm = self.config.norm_obs
        return NumpyPolicy.from_state_dict(
            self.network,
            dropout=self.config.dropout,
            obs_mean=self.obs_mean if norm else None,
            obs_var=self.obs_var if norm else None,
            obs_clip=self.config.obs_clip,
        )


def write_policy_file(
    path: str | os.PathLike[str],
    *,
    network: Mapping[str, NDArray[Any]],
    obs_rms: Mapping[str, Any],
    obs_dim: int,
    action_dim: int,
    config: PPOConfig,
    global_step: int,
    num_updates: int,
    user: Mapping[str, Any] | None = None,
) -> str:
    """Write a policy file atomically; return its SHA-256.

    ``network`` is the network's state dict as NumPy arrays (torch's names), ``obs_rms`` a
    ``RunningMeanStd.state_dict()`` (``mean``, ``var``, ``count``).
    """
    arrays: Arrays = {_NETWORK + name: np.asarray(a) for name, a in network.items()}
    arrays["obs_rms.mean"] = np.asarray(obs_rms["mean"], dtype=np.float64)
    arrays["obs_rms.var"] = np.asarray(obs_rms["var"], dtype=np.float64)
    metadata = {
        "obs_dim": int(obs_dim),
        "action_dim": int(action_dim),
        "config": config.to_dict(),
        "global_step": int(global_step),
        "num_updates": int(num_updates),
        "obs_rms_count": float(obs_rms["count"]),
        "user": dict(user or {}),
    }
    return write_model_file(path, arrays, metadata, kind=MODEL_KIND)


def read_policy_file(
    path: str | os.PathLike[str],
    *,
    expected_obs_dim: int | None = None,
    expected_action_dim: int | None = None,
) -> PolicyFile:
    """Verify and decode a policy file (NumPy only).

    Raises
    ------
    ModelLoadError
        Missing, truncated or corrupt file, another format version or kind, a header without dims
        or with an invalid config, dims other than ``expected_obs_dim`` / ``expected_action_dim``,
        normaliser moments that do not fit ``obs_dim``, an ``actor_logstd`` whose length is not
        ``action_dim``, or weights and moments that are not finite real numbers (a negative
        variance or observation count included: such a policy would trade on NaN).
    """
    header, arrays = read_model_file(path, kind=MODEL_KIND)
    try:
        meta = header["metadata"]
        obs_dim, action_dim = int(meta["obs_dim"]), int(meta["action_dim"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelLoadError(f"model file {path}: header lacks dims ({exc!r})") from exc
    try:
        policy = PolicyFile(
            obs_dim=obs_dim,
            action_dim=action_dim,
            config=PPOConfig.from_dict(meta["config"]),
            global_step=int(meta["global_step"]),
            num_updates=int(meta["num_updates"]),
            user=dict(meta.get("user") or {}),
            network={k[len(_NETWORK) :]: a for k, a in arrays.items() if k.startswith(_NETWORK)},
            obs_mean=arrays["obs_rms.mean"].astype(np.float64),
            obs_var=arrays["obs_rms.var"].astype(np.float64),
            obs_count=float(meta["obs_rms_count"]),
        )
    except (ConfigError, KeyError, TypeError, ValueError) as exc:
        raise ModelLoadError(f"model file {path} does not hold a PPO policy: {exc!r}") from exc
    if policy.obs_mean.shape != (obs_dim,) or policy.obs_var.shape != (obs_dim,):
        raise ModelLoadError(
            f"model file {path}: observation statistics of shape {policy.obs_mean.shape}, "
            f"expected ({obs_dim},)"
        )
    check_weights(
        {**arrays, "obs_rms_count": np.array(policy.obs_count)},
        path,
        nonnegative=("obs_rms.var", "obs_rms_count"),
    )
    log_std = policy.network.get("actor_logstd")
    if log_std is not None and log_std.size != action_dim:
        raise ModelLoadError(
            f"model file {path}: actor_logstd has {log_std.size} entries, expected action_dim={action_dim}"
        )
    check_dims(policy, expected_obs_dim, expected_action_dim, path)
    return policy


def check_dims(
    policy: PolicyFile,
    expected_obs_dim: int | None,
    expected_action_dim: int | None,
    path: str | os.PathLike[str],
) -> None:
    """Raise ``ModelLoadError`` when a policy file's dims differ from the expected ones (None: any)."""
    for what, expected, found in (
        ("obs_dim", expected_obs_dim, policy.obs_dim),
        ("action_dim", expected_action_dim, policy.action_dim),
    ):
        if expected is not None and expected != found:
            raise ModelLoadError(f"model file {path} has {what}={found}, expected {expected}")


def check_weights(
    arrays: Mapping[str, NDArray[Any]], path: str | os.PathLike[str], nonnegative: tuple[str, ...] = ()
) -> None:
    """Raise ``ModelLoadError`` naming the first array of a model file that is not usable as weights.

    Every array must hold real floating-point numbers, all finite (a NaN or inf weight or
    normaliser moment turns every decision into NaN, or silently into a constant); arrays whose
    name ends with one of ``nonnegative`` (variances, counts) must also be ``>= 0``.
    """
    for name, a in arrays.items():
        if a.dtype.kind != "f":
            raise ModelLoadError(f"model file {path}: {name} has dtype {a.dtype}, expected floating point")
        if not np.isfinite(a).all():
            bad = int(np.size(a) - np.count_nonzero(np.isfinite(a)))
            raise ModelLoadError(f"model file {path}: {name} holds {bad} NaN or inf value(s)")
        if name.endswith(nonnegative) and (a < 0).any():
            raise ModelLoadError(f"model file {path}: {name} holds a negative value ({float(a.min())!r})")
