"""advanced_risk: the risk engine a trading bot embeds.

``__all__`` is the bot's API: the manager and what goes in and out of it, every configuration,
the ``Allocator`` / ``Advisor`` protocols a custom policy or advisor implements, the risk components
that also work alone, and the errors. Training and RL internals are imported from their packages
(``advanced_risk.rl.ppo.agent.PPOAgent``, ``advanced_risk.training``; docs/architecture.md).

Importing the package is cheap: numba and the manager load only when one of their names is first
used (``advanced_risk.RiskTracker``, ``advanced_risk.AdvancedRiskManager``), so a bot starts fast
and pays for a component when it first touches it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from advanced_risk.config import (
    EnvConfig,
    HedgeConfig,
    KellyConfig,
    LeverageConfig,
    PPOConfig,
    RiskConfig,
    SizingConfig,
    TrackerConfig,
)
from advanced_risk.errors import (
    AdvancedRiskError,
    ConfigError,
    DataIntegrityError,
    DataValidationError,
    DuplicateDecisionError,
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
    from advanced_risk.engine.protocols import Advisor, Allocation, Allocator
    from advanced_risk.manager import AdvancedRiskManager
    from advanced_risk.risk.hedging import HedgingStrategy
    from advanced_risk.risk.sizing import KellySizer, PositionSizer
    from advanced_risk.risk.tracker import RiskSnapshot, RiskTracker

__version__ = "0.1.0"

__all__ = [
    "AdvancedRiskError",
    "AdvancedRiskManager",
    "Advisor",
    "Allocation",
    "Allocator",
    "ConfigError",
    "CorrelationState",
    "DataIntegrityError",
    "DataValidationError",
    "DuplicateDecisionError",
    "EnvConfig",
    "HedgeConfig",
    "HedgeInstruction",
    "HedgingStrategy",
    "InvalidInputError",
    "KellyConfig",
    "KellySizer",
    "LeverageConfig",
    "MarketState",
    "ModelLoadError",
    "PPOConfig",
    "Portfolio",
    "PositionSizer",
    "RiskConfig",
    "RiskDecision",
    "RiskLevel",
    "RiskSnapshot",
    "RiskTracker",
    "SizingConfig",
    "StateChange",
    "StateStoreError",
    "TrackerConfig",
    "TradingState",
    "__version__",
    "measures",
]

# The numba-backed components, the manager and the protocols load on first use (PEP 562), so
# `import advanced_risk` imports neither numba nor sqlite3 nor any RL code.
_LAZY = {
    "AdvancedRiskManager": "advanced_risk.manager",
    "HedgingStrategy": "advanced_risk.risk.hedging",
    "KellySizer": "advanced_risk.risk.sizing",
    "PositionSizer": "advanced_risk.risk.sizing",
    "RiskSnapshot": "advanced_risk.risk.tracker",
    "RiskTracker": "advanced_risk.risk.tracker",
    "Advisor": "advanced_risk.engine.protocols",
    "Allocation": "advanced_risk.engine.protocols",
    "Allocator": "advanced_risk.engine.protocols",
}


def __getattr__(name: str) -> Any:
    """Import a lazy name's module on first access."""
    if name == "measures":
        return importlib.import_module("advanced_risk.measures")
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'advanced_risk' has no attribute {name!r}")
