"""The rules' counters survive a restart: ``RiskDecision.streaks`` is journalled and resumed.

A bot restarted between two bars on the same ``state_path`` must count a losing streak, a
VaR-breach streak and the halt confirmations on from where the running manager stood, so the halt
or the REDUCING they lead to comes on the same bar (docs/embedding.md, "What a restart keeps").
Each scenario is replayed straight through and with a restart before bar ``k``, on both entry
points; the property test draws the returns and the restart bar.
"""

from __future__ import annotations

import asyncio
import json
import math
import sqlite3
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from advanced_risk.config import RiskConfig
from advanced_risk.engine.state import STREAKS, StateStore
from advanced_risk.errors import InvalidInputError
from advanced_risk.manager import AdvancedRiskManager
from advanced_risk.risk.rules import RiskObservation, TradingStateMachine
from advanced_risk.types import (
    CorrelationState,
    HedgeInstruction,
    MarketState,
    Portfolio,
    RiskDecision,
    RiskLevel,
    TradingState,
)

ENTRIES = ("sync", "async")
BOOK = {"A": 0.6, "B": -0.4}  # a long and a short: the held book's sign matters

# leverage at its cap whatever the tracker says, no correlation-shock rule: what a restart may
# change is then the counters alone
BASE: dict[str, Any] = {
    "deadline_ms": 10_000.0,
    "deterministic_refits": True,
    "leverage": {"target_volatility": 100.0, "shock_factor": 1.0},
    "reduce_on_correlation_shock": False,
}


def _bars(returns: np.ndarray) -> list[MarketState]:
    prices = 100.0 * np.cumprod(1.0 + returns, axis=0)
    return [
        MarketState(returns={"A": float(r[0]), "B": float(r[1])}, prices={"A": float(p[0]), "B": float(p[1])})
        for r, p in zip(returns, prices, strict=True)
    ]


def _config(path: Path, **overrides: Any) -> RiskConfig:
    return RiskConfig(**{**BASE, "state_path": str(path), **overrides})


def _replay_sync(config: RiskConfig, bars: list[MarketState], restart_at: int | None) -> list[RiskDecision]:
    risk = AdvancedRiskManager(config)
    out = []
    try:
        for i, bar in enumerate(bars):
            if i == restart_at:
                risk.close_sync()
                risk = AdvancedRiskManager(config)
            out.append(risk.manage_risk_sync(bar, Portfolio(weights=BOOK)))
    finally:
        risk.close_sync()
    return out


async def _replay_async(
    config: RiskConfig, bars: list[MarketState], restart_at: int | None
) -> list[RiskDecision]:
    risk = AdvancedRiskManager(config)
    out = []
    try:
        for i, bar in enumerate(bars):
            if i == restart_at:
                await risk.close()
                risk = AdvancedRiskManager(config)
            out.append(await risk.manage_risk(bar, Portfolio(weights=BOOK)))
    finally:
        await risk.close()
    return out


def _both(
    tmp: Path, entry: str, bars: list[MarketState], k: int, **overrides: Any
) -> tuple[list[RiskDecision], list[RiskDecision]]:
    straight, restarted = _config(tmp / "straight.db", **overrides), _config(tmp / "restart.db", **overrides)
    if entry == "sync":
        return _replay_sync(straight, bars, None), _replay_sync(restarted, bars, k)
    return asyncio.run(_replay_async(straight, bars, None)), asyncio.run(_replay_async(restarted, bars, k))


def _calm_then(shock: list[tuple[float, float]], calm: int = 80, seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.vstack([rng.normal(0.0, 0.004, size=(calm, 2)), np.array(shock, dtype=np.float64)])


@pytest.mark.parametrize("entry", ENTRIES)
def test_var_breach_streak_resumes_and_reduces_on_the_same_bar(tmp_path: Path, entry: str) -> None:
    # the book (+0.6 A, -0.4 B) loses 0.9 x each shock, each beyond the worst bar before it: a
    # breach of the historical 99 % VaR every bar
    shock = [(-x, 0.75 * x) for x in (0.04, 0.06, 0.09, 0.13)]
    bars = _bars(_calm_then(shock))
    k = 82  # after the 2nd breach; the 3rd (var_breach_streak=3) REDUCES
    tracker = {"method": "historical", "window": 40}  # priced from bar 40 on
    straight, restarted = _both(
        tmp_path, entry, bars, k, var_breach_streak=3, loss_streak=1000, tracker=tracker
    )
    assert [d.streaks["var_breach"] for d in straight[80:84]] == [1, 2, 3, 4]
    assert straight[k].trading_state is TradingState.REDUCING
    assert straight[k - 1].trading_state is TradingState.ACTIVE
    assert restarted[k].streaks == straight[k].streaks
    assert restarted[k].trading_state is TradingState.REDUCING, restarted[k].alerts


@pytest.mark.parametrize("entry", ENTRIES)
def test_streaks_are_journalled_as_returned(tmp_path: Path, entry: str) -> None:
    bars = _bars(_calm_then([(-0.01, 0.01)] * 3, calm=10))
    config = _config(tmp_path / "s.db", loss_streak=1000)
    replay = _replay_sync if entry == "sync" else lambda *a: asyncio.run(_replay_async(*a))
    decisions = replay(config, bars, None)
    assert decisions[-1].streaks == {"loss": 3, "var_breach": 0, "halt_votes": 0}
    with StateStore(tmp_path / "s.db") as store:
        rows = {e.decision_id: e.payload["streaks"] for e in store.journal(limit=100)}
        assert store.last_streaks() == decisions[-1].streaks
    assert all(rows[d.decision_id] == d.streaks for d in decisions)
    assert set(decisions[0].streaks) == set(STREAKS)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.integers(0, 2**31 - 1),
    drift=st.floats(-0.006, 0.0),
    k=st.integers(2, 38),
)
def test_restart_anywhere_keeps_the_loss_streak_and_halt_votes(
    tmp_path_factory: pytest.TempPathFactory, seed: int, drift: float, k: int
) -> None:
    """Losing streaks (loss_streak=4) and halt confirmations (2) on drawn returns: the restarted
    run's counters and trading state equal the straight run's on every bar from the restart on."""
    tmp = tmp_path_factory.mktemp("p")
    rng = np.random.default_rng(seed)
    returns = rng.normal(0.0, 0.01, size=(40, 2)) + np.array([drift, -drift])
    config = {"loss_streak": 4, "halt_confirmations": 2, "var_breach_streak": None}
    straight, restarted = _both(tmp, "sync", _bars(returns), k, **config)
    for i in range(k, len(straight)):
        assert restarted[i].streaks == straight[i].streaks, i
        assert restarted[i].trading_state is straight[i].trading_state, i


