"""Issue 10: every book a bot runs (one asset to 500, shorts, leverage, a changing universe, any frequency).

The scenario matrix drives the sync twin with synthetic bars of a one-factor market (assets share a
market factor, so correlation is defined and a long-short pair partly hedges itself) and checks the
contract of one decision on clean input: never degraded, finite figures once warm, signs kept,
stops on the right side of the price, one-asset correlation reported as NaN.
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass

import numpy as np
import pytest

from advanced_risk import AdvancedRiskManager, MarketState, Portfolio, RiskConfig
from advanced_risk.errors import InvalidInputError
from advanced_risk.types import RiskDecision, TradingState

WARM = 265  # tracker window (250) + a margin; ATR(14) is warm long before

FREQUENCIES = {"daily": 252, "minute": 252 * 390, "24/7": 365}


@dataclass
class Market:
    """A one-factor market: r_i = beta_i * f + e_i, per-bar vol scaled to the bar frequency."""

    names: tuple[str, ...]
    periods_per_year: int
    seed: int = 0

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed)
        n = len(self.names)
        self.beta = self.rng.uniform(0.6, 1.4, n)
        self.vol = 0.20 / math.sqrt(self.periods_per_year)
        self.prices = self.rng.uniform(20.0, 200.0, n)

    def bar(self) -> MarketState:
        n = len(self.names)
        factor = self.rng.normal(0.0, self.vol)
        r = np.clip(self.beta * factor + self.rng.normal(0.0, self.vol * 0.6, n), -0.5, 0.5)
        close = self.prices * (1.0 + r)
        wick = np.abs(self.rng.normal(0.0, self.vol * 0.5, n))
        self.prices = close
        return MarketState(
            returns=dict(zip(self.names, r.tolist(), strict=True)),
            prices=dict(zip(self.names, close.tolist(), strict=True)),
            high=dict(zip(self.names, (close * (1.0 + wick)).tolist(), strict=True)),
            low=dict(zip(self.names, (close * (1.0 - wick)).tolist(), strict=True)),
        )


def _book(names: tuple[str, ...], kind: str) -> dict[str, float]:
    n = len(names)
    if kind == "long-only":
        w = np.full(n, 0.9 / n)
    elif kind == "long-short":  # 150 % long, 50 % short (a single asset: short alone)
        w = np.full(n, -0.5) if n == 1 else np.where(np.arange(n) % 2 == 0, 1.5, -0.5) / math.ceil(n / 2)
    else:  # leveraged: 1.5x gross, long
        w = np.full(n, 1.5 / n)
    return dict(zip(names, w.tolist(), strict=True))


def _config(periods_per_year: int) -> RiskConfig:
    # deterministic_refits: a fast replay waits for GARCH refits instead of racing them (docs)
    return RiskConfig(periods_per_year=periods_per_year, deterministic_refits=True, rate_limit_per_s=None)


def _check_warm(decision: RiskDecision, market: MarketState, weights: dict[str, float]) -> None:
    assert not decision.degraded, decision.alerts
    assert math.isfinite(decision.var)
    assert decision.var > 0.0
    assert math.isfinite(decision.cvar)
    assert decision.cvar >= decision.var
    assert math.isfinite(decision.leverage)
    assert decision.leverage >= 0.0
    assert set(decision.position_sizes) == set(weights)
    assert all(math.isfinite(v) and v >= 0.0 for v in decision.position_sizes.values())
    for asset, w in weights.items():
        target = decision.rebalance_weights[asset]
        assert target * w >= 0.0, f"{asset}: held {w}, decided {target}: a sign flipped"
        if decision.trading_state is TradingState.ACTIVE:
            assert target == pytest.approx(w), "with no policy, an ACTIVE decision keeps the book"
        stop, price = decision.stop_levels[asset], market.prices[asset]
        assert (stop > price) if w < 0 else (stop < price), f"{asset} ({w}): stop {stop} vs close {price}"
    cash = decision.rebalance_weights["cash"]
    assert cash == pytest.approx(1.0 - sum(decision.rebalance_weights[a] for a in weights))


# 500 assets: one case in the fast suite, the other eight (~5 s) in the slow one; larger books are
# decided fast by tests/unit/test_observe_kernels_adversarial.py (1,000 assets) and others
@pytest.mark.parametrize(
    ("n_assets", "kind", "frequency"),
    [
        pytest.param(
            n,
            kind,
            frequency,
            id=f"{n}-{kind}-{frequency}",
            marks=[pytest.mark.slow] if n == 500 and (kind, frequency) != ("long-short", "daily") else [],
        )
        for n in (1, 2, 20, 500)
        for kind in ("long-only", "long-short", "leveraged")
        for frequency in FREQUENCIES
    ],
)
def test_scenario_matrix_no_degraded_decision_finite_once_warm_signs_kept(
    n_assets: int, kind: str, frequency: str
) -> None:
    names = tuple(f"A{i:03d}" for i in range(n_assets))
    market = Market(names, FREQUENCIES[frequency], seed=n_assets)
    weights = _book(names, kind)
    risk = AdvancedRiskManager(_config(FREQUENCIES[frequency]))
    equity = 1e6
    try:
        for t in range(WARM + 5):
            bar = market.bar()
            decision = risk.manage_risk_sync(bar, Portfolio(weights=weights, equity=equity))
            assert not decision.degraded, (t, decision.alerts)
            if t >= WARM:
                _check_warm(decision, bar, weights)
        if n_assets == 1:
            assert math.isnan(decision.correlation.average)
            assert json.loads(decision.to_json())["correlation"]["average"] is None
        else:
            assert -1.0 <= decision.correlation.average <= 1.0
    finally:
        risk.close_sync()


def _run_book(weights: dict[str, float], bars: list[MarketState]) -> RiskDecision:
    risk = AdvancedRiskManager(_config(252))
    try:
        for bar in bars:
            decision = risk.manage_risk_sync(bar, Portfolio(weights=weights, equity=1e6))
    finally:
        risk.close_sync()
    return decision


def test_var_of_a_hedged_pair_is_below_either_leg() -> None:
    """A short against a correlated long lowers VaR: the signed book is priced, not its gross."""
    market = Market(("A", "B"), 252, seed=3)
    market.beta = np.array([1.0, 1.0])  # the same factor exposure: a good hedge
    bars = [market.bar() for _ in range(WARM)]
    pair = _run_book({"A": 0.5, "B": -0.5}, bars)
    long_a = _run_book({"A": 0.5, "B": 0.0}, bars)
    short_b = _run_book({"A": 0.0, "B": -0.5}, bars)
    # leverage is volatility-targeted per book: compare VaR per unit of exposure
    assert pair.var / pair.leverage < long_a.var / long_a.leverage
    assert pair.var / pair.leverage < short_b.var / short_b.leverage


def test_shorts_are_kept_and_cash_is_one_minus_the_net_weight() -> None:
    names = ("A", "B", "C")
    market = Market(names, 252, seed=5)
    risk = AdvancedRiskManager(_config(252))
    try:
        for _ in range(20):
            decision = risk.manage_risk_sync(
                market.bar(), Portfolio(weights={"A": 0.6, "B": -0.4, "C": 0.3}, equity=1e6)
            )
    finally:
        risk.close_sync()
    assert decision.rebalance_weights == pytest.approx({"A": 0.6, "B": -0.4, "C": 0.3, "cash": 0.5})
    assert decision.stop_levels["B"] > market.prices[1]
    assert decision.stop_levels["A"] < market.prices[0]


def test_a_short_stop_trails_down_and_never_rises() -> None:
    risk = AdvancedRiskManager(_config(252))
    price, stops = 100.0, []
    try:
        for t in range(60):
            price *= 0.99 if t < 40 else 1.0005  # falls, then edges up (staying below the stop)
            bar = MarketState(
                returns={"X": -0.01 if t < 40 else 0.0005},
                prices={"X": price},
                high={"X": price * 1.005},
                low={"X": price * 0.995},
            )
            decision = risk.manage_risk_sync(bar, Portfolio(weights={"X": -0.5}, equity=1e5))
            if "X" in decision.stop_levels:
                stops.append(decision.stop_levels["X"])
    finally:
        risk.close_sync()
    assert len(stops) > 30
    assert all(b <= a for a, b in itertools.pairwise(stops)), "a short's stop only falls"
    assert stops[-1] > price


def test_halted_closes_every_position_and_says_which() -> None:
    risk = AdvancedRiskManager(_config(252))
    market = Market(("A", "B"), 252, seed=9)
    try:
        risk.manage_risk_sync(market.bar(), Portfolio(weights={"A": 0.5, "B": -0.5}, equity=1e6))
        asyncio_run_kill_switch(risk)
        decision = risk.manage_risk_sync(market.bar(), Portfolio(weights={"A": 0.5, "B": -0.5}, equity=1e6))
    finally:
        risk.close_sync()
    assert decision.trading_state is TradingState.HALTED
    assert decision.rebalance_weights["A"] == 0.0
    assert decision.rebalance_weights["B"] == 0.0
    assert any(a.startswith("closing A, B") for a in decision.alerts), decision.alerts


def asyncio_run_kill_switch(risk: AdvancedRiskManager) -> None:
    import asyncio

    asyncio.run(risk.engage_kill_switch("test"))


# -- a changing universe ------------------------------------------------------------------------------
def _bar(prices: dict[str, float]) -> MarketState:
    return MarketState(
        prices=prices,
        high={a: p * 1.01 for a, p in prices.items()},
        low={a: p * 0.99 for a, p in prices.items()},
    )


def test_an_asset_joins_mid_run_and_warms_up_on_its_own() -> None:
    rng = np.random.default_rng(1)
    risk = AdvancedRiskManager(_config(252))
    px = {"A": 100.0, "B": 50.0}
    try:
        for _ in range(WARM):
            px = {a: p * (1 + rng.normal(0, 0.01)) for a, p in px.items()}
            decision = risk.manage_risk_sync(_bar(px), Portfolio(weights={"A": 0.5, "B": 0.3}, equity=1e6))
        assert math.isfinite(decision.var)
        px["D"] = 20.0
        seen: list[RiskDecision] = []
        for _ in range(20):
            px = {a: p * (1 + rng.normal(0, 0.01)) for a, p in px.items()}
            book = Portfolio(weights={"A": 0.4, "B": 0.3, "D": 0.2}, equity=1e6)
            seen.append(risk.manage_risk_sync(_bar(px), book))
    finally:
        risk.close_sync()
    assert not any(d.degraded for d in seen)
    first, last = seen[0], seen[-1]
    assert "D" in first.rebalance_weights
    assert "D" not in first.stop_levels
    assert any(a.startswith("VaR/CVaR: fewer than 250 bars of history for D;") for a in first.alerts), (
        first.alerts
    )
    assert "D" in last.stop_levels
    assert "D" in last.position_sizes
    assert last.position_sizes["D"] > 0.0 or last.trading_state is not TradingState.ACTIVE
    assert all(math.isfinite(d.var) for d in seen)


def test_an_asset_leaves_once_flat_and_a_held_one_is_refused() -> None:
    risk = AdvancedRiskManager(_config(252))
    try:
        risk.manage_risk_sync(
            _bar({"A": 100.0, "B": 50.0}), Portfolio(weights={"A": 0.5, "B": 0.3}, equity=1e6)
        )
        with pytest.raises(InvalidInputError, match=r"left the universe while held"):
            risk.manage_risk_sync(_bar({"A": 101.0}), Portfolio(weights={"A": 0.5}, equity=1e6))
        # flat at the previous bar: B may leave
        risk.manage_risk_sync(
            _bar({"A": 100.0, "B": 50.0}), Portfolio(weights={"A": 0.5, "B": 0.0}, equity=1e6)
        )
        decision = risk.manage_risk_sync(_bar({"A": 101.0}), Portfolio(weights={"A": 0.5}, equity=1e6))
        assert set(decision.rebalance_weights) == {"A", "cash"}
        # ... and come back later as a new asset
        back = risk.manage_risk_sync(_bar({"A": 101.0, "B": 55.0}), Portfolio(weights={"A": 0.5}, equity=1e6))
        assert set(back.rebalance_weights) == {"A", "B", "cash"}
        assert not back.degraded
    finally:
        risk.close_sync()


def test_a_held_asset_may_leave_in_the_bar_that_lists_it_at_zero() -> None:
    risk = AdvancedRiskManager(_config(252))
    try:
        risk.manage_risk_sync(
            _bar({"A": 100.0, "B": 50.0}), Portfolio(weights={"A": 0.5, "B": 0.3}, equity=1e6)
        )
        decision = risk.manage_risk_sync(
            _bar({"A": 100.0}), Portfolio(weights={"A": 0.5, "B": 0.0}, equity=1e6)
        )
        assert set(decision.rebalance_weights) == {"A", "cash"}
    finally:
        risk.close_sync()


def test_a_rename_of_a_held_asset_is_refused_with_a_clear_error() -> None:
    risk = AdvancedRiskManager(_config(252))
    try:
        risk.manage_risk_sync(_bar({"BTC": 100.0}), Portfolio(weights={"BTC": 0.5}, equity=1e6))
        with pytest.raises(InvalidInputError, match=r"\['BTC'\] left the universe while held.*renamed"):
            risk.manage_risk_sync(_bar({"XBT": 100.0}), Portfolio(weights={"XBT": 0.5}, equity=1e6))
        # the refused bar changed nothing: the old universe still decides
        decision = risk.manage_risk_sync(_bar({"BTC": 101.0}), Portfolio(weights={"BTC": 0.5}, equity=1e6))
        assert set(decision.rebalance_weights) == {"BTC", "cash"}
    finally:
        risk.close_sync()


def test_a_holding_without_market_data_is_refused() -> None:
    risk = AdvancedRiskManager(_config(252))
    try:
        with pytest.raises(InvalidInputError, match=r"portfolio.weights holds \['Z'\]"):
            risk.manage_risk_sync(_bar({"A": 100.0}), Portfolio(weights={"A": 0.5, "Z": 0.1}, equity=1e6))
    finally:
        risk.close_sync()


def test_restart_with_another_universe_keeps_the_safety_state(tmp_path: object) -> None:
    import asyncio
    from pathlib import Path

    path = str(Path(str(tmp_path)) / "risk.db")
    config = RiskConfig(state_path=path, rate_limit_per_s=None, deterministic_refits=True)
    first = AdvancedRiskManager(config)
    try:
        first.manage_risk_sync(_bar({"A": 100.0, "B": 50.0}), Portfolio(weights={"A": 0.5}, equity=2e6))
        asyncio.run(first.engage_kill_switch("operator"))
    finally:
        first.close_sync()
    second = AdvancedRiskManager(config)
    try:
        decision = second.manage_risk_sync(
            _bar({"C": 10.0, "D": 20.0, "E": 30.0}), Portfolio(weights={"C": 0.2}, equity=1.5e6)
        )
    finally:
        second.close_sync()
    assert decision.trading_state is TradingState.HALTED
    assert set(decision.rebalance_weights) == {"C", "D", "E", "cash"}
    assert True  # closed
    assert decision.risk_level.value == "critical"


def test_one_asset_from_the_bundled_index_600_bars_never_degraded() -> None:
    from advanced_risk.data import load_sp500_index

    ohlc = load_sp500_index().iloc[:600]
    risk = AdvancedRiskManager(RiskConfig(rate_limit_per_s=None, deterministic_refits=True))
    decisions = []
    try:
        previous = None
        for row in ohlc.itertuples():
            close = float(row.Close)
            returns = {} if previous is None else {"SPX": close / previous - 1.0}
            market = MarketState(
                returns=returns,
                prices={"SPX": close},
                high={"SPX": float(row.High)},
                low={"SPX": float(row.Low)},
            )
            decisions.append(risk.manage_risk_sync(market, Portfolio(weights={"SPX": 0.5}, equity=1e6)))
            previous = close
    finally:
        risk.close_sync()
    assert not any(d.degraded for d in decisions)
    last = decisions[-1]
    assert math.isfinite(last.var)
    assert math.isfinite(last.cvar)
    assert last.position_sizes["SPX"] > 0.0
    assert last.stop_levels["SPX"] < ohlc["Close"].iloc[-1]
    assert math.isnan(last.correlation.average)
