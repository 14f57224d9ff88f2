"""Calibration of the demo book's 99 % VaR: breaches, Kupiec, Christoffersen and ES Z2 (issue 12, item 5).

Replays the demo loop of ``examples/trading_loop.py`` (20 stocks, shipped PPO policy, default
``RiskConfig`` but reproducible: ``deterministic_refits=True`` and a deadline no decision misses; no
risk agents) over a period, records the book the bot held over each bar and the manager's VaR for
it, and backtests that VaR: breaches against the expected 1 %, Kupiec (coverage) and Christoffersen
(independence) p-values, and Acerbi-Szekely Z2 of the 97.5 % expected shortfall (p simulated under
a normal null, 2000 paths). Results and their reading: docs/var_calibration.md.

With ``--grid`` it also scores the pre-declared grid of docs/var_calibration.md on the same books:
the VaR forecast of the held book by filter (``garch_raw``: the previous engine's FHS-GJR-GARCH at the
book's own scale; ``garch_scaled``: the same parameters on the book rescaled to their fit data's
scale; ``garch_engine``: the engine's now, the book rescaled to the model's unconditional second
moment; ``ewma``: FHS-EWMA), residual window and GARCH install lag. The loop's decisions are replayed once
and kept, so every forecast is scored on the same books.

Run:  python examples/var_calibration_demo.py [--period train|test|both] [--grid] [--method fhs_ewma]
      (train: 2005-2012, where settings may be chosen; test: 2013-2022, the demo's period)
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from advanced_risk import AdvancedRiskManager, MarketState, Portfolio, RiskConfig
from advanced_risk.config import TrackerConfig
from advanced_risk.data import load_sp500_stocks
from advanced_risk.measures import christoffersen_independence, kupiec_pof, z2_test
from advanced_risk.measures.kernels import ewma_variance_kernel, fhs_kernel
from advanced_risk.measures.var_method import VaRMethod
from advanced_risk.risk.garch import GarchParams, fit_gjr_garch

PERIODS = {"train": ("2005-01-01", "2012-12-31"), "test": ("2013-01-01", "2022-12-31")}
ALPHA, ES_ALPHA = 0.99, 0.975
Filter = Literal["garch_raw", "garch_scaled", "garch_engine", "ewma"]


@dataclass
class BookPath:
    """What one replay held and forecast; entry i is the bar ``t[i]`` of ``returns``."""

    returns: np.ndarray  # (bars, assets): every bar the manager saw, warm-up included
    dates: np.ndarray
    t: list[int] = field(default_factory=list)  # bar index; the tracker had seen bars 0 .. t-1
    gross: list[float] = field(default_factory=list)  # the held book's return over bar t
    book: list[np.ndarray] = field(default_factory=list)  # pre-hedge book decided at t-1 (target x lev)
    unhedged: list[float] = field(default_factory=list)  # 1 - hedge ratio decided at t-1
    var: list[float] = field(default_factory=list)  # the manager's VaR x (1 - hedge ratio)
    params: list[GarchParams | None] = field(default_factory=list)  # GJR-GARCH in effect at t-1
    degraded: int = 0  # decisions the manager degraded (none with the deadline used here)


async def replay(start: str, end: str, config: RiskConfig, model: Path | None = None) -> BookPath:
    """The demo's loop (``trading_loop.replay``), recording each bar's book and VaR.

    ``model``: the policy file, default the demo's. Decisions are taken as the demo takes them; the
    caller's ``config`` should make them reproducible (``deterministic_refits=True`` and a deadline
    no decision misses: the demo's 20 ms degrades decisions on a loaded machine).
    """
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from trading_loop import COST, DEFAULT_MODEL, WARMUP_BARS  # the demo's own settings (imports torch)

    prices = load_sp500_stocks()
    tickers = list(prices.columns)
    first = int(prices.index.searchsorted(np.datetime64(start)))
    stop = int(prices.index.searchsorted(np.datetime64(end), side="right"))
    window = prices.iloc[first - WARMUP_BARS - 1 : stop]
    px = window.to_numpy()
    rets = px[1:] / px[:-1] - 1.0
    out = BookPath(rets, np.asarray(window.index[1:]))
    n = len(tickers)
    equity, held = 1.0, np.zeros(n)
    last: tuple[float, np.ndarray, float, GarchParams | None] | None = None
    async with AdvancedRiskManager(config, policy=model or DEFAULT_MODEL) as risk:
        for t in range(rets.shape[0]):
            r = rets[t]
            trading = t >= WARMUP_BARS
            gross = float(held @ r)
            if trading and last is not None and math.isfinite(last[0]):
                out.t.append(t)
                out.gross.append(gross)
                out.var.append(last[0])
                out.book.append(last[1])
                out.unhedged.append(last[2])
                out.params.append(last[3])
            equity *= 1.0 + gross
            held = held * (1.0 + r) / (1.0 + gross) if equity > 0 else held
            market = MarketState(
                returns=dict(zip(tickers, r, strict=True)), prices=dict(zip(tickers, px[t + 1], strict=True))
            )
            decision = await risk.manage_risk(
                market, Portfolio(weights=dict(zip(tickers, held, strict=True)), equity=equity)
            )
            target = np.array([decision.rebalance_weights[a] for a in tickers]) * decision.leverage
            unhedged = 1.0 - (decision.hedge.ratio if decision.hedge.active else 0.0)
            traded = float(np.abs(target * unhedged - held).sum())
            if trading:
                equity *= 1.0 - COST * traded
                held = target * unhedged
            engine = risk._engine  # diagnostic only: which GARCH parameters priced this decision
            tracker = engine.tracker if engine is not None else None
            params = tracker.garch_params if tracker is not None else None
            book = target if trading else np.zeros(n)  # in the warm-up the bot holds nothing
            last = (decision.var * unhedged, book, unhedged, params)
        out.degraded = int(risk.metrics()["degraded"])
    return out


@dataclass(frozen=True)
class Variant:
    """One forecast configuration of the pre-declared grid."""

    filter: Filter
    window: int = 500
    lag: int = 250

    @property
    def name(self) -> str:
        lag = f", lag {self.lag}" if self.filter != "ewma" else ""
        return f"{self.filter}, W={self.window}{lag}"


_FILTERS: tuple[Filter, Filter] = ("garch_raw", "garch_scaled")
GRID = [
    *(Variant(f, w, lag) for f in _FILTERS for w in (250, 500, 1000) for lag in (250, 1)),
    *(Variant("ewma", w) for w in (250, 500, 1000)),
]
ENGINE = Variant("garch_engine", 500, 250)


def _installs(path: BookPath) -> list[tuple[int, GarchParams]]:
    """The engine's GJR-GARCH installs seen in the replay: (bar, parameters)."""
    out: list[tuple[int, GarchParams]] = []
    for t, p in zip(path.t, path.params, strict=True):
        if p is not None and (not out or p != out[-1][1]):
            out.append((t, p))
    return out


