"""Decisions are bit-identical whichever way they are asked for (issue 14).

- the dict entry points (``manage_risk``, ``manage_risk_sync``) and the array ones
  (``manage_risk_arrays``, ``manage_risk_arrays_sync``), on the same bars;
- the built-in inference run inline on the caller's thread and run on the worker thread.

Each run replays a few hundred bars of the bundled 20 S&P 500 stocks through the shipped PPO policy
and the shipped risk agents (10 MC-dropout samples each) and compares every decision's journal JSON
without its id and latency (the only fields that differ between two runs).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from advanced_risk import AdvancedRiskManager, RiskConfig
from advanced_risk.data import load_sp500_stocks
from advanced_risk.engine.components import CostEstimate, InferencePath, is_bounded
from advanced_risk.errors import InvalidInputError
from advanced_risk.types import MarketState, Portfolio, RiskDecision

from .conftest import FakeAllocator

MODELS = Path(__file__).resolve().parents[2] / "models"
POLICY = MODELS / "ppo_sp500_2012.armodel"
AGENTS = MODELS / "risk_agents_sp500.armodel"
BARS = 320  # the policy and the agents need ~60 bars of history: ~260 bars with both at work


@pytest.fixture(scope="module")
def bars() -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    prices = load_sp500_stocks()
    px = prices.to_numpy()[: BARS + 1]
    return tuple(prices.columns), px[1:] / px[:-1] - 1.0, px[1:]


def _config() -> RiskConfig:
    # a deadline no loaded test machine misses: a degraded decision would hide a difference
    return RiskConfig(deadline_ms=5_000.0, rate_limit_per_s=None)


def _manager(path: InferencePath = InferencePath.AUTO) -> AdvancedRiskManager:
    risk = AdvancedRiskManager(_config(), policy=str(POLICY), risk_agents=str(AGENTS))
    risk._components.path = path  # the runner under test
    return risk


def _book(assets: tuple[str, ...], t: int) -> Portfolio:
    w = np.full(len(assets), 0.9 / len(assets))
    w[t % len(assets)] = 0.0  # a book that changes a little every bar
    return Portfolio(weights=dict(zip(assets, w.tolist(), strict=True)), equity=1e6 * (1 + 0.001 * t))


def _row(decision: RiskDecision) -> dict[str, Any]:
    row: dict[str, Any] = json.loads(decision.to_json())
    del row["decision_id"], row["latency_ms"]
    return row


def _check_active(rows: list[dict[str, Any]]) -> None:
    assert not any(r["degraded"] for r in rows)
    assert sum(r["uncertainty"] is not None for r in rows) > 200  # the policy decided
    assert sum(r["risk_agents"] is not None for r in rows) > 200  # the agents advised


def _sync(risk: AdvancedRiskManager, bars: Any, arrays: bool) -> list[dict[str, Any]]:
    assets, rets, prices = bars
    out = []
    try:
        for t in range(rets.shape[0]):
            book = _book(assets, t)
            if arrays:
                decision = risk.manage_risk_arrays_sync(assets, book, returns=rets[t], prices=prices[t])
            else:
                market = {
                    "returns": dict(zip(assets, rets[t].tolist(), strict=True)),
                    "prices": dict(zip(assets, prices[t].tolist(), strict=True)),
                }
                decision = risk.manage_risk_sync(market, book)
            out.append(_row(decision))
    finally:
        risk.close_sync()
    return out


def _async(risk: AdvancedRiskManager, bars: Any, arrays: bool) -> list[dict[str, Any]]:
    assets, rets, prices = bars

    async def run() -> list[dict[str, Any]]:
        out = []
        async with risk:
            for t in range(rets.shape[0]):
                book = _book(assets, t)
                if arrays:
                    decision = await risk.manage_risk_arrays(assets, book, returns=rets[t], prices=prices[t])
                else:
                    market = MarketState(
                        returns=dict(zip(assets, rets[t].tolist(), strict=True)),
                        prices=dict(zip(assets, prices[t].tolist(), strict=True)),
                    )
                    decision = await risk.manage_risk(market, book)
                out.append(_row(decision))
        return out

    return asyncio.run(run())


@pytest.fixture(scope="module")
def reference(bars: Any) -> list[dict[str, Any]]:
    """The sync twin with dict input, inference inline: what every other way must reproduce."""
    rows = _sync(_manager(), bars, arrays=False)
    _check_active(rows)
    return rows


def test_sync_arrays_decide_as_sync_dicts(bars: Any, reference: list[dict[str, Any]]) -> None:
    assert _sync(_manager(), bars, arrays=True) == reference


@pytest.mark.parametrize("arrays", [False, True], ids=["dicts", "arrays"])
@pytest.mark.parametrize("path", [InferencePath.INLINE, InferencePath.WORKER], ids=["inline", "worker"])
def test_async_decides_as_sync_whatever_the_entry_point_and_inference_path(
    bars: Any, reference: list[dict[str, Any]], arrays: bool, path: InferencePath
) -> None:
    assert _async(_manager(path), bars, arrays) == reference


def test_sync_on_the_worker_decides_as_inline(bars: Any, reference: list[dict[str, Any]]) -> None:
    assert _sync(_manager(InferencePath.WORKER), bars, arrays=False) == reference


def test_the_built_in_inference_runs_inline_while_it_fits_the_budget() -> None:
    risk = _manager()
    with contextlib.suppress(InvalidInputError):  # 2 assets for a 20-asset policy; the engine is open
        risk.manage_risk_sync({"returns": dict.fromkeys(("a", "b"), 0.0)}, {"weights": {"a": 0.5}})
    engine, runner = risk._require_engine(), risk._components
    assert is_bounded(engine.allocator)
    assert is_bounded(engine.advisor)
    assert runner.budget_ms == pytest.approx(0.25 * 5_000.0)
    assert runner.inline_for(engine, sync=False)
    runner.cost.p99_ms = runner.budget_ms * 1.01  # measured over budget: the worker takes it
    assert not runner.inline_for(engine, sync=False)
    assert runner.inline_for(engine, sync=True)  # the sync twin has no loop to keep ticking
    risk.close_sync()


def test_a_user_allocator_stays_on_the_worker() -> None:
    risk = AdvancedRiskManager(_config(), policy=FakeAllocator())
    risk.manage_risk_sync({"returns": {"aaa": 0.0, "bbb": 0.0, "ccc": 0.0, "ddd": 0.0}}, {"weights": {}})
    engine = risk._require_engine()
    assert not is_bounded(engine.allocator)
    assert not risk._components.inline_for(engine, sync=False)
    assert not risk._components.inline_for(engine, sync=True)
    risk.close_sync()


def test_array_input_is_checked_like_dict_input() -> None:
    with pytest.raises(ValueError, match=r"market_state.returns must have shape \(2,\)"):
        MarketState.from_arrays(("a", "b"), returns=np.zeros(3))
    with pytest.raises(ValueError, match=r"market_state.prices\['b'\] must be finite"):
        MarketState.from_arrays(("a", "b"), prices=np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match=r"market_state.returns\['a'\] must be > -1"):
        MarketState.from_arrays(("a", "b"), returns=np.array([-1.0, 0.0]))
    with pytest.raises(ValueError, match="unique"):
        MarketState.from_arrays(("a", "a"), returns=np.zeros(2))
    with pytest.raises(ValueError, match=r"below market_state\.low"):
        MarketState.from_arrays(("a",), prices=[2.0], high=[2.0], low=[3.0])


def _fill_tuple_free_lists() -> None:
    """Fill the interpreter's free lists of tuples (CPython parks up to 2,000 freed tuples of each
    length up to 20): a list being filled reads as growth to tracemalloc (up to ~400 KB for the
    20-name tuples of a 20-asset book), and how fast it fills depends on how many tuples a decision
    churns, not on a leak."""
    parked = [tuple(range(length)) for length in range(1, 21) for _ in range(2_000)]
    del parked


@pytest.mark.timing  # the in-memory journal thread must keep up: run alone, not beside a busy worker
def test_steady_state_allocates_no_growing_memory(bars: Any) -> None:
    """After warm-up, 1,000 decisions leave no growing allocation behind (bounded journal ring).

    The bound, 256 KiB over 1,000 decisions, catches a leak of 256 bytes or more per decision."""
    assets, rets, prices = bars
    config = RiskConfig(deadline_ms=5_000.0, rate_limit_per_s=None, memory_journal_rows=100)
    risk = AdvancedRiskManager(config, policy=str(POLICY), risk_agents=str(AGENTS))
    book = _book(assets, 0)
    n = rets.shape[0]
    try:
        for t in range(300):
            risk.manage_risk_arrays_sync(assets, book, returns=rets[t % n], prices=prices[t % n])
        tracemalloc.start()
        _fill_tuple_free_lists()
        for t in range(300):  # the 100-row journal ring is full after these
            risk.manage_risk_arrays_sync(assets, book, returns=rets[t % n], prices=prices[t % n])
        after_300, _ = tracemalloc.get_traced_memory()
        for t in range(1_000):
            risk.manage_risk_arrays_sync(assets, book, returns=rets[t % n], prices=prices[t % n])
        after_1300, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        risk.close_sync()
    assert after_1300 - after_300 < 256 * 1024, (after_300, after_1300)


def test_the_cost_estimate_ignores_one_outlier_and_follows_a_slow_down() -> None:
    estimate = CostEstimate(every=16, window=256)
    for _ in range(255):
        estimate.record_ms(0.3)
    estimate.record_ms(50.0)  # one GC pause
    assert estimate.p99_ms == pytest.approx(0.3)
    for _ in range(16):
        estimate.record_ms(4.0)  # the machine got slower
    assert estimate.p99_ms == pytest.approx(4.0)
