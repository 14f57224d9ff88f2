"""Issue 10: one setting, one meaning (Kelly, trend, price-derived returns, bar frequency) and a
policy that covers the assets it was trained on, by name."""

from __future__ import annotations

import math

import numpy as np
import pytest

from advanced_risk import AdvancedRiskManager, MarketState, Portfolio, RiskConfig
from advanced_risk.config import KellyConfig
from advanced_risk.engine.protocols import Allocation
from advanced_risk.errors import InvalidInputError
from advanced_risk.types import TradingState

FAST = {"rate_limit_per_s": None, "deterministic_refits": True, "deadline_ms": 1_000.0}  # not timing tests


def _ohlc(prices: dict[str, float]) -> MarketState:
    return MarketState(
        prices=prices,
        high={a: p * 1.01 for a, p in prices.items()},
        low={a: p * 0.99 for a, p in prices.items()},
    )


def test_trend_alone_is_refused_as_input() -> None:
    risk = AdvancedRiskManager(RiskConfig(**FAST))
    try:
        with pytest.raises(InvalidInputError, match="trend alone"):
            risk.manage_risk_sync(MarketState(trend=0.05), Portfolio(weights={"A": 0.5}))
        decision = risk.manage_risk_sync(
            MarketState(volatility=0.2, trend=0.05), Portfolio(weights={"A": 0.5})
        )
    finally:
        risk.close_sync()
    assert not decision.degraded


NO_DATA = r"market_state (needs returns, prices or volatility|is empty)"


@pytest.mark.asyncio
@pytest.mark.parametrize("empty", [MarketState(), MarketState(trend=0.05), {}, {"trend": 0.05}])
async def test_a_bar_without_market_data_is_refused_after_history_too(empty: object) -> None:
    """A feed glitch's empty bar after many good ones: refused on both entry points, and nothing
    changes (the next decision is the one of a twin that never saw it). Accepted, it got a
    healthy-looking decision on the last bar's data with no sign of it."""
    risk, twin = AdvancedRiskManager(RiskConfig(**FAST)), AdvancedRiskManager(RiskConfig(**FAST))
    book = Portfolio(weights={"A": 0.5, "B": -0.2}, equity=1e5)
    bars = [_ohlc({"A": 100.0 + t, "B": 50.0 - 0.1 * t}) for t in range(31)]
    try:
        for bar in bars[:-1]:
            await risk.manage_risk(bar, book)
            await twin.manage_risk(bar, book)
        with pytest.raises(InvalidInputError, match=NO_DATA):
            risk.manage_risk_sync(empty, book)  # type: ignore[arg-type]
        with pytest.raises(InvalidInputError, match=NO_DATA):
            await risk.manage_risk(empty, book)  # type: ignore[arg-type]
        after, expected = risk.manage_risk_sync(bars[-1], book), twin.manage_risk_sync(bars[-1], book)
    finally:
        risk.close_sync()
        twin.close_sync()
    assert not after.degraded
    assert (after.stop_levels, after.position_sizes, after.leverage) == (
        expected.stop_levels,
        expected.position_sizes,
        expected.leverage,
    )
    assert after.var == expected.var or (math.isnan(after.var) and math.isnan(expected.var))


@pytest.mark.parametrize("bad_price", [1e-300, 0.5e-300])
def test_price_derived_returns_meet_the_rules_of_given_returns(bad_price: float) -> None:
    """A price that implies a return of -100 % (or beyond MAX_BAR_RETURN) is refused; nothing changes."""
    risk = AdvancedRiskManager(RiskConfig(**FAST))
    try:
        for _ in range(20):
            risk.manage_risk_sync(_ohlc({"A": 100.0}), Portfolio(weights={"A": 0.5}, equity=1e5))
        before = risk.manage_risk_sync(_ohlc({"A": 100.0}), Portfolio(weights={"A": 0.5}, equity=1e5))
        with pytest.raises(InvalidInputError, match=r"market_state.prices\['A'\].*a data error"):
            risk.manage_risk_sync(_ohlc({"A": bad_price}), Portfolio(weights={"A": 0.5}, equity=1e5))
        with pytest.raises(InvalidInputError, match=r"market_state.prices\['A'\]"):
            risk.manage_risk_sync(_ohlc({"A": 1e5}), Portfolio(weights={"A": 0.5}, equity=1e5))  # +99,900 %
        after = risk.manage_risk_sync(_ohlc({"A": 100.0}), Portfolio(weights={"A": 0.5}, equity=1e5))
    finally:
        risk.close_sync()
    assert not after.degraded
    assert after.stop_levels["A"] == pytest.approx(before.stop_levels["A"])  # the ATR never saw the tick
    assert after.position_sizes["A"] == pytest.approx(before.position_sizes["A"], rel=1e-6)


