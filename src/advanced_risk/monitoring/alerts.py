"""Alerts for people: the kind of each alert text, and the event an ``on_alert`` hook receives.

A decision's ``alerts`` are short texts meant for a human. For counting (the Prometheus metric
``advanced_risk_alerts_total{kind=...}``) and for paging (``RiskConfig``-independent ``on_alert``
hooks of :class:`~advanced_risk.manager.AdvancedRiskManager`), each text has one *kind*, read from
how the engine words it (:func:`alert_kind`; the texts are written in ``engine/core.py`` and
``manager.py``, and ``tests/monitoring/test_alerts.py`` pins every wording to its kind).

Which alerts reach the hook: a decision's alerts of a paging kind (:data:`PAGING_KINDS`: state
changes, kill switch, degraded decisions, drift), and the operator controls (kill switch engaged,
resume). Per-bar notes such as the VaR warm-up or positions being closed are counted, not paged.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum

__all__ = ["PAGING_KINDS", "AlertEvent", "AlertKind", "alert_kind"]


class AlertKind(StrEnum):
    """What an alert is about."""

    STATE_CHANGE = "state_change"
    """The trading state moved (ACTIVE / REDUCING / HALTED) by a rule or a resume."""
    KILL_SWITCH = "kill_switch"
    """The manual kill switch was engaged."""
    DEGRADED = "degraded"
    """A component failed or was late, or the journal was not durable: a conservative decision."""
    DRIFT = "drift"
    """A model's inputs moved away from its training data: its advice was replaced by the rules."""
    CORRELATION_SHOCK = "correlation_shock"
    """The assets' average correlation jumped."""
    POLICY = "policy"
    """The policy was uncertain (leverage cut), idle, or left positions to the rules."""
    RISK_AGENTS = "risk_agents"
    """The risk agents asked for a de-risking action, or the rules replaced some of them."""
    POSITIONS = "positions"
    """Positions are being closed by a cut."""
    WARM_UP = "warm_up"
    """Not enough history yet (VaR floored, a refit not ready)."""
    RECOVERED = "recovered"
    """A degraded run or a model's input drift is over (raised by the ``on_alert`` pager only)."""
    OTHER = "other"
    """Any other text."""


PAGING_KINDS: frozenset[AlertKind] = frozenset(
    {AlertKind.STATE_CHANGE, AlertKind.KILL_SWITCH, AlertKind.DEGRADED, AlertKind.DRIFT}
)
"""Kinds a decision's alert is passed to ``on_alert`` for (every kind is counted in the metrics)."""

# (prefix, kind), first match wins: the engine's wordings, in engine/core.py and manager.py
_PREFIXES: tuple[tuple[str, AlertKind], ...] = (
    ("degraded:", AlertKind.DEGRADED),
    ("replaces ", AlertKind.DEGRADED),
    ("input drift:", AlertKind.DRIFT),
    ("correlation shock", AlertKind.CORRELATION_SHOCK),
    ("policy ", AlertKind.POLICY),
    ("risk agents", AlertKind.RISK_AGENTS),
    ("closing ", AlertKind.POSITIONS),
    ("VaR/CVaR: fewer than", AlertKind.WARM_UP),
    ("GJR-GARCH refit", AlertKind.WARM_UP),
)


def alert_kind(text: str) -> AlertKind:
    """The kind of one alert text of a decision or an operator control.

    A state change whose reason is the kill switch (``"trading state active -> halted: kill switch:
    ..."``) is :attr:`AlertKind.KILL_SWITCH`; any other state change is
    :attr:`AlertKind.STATE_CHANGE`. Texts the engine does not write are :attr:`AlertKind.OTHER`.
    """
    if text.startswith("trading state "):
        return AlertKind.KILL_SWITCH if ": kill switch" in text else AlertKind.STATE_CHANGE
    for prefix, kind in _PREFIXES:
        if text.startswith(prefix):
            return kind
    return AlertKind.OTHER


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """What an ``on_alert`` hook receives.

    Attributes
    ----------
    kind : the alert's :class:`AlertKind`.
    message : the alert text, as in the decision's ``alerts``.
    trading_state : the trading state after the event (``"active"``, ``"reducing"``, ``"halted"``).
    decision_id : the decision that carried the alert ("" for an operator control).
    ts : Unix time the event was raised.
    """

    kind: AlertKind
    message: str
    trading_state: str
    decision_id: str = ""
    ts: float = 0.0

    @classmethod
    def now(cls, message: str, trading_state: str, decision_id: str = "") -> AlertEvent:
        """An event for ``message`` (its kind read by :func:`alert_kind`), stamped now."""
        return cls(alert_kind(message), message, trading_state, decision_id, time.time())
