"""Embedding the manager: inside an async bot loop, and inside a synchronous backtest callback.

Run:  python examples/embedding.py [--bars 2000]

It replays the bundled 20 S&P 500 stocks three ways and prints the measured per-bar cost of each:

1. an asyncio bot: ``decision = await risk.manage_risk(market, portfolio)`` in its loop;
2. a synchronous strategy callback (backtrader / nautilus ``on_bar`` / freqtrade style) calling the
   synchronous twin ``risk.manage_risk_sync(market, portfolio)``: same core, same decision;
3. the same callback bridging into an event loop on another thread
   (``asyncio.run_coroutine_threadsafe(...).result()``), the usual workaround without a twin.
"""

from __future__ import annotations

import argparse
import asyncio
import threading
import time
from collections.abc import Callable, Sequence

from advanced_risk import AdvancedRiskManager, MarketState, Portfolio, RiskConfig, RiskDecision
from advanced_risk.data import load_sp500_stocks


class Feed:
    """The bundled stocks as bars: per-asset returns and closes."""

    def __init__(self, bars: int) -> None:
        prices = load_sp500_stocks().iloc[-(bars + 1) :]
        self.tickers = list(prices.columns)
        px = prices.to_numpy()
        self.returns = px[1:] / px[:-1] - 1.0
        self.closes = px[1:]

    def bar(self, t: int) -> tuple[MarketState, Portfolio]:
        market = MarketState(
            returns=dict(zip(self.tickers, self.returns[t], strict=True)),
            prices=dict(zip(self.tickers, self.closes[t], strict=True)),
        )
        book = Portfolio(weights=dict.fromkeys(self.tickers, 0.05), equity=100_000.0, current_drawdown=0.0)
        return market, book


class Strategy:
    """A synchronous strategy: the framework calls ``on_bar`` once per bar."""

    def __init__(self, decide: Callable[[MarketState, Portfolio], RiskDecision]) -> None:
        self.decide = decide
        self.leverage: list[float] = []

    def on_bar(self, market: MarketState, portfolio: Portfolio) -> None:
        decision = self.decide(market, portfolio)
        self.leverage.append(decision.leverage)  # a real strategy would place orders here


async def async_bot(feed: Feed, n: int) -> float:
    """1. The asyncio bot loop; returns seconds per bar."""
    async with AdvancedRiskManager(RiskConfig(rate_limit_per_s=None)) as risk:
        start = time.perf_counter()
        for t in range(n):
            market, portfolio = feed.bar(t)
            decision = await risk.manage_risk(market, portfolio)
            assert not decision.degraded or decision.alerts
        return (time.perf_counter() - start) / n


def sync_callback(feed: Feed, n: int) -> float:
    """2. A synchronous callback using the twin; returns seconds per bar."""
    risk = AdvancedRiskManager(RiskConfig(rate_limit_per_s=None))
    strategy = Strategy(risk.manage_risk_sync)
    start = time.perf_counter()
    for t in range(n):
        strategy.on_bar(*feed.bar(t))
    elapsed = (time.perf_counter() - start) / n
    risk.close_sync()
    return elapsed


def bridged_callback(feed: Feed, n: int) -> float:
    """3. A synchronous callback bridging into an event loop thread; returns seconds per bar."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    risk = AdvancedRiskManager(RiskConfig(rate_limit_per_s=None))

    def decide(market: MarketState, portfolio: Portfolio) -> RiskDecision:
        return asyncio.run_coroutine_threadsafe(risk.manage_risk(market, portfolio), loop).result()

    strategy = Strategy(decide)
    start = time.perf_counter()
    for t in range(n):
        strategy.on_bar(*feed.bar(t))
    elapsed = (time.perf_counter() - start) / n
    asyncio.run_coroutine_threadsafe(risk.close(), loop).result()
    loop.call_soon_threadsafe(loop.stop)
    thread.join()
    return elapsed


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=2000, help="bars per way (default 2000)")
    args = parser.parse_args(argv)
    if args.bars < 1:  # 0 divided the elapsed time by zero; a negative count printed "-0 us"
        parser.error(f"--bars must be >= 1, got {args.bars}")
    feed = Feed(args.bars)
    results = {
        "async bot: await manage_risk": asyncio.run(async_bot(feed, args.bars)),
        "sync callback: manage_risk_sync": sync_callback(feed, args.bars),
        "sync callback bridged to a loop": bridged_callback(feed, args.bars),
    }
    print(f"per-bar cost, 20 assets, {args.bars} bars, state in memory, no policy")
    for name, seconds in results.items():
        print(f"  {name:<34} {seconds * 1e6:>7.0f} us")
    bridge = results["sync callback bridged to a loop"] - results["sync callback: manage_risk_sync"]
    print(f"  the bridge adds {bridge * 1e6:.0f} us per bar; the twin avoids it")


if __name__ == "__main__":
    main()
