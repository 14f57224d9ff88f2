"""Third adversarial round on the manager and its engine: defects found, each pinned by a test, and
the worlds that did not break it (a churning, reordered, long-short universe; extreme inputs), kept
as guards."""

from __future__ import annotations

import asyncio
import json
import math
import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from advanced_risk import AdvancedRiskManager, InvalidInputError, MarketState, Portfolio, RiskConfig
from advanced_risk.config import TrackerConfig
from advanced_risk.engine.protocols import Allocation
from advanced_risk.types import RiskDecision

# a deadline no loaded machine misses: the faults below are raised, not late
_CONFIG = RiskConfig(deadline_ms=2_000.0, rate_limit_per_s=None)


class _Allocator:
    """A user's allocator over ("A", "B"); ``answer`` replaces its ``allocate``."""

    asset_count = 2
    asset_names = ("A", "B")

    def __init__(self, answer: Callable[[], Allocation] | None = None, history_length: Any = 3) -> None:
        self._answer = answer
        self._history_length = history_length
        self.breaks_at: int | None = None  # history_length raises once this many bars were asked
        self.asked = 0

    @property
    def history_length(self) -> Any:
        self.asked += 1
        if self.breaks_at is not None and self.asked > self.breaks_at:
            raise RuntimeError("history_length unavailable")
        return self._history_length

    def allocate(self, returns: np.ndarray, weights: np.ndarray, drawdown: float) -> Allocation:
        if self._answer is not None:
            return self._answer()
        return Allocation(np.array([0.4, 0.4, 0.2]), 0.01)


def _bars(n: int, seed: int = 0) -> list[tuple[MarketState, Portfolio]]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        r = rng.normal(0.0, 0.01, 2)
        market = MarketState(returns={"A": float(r[0]), "B": float(r[1])})
        out.append((market, Portfolio(weights={"A": 0.5, "B": 0.3}, equity=1e5)))
    return out


def _decide_all(risk: AdvancedRiskManager, bars: list[Any], entry: str) -> list[RiskDecision]:
    if entry == "sync":
        return [risk.manage_risk_sync(m, p) for m, p in bars]

    async def run() -> list[RiskDecision]:
        return [await risk.manage_risk(m, p) for m, p in bars]

    return asyncio.run(run())


def _raises(exc: BaseException) -> Callable[[], Allocation]:
    def answer() -> Allocation:
        raise exc

    return answer


# -- defect 1: a user's allocator raising a BaseException reached the caller after the bar was consumed


@pytest.mark.parametrize("entry", ["sync", "async"])
@pytest.mark.parametrize(
    "exc", [asyncio.CancelledError(), SystemExit(3)], ids=["cancelled_error", "system_exit"]
)
def test_an_allocator_raising_a_base_exception_is_a_component_fault(entry: str, exc: BaseException) -> None:
    """``asyncio.CancelledError`` (an allocator running its own event loop that timed out) or
    ``SystemExit`` from a user's allocator escaped ``except Exception``: the caller received it
    after the bar had been observed, so the state held a bar without a decision (on the async path
    the manager even took it for the caller's own cancellation). It is the component's fault."""
    risk = AdvancedRiskManager(_CONFIG, policy=_Allocator(_raises(exc)))
    try:
        decisions = _decide_all(risk, _bars(6), entry)
        engine = risk._engine
        assert engine is not None
        assert engine.tracker is not None
        assert engine.tracker.n_observations == risk.metrics()["calls"] == 6  # every bar decided
        last = decisions[-1]
        assert last.degraded
        assert any(f"policy failed: {type(exc).__name__}" in a for a in last.alerts), last.alerts
        assert last.rebalance_weights["A"] <= 0.5
        assert last.rebalance_weights["B"] <= 0.3
        assert risk.read_decision(last.decision_id) == json.loads(last.to_json())
    finally:
        risk.close_sync()


# -- defect 2: an allocator attribute that fails at a bar raised out of the call, bar consumed


@pytest.mark.parametrize("entry", ["sync", "async"])
def test_an_allocator_attribute_failing_mid_run_is_a_component_fault(entry: str) -> None:
    allocator = _Allocator()
    risk = AdvancedRiskManager(_CONFIG, policy=allocator)
    try:
        allocator.breaks_at = allocator.asked + 8  # healthy at construction and for a few bars
        decisions = _decide_all(risk, _bars(12), entry)
        assert risk.metrics()["calls"] == 12
        assert not decisions[3].degraded
        last = decisions[-1]
        assert last.degraded
        assert any("history_length unavailable" in a for a in last.alerts), last.alerts
        assert risk.read_decision(last.decision_id) == json.loads(last.to_json())
    finally:
        risk.close_sync()


