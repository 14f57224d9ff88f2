"""Add the observation reference (training statistics for the drift monitor) to the shipped models.

For each model file, computes the model's drift features (``docs/drift.md``) on the data it was
trained on and rewrites the file with ``metadata.user.observation_reference`` added and every array
unchanged:

- ``ppo_sp500_2012.armodel`` and ``risk_agents_sp500.armodel``: the bundled S&P 500 returns of the
  train split (1990-01-03 .. the ``train_end`` of the stored env config, 2012-12-31);
- ``risk_agents_regime.armodel``: 64 paths of 1,000 bars of ``RegimeSwitchingMarket(20)`` (seeds
  0..63), the generator it was trained on.

The rewrite keeps the payload bytes (checked: identical safetensors blob, so bit-identical weights)
and records the previous file in ``metadata.user.drift_reference_added`` (its SHA-256, ``created_at``
and library versions). Only the header changes.

    .venv/bin/python examples/add_drift_reference.py [models/...armodel ...]
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from advanced_risk.config import EnvConfig
from advanced_risk.monitoring.drift import FeatureReference
from advanced_risk.rl.agents.drift import agents_reference
from advanced_risk.rl.portfolio.drift import REFERENCE_KEY, policy_reference
from advanced_risk.rl.portfolio.market import HistoricalReplay, RegimeSwitchingMarket
from advanced_risk.rl.ppo.model_file import read_model_file, verified_parts, write_model_file

MODELS = Path(__file__).resolve().parent.parent / "models"
DEFAULT = ("ppo_sp500_2012.armodel", "risk_agents_sp500.armodel", "risk_agents_regime.armodel")
SYNTHETIC_PATHS, SYNTHETIC_BARS = 64, 1000


def _env_config(header: dict[str, Any]) -> EnvConfig:
    meta = header["metadata"]
    stored = (
        meta["risk_agents"]["env_config"] if header["kind"] == "risk_agents" else meta["user"]["env_config"]
    )
    return EnvConfig.from_dict(stored)


def _training_paths(config: EnvConfig, synthetic: bool) -> tuple[list[np.ndarray], list[str] | None, str]:
    """The model's training returns: the bundled train split, or seeded regime-switching paths."""
    if synthetic:
        market = RegimeSwitchingMarket(config.asset_count)
        paths = [market.sample_path(np.random.default_rng(s), SYNTHETIC_BARS) for s in range(SYNTHETIC_PATHS)]
        data = f"RegimeSwitchingMarket({config.asset_count}): {SYNTHETIC_PATHS} paths x {SYNTHETIC_BARS} bars"
        return paths, None, f"{data}, seeds 0..{SYNTHETIC_PATHS - 1}"
    replay = HistoricalReplay(config.asset_count, split="train", train_end=config.train_end)
    span = f"{str(replay.dates[0])[:10]} .. {str(replay.dates[-1])[:10]}"
    return [replay.returns], replay.tickers, f"bundled S&P 500 returns {span} ({len(replay.returns)} returns)"


def reference_for(header: dict[str, Any]) -> tuple[FeatureReference, str]:
    """The reference of the model whose header this is, and what it was computed on."""
    config = _env_config(header)
    user = header["metadata"]["user"]
    synthetic = user.get("data", {}).get("source") == "regime"
    paths, tickers, data = _training_paths(config, synthetic)
    if header["kind"] == "risk_agents":
        names = header["metadata"]["risk_agents"].get("asset_names") or tickers
        return agents_reference(paths, config, names), data
    names = user["rl_portfolio_manager"].get("asset_names") or tickers
    return policy_reference(paths, config, names), data


def add_reference(path: Path) -> str:
    """Rewrite ``path`` with its reference; return the new content SHA-256 (payload checked identical)."""
    header, arrays = read_model_file(path)
    _, payload = verified_parts(path)
    reference, data = reference_for(header)
    metadata = dict(header["metadata"])
    user = dict(metadata["user"])
    user[REFERENCE_KEY] = reference.to_dict()
    user["drift_reference_added"] = {
        "by": "examples/add_drift_reference.py",
        "data": data,
        "previous_file_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "previous_created_at": header["created_at"],
        "previous_versions": {
            k: v for k, v in header.items() if k.endswith("_version") and k != "format_version"
        },
    }
    metadata["user"] = user
    digest = write_model_file(path, arrays, metadata, kind=header["kind"])
    _, new_payload = verified_parts(path)
    if new_payload != payload:
        raise SystemExit(f"{path}: payload bytes changed by the rewrite")
    print(f"{path.name}: {reference.dim} features from {data}; content SHA-256 {digest}")
    return digest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", type=Path, default=[MODELS / f for f in DEFAULT])
    for path in parser.parse_args().files:
        add_reference(path)


if __name__ == "__main__":
    main()
