"""Every journal row is the decision that was returned, field by field, over a run with faults.

One manager on a database file drives a run of bars through both entry points (``manage_risk`` and
``manage_risk_sync``) with healthy bars, a policy that raises, a policy past the deadline, a tracker
that raises, a drawdown that moves the trading state, and a call refused as bad input. After
``close`` the file is opened read-only and every row is compared with the decision returned for
it: same ids in the same order, one row per returned decision, and each row equal to the
decision's fields converted here (not by ``RiskDecision.to_json``): enums by value, dataclasses and
mappings as objects, tuples as lists, non-finite floats as null.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
from collections.abc import Mapping
from enum import Enum
from pathlib import Path
from typing import Any

import pytest

from advanced_risk.engine.state import StateStore
from advanced_risk.errors import InvalidInputError
from advanced_risk.manager import AdvancedRiskManager
from advanced_risk.types import RiskDecision, TradingState

from .conftest import BarFeed, FakeAllocator, fast_config

DEADLINE_MS = 50.0


def _plain(value: Any) -> Any:
    """The JSON value a journal row holds for one field of a decision."""
    if isinstance(value, Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _expected_row(decision: RiskDecision) -> dict[str, Any]:
    return {f.name: _plain(getattr(decision, f.name)) for f in dataclasses.fields(decision)}


class Run:
    """A manager on a file, a feed and the decisions returned so far, driven sync or async."""

    def __init__(self, risk: AdvancedRiskManager, policy: FakeAllocator) -> None:
        self.risk, self.policy = risk, policy
        self.feed = BarFeed(seed=21)
        self.returned: list[RiskDecision] = []
        self.equity_scale = 1.0

    def _bar(self) -> tuple[dict[str, Any], dict[str, Any]]:
        market, book = self.feed.next()
        book["equity"] *= self.equity_scale  # a loss the feed does not know about: a drawdown
        return market, book

    async def bars(self, n: int, *, sync_every: int = 3) -> list[RiskDecision]:
        """``n`` bars; every ``sync_every``-th goes through ``manage_risk_sync``."""
        out = []
        for i in range(n):
            if i % sync_every == sync_every - 1:
                out.append(self.risk.manage_risk_sync(*self._bar()))
            else:
                out.append(await self.risk.manage_risk(*self._bar()))
        self.returned += out
        return out


@pytest.mark.asyncio
async def test_every_journal_row_equals_the_decision_returned_through_faults_and_both_entry_points(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "risk.db"
    policy = FakeAllocator(history_length=2)
    config = fast_config(
        deadline_ms=DEADLINE_MS, state_path=str(path), journal_sync=False, drawdown_basis="equity"
    )
    async with AdvancedRiskManager(config, policy=policy) as risk:
        run = Run(risk, policy)
        assert not any(d.degraded for d in await run.bars(12))

        policy.fail = True
        assert all(d.degraded for d in await run.bars(3))
        policy.fail = False
        await run.bars(3)

        policy.sleep_s = 2.5 * DEADLINE_MS / 1000.0  # the policy misses the deadline
        late = await run.bars(2, sync_every=5)
        assert all(d.degraded for d in late)
        policy.sleep_s = 0.0
        await asyncio.sleep(0.2)  # the late inference thread finishes
        await run.bars(3)

        engine = risk._engine
        assert engine is not None
        assert engine.tracker is not None

        def broken(returns_row: Any) -> None:
            raise FloatingPointError("covariance went singular")

        monkeypatch.setattr(engine.tracker, "update", broken)
        assert all(d.degraded for d in await run.bars(3))
        monkeypatch.undo()
        await run.bars(3)

        with pytest.raises(InvalidInputError):  # refused: no decision, so no row
            risk.manage_risk_sync({"volatility": 0.2}, {"aaa": 0.5, "current_drawdown": -1})

        run.equity_scale = 0.6  # a 40 % loss of equity: past halt_drawdown (30 %)
        await run.bars(6)
        for d in run.returned:  # read back through the manager while it runs (queued or committed)
            assert risk.read_decision(d.decision_id) == _expected_row(d)

    returned = run.returned
    assert returned[-1].trading_state is TradingState.HALTED
    assert sum(d.degraded for d in returned) >= 8
    assert len({d.decision_id for d in returned}) == len(returned)
    with StateStore(path, read_only=True) as store:
        rows = store.journal(limit=10_000)
        assert store.count() == len(returned)
    assert [r.decision_id for r in rows] == [d.decision_id for d in returned]
    for row, decision in zip(rows, returned, strict=True):
        expected = _expected_row(decision)
        assert set(row.payload) == set(expected), decision.decision_id
        for field, value in expected.items():
            assert row.payload[field] == value, (decision.decision_id, field)
