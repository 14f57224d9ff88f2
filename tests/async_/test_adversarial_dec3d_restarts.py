"""Adversarial restart-transparency checks (2026-12-03, round d).

A bot killed and restarted between two bars on the same ``state_path`` should get, from the next
bar on, the decisions of a bot that never restarted, except where the docs allow a difference:

- docs/embedding.md, "A changing universe": "The universe is not persisted: after a restart the
  first bar sets it" (so the tracker's history, VaR warm-up, correlation baseline and ATR start
  again), while "The safety state is persisted (`state_path`) ...: the peak equity the drawdown
  rules measure from, the trading state and the kill switch", and the `drawdown_window` high-water
  mark "is rebuilt from the equity of the last `drawdown_window` journalled decisions (back to the
  last `reset_peak`), so a restart measures drawdowns as the running manager did".
- docs/embedding.md, "Stops survive a restart": "While an asset's ATR warms up (`atr_period` bars)
  its restored stop is reported as it was ... After the warm-up it trails on from the restored
  level (looser than the running manager's would be by what it trailed meanwhile)"; the same file,
  "What a restart does not keep", lists the differences the strict xfails below record.
- docs/drift.md, "Restarts": "The drift window lives in memory, like the tracker's return history".
- docs/embedding.md, "With the shipped policy": the policy "allocates only on bars that name all of
  its assets, once each has the history it reads (`history_length` bars); on other bars the book is
  kept as held".

Where a difference is allowed, the restarted decision must not be *less* cautious: no larger
exposure (sum |rebalance_weights| x leverage), no ACTIVE where the straight run is REDUCING or
HALTED, no stop looser than the straight run's. The design says so itself: manager.py ("a restart
must never come up less cautious than a decision the bot received") and
risk/strategy_drawdown.py ("so a restart is not less cautious than the run before it").

Each scenario is replayed twice on both entry points (``manage_risk_sync`` and ``await
manage_risk``), once straight through and once with ``close``/``close_sync`` and a new manager on
the same state file before bar ``k``.
"""

from __future__ import annotations

import asyncio
import math
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from advanced_risk.config import RiskConfig
from advanced_risk.data import load_sp500_index, load_sp500_stocks
from advanced_risk.manager import AdvancedRiskManager
from advanced_risk.types import MarketState, Portfolio, RiskDecision, TradingState

ENTRIES = ("sync", "async")
POLICY = "models/ppo_sp500_2012.armodel"
SEVERITY = {TradingState.ACTIVE: 0, TradingState.REDUCING: 1, TradingState.HALTED: 2}
FOUR = ("AAPL", "MSFT", "BAC", "XOM")
BOOK = {"AAPL": 0.6, "MSFT": 0.5, "BAC": -0.3, "XOM": -0.2}  # 110 % long, 50 % short


@dataclass(frozen=True)
class Bar:
    returns: dict[str, float]
    prices: dict[str, float]


def stock_bars(start: str, end: str, assets: Sequence[str] = FOUR) -> list[Bar]:
    closes = load_sp500_stocks()[list(assets)].loc[start:end]
    returns = closes.pct_change().iloc[1:]
    return [
        Bar(
            {a: float(v) for a, v in returns.loc[d].items()},
            {a: float(v) for a, v in closes.loc[d].items()},
        )
        for d in returns.index
    ]


Op = tuple[str, tuple[Any, ...]]  # ("engage_kill_switch" | "resume" | "reset_peak", args)


@dataclass
class Script:
    """One replay's inputs: bars, the book, operator calls before given bars, forced drawdowns."""

    bars: list[Bar]
    book: dict[str, float] = field(default_factory=lambda: dict(BOOK))
    feedback: bool = False  # pass back what is held (weights x leverage) rather than the book wanted
    ops: dict[int, list[Op]] = field(default_factory=dict)
    drawdown: Callable[[int], float] = lambda i: 0.0
    equity: Callable[[int, float], float] | None = None  # override of the bot's equity at bar i


def _book(script: Script, held: dict[str, float], bar: Bar) -> dict[str, float]:
    chosen = held if script.feedback else script.book
    return {a: w for a, w in chosen.items() if a in bar.returns}


