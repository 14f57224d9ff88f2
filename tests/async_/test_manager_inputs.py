"""Bad input at the manager's edge (issue 5): InvalidInputError naming the field, and no state changed."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from typing import Any

import pytest

from advanced_risk.config import RiskConfig
from advanced_risk.errors import InvalidInputError
from advanced_risk.manager import AdvancedRiskManager

from .conftest import ASSETS, BarFeed, FakeAllocator, fast_config

NAN, INF = float("nan"), float("inf")
Market = dict[str, Any]
Book = dict[str, Any]
Mutation = Callable[[Market, Book], tuple[Any, Any]]


def _set(where: str, key: str, asset: str | None, value: Any) -> Mutation:
    """A mutation setting ``market[key][asset]`` (or ``market[key]``) or the portfolio's equivalent."""

    def mutate(market: Market, book: Book) -> tuple[Any, Any]:
        target = market if where == "market" else book
        if asset is None:
            target[key] = value
        else:
            target[key] = {**target[key], asset: value}
        return market, book

    return mutate


def _drop(key: str, asset: str) -> Mutation:
    def mutate(market: Market, book: Book) -> tuple[Any, Any]:
        market[key] = {a: v for a, v in market[key].items() if a != asset}
        return market, book

    return mutate


def _replace(market: Any = ..., book: Any = ...) -> Mutation:
    def mutate(m: Market, b: Book) -> tuple[Any, Any]:
        return (m if market is ... else market), (b if book is ... else book)

    return mutate


def _with(**fields: Any) -> Mutation:
    def mutate(market: Market, book: Book) -> tuple[Any, Any]:
        market.update(fields)
        return market, book

    return mutate


BAD_INPUTS: list[tuple[str, Mutation, str]] = [
    # returns
    ("return_nan", _set("market", "returns", "aaa", NAN), "market_state.returns['aaa']"),
    ("return_inf", _set("market", "returns", "aaa", INF), "market_state.returns['aaa']"),
    ("return_minus_inf", _set("market", "returns", "bbb", -INF), "market_state.returns['bbb']"),
    ("return_total_loss", _set("market", "returns", "aaa", -1.0), "market_state.returns['aaa']"),
    ("return_absurd", _set("market", "returns", "aaa", 1e10), "market_state.returns['aaa']"),
    ("return_overflowing", _set("market", "returns", "bbb", 1e200), "market_state.returns['bbb']"),
    (
        "price_jump_absurd_without_returns",
        lambda m, b: ({"prices": {**m["prices"], "ccc": 1e300}}, b),
        "market_state.prices['ccc']",
    ),
    ("return_string", _set("market", "returns", "aaa", "0.01"), "market_state.returns['aaa']"),
    ("return_bool", _set("market", "returns", "aaa", True), "market_state.returns['aaa']"),
    ("return_none", _set("market", "returns", "aaa", None), "market_state.returns['aaa']"),
    ("returns_list", _set("market", "returns", None, [0.01, 0.02, 0.0, 0.0]), "market_state.returns"),
    ("returns_unknown_asset", _set("market", "returns", "zzz", 0.01), "market_state.returns"),
    ("returns_missing_asset", _drop("returns", "ddd"), "market_state.returns"),
    ("returns_non_string_key", _set("market", "returns", 7, 0.01), "market_state.returns"),  # type: ignore[arg-type]
    # prices, high, low
    ("price_nan", _set("market", "prices", "aaa", NAN), "market_state.prices['aaa']"),
    ("price_inf", _set("market", "prices", "aaa", INF), "market_state.prices['aaa']"),
    ("price_zero", _set("market", "prices", "ccc", 0.0), "market_state.prices['ccc']"),
    ("price_negative", _set("market", "prices", "aaa", -5.0), "market_state.prices['aaa']"),
    ("price_string", _set("market", "prices", "aaa", "100"), "market_state.prices['aaa']"),
    ("prices_unknown_asset", _set("market", "prices", "zzz", 10.0), "market_state.prices"),
    ("prices_missing_asset", _drop("prices", "aaa"), "market_state.prices"),
    ("high_below_low", _set("market", "high", "aaa", 50.0), "market_state.high['aaa']"),
    ("price_above_high", _set("market", "prices", "aaa", 1_000.0), "market_state.prices['aaa']"),
    ("price_below_low", _set("market", "prices", "aaa", 1.0), "market_state.prices['aaa']"),
    (
        "price_above_high_without_low",
        lambda m, b: (
            {"returns": m["returns"], "prices": m["prices"], "high": {**m["high"], "aaa": 1.0}},
            b,
        ),
        "market_state.prices['aaa']",
    ),
    (
        "price_below_low_without_high",
        lambda m, b: (
            {"returns": m["returns"], "prices": m["prices"], "low": {**m["low"], "aaa": 1e4}},
            b,
        ),
        "market_state.prices['aaa']",
    ),
    ("high_nan", _set("market", "high", "aaa", NAN), "market_state.high['aaa']"),
    ("low_negative", _set("market", "low", "aaa", -1.0), "market_state.low['aaa']"),
    ("high_other_assets", _drop("high", "bbb"), "market_state.high"),
    # summary fields
    ("volatility_nan", _with(volatility=NAN), "market_state.volatility"),
    ("volatility_inf", _with(volatility=INF), "market_state.volatility"),
    ("volatility_negative", _with(volatility=-0.2), "market_state.volatility"),
    ("volatility_string", _with(volatility="high"), "market_state.volatility"),
    ("volatility_bool", _with(volatility=True), "market_state.volatility"),
    ("trend_nan", _with(trend=NAN), "market_state.trend"),
    ("trend_inf", _with(trend=-INF), "market_state.trend"),
    ("market_unknown_field", _with(volatilty=0.2), "volatilty"),
    # shapes
    (
        "returns_vs_prices_assets",
        lambda m, b: ({**m, "returns": {a: 0.0 for a in ASSETS[:3]}}, b),
        "market_state.returns",
    ),
    # portfolio
    ("drawdown_negative", _set("book", "current_drawdown", None, -0.1), "current_drawdown"),
    ("drawdown_above_one", _set("book", "current_drawdown", None, 1.5), "current_drawdown"),
    ("drawdown_nan", _set("book", "current_drawdown", None, NAN), "current_drawdown"),
    ("drawdown_string", _set("book", "current_drawdown", None, "2%"), "current_drawdown"),
    ("weight_nan", _set("book", "weights", "aaa", NAN), "portfolio.weights['aaa']"),
    ("weight_inf", _set("book", "weights", "aaa", INF), "portfolio.weights['aaa']"),
    ("weight_string", _set("book", "weights", "aaa", "half"), "portfolio.weights['aaa']"),
    ("weight_bool", _set("book", "weights", "aaa", False), "portfolio.weights['aaa']"),
    ("weight_unknown_asset", _set("book", "weights", "zzz", 0.1), "portfolio.weights"),
    ("weights_list", _set("book", "weights", None, [0.1, 0.2]), "portfolio.weights"),
    ("equity_negative", _set("book", "equity", None, -1.0), "portfolio.equity"),
    ("equity_zero", _set("book", "equity", None, 0.0), "portfolio.equity"),
    ("equity_nan", _set("book", "equity", None, NAN), "portfolio.equity"),
    ("peak_below_equity", _set("book", "peak_equity", None, 1.0), "portfolio.peak_equity"),
    ("weights_and_flat_keys", _set("book", "btc", None, 0.5), "portfolio"),
    # wrong types and empty
    ("market_list", _replace(market=[0.01, 0.02]), "market_state"),
    ("market_none", _replace(market=None), "market_state"),
    ("market_string", _replace(market="volatile"), "market_state"),
    ("market_empty", _replace(market={}), "market_state"),
    ("market_non_string_key", _replace(market={1: 0.3}), "market_state"),
    ("portfolio_list", _replace(book=[0.5, 0.3]), "portfolio"),
    ("portfolio_none", _replace(book=None), "portfolio"),
    ("portfolio_empty", _replace(book={}), "portfolio"),
]