def test_an_absurd_first_price_is_refused() -> None:
    risk = AdvancedRiskManager(RiskConfig(**FAST))
    try:
        with pytest.raises(InvalidInputError, match=r"market_state\.prices"):
            risk.manage_risk_sync(MarketState(prices={"A": 1e308}), Portfolio(weights={"A": 0.5}))
    finally:
        risk.close_sync()


def _trending(names: tuple[str, ...], drift: np.ndarray, bars: int, seed: int = 0) -> list[MarketState]:
    rng = np.random.default_rng(seed)
    prices = np.full(len(names), 100.0)
    out = []
    for _ in range(bars):
        r = drift + rng.normal(0.0, 0.01, len(names))
        prices = prices * (1.0 + r)
        out.append(
            MarketState(
                returns=dict(zip(names, r.tolist(), strict=True)),
                prices=dict(zip(names, prices.tolist(), strict=True)),
                high=dict(zip(names, (prices * 1.005).tolist(), strict=True)),
                low=dict(zip(names, (prices * 0.995).tolist(), strict=True)),
            )
        )
    return out


def test_kelly_caps_sizes_by_the_estimated_edge_in_the_positions_direction() -> None:
    names = ("UP", "DOWN", "SHORT_DOWN")
    bars = _trending(names, np.array([0.002, -0.002, -0.002]), 270)
    weights = {"UP": 0.3, "DOWN": 0.3, "SHORT_DOWN": -0.3}
    kelly = KellyConfig(fraction=0.5, cap=0.25)
    risk_k = AdvancedRiskManager(RiskConfig(kelly=kelly, **FAST))
    risk_0 = AdvancedRiskManager(RiskConfig(**FAST))
    returns = []
    try:
        for bar in bars:
            book = Portfolio(weights=weights, equity=1e6)
            with_kelly = risk_k.manage_risk_sync(bar, book)
            without = risk_0.manage_risk_sync(bar, book)
            returns.append([bar.returns[a] for a in names])
    finally:
        risk_k.close_sync()
        risk_0.close_sync()
    assert with_kelly.trading_state is TradingState.ACTIVE, with_kelly.alerts
    window = np.array(returns[-250:])
    mean, var = window.mean(axis=0), window.var(axis=0)
    edge = np.array([mean[0], mean[1], -mean[2]])  # a short earns the negated mean
    fraction = np.clip(0.5 * edge / var, 0.0, 0.25)
    price = np.array([bars[-1].prices[a] for a in names])
    kelly_units = fraction * 1e6 * with_kelly.leverage / price
    sizes = np.array([with_kelly.position_sizes[a] for a in names])
    plain = np.array([without.position_sizes[a] for a in names])
    assert sizes[1] == 0.0, "a long with a negative edge gets no size"
    assert sizes[2] > 0.0, "a short of a falling asset has an edge"
    np.testing.assert_allclose(sizes, np.minimum(plain, kelly_units), rtol=1e-9)


def test_the_same_annualised_market_gets_the_same_leverage_at_any_bar_frequency() -> None:
    leverages = {}
    for ppy in (252, 365, 252 * 390):
        rng = np.random.default_rng(4)
        bar_vol = 0.30 / math.sqrt(ppy)
        risk = AdvancedRiskManager(RiskConfig(periods_per_year=ppy, **FAST))
        try:
            for _ in range(120):
                r = rng.normal(0.0, bar_vol, 2)
                decision = risk.manage_risk_sync(
                    MarketState(returns={"A": float(r[0]), "B": float(r[1])}),
                    Portfolio(weights={"A": 0.5, "B": 0.5}),
                )
        finally:
            risk.close_sync()
        leverages[ppy] = decision.leverage
    assert max(leverages.values()) == pytest.approx(min(leverages.values()), rel=1e-9), leverages
    assert 0.5 < leverages[252] < 1.2  # target 15 % on a ~21 % book


