"""Property: any sequence of bars over a changing universe of signed books keeps the decision contract.

Each step picks which assets the bar names (a random subset of a small pool: joins and leaves), their
returns and prices, and a signed book over them; a held asset leaves only after a bar that holds it at
0 (otherwise the engine must refuse the bar and change nothing). Invariants of every decision:
never degraded, the universe is the bar's assets, cash = 1 - net weight, no position flipped,
an ACTIVE decision without a policy keeps the held book, stops on the side of the position.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from advanced_risk.config import RiskConfig, TrackerConfig
from advanced_risk.engine.core import DecisionEngine
from advanced_risk.errors import InvalidInputError
from advanced_risk.types import MarketState, Portfolio, TradingState

POOL = ("A", "B", "C", "D", "E")
CONFIG = RiskConfig(tracker=TrackerConfig(window=20, fhs_window=100, correlation_warmup=5))

step = st.tuples(
    st.sets(st.sampled_from(POOL), min_size=1),  # the assets this bar names
    st.lists(st.floats(-0.05, 0.05), min_size=len(POOL), max_size=len(POOL)),  # returns
    st.lists(st.sampled_from([0.0, 0.0, 0.2, -0.2, 0.5, -0.7]), min_size=len(POOL), max_size=len(POOL)),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(step, min_size=1, max_size=60))
def test_any_sequence_of_joins_leaves_and_signed_books_keeps_the_contract(
    steps: list[tuple[set[str], list[float], list[float]]],
) -> None:
    engine = DecisionEngine(CONFIG)
    prices = dict.fromkeys(POOL, 100.0)
    held: dict[str, float] = {}
    for names, returns, weights in steps:
        assets = [a for a in POOL if a in names]
        r = dict(zip(POOL, returns, strict=True))
        for a in assets:
            prices[a] *= 1.0 + r[a]
        market = MarketState(
            returns={a: r[a] for a in assets},
            prices={a: prices[a] for a in assets},
            high={a: prices[a] * 1.01 for a in assets},
            low={a: prices[a] * 0.99 for a in assets},
        )
        book = dict(zip(POOL, weights, strict=True))
        book = {a: book[a] for a in assets}
        leaving_held = [a for a, w in held.items() if a not in names and w != 0.0]
        universe_before = engine.assets
        portfolio = Portfolio(weights=book, equity=1e6)
        if leaving_held:
            with pytest.raises(InvalidInputError, match="left the universe while held"):
                engine.parse(market, portfolio)
            assert engine.assets == universe_before  # a refused bar changes nothing
            continue
        bar = engine.parse(market, portfolio)
        decision = engine.decide(engine.observe(bar), None)
        assert not decision.degraded, decision.alerts
        assert set(decision.rebalance_weights) == {*assets, "cash"}
        net = math.fsum(decision.rebalance_weights[a] for a in assets)
        assert decision.rebalance_weights["cash"] == 1.0 - net
        for a in assets:
            target = decision.rebalance_weights[a]
            assert target * book[a] >= 0.0, f"{a} flipped: held {book[a]}, decided {target}"
            if decision.trading_state is TradingState.ACTIVE:
                assert target == book[a]
            stop = decision.stop_levels.get(a)
            if stop is not None and book[a] != 0.0 and decision.trading_state is TradingState.ACTIVE:
                assert (stop > prices[a]) if book[a] < 0.0 else (stop < prices[a])
        assert all(np.isfinite(v) and v >= 0.0 for v in decision.position_sizes.values())
        held = book
