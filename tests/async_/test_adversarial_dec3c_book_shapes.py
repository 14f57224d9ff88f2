"""Adversarial checks of books that are not "20 long-only stocks summing to 1", written from the docs
(README "Your book", docs/embedding.md "Your book", the docstrings of ``Portfolio`` and
``RiskDecision``) and checked against independent NumPy computations:

- a market-neutral book (+0.5, +0.5, -0.5, -0.5): sync and async decisions identical, VaR/CVaR of
  the signed book equal to an independent FHS-EWMA, leverage equal to the volatility target on an
  independent EWMA covariance, sizes equal to ``min(equity * risk / (k * ATR), equity * lev / price)``
  on an independent Wilder ATR, stops on the side of the sign, cash 1 - sum;
- the same book scaled by 3 and by 0.05 (gross-levered and mostly cash) and in percent (50, 50);
- equity in dollars (1e6, 1e9) and equity that collapses to near zero;
- one asset held short through a rally: trailing stops reproduced bar by bar, VaR/CVaR;
- a portfolio that holds an asset the bar does not name, and a bar that names a new asset;
- NaN / inf / -0.0 / 1e-300 weights and drawdowns outside [0, 1].
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from advanced_risk import AdvancedRiskManager, InvalidInputError, MarketState, Portfolio, RiskConfig
from advanced_risk.config import TrackerConfig
from advanced_risk.data import load_sp500_stocks
from advanced_risk.measures.var import VaRMethod
from advanced_risk.types import RiskDecision, TradingState

NEUTRAL = {"AAPL": 0.5, "MSFT": 0.5, "XOM": -0.5, "JNJ": -0.5}
NAMES = tuple(NEUTRAL)
BARS = 330
EWMA = RiskConfig(
    deterministic_refits=True, deadline_ms=5_000.0, tracker=TrackerConfig(method=VaRMethod.FHS_EWMA)
)

Book = Mapping[str, float] | Callable[[int], Mapping[str, float]]


# -- independent reference computations ------------------------------------------------------------
def fhs_ewma(p: np.ndarray, alpha: float = 0.99, lam: float = 0.94) -> tuple[float, float]:
    """FHS with a RiskMetrics filter started at the mean square, floored at 0.1 x its root (as
    docs/var_calibration.md describes fhs_ewma; the floor is ``FHS_SIGMA_FLOOR``)."""
    ms = float(np.mean(p * p))
    if ms == 0.0:
        return 0.0, 0.0
    v = np.empty(len(p) + 1)
    v[0] = ms
    for t, r in enumerate(p):
        v[t + 1] = lam * v[t] + (1.0 - lam) * r * r
    v = np.maximum(v, 0.01 * ms)
    z = p / np.sqrt(v[:-1])
    q = np.quantile(z, 1.0 - alpha)
    return float(-q * np.sqrt(v[-1])), float(-z[z <= q].mean() * np.sqrt(v[-1]))


def wilder_atr_of_closes(c: np.ndarray, n: int = 14) -> np.ndarray:
    """Wilder ATR from closes only (true range = |close - previous close|), TA-Lib's seed: the
    mean of the first ``n`` true ranges, NaN before."""
    tr = np.abs(np.diff(c))
    atr = np.full(len(c), np.nan)
    a = tr[:n].mean()
    atr[n] = a
    for t in range(n + 1, len(c)):
        a = (a * (n - 1) + tr[t - 1]) / n
        atr[t] = a
    return atr


def ewma_vol_target(returns: np.ndarray, w: np.ndarray, lam: float = 0.94) -> float:
    """``min(1, 15 % / annualised vol)`` of ``w`` on a normalised EWMA covariance of ``returns``."""
    s = np.zeros((returns.shape[1], returns.shape[1]))
    weight = 0.0
    for r in returns:
        s = lam * s + (1.0 - lam) * np.outer(r, r)
        weight = lam * weight + (1.0 - lam)
    vol = math.sqrt(float(w @ s @ w) / weight * 252)
    return min(1.0, 0.15 / vol)


# -- replays -----------------------------------------------------------------------------------------
def closes_of(names: tuple[str, ...], start: str | None = None, bars: int = BARS) -> pd.DataFrame:
    frame = load_sp500_stocks()[list(names)]
    if start is not None:
        frame = frame.loc[start:]
    return frame.iloc[: bars + 1]


def replay(
    closes: pd.DataFrame,
    book: Book,
    *,
    mode: str = "sync",
    config: RiskConfig = EWMA,
    equity: Callable[[int], float] = lambda t: 1e6,
) -> list[RiskDecision]:
    returns = closes.pct_change().iloc[1:]

    def bars() -> Any:
        for t, date in enumerate(returns.index):
            weights = book(t) if callable(book) else book
            market = MarketState(returns=returns.loc[date].to_dict(), prices=closes.loc[date].to_dict())
            yield market, Portfolio(weights=weights, equity=equity(t))

    out: list[RiskDecision] = []
    if mode == "sync":
        risk = AdvancedRiskManager(config)
        try:
            out.extend(risk.manage_risk_sync(m, p) for m, p in bars())
        finally:
            risk.close_sync()
        return out

    async def main() -> None:
        async with AdvancedRiskManager(config) as risk:
            for m, p in bars():
                out.append(await risk.manage_risk(m, p))

    asyncio.run(main())
    return out


def levered(decision: RiskDecision, names: tuple[str, ...]) -> np.ndarray:
    return np.array([decision.rebalance_weights[a] for a in names]) * decision.leverage


def comparable(decision: RiskDecision) -> dict[str, Any]:
    row = json.loads(decision.to_json())
    return {k: v for k, v in row.items() if k not in ("decision_id", "latency_ms")}


@pytest.fixture(scope="module")
def neutral() -> tuple[pd.DataFrame, list[RiskDecision], list[RiskDecision]]:
    closes = closes_of(NAMES)
    return closes, replay(closes, NEUTRAL), replay(closes, NEUTRAL, mode="async")


# -- 1. market-neutral ---------------------------------------------------------------------------
def test_neutral_book_sync_and_async_decide_the_same(neutral: Any) -> None:
    _, sync, via_loop = neutral
    assert [comparable(d) for d in sync] == [comparable(d) for d in via_loop]
    assert not any(d.degraded for d in sync)


def test_neutral_book_weights_cash_and_leverage(neutral: Any) -> None:
    """Cash is 1 - sum = 1.0 (nothing divides by the net 0); leverage is the 15 % volatility
    target on the signed book's EWMA volatility, capped at 1 (independent covariance)."""
    closes, sync, _ = neutral
    returns = closes.pct_change().iloc[1:].to_numpy()
    w = np.array([NEUTRAL[a] for a in NAMES])
    for t in (30, 150, BARS - 1):
        d = sync[t]
        assert d.rebalance_weights["cash"] == pytest.approx(1.0 - sum(d.rebalance_weights[a] for a in NAMES))
        if d.trading_state is TradingState.ACTIVE:
            assert d.rebalance_weights["cash"] == pytest.approx(1.0)
            assert d.leverage == pytest.approx(ewma_vol_target(returns[: t + 1], w), rel=1e-9)


