"""advanced_risk: the risk engine a trading bot embeds.

Importing the package is cheap: torch and the RL allocator load only when one of their names is
first used (``advanced_risk.PPOAgent`` etc.), so a bot that uses only the risk layer starts fast.
"""

from __future__ import annotations

from advanced_risk import measures
from advanced_risk.config import RiskConfig, TrackerConfig
from advanced_risk.errors import (
    AdvancedRiskError,
    ConfigError,
    DataIntegrityError,
    InvalidInputError,
    ModelLoadError,
    StateStoreError,
)
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
    "AdvancedRiskError",
    "ConfigError",
    "CorrelationState",
    "DataIntegrityError",
    "HedgeInstruction",
    "InvalidInputError",
    "MarketState",
    "ModelLoadError",
    "Portfolio",
    "RiskConfig",
    "RiskDecision",
    "RiskLevel",
    "RiskSnapshot",
    "RiskTracker",
    "StateStoreError",
    "TrackerConfig",
    "TradingState",
    "__version__",
    "measures",
]
