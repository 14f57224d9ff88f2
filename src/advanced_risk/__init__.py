"""advanced_risk: the risk engine a trading bot embeds.

Importing the package is cheap: numba, torch and the RL allocator load only when one of their names
is first used (``advanced_risk.RiskTracker``, ``advanced_risk.PPOAgent`` etc.), so a bot starts fast
and pays for a component when it first touches it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from advanced_risk.config import EnvConfig, PPOConfig, RiskConfig, TrackerConfig
from advanced_risk.errors import (
    AdvancedRiskError,
    ConfigError,
    DataIntegrityError,
    DataValidationError,
    InvalidInputError,
    ModelLoadError,
    StateStoreError,
)
from advanced_risk.types import (
    CorrelationState,
    HedgeInstruction,
    MarketState,
    Portfolio,
    RiskDecision,
    RiskLevel,
    StateChange,
    TradingState,
)

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time __getattr__ imports on demand
    from advanced_risk import measures
    from advanced_risk.manager import AdvancedRiskManager
    from advanced_risk.risk.hedging import HedgingStrategy
    from advanced_risk.risk.sizing import KellySizer, PositionSizer
    from advanced_risk.risk.tracker import RiskSnapshot, RiskTracker
    from advanced_risk.rl import ActorCriticNetwork, PPOAgent, RLPortfolioManager, TradingEnvironment

__version__ = "0.1.0"

__all__ = [
    "ActorCriticNetwork",
    "AdvancedRiskError",
    "AdvancedRiskManager",
    "ConfigError",
    "CorrelationState",
    "DataIntegrityError",
    "DataValidationError",
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
    "StateChange",
    "StateStoreError",
    "TrackerConfig",
    "TradingEnvironment",
    "TradingState",
    "__version__",
    "measures",
]

# The numba-backed components, the manager and the names under rl/ load on first use (PEP 562), so
# `import advanced_risk` imports neither numba nor torch, gymnasium, sqlite3 or the RL code.
_LAZY = {
    "AdvancedRiskManager": "advanced_risk.manager",
    "HedgingStrategy": "advanced_risk.risk.hedging",
    "KellySizer": "advanced_risk.risk.sizing",
    "PositionSizer": "advanced_risk.risk.sizing",
    "RiskSnapshot": "advanced_risk.risk.tracker",
    "RiskTracker": "advanced_risk.risk.tracker",
    "ActorCriticNetwork": "advanced_risk.rl",
    "PPOAgent": "advanced_risk.rl",
    "RLPortfolioManager": "advanced_risk.rl",
    "TradingEnvironment": "advanced_risk.rl",
}


def __getattr__(name: str) -> Any:
    """Import a lazy name's module on first access."""
    if name == "measures":
        return importlib.import_module("advanced_risk.measures")
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'advanced_risk' has no attribute {name!r}")
