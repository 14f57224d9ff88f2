"""Latency of ``manage_risk`` per bar (20 assets), against recomputing the same figures with pandas.

Usage::

    python benchmarks/bench_manager.py [--calls 10000]

Modes, each timed over ``--calls`` bars of the bundled 20 S&P 500 stocks (replayed from the start
and wrapped around; the first 300 bars warm the tracker and are not timed):

- ``async, no policy``: ``await manage_risk`` with state in memory;
- ``async, PPO + 10 MC dropout``: the same with a 20-asset policy (10 dropout samples per bar);
- ``sync, PPO + 10 MC dropout``: ``manage_risk_sync``, the twin for synchronous callbacks;
- ``async, PPO, SQLite on disk``: journal durable (WAL, synchronous=FULL) before each return;
- ``async, risk agents``, ``async, PPO + risk agents``, ``sync, PPO + risk agents``: the learned
  sizer, stop and monitor agents on (10 MC-dropout samples per agent, gated), beside the same mode
  without them.

Before timing, start-up garbage is collected and frozen (``gc.collect(); gc.freeze()``), as
docs/embedding.md recommends to bots: a full cyclic collection otherwise lands in a timed call now
and then and dominates the maximum.

The reference recomputes the per-bar risk figures a user would otherwise compute with pandas from
the trailing window: historical VaR/CVaR of the portfolio, the EWMA covariance (``DataFrame.ewm``)
and its average correlation, realised volatility for leverage, and the drawdown. The ratio is
reference time / our time, both medians.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from advanced_risk import AdvancedRiskManager, EnvConfig, MarketState, Portfolio, PPOConfig, RiskConfig
from advanced_risk.data import load_sp500_stocks
from advanced_risk.rl.portfolio import RLPortfolioManager
from advanced_risk.rl.risk_agents import RiskAgents

WARMUP = 300


def _bars(calls: int) -> tuple[list[str], np.ndarray, np.ndarray]:
    prices = load_sp500_stocks()
    px = prices.to_numpy()
    rets = px[1:] / px[:-1] - 1.0
    idx = np.arange(WARMUP + calls) % rets.shape[0]
    return list(prices.columns), rets[idx], px[1:][idx]


def _inputs(tickers: list[str], r: np.ndarray, p: np.ndarray) -> tuple[MarketState, Portfolio]:
    market = MarketState(
        returns=dict(zip(tickers, r, strict=True)), prices=dict(zip(tickers, p, strict=True))
    )
    book = Portfolio(weights=dict.fromkeys(tickers, 1.0 / len(tickers)), equity=1.0, current_drawdown=0.01)
    return market, book


def _percentiles(samples: list[float]) -> tuple[float, float, float]:
    a = np.array(samples) * 1e6
    return float(np.percentile(a, 50)), float(np.percentile(a, 99)), float(a.max())


async def _time_async(risk: AdvancedRiskManager, inputs: list[tuple[MarketState, Portfolio]]) -> list[float]:
    samples = []
    for i, (market, book) in enumerate(inputs):
        start = time.perf_counter()
        await risk.manage_risk(market, book)
        if i >= WARMUP:
            samples.append(time.perf_counter() - start)
    return samples


def _time_sync(risk: AdvancedRiskManager, inputs: list[tuple[MarketState, Portfolio]]) -> list[float]:
    samples = []
    for i, (market, book) in enumerate(inputs):
        start = time.perf_counter()
        risk.manage_risk_sync(market, book)
        if i >= WARMUP:
            samples.append(time.perf_counter() - start)
    return samples


def _pandas_reference(tickers: list[str], rets: np.ndarray, n_bars: int) -> list[float]:
    """Per bar: what the manager computes, recomputed from a trailing pandas window."""
    frame = pd.DataFrame(rets, columns=tickers)
    w = np.full(len(tickers), 1.0 / len(tickers))
    equity = pd.Series(np.cumprod(1.0 + rets @ w))
    samples = []
    for t in range(WARMUP, WARMUP + n_bars):
        start = time.perf_counter()
        window = frame.iloc[t - 250 : t + 1]
        port = window @ w
        var = -port.quantile(0.01)
        _cvar = -port[port <= -var].mean()
        cov = window.ewm(alpha=0.06).cov().iloc[-len(tickers) :].to_numpy()
        sd = np.sqrt(np.diag(cov))
        corr = cov / np.outer(sd, sd)
        _avg = corr[np.triu_indices(len(tickers), 1)].mean()
        _vol = port.std() * np.sqrt(252)
        _dd = 1.0 - equity.iloc[t] / equity.iloc[: t + 1].max()
        samples.append(time.perf_counter() - start)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=10_000, help="timed calls per mode (default 10000)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    tickers, rets, prices = _bars(args.calls)
    inputs = [_inputs(tickers, rets[i], prices[i]) for i in range(rets.shape[0])]
    policy = RLPortfolioManager(env_config=EnvConfig(asset_count=20), ppo_config=PPOConfig(device="cpu"))
    agents = RiskAgents.untrained(EnvConfig(asset_count=20))  # inference costs the same trained or not
    fast = RiskConfig(deadline_ms=50.0, rate_limit_per_s=None)
    results: list[tuple[str, list[float]]] = []
    gc.collect()
    gc.freeze()

    async def run_async(config: RiskConfig, with_policy: bool, with_agents: bool = False) -> list[float]:
        async with AdvancedRiskManager(
            config, policy=policy if with_policy else None, risk_agents=agents if with_agents else None
        ) as risk:
            return await _time_async(risk, inputs)

    def run_sync(with_agents: bool) -> list[float]:
        risk = AdvancedRiskManager(fast, policy=policy, risk_agents=agents if with_agents else None)
        try:
            return _time_sync(risk, inputs)
        finally:
            risk.close_sync()

    results.append(("async, no policy", asyncio.run(run_async(fast, False))))
    results.append(("async, risk agents", asyncio.run(run_async(fast, False, True))))
    results.append(("async, PPO + 10 MC dropout", asyncio.run(run_async(fast, True))))
    results.append(("async, PPO + risk agents", asyncio.run(run_async(fast, True, True))))
    results.append(("sync, PPO + 10 MC dropout", run_sync(False)))
    results.append(("sync, PPO + risk agents", run_sync(True)))
    with tempfile.TemporaryDirectory() as tmp:
        disk = RiskConfig(deadline_ms=50.0, rate_limit_per_s=None, state_path=str(Path(tmp) / "risk.db"))
        results.append(("async, PPO, SQLite on disk", asyncio.run(run_async(disk, True))))
    reference = _pandas_reference(tickers, rets, min(args.calls, 1000))
    ref_p50 = _percentiles(reference)[0]

    print(f"manage_risk latency, 20 assets, {args.calls} timed calls per mode, {os.cpu_count()} cores")
    print(f"reference: pandas recompute of the same figures per bar, p50 {ref_p50:.0f} us\n")
    print(f"{'mode':<30} {'p50':>9} {'p99':>9} {'max':>10} {'ratio p50':>10}  p99 < 1 ms")
    for name, samples in results:
        p50, p99, worst = _percentiles(samples)
        print(
            f"{name:<30} {p50:>6.0f} us {p99:>6.0f} us {worst / 1000:>7.2f} ms {ref_p50 / p50:>9.1f}x  "
            f"{'yes' if p99 < 1000 else 'MISSED'}"
        )


if __name__ == "__main__":
    main()