def test_neutral_book_var_cvar_of_the_signed_book(neutral: Any) -> None:
    """From the bar the tracker is ready (250), VaR/CVaR are the FHS-EWMA of the signed levered
    book's returns over the last <= 500 bars, computed here independently."""
    closes, sync, _ = neutral
    returns = closes.pct_change().iloc[1:].to_numpy()
    assert all(math.isnan(d.var) for d in sync[:249])
    for t in range(249, BARS):
        d = sync[t]
        var, cvar = fhs_ewma(returns[max(0, t + 1 - 500) : t + 1] @ levered(d, NAMES))
        assert d.var == pytest.approx(var, rel=1e-9)
        assert d.cvar == pytest.approx(cvar, rel=1e-9)
        assert d.cvar >= d.var > 0.0


def test_neutral_book_sizes_and_stops(neutral: Any) -> None:
    """Sizes: ``min(equity * 0.02 / (2 * ATR), equity * 1.0 * leverage / price)`` while ACTIVE, 0
    otherwise; stops below the close of the longs and above that of the shorts."""
    closes, sync, _ = neutral
    c = closes.to_numpy()[1:]
    atr = np.column_stack([wilder_atr_of_closes(c[:, j]) for j in range(len(NAMES))])
    checked = 0
    for t in range(14, BARS):
        d = sync[t]
        for j, a in enumerate(NAMES):
            stop = d.stop_levels[a]
            assert (stop < c[t, j]) if NEUTRAL[a] > 0 else (stop > c[t, j]), (t, a)
            if d.trading_state is TradingState.ACTIVE:
                expected = min(1e6 * 0.02 / (2.0 * atr[t, j]), 1e6 * d.leverage / c[t, j])
                assert d.position_sizes[a] == pytest.approx(expected, rel=1e-9), (t, a)
                checked += 1
            else:
                assert d.position_sizes[a] == 0.0
    assert checked > 500