# -- defect 3: a user's component declaring a shape the engine cannot honour was taken as is


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"history_length": 5.5}, "policy.history_length"),  # refused at bar 6: "n_rows", bar consumed
        ({"history_length": -3}, "policy.history_length"),  # refused at bar 1, after observing it
        ({"history_length": 10**6}, "policy.history_length"),  # idle for ever, then a short history
        ({"asset_count": 0}, "policy.asset_count"),  # refused at every bar
        ({"asset_names": ("A", "A")}, "policy.asset_names"),  # two weights written on A, B kept
        ({"asset_names": "AB"}, "policy.asset_names"),  # read as the assets "A" and "B"
        ({"asset_names": ("A",)}, "policy.asset_names"),  # degraded at every bar (engine failed)
        ({"asset_names": ("A", 7)}, "policy.asset_names"),
    ],
)
def test_a_component_with_an_impossible_shape_is_refused_at_construction(
    change: dict[str, Any], field: str
) -> None:
    allocator = _Allocator(history_length=change.pop("history_length", 3))
    for name, value in change.items():
        setattr(allocator, name, value)
    with pytest.raises(InvalidInputError, match=field.replace(".", r"\.")):
        AdvancedRiskManager(_CONFIG, policy=allocator)


def test_a_history_as_long_as_the_tracker_keeps_is_accepted() -> None:
    config = RiskConfig(tracker=TrackerConfig(window=20, fhs_window=100, correlation_warmup=5))
    AdvancedRiskManager(config, policy=_Allocator(history_length=100)).close_sync()
    AdvancedRiskManager(config, policy=_Allocator(history_length=0)).close_sync()
    with pytest.raises(InvalidInputError, match=r"\[0, 100\]"):
        AdvancedRiskManager(config, policy=_Allocator(history_length=101))


# -- defect 4: the array entry points read a str of assets as its characters


@pytest.mark.parametrize("entry", ["sync", "async"])
def test_the_array_entry_points_refuse_assets_given_as_one_str(entry: str) -> None:
    risk = AdvancedRiskManager(_CONFIG)
    book = {"weights": {"A": 0.5}}
    try:
        if entry == "sync":
            with pytest.raises(InvalidInputError, match="assets must be a sequence"):
                risk.manage_risk_arrays_sync("AB", book, returns=[0.01, 0.02])
        else:
            with pytest.raises(InvalidInputError, match="assets must be a sequence"):
                asyncio.run(risk.manage_risk_arrays("AB", book, returns=[0.01, 0.02]))
        assert risk.metrics()["calls"] == 0
        decision = risk.manage_risk_arrays_sync(["A", "B"], book, returns=[0.01, 0.02])
        assert set(decision.rebalance_weights) == {"A", "B", "cash"}
    finally:
        risk.close_sync()


# -- guards: worlds that did not break the manager


def _churning_world(
    n: int = 260, seed: int = 1
) -> list[tuple[list[str], dict[str, float], dict[str, float], dict[str, float]]]:
    """Bars whose assets come in a new order every bar: A long, B short, C joins, leaves flat and
    rejoins, D blinks in and out unheld, E joins late with a constant price."""
    rng = np.random.default_rng(seed)
    close = dict.fromkeys("ABCDE", 100.0)
    bars = []
    for t in range(n):
        c_in = 40 <= t < 120 or t >= 180
        present = ["A", "B"] + (["C"] if c_in else []) + (["D"] if t % 7 else []) + (["E"] if t > 10 else [])
        order = [present[i] for i in rng.permutation(len(present))]
        returns = {a: 0.0 if a == "E" else float(rng.normal(0.0, 0.02)) for a in order}
        for a in order:
            close[a] *= 1.0 + returns[a]
        weights = {"A": 0.6, "B": -0.4}
        if c_in:
            weights["C"] = 0.0 if t == 119 else 0.3  # flat at its last bar, so it may leave
        if "E" in present:
            weights["E"] = 0.2
        if "D" in present:
            weights["D"] = 0.0
        bars.append((order, returns, {a: close[a] for a in order}, weights))
    return bars


def _strip(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in ("decision_id", "latency_ms")}


