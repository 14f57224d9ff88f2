"""Stateful risk components built only on ``measures`` (tracker, GARCH filter, VaR backtests).

``garch`` imports the ``arch`` library lazily, on first use, so importing this package stays cheap.
"""

from __future__ import annotations

from advanced_risk.risk.tracker import RiskSnapshot, RiskTracker

__all__ = ["RiskSnapshot", "RiskTracker"]
