"""advanced_risk: the risk engine a trading bot embeds.

Importing the package is cheap: torch and the RL allocator load only when one of their names is
first used (``advanced_risk.PPOAgent`` etc.), so a bot that uses only the risk layer starts fast.
"""

from __future__ import annotations

import importlib
from typing import Any

from advanced_risk import measures
from advanced_risk.config import EnvConfig, PPOConfig, RiskConfig, TrackerConfig
from advanced_risk.errors import (
    AdvancedRiskError,
    ConfigError,
    DataIntegrityError,
    InvalidInputError,
    ModelLoadError,
    StateStoreError,
)
from advanced_risk.risk.hedging import HedgingStrategy
from advanced_risk.risk.sizing import KellySizer, PositionSizer
from advanced_risk.risk.tracker import RiskSnapshot, RiskTracker
from advanced_risk.types import (
    CorrelationState,
    HedgeInstruction,
    MarketState,
    Portfolio,
    RiskDecision,
    RiskLevel,
    TradingState,
)

__version__ = "0.1.0"

__all__ = [
    "ActorCriticNetwork",
    "AdvancedRiskError",
    "AdvancedRiskManager",
    "ConfigError",
    "CorrelationState",
    "DataIntegrityError",
    "EnvConfig",
    "HedgeInstruction",
    "HedgingStrategy",
    "InvalidInputError",
    "KellySizer",
    "MarketState",
    "ModelLoadError",
    "PPOAgent",
    "PPOConfig",
    "Portfolio",
    "PositionSizer",
    "RLPortfolioManager",
    "RiskConfig",
    "RiskDecision",
    "RiskLevel",
    "RiskSnapshot",
    "RiskTracker",
    "StateStoreError",
    "TrackerConfig",
    "TradingEnvironment",
    "TradingState",
    "__version__",
    "measures",
]

# The manager and the names under rl/ load on first use (PEP 562), so `import advanced_risk` never
# imports torch, gymnasium, sqlite3 or the RL code: a bot that uses only the measures starts fast.
_LAZY = {
    "AdvancedRiskManager": "advanced_risk.manager",
    "ActorCriticNetwork": "advanced_risk.rl",
    "PPOAgent": "advanced_risk.rl",
    "RLPortfolioManager": "advanced_risk.rl",
    "TradingEnvironment": "advanced_risk.rl",
}


def __getattr__(name: str) -> Any:
    """Import the RL names on first access."""
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'advanced_risk' has no attribute {name!r}")