def _next_held(decision: RiskDecision) -> dict[str, float]:
    return {a: w * decision.leverage for a, w in decision.rebalance_weights.items() if a != "cash"}


def _inputs(script: Script, i: int, held: dict[str, float], equity: float) -> tuple[MarketState, Portfolio]:
    bar = script.bars[i]
    if script.equity is not None:
        equity = script.equity(i, equity)
    market = MarketState(returns=bar.returns, prices=bar.prices)
    return market, Portfolio(
        weights=_book(script, held, bar), equity=equity, current_drawdown=script.drawdown(i)
    )


def _grow(equity: float, held: dict[str, float], bar: Bar) -> float:
    return equity * (1.0 + sum(w * bar.returns.get(a, 0.0) for a, w in held.items()))


def forget_snapshot(config: RiskConfig) -> None:
    """What a crash leaves: the journal, without the engine snapshot a graceful close saves."""
    assert config.state_path is not None
    with sqlite3.connect(config.state_path) as conn:
        conn.execute("DELETE FROM snapshot")
    conn.close()


def replay_sync(
    config: RiskConfig,
    script: Script,
    restart_at: int | None,
    policy: str | None = None,
    crash: bool = False,
) -> list[RiskDecision]:
    risk = AdvancedRiskManager(config, policy=policy)
    out: list[RiskDecision] = []
    held, equity = dict(script.book), 100_000.0
    try:
        for i, bar in enumerate(script.bars):
            if i == restart_at:
                risk.close_sync()
                if crash:
                    forget_snapshot(config)
                risk = AdvancedRiskManager(config, policy=policy)
            for name, args in script.ops.get(i, []):
                asyncio.run(getattr(risk, name)(*args))
            equity = _grow(equity, held, bar)
            decision = risk.manage_risk_sync(*_inputs(script, i, held, equity))
            held = _next_held(decision)
            out.append(decision)
    finally:
        risk.close_sync()
    return out


async def replay_async(
    config: RiskConfig,
    script: Script,
    restart_at: int | None,
    policy: str | None = None,
    crash: bool = False,
) -> list[RiskDecision]:
    risk = AdvancedRiskManager(config, policy=policy)
    out: list[RiskDecision] = []
    held, equity = dict(script.book), 100_000.0
    try:
        for i, bar in enumerate(script.bars):
            if i == restart_at:
                await risk.close()
                if crash:
                    forget_snapshot(config)
                risk = AdvancedRiskManager(config, policy=policy)
            for name, args in script.ops.get(i, []):
                await getattr(risk, name)(*args)
            equity = _grow(equity, held, bar)
            decision = await risk.manage_risk(*_inputs(script, i, held, equity))
            held = _next_held(decision)
            out.append(decision)
    finally:
        await risk.close()
    return out


def both(
    tmp: Path,
    entry: str,
    script: Script,
    k: int,
    policy: str | None = None,
    crash: bool = False,
    **config: Any,
) -> tuple[list[RiskDecision], list[RiskDecision]]:
    """(straight, restarted before bar k) decisions of the same script on one entry point;
    ``crash``: the restart finds no engine snapshot (:func:`forget_snapshot`)."""

    def cfg(name: str) -> RiskConfig:
        values: dict[str, Any] = {
            "state_path": str(tmp / name),
            "deadline_ms": 10_000.0,
            "tracker": {"method": "fhs_ewma"},
            "deterministic_refits": True,
        }
        values.update(config)
        return RiskConfig(**values)

    if entry == "sync":
        return (
            replay_sync(cfg("straight.db"), script, None, policy),
            replay_sync(cfg("restart.db"), script, k, policy, crash),
        )
    return (
        asyncio.run(replay_async(cfg("straight.db"), script, None, policy)),
        asyncio.run(replay_async(cfg("restart.db"), script, k, policy, crash)),
    )


# A config whose leverage does not depend on the tracker (always the cap, 1) and whose states do
# not depend on its warm-up (no shock or VaR-streak rule): what then differs after a restart is the
# engine's own state, not the tracker's history the docs let a restart lose.
NEUTRAL: dict[str, Any] = {
    "leverage": {"target_volatility": 100.0, "shock_factor": 1.0},
    "reduce_on_correlation_shock": False,
    "var_breach_streak": None,
    "loss_streak": 10_000,
    "sizing": {"atr_period": 3},
}


