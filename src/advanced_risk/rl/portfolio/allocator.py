"""The policy behind ``manage_risk``: a trained ``RLPortfolioManager`` seen as an ``Allocator``.

The manager accepts a model path, an ``RLPortfolioManager`` or any object with the
:class:`~advanced_risk.engine.core.Allocator` interface. torch is imported only here, and only when a
policy is actually configured, so a bot that uses the risk layer alone never loads it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from advanced_risk.engine.core import Allocation, Allocator
from advanced_risk.errors import InvalidInputError, ModelLoadError
from advanced_risk.measures.validation import FloatArray

if TYPE_CHECKING:
    from advanced_risk.rl.portfolio.manager import RLPortfolioManager

__all__ = ["PolicyAllocator", "load_allocator"]


class PolicyAllocator:
    """Adapts an ``RLPortfolioManager`` to the engine: deterministic weights plus MC-dropout uncertainty.

    The uncertainty is the mean, over the action's entries, of the standard deviation of the
    pre-softmax action across ``n_samples`` dropout masks (0 for a policy without dropout).
    """

    def __init__(self, manager: RLPortfolioManager, n_samples: int = 10) -> None:
        from advanced_risk.rl.portfolio.accounting import history_length

        self.manager = manager
        self.n_samples = n_samples
        self._history = history_length(manager.env_config)

    @property
    def asset_count(self) -> int:
        """Assets the policy was trained on."""
        return self.manager.asset_count

    @property
    def asset_names(self) -> tuple[str, ...] | None:
        """The assets the policy was trained on, in order, as its model file records them (None: unnamed)."""
        names: tuple[str, ...] | None = getattr(self.manager, "asset_names", None)
        return names

    @property
    def uncertainty_threshold(self) -> float | None:
        """The policy's own calibrated threshold (``RLPortfolioManager.calibrate_uncertainty``), if any."""
        return self.manager.uncertainty_threshold

    @property
    def history_length(self) -> int:
        """Bars of returns the policy's observation needs."""
        return self._history

    def allocate(self, returns: FloatArray, weights: FloatArray, drawdown: float) -> Allocation:
        """Target weights (assets then cash) for this history, with the policy's uncertainty."""
        # The engine built these from validated inputs: skip rebalance()'s checks on the hot path.
        target, std = self.manager.rebalance_trusted(
            returns, weights, min(drawdown, 0.999999), self.n_samples
        )
        return Allocation(weights=target, uncertainty=float(np.mean(std)))

    def warm_up(self) -> None:
        """One throwaway inference (torch's first call is slow); the manager calls it from ``open``."""
        n = self.asset_count
        weights = np.append(np.zeros(n), 1.0)
        self.allocate(np.zeros((self.history_length, n)), weights, 0.0)


def load_allocator(policy: Any, n_samples: int = 10) -> Allocator | None:
    """None, a model path, an ``RLPortfolioManager`` or an ``Allocator`` -> an ``Allocator`` (or None).

    Raises
    ------
    ModelLoadError
        A path that is missing, corrupt or not a portfolio policy.
    InvalidInputError
        An object that is none of the accepted kinds.
    """
    if policy is None:
        return None
    if isinstance(policy, str | os.PathLike):
        from advanced_risk.rl.portfolio.manager import RLPortfolioManager

        path = Path(policy)
        if not path.is_file():
            raise ModelLoadError(f"policy file not found: {path}")
        return PolicyAllocator(RLPortfolioManager.load(path), n_samples)
    if all(hasattr(policy, name) for name in ("asset_count", "history_length", "allocate")):
        allocator: Allocator = policy
        return allocator
    if hasattr(policy, "rebalance") and hasattr(policy, "env_config"):
        return PolicyAllocator(policy, n_samples)
    raise InvalidInputError(
        "policy must be None, a model path, an RLPortfolioManager or an Allocator, "
        f"got {type(policy).__name__}"
    )
