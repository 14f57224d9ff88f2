"""Properties of the on_alert pager and the telemetry over any sequence of decisions (issue 15).

Whatever the sequence of ok, degraded, drifted and state-changing decisions:

- a run of degraded decisions pages once when it starts and once when it ends (``recovered``), so
  the pages alternate degraded / recovered and their counts differ by at most one (an open run);
- a model's drift episode pages once when it starts and once when it ends (the end is seen only on a
  decision that is not degraded);
- every state change pages;
- the telemetry counts every decision and every alert, by kind.
"""

from __future__ import annotations

import itertools
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from advanced_risk.monitoring.alerts import AlertKind, alert_kind
from advanced_risk.monitoring.hooks import AlertPager
from advanced_risk.monitoring.telemetry import Telemetry
from advanced_risk.types import (
    CorrelationState,
    HedgeInstruction,
    RiskDecision,
    RiskLevel,
    TradingState,
)

DRIFT = "input drift: policy score 0.9 > 0.4 (features: a); replaced by the rules"
STATE = "trading state active -> reducing: drawdown 0.12 >= 0.1"

bar = st.fixed_dictionaries(
    {"degraded": st.booleans(), "drifted": st.booleans(), "state_change": st.booleans()}
)


def _decision(i: int, degraded: bool, drifted: bool, state_change: bool) -> RiskDecision:
    alerts = (["degraded: policy failed"] if degraded else []) + ([DRIFT] if drifted and not degraded else [])
    alerts += [STATE] if state_change else []
    return RiskDecision(
        rebalance_weights={"cash": 1.0},
        leverage=1.0,
        hedge=HedgeInstruction(False, 0.0, ""),
        position_sizes={},
        stop_levels={},
        var=0.02,
        cvar=0.03,
        correlation=CorrelationState(math.nan, False),
        risk_level=RiskLevel.LOW,
        trading_state=TradingState.ACTIVE,
        alerts=tuple(alerts),
        degraded=degraded,
        decision_id=f"d-{i}",
        equity=100.0,
    )


@settings(max_examples=200, deadline=None)
@given(bars=st.lists(bar, max_size=60))
def test_runs_page_once_at_each_edge_and_telemetry_counts_everything(bars: list[dict[str, bool]]) -> None:
    pager, telemetry = AlertPager(), Telemetry()
    pages = []
    decisions = [_decision(i, **b) for i, b in enumerate(bars)]
    for d in decisions:
        pages.extend(pager.events(d))
        telemetry.record(d, 1e-4, late=False)

    degraded_edges = [
        p.kind for p in pages if p.kind is AlertKind.DEGRADED or "degraded decision" in p.message
    ]
    for first, second in itertools.pairwise(degraded_edges):
        assert first != second  # degraded, recovered, degraded, ...
    runs = sum(1 for i, d in enumerate(decisions) if d.degraded and (i == 0 or not decisions[i - 1].degraded))
    assert degraded_edges.count(AlertKind.DEGRADED) == runs

    drift_pages = [p for p in pages if p.kind is AlertKind.DRIFT]
    drift_ends = [p for p in pages if "input drift is over" in p.message]
    assert len(drift_ends) <= len(drift_pages) <= len(drift_ends) + 1

    assert sum(p.kind is AlertKind.STATE_CHANGE for p in pages) == sum(b["state_change"] for b in bars)
    assert {p.decision_id for p in pages} <= {d.decision_id for d in decisions}

    snapshot = telemetry.snapshot()
    assert snapshot.decisions_ok + snapshot.decisions_degraded == len(decisions)
    assert snapshot.decisions_degraded == sum(d.degraded for d in decisions)
    for kind in AlertKind:
        expected = sum(alert_kind(a) is kind for d in decisions for a in d.alerts)
        assert snapshot.alerts[str(kind)] == expected
    assert snapshot.var_breaches == 0  # constant equity: no loss, no breach
