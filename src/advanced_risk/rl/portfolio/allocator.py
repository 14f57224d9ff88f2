"""The policy behind ``manage_risk``: a trained portfolio policy seen as an ``Allocator``.

The manager accepts a model path, an ``RLPortfolioManager`` or any object with the
:class:`~advanced_risk.engine.protocols.Allocator` interface. A model path is read into a
:class:`~advanced_risk.rl.portfolio.policy.PortfolioPolicy` (NumPy inference, no torch), so the
shipped policy runs in a core install; an ``RLPortfolioManager`` (torch) decides the same.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np

from advanced_risk.config import EnvConfig
from advanced_risk.engine.protocols import Allocation, Allocator
from advanced_risk.errors import InvalidInputError, ModelLoadError
from advanced_risk.measures.fhs_fused import pairwise_mean_kernel
from advanced_risk.measures.validation import FloatArray
from advanced_risk.monitoring.drift import DriftSettings, DriftStatus
from advanced_risk.rl.portfolio.accounting import (
    check_history,
    history_length,
    market_dim,
    market_features_kernel,
)
from advanced_risk.rl.portfolio.policy import PortfolioPolicy
from advanced_risk.rl.ppo.inference import generator_from_state

__all__ = ["PolicyAllocator", "TradingPolicy", "load_allocator"]


class TradingPolicy(Protocol):
    """What :class:`PolicyAllocator` needs: ``PortfolioPolicy`` and ``RLPortfolioManager`` have it."""

    @property
    def env_config(self) -> EnvConfig: ...

    @property
    def asset_count(self) -> int: ...

    @property
    def uncertainty_threshold(self) -> float | None: ...

    def rebalance_trusted(
        self, returns: FloatArray, weights: FloatArray, drawdown: float, n_samples: int = 10
    ) -> tuple[FloatArray, FloatArray]: ...


class PolicyAllocator:
    """Adapts a portfolio policy to the engine: deterministic weights plus MC-dropout uncertainty.

    ``policy`` is a :class:`~advanced_risk.rl.portfolio.policy.PortfolioPolicy` (read from a model
    file) or an ``RLPortfolioManager``. The uncertainty is the mean, over the action's entries, of
    the standard deviation of the pre-softmax action across ``n_samples`` dropout masks (0 for a
    policy without dropout).

    When the policy carries an observation reference (``PortfolioPolicy.observation_reference``,
    from its model file) the allocator owns a
    :class:`~advanced_risk.monitoring.drift.DriftMonitor` (``drift`` settings) fed with each bar's
    market features, and ``Allocation.drift`` carries its status (also :attr:`last_drift`); without
    one, ``drift`` is None. The allocator does not act on drift: the engine replaces a drifted
    policy's allocation by the rules.
    """

    bounded_cost: ClassVar[bool] = True
    """A fixed amount of NumPy (or torch) arithmetic per bar that cannot block: the manager may run
    it inline (engine/components.py)."""

    def __init__(
        self, policy: TradingPolicy, n_samples: int = 10, drift: DriftSettings | None = None
    ) -> None:
        self.policy = policy
        self.n_samples = n_samples
        self._history = history_length(policy.env_config)
        reference = getattr(policy, "observation_reference", None)
        self._drift = (drift or DriftSettings()).monitor(reference)
        self._market_dim = market_dim(policy.env_config)
        self.last_drift: DriftStatus | None = None
        """The drift status of the last :meth:`allocate` (None: no reference, or not called yet)."""

    @property
    def asset_count(self) -> int:
        """Assets the policy was trained on."""
        return self.policy.asset_count

    @property
    def asset_names(self) -> tuple[str, ...] | None:
        """The assets the policy was trained on, in order, as its model file records them (None: unnamed)."""
        names: tuple[str, ...] | None = getattr(self.policy, "asset_names", None)
        return names

    @property
    def uncertainty_threshold(self) -> float | None:
        """The policy's own calibrated threshold (``RLPortfolioManager.calibrate_uncertainty``), if any."""
        return self.policy.uncertainty_threshold

    @property
    def history_length(self) -> int:
        """Bars of returns the policy's observation needs."""
        return self._history

    def allocate(self, returns: FloatArray, weights: FloatArray, drawdown: float) -> Allocation:
        """Target weights (assets then cash) for this history, with the policy's uncertainty.

        ``returns`` ``(T >= history_length, asset_count)``, ``weights`` ``(asset_count + 1,)``.

        Raises
        ------
        InvalidInputError
            ``returns`` or ``weights`` of another shape (naming which); the values are trusted.
        """
        # The engine built these from validated inputs: skip rebalance()'s value checks on the hot
        # path, but not the shapes (the feature kernels do not bounds-check).
        n = self.policy.asset_count
        check_history(returns, self._history, n)
        if np.shape(weights) != (n + 1,):
            raise InvalidInputError(
                f"weights must have shape ({n + 1},) (the assets then cash), got {np.shape(weights)}"
            )
        target, std = self.policy.rebalance_trusted(returns, weights, min(drawdown, 0.999999), self.n_samples)
        drift = None if self._drift is None else self._drift.update(self._market_features(returns))
        self.last_drift = drift
        return Allocation(weights=target, uncertainty=_mean(std), drift=drift)

    def _market_features(self, returns: FloatArray) -> FloatArray:
        """The market part of this bar's observation (the policy's own, when it kept it)."""
        market: FloatArray | None = getattr(self.policy, "last_market", None)
        if market is None or market.shape[0] != self._market_dim:
            cfg = self.policy.env_config
            market = market_features_kernel(returns, returns.shape[0], cfg.window, 0)[0]
        return market

    def snapshot_state(self) -> dict[str, Any]:
        """What a graceful restart restores (JSON-able): the MC-dropout generator's state, so the
        next bar draws the masks a run that never stopped would draw (none for a policy without
        one), and the drift monitor's window."""
        state: dict[str, Any] = {}
        rng = getattr(self.policy, "rng_state", None)
        if rng is not None:
            state["rng"] = rng
        if self._drift is not None:
            state["drift"] = self._drift.state()
        return state

    def restore_state(self, state: Mapping[str, Any]) -> None:
        """Take back :meth:`snapshot_state` (``ValueError`` or ``TypeError``, nothing changed, for
        one of another policy)."""
        rng = generator_from_state(state["rng"]) if "rng" in state else None  # checked first
        if "drift" in state and self._drift is not None:
            self._drift.restore(state["drift"])  # checks, then changes the window
        if rng is not None and hasattr(self.policy, "rng_state"):
            self.policy.rng_state = dict(rng.bit_generator.state)

    def warm_up(self) -> None:
        """One throwaway inference (loads numba's cached kernels); the manager calls it from ``open``.

        The drift monitor is set aside meanwhile: the throwaway bar never enters its window.
        """
        n = self.asset_count
        weights = np.append(np.zeros(n), 1.0)
        monitor, last, self._drift = self._drift, self.last_drift, None
        try:
            self.allocate(np.zeros((self.history_length, n)), weights, 0.0)
        finally:
            self._drift, self.last_drift = monitor, last