def exposure(d: RiskDecision) -> float:
    return sum(abs(w) for a, w in d.rebalance_weights.items() if a != "cash") * d.leverage


def same_core(a: RiskDecision, b: RiskDecision) -> dict[str, tuple[Any, Any]]:
    """The fields (of those a restart should not change) where two decisions differ."""
    out: dict[str, tuple[Any, Any]] = {}
    if a.trading_state is not b.trading_state:
        out["trading_state"] = (a.trading_state, b.trading_state)
    wa, wb = a.rebalance_weights, b.rebalance_weights
    if set(wa) != set(wb) or any(not math.isclose(wa[x], wb[x], abs_tol=1e-12) for x in wa):
        out["rebalance_weights"] = (wa, wb)
    if not math.isclose(a.leverage, b.leverage, abs_tol=1e-12):
        out["leverage"] = (a.leverage, b.leverage)
    if (a.hedge.active, round(a.hedge.ratio, 12)) != (b.hedge.active, round(b.hedge.ratio, 12)):
        out["hedge"] = (a.hedge, b.hedge)
    if a.alerts != b.alerts:
        out["alerts"] = (a.alerts, b.alerts)
    return out


def less_cautious(straight: RiskDecision, restarted: RiskDecision) -> list[str]:
    """How the restarted decision is less cautious than the straight one (empty: it is not)."""
    out = []
    if SEVERITY[restarted.trading_state] < SEVERITY[straight.trading_state]:
        out.append(f"state {restarted.trading_state.value} < {straight.trading_state.value}")
    if exposure(restarted) > exposure(straight) + 1e-9:
        out.append(f"exposure {exposure(restarted):.4f} > {exposure(straight):.4f}")
    for a, w in restarted.rebalance_weights.items():
        mine = abs(w * restarted.leverage)
        theirs = abs(straight.rebalance_weights.get(a, 0.0) * straight.leverage)
        if a != "cash" and mine > theirs + 1e-9:
            out.append(f"{a} {mine:.4f} vs {theirs:.4f}")
    hr = restarted.hedge.ratio if restarted.hedge.active else 0.0
    hs = straight.hedge.ratio if straight.hedge.active else 0.0
    if hr < hs - 1e-12:
        out.append(f"hedge {hr} < {hs}")
    return out


def equity_basis(**extra: Any) -> dict[str, Any]:
    return {**NEUTRAL, "drawdown_basis": "equity", **extra}


CALM = stock_bars("2019-06", "2019-12")  # 146 bars of the four stocks, calm
CRASH = stock_bars("2019-10", "2020-04", ("BAC", "XOM"))  # 145 bars: the 2020 crash from bar ~90
LONG2 = {"BAC": 0.5, "XOM": 0.5}


def _equal_after(straight: list[RiskDecision], restarted: list[RiskDecision], k: int) -> None:
    diffs = {i: d for i in range(k, len(straight)) if (d := same_core(straight[i], restarted[i]))}
    assert not diffs, f"{len(diffs)} bars differ after the restart at {k}; first: {next(iter(diffs.items()))}"


# -- documented invariants that hold ----------------------------------------------------------------


@pytest.mark.parametrize("entry", ENTRIES)
def test_restart_while_active_with_shorts_is_transparent(tmp_path: Path, entry: str) -> None:
    """ACTIVE, a 110/50 book, a restart without the engine snapshot (a crash): with leverage and
    states independent of the tracker's warm-up, every decision after the restart has the straight
    run's state, weights, leverage, hedge and alerts; stops stand as restored until the ATR is ready
    and sizes wait for it (docs: stops survive)."""
    k = 60
    straight, restarted = both(tmp_path, entry, Script(CALM), k, crash=True, **NEUTRAL)
    _equal_after(straight, restarted, k)
    assert restarted[k].stop_levels == straight[k - 1].stop_levels  # the last journalled stops
    assert restarted[k].position_sizes == {}  # sizes wait for the ATR
    assert all(s < CALM[k].prices[a] for a, s in restarted[k].stop_levels.items() if BOOK[a] > 0)
    assert all(s > CALM[k].prices[a] for a, s in restarted[k].stop_levels.items() if BOOK[a] < 0)


