"""Protective stops survive a restart: the first decision after it reports the last one's stops.

The bars have ``high = close + 1`` and ``low = close - 1`` and closes that move by at most 1 a bar,
so every true range is 2, the ATR is 2 and a stop stands ``atr_multiplier * 2 = 4`` from the close
it was set at (by hand: no reference implementation needed). ``atr_period=3``: an engine's ATR is
ready at its 4th bar (the first bar has no previous close, so no true range).

Before the restart A (long) rises 100 -> 110 and falls back to 108: its stop rises from 99 to 106
and stays there; B (short) falls 50 -> 40 and rises back to 42: its stop falls from 51 to 44.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

import advanced_risk.manager
from advanced_risk.engine.state import StateStore
from advanced_risk.errors import StateStoreError
from advanced_risk.manager import AdvancedRiskManager
from advanced_risk.types import RiskDecision

from .conftest import fast_config


@pytest.fixture(autouse=True)
def _crash_restarts(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests cover the stops a restart reads from the journal alone, as after a crash: the
    close saves no engine snapshot (a graceful restart's stops: test_adversarial_dec3d_restarts.py)."""
    monkeypatch.setattr(advanced_risk.manager, "_save_snapshot", lambda journal, engine: None)


BOOK = {"A": 0.5, "B": -0.3}
BEFORE = [(100.0 + i, 50.0 - i) for i in range(11)] + [(109.0, 41.0), (108.0, 42.0)]
STOPS_BEFORE = {"A": 106.0, "B": 44.0}  # A: 110 - 4, B: 40 + 4 (neither loosened since)


def _config(state_path: Path | None) -> Any:
    return fast_config(
        state_path=None if state_path is None else str(state_path),
        sizing={"atr_period": 3},
        loss_streak=1000,
        var_breach_streak=None,
        reduce_on_correlation_shock=False,
    )