def test_neutral_book_reducing_reads_the_books_own_drawdown(neutral: Any) -> None:
    """The strategy drawdown the REDUCING alerts quote is that of the book asked for:
    ``E_t = prod(1 + w . r)``, drawdown from the max of the last 252 values and the seed 1."""
    closes, sync, _ = neutral
    returns = closes.pct_change().iloc[1:].to_numpy()
    w = np.array([NEUTRAL[a] for a in NAMES])
    equity = np.cumprod(1.0 + returns @ w)
    quoted = 0
    for t, d in enumerate(sync):
        for alert in d.alerts:
            if "strategy drawdown" in alert:
                value = float(alert.split("strategy drawdown ")[1].split()[0])
                window = equity[max(0, t - 251) : t + 1]
                peak = max(window.max(), 1.0) if t < 252 else window.max()
                assert value == pytest.approx(1.0 - equity[t] / peak, abs=6e-5), t
                quoted += 1
    assert quoted > 0


# -- 2. gross-levered, tiny and percent books -------------------------------------------------------
@pytest.fixture(scope="module")
def scaled(neutral: Any) -> dict[float, list[RiskDecision]]:
    closes, sync, _ = neutral
    out = {1.0: sync}
    for k in (3.0, 0.05, 100.0):
        out[k] = replay(closes.iloc[:281], {a: k * w for a, w in NEUTRAL.items()})
    return out


def test_gross_levered_book_is_scaled_back_to_the_same_risk(scaled: Any) -> None:
    """A 300 % gross book: while the volatility target binds, leverage is a third of the 1x
    book's and the levered book, VaR and CVaR are the same (VaR is linear in the book)."""
    base, big = scaled[1.0], scaled[3.0]
    compared = 0
    for t in range(249, 280):
        if TradingState.REDUCING in (base[t].trading_state, big[t].trading_state) or base[t].leverage >= 1.0:
            continue  # the 3x book's own drawdown is 3x deeper: REDUCING halves it, legitimately
        assert big[t].leverage == pytest.approx(base[t].leverage / 3.0, rel=1e-9)
        assert big[t].var == pytest.approx(base[t].var, rel=1e-9)
        assert big[t].cvar == pytest.approx(base[t].cvar, rel=1e-9)
        assert big[t].rebalance_weights["cash"] == pytest.approx(1.0)
        compared += 1
    assert compared > 5


def test_tiny_book_is_mostly_cash_and_its_var_is_its_own(scaled: Any, neutral: Any) -> None:
    """A book of 5 % gross (+-2.5 %): leverage capped at 1 (its volatility is far below 15 %) and
    VaR/CVaR the independent FHS-EWMA of that small book: a twentieth of the 1x book's unlevered
    figures, not rescaled to a unit book."""
    closes, _, _ = neutral
    returns = closes.pct_change().iloc[1:].to_numpy()
    tiny = scaled[0.05]
    for t in range(249, 280):
        d = tiny[t]
        assert d.leverage == 1.0
        var, cvar = fhs_ewma(returns[max(0, t + 1 - 500) : t + 1] @ levered(d, NAMES))
        assert d.var == pytest.approx(var, rel=1e-9)
        assert d.cvar == pytest.approx(cvar, rel=1e-9)
        assert d.var < 0.01


def test_percent_weights_are_taken_as_a_200x_book_and_said_so(scaled: Any, neutral: Any) -> None:
    """Weights in percent (+-50) are within ``MAX_ABS_WEIGHT`` (1e6), so they are a legal 200x
    gross book: no InvalidInputError. Bar 0 (no volatility yet) answers leverage 1, i.e. trade 200x
    gross, and every decision says the gross exposure is above ``GROSS_ALERT`` (units in doubt);
    the 3x book (gross 6) gets no such alert. REDUCING comes once the book asked for has lost more
    than 100 % (strategy drawdown 1), which this test locates independently: the first bar where
    ``1 + (100 w) . r <= 0``."""
    closes, _, _ = neutral
    returns = closes.pct_change().iloc[1:].to_numpy()
    pct = scaled[100.0]
    assert pct[0].leverage == 1.0
    assert pct[0].rebalance_weights["AAPL"] == 50.0
    units = "portfolio.weights: gross exposure 200 (sum of |weights|) > 20; weights are fractions of equity"
    assert all(any(a.startswith(units) for a in d.alerts) for d in pct if not d.degraded)
    assert not any("gross exposure" in a for d in scaled[3.0] for a in d.alerts)
    w = np.array([100.0 * NEUTRAL[a] for a in NAMES])
    ruin = int(np.flatnonzero(1.0 + returns @ w <= 0.0)[0])
    first = next(t for t, d in enumerate(pct) if any("strategy drawdown 1 " in a for a in d.alerts))
    assert first == ruin


