"""advanced_risk: the risk engine a trading bot embeds.

Importing the package is cheap: torch and the RL allocator load only when one of their names is
first used (``advanced_risk.PPOAgent`` etc.), so a bot that uses only the risk layer starts fast.
"""

from __future__ import annotations

from advanced_risk import measures
from advanced_risk.errors import (
    AdvancedRiskError,
    ConfigError,
    DataIntegrityError,
    InvalidInputError,
    ModelLoadError,
    StateStoreError,
)

__version__ = "0.1.0"

__all__ = [
    "AdvancedRiskError",
    "ConfigError",
    "DataIntegrityError",
    "InvalidInputError",
    "ModelLoadError",
    "StateStoreError",
    "__version__",
    "measures",
]