async def _state(risk: AdvancedRiskManager) -> dict[str, Any]:
    """Everything a bad input must leave alone."""
    engine = risk._engine
    journal = risk._journal
    assert engine is not None
    assert journal is not None
    await risk.flush()
    rows = await asyncio.wrap_future(journal.call(lambda store: store.count()))
    tracker = engine.tracker
    atr = engine._atr
    metrics = risk.metrics()
    return {
        "calls": metrics["calls"],
        "degraded": metrics["degraded"],
        "rows": rows,
        "n_observations": None if tracker is None else tracker.n_observations,
        "recent": None if tracker is None else tracker.recent_returns(3).tolist(),
        "peak_equity": engine.peak_equity,
        "assets": engine.assets,
        "last_close": None if engine._last_close is None else engine._last_close.tolist(),
        "atr_count": None if atr is None else atr.count,
        "streaks": (engine._var_streak.count, engine._loss_streak.count),
        "machine": (engine.machine.state, engine.machine.halt_votes, engine.machine.kill_switch),
        "stops": (engine._stop.tolist(), engine._stop_short.tolist()),
        "held": engine._held.tolist(),
        "last": engine.last,
    }


def _valid(feed: BarFeed) -> tuple[Market, Book]:
    market, book = feed.next()
    book["current_drawdown"] = 0.0
    return market, book