# -- 4. equity in dollars, and equity that collapses --------------------------------------------------
def test_sizes_scale_linearly_with_equity(neutral: Any) -> None:
    """Equity 1e9 and 1.0 against 1e6: sizes x1000 and x1e-6, every other field identical."""
    closes, base, _ = neutral
    short_closes = closes.iloc[:61]
    for equity in (1e9, 1.0):

        def constant(t: int, e: float = equity) -> float:
            return e

        other = replay(short_closes, NEUTRAL, equity=constant)
        for t in range(14, 60):
            a, b = comparable(base[t]), comparable(other[t])
            sizes_a, sizes_b = a.pop("position_sizes"), b.pop("position_sizes")
            assert sizes_a.keys() == sizes_b.keys()
            for asset, size in sizes_a.items():
                assert sizes_b[asset] == pytest.approx(size * equity / 1e6, rel=1e-12)
            assert b.pop("equity") == equity
            a.pop("equity")
            assert a == b


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_equity_collapsing_to_near_zero_halts_flat(neutral: Any, mode: str) -> None:
    """Equity 1e6 for 40 bars, then 1e-3 (a 100 % drawdown): HALTED after ``halt_confirmations``
    (3) bars, then every weight and the leverage 0, sizes 0, the hedge fully on, drawdown ~1."""
    closes, _, _ = neutral
    decisions = replay(closes.iloc[:51], NEUTRAL, mode=mode, equity=lambda t: 1e6 if t < 40 else 1e-3)
    assert all(d.trading_state is not TradingState.HALTED for d in decisions[:42])
    for d in decisions[42:]:
        assert d.trading_state is TradingState.HALTED
        assert d.leverage == 0.0
        assert all(d.rebalance_weights[a] == 0.0 for a in NAMES)
        assert d.rebalance_weights["cash"] == 1.0
        assert set(d.position_sizes.values()) == {0.0}
        assert d.hedge.active
        assert d.hedge.ratio == 1.0
        assert d.drawdown == pytest.approx(1.0 - 1e-9)
    assert any("closing AAPL, MSFT, XOM, JNJ" in a for a in decisions[42].alerts)


# -- 5. one asset, short, through a rally ----------------------------------------------------------
SHORT_BARS = 400


@pytest.fixture(scope="module")
def short_rally() -> tuple[pd.DataFrame, list[RiskDecision], list[RiskDecision], list[RiskDecision]]:
    closes = closes_of(("AAPL",), start="2019-01-01", bars=SHORT_BARS)  # AAPL 38 -> 108
    default = RiskConfig(deterministic_refits=True, deadline_ms=5_000.0)
    short = replay(closes, {"AAPL": -1.0}, config=default)
    short_async = replay(closes, {"AAPL": -1.0}, config=default, mode="async")
    long = replay(closes, {"AAPL": 1.0}, config=default)
    return closes, short, short_async, long


def test_short_through_a_rally_sync_equals_async(short_rally: Any) -> None:
    _, short, short_async, _ = short_rally
    assert [comparable(d) for d in short] == [comparable(d) for d in short_async]


def test_short_stops_sit_above_and_trail_down(short_rally: Any) -> None:
    """Reproduced bar by bar: the candidate is ``close + 2 ATR``; a live stop the close has not
    reached keeps ``min(stop, candidate)`` (falls only); one the close reached restarts at the
    candidate. Weights stay short (never flipped), sizes are >= 0."""
    closes, short, _, _ = short_rally
    c = closes["AAPL"].to_numpy()[1:]
    atr = wilder_atr_of_closes(c)
    previous = math.nan
    restarts = 0
    for t in range(14, SHORT_BARS):
        d = short[t]
        candidate = c[t] + 2.0 * atr[t]
        if math.isnan(previous) or c[t] >= previous:
            expected = candidate
            restarts += 1
        else:
            expected = min(previous, candidate)
        assert d.stop_levels["AAPL"] == pytest.approx(expected, rel=1e-12), t
        assert d.stop_levels["AAPL"] > c[t]
        assert d.rebalance_weights["AAPL"] < 0.0
        assert d.position_sizes["AAPL"] >= 0.0
        previous = d.stop_levels["AAPL"]
    assert restarts > 5  # the rally runs through the stop