class NamedAllocator:
    """A long-only policy trained on two named assets; proposes 30 % each, 40 % cash."""

    asset_count = 2
    history_length = 3
    asset_names = ("B", "C")

    def allocate(self, returns: np.ndarray, weights: np.ndarray, drawdown: float) -> Allocation:
        assert returns.shape == (3, 2)
        return Allocation(weights=np.array([0.3, 0.3, 0.4]), uncertainty=0.0)


def test_a_policy_allocates_its_own_named_assets_and_keeps_the_rest_under_the_rules() -> None:
    names = ("A", "B", "C", "D")
    bars = _trending(names, np.zeros(4), 10)
    risk = AdvancedRiskManager(RiskConfig(**FAST), policy=NamedAllocator())
    try:
        for bar in bars:
            decision = risk.manage_risk_sync(
                bar, Portfolio(weights={"A": 0.2, "B": 0.1, "C": -0.1, "D": 0.0}, equity=1e6)
            )
    finally:
        risk.close_sync()
    w = decision.rebalance_weights
    assert w["B"] == pytest.approx(0.3)  # the policy's
    assert w["C"] == pytest.approx(-0.1)  # a short of a policy asset: kept (the policy is long-only)
    assert w["A"] == pytest.approx(0.2)  # outside the policy: kept
    assert w["D"] == 0.0
    kept = [a for a in decision.alerts if a.startswith("policy allocates its own assets only")]
    assert kept, decision.alerts
    assert "A" in kept[0]
    assert "C" in kept[0]
    assert "D" not in kept[0]


def test_a_policy_whose_asset_is_missing_is_skipped_not_degraded() -> None:
    bars = _trending(("A", "B"), np.zeros(2), 10)  # no "C": the policy cannot allocate
    risk = AdvancedRiskManager(RiskConfig(**FAST), policy=NamedAllocator())
    try:
        for bar in bars:
            decision = risk.manage_risk_sync(bar, Portfolio(weights={"A": 0.2, "B": 0.1}, equity=1e6))
    finally:
        risk.close_sync()
    assert not decision.degraded
    assert decision.rebalance_weights["B"] == pytest.approx(0.1)
    assert decision.uncertainty is None


def test_the_shipped_policy_allocates_its_20_named_stocks_beside_an_extra_asset_and_a_short() -> None:
    """The shipped PPO (names in its file) trades its 20 stocks; a 21st asset and a short are kept."""
    from pathlib import Path

    from advanced_risk.data import load_sp500_stocks

    model = Path(__file__).resolve().parents[2] / "models" / "ppo_sp500_2012.armodel"
    prices = load_sp500_stocks().iloc[:40]
    names = list(prices.columns)[::-1]  # another column order: matched by name, not position
    px = prices[names].to_numpy()
    extra = 50.0 * np.cumprod(1.0 + np.random.default_rng(0).normal(0.0, 0.01, len(px)))
    held = dict.fromkeys(names, 0.04) | {"XOM": -0.05, "GOLD": 0.1}
    risk = AdvancedRiskManager(RiskConfig(**FAST), policy=str(model))
    try:
        for t in range(1, len(px)):
            r = px[t] / px[t - 1] - 1.0
            market = MarketState(
                returns=dict(zip(names, r.tolist(), strict=True)) | {"GOLD": extra[t] / extra[t - 1] - 1.0},
                prices=dict(zip(names, px[t].tolist(), strict=True)) | {"GOLD": float(extra[t])},
            )
            decision = risk.manage_risk_sync(market, Portfolio(weights=held, equity=1e6))
    finally:
        risk.close_sync()
    assert not decision.degraded, decision.alerts
    assert decision.uncertainty is not None  # the policy ran
    assert decision.rebalance_weights["GOLD"] == pytest.approx(0.1)
    assert decision.rebalance_weights["XOM"] == pytest.approx(-0.05)
    longs = [decision.rebalance_weights[a] for a in names if a != "XOM"]
    assert all(w >= 0.0 for w in longs)
    assert any("GOLD" in a and "XOM" in a for a in decision.alerts), decision.alerts