@pytest.mark.parametrize("entry", ENTRIES)
def test_restart_while_reducing_wanted_book_is_transparent(tmp_path: Path, entry: str) -> None:
    """REDUCING (equity basis, a drawdown of 0.26 from bar 40), a bot that passes the book it wants:
    the restart keeps REDUCING and the same halved book, leverage and alerts."""
    k = 50
    script = Script(CALM[:90], drawdown=lambda i: 0.26 if 40 <= i < 70 else 0.0)
    straight, restarted = both(tmp_path, entry, script, k, **equity_basis())
    assert straight[k].trading_state is TradingState.REDUCING
    _equal_after(straight, restarted, k)
    assert restarted[k].rebalance_weights["BAC"] == pytest.approx(-0.15)


@pytest.mark.parametrize("entry", ENTRIES)
def test_restart_while_halted_is_transparent(tmp_path: Path, entry: str) -> None:
    """HALTED by a confirmed drawdown past halt_drawdown: the restart stays HALTED, flat, leverage
    0, the same 'closing ...' alerts, even after the drawdown is gone (only resume leaves HALTED)."""
    k = 50
    script = Script(CALM[:80], drawdown=lambda i: 0.31 if 40 <= i < 46 else 0.0)
    straight, restarted = both(tmp_path, entry, script, k, **equity_basis())
    assert straight[45].trading_state is TradingState.HALTED
    _equal_after(straight, restarted, k)
    assert restarted[k].leverage == 0.0
    assert restarted[-1].trading_state is TradingState.HALTED
    assert any(a.startswith("closing AAPL, MSFT, BAC, XOM") for a in restarted[k].alerts)


@pytest.mark.parametrize("entry", ENTRIES)
def test_restart_with_kill_switch_then_resume_is_transparent(tmp_path: Path, entry: str) -> None:
    """The kill switch engaged at bar 30 survives a restart at 40; resume at 55 (after the restart)
    gives the straight run's decisions from there on."""
    k = 40
    ops: dict[int, list[Op]] = {
        30: [("engage_kill_switch", ("operator: test",))],
        55: [("resume", ("operator: done",))],
    }
    straight, restarted = both(tmp_path, entry, Script(CALM[:90], ops=ops), k, **NEUTRAL)
    assert [d.trading_state for d in restarted[k:55]] == [TradingState.HALTED] * (55 - k)
    assert restarted[60].trading_state is TradingState.ACTIVE
    _equal_after(straight, restarted, k)


@pytest.mark.parametrize("entry", ENTRIES)
def test_restart_after_resume_is_transparent(tmp_path: Path, entry: str) -> None:
    """Halted by the drawdown rule (bars 40-47), resumed at bar 50 once the drawdown is gone,
    restarted at 52: the resume is durable, the restart is ACTIVE with the straight run's book, and
    a new drawdown past halt_drawdown (bars 60-63) halts both after halt_confirmations checks."""
    k = 52
    script = Script(
        CALM[:80],
        drawdown=lambda i: 0.31 if 40 <= i < 48 or 60 <= i < 64 else 0.0,
        ops={50: [("resume", ("operator: reviewed",))]},
    )
    straight, restarted = both(tmp_path, entry, script, k, **equity_basis())
    assert straight[49].trading_state is TradingState.HALTED
    assert restarted[k].trading_state is TradingState.ACTIVE
    assert straight[62].trading_state is TradingState.HALTED
    _equal_after(straight, restarted, k)


@pytest.mark.parametrize("entry", ENTRIES)
def test_restart_after_reset_peak_measures_from_the_reset(tmp_path: Path, entry: str) -> None:
    """Equity 100k, then 80k (bar 20), reset_peak(80k) at bar 25, restart at 30, then 62k (bar 35):
    22.5 % below the reset peak (ACTIVE), 38 % below the old one. The restarted manager measures
    from the reset peak, as the running one does (docs: 'back to the last reset_peak')."""
    k = 30

    def equity(i: int, _: float) -> float:
        return 100_000.0 if i < 20 else 80_000.0 if i < 35 else 62_000.0

    script = Script(CALM[:60], equity=equity, ops={25: [("reset_peak", (80_000.0, "capital withdrawn"))]})
    straight, restarted = both(tmp_path, entry, script, k, **equity_basis())
    assert straight[40].drawdown == pytest.approx(0.225)
    assert [d.drawdown for d in restarted[k:]] == [d.drawdown for d in straight[k:]]
    _equal_after(straight, restarted, k)


