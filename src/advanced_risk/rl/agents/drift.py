"""The observation features the drift monitor watches for the risk agents, and their reference.

One reference for the three agents: the market blocks they share (they read overlapping blocks of
one state), RSI, momentum, volatility and ATR (``100 * ATR / close``, floored as the agents see it)
of each asset, ``4 n`` values (``docs/drift.md``). The book's blocks (positions, drawdown, exposure)
depend on how the bot trades and are not watched. Stored like the policy's
(:mod:`advanced_risk.rl.portfolio.drift`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import numpy as np

from advanced_risk.config import EnvConfig
from advanced_risk.measures.validation import FloatArray
from advanced_risk.measures.volatility import wilder_atr
from advanced_risk.monitoring.drift import FeatureReference, calibrated_reference
from advanced_risk.rl.agents.interface import ATR_FLOOR, ATR_PERIOD, synthetic_bars
from advanced_risk.rl.portfolio.accounting import history_length
from advanced_risk.rl.portfolio.drift import asset_labels, policy_features

__all__ = [
    "AGENTS_DRIFT_THRESHOLD",
    "AGENTS_WICK",
    "agents_feature_names",
    "agents_features",
    "agents_reference",
]

AGENTS_WICK: Final = 0.5
"""The agents' bar approximation (``RiskAgentsEnv(wick=0.5)``, the advisor's ``WICK``)."""

AGENTS_DRIFT_THRESHOLD: Final = 1.25
"""The drift threshold (mean PSI) stored with a agents reference: calibrated for the default window and
min_bars on regime-switching paths (docs/drift.md: the lowest detection delay of a volatility x2.5
shift with <= 1 % false alarms on held-out paths)."""


def agents_feature_names(config: EnvConfig, asset_names: Sequence[str] | None = None) -> tuple[str, ...]:
    """Names of the agents' shared market features, e.g. ``rsi[AAPL]`` ... ``atr[XOM]``."""
    assets = asset_labels(asset_names, config.asset_count)
    return tuple(f"{block}[{a}]" for block in ("rsi", "momentum", "volatility", "atr") for a in assets)


def agents_features(returns: FloatArray, config: EnvConfig) -> FloatArray:
    """The agents' market features at every bar of ``returns`` ``(T, n)`` where the advisor has them.

    Closes are ``cumprod(1 + returns)`` from 1; ATR is Wilder's ATR(14) on the close-only bars of
    :func:`~advanced_risk.rl.agents.interface.synthetic_bars` (as the advisor computes it). Row ``t``
    is the bar after ``max(history_length, ATR_PERIOD) + t`` returns.
    """
    policy = policy_features(returns, config)  # rows: after h, h + 1, ..., T returns
    n, w, h = config.asset_count, config.window, history_length(config)
    start = max(h, ATR_PERIOD)
    close = np.vstack([np.ones((1, n)), np.cumprod(1.0 + np.asarray(returns, dtype=np.float64), axis=0)])
    high, low = synthetic_bars(close, AGENTS_WICK)
    atr = np.column_stack([wilder_atr(high[:, i], low[:, i], close[:, i], ATR_PERIOD) for i in range(n)])
    atr_block = 100.0 * np.maximum(atr / close, ATR_FLOOR)[start:]
    market = policy[start - h :, n * w : n * w + 3 * n]
    out: FloatArray = np.hstack([market, atr_block])
    return out


def agents_reference(
    paths: Sequence[FloatArray], config: EnvConfig, asset_names: Sequence[str] | None = None
) -> FeatureReference:
    """The agents' reference from training return paths (each ``(T, n)``, features pooled), with its
    threshold: :data:`AGENTS_DRIFT_THRESHOLD` or, if higher, the 99th percentile of the scores of
    the training paths' own windows (:func:`~advanced_risk.monitoring.drift.in_sample_threshold`)."""
    streams = [agents_features(p, config) for p in paths]
    return calibrated_reference(streams, agents_feature_names(config, asset_names), AGENTS_DRIFT_THRESHOLD)
