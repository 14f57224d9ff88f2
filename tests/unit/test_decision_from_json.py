"""``RiskDecision.from_json`` reads back what ``to_json`` wrote (a journal row), field for field.

A restart reads the last healthy decision back from the journal this way, so a degraded first bar
falls back on it as the running manager's would. The check is the round trip
``from_json(d.to_json()).to_json() == d.to_json()`` on drawn decisions (NaN, None, advice, drift)
and on the decisions of a replay with the shipped policy and risk agents; bad rows are refused
with ``InvalidInputError`` naming the field.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from advanced_risk.config import RiskConfig
from advanced_risk.data import load_sp500_stocks
from advanced_risk.errors import InvalidInputError
from advanced_risk.manager import AdvancedRiskManager
from advanced_risk.types import (
    AgentAdvice,
    CorrelationState,
    DriftStatus,
    HedgeInstruction,
    MarketState,
    Portfolio,
    RiskDecision,
    RiskLevel,
    TradingState,
)

floats = st.floats(allow_nan=True, allow_infinity=False, width=64)
names = st.text("ABCXYZ", min_size=1, max_size=4)


@st.composite
def decisions(draw: st.DrawFn) -> RiskDecision:
    drift = draw(st.none() | st.builds(DriftStatus, floats, st.floats(0, 5), st.booleans(), st.just(("f1",))))
    advice = draw(
        st.none()
        | st.builds(
            AgentAdvice,
            st.floats(0, 1),
            st.floats(0.5, 5),
            st.booleans(),
            st.sampled_from(["none", "reduce", "hedge", "halt"]),
            st.sampled_from([0.0, 0.25, 0.5, 1.0]),
            st.dictionaries(st.sampled_from(["sizer", "stop", "monitor"]), floats),
            st.dictionaries(st.sampled_from(["sizer", "stop"]), st.text(max_size=5)),
            st.just(drift),
        )
    )
    return RiskDecision(
        rebalance_weights=draw(st.dictionaries(names, st.floats(-2, 2), max_size=4)),
        leverage=draw(st.floats(0, 3)),
        hedge=HedgeInstruction(draw(st.booleans()), draw(st.floats(0, 1)), draw(st.text(max_size=8))),
        position_sizes=draw(st.dictionaries(names, st.floats(0, 1e6), max_size=3)),
        stop_levels=draw(st.dictionaries(names, st.floats(0, 1e4), max_size=3)),
        var=draw(floats),
        cvar=draw(floats),
        correlation=CorrelationState(draw(floats), draw(st.booleans())),
        risk_level=draw(st.sampled_from(list(RiskLevel))),
        trading_state=draw(st.sampled_from(list(TradingState))),
        uncertainty=draw(st.none() | st.floats(0, 1)),
        risk_agents=advice,
        alerts=tuple(draw(st.lists(st.text(max_size=10), max_size=3))),
        degraded=draw(st.booleans()),
        latency_ms=draw(st.floats(0, 100)),
        decision_id=draw(st.text(max_size=8)),
        equity=draw(st.none() | st.floats(1, 1e9)),
        drawdown=draw(floats),
        drift=draw(st.none() | st.dictionaries(st.sampled_from(["policy", "risk_agents"]), floats)),
        streaks=draw(
            st.none() | st.fixed_dictionaries({"loss": st.integers(0, 50), "halt_votes": st.integers(0, 3)})
        ),
    )


@settings(max_examples=150, deadline=None)
@given(decisions())
def test_from_json_reads_back_what_to_json_wrote(decision: RiskDecision) -> None:
    text = decision.to_json()
    back = RiskDecision.from_json(text)
    assert back.to_json() == text
    assert back.trading_state is decision.trading_state
    assert (math.isnan(back.var) and math.isnan(decision.var)) or back.var == decision.var


def test_the_decisions_of_a_replay_with_the_shipped_models_read_back(tmp_path: Path) -> None:
    stocks = load_sp500_stocks().iloc[:90]
    returns = stocks.pct_change().iloc[1:]
    config = RiskConfig(
        state_path=str(tmp_path / "r.db"), deadline_ms=10_000.0, tracker={"method": "fhs_ewma"}
    )
    risk = AdvancedRiskManager(
        config, policy="models/ppo_sp500_2012.armodel", risk_agents="models/risk_agents_sp500.armodel"
    )
    texts = []
    try:
        for day in returns.index:
            market = MarketState(returns=returns.loc[day].to_dict(), prices=stocks.loc[day].to_dict())
            decision = risk.manage_risk_sync(
                market, Portfolio(weights=dict.fromkeys(stocks.columns, 0.05), equity=1e6)
            )
            texts.append(decision.to_json())
    finally:
        risk.close_sync()
    assert any('"risk_agents":{' in t for t in texts)  # advice was read back too
    assert all(RiskDecision.from_json(t).to_json() == t for t in texts)


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("not json", "JSON"),
        ("[1, 2]", "object"),
        ('{"leverage": "x"}', "leverage"),
        ('{"trading_state": "sideways"}', "trading_state"),
        ('{"rebalance_weights": {"A": 0.5}}', "decision"),  # the required fields missing
    ],
)
def test_a_row_that_is_not_a_decision_is_refused_naming_the_field(text: str, field: str) -> None:
    with pytest.raises(InvalidInputError, match=field):
        RiskDecision.from_json(text)


def test_nulls_read_back_as_nan_or_none() -> None:
    decision = RiskDecision(
        rebalance_weights={"A": 1.0},
        leverage=1.0,
        hedge=HedgeInstruction(False, 0.0, ""),
        position_sizes={},
        stop_levels={},
        var=math.nan,
        cvar=math.nan,
        correlation=CorrelationState(math.nan, False),
        risk_level=RiskLevel.LOW,
        trading_state=TradingState.ACTIVE,
    )
    back = RiskDecision.from_json(decision.to_json())
    assert np.isnan([back.var, back.cvar, back.correlation.average, back.drawdown]).all()
    assert back.uncertainty is None
    assert back.equity is None
    assert back.streaks is None
