"""The main demo (``make demo``): a trading bot loop around ``AdvancedRiskManager.manage_risk``.

It replays the bundled 20 S&P 500 stocks bar by bar, out of sample, through the manager with the
shipped PPO policy (trained only on data up to 2012-12-31, ``models/``), and applies each decision
like a bot would:

- the manager sees the bar's per-asset returns and closes, the bot's held weights, equity and
  drawdown; it answers weights (assets + cash), leverage, a hedge instruction, VaR/CVaR and state;
- the bot trades to ``weights x leverage`` on the assets (cash may go negative: borrowing at 0 %),
  shortens its exposure by the hedge ratio (a hedge modelled as a short of the same book), and pays
  10 bp on traded value;
- the same bars are also run with the policy alone (its weights, no risk layer) and with equal
  weight rebalanced daily (10 bp), so the risk layer's effect can be read off.

Run:  python examples/trading_loop.py [--start 2013-01-01] [--model models/ppo_sp500_2012.armodel]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import time
from pathlib import Path

import numpy as np

from advanced_risk import AdvancedRiskManager, MarketState, Portfolio, RiskConfig, measures
from advanced_risk.data import load_sp500_stocks
from advanced_risk.rl import history_length
from advanced_risk.rl.portfolio import RLPortfolioManager

COST = 0.001  # 10 bp of traded value
WARMUP_BARS = 300  # bars fed before the start date so the tracker and the policy have history
DEFAULT_MODEL = Path(__file__).resolve().parent.parent / "models" / "ppo_sp500_2012.armodel"


def summary_row(name: str, returns: np.ndarray, turnover: float) -> str:
    """One line of the summary table from daily book returns."""
    return (
        f"{name:<26} {measures.annualised_return(returns):>8.2%} {measures.sharpe_ratio(returns):>7.2f} "
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

    def step(self, history: np.ndarray, r: np.ndarray) -> None:
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


async def run(start: str, model: Path) -> None:
    prices = load_sp500_stocks()
    tickers = list(prices.columns)
    first = int(prices.index.searchsorted(np.datetime64(start)))
    window = prices.iloc[first - WARMUP_BARS - 1 :]
    px = window.to_numpy()
    rets = px[1:] / px[:-1] - 1.0
    dates = window.index[1:]
    n = len(tickers)

    config = RiskConfig(deadline_ms=20.0)
    equity, peak = 1.0, 1.0
    held = np.zeros(n)  # the bot starts in cash
    policy_alone = PolicyAlone(RLPortfolioManager.load(model), n)
    book_returns: list[float] = []
    ew_returns: list[float] = []
    turnovers: list[float] = []
    ew_turnovers: list[float] = []
    breaches = forecasts = halts = hedged = 0
    last_var = math.nan
    prev_state = "active"
    started = time.perf_counter()
    async with AdvancedRiskManager(config, policy=model) as risk:
        for t in range(rets.shape[0]):
            r = rets[t]
            trading = t >= WARMUP_BARS
            # 1. the bar happens to what the bot holds (weights drift with prices)
            gross = float(held @ r)
            if trading:
                book_returns.append(gross)
                drifted = (1.0 + r) / (1.0 + r.mean()) / n  # equal weight after the bar's moves
                ew_turnover = float(np.abs(drifted - 1.0 / n).sum())
                ew_returns.append(float(r.mean()) - COST * ew_turnover)
                policy_alone.step(rets[: t + 1], r)
                ew_turnovers.append(ew_turnover)
                if math.isfinite(last_var):
                    forecasts += 1
                    breaches += gross < -last_var
            equity *= 1.0 + gross
            peak = max(peak, equity)
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
            # 3. apply it: weights x leverage, hedge shortens the exposure, pay costs
            target = np.array([decision.rebalance_weights[a] for a in tickers])
            unhedged = 1.0 - (decision.hedge.ratio if decision.hedge.active else 0.0)
            target *= decision.leverage * unhedged
            traded = float(np.abs(target - held).sum())
            if trading:
                turnovers.append(traded)
                book_returns[-1] -= COST * traded
                hedged += decision.hedge.active
                halts += decision.trading_state.value == "halted" and prev_state != "halted"
            if trading:  # during the warm-up the bot only shows the manager the market
                equity *= 1.0 - COST * traded
                held = target
            last_var = decision.var * unhedged  # VaR scales with the book; the hedge shrinks it
            prev_state = decision.trading_state.value
        metrics = risk.metrics()
    elapsed = time.perf_counter() - started

    ours = np.array(book_returns)
    ew = np.array(ew_returns)
    span = f"{dates[WARMUP_BARS].date()} to {dates[-1].date()}"
    print(f"Trading loop, 20 S&P 500 stocks, {span} ({len(ours)} bars)")
    print(f"policy: {model.name} (trained on data up to 2012-12-31), 10 bp costs, alpha {config.alpha}\n")
    print(f"{'strategy':<26} {'CAGR':>8} {'Sharpe':>7} {'max DD':>8} {'turnover':>9}")
    print(summary_row("manage_risk (PPO + risk)", ours, float(np.mean(turnovers))))
    print(summary_row("PPO alone (no risk layer)", np.array(policy_alone.returns), policy_alone.turnover))
    print(summary_row("equal weight, daily", ew, float(np.mean(ew_turnovers))))
    expected = forecasts * (1.0 - config.alpha)
    print(f"\nVaR {config.alpha:.0%} breaches: {breaches} of {forecasts} bars (expected {expected:.1f})")
    print(f"halts: {halts}   bars with hedge on: {hedged}   degraded decisions: {metrics['degraded']}")
    print(
        f"manage_risk latency: p50 {metrics['latency_p50_ms'] * 1000:.0f} us, p99 "
        f"{metrics['latency_p99_ms'] * 1000:.0f} us, max {metrics['latency_max_ms']:.2f} ms "
        f"({metrics['calls']} calls, {elapsed:.1f} s wall)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--start", default="2013-01-01", help="first out-of-sample date (default 2013-01-01)")
    parser.add_argument(
        "--model", type=Path, default=DEFAULT_MODEL, help=f"policy file (default {DEFAULT_MODEL})"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)  # the summary reports states, hedges and faults
    asyncio.run(run(args.start, args.model))


if __name__ == "__main__":
    main()