def test_a_bot_feeding_back_what_it_holds_keeps_half_its_book_while_reducing() -> None:
    """REDUCING caps each held position at reduce_exposure x its size when REDUCING began: a bot
    that holds rebalance_weights x leverage and reports it back does not decay towards zero."""
    bars = _trending(("A", "B"), np.zeros(2), 30, seed=7)
    # the account's drawdown is what the bot reports here: the rule measures the equity
    config = RiskConfig(drawdown_basis="equity", reduce_drawdown=0.08, halt_drawdown=0.15, **FAST)
    risk = AdvancedRiskManager(config)
    held = {"A": 0.4, "B": 0.4}
    seen = []
    try:
        for t, bar in enumerate(bars):
            drawdown = 0.09 if t >= 5 else 0.0  # above reduce_drawdown (0.08), below halt (0.15)
            decision = risk.manage_risk_sync(bar, Portfolio(weights=held, current_drawdown=drawdown))
            held = {a: decision.rebalance_weights[a] * decision.leverage for a in held}
            seen.append((decision.trading_state, dict(held)))
    finally:
        risk.close_sync()
    reducing = [h for state, h in seen if state is TradingState.REDUCING]
    assert len(reducing) > 10
    first, last = reducing[0], reducing[-1]
    assert last["A"] == pytest.approx(first["A"], rel=0.35)  # leverage moves it a little, no decay
    assert last["A"] > 0.1


def test_a_policy_missing_one_of_its_assets_says_so() -> None:
    bars = _trending(("A", "B"), np.zeros(2), 10)
    risk = AdvancedRiskManager(RiskConfig(**FAST), policy=NamedAllocator())
    try:
        for bar in bars:
            decision = risk.manage_risk_sync(bar, Portfolio(weights={"A": 0.2, "B": 0.1}, equity=1e6))
    finally:
        risk.close_sync()
    assert any(a.startswith("policy idle: its asset(s) ['C'] are not in this bar") for a in decision.alerts)


@pytest.mark.parametrize("given", ["prices", "returns"])
def test_a_one_bar_jump_is_taken_as_real_and_said(given: str) -> None:
    """A 2:1 split left unadjusted (-50 %) on a bar given by prices or by returns: the decision says
    so in its alerts, and is otherwise the one a bot gets without the alert (the move is taken as
    real). A 29 % move says nothing."""
    risk = AdvancedRiskManager(RiskConfig(**FAST))
    book = Portfolio(weights={"A": 0.5, "B": 0.3}, equity=1e5)
    closes = [{"A": 100.0 + t, "B": 50.0} for t in range(30)] + [{"A": 64.5, "B": 50.0 * 1.29}]
    try:
        decisions = []
        for t, close in enumerate(closes):
            if given == "prices":
                market = MarketState(prices=close)
            else:
                before = closes[max(t - 1, 0)]
                market = MarketState(returns={a: close[a] / before[a] - 1.0 for a in close}, prices=close)
            decisions.append(risk.manage_risk_sync(market, book))
    finally:
        risk.close_sync()
    jumps = [a for d in decisions for a in d.alerts if "in one bar" in a]
    assert jumps == [
        "A moved -50.0% in one bar: taken as a real move (adjust the prices if it is a split or a bad tick)"
    ]
    assert not decisions[-1].degraded


def test_a_degraded_bar_says_its_jump_too() -> None:
    """The policy fails on the bar of a -50 % move: the decision is degraded (conservative), and
    still says the move was taken as real (it fed the tracker, the ATR and the last close)."""
    from .conftest import ASSETS, FakeAllocator

    policy = FakeAllocator()
    risk = AdvancedRiskManager(RiskConfig(**FAST), policy=policy)
    book = Portfolio(weights=dict.fromkeys(ASSETS, 0.2), equity=1e5)
    try:
        for t in range(10):
            risk.manage_risk_sync(MarketState(prices={a: 100.0 + t for a in ASSETS}), book)
        policy.fail = True
        prices = {a: 109.0 for a in ASSETS} | {"bbb": 54.5}
        decision = risk.manage_risk_sync(MarketState(prices=prices), book)
    finally:
        risk.close_sync()
    assert decision.degraded
    assert any(a.startswith("bbb moved -50.0% in one bar") for a in decision.alerts), decision.alerts