def test_a_churning_reordered_long_short_universe_decides_alike_on_every_entry_point() -> None:
    config = RiskConfig(
        tracker=TrackerConfig(window=60, fhs_window=120, correlation_warmup=15, garch_refit_every=60),
        garch_install_lag=10,
        deterministic_refits=True,
        rate_limit_per_s=None,
        deadline_ms=2_000.0,
    )
    world = _churning_world()

    def replay(entry: str) -> list[dict[str, Any]]:
        risk = AdvancedRiskManager(config)
        rows = []

        async def one(
            order: list[str], r: dict[str, float], px: dict[str, float], book: Portfolio
        ) -> RiskDecision:
            if entry == "async_arrays":
                return await risk.manage_risk_arrays(
                    order, book, returns=[r[a] for a in order], prices=[px[a] for a in order]
                )
            return await risk.manage_risk(MarketState(returns=r, prices=px), book)

        try:
            for order, r, px, weights in world:
                book = Portfolio(weights=weights, equity=1e5)
                if entry == "sync":
                    decision = risk.manage_risk_sync(MarketState(returns=r, prices=px), book)
                elif entry == "sync_arrays":
                    decision = risk.manage_risk_arrays_sync(
                        order, book, returns=[r[a] for a in order], prices=[px[a] for a in order]
                    )
                else:
                    decision = asyncio.run(one(order, r, px, book))
                row = json.loads(decision.to_json())
                assert risk.read_decision(decision.decision_id) == row
                rows.append(_strip(row))
        finally:
            risk.close_sync()
        return rows

    reference = replay("sync")
    assert not any(row["degraded"] for row in reference)
    last = reference[-1]
    assert last["rebalance_weights"]["B"] < 0.0 < last["rebalance_weights"]["A"]  # signs kept
    assert math.isfinite(last["var"])
    assert last["var"] > 0.0
    assert "D" not in last["stop_levels"] or last["stop_levels"]["D"] > 0.0
    for entry in ("sync_arrays", "async", "async_arrays"):
        assert replay(entry) == reference, entry


def test_per_asset_state_follows_a_universe_that_churns_for_thousands_of_bars() -> None:
    """Every few bars an unheld asset leaves and a new one joins: the per-asset state stays the
    size of the universe (the engine's arrays, the tracker, the ATR)."""
    risk = AdvancedRiskManager(RiskConfig(memory_journal_rows=200, rate_limit_per_s=None))
    rng = np.random.default_rng(0)
    try:
        for t in range(2_000):
            names = ["A", "B", *(f"X{t // 3 + k}" for k in range(5))]
            r = rng.normal(0.0, 0.01, len(names))
            market = MarketState(
                returns=dict(zip(names, r.tolist(), strict=True)),
                prices=dict(zip(names, (100.0 * (1.0 + r)).tolist(), strict=True)),
            )
            decision = risk.manage_risk_sync(market, Portfolio(weights={"A": 0.5, "B": -0.2}, equity=1e5))
        engine = risk._engine
        assert engine is not None
        assert engine.tracker is not None
        assert engine.assets is not None
        assert len(engine.assets) == 7
        assert engine.tracker.n_assets == 7
        assert engine._atr.value.shape == (7,)
        assert engine._stop.shape == engine._last_close.shape == engine._held.shape == (7,)
        assert risk.metrics()["degraded"] == 0
        assert not decision.degraded
        assert set(decision.rebalance_weights) == {*names, "cash"}
    finally:
        risk.close_sync()


@pytest.mark.parametrize(
    ("value", "field"),
    [
        (-1.0, "returns['A']"),
        (float("nan"), "returns['A']"),
        (float("-inf"), "returns['A']"),
        (1e6, "returns['A']"),
        (2**1100, "returns['A']"),
    ],
)
def test_extreme_returns_are_refused_naming_the_field_and_denormals_are_taken(value: Any, field: str) -> None:
    risk = AdvancedRiskManager(_CONFIG)
    book = {"weights": {"A": 0.5, "B": -0.5}}
    try:
        for r in (-0.9999, 5e-324, -5e-324, 10.0):  # the edge of the range, and denormals
            decision = risk.manage_risk_sync({"returns": {"A": r, "B": 0.0}}, book)
            assert not decision.degraded
        tracker = risk._engine.tracker if risk._engine is not None else None
        assert tracker is not None
        seen = tracker.n_observations
        with pytest.raises(InvalidInputError, match=re.escape(field)):
            risk.manage_risk_sync({"returns": {"A": value, "B": 0.0}}, book)
        assert tracker.n_observations == seen  # nothing changed
    finally:
        risk.close_sync()


def test_historical_var_of_a_long_short_book_matches_numpy_on_the_decided_book() -> None:
    """VaR is the 1 % linear quantile of the decided book's (weights x leverage) P&L over the
    window (numpy), CVaR the mean of the ceil(1 % x 250) = 3 worst bars."""
    rng = np.random.default_rng(5)
    returns = rng.standard_t(4, size=(300, 3)) * 0.01
    book = {"A": 0.7, "B": -0.4, "C": 0.2}
    risk = AdvancedRiskManager(RiskConfig(tracker=TrackerConfig(method="historical", window=250)))
    try:
        for row in returns:
            market = MarketState(returns=dict(zip("ABC", row.tolist(), strict=True)))
            decision = risk.manage_risk_sync(market, Portfolio(weights=book))
    finally:
        risk.close_sync()
    held = np.array([decision.rebalance_weights[a] for a in "ABC"]) * decision.leverage
    pnl = returns[-250:] @ held
    assert decision.var == pytest.approx(-np.quantile(pnl, 0.01), rel=1e-9)
    assert decision.cvar == pytest.approx(-np.sort(pnl)[:3].mean(), rel=1e-9)
