"""The learned components: the PPO portfolio policy and the MAPPO risk agents.

Sub-packages:

- ``rl.portfolio``: market simulators, the portfolio environment (gymnasium), its accounting and
  observation features, ``RLPortfolioManager`` and the allocator the risk manager runs it through.
- ``rl.ppo``: the PPO agent (torch), its buffer, loss, normaliser, network, the NumPy inference copy
  and the model-file format.
- ``rl.agents``: the MAPPO risk agents: their PettingZoo environment, the trainer, the inference-only
  policy, their evaluation and the advisor the risk manager consults.

Importing ``advanced_risk.rl`` loads nothing else: every name below is imported on first use
(PEP 562), so a module that needs one piece (the NumPy inference, say) pays for no other.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from advanced_risk.rl.portfolio.accounting import (
        action_to_weights,
        history_length,
        observation_dim,
        observation_layout,
    )
    from advanced_risk.rl.portfolio.env import TradingEnvironment, VectorTradingEnv
    from advanced_risk.rl.portfolio.manager import RLPortfolioManager
    from advanced_risk.rl.portfolio.market import (
        CorrelatedGBM,
        HistoricalReplay,
        MarketModel,
        RegimeSwitchingMarket,
        make_market,
    )
    from advanced_risk.rl.ppo.agent import PPOAgent
    from advanced_risk.rl.ppo.network import ActorCriticNetwork

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
    "ActorCriticNetwork": "advanced_risk.rl.ppo.network",
    "PPOAgent": "advanced_risk.rl.ppo.agent",
    "RLPortfolioManager": "advanced_risk.rl.portfolio.manager",
    "TradingEnvironment": "advanced_risk.rl.portfolio.env",
    "VectorTradingEnv": "advanced_risk.rl.portfolio.env",
    **dict.fromkeys(
        ("CorrelatedGBM", "HistoricalReplay", "MarketModel", "RegimeSwitchingMarket", "make_market"),
        "advanced_risk.rl.portfolio.market",
    ),
    **dict.fromkeys(
        ("action_to_weights", "history_length", "observation_dim", "observation_layout"),
        "advanced_risk.rl.portfolio.accounting",
    ),
}


def __getattr__(name: str) -> Any:
    """Import a name on first access (PEP 562)."""
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'advanced_risk.rl' has no attribute {name!r}")
