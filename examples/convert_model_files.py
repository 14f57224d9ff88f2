"""Convert model files of format version 1 (torch pickle payload) to version 2 (safetensors + JSON).

Format 1 stored the arrays with ``torch.save``; format 2 (:mod:`advanced_risk.rl.ppo.model_file`)
stores them as a safetensors blob and every other value in the JSON header, so reading needs neither
torch nor pickle. This script is the only reader of format 1 left, and it needs torch (``pip install
"advanced_risk[train]"``): it verifies the old file (magic, SHA-256), unpickles the payload with
``torch.load(weights_only=True)``, writes the same weights through the library's own writers
(``ppo_agent``: :func:`~advanced_risk.rl.ppo.io.write_policy_file`; ``risk_agents``:
:meth:`~advanced_risk.rl.agents.policy.RiskAgents.save`), records where the file came from in
``metadata.converted_from`` (the old file's SHA-256, creation time and versions), reads the new file
back and checks that every array is bit for bit the old one. The risk agents' centralised critic,
a training device kept by format 1, is dropped (format 2 saves the actors only).

Training checkpoints of format 1 are not converted: resume such a run with the advanced_risk that
wrote it, or start it again.

Run:  python examples/convert_model_files.py models/*.armodel      (in place, atomically)
      python examples/convert_model_files.py old.armodel --out converted/
"""

from __future__ import annotations

import argparse
import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from advanced_risk.config import EnvConfig, PPOConfig
from advanced_risk.errors import ModelLoadError
from advanced_risk.files import sha256_file
from advanced_risk.rl.agents.interface import AGENTS, obs_dim
from advanced_risk.rl.agents.policy import AgentActor, RiskAgents
from advanced_risk.rl.ppo.inference import NumpyPolicy
from advanced_risk.rl.ppo.io import read_policy_file, write_policy_file
from advanced_risk.rl.ppo.model_file import (
    FORMAT_VERSION,
    read_model_file,
    verified_parts,
    write_model_file,
)
from advanced_risk.rl.ppo.normalize import RunningMeanStd

OLD_VERSION = 1


