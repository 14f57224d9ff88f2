"""The jump alert names every asset that moved 30 % or more in one bar, largest first, up to
``JUMP_ALERTS_NAMED``; one more alert counts the rest (a crash day of a crypto book)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from advanced_risk.config import RiskConfig
from advanced_risk.engine.core import JUMP_ALERTS_NAMED
from advanced_risk.manager import AdvancedRiskManager


@pytest.fixture
def risk() -> Iterator[AdvancedRiskManager]:
    manager = AdvancedRiskManager(RiskConfig(state_path=None))
    try:
        yield manager
    finally:
        manager.close_sync()


def _jumps(alerts: tuple[str, ...]) -> list[str]:
    return [a for a in alerts if "in one bar" in a]


def test_two_movers_are_both_named_largest_first(risk: AdvancedRiskManager) -> None:
    names = ["A", "B", "C"]
    risk.manage_risk_sync({"prices": dict.fromkeys(names, 10.0)}, {"weights": {}, "equity": 1e5})
    bar = {"prices": {"A": 13.5, "B": 5.0, "C": 10.5}}
    decision = risk.manage_risk_sync(bar, {"weights": {}, "equity": 1e5})
    jumps = _jumps(decision.alerts)
    assert [j.split(" in one bar")[0] for j in jumps] == ["B moved -50.0%", "A moved +35.0%"]


def test_a_crash_of_many_names_says_the_largest_and_counts_the_rest(risk: AdvancedRiskManager) -> None:
    names = [f"S{i:03d}" for i in range(40)]
    risk.manage_risk_sync({"prices": dict.fromkeys(names, 100.0)}, {"weights": {}, "equity": 1e5})
    # S000 -> -1 %, S001 -> -2 %, ... S039 -> -40 %: S029 ... S039 moved 30 % or more (11 names)
    prices = {n: 100.0 - (i + 1) for i, n in enumerate(names)}
    decision = risk.manage_risk_sync({"prices": prices}, {"weights": {}, "equity": 1e5})
    jumps = _jumps(decision.alerts)
    named = [j.split(" moved")[0] for j in jumps[:-1]]
    assert named == [f"S{i:03d}" for i in range(39, 39 - JUMP_ALERTS_NAMED, -1)]
    assert jumps[-1] == f"{11 - JUMP_ALERTS_NAMED} more assets moved 30% or more in one bar"


def test_a_quiet_bar_says_nothing(risk: AdvancedRiskManager) -> None:
    risk.manage_risk_sync({"prices": {"A": 10.0, "B": 10.0}}, {"weights": {}, "equity": 1e5})
    decision = risk.manage_risk_sync({"prices": {"A": 12.9, "B": 7.1}}, {"weights": {}, "equity": 1e5})
    assert _jumps(decision.alerts) == []
