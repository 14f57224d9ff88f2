"""A restart while REDUCING caps the positions as the run before it did: the size each position had
when REDUCING began is rebuilt from the last journaled weights, so a bot that passes back what it
holds is not halved again by the restart (docs/embedding.md: "the book is halved once")."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from advanced_risk import AdvancedRiskManager, MarketState, Portfolio, RiskConfig
from advanced_risk.data import load_sp500_stocks
from advanced_risk.engine.state import StateStore
from advanced_risk.errors import StateStoreError
from advanced_risk.types import RiskDecision, TradingState

ASSETS = ("AAPL", "XOM")
START = {"AAPL": 0.6, "XOM": -0.4}
REDUCE_AT, RESTART_AT, BARS = 30, 36, 42


def _bars() -> list[MarketState]:
    closes = load_sp500_stocks()[list(ASSETS)].iloc[: BARS + 1]
    returns = closes.pct_change().iloc[1:]
    return [
        MarketState(returns=returns.loc[d].to_dict(), prices=closes.loc[d].to_dict()) for d in returns.index
    ]


def _book(t: int, last: RiskDecision | None) -> Portfolio:
    """The bot passes back the weights it holds (the last decision's); 0.26 drawdown from REDUCE_AT."""
    weights = START if last is None else {a: last.rebalance_weights[a] for a in ASSETS}
    return Portfolio(weights=weights, equity=1e6, current_drawdown=0.26 if t >= REDUCE_AT else 0.0)


def _config(path: Path) -> RiskConfig:
    return RiskConfig(state_path=str(path), drawdown_basis="equity", deadline_ms=5_000.0)


def _run_sync(path: Path, restart_at: int | None) -> list[RiskDecision]:
    out: list[RiskDecision] = []
    risk = AdvancedRiskManager(_config(path))
    for t, market in enumerate(_bars()):
        if t == restart_at:
            risk.close_sync()
            risk = AdvancedRiskManager(_config(path))
        out.append(risk.manage_risk_sync(market, _book(t, out[-1] if out else None)))
    risk.close_sync()
    return out


async def _run_async(path: Path, restart_at: int | None) -> list[RiskDecision]:
    out: list[RiskDecision] = []
    risk = AdvancedRiskManager(_config(path))
    for t, market in enumerate(_bars()):
        if t == restart_at:
            await risk.close()
            risk = AdvancedRiskManager(_config(path))
        out.append(await risk.manage_risk(market, _book(t, out[-1] if out else None)))
    await risk.close()
    return out


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_restart_while_reducing_does_not_halve_the_book_again(tmp_path: Path, mode: str) -> None:
    def run(name: str, restart_at: int | None) -> list[RiskDecision]:
        if mode == "sync":
            return _run_sync(tmp_path / name, restart_at)
        return asyncio.run(_run_async(tmp_path / name, restart_at))

    straight, restarted = run("straight.db", None), run("restarted.db", RESTART_AT)
    assert all(d.trading_state is TradingState.REDUCING for d in straight[REDUCE_AT:])
    for t in range(REDUCE_AT, BARS):
        for a in ASSETS:  # half the book held when REDUCING began, on both sides, before and after
            assert straight[t].rebalance_weights[a] == pytest.approx(0.5 * START[a], abs=1e-12), (t, a)
            assert restarted[t].rebalance_weights[a] == straight[t].rebalance_weights[a], (t, a)
        assert restarted[t].trading_state is TradingState.REDUCING


def test_last_weights_reads_the_newest_decision_without_cash(tmp_path: Path) -> None:
    path = tmp_path / "risk.db"
    _run_sync(path, None)
    store = StateStore(str(path), read_only=True)
    try:
        assert store.last_weights() == pytest.approx({a: 0.5 * START[a] for a in ASSETS}, abs=1e-12)
    finally:
        store.close()


def test_last_weights_of_an_empty_or_garbled_journal(tmp_path: Path) -> None:
    store = StateStore(str(tmp_path / "empty.db"))
    try:
        assert store.last_weights() == {}
    finally:
        store.close()


def test_an_unreadable_journal_restores_no_cap_and_still_decides(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The journal fails when a restart reads the last weights and leverage: the manager opens and
    decides (not degraded), REDUCING caps from the first bar's book, and each failure is logged."""
    path = tmp_path / "risk.db"
    before = _run_sync(path, None)
    assert before[-1].trading_state is TradingState.REDUCING

    def failing(self: StateStore) -> None:
        raise StateStoreError("disk I/O error")

    monkeypatch.setattr(StateStore, "last_weights", failing)
    monkeypatch.setattr(StateStore, "last_leverage", failing)
    risk = AdvancedRiskManager(_config(path))
    try:
        with capture_logs() as events:
            decision = risk.manage_risk_sync(_bars()[0], _book(BARS, before[-1]))
    finally:
        risk.close_sync()
    assert not decision.degraded
    assert decision.trading_state is TradingState.REDUCING
    logged = {e["event"] for e in events}
    assert {"weights_not_restored", "leverage_not_restored"} <= logged
