"""Adversarial checks of protective stops across a restart (e9e483b) and of the refusal of a bar
without market data (02f7b28).

Expected behaviour: after a restart the last journalled stops stand until a bar with prices seeds
them; every decision meanwhile reports them (a bar without prices, a degraded bar), and the row
journalled for it is the decision returned, so a second restart restores them again. Operator rows
after the last decision are skipped; a refused bar changes nothing.

The bars are those of tests/async_/test_stops_restart.py: ``high = close + 1``, ``low = close - 1``,
closes moving at most 1 a bar, so the ATR is 2 and a stop stands 4 from the close it was set at
(by hand); ``atr_period=3``, the ATR is ready at an engine's 4th bar with prices. Before the
restart A (long, 0.5) ends with its stop at 106 and B (short, -0.3) at 44.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import advanced_risk.manager
from advanced_risk.errors import InvalidInputError
from advanced_risk.manager import AdvancedRiskManager
from advanced_risk.risk.atr import StreamingATR
from advanced_risk.types import RiskDecision

from .conftest import fast_config


@pytest.fixture(autouse=True)
def _crash_restarts(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests cover the stops a restart reads from the journal alone, as after a crash: the
    close saves no engine snapshot (a graceful restart's stops: test_adversarial_dec3d_restarts.py)."""
    monkeypatch.setattr(advanced_risk.manager, "_save_snapshot", lambda journal, engine: None)


BOOK = {"A": 0.5, "B": -0.3}
BEFORE = [(100.0 + i, 50.0 - i) for i in range(11)] + [(109.0, 41.0), (108.0, 42.0)]
STOPS = {"A": 106.0, "B": 44.0}
EQUITY = 100_000.0


def _config(path: Path) -> Any:
    return fast_config(
        state_path=str(path),
        sizing={"atr_period": 3},
        loss_streak=1000,
        var_breach_streak=None,
        reduce_on_correlation_shock=False,
    )


def _bar(prices: dict[str, float], weights: dict[str, float] | None = None) -> tuple[dict[str, Any], ...]:
    market = {
        "prices": prices,
        "high": {a: p + 1.0 for a, p in prices.items()},
        "low": {a: p - 1.0 for a, p in prices.items()},
    }
    return market, {"weights": dict(weights if weights is not None else BOOK), "equity": EQUITY}


def _no_prices(kind: str) -> tuple[dict[str, Any], dict[str, Any]]:
    market: dict[str, Any] = (
        {"volatility": 0.2} if kind == "volatility" else {"returns": {"A": 0.0, "B": 0.0}}
    )
    return market, {"weights": dict(BOOK), "equity": EQUITY}


def _pairs(path: list[tuple[float, float]]) -> Iterator[tuple[dict[str, Any], ...]]:
    for a, b in path:
        yield _bar({"A": a, "B": b})


def _as_journalled(risk: AdvancedRiskManager, decision: RiskDecision) -> None:
    """The row journalled for ``decision`` is the decision returned."""
    row = risk.read_decision(decision.decision_id)
    assert row is not None
    assert row == json.loads(decision.to_json())


def _run(path: Path, bars: Any) -> list[RiskDecision]:
    risk = AdvancedRiskManager(_config(path))
    try:
        out = [risk.manage_risk_sync(*bar) for bar in bars]
        for d in out:
            _as_journalled(risk, d)
        return out
    finally:
        risk.close_sync()


@pytest.fixture
def path(tmp_path: Path) -> Path:
    db = tmp_path / "risk.db"
    assert _run(db, _pairs(BEFORE))[-1].stop_levels == STOPS
    return db


@pytest.mark.parametrize("kind", ["volatility", "returns"])
def test_a_bar_without_prices_right_after_a_restart_reports_the_restored_stops(path: Path, kind: str) -> None:
    """Failed before the fix: the decision said {} and journalled {}, so a second restart lost them."""
    first = _run(path, [_no_prices(kind)])
    assert first[0].stop_levels == STOPS
    assert not first[0].degraded
    again = _run(path, _pairs([(108.0, 42.0)]))  # a second restart restores them still
    assert again[0].stop_levels == STOPS


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", ["volatility", "returns"])
async def test_a_bar_without_prices_right_after_a_restart_reports_the_restored_stops_async(
    path: Path, kind: str
) -> None:
    async with AdvancedRiskManager(_config(path)) as risk:
        first = await risk.manage_risk(*_no_prices(kind))
        assert first.stop_levels == STOPS
        _as_journalled(risk, first)
    async with AdvancedRiskManager(_config(path)) as risk:
        again = await risk.manage_risk(*_bar({"A": 108.0, "B": 42.0}))
        assert again.stop_levels == STOPS
        _as_journalled(risk, again)