@pytest.mark.parametrize("entry", ENTRIES)
def test_restart_with_policy_keeps_unknown_short(tmp_path: Path, entry: str) -> None:
    """The shipped policy with two shorts it does not allocate (JPM of its own assets, SPX outside
    them): across a restart without the engine snapshot (a crash) the kept shorts and the state are
    the straight run's on every bar; the policy waits for its history (the held book is kept), then
    allocates again."""
    stocks = load_sp500_stocks().loc["2018-01":"2018-07"]
    closes = stocks.join(load_sp500_index()["Close"].rename("SPX"), how="inner")
    rets = closes.pct_change().iloc[1:]
    bars = [
        Bar({a: float(v) for a, v in rets.loc[d].items()}, {a: float(v) for a, v in closes.loc[d].items()})
        for d in rets.index
    ]
    book = {**dict.fromkeys(stocks.columns, 0.04), "JPM": -0.05, "SPX": -0.3}
    k = 80
    script = Script(bars, book=book, feedback=True)
    straight, restarted = both(tmp_path, entry, script, k, policy=POLICY, crash=True, **NEUTRAL)
    for s, r in zip(straight[k:], restarted[k:], strict=True):
        assert r.trading_state is s.trading_state
        for a in ("JPM", "SPX"):
            assert r.rebalance_weights[a] == pytest.approx(s.rebalance_weights[a], abs=1e-12)
        if r.uncertainty is not None:  # the policy allocated: it names what it keeps
            assert any("kept under the rules: JPM, SPX" in a for a in r.alerts), r.alerts
    waits = [i for i in range(k, len(bars)) if restarted[i].uncertainty is None]
    # idle from the restart for the policy's history, then allocating again; its book then differs
    # from the straight run's (it reads the held weights, kept as held while it waited): allowed
    assert waits
    assert waits == list(range(k, waits[-1] + 1))
    assert waits[-1] < len(bars) - 5
    assert all(d.uncertainty is not None for d in restarted[waits[-1] + 1 :])


def full(d: RiskDecision) -> dict[str, Any]:
    """Every field of a decision but its id and latency."""
    return {k: v for k, v in d.items() if k not in ("decision_id", "latency_ms")}


@pytest.mark.parametrize("entry", ENTRIES)
def test_graceful_restart_is_exact(tmp_path: Path, entry: str) -> None:
    """A graceful restart (close, then a new manager on the same file) goes on from the engine
    snapshot: every decision after it equals the straight run's, field for field (VaR, stops,
    sizes, correlation and leverage included), with the default, tracker-driven leverage."""
    k = 60
    straight, restarted = both(tmp_path, entry, Script(CALM), k)
    diffs = [i for i in range(k, len(CALM)) if full(straight[i]) != full(restarted[i])]
    assert not diffs, (diffs[0], full(straight[diffs[0]]), full(restarted[diffs[0]]))


@pytest.mark.parametrize(("k", "state"), [(100, TradingState.ACTIVE), (110, TradingState.REDUCING)])
@pytest.mark.parametrize("entry", ENTRIES)
def test_graceful_restart_through_the_2020_crash_is_exact(
    tmp_path: Path, entry: str, k: int, state: TradingState
) -> None:
    """The default rules (strategy drawdown basis, tracker-driven leverage) through the 2020 crash,
    restarted while ACTIVE at a volatility-target leverage of ~0.5 and while REDUCING on the
    strategy's drawdown: the snapshot carries the strategy's drawdown and the tracker, so every
    later decision equals the straight run's."""
    straight, restarted = both(tmp_path, entry, Script(CRASH, book=LONG2), k)
    assert straight[k].trading_state is state
    diffs = [i for i in range(k, len(CRASH)) if full(straight[i]) != full(restarted[i])]
    assert not diffs, (diffs[0], full(straight[diffs[0]]), full(restarted[diffs[0]]))