def test_short_var_is_its_own_and_matches_fhs_ewma_before_the_first_garch_fit(short_rally: Any) -> None:
    """The default fhs_garch uses fhs_ewma until its first refit lands (bar 100 + 250): bars
    250-349 are reproduced independently. From bar 250 on: cvar >= var > 0, and the short's VaR is
    not the long's."""
    closes, short, _, long = short_rally
    r = closes["AAPL"].pct_change().to_numpy()[1:]
    for t in range(249, 349):
        d = short[t]
        p = r[max(0, t + 1 - 500) : t + 1] * d.rebalance_weights["AAPL"] * d.leverage
        var, cvar = fhs_ewma(p)
        assert d.var == pytest.approx(var, rel=1e-9), t
        assert d.cvar == pytest.approx(cvar, rel=1e-9), t
    for t in range(249, SHORT_BARS):
        assert short[t].cvar >= short[t].var > 0.0
    assert short[-1].var != pytest.approx(long[-1].var, rel=0.01)


def _gjr_fhs(params: Any, p: np.ndarray) -> tuple[float, float]:
    """FHS with a GJR-GARCH filter, the book rescaled to the model's unconditional scale and back
    (as the tracker documents it), in plain NumPy."""
    ms = float(np.mean(p * p))
    scale = math.sqrt(ms / (params.omega / (1.0 - params.persistence) + params.mu**2))
    q = p / scale
    init = float(np.mean((q - params.mu) ** 2))
    v = np.empty(len(q) + 1)
    v[0] = init
    for t, x in enumerate(q):
        e = x - params.mu
        v[t + 1] = (
            params.omega + (params.alpha + (params.gamma if e < 0 else 0.0)) * e * e + params.beta * v[t]
        )
    v = np.maximum(v, 0.01 * init)
    z = (q - params.mu) / np.sqrt(v[:-1])
    qq = np.quantile(z, 0.01)
    return scale * (-params.mu - math.sqrt(v[-1]) * qq), scale * (
        -params.mu - math.sqrt(v[-1]) * z[z <= qq].mean()
    )


def test_short_fhs_garch_var_uses_the_short_books_own_model(short_rally: Any) -> None:
    """From bar 350 the first refit (started at bar 100 on the first 100 returns of the equal-weight
    book, here the long asset) is in force. For a one-asset short, the model of the book's own
    returns is the fit of the negated returns, whose GJR parameters mirror the long's (alpha and
    alpha + gamma swap, mu changes sign): the asset's volatility does not depend on the side."""
    from advanced_risk.risk.garch import fit_gjr_garch

    closes, short, _, _ = short_rally
    r = closes["AAPL"].pct_change().to_numpy()[1:]
    own = fit_gjr_garch(-r[:100])  # the short book's own first 100 returns (weight -1)
    for t in range(350, SHORT_BARS):
        d = short[t]
        p = r[max(0, t + 1 - 500) : t + 1] * d.rebalance_weights["AAPL"] * d.leverage
        var, cvar = _gjr_fhs(own, p)
        assert d.var == pytest.approx(var, rel=0.05), t
        assert d.cvar == pytest.approx(cvar, rel=0.05), t


# -- 6 and 7. universe mismatches and bad weights: refused on both entry points, state unchanged -------
BAD_BOOKS: list[tuple[dict[str, float], str]] = [
    ({"AAPL": 0.5, "MSFT": 0.3, "XOM": 0.1}, "XOM"),  # held, but the bar has no data for it
    ({"AAPL": math.nan, "MSFT": 0.3}, "portfolio.weights['AAPL']"),
    ({"AAPL": math.inf, "MSFT": 0.3}, "portfolio.weights['AAPL']"),
    ({"AAPL": -math.inf, "MSFT": 0.3}, "portfolio.weights['AAPL']"),
    ({"AAPL": 2e6, "MSFT": 0.3}, "portfolio.weights['AAPL']"),  # beyond MAX_ABS_WEIGHT
]


