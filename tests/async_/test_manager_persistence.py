"""Safety state survives a restart (issue 5): HALTED, its reason, the kill switch and peak equity."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from advanced_risk.engine.state import StateStore
from advanced_risk.errors import InvalidInputError
from advanced_risk.manager import AdvancedRiskManager
from advanced_risk.types import RiskDecision, StateChange, TradingState

from .conftest import ASSETS, fast_config

PEAK = 120_000.0


def _bar(equity: float) -> tuple[dict[str, Any], dict[str, Any]]:
    market = {"returns": dict.fromkeys(ASSETS, 0.001), "prices": dict.fromkeys(ASSETS, 100.0)}
    return market, {"weights": dict.fromkeys(ASSETS, 0.2), "equity": equity}


def _assert_adds_no_risk(decision: RiskDecision) -> None:
    assert decision.trading_state is TradingState.HALTED
    assert decision.rebalance_weights["cash"] == pytest.approx(1.0)
    assert all(decision.rebalance_weights[a] == 0.0 for a in ASSETS)
    assert decision.leverage == 0.0
    assert decision.hedge.active
    assert decision.hedge.ratio == pytest.approx(1.0)
    assert all(size == 0.0 for size in decision.position_sizes.values())


async def _drive_to_halt(risk: AdvancedRiskManager) -> list[RiskDecision]:
    decisions = [await risk.manage_risk(*_bar(e)) for e in (100_000.0, PEAK, 110_000.0)]
    for _ in range(risk.config.halt_confirmations):  # 25 % below the peak, past halt_drawdown (15 %)
        decisions.append(await risk.manage_risk(*_bar(0.75 * PEAK)))
    return decisions


@pytest.mark.asyncio
async def test_halted_and_peak_equity_survive_a_restart_and_resume_needs_no_restart(tmp_path: Path) -> None:
    config = fast_config(
        state_path=str(tmp_path / "risk.db"), halt_confirmations=2, reduce_drawdown=0.08, halt_drawdown=0.15
    )
    async with AdvancedRiskManager(config) as risk:
        decisions = await _drive_to_halt(risk)
        assert decisions[-2].trading_state is TradingState.REDUCING  # the halt is pending confirmation
        assert risk.trading_state == "halted"
        assert any("trading state reducing -> halted" in a for a in decisions[-1].alerts)
        _assert_adds_no_risk(decisions[-1])
    async with AdvancedRiskManager(config) as restarted:
        assert restarted.trading_state == "halted"
        assert restarted._engine is not None
        assert restarted._engine.peak_equity == PEAK
        assert "drawdown" in restarted._engine.machine.reason
        decision = await restarted.manage_risk(*_bar(0.99 * PEAK))  # a recovered bar does not un-halt
        _assert_adds_no_risk(decision)
        with pytest.raises(InvalidInputError):
            await restarted.resume("")  # a resume needs a reason
        assert restarted.trading_state == "halted"
        assert await restarted.resume("drawdown reviewed by the desk") == StateChange(True, True)
        assert restarted.trading_state == "active"
        assert await restarted.resume("again") == StateChange(False, True)
        decision = await restarted.manage_risk(*_bar(0.99 * PEAK))
        assert decision.trading_state is TradingState.ACTIVE
        assert decision.leverage > 0.0
    async with AdvancedRiskManager(config) as again:
        assert again.trading_state == "active"
        assert again._engine is not None
        assert again._engine.peak_equity == PEAK
        assert "resumed: drawdown reviewed by the desk" in again._engine.machine.reason


@pytest.mark.asyncio
async def test_the_kill_switch_halts_at_once_and_survives_a_restart(tmp_path: Path) -> None:
    config = fast_config(state_path=str(tmp_path / "risk.db"))
    async with AdvancedRiskManager(config) as risk:
        await risk.manage_risk(*_bar(PEAK))
        assert await risk.engage_kill_switch("exchange outage") == StateChange(True, True)
        assert risk.trading_state == "halted"
        _assert_adds_no_risk(await risk.manage_risk(*_bar(PEAK)))
    with StateStore(config.state_path) as store:  # written before engage_kill_switch returned
        state = store.load()
    assert state.kill_switch
    assert state.trading_state is TradingState.HALTED
    assert "exchange outage" in state.reason
    assert state.peak_equity == PEAK
    async with AdvancedRiskManager(config) as restarted:
        assert restarted.trading_state == "halted"
        assert restarted._engine is not None
        assert restarted._engine.machine.kill_switch
        assert await restarted.resume("venue back") == StateChange(True, True)
    with StateStore(config.state_path) as store:
        state = store.load()
    assert not state.kill_switch
    assert state.trading_state is TradingState.ACTIVE


@pytest.mark.asyncio
async def test_a_lazily_opened_manager_restores_the_state_on_its_first_call(tmp_path: Path) -> None:
    config = fast_config(state_path=str(tmp_path / "risk.db"))
    first = AdvancedRiskManager(config)
    await first.engage_kill_switch("manual")
    await first.close()
    lazy = AdvancedRiskManager(config)  # no async with, no open
    _assert_adds_no_risk(await lazy.manage_risk(*_bar(PEAK)))
    await lazy.close()


def test_the_sync_twin_persists_the_halt_too(tmp_path: Path) -> None:
    config = fast_config(state_path=str(tmp_path / "risk.db"), halt_confirmations=1)
    risk = AdvancedRiskManager(config)
    try:
        risk.manage_risk_sync(*_bar(PEAK))
        decision = risk.manage_risk_sync(*_bar(0.5 * PEAK))
        _assert_adds_no_risk(decision)
    finally:
        risk.close_sync()
    with StateStore(config.state_path) as store:
        state = store.load()
        assert store.get_decision(decision.decision_id) is not None
    assert state.trading_state is TradingState.HALTED
    assert state.peak_equity == PEAK