def _bar(
    prices: dict[str, float], weights: dict[str, float] | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    market = {
        "prices": prices,
        "high": {a: p + 1.0 for a, p in prices.items()},
        "low": {a: p - 1.0 for a, p in prices.items()},
    }
    book = {a: w for a, w in (weights or BOOK).items() if a in prices}
    return market, {"weights": book, "equity": 100_000.0}


def _pairs(path: Sequence[tuple[float, float]]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    for a, b in path:
        yield _bar({"A": a, "B": b})


def _run_sync(config: Any, bars: Iterator[tuple[dict[str, Any], dict[str, Any]]]) -> list[RiskDecision]:
    risk = AdvancedRiskManager(config)
    try:
        return [risk.manage_risk_sync(*bar) for bar in bars]
    finally:
        risk.close_sync()


async def _run_async(
    config: Any, bars: Iterator[tuple[dict[str, Any], dict[str, Any]]]
) -> list[RiskDecision]:
    async with AdvancedRiskManager(config) as risk:
        return [await risk.manage_risk(*bar) for bar in bars]


def _before(tmp_path: Path) -> Path:
    path = tmp_path / "risk.db"
    decisions = _run_sync(_config(path), _pairs(BEFORE))
    assert decisions[-1].stop_levels == STOPS_BEFORE
    return path


def test_the_first_decision_after_a_restart_has_the_last_stops_sync(tmp_path: Path) -> None:
    path = _before(tmp_path)
    risk = AdvancedRiskManager(_config(path))
    try:
        first = risk.manage_risk_sync(*_bar({"A": 108.0, "B": 42.0}))
        assert first.stop_levels == STOPS_BEFORE
        assert first.position_sizes == {}  # sizes still wait for the ATR
        assert not first.degraded
        journalled = risk.read_decision(first.decision_id)
        assert journalled is not None
        assert journalled["stop_levels"] == STOPS_BEFORE  # the decision returned is the one journalled
    finally:
        risk.close_sync()


@pytest.mark.asyncio
async def test_the_first_decision_after_a_restart_has_the_last_stops_async(tmp_path: Path) -> None:
    path = tmp_path / "risk.db"
    before = await _run_async(_config(path), _pairs(BEFORE))
    assert before[-1].stop_levels == STOPS_BEFORE
    async with AdvancedRiskManager(_config(path)) as risk:
        first = await risk.manage_risk(*_bar({"A": 108.0, "B": 42.0}))
        assert first.stop_levels == before[-1].stop_levels
        journalled = risk.read_decision(first.decision_id)
        assert journalled is not None
        assert journalled["stop_levels"] == STOPS_BEFORE


AFTER = [(108.0, 42.0)] * 4 + [(109.0, 41.0), (110.0, 40.0), (111.0, 39.0)]
# bars 1-3: restored, unchanged; bar 4 (ATR ready): candidates 104 / 46 are looser, the stops hold;
# then A's stop rises only once 111 - 4 passes 106, B's falls only once 39 + 4 passes 44
STOPS_AFTER = [STOPS_BEFORE] * 6 + [{"A": 107.0, "B": 43.0}]


def test_restored_stops_trail_on_from_the_restored_level(tmp_path: Path) -> None:
    path = _before(tmp_path)
    after = _run_sync(_config(path), _pairs(AFTER))
    assert [d.stop_levels for d in after] == STOPS_AFTER
    assert [bool(d.position_sizes) for d in after] == [False] * 3 + [True] * 4
    # exactly the stops of a process that never restarted (the ATR is 2 throughout, both ways)
    uninterrupted = _run_sync(_config(None), _pairs(BEFORE + AFTER))
    assert [d.stop_levels for d in uninterrupted[len(BEFORE) :]] == STOPS_AFTER


def test_a_stop_traded_through_during_the_warm_up_is_dropped_then_restarts_from_the_close(
    tmp_path: Path,
) -> None:
    path = _before(tmp_path)
    after = _run_sync(_config(path), _pairs([(108.0, 42.0), (105.5, 44.5), (105.5, 44.5), (105.5, 44.5)]))
    assert after[0].stop_levels == STOPS_BEFORE
    assert after[1].stop_levels == {}  # A closed below its long stop, B above its short stop
    assert after[2].stop_levels == {}
    # ATR at bar 4: true ranges 3.5 (the gap), 2, 2 -> 2.5; the stops restart 2 * 2.5 from the close
    assert after[3].stop_levels == {"A": 105.5 - 5.0, "B": 44.5 + 5.0}


def test_a_restored_stop_on_the_other_side_of_the_position_is_dropped(tmp_path: Path) -> None:
    path = _before(tmp_path)
    flipped = {"A": -0.5, "B": -0.3}
    bars = [_bar({"A": 108.0, "B": 42.0}), *(_bar({"A": 108.0, "B": 42.0}, flipped) for _ in range(3))]
    after = _run_sync(_config(path), iter(bars))
    assert after[0].stop_levels == STOPS_BEFORE
    assert after[1].stop_levels == {"B": 44.0}  # A is now a short: a long's stop no longer protects it
    assert after[2].stop_levels == {"B": 44.0}
    assert after[3].stop_levels == {"A": 108.0 + 4.0, "B": 44.0}


def test_an_asset_absent_from_the_first_bar_after_a_restart_gets_no_stop(tmp_path: Path) -> None:
    path = _before(tmp_path)
    bars = [_bar({"A": 108.0}), *(_bar({"A": 108.0, "B": 42.0}) for _ in range(4))]
    after = _run_sync(_config(path), iter(bars))
    assert [d.stop_levels for d in after[:4]] == [{"A": 106.0}] * 4
    assert after[4].stop_levels == {"A": 106.0, "B": 42.0 + 4.0}  # B's own ATR is ready: from its close


@pytest.mark.parametrize(
    "payload",
    [
        "{not json",
        "[1, 2]",
        '{"leverage": 0.5}',
        '{"stop_levels": [106.0]}',
        '{"stop_levels": {"A": null, "B": 44.0}}',
        '{"stop_levels": {"A": "106", "B": 44.0}}',
        '{"stop_levels": {"A": -1.0, "B": 44.0}}',
        '{"stop_levels": {"A": true}}',
        '{"stop_levels": {"A": 1e999}}',
    ],
)
def test_a_malformed_last_row_restores_no_stops_and_still_decides(tmp_path: Path, payload: str) -> None:
    path = _before(tmp_path)
    with StateStore(path) as store:
        store.append_decision("written-by-hand", payload)
    with capture_logs() as events:
        after = _run_sync(_config(path), _pairs(AFTER[:4]))
    assert [d.stop_levels for d in after] == [{}] * 3 + [{"A": 104.0, "B": 46.0}]  # as without a file
    assert not any(d.degraded for d in after)
    warned = [e for e in events if e["event"] == "stops_not_restored"]
    assert len(warned) == 1
    assert warned[0]["decision_id"] == "written-by-hand"


def test_operator_rows_after_the_last_decision_are_skipped(tmp_path: Path) -> None:
    path = _before(tmp_path)
    with StateStore(path) as store:
        store.append_decision("note-1", {"event": "note", "reason": "desk check"})
        assert store.last_stops() == STOPS_BEFORE
    after = _run_sync(_config(path), _pairs(AFTER[:1]))
    assert after[0].stop_levels == STOPS_BEFORE


def test_an_unreadable_journal_restores_no_stops_and_still_decides(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _before(tmp_path)

    def failing(self: StateStore) -> dict[str, float]:
        raise StateStoreError("last_stops failed: disk I/O error")

    monkeypatch.setattr(StateStore, "last_stops", failing)
    with capture_logs() as events:
        after = _run_sync(_config(path), _pairs(AFTER[:1]))
    assert after[0].stop_levels == {}
    assert not after[0].degraded
    assert any(e["event"] == "stops_not_restored" for e in events)


def test_an_empty_journal_restores_nothing(tmp_path: Path) -> None:
    path = tmp_path / "fresh.db"
    with StateStore(path) as store:
        assert store.last_stops() == {}
    after = _run_sync(_config(path), _pairs(AFTER[:4]))
    assert [d.stop_levels for d in after] == [{}] * 3 + [{"A": 104.0, "B": 46.0}]


@pytest.mark.asyncio
async def test_memory_state_restores_no_stops(tmp_path: Path) -> None:
    config = _config(None)
    risk = AdvancedRiskManager(config)
    async with risk:
        before = [await risk.manage_risk(*bar) for bar in _pairs(BEFORE)]
    assert before[-1].stop_levels == STOPS_BEFORE
    async with risk:  # reopened: a new in-memory store, nothing carried over
        after = [await risk.manage_risk(*bar) for bar in _pairs(AFTER[:4])]
    assert [d.stop_levels for d in after] == [{}] * 3 + [{"A": 104.0, "B": 46.0}]
    assert [d.position_sizes for d in after[:3]] == [{}] * 3