def _bars(closes: pd.DataFrame, names: list[str], t: int) -> MarketState:
    returns = closes.pct_change().iloc[1:]
    date = returns.index[t]
    return MarketState(returns=returns.loc[date, names].to_dict(), prices=closes.loc[date, names].to_dict())


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_bad_books_are_refused_naming_the_field_and_change_nothing(tmp_path: Path, mode: str) -> None:
    """Every bad book raises InvalidInputError naming the field or asset; a run with the refused
    bars interleaved decides every later bar exactly as a run without them, and each decision's
    journal row (``read_decision``) is the decision returned. Then a bar that lists a new asset
    (XOM) the portfolio does not hold: it joins flat (weight 0, no stop or size until its ATR is
    warm), and XOM may leave again once flat."""
    closes = closes_of(("AAPL", "MSFT", "XOM"), bars=40)
    good = {"AAPL": 0.5, "MSFT": 0.3}

    def run(with_refusals: bool, path: Path) -> list[dict[str, Any]]:
        config = RiskConfig(state_path=str(path), deadline_ms=5_000.0, deterministic_refits=True)
        rows: list[dict[str, Any]] = []
        calls: list[tuple[MarketState, Any]] = []
        for t in range(30):
            calls.append((_bars(closes, ["AAPL", "MSFT"], t), Portfolio(weights=good, equity=1e6)))
        calls.append((_bars(closes, ["AAPL", "MSFT", "XOM"], 30), Portfolio(weights=good, equity=1e6)))
        calls.append((_bars(closes, ["AAPL", "MSFT"], 31), Portfolio(weights=good, equity=1e6)))

        def check(risk: AdvancedRiskManager, decision: RiskDecision) -> None:
            assert risk.read_decision(decision.decision_id) == json.loads(decision.to_json())
            rows.append(comparable(decision))

        if mode == "sync":
            risk = AdvancedRiskManager(config)
            try:
                for t, (market, book) in enumerate(calls):
                    if with_refusals and t in (10, 20, 31):
                        for bad, named in BAD_BOOKS:
                            with pytest.raises(InvalidInputError, match=named.replace("[", r"\[")):
                                risk.manage_risk_sync(market, {"weights": bad, "equity": 1e6})
                    check(risk, risk.manage_risk_sync(market, book))
            finally:
                risk.close_sync()
        else:

            async def main() -> None:
                async with AdvancedRiskManager(config) as risk:
                    for t, (market, book) in enumerate(calls):
                        if with_refusals and t in (10, 20, 31):
                            for bad, named in BAD_BOOKS:
                                with pytest.raises(InvalidInputError, match=named.replace("[", r"\[")):
                                    await risk.manage_risk(market, {"weights": bad, "equity": 1e6})
                        check(risk, await risk.manage_risk(market, book))

            asyncio.run(main())
        return rows

    plain = run(False, tmp_path / "plain.db")
    refused = run(True, tmp_path / "refused.db")
    assert refused == plain
    joined = plain[30]
    assert joined["rebalance_weights"]["XOM"] == 0.0
    assert "XOM" not in joined["stop_levels"]
    assert "XOM" not in joined["position_sizes"]
    assert "XOM" not in plain[31]["rebalance_weights"]
    assert not any(row["degraded"] for row in plain)


def test_drawdown_outside_unit_interval_is_refused() -> None:
    for value in (-0.1, 1.5, math.nan, math.inf):
        with pytest.raises(InvalidInputError, match="current_drawdown"):
            Portfolio(weights={"A": 0.5}, current_drawdown=value)
    risk = AdvancedRiskManager(RiskConfig())
    try:
        for value in (-0.1, 1.5):
            with pytest.raises(InvalidInputError, match="current_drawdown"):
                risk.manage_risk_sync({"returns": {"A": 0.01}}, {"A": 0.5, "current_drawdown": value})
    finally:
        risk.close_sync()


def test_negative_zero_and_denormal_weights() -> None:
    """-0.0 is flat (cash 1 - sum, a long-side stop below the close); -1e-300 is a (tiny) short:
    its stop sits above the close; 1e-300 a long below. VaR of such a book is 0 to float precision
    and the leverage is the cap (no division by its ~0 volatility blows up)."""
    closes = closes_of(("AAPL", "MSFT"), bars=30)
    risk = AdvancedRiskManager(
        RiskConfig(deadline_ms=5_000.0, tracker=TrackerConfig(window=20, fhs_window=100))
    )
    try:
        for t in range(25):
            d = risk.manage_risk_sync(
                _bars(closes, ["AAPL", "MSFT"], t),
                Portfolio(weights={"AAPL": -0.0, "MSFT": 1e-300}, equity=1e6),
            )
        price = closes.iloc[25]
        assert d.rebalance_weights["cash"] == 1.0
        assert d.stop_levels["AAPL"] < price["AAPL"]
        assert d.stop_levels["MSFT"] < price["MSFT"]
        assert d.leverage == 1.0
        assert d.var == 0.0
        assert d.cvar == 0.0
        d = risk.manage_risk_sync(
            _bars(closes, ["AAPL", "MSFT"], 25),
            Portfolio(weights={"AAPL": -1e-300, "MSFT": 1e-300}, equity=1e6),
        )
        price = closes.iloc[26]
        assert d.stop_levels["AAPL"] > price["AAPL"] > 0.0
        assert d.rebalance_weights["AAPL"] == -1e-300
        assert not d.degraded
    finally:
        risk.close_sync()