def test_restored_stops_then_trail_exactly_as_without_the_bar_without_prices(path: Path) -> None:
    """Bars without prices in between change nothing of the restored stops' trailing."""
    after = [(108.0, 42.0)] * 4 + [(109.0, 41.0), (110.0, 40.0), (111.0, 39.0)]
    bars = [_no_prices("volatility"), *_pairs(after[:2]), _no_prices("returns"), *_pairs(after[2:])]
    got = [d.stop_levels for d in _run(path, bars)]
    assert got == [STOPS] * 8 + [{"A": 107.0, "B": 43.0}]


def test_a_refused_first_bar_after_a_restart_changes_nothing(path: Path) -> None:
    """A refused bar (close outside [low, high], trend alone) keeps the restored stops pending."""
    risk = AdvancedRiskManager(_config(path))
    try:
        bad = ({"prices": {"A": 108.0, "B": 42.0}, "high": {"A": 107.0, "B": 43.0}}, dict(BOOK))
        with pytest.raises(InvalidInputError):
            risk.manage_risk_sync(bad[0], {"weights": bad[1], "equity": EQUITY})
        with pytest.raises(InvalidInputError, match="returns, prices or volatility"):
            risk.manage_risk_sync({"trend": 0.1}, {"weights": dict(BOOK), "equity": EQUITY})
        first = risk.manage_risk_sync(*_bar({"A": 108.0, "B": 42.0}))
        assert first.stop_levels == STOPS
        _as_journalled(risk, first)
    finally:
        risk.close_sync()


def test_an_empty_bar_is_refused_after_prices_too(path: Path) -> None:
    """02f7b28: every bar needs returns, prices or volatility, also once prices have been seen."""
    risk = AdvancedRiskManager(_config(path))
    try:
        risk.manage_risk_sync(*_bar({"A": 108.0, "B": 42.0}))
        for market in ({"trend": 0.2}, {"returns": {}}, {"prices": {}}, {"returns": {}, "prices": {}}):
            with pytest.raises(InvalidInputError):
                risk.manage_risk_sync(market, {"weights": dict(BOOK), "equity": EQUITY})
        assert risk.manage_risk_sync(*_no_prices("volatility")).stop_levels == STOPS
    finally:
        risk.close_sync()