def _schedule(path: BookPath, v: Variant) -> list[tuple[int, GarchParams, float]]:
    """(install bar, parameters, std of their fit data) for variant ``v``.

    The refits start where the engine's did (its install bar minus its ``garch_install_lag``) on the
    equal-weight book's last ``W`` bars, like the engine's. With W = 500 (the engine's window) the
    engine's own parameters are reused: a refit here differs from the worker's in the last digits,
    which the optimiser can turn into a few per cent on a 100-bar fit.
    """
    n = path.returns.shape[1]
    ew = np.full(n, 1.0 / n)
    lag = RiskConfig().garch_install_lag
    fits = []
    for install, engine_params in _installs(path):
        f = install - lag
        fit_data = path.returns[max(0, f - v.window) : f] @ ew
        params = engine_params if v.window == TrackerConfig().fhs_window else fit_gjr_garch(fit_data)
        fits.append((f + v.lag, params, float(np.std(fit_data))))
    return fits


def forecasts(path: BookPath, v: Variant, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """VaR and CVaR at ``alpha`` of each held book under variant ``v`` (positive loss fractions)."""
    fits = _schedule(path, v) if v.filter != "ewma" else []
    var, cvar = np.zeros(len(path.t)), np.zeros(len(path.t))
    for i, t in enumerate(path.t):
        book = path.book[i]
        p = path.returns[max(0, t - v.window) : t] @ book
        if not np.any(p):
            continue  # nothing held: nothing to lose
        live = [(params, s) for start, params, s in fits if start <= t]
        if v.filter == "ewma" or not live:  # the engine uses fhs_ewma until its first fit is in
            pair = fhs_kernel(p, ewma_variance_kernel(p, 0.94, float(np.mean(p * p))), 0.0, alpha)
        elif v.filter == "garch_raw":
            params = live[-1][0]
            pair = fhs_kernel(p, params.variance(p), params.mu, alpha)
        elif v.filter == "garch_engine":
            params = live[-1][0]
            scale = params.book_scale(float(np.mean(p * p)))
            q = p / scale
            pair = tuple(x * scale for x in fhs_kernel(q, params.variance(q), params.mu, alpha))
        else:
            params, s_fit = live[-1]
            k = s_fit / float(np.std(p))
            pair = tuple(x / k for x in fhs_kernel(k * p, params.variance(k * p), params.mu, alpha))
        var[i], cvar[i] = pair[0] * path.unhedged[i], pair[1] * path.unhedged[i]
    return var, cvar


@dataclass(frozen=True)
class Score:
    breaches: int
    n: int
    kupiec_p: float
    christoffersen_p: float
    z2: float
    z2_p: float

    @property
    def passed(self) -> bool:
        return self.kupiec_p >= 0.05 and self.christoffersen_p >= 0.05


def score(path: BookPath, var: np.ndarray, var_es: np.ndarray, es: np.ndarray) -> Score:
    gross = np.asarray(path.gross)
    hits = gross < -var
    held = es > 0  # bars with a book (no book: no tail, no ES to test)
    z2 = z2_test(gross[held], var_es[held], es[held], ES_ALPHA, n_sims=2000, seed=0)
    return Score(
        int(hits.sum()),
        int(hits.size),
        kupiec_pof(hits, ALPHA).p_value,
        christoffersen_independence(hits).p_value,
        z2.statistic,
        z2.p_value,
    )


def line(name: str, s: Score) -> str:
    return (
        f"{name:<30} {s.breaches:>4d} {s.n * (1 - ALPHA):>8.1f} {s.kupiec_p:>9.3f} {s.christoffersen_p:>7.3f}"
        f" {s.z2:>7.3f} {s.z2_p:>6.3f}  {'pass' if s.passed else 'FAIL'}"
    )


HEAD = (
    f"{'VaR forecast':<30} {'hits':>4} {'expected':>8} {'Kupiec p':>9} {'Chr. p':>7} "
    f"{'Z2':>7} {'p':>6}  result"
)


def evaluate(period: str, grid: bool, method: VaRMethod) -> None:
    start, end = PERIODS[period]
    began = time.perf_counter()
    config = RiskConfig(tracker=TrackerConfig(method=method), deadline_ms=10_000.0, deterministic_refits=True)
    path = asyncio.run(replay(start, end, config))
    dates = path.dates[path.t]
    print(f"\n{period}: {str(dates[0])[:10]} .. {str(dates[-1])[:10]}, {len(path.t)} bars of the demo loop")
    print("(VaR 99 %: breaches, Kupiec and Christoffersen p; ES 97.5 %: Acerbi-Szekely Z2, simulated p)")
    print(f"manager's VaR method: {method.value}; degraded decisions: {path.degraded}")
    print(HEAD)
    print("-" * len(HEAD))
    same = ENGINE if method is VaRMethod.FHS_GARCH else Variant("ewma", TrackerConfig().fhs_window)
    var, _ = forecasts(path, same, ALPHA)  # the first bar's book is empty (warm-up): no forecast to compare
    if method in (VaRMethod.FHS_GARCH, VaRMethod.FHS_EWMA) and not np.allclose(var[1:], path.var[1:]):
        print(f"warning: the offline {same.name} forecast does not reproduce the manager's VaR")
    es_var, es = forecasts(path, same, ES_ALPHA)
    print(line("manage_risk (the demo loop)", score(path, np.asarray(path.var), es_var, es)))
    if grid:
        for v in GRID:
            var, _ = forecasts(path, v, ALPHA)
            es_var, es = forecasts(path, v, ES_ALPHA)
            print(line(v.name, score(path, var, es_var, es)))
    print(f"[{time.perf_counter() - began:.0f} s]")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--period", choices=("train", "test", "both"), default="both")
    parser.add_argument("--grid", action="store_true", help="also score the pre-declared grid")
    parser.add_argument(
        "--method",
        choices=[m.value for m in VaRMethod],
        default=TrackerConfig().method.value,
        help="the manager's VaR method in the replayed loop (default: TrackerConfig's)",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    for period in ("train", "test") if args.period == "both" else (args.period,):
        evaluate(period, args.grid, VaRMethod(args.method))


if __name__ == "__main__":
    main()