def test_var_breach_streak_reads_the_book_the_var_priced(neutral: Any) -> None:
    """Independent count: the traded book is the previous decision's ``rebalance_weights x
    leverage``; a breach is its return below minus the previous decision's VaR. No run of 3
    breaches means no REDUCING on the VaR-breach rule (drawdown rules pushed out of the way)."""
    closes, _, _ = neutral
    returns = closes.pct_change().iloc[1:].to_numpy()
    config = RiskConfig(
        deterministic_refits=True,
        deadline_ms=5_000.0,
        tracker=TrackerConfig(method=VaRMethod.FHS_EWMA),
        reduce_drawdown=0.9,
        halt_drawdown=0.95,
    )
    wanted = {a: 3.0 * w for a, w in NEUTRAL.items()}
    decisions = replay(closes, wanted, config=config)
    breaches = [
        bool(levered(decisions[t - 1], NAMES) @ returns[t] < -decisions[t - 1].var) for t in range(250, BARS)
    ]
    assert not any(all(breaches[i : i + 3]) for i in range(len(breaches) - 2))  # the traded book
    streak_alerts = [a for d in decisions for a in d.alerts if "VaR breaches in a row" in a]
    assert streak_alerts == []


def test_kelly_caps_the_neutral_books_sizes_by_side(neutral: Any) -> None:
    """With ``KellyConfig(fraction=0.5, cap=0.25)``, each size is also capped at ``kelly * equity *
    leverage / price`` with ``kelly = clip(0.5 * m / s2, 0, 0.25)`` over the last 250 returns, ``m``
    negated for the shorts (independent NumPy): a short of a rising stock gets 0."""
    from advanced_risk.config import KellyConfig

    closes, _, _ = neutral
    config = RiskConfig(
        deterministic_refits=True,
        deadline_ms=5_000.0,
        tracker=TrackerConfig(method=VaRMethod.FHS_EWMA),
        kelly=KellyConfig(fraction=0.5, cap=0.25),
    )
    decisions = replay(closes.iloc[:271], NEUTRAL, config=config)
    r = closes.pct_change().iloc[1:].to_numpy()
    c = closes.to_numpy()[1:]
    atr = np.column_stack([wilder_atr_of_closes(c[:, j]) for j in range(len(NAMES))])
    side = np.array([np.sign(NEUTRAL[a]) for a in NAMES])
    checked = 0
    for t in range(249, 270):
        d = decisions[t]
        if d.trading_state is not TradingState.ACTIVE:
            continue
        window = r[t + 1 - 250 : t + 1]
        kelly = np.clip(0.5 * side * window.mean(axis=0) / window.var(axis=0), 0.0, 0.25)
        for j, a in enumerate(NAMES):
            expected = min(
                1e6 * 0.02 / (2.0 * atr[t, j]),
                1e6 * d.leverage / c[t, j],
                kelly[j] * 1e6 * d.leverage / c[t, j],
            )
            assert d.position_sizes[a] == pytest.approx(expected, rel=1e-9, abs=1e-9), (t, a)
            checked += 1
    assert checked > 20


