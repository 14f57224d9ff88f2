"""A restart rebuilds the ``drawdown_window`` high-water mark from the journal's equity
(``StateStore.recent_equity``), so it measures drawdowns as the running manager did; with fewer
journaled bars than the window, or none, the restored peak goes in first (the cautious reading)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from advanced_risk import AdvancedRiskManager, MarketState, Portfolio, RiskConfig
from advanced_risk.engine.state import StateStore

MARKET = MarketState(returns={"A": 0.0, "B": 0.0}, prices={"A": 100.0, "B": 50.0})


def _book(equity: float) -> Portfolio:
    return Portfolio(weights={"A": 0.5, "B": 0.2}, equity=equity)


def _config(path: Path, window: int | None = 10) -> RiskConfig:
    return RiskConfig(state_path=str(path), deadline_ms=2_000.0, drawdown_window=window, loss_streak=10_000)


def _run(config: RiskConfig, equities: list[float]) -> float:
    """Decide one bar per equity and return the last decision's drawdown (closes the manager)."""
    risk = AdvancedRiskManager(config)
    try:
        for equity in equities:
            drawdown = risk.manage_risk_sync(MARKET, _book(equity)).drawdown
    finally:
        risk.close_sync()
    return drawdown


def test_recent_equity_reads_the_newest_decisions_oldest_first(tmp_path: Path) -> None:
    with StateStore(tmp_path / "s.db") as store:
        for i, equity in enumerate([1.0, 2.0, None, 3.0, 4.0]):
            store.append_decision(f"d{i}", {"equity": equity, "stop_levels": {}})
        store.append_decision("e0", json.dumps({"event": "kill_switch", "equity": 99.0}))
        store.append_decision("d9", "not json")
        assert store.recent_equity(3) == [2.0, 3.0, 4.0]
        assert store.recent_equity(100) == [1.0, 2.0, 3.0, 4.0]


def test_recent_equity_starts_at_the_newest_reset_peak(tmp_path: Path) -> None:
    with StateStore(tmp_path / "s.db") as store:
        for i, equity in enumerate([10.0, 9.0]):
            store.append_decision(f"a{i}", {"equity": equity})
        store.append_decision("r", json.dumps({"event": "reset_peak", "previous": 10.0, "peak_equity": 5.0}))
        store.append_decision("b0", {"equity": 4.9})
        assert store.recent_equity(10) == [5.0, 4.9]


def test_a_restart_measures_from_the_window_not_the_all_time_peak(tmp_path: Path) -> None:
    equities = [1e6 * 0.99**i for i in range(1, 41)]  # -1 % a bar, then one flat bar
    running = _run(_config(tmp_path / "running.db"), [*equities, equities[-1]])
    _run(_config(tmp_path / "restarted.db"), equities)
    restarted = _run(_config(tmp_path / "restarted.db"), [equities[-1]])
    # the 10-bar window of the flat bar holds the equities of bars 32-40 and the flat bar's
    assert running == pytest.approx(1.0 - 0.99**8)
    assert restarted == running  # not 1 - 0.99**40 (~33 %) from the all-time peak


def test_a_journal_shorter_than_the_window_keeps_the_stored_peak(tmp_path: Path) -> None:
    path = tmp_path / "risk.db"
    _run(_config(path, window=100), [1e6, 5e5])  # 2 journaled bars, a window of 100: the peak counts
    assert _run(_config(path, window=100), [5e5]) == pytest.approx(0.5)


def test_a_withdrawal_before_the_restart_is_not_measured_as_a_drawdown(tmp_path: Path) -> None:
    path = tmp_path / "risk.db"

    async def before() -> None:
        async with AdvancedRiskManager(_config(path)) as risk:
            for equity in (1e6, 1e6):
                await risk.manage_risk(MARKET, _book(equity))
            await risk.reset_peak(5e5, "withdrawal")
            await risk.manage_risk(MARKET, _book(5e5))

    asyncio.run(before())
    assert _run(_config(path), [4.9e5]) == pytest.approx(0.02)


def test_an_unreadable_journal_falls_back_to_the_peak(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "risk.db"
    _run(_config(path), [1e6 * 0.99**i for i in range(1, 41)])

    def failing(self: StateStore, bars: int) -> list[float]:
        raise OSError("disk I/O error")

    monkeypatch.setattr(StateStore, "recent_equity", failing)
    assert _run(_config(path), [1e6 * 0.99**40]) == pytest.approx(1.0 - 0.99**39)
