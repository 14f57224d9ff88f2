"""Property (issue 11): random sequences of good bars, bad bars, component faults, store faults,
kill switches, resumes and restarts against one manager on disk keep the failure policy's invariants:

- a bad bar raises ``InvalidInputError`` and changes nothing (the next decision is as if it never came);
- a component fault gives a degraded, conservative decision, never an exception;
- a restart never comes up less cautious than the last decision the bot received (HALTED stays
  HALTED), unless the bot was told that decision's state was not durable (an alert saying so, or a
  ``StateChange(durable=False)``) and the process went down before the store healed;
- while the store refuses writes, decisions are degraded and say why; once it heals, the pending
  safety state lands (the file agrees with memory after a flush);
- every returned decision is journalled as returned.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from advanced_risk import AdvancedRiskManager, MarketState, Portfolio, RiskConfig
from advanced_risk.config import TrackerConfig
from advanced_risk.engine.protocols import Allocation
from advanced_risk.errors import InvalidInputError
from advanced_risk.types import RiskDecision, TradingState

ASSETS = ("A", "B")
CAUTION = {TradingState.ACTIVE: 0, TradingState.REDUCING: 1, TradingState.HALTED: 2}


class Switchable:
    """A user allocator a rule can break."""

    asset_count = len(ASSETS)
    history_length = 2
    asset_names = ASSETS

    def __init__(self) -> None:
        self.broken = False

    def allocate(self, returns: np.ndarray, weights: np.ndarray, drawdown: float) -> Allocation:
        if self.broken:
            raise RuntimeError("allocator down")
        return Allocation(np.array([0.4, 0.4, 0.2]), 0.0)


class ManagerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.TemporaryDirectory()
        self.config = RiskConfig(
            state_path=str(Path(self.dir.name) / "risk.db"),
            journal_sync=False,
            rate_limit_per_s=None,
            deadline_ms=200.0,
            tracker=TrackerConfig(window=20, fhs_window=100, correlation_warmup=5),
        )
        self.policy = Switchable()
        self.risk = AdvancedRiskManager(self.config, policy=self.policy)
        self.rng = np.random.default_rng(0)
        self.prices = np.array([100.0, 50.0])
        self.equity = 1e6
        self.last: RiskDecision | None = None
        self.returned: list[RiskDecision] = []
        self.store_broken = False
        self.unsure = False  # the bot was told its latest safety state may not be durable

    def teardown(self) -> None:
        self.risk.close_sync()
        self.dir.cleanup()

    def _bar(self, move: float) -> tuple[MarketState, Portfolio]:
        r = np.array([move, move * 0.5]) + self.rng.normal(0.0, 0.002, 2)
        self.prices = self.prices * (1.0 + r)
        self.equity *= 1.0 + 0.5 * float(r.mean())
        market = MarketState(
            returns=dict(zip(ASSETS, r.tolist(), strict=True)),
            prices=dict(zip(ASSETS, self.prices.tolist(), strict=True)),
        )
        return market, Portfolio(weights={"A": 0.4, "B": -0.2}, equity=self.equity)

    def _decide(self, bar: tuple[MarketState, Portfolio]) -> RiskDecision:
        journal = self.risk._journal
        down = self.store_broken and journal is not None and not journal.healthy
        decision = self.risk.manage_risk_sync(*bar)
        if down:  # a commit already failed: the bot is told, on every decision until it heals
            assert decision.degraded
            assert any("state store" in a for a in decision.alerts), decision.alerts
        self.returned.append(decision)
        self.last = decision
        if any("not durable" in a or "state store" in a for a in decision.alerts):
            self.unsure = True
        elif not self.store_broken and not self._safety_pending():
            self.unsure = False
        return decision

    def _safety_pending(self) -> bool:
        journal = self.risk._journal
        return journal is not None and journal.safety_pending

    def _store_call(self, on: bool) -> None:
        journal = self.risk._journal
        assert journal is not None

        def query_only(store: Any) -> None:
            with store._op("test") as conn:
                conn.execute(f"PRAGMA query_only = {int(on)}")

        journal.call(query_only, ordered=False).result(timeout=10.0)  # runs while rows wait, too

    @rule(move=st.floats(-0.06, 0.04))
    def good_bar(self, move: float) -> None:
        decision = self._decide(self._bar(move))
        if not self.policy.broken and not self.store_broken:
            assert not decision.degraded or any("deadline" in a for a in decision.alerts), decision.alerts

    @rule(kind=st.sampled_from(["nan", "unknown-held", "huge-equity", "negative-price"]))
    def bad_bar(self, kind: str) -> None:
        engine = self.risk._engine
        before = None if engine is None else (engine.peak_equity, engine.machine.state, engine.assets)
        if kind == "huge-equity" and (before is None or before[0] is None):
            return  # no peak yet: any first equity is plausible
        market, book = self._bar(0.0)
        try:
            if kind == "nan":
                market = {"returns": {"A": float("nan"), "B": 0.0}}  # type: ignore[assignment]
            elif kind == "unknown-held":
                book = Portfolio(weights={"A": 0.4, "Z": 0.1}, equity=self.equity)
            elif kind == "huge-equity":
                book = Portfolio(weights={"A": 0.4}, equity=self.equity * 1e6)
            else:
                market = {"prices": {"A": -1.0, "B": 50.0}}  # type: ignore[assignment]
            self.risk.manage_risk_sync(market, book)
        except InvalidInputError:
            pass
        else:
            raise AssertionError(f"{kind} accepted")
        engine = self.risk._engine
        after = None if engine is None else (engine.peak_equity, engine.machine.state, engine.assets)
        assert before is None or after == before

    @rule()
    def break_store(self) -> None:
        """The file refuses writes (read-only disk, full disk: every commit fails)."""
        if self.risk._journal is None:
            return
        self._store_call(True)
        self.store_broken = True

    @rule()
    def heal_store(self) -> None:
        if self.risk._journal is None or not self.store_broken:
            return
        self._store_call(False)
        self.store_broken = False
        asyncio.run(self.risk.flush())
        engine = self.risk._engine
        assert engine is not None
        assert not self._safety_pending()
        from advanced_risk.engine.state import StateStore

        with StateStore(self.config.state_path, read_only=True) as reader:
            state = reader.load()
        if self.risk._pending_resume is not None:
            # a resume asked for during the outage lands on disk first; memory follows at the next
            # decision (the one direction in which the file may be less cautious: the operator's)
            assert state.trading_state is TradingState.ACTIVE
            assert engine.machine.state is TradingState.HALTED
        else:  # the file agrees with memory
            assert state.trading_state is engine.machine.state
            assert state.kill_switch == engine.machine.kill_switch

    @rule()
    def break_policy(self) -> None:
        self.policy.broken = True

    @rule()
    def fix_policy(self) -> None:
        self.policy.broken = False

    @rule()
    def kill_switch(self) -> None:
        change = asyncio.run(self.risk.engage_kill_switch("hypothesis"))
        if not change.durable:
            self.unsure = True

    @rule()
    def resume(self) -> None:
        change = asyncio.run(self.risk.resume("hypothesis"))
        if self.store_broken:
            assert not change.changed  # less caution goes to the store first
        self.last = None  # the operator chose less caution: the next decision is the reference

    @rule()
    def restart(self) -> None:
        last, unsure = self.last, self.unsure
        self.risk.close_sync()
        self.store_broken = False  # a new process, a new connection
        self.risk = AdvancedRiskManager(self.config, policy=self.policy)
        decision = self._decide(self._bar(0.0))
        if last is not None and not unsure:
            assert CAUTION[decision.trading_state] >= min(CAUTION[last.trading_state], 2) or (
                last.trading_state is TradingState.REDUCING
            ), (last.trading_state, decision.trading_state)
            if last.trading_state is TradingState.HALTED:
                assert decision.trading_state is TradingState.HALTED

    @invariant()
    def journalled_as_returned(self) -> None:
        if self.returned:
            d = self.returned[-1]
            row = self.risk.read_decision(d.decision_id)
            assert row == json.loads(d.to_json())

    @invariant()
    def degraded_decisions_are_conservative(self) -> None:
        d = self.last
        if d is not None and d.degraded:
            assert d.hedge.active
            assert all(v == 0.0 for v in d.position_sizes.values())
            assert d.leverage <= 0.5 + 1e-12


ManagerMachine.TestCase.settings = settings(max_examples=10, stateful_step_count=25, deadline=None)
test_manager_sequences = ManagerMachine.TestCase