def test_a_degraded_first_bar_after_a_restart_keeps_and_journals_the_stops(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An ATR fault on the first priced bar: degraded, still the restored stops, journalled so."""
    real = StreamingATR.update

    def failing(self: StreamingATR, *args: Any) -> Any:
        raise RuntimeError("atr glitch")

    risk = AdvancedRiskManager(_config(path))
    try:
        risk._open_sync()  # no public sync open: the first call would open (and warm up) inside it
        monkeypatch.setattr(StreamingATR, "update", failing)  # after open's warm-up
        first = risk.manage_risk_sync(*_bar({"A": 108.0, "B": 42.0}))
        monkeypatch.setattr(StreamingATR, "update", real)
        assert first.degraded
        assert first.stop_levels == STOPS
        _as_journalled(risk, first)
    finally:
        risk.close_sync()
    assert _run(path, _pairs([(108.0, 42.0)]))[0].stop_levels == STOPS


@pytest.mark.asyncio
async def test_operator_rows_after_the_last_decision_do_not_hide_its_stops(path: Path) -> None:
    """Kill switch, resume and a peak reset journalled after the last decision: stops restored."""
    async with AdvancedRiskManager(_config(path)) as risk:
        await risk.engage_kill_switch("desk check")
        await risk.resume("checked")
        await risk.reset_peak(EQUITY, "capital change")
    async with AdvancedRiskManager(_config(path)) as risk:
        first = await risk.manage_risk(*_bar({"A": 108.0, "B": 42.0}))
        assert first.stop_levels == STOPS
        _as_journalled(risk, first)


def test_a_side_flip_right_after_a_restart_drops_that_stop(path: Path) -> None:
    """B turns long at the first bar: its short's stop no longer protects it (regression of 3 bars)."""
    flipped = {"A": 0.5, "B": 0.3}
    got = _run(path, [_bar({"A": 108.0, "B": 42.0}, flipped) for _ in range(4)])
    assert [d.stop_levels for d in got[:3]] == [{"A": 106.0}] * 3
    assert got[3].stop_levels == {"A": 106.0, "B": 42.0 - 4.0}  # a long's, from its own ATR


def test_a_stop_of_an_asset_that_left_is_not_restored_twice(path: Path) -> None:
    """B closed and left before the first priced bar: its stop is gone, also after another restart."""
    first = _run(path, [_bar({"A": 108.0}, {"A": 0.5, "B": 0.0})])
    assert first[0].stop_levels == {"A": 106.0}
    again = _run(path, _pairs([(108.0, 42.0)]))
    assert again[0].stop_levels == {"A": 106.0}


def test_one_asset_restart(tmp_path: Path) -> None:
    """A book of one asset restores its one stop."""
    db = tmp_path / "one.db"
    before = _run(db, [_bar({"A": 100.0 + i}, {"A": 1.0}) for i in range(8)])
    stop = before[-1].stop_levels
    assert stop == {"A": 107.0 - 4.0}
    no_prices = ({"volatility": 0.2}, {"weights": {"A": 1.0}, "equity": EQUITY})
    assert _run(db, [no_prices])[0].stop_levels == stop
    assert _run(db, [_bar({"A": 107.0}, {"A": 1.0})])[0].stop_levels == stop


def test_a_thousand_asset_restart(tmp_path: Path) -> None:
    """1,000 assets: every stop restored by name, in a bar whose assets come in another order."""
    names = [f"S{i:04d}" for i in range(1000)]
    db = tmp_path / "wide.db"
    weights = {a: (0.0005 if i % 2 else -0.0005) for i, a in enumerate(names)}

    def wide(level: float, order: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
        prices = {a: level + i % 7 for i, a in enumerate(names)}
        ordered = {a: prices[a] for a in order}
        return _bar(ordered, weights)

    before = _run(db, [wide(100.0 + i, names) for i in range(5)])
    stops = before[-1].stop_levels
    assert len(stops) == 1000
    after = _run(db, [wide(104.0, names[::-1])])
    assert after[0].stop_levels == stops


STEP = st.tuples(
    st.sampled_from(["priced", "priced", "priced", "volatility", "returns", "restart"]),
    st.integers(-1, 1),  # price move
    st.sampled_from([0.5, -0.5, 0.0]),  # A's weight: long, short, flat (side flips)
)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(STEP, min_size=1, max_size=25))
def test_hypothesis_restarts_keep_the_stops_and_journal_what_is_returned(
    tmp_path_factory: pytest.TempPathFactory, steps: list[tuple[str, int, float]]
) -> None:
    """Random bars, side flips and restarts: every decision is journalled as returned, and the first
    decision after a restart reports the last one's stops when its bar has no prices."""
    db = tmp_path_factory.mktemp("hyp") / "risk.db"
    risk = AdvancedRiskManager(_config(db))
    price, last, fresh = 100.0, None, False
    try:
        for kind, move, weight in steps:
            book = {"A": weight, "B": -0.3}
            if kind == "restart":
                risk.close_sync()
                risk = AdvancedRiskManager(_config(db))
                fresh = True
                continue
            if kind == "priced":
                price += move
                bar = _bar({"A": price, "B": 42.0}, book)
            else:
                bar = (_no_prices(kind)[0], {"weights": book, "equity": EQUITY})
            decision = risk.manage_risk_sync(*bar)
            _as_journalled(risk, decision)
            if fresh and kind != "priced" and last is not None:
                assert decision.stop_levels == last.stop_levels
            if fresh and kind == "priced" and last is not None:
                for asset, level in decision.stop_levels.items():
                    assert last.stop_levels.get(asset) == level  # restored or dropped, never made up
            fresh = fresh and kind != "priced"
            last = decision
    finally:
        risk.close_sync()


def test_a_restored_stop_does_not_come_back_with_an_asset_that_left_and_rejoined(path: Path) -> None:
    """After the restart B is closed, then leaves on a bar without prices, then comes back on the
    first priced bar as a new short: it starts bare (no stop until its own ATR is warm), not with
    the stop of the position closed before it left."""
    book = {"weights": {"A": 0.5, "B": 0.0}, "equity": EQUITY}
    closed = ({"returns": {"A": 0.0, "B": 0.0}}, book)
    left = ({"returns": {"A": 0.0}}, {"weights": {"A": 0.5}, "equity": EQUITY})
    got = _run(path, [closed, left, _bar({"A": 108.0, "B": 42.0}, {"A": 0.5, "B": -0.3})])
    assert got[0].stop_levels == STOPS  # still restored: B is in the bar
    assert got[1].stop_levels == {"A": 106.0}
    assert got[2].stop_levels == {"A": 106.0}