def _mean(x: FloatArray) -> float:
    """``float(x.mean())``; a non-empty contiguous float64 vector (the policies' std) by NumPy's own
    pairwise summation in one kernel (``measures.fhs_fused``, bit for bit) without ``np.mean``'s
    Python-level dispatch. NaN propagates."""
    if type(x) is np.ndarray and x.dtype == np.float64 and x.ndim == 1 and x.size and x.flags.c_contiguous:
        return float(pairwise_mean_kernel(x))
    return float(x.mean())


def load_allocator(policy: Any, n_samples: int = 10, drift: DriftSettings | None = None) -> Allocator | None:
    """None, a model path, an ``RLPortfolioManager`` or an ``Allocator`` -> an ``Allocator`` (or None).

    A model path becomes a :class:`~advanced_risk.rl.portfolio.policy.PortfolioPolicy` (no torch);
    ``drift`` (default ``DriftSettings()``) configures its drift monitor when its file has a reference.

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
        path = Path(policy)
        if not path.is_file():
            raise ModelLoadError(f"policy file not found: {path}")
        return PolicyAllocator(PortfolioPolicy.load(path), n_samples, drift)
    if all(hasattr(policy, name) for name in ("asset_count", "history_length", "allocate")):
        allocator: Allocator = policy
        return allocator
    if hasattr(policy, "rebalance") and hasattr(policy, "env_config"):
        return PolicyAllocator(policy, n_samples, drift)
    raise InvalidInputError(
        "policy must be None, a model path, an RLPortfolioManager or an Allocator, "
        f"got {type(policy).__name__}"
    )