def read_version_1(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(header, payload)`` of a verified format-1 file; its payload as NumPy arrays and plain values."""
    header, body = verified_parts(path)
    if header.get("format_version") != OLD_VERSION:
        raise ModelLoadError(f"{path} has format_version {header.get('format_version')!r}, not {OLD_VERSION}")
    payload = torch.load(io.BytesIO(body), map_location="cpu", weights_only=True)
    return header, _to_numpy(payload)


def _to_numpy(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy().copy()
    if isinstance(value, Mapping):
        return {k: _to_numpy(v) for k, v in value.items()}
    return value


def convert_policy(header: dict[str, Any], payload: dict[str, Any], out: Path) -> dict[str, np.ndarray]:
    """Write a ``ppo_agent`` file; return the arrays it must hold (old name -> array)."""
    meta = header["metadata"]
    write_policy_file(
        out,
        network=payload["network"],
        obs_rms=payload["obs_rms"],
        obs_dim=meta["obs_dim"],
        action_dim=meta["action_dim"],
        config=PPOConfig.from_dict(meta["config"]),
        global_step=meta["global_step"],
        num_updates=meta["num_updates"],
        user=meta["user"],
    )
    stored = read_policy_file(out)
    new = {f"network.{k}": v for k, v in stored.network.items()}
    new |= {"obs_rms.mean": stored.obs_mean, "obs_rms.var": stored.obs_var}
    old = {f"network.{k}": v for k, v in payload["network"].items()}
    old |= {"obs_rms.mean": payload["obs_rms"]["mean"], "obs_rms.var": payload["obs_rms"]["var"]}
    _check_same(old, new, out)
    if stored.obs_count != float(payload["obs_rms"]["count"]):
        raise SystemExit(f"{out}: observation count changed")
    return new


def convert_agents(header: dict[str, Any], payload: dict[str, Any], out: Path) -> dict[str, np.ndarray]:
    """Write a ``risk_agents`` file (actors only); return the arrays it must hold."""
    meta = header["metadata"]
    s = meta["risk_agents"]
    env_config = EnvConfig.from_dict(s["env_config"])
    weights = payload["policies"]
    actors = {
        a: AgentActor(
            NumpyPolicy.from_state_dict(
                weights, dropout=s["dropout"], obs_clip=s["obs_clip"], prefix=f"{a}."
            ),
            int(s["actor_dims"][a]),
            int(s["outputs"][a]),
            bool(s["discrete"][a]),
        )
        for a in AGENTS
    }
    rms = None
    if payload["obs_rms"] is not None:
        rms = {a: RunningMeanStd((obs_dim(a, env_config.asset_count),)) for a in AGENTS}
        for a, r in rms.items():
            r.load_state_dict(payload["obs_rms"][a])
    agents = RiskAgents(
        actors,
        rms,
        env_config,
        share_parameters=bool(s["share_parameters"]),
        obs_clip=float(s["obs_clip"]),
        uncertainty_threshold=s["uncertainty_threshold"],
        asset_names=s.get("asset_names"),
    )
    agents.save(out, metadata=meta["user"])
    if "asset_names" not in s:  # a file from before names records none; keep it that way
        new_header, arrays = read_model_file(out)
        del new_header["metadata"]["risk_agents"]["asset_names"]
        write_model_file(out, arrays, new_header["metadata"], kind=new_header["kind"])
    _, new = read_model_file(out, kind="risk_agents")
    old = {k: v for k, v in weights.items() if ".critic." not in k}
    for a in AGENTS:
        if rms is not None:
            old[f"{a}.obs_rms.mean"] = payload["obs_rms"][a]["mean"]
            old[f"{a}.obs_rms.var"] = payload["obs_rms"][a]["var"]
    _check_same(old, new, out)
    return new


def _check_same(old: Mapping[str, np.ndarray], new: Mapping[str, np.ndarray], out: Path) -> None:
    """Every array of the old payload is bit for bit in the new file, and nothing else is."""
    if set(old) != set(new):
        raise SystemExit(f"{out}: arrays differ: {sorted(set(old) ^ set(new))}")
    for name, a in old.items():
        b = new[name]
        if a.dtype != b.dtype or a.shape != b.shape or a.tobytes() != b.tobytes():
            raise SystemExit(f"{out}: array {name} changed ({a.dtype}{a.shape} -> {b.dtype}{b.shape})")


CONVERTERS = {"ppo_agent": convert_policy, "risk_agents": convert_agents}


def convert(path: Path, out: Path) -> str:
    """Convert one file (``out`` may be ``path``: replaced atomically); return a one-line report."""
    header, _ = verified_parts(path)
    if header.get("format_version") == FORMAT_VERSION:
        return f"{path}: already format {FORMAT_VERSION}, left as it is"
    old_digest = sha256_file(path)
    header, payload = read_version_1(path)
    kind = header.get("kind")
    if kind not in CONVERTERS:
        raise SystemExit(f"{path}: cannot convert a {kind!r} (only {sorted(CONVERTERS)})")
    arrays = CONVERTERS[kind](header, payload, out)
    new_header, stored = read_model_file(out, kind=kind)
    metadata = new_header["metadata"] | {
        "converted_from": {
            "format_version": OLD_VERSION,
            "sha256": old_digest,
            "created_at": header.get("created_at"),
            "advanced_risk_version": header.get("advanced_risk_version"),
            "torch_version": header.get("torch_version"),
        }
    }
    write_model_file(out, stored, metadata, kind=kind)
    _check_same(arrays, read_model_file(out, kind=kind)[1], out)
    new_digest = sha256_file(out)
    return (
        f"{path} ({kind}, sha256 {old_digest[:12]}) -> {out} "
        f"(format {FORMAT_VERSION}, sha256 {new_digest[:12]})"
    )


def main(argv: Sequence[str] | None = None) -> None:
    """The command line of the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, help="directory for the converted files (default: in place)")
    args = parser.parse_args(argv)
    for path in args.files:
        out = path if args.out is None else args.out / path.name
        out.parent.mkdir(parents=True, exist_ok=True)
        print(convert(path, out))


if __name__ == "__main__":
    main()
