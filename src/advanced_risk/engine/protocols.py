"""The interfaces through which learned components advise the engine: ``Allocator`` and ``Advisor``.

The engine never imports a learned component: a policy is an :class:`Allocator` (the shipped one is
``rl.portfolio.allocator.PolicyAllocator``) and the risk agents are an :class:`Advisor` (the shipped
one is ``rl.agents.advisor.RiskAgentsAdvisor``); ``manager.py`` is the one place that loads them.

Both may carry an optional ``asset_names`` attribute (a sequence of str): the assets they were
trained on, found by name in the engine's universe. Without it a component is matched by position
and needs a universe of exactly ``asset_count`` assets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from advanced_risk.measures.validation import FloatArray
from advanced_risk.types import AgentAdvice, DriftStatus

__all__ = ["Advisor", "Allocation", "Allocator"]


@dataclass(frozen=True, slots=True)
class Allocation:
    """What the allocator proposes: weights over the assets then cash, and its uncertainty.

    Attributes
    ----------
    weights : ``(asset_count + 1,)`` long-only weights in [0, 1], assets then cash, summing to 1.
    uncertainty : the policy's MC-dropout uncertainty (finite, >= 0), or None when it has none.
    drift : the policy's input drift (None when it does not track it). When ``drifted``, the engine
        replaces the allocation by the rules for this bar.
    """

    weights: FloatArray
    uncertainty: float | None
    drift: DriftStatus | None = None


class Allocator(Protocol):
    """A policy the engine can ask for target weights."""

    @property
    def asset_count(self) -> int:
        """Number of assets the policy allocates (its weights have one more entry: cash)."""
        ...

    @property
    def history_length(self) -> int:
        """Bars of return history ``allocate`` needs."""
        ...

    def allocate(self, returns: FloatArray, weights: FloatArray, drawdown: float) -> Allocation:
        """Target weights from ``(history_length, asset_count)`` returns, the held long weights plus
        cash ``(asset_count + 1,)`` and the account's drawdown in [0, 1]."""
        ...


class Advisor(Protocol):
    """The learned risk agents as the engine sees them."""

    @property
    def asset_count(self) -> int:
        """Number of assets the agents were trained on."""
        ...

    @property
    def history_length(self) -> int:
        """Bars of return history ``request`` needs."""
        ...

    def observe(
        self, close: FloatArray, held: FloatArray, portfolio_return: float | None, stops: FloatArray
    ) -> None:
        """Feed one bar: closes, held weights, the book's return (None: no returns yet) and the long
        stops in force (NaN: none)."""
        ...

    def request(self, returns: FloatArray, drawdown: float, exposure: float) -> Any:
        """The agents' observations for this bar, built on the caller's thread (a snapshot)."""
        ...

    def advise(self, observations: Any) -> AgentAdvice:
        """The advice for the observations ``request`` built (may run on a worker thread)."""
        ...
