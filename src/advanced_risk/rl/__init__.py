"""The RL allocator: market simulators, the portfolio environment, and (lazily) the PPO agent.

Importing ``advanced_risk.rl`` loads numpy, numba and gymnasium only; names that need torch
(``PPOAgent``, ``ActorCriticNetwork``, ``RLPortfolioManager``) are imported on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from advanced_risk.rl._accounting import (
    action_to_weights,
    history_length,
    observation_dim,
    observation_layout,
)
from advanced_risk.rl.env import TradingEnvironment, VectorTradingEnv
from advanced_risk.rl.market import (
    CorrelatedGBM,
    HistoricalReplay,
    MarketModel,
    RegimeSwitchingMarket,
    make_market,
)

__all__ = [
    "ActorCriticNetwork",
    "CorrelatedGBM",
    "HistoricalReplay",
    "MarketModel",
    "PPOAgent",
    "RLPortfolioManager",
    "RegimeSwitchingMarket",
    "TradingEnvironment",
    "VectorTradingEnv",
    "action_to_weights",
    "history_length",
    "make_market",
    "observation_dim",
    "observation_layout",
]

_LAZY = {
    "ActorCriticNetwork": "advanced_risk.rl.network",
    "PPOAgent": "advanced_risk.rl.ppo",
    "RLPortfolioManager": "advanced_risk.rl.portfolio",
}


def __getattr__(name: str) -> Any:
    """Import the torch-backed names on first access (PEP 562)."""
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'advanced_risk.rl' has no attribute {name!r}")
