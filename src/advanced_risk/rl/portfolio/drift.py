"""The observation features the drift monitor watches for the PPO policy, and their reference.

:mod:`advanced_risk.monitoring.drift` scores a vector of features against a
:class:`~advanced_risk.monitoring.drift.FeatureReference`; this module says which features the policy
exposes (``docs/drift.md``: the market part of its observation, ``n * (window + 3)`` values in
observation order: log returns asset-major, then RSI, momentum and volatility of each asset;
:mod:`~advanced_risk.rl.portfolio.accounting`) and builds the reference from training returns, as
training and ``examples/add_drift_reference.py`` do. The risk agents' features are in
:mod:`advanced_risk.rl.agents.drift`.

A model's reference lives in a model file's ``metadata.user.observation_reference``
(:data:`REFERENCE_KEY`); :func:`stored_reference` reads it back (None when absent).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any, Final

import numpy as np

from advanced_risk.config import EnvConfig
from advanced_risk.errors import InvalidInputError, ModelLoadError
from advanced_risk.measures.validation import FloatArray
from advanced_risk.monitoring.drift import FeatureReference, calibrated_reference
from advanced_risk.rl.portfolio.accounting import history_length, market_features_kernel
from advanced_risk.rl.portfolio.market import MarketModel

__all__ = [
    "POLICY_DRIFT_THRESHOLD",
    "REFERENCE_KEY",
    "asset_labels",
    "policy_feature_names",
    "policy_features",
    "policy_reference",
    "stored_reference",
    "training_paths",
]

REFERENCE_KEY: Final = "observation_reference"
"""Key of the reference in a model file's ``metadata.user``."""

POLICY_DRIFT_THRESHOLD: Final = 0.4
"""The drift threshold (mean PSI) stored with a policy reference: calibrated for the default window and
min_bars on regime-switching paths (docs/drift.md: the lowest detection delay of a volatility x2.5
shift with <= 1 % false alarms on held-out paths)."""


def asset_labels(asset_names: Sequence[str] | None, n: int) -> list[str]:
    return list(asset_names) if asset_names is not None else [f"asset{i}" for i in range(n)]


def policy_feature_names(config: EnvConfig, asset_names: Sequence[str] | None = None) -> tuple[str, ...]:
    """Names of the policy's market features in observation order, e.g. ``log_return[AAPL][t-4]``."""
    assets, w = asset_labels(asset_names, config.asset_count), config.window
    names = [f"log_return[{a}][t-{w - 1 - k}]" for a in assets for k in range(w)]
    for block in ("rsi", "momentum", "volatility"):
        names += [f"{block}[{a}]" for a in assets]
    return tuple(names)


def policy_features(returns: FloatArray, config: EnvConfig) -> FloatArray:
    """The policy's market features at every bar of ``returns`` ``(T, n)`` with a full history.

    Row ``t`` is the market part of the observation after ``history_length + t`` returns, computed
    as the engine computes it: from the last ``history_length`` returns only (the RSI's Wilder
    smoothing starts there, not at the start of ``returns``). Shape
    ``(T - history_length + 1, market_dim)``, float64.
    """
    r = np.ascontiguousarray(returns, dtype=np.float64)
    h = history_length(config)
    if r.ndim != 2 or r.shape[1] != config.asset_count or r.shape[0] < h:
        raise InvalidInputError(f"returns must be (T >= {h}, {config.asset_count}), got {r.shape}")
    rows = [market_features_kernel(r[t - h : t], h, config.window, 0)[0] for t in range(h, r.shape[0] + 1)]
    out: FloatArray = np.asarray(rows)
    return out


def policy_reference(
    paths: Sequence[FloatArray], config: EnvConfig, asset_names: Sequence[str] | None = None
) -> FeatureReference:
    """The policy's reference from training return paths (each ``(T, n)``, features pooled), with its
    threshold: :data:`POLICY_DRIFT_THRESHOLD` or, if higher, the 99th percentile of the scores of
    the training paths' own windows (:func:`~advanced_risk.monitoring.drift.in_sample_threshold`)."""
    streams = [policy_features(p, config) for p in paths]
    return calibrated_reference(streams, policy_feature_names(config, asset_names), POLICY_DRIFT_THRESHOLD)


SIMULATED_PATHS: Final = 64
SIMULATED_BARS: Final = 1000


def training_paths(market: MarketModel, seed: int = 0) -> list[FloatArray]:
    """The returns a reference is built from: a replayed table's whole ``returns`` (the train split),
    else :data:`SIMULATED_PATHS` paths of :data:`SIMULATED_BARS` bars drawn from ``market`` (seeds
    ``seed .. seed + 63``)."""
    table = getattr(market, "returns", None)
    if isinstance(table, np.ndarray):
        return [table]
    seeds = range(seed, seed + SIMULATED_PATHS)
    return [market.sample_path(np.random.default_rng(s), SIMULATED_BARS) for s in seeds]


def stored_reference(
    user: Mapping[str, Any], expected_dim: int, path: str | os.PathLike[str]
) -> FeatureReference | None:
    """The reference stored in a model file's ``metadata.user`` (None when there is none).

    Raises
    ------
    ModelLoadError
        A malformed reference or one with another number of features than ``expected_dim``.
    """
    stored = user.get(REFERENCE_KEY)
    if stored is None:
        return None
    try:
        reference = FeatureReference.from_dict(stored)
    except InvalidInputError as exc:
        raise ModelLoadError(f"model file {path}: {exc}") from exc
    if reference.dim != expected_dim:
        raise ModelLoadError(
            f"model file {path}: observation_reference has {reference.dim} features, the model {expected_dim}"
        )
    return reference
