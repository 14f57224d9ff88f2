"""Frozen, keyword-only configuration objects, validated once in ``__post_init__``.

A config reports *all* its bad fields at once in one :class:`~advanced_risk.errors.ConfigError`
(a subclass of ``InvalidInputError``), and ``from_dict`` rejects unknown keys, so a typo in a TOML
file is an error rather than a silently ignored setting. Risk settings live in
:mod:`advanced_risk.config.risk`, RL settings in :mod:`advanced_risk.config.rl`; import them from
here.
"""

from __future__ import annotations

from advanced_risk.config.risk import (
    HedgeConfig,
    KellyConfig,
    LeverageConfig,
    RiskConfig,
    SizingConfig,
    TrackerConfig,
)
from advanced_risk.config.rl import EnvConfig, MarketKind, PPOConfig, RewardKind

__all__ = [
    "EnvConfig",
    "HedgeConfig",
    "KellyConfig",
    "LeverageConfig",
    "MarketKind",
    "PPOConfig",
    "RewardKind",
    "RiskConfig",
    "SizingConfig",
    "TrackerConfig",
]