@pytest.mark.parametrize("entry", ENTRIES)
def test_graceful_restart_with_policy_does_not_wait_for_history(tmp_path: Path, entry: str) -> None:
    """The shipped policy reads its history from the tracker: restored from the snapshot, the
    policy allocates from the first bar after a graceful restart, as the straight run does."""
    stocks = load_sp500_stocks().loc["2018-01":"2018-07"]
    rets = stocks.pct_change().iloc[1:]
    bars = [
        Bar({a: float(v) for a, v in rets.loc[d].items()}, {a: float(v) for a, v in stocks.loc[d].items()})
        for d in rets.index
    ]
    k = 80
    script = Script(bars, book=dict.fromkeys(stocks.columns, 0.05), feedback=True)
    straight, restarted = both(tmp_path, entry, script, k, policy=POLICY, **NEUTRAL)
    assert straight[k].uncertainty is not None
    assert all(d.uncertainty is not None for d in restarted[k:])
    assert all(r.trading_state is s.trading_state for s, r in zip(straight[k:], restarted[k:], strict=True))


# -- defects -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("entry", ENTRIES)
def test_restart_while_reducing_feedback_book_is_not_halved_again(tmp_path: Path, entry: str) -> None:
    """REDUCING (equity basis, drawdown 0.26 from bar 40), a bot that passes back what it holds:
    the book is halved once (docs: "REDUCING caps each held position at `reduce_exposure` times its
    size when REDUCING began, so the book is halved once"), and a restart at bar 50 does not halve
    it again. This was the known defect (the size when REDUCING began was not persisted); d0e54ac
    fixed it during this round, and this test failed at 5eccd2f (0.15 against 0.3)."""
    k = 50
    script = Script(CALM[:70], feedback=True, drawdown=lambda i: 0.26 if i >= 40 else 0.0)
    straight, restarted = both(tmp_path, entry, script, k, **equity_basis())
    assert straight[k].rebalance_weights["AAPL"] == pytest.approx(0.3)
    _equal_after(straight, restarted, k)


@pytest.mark.parametrize("entry", ENTRIES)
def test_restart_while_reducing_on_strategy_drawdown_stays_reducing(tmp_path: Path, entry: str) -> None:
    k = 110  # REDUCING since bar 106 (strategy drawdown 0.26; the account's 0.19-0.21)
    straight, restarted = both(tmp_path, entry, Script(CRASH, book=LONG2), k)
    assert all(d.trading_state is TradingState.REDUCING for d in straight[k - 3 : k + 15])
    worse = {i: w for i in range(k, k + 15) if (w := less_cautious(straight[i], restarted[i]))}
    assert not worse, worse


@pytest.mark.parametrize("entry", ENTRIES)
def test_restart_first_bar_not_more_exposed(tmp_path: Path, entry: str) -> None:
    k = 100  # ACTIVE, the volatility target at about 0.5 (March 2020)
    straight, restarted = both(tmp_path, entry, Script(CRASH[:105], book=LONG2), k)
    assert straight[k].trading_state is TradingState.ACTIVE
    assert straight[k].leverage < 0.6
    assert not less_cautious(straight[k], restarted[k])


@pytest.mark.parametrize("entry", ENTRIES)
def test_restart_mid_halt_confirmation_still_halts(tmp_path: Path, entry: str) -> None:
    """A restart between the 2nd and the 3rd confirmation of a drawdown past halt_drawdown halts
    when the running manager does (the halt votes resume from the journalled ``streaks``; before
    they were journalled it was REDUCING there and halted two bars later)."""
    k = 42  # drawdown 0.31 from bar 40: halt pending 1/3 at 40, 2/3 at 41, HALTED at 42
    script = Script(CALM[:50], drawdown=lambda i: 0.31 if i >= 40 else 0.0)
    straight, restarted = both(tmp_path, entry, script, k, **equity_basis())
    assert straight[k].trading_state is TradingState.HALTED
    assert restarted[k].trading_state is TradingState.HALTED, restarted[k].alerts


