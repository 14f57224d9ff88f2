"""Adversarial checks of the one-bar jump alert (af1bc8e, ``engine.core.JUMP_ALERT`` = 30 %).

Expected behaviour: a healthy decision's alerts say a one-bar move of 30 % or more either way,
given as a return or made by two closes (a 10:1 split, a 1:10 reverse split), including a move of
exactly 30 % between decimal prices (0.20 -> 0.14, 0.10 -> 0.13); a move below it is not said; a
joiner's first close is no move; the decision journalled is the one returned.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from advanced_risk.config import RiskConfig
from advanced_risk.manager import AdvancedRiskManager


@pytest.fixture
def risk() -> Iterator[AdvancedRiskManager]:
    manager = AdvancedRiskManager(RiskConfig(state_path=None, tracker={"method": "fhs_ewma"}))
    try:
        yield manager
    finally:
        manager.close_sync()


def _jumps(alerts: tuple[str, ...]) -> list[str]:
    return [a for a in alerts if "in one bar: taken as a real move" in a]


def _decide(risk: AdvancedRiskManager, market: dict[str, Any], weights: dict[str, float]) -> Any:
    decision = risk.manage_risk_sync(market, {"weights": weights, "equity": 1e5})
    row = risk.read_decision(decision.decision_id)
    assert row == json.loads(decision.to_json())
    return decision


@pytest.mark.parametrize(
    ("p0", "p1", "said"),
    [
        (100.0, 130.0, "+30.0%"),
        (100.0, 70.0, "-30.0%"),
        (0.20, 0.14, "-30.0%"),  # 0.14 / 0.2 - 1 = -0.29999999999999993 in floats
        (0.10, 0.07, "-30.0%"),
        (3.0, 3.9, "+30.0%"),
        (100.0, 10.0, "-90.0%"),  # a 10:1 split, unadjusted
        (10.0, 100.0, "+900.0%"),  # a 1:10 reverse split
    ],
)
def test_a_move_of_30_percent_or_more_between_closes_is_said(
    risk: AdvancedRiskManager, p0: float, p1: float, said: str
) -> None:
    _decide(risk, {"prices": {"X": p0, "Y": 50.0}}, {"X": 0.3, "Y": 0.3})
    decision = _decide(risk, {"prices": {"X": p1, "Y": 50.0}}, {"X": 0.3, "Y": 0.3})
    assert not decision.degraded
    jumps = _jumps(decision.alerts)
    assert len(jumps) == 1
    assert jumps[0].startswith(f"X moved {said}")


@pytest.mark.parametrize("r", [0.3, -0.3, 0.2999999, -0.2999999, 10.0, -0.999])
def test_a_given_return_is_said_from_30_percent(risk: AdvancedRiskManager, r: float) -> None:
    decision = _decide(risk, {"returns": {"X": r, "Y": 0.0}, "volatility": 0.2}, {"X": 0.5})
    assert bool(_jumps(decision.alerts)) == (abs(r) >= 0.3)


def test_a_joiner_first_close_is_no_move(risk: AdvancedRiskManager) -> None:
    _decide(risk, {"prices": {"X": 100.0}}, {"X": 0.5})
    joined = _decide(risk, {"prices": {"X": 100.0, "Y": 1.0}}, {"X": 0.5})
    assert not _jumps(joined.alerts)


def test_a_jump_in_a_thousand_asset_book_names_its_asset(risk: AdvancedRiskManager) -> None:
    names = [f"S{i:04d}" for i in range(1000)]
    _decide(risk, {"prices": dict.fromkeys(names, 10.0)}, {})
    prices = dict.fromkeys(names, 10.0)
    prices["S0999"] = 5.0
    decision = _decide(risk, {"prices": prices}, {})
    jumps = _jumps(decision.alerts)
    assert len(jumps) == 1
    assert jumps[0].startswith("S0999 moved -50.0%")
