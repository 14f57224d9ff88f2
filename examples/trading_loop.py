"""The main demo (``make demo``): a trading bot loop around ``AdvancedRiskManager.manage_risk``.

It replays the bundled 20 S&P 500 stocks bar by bar, out of sample, through the manager with the
shipped PPO policy (trained only on data up to 2012-12-31, ``models/``), and applies each decision
like a bot would:

- the manager sees the bar's per-asset returns and closes, the bot's held weights, equity and
  drawdown; it answers weights (assets + cash), leverage, a hedge instruction, VaR/CVaR and state;
- the bot trades to ``weights x leverage`` on the assets (cash may go negative: borrowing at 0 %),
  shortens its exposure by the hedge ratio (a hedge modelled as a short of the same book), and pays
  10 bp on traded value;
- the same bars are also run with the policy alone (its weights, no risk layer), with the policy
  alone scaled by the textbook volatility target (``min(1, 15 % / EWMA vol)``, the baseline a risk
  layer must beat) and with equal weight rebalanced daily (10 bp), so the risk layer's effect can
  be read off;
- and once more with the shipped learned risk agents on (``models/risk_agents_sp500.armodel``).
  This bot trades weights, so of their advice only the monitor's exposure cut and hedge reach its
  book; the sizer's and stop agent's advice shows in ``position_sizes`` / ``stop_levels``.

The managers keep their state in memory (so no disk write can delay a decision and change the
figures); at the end of the first replay (PPO + risk) the bot copies its manager's journal, row by
row as ``read_decision`` returns it, into ``demo_output/journal.db`` (a fresh file each run), and the
demo ends by writing the HTML risk report of that journal (``demo_output/risk_report.html``,
:func:`advanced_risk.monitoring.report.write_journal_report`; ``python -m advanced_risk journal
demo_output/journal.db`` lists its rows).

Run:  python examples/trading_loop.py [--start 2013-01-01] [--model models/ppo_sp500_2012.armodel]
      [--risk-agents models/risk_agents_sp500.armodel | none] [--out demo_output]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from advanced_risk import AdvancedRiskManager, MarketState, Portfolio, RiskConfig, measures
from advanced_risk.data import load_sp500_stocks
from advanced_risk.engine.state import StateStore
from advanced_risk.monitoring.report import write_journal_report
from advanced_risk.rl import history_length
from advanced_risk.rl.portfolio.manager import RLPortfolioManager

COST = 0.001  # 10 bp of traded value
WARMUP_BARS = 300  # bars fed before the start date so the tracker and the policy have history
MIN_BARS = 20  # bars replayed at least, from the start date on
DEFAULT_MODEL = Path(__file__).resolve().parent.parent / "models" / "ppo_sp500_2012.armodel"
DEFAULT_AGENTS = Path(__file__).resolve().parent.parent / "models" / "risk_agents_sp500.armodel"
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "demo_output"


def summary_row(name: str, returns: np.ndarray, turnover: float) -> str:
    """One line of the summary table from daily book returns."""
    return (
        f"{name:<30} {measures.annualised_return(returns):>8.2%} {measures.sharpe_ratio(returns):>7.2f} "
        f"{measures.max_drawdown(returns):>8.2%} {turnover:>9.3f}"
    )


class PolicyAlone:
    """The same policy traded without the risk layer (weights only, no leverage, no hedge)."""

    def __init__(self, policy: RLPortfolioManager, n: int) -> None:
        self.policy = policy
        self.history = history_length(policy.env_config)
        self.weights = np.append(np.zeros(n), 1.0)  # assets then cash; starts in cash
        self.equity = self.peak = 1.0
        self.returns: list[float] = []
        self.turnovers: list[float] = []

    @property
    def turnover(self) -> float:
        return float(np.mean(self.turnovers))

    def step(self, history: np.ndarray, r: np.ndarray) -> float:
        """Drift, then rebalance to the policy's weights; returns the bar's gross return."""
        gross = float(self.weights[:-1] @ r)
        self.weights = np.append(self.weights[:-1] * (1.0 + r), self.weights[-1]) / (1.0 + gross)
        self.equity *= 1.0 + gross
        self.peak = max(self.peak, self.equity)
        target = self.policy.rebalance(history[-self.history :], self.weights, 1.0 - self.equity / self.peak)
        traded = float(np.abs(target[:-1] - self.weights[:-1]).sum())
        self.returns.append(gross - COST * traded)
        self.turnovers.append(traded)
        self.equity *= 1.0 - COST * traded
        self.weights = target
        return gross


class VolTargeted:
    """The textbook baseline: the policy alone's book scaled by ``min(1, 15 % / EWMA vol)``.

    The EWMA (lambda 0.94) is of the policy-alone book's own daily returns, decided at each close:
    the rule of the evaluation harness's baseline (``rules_evaluation.harness.vol_target_exposure``),
    stepped bar by bar and started from the first squared return instead of a warm-up mean. The
    scaled book drifts with prices and pays the same 10 bp on traded value.
    """

    def __init__(self, n: int, target: float = 0.15, lam: float = 0.94) -> None:
        self.held = np.zeros(n)
        self.target, self.lam = target, lam
        self.variance: float | None = None
        self.returns: list[float] = []
        self.turnovers: list[float] = []

    @property
    def turnover(self) -> float:
        return float(np.mean(self.turnovers))

    def step(self, r: np.ndarray, policy_gross: float, policy_target: np.ndarray) -> None:
        gross = float(self.held @ r)
        self.held = self.held * (1.0 + r) / (1.0 + gross)
        sq = policy_gross * policy_gross
        self.variance = sq if self.variance is None else self.lam * self.variance + (1.0 - self.lam) * sq
        vol = math.sqrt(252.0 * self.variance)
        exposure = 1.0 if vol == 0.0 else min(1.0, self.target / vol)
        target = exposure * policy_target[:-1]
        traded = float(np.abs(target - self.held).sum())
        self.returns.append(gross - COST * traded)
        self.turnovers.append(traded)
        self.held = target


@dataclass
class Replay:
    """What one pass of the bot through the manager produced."""

    returns: list[float] = field(default_factory=list)
    turnovers: list[float] = field(default_factory=list)
    breaches: int = 0
    forecasts: int = 0
    halts: int = 0
    hedged: int = 0
    overridden: int = 0
    advised: int = 0
    drifted: dict[str, int] = field(default_factory=dict)  # model -> bars its advice was replaced
    metrics: dict[str, Any] = field(default_factory=dict)
    elapsed: float = 0.0


async def replay(
    config: RiskConfig,
    model: Path,
    agents: Path | None,
    tickers: list[str],
    rets: np.ndarray,
    px: np.ndarray,
    journal: Path | None = None,
) -> Replay:
    """The bot's loop: each bar drifts the book, asks ``manage_risk`` and trades to its decision.

    With ``journal``, the manager's journal of the run is copied there at the end (:func:`save_journal`).
    """
    decided: list[tuple[str, float]] = []
    n = len(tickers)
    out = Replay()
    equity = 1.0
    held = np.zeros(n)  # the bot starts in cash
    last_var = math.nan
    prev_state = "active"
    started = time.perf_counter()
    async with AdvancedRiskManager(config, policy=model, risk_agents=agents) as risk:
        for t in range(rets.shape[0]):
            r = rets[t]
            trading = t >= WARMUP_BARS
            # 1. the bar happens to what the bot holds (weights drift with prices)
            gross = float(held @ r)
            if trading:
                out.returns.append(gross)
                if math.isfinite(last_var):
                    out.forecasts += 1
                    out.breaches += gross < -last_var
            equity *= 1.0 + gross
            held = held * (1.0 + r) / (1.0 + gross) if equity > 0 else held
            # 2. ask the risk manager
            market = MarketState(
                returns=dict(zip(tickers, r, strict=True)), prices=dict(zip(tickers, px[t + 1], strict=True))
            )
            book = Portfolio(
                weights=dict(zip(tickers, held, strict=True)),
                equity=equity,  # the manager measures the drawdown (RiskConfig.drawdown_window)
            )
            decision = await risk.manage_risk(market, book)
            decided.append((decision.decision_id, time.time()))
            # 3. apply it: weights x leverage, hedge shortens the exposure, pay costs
            target = np.array([decision.rebalance_weights[a] for a in tickers])
            unhedged = 1.0 - (decision.hedge.ratio if decision.hedge.active else 0.0)
            target *= decision.leverage * unhedged
            traded = float(np.abs(target - held).sum())
            if trading:  # during the warm-up the bot only shows the manager the market
                out.turnovers.append(traded)
                out.returns[-1] -= COST * traded
                out.hedged += decision.hedge.active
                out.halts += decision.trading_state.value == "halted" and prev_state != "halted"
                for alert in decision.alerts:
                    if alert.startswith("input drift: "):  # the model was replaced by the rules
                        name = alert.removeprefix("input drift: ").split(" score ")[0]
                        out.drifted[name] = out.drifted.get(name, 0) + 1
                if decision.risk_agents is not None:
                    out.advised += 1
                    out.overridden += bool(decision.risk_agents.overridden)
                equity *= 1.0 - COST * traded
                held = target
            last_var = decision.var * unhedged  # VaR scales with the book; the hedge shrinks it
            prev_state = decision.trading_state.value
        out.metrics = risk.metrics()
        out.elapsed = time.perf_counter() - started  # the replay's time, not the copy's below
        if journal is not None:
            await risk.flush()
            save_journal(risk, decided, journal)
    return out


def save_journal(risk: AdvancedRiskManager, decisions: list[tuple[str, float]], path: Path) -> None:
    """Copy the manager's journal rows of ``decisions`` (id, Unix time) into a fresh file ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):  # a fresh file: no earlier run's rows
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    rows = [(i, risk.read_decision(i)) for i, _ in decisions]
    with StateStore(path) as store:
        store.append_decisions([(i, row) for i, row in rows if row is not None], [t for _, t in decisions])