def _falling(n_up: int, n_down: int) -> list[Bar]:
    """Bars of two assets: n_up bars of small alternating moves, then n_down bars of -0.2 % each."""
    prices = {"A": 100.0, "B": 50.0}
    out = []
    for i in range(n_up + n_down):
        r = (0.003 if i % 2 else -0.002) if i < n_up else -0.002
        prices = {a: p * (1.0 + r) for a, p in prices.items()}
        out.append(Bar(dict.fromkeys(prices, r), dict(prices)))
    return out


@pytest.mark.parametrize("entry", ENTRIES)
def test_restart_mid_loss_streak_still_halts(tmp_path: Path, entry: str) -> None:
    """A restart 8 bars into a losing streak of loss_streak=10 halts when the running manager does
    (the streak resumes from the journal; before, it started counting again and halted 8 bars
    late)."""
    bars = _falling(30, 20)
    k = 38  # losing bars from 30 on (the held book's return is negative)
    script = Script(bars, book={"A": 0.5, "B": 0.5})
    straight, restarted = both(tmp_path, entry, script, k, **{**NEUTRAL, "loss_streak": 10})
    halted = [i for i, d in enumerate(straight) if d.trading_state is TradingState.HALTED]
    assert halted
    assert halted[0] < len(bars) - 4
    worse = {i: w for i in range(k, len(bars)) if (w := less_cautious(straight[i], restarted[i]))}
    assert not worse, worse


CRASHED = pytest.param(
    True,
    id="crash",
    marks=pytest.mark.xfail(
        strict=True,
        reason="without the engine snapshot (a crash) the correlation-shock rule needs "
        "correlation_warmup (60) bars of a new tracker: a restart in late February 2020 is ACTIVE "
        "through the March crash where the running manager is REDUCING on the shock (ACTIVE < "
        "REDUCING; exposure 0.59 against 0.15 on 2020-03-09)",
    ),
)


@pytest.mark.parametrize("crash", [pytest.param(False, id="graceful"), CRASHED])
@pytest.mark.parametrize("entry", ENTRIES)
def test_restart_before_a_correlation_shock_still_reduces(tmp_path: Path, entry: str, crash: bool) -> None:
    """A graceful restart (close, then open) goes on from the snapshot of the tracker: the shock is
    seen on the same bar. A crash loses it (strict xfail)."""
    bars = stock_bars("2019-06", "2020-03-20")
    k = 190  # 2020-02-28 (ACTIVE); the straight run's shock REDUCES from 2020-03-09 (bar 193)
    straight, restarted = both(tmp_path, entry, Script(bars), k, crash=crash)
    assert straight[k - 1].trading_state is TradingState.ACTIVE
    shocked = [i for i in range(k, len(bars)) if straight[i].correlation.shock]
    assert shocked
    assert straight[shocked[0]].trading_state is TradingState.REDUCING
    worse = {i: w for i in shocked if (w := less_cautious(straight[i], restarted[i]))}
    assert not worse, worse


STOPS_CRASHED = pytest.param(
    True,
    id="crash",
    marks=pytest.mark.xfail(
        strict=True,
        reason="without the engine snapshot (a crash) a restored stop stands still while its "
        "asset's ATR warms up, and then trails on from where it stood, not from where the running "
        "manager's stop trailed meanwhile: once the ATR is ready the restarted stops are looser "
        "(MSFT's long stop 128.21 against 130.69); documented in docs/embedding.md (Stops survive "
        "a restart)",
    ),
)


@pytest.mark.parametrize("crash", [pytest.param(False, id="graceful"), STOPS_CRASHED])
@pytest.mark.parametrize("entry", ENTRIES)
def test_restart_stops_after_atr_warm_up_not_looser(tmp_path: Path, entry: str, crash: bool) -> None:
    k, ready = 60, 63  # atr_period=3: the restarted ATR is ready at its 4th bar
    straight, restarted = both(tmp_path, entry, Script(CALM[:75]), k, crash=crash, **NEUTRAL)
    looser = {}
    for i in range(ready, ready + 5):
        for a, sign in ((a, 1.0 if w > 0 else -1.0) for a, w in BOOK.items()):
            s, r = straight[i].stop_levels[a], restarted[i].stop_levels[a]
            if sign * (s - r) > 1e-9:  # a long's stop lower, a short's higher
                looser[(i, a)] = (s, r)
    assert not looser, looser