def _forced_reducing(mode: str, book: dict[str, float], drawdown_from: int) -> list[RiskDecision]:
    """60 bars of the neutral data; ``current_drawdown`` 0.26 (between ``reduce_drawdown`` 0.25
    and ``halt_drawdown`` 0.30, on the equity basis) from ``drawdown_from`` on."""
    closes = closes_of(tuple(book), bars=60)
    returns = closes.pct_change().iloc[1:]
    config = RiskConfig(deadline_ms=5_000.0, drawdown_basis="equity")
    calls = [
        (
            MarketState(returns=returns.loc[date].to_dict(), prices=closes.loc[date].to_dict()),
            Portfolio(weights=book, equity=1e6, current_drawdown=0.26 if t >= drawdown_from else 0.0),
        )
        for t, date in enumerate(returns.index)
    ]
    if mode == "sync":
        risk = AdvancedRiskManager(config)
        try:
            return [risk.manage_risk_sync(m, p) for m, p in calls]
        finally:
            risk.close_sync()

    async def main() -> list[RiskDecision]:
        async with AdvancedRiskManager(config) as risk:
            return [await risk.manage_risk(m, p) for m, p in calls]

    return asyncio.run(main())


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_reducing_cuts_the_traded_exposure(mode: str) -> None:
    """The same bars and book, ACTIVE throughout against REDUCING from bar 30: the traded exposure
    ``|weights| x leverage`` of a REDUCING decision is at most half the ACTIVE one's (the cap of
    leverage at 1 cannot matter: ``max_leverage`` is 1 already)."""
    for book in ({"AAPL": 1.0}, NEUTRAL):
        active = _forced_reducing(mode, book, drawdown_from=10_000)
        reducing = _forced_reducing(mode, book, drawdown_from=30)
        assert all(d.trading_state is TradingState.ACTIVE for d in active)
        assert all(d.trading_state is TradingState.REDUCING for d in reducing[30:])
        for t in range(30, 60):
            gross_active = float(np.abs(levered(active[t], tuple(book))).sum())
            gross_reducing = float(np.abs(levered(reducing[t], tuple(book))).sum())
            assert gross_reducing <= 0.5 * gross_active * (1 + 1e-9), (book, t, gross_reducing, gross_active)


def test_reducing_opens_no_position_on_the_other_side() -> None:
    closes = closes_of(("AAPL",), bars=45)
    config = RiskConfig(deadline_ms=5_000.0, drawdown_basis="equity")
    risk = AdvancedRiskManager(config)
    try:
        for t in range(40):
            book = Portfolio(
                weights={"AAPL": 1.0 if t < 35 else -1.0},
                equity=1e6,
                current_drawdown=0.26 if t >= 30 else 0.0,
            )
            d = risk.manage_risk_sync(_bars(closes, ["AAPL"], t), book)
            if t >= 30:
                assert d.trading_state is TradingState.REDUCING
                assert d.position_sizes["AAPL"] == 0.0
                assert d.rebalance_weights["AAPL"] >= 0.0, t  # closing the long is fine; a short is new
    finally:
        risk.close_sync()


def test_reducing_reads_the_drawdown_of_the_weights_asked_for_in_their_units(neutral: Any) -> None:
    """docs/risk_rules.md (The rules, 2): REDUCING reads the drawdown of the book asked for, before
    volatility targeting, in the units it is asked in: the same neutral book asked for at 1x and at
    3x is REDUCING exactly on the bars where its own weights' drawdown (independent NumPy, 252-bar
    high-water mark from the seed 1) is at least 25 %, so the 3x book is REDUCING more often."""
    closes, _, _ = neutral
    returns = closes.pct_change().iloc[1:].to_numpy()
    config = RiskConfig(
        deterministic_refits=True,
        deadline_ms=5_000.0,
        tracker=TrackerConfig(method=VaRMethod.FHS_EWMA),
        var_breach_streak=None,  # only the drawdown rule can reduce
        reduce_on_correlation_shock=False,
    )
    w = np.array([NEUTRAL[a] for a in NAMES])
    reducing = {}
    for k in (1.0, 3.0):
        decisions = replay(closes, {a: k * v for a, v in NEUTRAL.items()}, config=config)
        equity = np.cumprod(1.0 + returns[: len(decisions)] @ (k * w))
        peaks = [max(1.0, equity[max(0, t - 251) : t + 1].max()) if t < 252 else equity[t - 251 : t + 1].max()
                 for t in range(len(decisions))]  # fmt: skip
        drawdown = 1.0 - equity / np.array(peaks)
        states = [d.trading_state for d in decisions]
        deep = [t for t in range(len(decisions)) if drawdown[t] >= 0.25 + 1e-4]
        shallow = [t for t in range(len(decisions)) if drawdown[t] < 0.25 - 1e-4]
        assert deep, k
        assert all(states[t] is not TradingState.ACTIVE for t in deep), k
        assert all(states[t] is TradingState.ACTIVE for t in shallow), k
        reducing[k] = sum(s is TradingState.REDUCING for s in states)
    assert reducing[3.0] > reducing[1.0]
