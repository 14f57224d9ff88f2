"""Refusals found by an adversarial review (2026-12-01): the arrays entry point agrees with the dict
one on bad values, absurd held weights are refused (not degraded), and a short mask is never guessed."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from advanced_risk import AdvancedRiskManager, MarketState, Portfolio
from advanced_risk.errors import InvalidInputError
from advanced_risk.risk.sizing import PositionSizer, Side


@pytest.mark.parametrize(
    ("returns", "message"),
    [
        ([10**400, 0.0], "too large for a float"),
        (np.array([0.01 + 1j, 0.0]), "real numbers"),
        (np.array([True, False]), "real numbers"),
        ([True, False], r"returns\['\w+'\] must be a real number, got True"),  # the dict form's message
        (np.array(["0.01", "0.0"]), "real numbers"),
    ],
)
def test_the_arrays_entry_point_refuses_what_the_dict_one_refuses(returns: Any, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        MarketState.from_arrays(("A", "B"), returns=returns)
    with pytest.raises(InvalidInputError):
        MarketState(returns=dict(zip(("A", "B"), list(returns), strict=True)))


def test_unhashable_asset_names_are_refused_by_name() -> None:
    with pytest.raises(InvalidInputError, match=r"asset names, got \['A'\]"):
        MarketState.from_arrays([["A"], ["B"]], returns=[0.01, 0.02])  # type: ignore[list-item]


@pytest.mark.parametrize("weights", [{"A": 1e200, "B": 0.1}, {"A": -1e300, "B": 1e300}, {"A": 10**400}])
def test_absurd_held_weights_are_refused_before_any_state_changes(weights: dict[str, Any]) -> None:
    with pytest.raises(InvalidInputError, match=r"portfolio\.weights\['A'\]"):
        Portfolio(weights=weights)
    risk = AdvancedRiskManager()
    with pytest.raises(InvalidInputError, match=r"portfolio\.weights"):
        risk.manage_risk_sync({"returns": {"A": 0.01, "B": 0.0}}, {"weights": weights})
    d = risk.manage_risk_sync({"returns": {"A": 0.01, "B": 0.0}}, {"weights": {"A": 5e5, "B": 0.1}})
    assert not d.degraded  # large but inside the bound: decided
    risk.close_sync()


@pytest.mark.parametrize(
    "short",
    [[False, True], [0, 1], ["long", "short"], [Side.LONG, Side.SHORT], np.array([False, True])],
)
def test_a_short_mask_takes_booleans_or_sides(short: Any) -> None:
    _, stops = PositionSizer().plan_many(1e5, [2.0, 2.0], [100.0, 50.0], short=short)
    assert stops.tolist() == [96.0, 54.0]  # the long's stop below its price, the short's above


@pytest.mark.parametrize("short", [[np.nan, 0], ["long", "sell"], [2, 0], ["yes", ""]])
def test_a_short_mask_of_anything_else_is_refused(short: Any) -> None:
    with pytest.raises(InvalidInputError, match="short must hold"):
        PositionSizer().plan_many(1e5, [2.0, 2.0], [100.0, 50.0], short=short)


def test_config_and_call_arguments_found_loose() -> None:
    from pathlib import Path

    from advanced_risk import RiskConfig
    from advanced_risk.errors import ConfigError

    assert RiskConfig(state_path=Path("/tmp/risk.db")).state_path == "/tmp/risk.db"  # type: ignore[arg-type]
    for bad in ("", "  ", ":memory:", "a\x00b", 3):
        with pytest.raises(ConfigError, match="state_path"):
            RiskConfig(state_path=bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match=r"peak_equity must be in \(0\.0, inf\)"):
        Portfolio(weights={}, peak_equity=0.0)
    risk = AdvancedRiskManager()
    with pytest.raises(InvalidInputError, match="decision_id must be a str"):
        risk.read_decision(["a"])  # type: ignore[arg-type]
    risk.close_sync()


def test_a_rate_limit_below_one_call_a_second_is_honoured() -> None:
    from advanced_risk.manager import _throttler

    slow = _throttler(0.5)
    assert (slow.rate_limit, slow.period) == (1, 2.0)
    fast = _throttler(2.5)
    assert fast.rate_limit / fast.period == pytest.approx(2.5)


@pytest.mark.parametrize("hook", [lambda: None, lambda event, extra: None, "print"])
def test_an_alert_hook_that_cannot_take_the_event_is_refused_at_construction(hook: Any) -> None:
    with pytest.raises(InvalidInputError, match="on_alert"):
        AdvancedRiskManager(on_alert=hook)


def test_alert_hooks_of_every_accepted_shape_construct() -> None:
    async def coroutine_hook(event: Any) -> None:
        return None

    for hook in (print, coroutine_hook, lambda event, *rest, **options: None):
        AdvancedRiskManager(on_alert=hook)


@pytest.mark.parametrize("assets", ["AB", b"AB"])
def test_assets_given_as_one_string_are_refused_not_read_as_characters(assets: Any) -> None:
    with pytest.raises(InvalidInputError, match="assets must be a sequence of asset names"):
        MarketState.from_arrays(assets, returns=[0.01, 0.02])


@pytest.mark.parametrize("returns", [[0.01, None], np.array([0.01, None], dtype=object), (0.01, None)])
def test_a_missing_value_in_arrays_is_named_as_sent(returns: Any) -> None:
    with pytest.raises(InvalidInputError, match=r"returns\['B'\] must be a real number, got None"):
        MarketState.from_arrays(("A", "B"), returns=returns)
    with pytest.raises(InvalidInputError, match=r"returns\['B'\] must be finite, got nan"):
        MarketState.from_arrays(("A", "B"), returns=np.array([0.01, np.nan]))