def test_journal_rows_without_or_with_bad_streaks_restore_none(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    with StateStore(path) as store:
        assert store.last_streaks() == {}
        store.append_decision("d1", {"leverage": 1.0, "rebalance_weights": {"A": 0.5}})
        assert store.last_streaks() == {}  # a row from before streaks were journalled
        for bad in ({"loss": -1}, {"loss": 1.5}, {"loss": "3"}, {"bogus": 2}, [1, 2]):
            store.append_decision(f"bad-{len(json.dumps(bad))}-{id(bad)}", {"streaks": bad})
            assert store.last_streaks() == {}, bad
        store.append_decision("d2", {"streaks": {"loss": 2, "var_breach": 1, "halt_votes": 0}})
        assert store.last_streaks() == {"loss": 2, "var_breach": 1, "halt_votes": 0}


def _decision(**changes: Any) -> RiskDecision:
    base = RiskDecision(
        rebalance_weights={"A": 0.5, "B": -0.25, "cash": 0.75},
        leverage=2.0,
        hedge=HedgeInstruction(False, 0.0, ""),
        position_sizes={},
        stop_levels={},
        var=0.02,
        cvar=0.03,
        correlation=CorrelationState(0.2, False),
        risk_level=RiskLevel.LOW,
        trading_state=TradingState.ACTIVE,
    )
    return replace(base, **changes)


def test_last_priced_reads_the_levered_book_of_the_last_healthy_decision(tmp_path: Path) -> None:
    """A degraded decision priced nothing: the running engine checks the next return against the
    book of the last healthy one, and so does a restart."""
    with StateStore(tmp_path / "p.db") as store:
        assert store.last_healthy() is None
        store.append_decision("h", _decision().to_json())
        assert store.last_priced() == ({"A": 1.0, "B": -0.5}, 0.02)
        store.append_decision("d", _decision(degraded=True, leverage=0.5, var=0.5).to_json())
        assert store.last_priced() == ({"A": 1.0, "B": -0.5}, 0.02)  # the one before it
        healthy = store.last_healthy()
        assert healthy is not None
        assert healthy.to_json() == _decision().to_json()
        store.append_decision("n", _decision(var=math.nan).to_json())  # VaR still warming up
        assert store.last_priced() is None
        store.append_decision("junk", {"leverage": 1.0})  # not a decision's row: passed over
        assert store.last_priced() is None


def test_a_journal_that_cannot_be_read_restores_no_streaks_and_still_decides(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    config = _config(path, loss_streak=1000)
    bars = _bars(_calm_then([(-0.01, 0.01)] * 3, calm=5))
    _replay_sync(config, bars, None)
    with sqlite3.connect(path) as conn:  # the newest row's streaks overwritten with junk
        conn.execute(
            "UPDATE journal SET payload = json_set(payload, '$.streaks', 'junk') "
            "WHERE id = (SELECT MAX(id) FROM journal)"
        )
    risk = AdvancedRiskManager(config)
    try:
        decision = risk.manage_risk_sync(bars[0], Portfolio(weights=BOOK))
    finally:
        risk.close_sync()
    assert decision.streaks is not None
    assert decision.streaks["loss"] <= 1  # counted afresh
    assert not decision.degraded


def test_the_state_machine_takes_restored_halt_votes() -> None:
    config = RiskConfig(halt_drawdown=0.3, reduce_drawdown=0.2, halt_confirmations=3)
    machine = TradingStateMachine(config, state=TradingState.REDUCING, reason="halt pending", halt_votes=2)
    assert machine.halt_votes == 2
    assert machine.evaluate(RiskObservation(drawdown=0.31)).state is TradingState.HALTED
    active = TradingStateMachine(config, state=TradingState.ACTIVE, halt_votes=2)
    assert active.halt_votes == 0  # a halt vote leaves ACTIVE: an ACTIVE machine has none
    with pytest.raises(InvalidInputError, match="halt_votes"):
        TradingStateMachine(config, halt_votes=-1)