@pytest.mark.parametrize(("mutation", "field"), [c[1:] for c in BAD_INPUTS], ids=[c[0] for c in BAD_INPUTS])
@pytest.mark.asyncio
async def test_bad_input_raises_invalid_input_naming_the_field_and_changes_no_state(
    mutation: Mutation, field: str
) -> None:
    feed = BarFeed(seed=11)
    async with AdvancedRiskManager(fast_config(), policy=FakeAllocator(history_length=3)) as risk:
        for _ in range(20):  # universe fixed, tracker, ATR, stops and the policy all warmed up
            await risk.manage_risk(*_valid(feed))
        before = await _state(risk)
        market, book = _valid(feed)
        bad_market, bad_book = mutation(market, book)
        with pytest.raises(InvalidInputError, match=None) as info:
            await risk.manage_risk(bad_market, bad_book)
        assert field in str(info.value), str(info.value)
        with pytest.raises(InvalidInputError):
            risk.manage_risk_sync(bad_market, bad_book)
        assert await _state(risk) == before
        decision = await risk.manage_risk(*_valid(feed))  # and a valid call still works
        assert not decision.degraded, decision.alerts
        assert risk.metrics()["calls"] == before["calls"] + 1


def test_the_table_has_at_least_40_malformed_inputs() -> None:
    assert len(BAD_INPUTS) >= 40
    assert len({name for name, _, _ in BAD_INPUTS}) == len(BAD_INPUTS)


@pytest.mark.asyncio
async def test_cash_is_a_reserved_asset_name() -> None:
    async with AdvancedRiskManager(fast_config()) as risk:
        with pytest.raises(InvalidInputError, match="'cash' is reserved"):
            await risk.manage_risk({"returns": {"cash": 0.0, "aaa": 0.01}}, {"aaa": 0.5})
        with pytest.raises(InvalidInputError, match="'cash' is reserved"):
            await risk.manage_risk({"volatility": 0.2}, {"cash": 0.5, "aaa": 0.5})
        assert risk._engine is not None
        assert risk._engine.assets is None
        decision = await risk.manage_risk({"volatility": 0.2}, {"aaa": 0.5})
    assert set(decision.rebalance_weights) == {"aaa", "cash"}


@pytest.mark.asyncio
async def test_a_universe_of_the_wrong_size_for_the_policy_is_refused() -> None:
    async with AdvancedRiskManager(fast_config(), policy=FakeAllocator(asset_count=3)) as risk:
        with pytest.raises(InvalidInputError, match="trained on 3 unnamed assets"):
            await risk.manage_risk({"returns": dict.fromkeys(ASSETS, 0.0)}, {"aaa": 0.1})
        assert risk.metrics()["calls"] == 0


@pytest.mark.asyncio
async def test_the_first_bad_bar_does_not_fix_the_universe() -> None:
    async with AdvancedRiskManager(fast_config()) as risk:
        with pytest.raises(InvalidInputError):
            await risk.manage_risk({"returns": {"x": NAN}}, {"x": 0.5})
        decision = await risk.manage_risk({"returns": {"y": 0.01}}, {"y": 0.5})
    assert set(decision.rebalance_weights) == {"y", "cash"}


BAD_CONFIGS: list[tuple[dict[str, Any], str]] = [
    ({"deadline_ms": -1}, "deadline_ms"),
    ({"deadline_ms": 0}, "deadline_ms"),
    ({"deadline_ms": NAN}, "deadline_ms"),
    ({"rate_limit_per_s": 0}, "rate_limit_per_s"),
    ({"rate_limit_per_s": -5.0}, "rate_limit_per_s"),
    ({"mc_samples": 0}, "mc_samples"),
    ({"mc_samples": 2.5}, "mc_samples"),
    ({"alpha": 1.5}, "alpha"),
    ({"reduce_drawdown": 0.2, "halt_drawdown": 0.1}, "halt_drawdown"),
    ({"halt_confirmations": 0}, "halt_confirmations"),
    ({"uncertainty_threshold": -1.0}, "uncertainty_threshold"),
    ({"degraded_leverage_factor": 2.0}, "degraded_leverage_factor"),
    ({"degraded_hedge_ratio": -0.1}, "degraded_hedge_ratio"),
    ({"state_path": 123}, "state_path"),
    ({"tracker": {"method": "astrology"}}, "method"),
]


@pytest.mark.parametrize(("fields", "name"), BAD_CONFIGS, ids=[n for _, n in BAD_CONFIGS])
def test_a_bad_config_value_raises_invalid_input_naming_it(fields: dict[str, Any], name: str) -> None:
    with pytest.raises(InvalidInputError, match=name):
        RiskConfig(**fields)


def test_a_manager_refuses_what_is_not_a_config_or_a_policy() -> None:
    with pytest.raises(InvalidInputError, match="config"):
        AdvancedRiskManager({"deadline_ms": 5})  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="policy"):
        AdvancedRiskManager(policy=42)


def test_the_sync_twin_refuses_bad_input_the_same_way() -> None:
    risk = AdvancedRiskManager(fast_config())
    try:
        risk.manage_risk_sync({"volatility": 0.2}, {"aaa": 0.5})
        with pytest.raises(InvalidInputError, match="current_drawdown"):
            risk.manage_risk_sync({"volatility": 0.2}, {"aaa": 0.5, "current_drawdown": -1})
        assert risk.metrics()["calls"] == 1
    finally:
        risk.close_sync()
    assert math.isfinite(risk.metrics()["latency_p50_ms"])
