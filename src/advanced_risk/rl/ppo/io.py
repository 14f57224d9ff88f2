"""How a :class:`~advanced_risk.rl.ppo.agent.PPOAgent` becomes bytes and back.

Two products, both loadable with ``torch.load(weights_only=True)``:

- the **training state** (``agent.state_dict()``): network, optimizer, grad scaler, observation
  statistics, RNG states, progress and LR schedule, pending observation. With the environment's own
  state restored alongside, training resumes bit for bit. Checkpoint files wrap it with
  :func:`advanced_risk.rl.ppo.model_file.write_model_file`.
- the **policy file** (``agent.save(path)``): network weights and observation statistics only, in
  the verified format of :mod:`advanced_risk.rl.ppo.model_file` (kind ``"ppo_agent"``), with dims,
  ``PPOConfig``, step counters and user metadata in the JSON header.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import torch

from advanced_risk.config import PPOConfig
from advanced_risk.errors import ConfigError, InvalidInputError, ModelLoadError
from advanced_risk.logs import get_logger
from advanced_risk.rl.ppo.model_file import read_model_file, write_model_file

if TYPE_CHECKING:
    from advanced_risk.rl.ppo.agent import PPOAgent

__all__ = ["MODEL_KIND", "agent_state_dict", "load_agent_state_dict", "load_policy", "save_policy"]

log = get_logger(__name__)
MODEL_KIND = "ppo_agent"
AgentT = TypeVar("AgentT", bound="PPOAgent")


def agent_state_dict(agent: PPOAgent) -> dict[str, Any]:
    """The full training state of ``agent`` (see :meth:`PPOAgent.state_dict`)."""
    next_obs = agent._next_obs
    return {
        "obs_dim": agent.obs_dim,
        "action_dim": agent.action_dim,
        "config": agent.config.to_dict(),
        "network": agent.network.state_dict(),
        "optimizer": agent.optimizer.state_dict(),
        "scaler": agent.scaler.state_dict(),
        "obs_rms": agent.obs_rms.state_dict(),
        "rng": {
            "torch": agent.torch_generator.get_state(),
            "numpy": agent.rng.bit_generator.state,
            "inference": agent.inference_rng.bit_generator.state,
        },
        "progress": {
            "global_step": agent.global_step,
            "num_updates": agent.num_updates,
            "schedule": list(agent.schedule),
        },
        "next_obs": None if next_obs is None else torch.from_numpy(np.array(next_obs)),
    }


def load_agent_state_dict(agent: PPOAgent, state: dict[str, Any]) -> None:
    """Restore a state from :func:`agent_state_dict` into ``agent`` (dims must match)."""
    if (state["obs_dim"], state["action_dim"]) != (agent.obs_dim, agent.action_dim):
        raise InvalidInputError(
            f"state has obs_dim={state['obs_dim']}, action_dim={state['action_dim']}; "
            f"this agent has {agent.obs_dim}, {agent.action_dim}"
        )
    agent.network.load_state_dict(state["network"])
    agent.optimizer.load_state_dict(state["optimizer"])
    agent.scaler.load_state_dict(state["scaler"])
    agent.obs_rms.load_state_dict(state["obs_rms"])
    agent.torch_generator.set_state(state["rng"]["torch"])
    agent.rng.bit_generator.state = state["rng"]["numpy"]
    agent.inference_rng.bit_generator.state = state["rng"]["inference"]
    progress = state["progress"]
    agent.global_step, agent.num_updates = int(progress["global_step"]), int(progress["num_updates"])
    agent.schedule = (int(progress["schedule"][0]), int(progress["schedule"][1]))
    next_obs = state["next_obs"]
    agent._next_obs = None if next_obs is None else next_obs.numpy().astype(np.float32)
    agent._env_id = None  # continue with whichever (restored) env is passed next


def save_policy(agent: PPOAgent, path: str | os.PathLike[str], metadata: dict[str, Any] | None) -> str:
    """Write ``agent``'s policy file atomically; return the file's SHA-256."""
    payload = {
        "network": {k: v.detach().cpu() for k, v in agent.network.state_dict().items()},
        "obs_rms": agent.obs_rms.state_dict(),
    }
    header = {
        "obs_dim": agent.obs_dim,
        "action_dim": agent.action_dim,
        "config": agent.config.to_dict(),
        "global_step": agent.global_step,
        "num_updates": agent.num_updates,
        "user": dict(metadata or {}),
    }
    digest = write_model_file(path, payload, header, kind=MODEL_KIND)
    log.info("model_saved", path=str(path), sha256=digest, obs_dim=agent.obs_dim, action_dim=agent.action_dim)
    return digest


def load_policy(
    cls: type[AgentT],
    path: str | os.PathLike[str],
    map_location: str | torch.device,
    expected_obs_dim: int | None,
    expected_action_dim: int | None,
) -> AgentT:
    """Verify and load a policy file into a new ``cls`` on ``map_location`` (see ``PPOAgent.load``)."""
    header, payload = read_model_file(path, kind=MODEL_KIND, map_location=map_location)
    try:
        meta = header["metadata"]
        obs_dim, action_dim = int(meta["obs_dim"]), int(meta["action_dim"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelLoadError(f"model file {path}: header lacks dims ({exc!r})") from exc
    for what, expected, found in (
        ("obs_dim", expected_obs_dim, obs_dim),
        ("action_dim", expected_action_dim, action_dim),
    ):
        if expected is not None and expected != found:
            raise ModelLoadError(f"model file {path} has {what}={found}, expected {expected}")
    try:
        config = PPOConfig.from_dict({**meta["config"], "device": str(torch.device(map_location))})
        agent = cls(obs_dim, action_dim, config)
        agent.network.load_state_dict(payload["network"])
        agent.obs_rms.load_state_dict(payload["obs_rms"])
        agent.global_step, agent.num_updates = int(meta["global_step"]), int(meta["num_updates"])
    except (ConfigError, KeyError, RuntimeError, TypeError, ValueError) as exc:
        raise ModelLoadError(f"model file {path} does not match this PPOAgent: {exc}") from exc
    log.info("model_loaded", path=str(path), obs_dim=obs_dim, action_dim=action_dim)
    return agent
