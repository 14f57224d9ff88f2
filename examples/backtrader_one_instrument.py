"""A backtrader strategy on one instrument whose entries, stops and halts come from the risk manager.

Usage::

    python examples/backtrader_one_instrument.py            # all 5,031 bars of the S&P 500 index
    python examples/backtrader_one_instrument.py --short    # short below the SMA instead of flat
    python examples/backtrader_one_instrument.py --bars 1500

It replays the bundled S&P 500 index (daily OHLCV, 1999-2018) through backtrader. Once per bar,
``next()`` builds a ``MarketState`` (the bar's return, close, high and low) and a ``Portfolio`` (the
position's weight and the broker's value) and calls ``risk.manage_risk_sync``. The signal is a
200-bar SMA filter: long while the close is above it, else flat (``--short``: short). The risk
manager decides the rest:

- entry size: ``decision.position_sizes["SPX"]`` units (2 % of equity lost at the ATR stop, capped
  at ``max_position_fraction * leverage`` of equity), then capped at 98 % of equity at the close (a
  cash account without margin, with headroom for a gap to the next open, where the market order
  fills) and scaled by ``1 - decision.hedge.ratio`` (one instrument has nothing to hedge with, so it
  buys less instead). An open position is not resized;
- protective stop: a stop order at ``decision.stop_levels["SPX"]``, below the price for a long and
  above it for a short, moved every bar as the manager trails it (never loosened). While the book
  is flat the manager's stop is a long's; a short entry mirrors its distance above the close, and
  from the next bar the manager trails the short's stop itself;
- no entry unless ``decision.trading_state`` is ACTIVE (sizes are 0 while REDUCING or HALTED), and
  flat at once when it is HALTED (HALTED is left only by ``risk.resume``: an operator's decision).

``RiskConfig(deterministic_refits=True)``: GARCH refits are waited for at their install bar, so a
replay gives the same decisions on any machine and no decision is degraded by a slow worker.

It prints bars, degraded decisions, entries, stop exits, final value and maximum drawdown, and the
same figures for buy-and-hold over the same bars.

Mapping to other frameworks
---------------------------

The risk calls are the same in any framework with a synchronous per-bar callback; only where the
inputs come from and where the orders go differ.

nautilus_trader: ``Strategy.on_bar(self, bar)`` is synchronous, so call ``manage_risk_sync`` inline
there, as ``next()`` does here. Build ``MarketState`` from ``float(bar.close)``, ``float(bar.high)``
and ``float(bar.low)`` (the return from the previous bar's close), and the ``Portfolio`` from
``self.portfolio``: the weight is ``self.portfolio.net_exposure(instrument_id)`` over the account's
equity (signed: negative for a short). From the decision, submit orders built with
``self.order_factory``: ``market(...)`` of ``position_sizes`` units for an entry and
``stop_market(...)`` on the other side with ``stop_levels`` as its trigger price, kept in step as
the stop trails (``self.modify_order`` or cancel and replace); close the position when the decision
is HALTED.

freqtrade: an ``IStrategy`` fills its indicator and signal columns vectorised (in backtesting, once
over the whole history), so there is no per-bar strategy hook to call the manager from. Compute the
decision once per pair and new candle (the latest row of
``self.dp.get_analyzed_dataframe(pair, self.timeframe)``, the open trades and the wallet), cache it,
and read it in the callbacks: ``custom_stake_amount`` returns ``position_sizes[pair] * current_rate``
(the stake in the stake currency, kept within ``min_stake`` / ``max_stake``); ``custom_stoploss``
(with ``use_custom_stoploss = True``) returns the stop level as a distance relative to
``current_rate``, which ``stoploss_from_absolute(stop_level, current_rate, is_short=trade.is_short,
leverage=trade.leverage)`` computes; ``confirm_trade_entry`` returns False unless
``trading_state`` is ACTIVE; the ``leverage`` callback returns ``decision.leverage`` (within
``max_leverage``).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import backtrader as bt  # type: ignore[import-untyped]
import numpy as np
import pandas as pd

from advanced_risk import AdvancedRiskManager, MarketState, Portfolio, RiskConfig, RiskDecision
from advanced_risk.data import load_sp500_index
from advanced_risk.types import TradingState

ASSET = "SPX"
START_CASH = 100_000.0
SMA_PERIOD = 200  # the trend filter's window; the strategy trades once it is full


@dataclass(frozen=True, slots=True)
class Entry:
    """One entry order: the bar it was decided on, its side, size and stop."""

    bar: int
    side: int  # +1 long, -1 short
    size: float  # units ordered
    decided_size: float  # decision.position_sizes[ASSET]
    close: float  # the close of the bar it was decided on (the market order fills at the next open)
    stop: float  # the protective stop placed with it
    fill: float = math.nan  # the fill price (set when the order completes)


@dataclass(slots=True)
class Stats:
    """What a run records, bar by bar."""

    decisions: list[RiskDecision] = field(default_factory=list)
    equity: list[float] = field(default_factory=list)
    entries: list[Entry] = field(default_factory=list)
    stop_orders: int = 0  # stop orders placed (initial and trailing updates)
    stop_exits: int = 0  # positions closed by their stop order
    rejected: int = 0  # entry orders the broker refused (not enough cash at the next open)
    signal_exits: int = 0
    halt_exits: int = 0

    @property
    def degraded(self) -> int:
        return sum(d.degraded for d in self.decisions)


class RiskManagedStrategy(bt.Strategy):  # type: ignore[misc]
    """SMA-filter signal; sizes, stops and halts from ``AdvancedRiskManager.manage_risk_sync``."""

    params = (
        ("risk", None),  # an AdvancedRiskManager
        ("stats", None),  # a Stats to fill
        ("sma_period", SMA_PERIOD),
        ("short", False),  # short below the SMA instead of flat
        # cap on an entry's notional / equity at the decision's close: a cash account, with 2 %
        # headroom for a gap up to the next open, where the market order fills
        ("max_exposure", 0.98),
    )

    def __init__(self) -> None:
        self.sma = bt.indicators.SimpleMovingAverage(self.data.close, period=self.p.sma_period)
        self.order: bt.Order | None = None  # the pending entry or exit market order
        self.stop_order: bt.Order | None = None
        self.stop_price = math.nan
        self.pending_entry: Entry | None = None
        self.entry_stop = math.nan  # the stop decided with the entry, placed on the bar it fills

    # -- backtrader calls --------------------------------------------------------------------------
    def prenext(self) -> None:  # before the SMA has its 200 bars: the risk manager warms up
        self.next()

    def next(self) -> None:
        stats: Stats = self.p.stats
        decision = self.decide()
        stats.decisions.append(decision)
        stats.equity.append(self.broker.getvalue())
        if self.order is not None:  # a market order fills at the next open
            return
        position = self.position.size
        if decision.trading_state is TradingState.HALTED:
            if position:
                stats.halt_exits += 1
                self.exit()
            return
        want = self.signal()
        if position and (want == 0 or want != np.sign(position)):
            stats.signal_exits += 1
            self.exit()  # a reversal enters from the next bar, sized by its own decision
        elif position:
            self.protect(decision, side=int(np.sign(position)))
        elif want and decision.trading_state is TradingState.ACTIVE:
            self.enter(decision, want)

    def notify_order(self, order: bt.Order) -> None:
        stats: Stats = self.p.stats
        if order.status in (order.Submitted, order.Accepted):
            return
        # backtrader notifies a clone of the order: match by its ref
        if self.stop_order is not None and order.ref == self.stop_order.ref:
            if order.status == order.Completed:
                stats.stop_exits += 1
            if order.status != order.Partial:
                self.stop_order, self.stop_price = None, math.nan
            return
        if self.order is None or order.ref != self.order.ref:
            return
        self.order = None
        entry, self.pending_entry = self.pending_entry, None
        if entry is not None and order.status != order.Completed:  # Margin, Rejected: not an entry
            stats.entries.remove(entry)
            stats.rejected += 1
            return
        if order.status == order.Completed and entry is not None and self.position.size:
            stats.entries[-1] = dataclasses.replace(entry, fill=order.executed.price)
            # placed from next(): an order placed here is accepted only at the next bar, and
            # backtrader cannot cancel an order it has not accepted yet
            self.entry_stop = entry.stop

    # -- the risk call -----------------------------------------------------------------------------
    def decide(self) -> RiskDecision:
        close, high, low = self.data.close[0], self.data.high[0], self.data.low[0]
        equity = self.broker.getvalue()
        market = MarketState(
            returns={ASSET: close / self.data.close[-1] - 1.0} if len(self) > 1 else {},
            prices={ASSET: close},
            high={ASSET: high},
            low={ASSET: low},
        )
        book = Portfolio(weights={ASSET: self.position.size * close / equity}, equity=equity)
        return self.p.risk.manage_risk_sync(market, book)  # type: ignore[no-any-return]

    def signal(self) -> int:
        if len(self.sma) == 0 or math.isnan(self.sma[0]):
            return 0
        if self.data.close[0] > self.sma[0]:
            return 1
        return -1 if self.p.short else 0

    # -- orders ------------------------------------------------------------------------------------
    def enter(self, decision: RiskDecision, side: int) -> None:
        close = self.data.close[0]
        decided = decision.position_sizes.get(ASSET, 0.0)
        long_stop = decision.stop_levels.get(ASSET, math.nan)
        if not (decided > 0 and math.isfinite(long_stop) and 0 < long_stop < close):
            return
        equity = self.broker.getvalue()
        size = min(decided, self.p.max_exposure * equity / close) * (1.0 - decision.hedge.ratio)
        size = math.floor(size)
        if size < 1:
            return
        # flat, so the manager's stop is a long's: a short mirrors its distance above the close
        stop = long_stop if side > 0 else close + (close - long_stop)
        entry = Entry(len(self), side, float(size), decided, close, stop)
        self.p.stats.entries.append(entry)
        self.pending_entry = entry
        self.order = self.buy(size=size) if side > 0 else self.sell(size=size)

    def place_stop(self, price: float, side: int) -> None:
        if self.stop_order is not None:
            self.cancel(self.stop_order)
        size = abs(self.position.size)
        stop = bt.Order.Stop
        order = (
            self.sell(size=size, exectype=stop, price=price)
            if side > 0
            else self.buy(size=size, exectype=stop, price=price)
        )
        self.stop_order, self.stop_price = order, price
        self.p.stats.stop_orders += 1

    def protect(self, decision: RiskDecision, side: int) -> None:
        """Keep a stop order at the tightest of the entry's stop and the manager's (trailing) level."""
        close = self.data.close[0]
        level = decision.stop_levels.get(ASSET, math.nan)
        # the manager's level is for this side once it has seen the position (the bar after the fill)
        on_side = math.isfinite(level) and (level < close if side > 0 else level > close)
        levels = [x for x in (self.entry_stop, level if on_side else math.nan) if math.isfinite(x)]
        if self.stop_order is not None:
            levels.append(self.stop_price)
        if not levels:
            return
        best = max(levels) if side > 0 else min(levels)
        self.entry_stop = math.nan
        if self.stop_order is None or best != self.stop_price:
            self.place_stop(best, side)

    def exit(self) -> None:
        if self.stop_order is not None:
            self.cancel(self.stop_order)
        self.order = self.close()


def max_drawdown(values: Sequence[float] | np.ndarray) -> float:
    """Largest peak-to-trough loss of a value series, as a fraction of the peak."""
    v = np.asarray(values, dtype=float)
    if v.size == 0:
        return 0.0
    return float(np.max(1.0 - v / np.maximum.accumulate(v)))


def load_bars(bars: int | None = None) -> pd.DataFrame:
    """The first ``bars`` bars of the bundled S&P 500 index (all 5,031 when None)."""
    df = load_sp500_index()
    return df if bars is None else df.iloc[:bars]


def run_backtest(
    bars: int | None = None,
    *,
    short: bool = False,
    config: RiskConfig | None = None,
    sma_period: int = SMA_PERIOD,
) -> tuple[Stats, pd.DataFrame]:
    """Run the strategy over the first ``bars`` bars; returns what it recorded and the bars used.

    Raises ``ValueError`` when ``bars`` is fewer than ``sma_period`` (backtrader's SMA would end in
    an IndexError deep inside ``cerebro.run``) or would not take the first bars (0 or negative).
    """
    if bars is not None and (isinstance(bars, bool) or not isinstance(bars, int) or bars < sma_period):
        raise ValueError(f"bars must be an int >= the SMA period ({sma_period}), got {bars!r}")
    df = load_bars(bars)
    config = config or RiskConfig(deterministic_refits=True, periods_per_year=252)
    risk = AdvancedRiskManager(config)
    stats = Stats()
    cerebro = bt.Cerebro(stdstats=False)
    cerebro.adddata(bt.feeds.PandasData(dataname=df, openinterest=None))
    cerebro.addstrategy(RiskManagedStrategy, risk=risk, stats=stats, sma_period=sma_period, short=short)
    cerebro.broker.setcash(START_CASH)
    try:
        cerebro.run()
    finally:
        risk.close_sync()
    return stats, df


def summary(stats: Stats, df: pd.DataFrame, seconds: float) -> str:
    close = df["Close"].to_numpy()
    hold = START_CASH * close / close[0]
    sides = {1: "long", -1: "short"}
    by_side = ", ".join(
        f"{sum(e.side == s for e in stats.entries)} {name}"
        for s, name in sides.items()
        if any(e.side == s for e in stats.entries)
    )
    first, last = df.index[0], df.index[-1]
    lines = [
        f"bars                 {len(stats.decisions):>12,}   ({first:%Y-%m-%d} to {last:%Y-%m-%d})",
        f"degraded decisions   {stats.degraded:>12,}",
        f"entries              {len(stats.entries):>12,}   ({by_side or 'none'}; "
        f"{stats.rejected} refused by the broker)",
        f"stop orders placed   {stats.stop_orders:>12,}   (initial and trailing)",
        f"exits                {stats.stop_exits:>12,} by stop, {stats.signal_exits} by signal, "
        f"{stats.halt_exits} by halt",
        f"final value          {stats.equity[-1]:>12,.0f}   (start {START_CASH:,.0f})",
        f"max drawdown         {max_drawdown(stats.equity):>12.1%}",
        f"buy-and-hold value   {hold[-1]:>12,.0f}",
        f"buy-and-hold max dd  {max_drawdown(hold):>12.1%}",
        f"run time             {seconds:>12.1f} s",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=None, help="first N bars (default: all 5,031)")
    parser.add_argument("--short", action="store_true", help="short below the SMA instead of flat")
    args = parser.parse_args(argv)
    if args.bars is not None and args.bars < SMA_PERIOD:
        parser.error(f"--bars must be >= {SMA_PERIOD} (the SMA period), got {args.bars}")
    start = time.perf_counter()
    stats, df = run_backtest(args.bars, short=args.short)
    print(summary(stats, df, time.perf_counter() - start))


if __name__ == "__main__":
    main()