def first_bar(prices: pd.DataFrame, start: str) -> int:
    """The row of ``prices`` the replay starts at: the first bar on or after ``start``.

    Raises ``ValueError`` when ``start`` is not a date, or leaves fewer than ``WARMUP_BARS`` bars
    before it or fewer than ``MIN_BARS`` from it on (a negative slice would silently replay the
    wrong bars, too few would end in an IndexError).
    """
    try:
        stamp = np.datetime64(start)
    except ValueError as exc:
        raise ValueError(f"--start {start!r} is not a date (YYYY-MM-DD)") from exc
    first = int(prices.index.searchsorted(stamp))
    lo, hi = WARMUP_BARS + 1, len(prices) - MIN_BARS
    if not lo <= first <= hi:
        raise ValueError(
            f"--start {start} must leave {WARMUP_BARS} bars of history before it and {MIN_BARS} from it "
            f"on: the bundled data allow {prices.index[lo].date()} to {prices.index[hi].date()}"
        )
    return first


async def run(start: str, model: Path, agents: Path | None, out: Path = DEFAULT_OUT) -> None:
    prices = load_sp500_stocks()
    tickers = list(prices.columns)
    first = first_bar(prices, start)
    window = prices.iloc[first - WARMUP_BARS - 1 :]
    px = window.to_numpy()
    rets = px[1:] / px[:-1] - 1.0
    dates = window.index[1:]
    n = len(tickers)
    config = RiskConfig(deadline_ms=20.0, deterministic_refits=True)  # a replay: refits waited for

    policy_alone = PolicyAlone(RLPortfolioManager.load(model), n)
    vol_targeted = VolTargeted(n)
    ew_returns: list[float] = []
    ew_turnovers: list[float] = []
    for t in range(WARMUP_BARS, rets.shape[0]):
        r = rets[t]
        drifted = (1.0 + r) / (1.0 + r.mean()) / n  # equal weight after the bar's moves
        ew_turnovers.append(float(np.abs(drifted - 1.0 / n).sum()))
        ew_returns.append(float(r.mean()) - COST * ew_turnovers[-1])
        gross = policy_alone.step(rets[: t + 1], r)
        vol_targeted.step(r, gross, policy_alone.weights)
    journal = out / "journal.db"
    managed = await replay(config, model, None, tickers, rets, px, journal)
    with_agents = None if agents is None else await replay(config, model, agents, tickers, rets, px)

    span = f"{dates[WARMUP_BARS].date()} to {dates[-1].date()}"
    print(f"Trading loop, 20 S&P 500 stocks, {span} ({len(managed.returns)} bars)")
    print(f"policy: {model.name} (trained on data up to 2012-12-31), 10 bp costs, alpha {config.alpha}")
    if agents is not None:
        print(f"risk agents: {agents.name} (trained on data up to 2012-12-31)")
    print(f"\n{'strategy':<30} {'CAGR':>8} {'Sharpe':>7} {'max DD':>8} {'turnover':>9}")
    print(
        summary_row("manage_risk (PPO + risk)", np.array(managed.returns), float(np.mean(managed.turnovers)))
    )
    if with_agents is not None:
        print(
            summary_row(
                "manage_risk (+ risk agents)",
                np.array(with_agents.returns),
                float(np.mean(with_agents.turnovers)),
            )
        )
    print(summary_row("PPO alone (no risk layer)", np.array(policy_alone.returns), policy_alone.turnover))
    print(summary_row("PPO alone x vol target 15 %", np.array(vol_targeted.returns), vol_targeted.turnover))
    print(summary_row("equal weight, daily", np.array(ew_returns), float(np.mean(ew_turnovers))))
    for name, result in (("manage_risk", managed), ("+ risk agents", with_agents)):
        if result is None:
            continue
        m = result.metrics
        expected = result.forecasts * (1.0 - config.alpha)
        print(f"\n{name}: VaR {config.alpha:.0%} breaches {result.breaches} of {result.forecasts} bars "
              f"(expected {expected:.1f}); halts {result.halts}; bars with hedge on {result.hedged}; "
              f"degraded decisions {m['degraded']}")  # fmt: skip
        drifted = ", ".join(f"{model} on {bars}" for model, bars in result.drifted.items()) or "none"
        print(f"  input drift (docs/drift.md): bars a model was replaced by the rules: {drifted}")
        if result.advised:
            print(
                f"  agents advised on {result.advised} bars; "
                f"some agent replaced by its rule on {result.overridden}"
            )
        print(
            f"  latency: p50 {m['latency_p50_ms'] * 1000:.0f} us, p99 {m['latency_p99_ms'] * 1000:.0f} us, "
            f"max {m['latency_max_ms']:.2f} ms ({m['calls']} calls, {result.elapsed:.1f} s wall)"
        )
    page = write_journal_report(journal, out, alpha=config.alpha)
    print(f"\nrisk report of the manage_risk run's journal ({journal}): {page}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--start", default="2013-01-01", help="first out-of-sample date (default 2013-01-01)")
    parser.add_argument(
        "--model", type=Path, default=DEFAULT_MODEL, help=f"policy file (default {DEFAULT_MODEL})"
    )
    parser.add_argument(
        "--risk-agents",
        type=Path,
        default=DEFAULT_AGENTS,
        help=f"risk agents file, also replayed with them (default {DEFAULT_AGENTS}); 'none' to skip",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help=f"folder of the journal and its report (default {DEFAULT_OUT})",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)  # the summary reports states, hedges and faults
    agents = None if str(args.risk_agents).lower() == "none" else args.risk_agents
    try:
        first_bar(load_sp500_stocks(), args.start)
    except ValueError as exc:
        parser.error(str(exc))
    asyncio.run(run(args.start, args.model, agents, args.out))


if __name__ == "__main__":
    main()
