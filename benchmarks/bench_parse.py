"""A bar from arrays to the engine's ``Bar``: ``MarketState.from_arrays`` + the engine's parse.

For books of 20, 500 and 1,000 assets, median microseconds of building the bar's ``MarketState``
(returns and prices) and parsing it against the universe (``engine.inputs.parse_inputs``, what
every ``manage_risk`` call runs first), two ways:

- ``arrays``: ``MarketState.from_arrays(assets, returns=r, prices=p)``, the route of
  ``manage_risk_arrays``;
- ``dicts`` (the reference): ``MarketState(returns=dict(...), prices=dict(...))`` from dicts the
  bot already holds.

The book is built outside the timing (one ``Portfolio`` from a dict). A second table times building
the book each bar as well: ``Portfolio.from_arrays(assets, w)`` against ``Portfolio(weights=dict)``.

Run:  python benchmarks/bench_parse.py [--reps 3000]
(``PYTHONPATH=<a worktree of an earlier commit>/src`` times that commit's code the same way.)
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from advanced_risk import MarketState, Portfolio
from advanced_risk.engine.inputs import parse_inputs


def _median_us(fn: Callable[[], Any], reps: int) -> float:
    fn()
    samples = np.empty(reps)
    for i in range(reps):
        start = time.perf_counter()
        fn()
        samples[i] = time.perf_counter() - start
    return float(np.median(samples)) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3000, help="timed bars per row (default 3000)")
    args = parser.parse_args()
    print(f"{'assets':>6}{'arrays (us)':>14}{'dicts (us)':>13}{'dicts / arrays':>16}")
    for n in (20, 500, 1000):
        assets = tuple(f"A{i:04d}" for i in range(n))
        rng = np.random.default_rng(n)
        r = rng.normal(0.0, 0.01, n)
        p = 100.0 * (1.0 + r)
        book = Portfolio(weights=dict.fromkeys(assets, 1.0 / n))
        rd, pd_ = dict(zip(assets, r.tolist(), strict=True)), dict(zip(assets, p.tolist(), strict=True))

        def arrays(assets: Any = assets, r: Any = r, p: Any = p, book: Any = book) -> None:
            market = MarketState.from_arrays(assets, returns=r, prices=p)
            parse_inputs(market, book, assets, max_assets=1000)

        def dicts(assets: Any = assets, rd: Any = rd, pd_: Any = pd_, book: Any = book) -> None:
            market = MarketState(returns=rd, prices=pd_)
            parse_inputs(market, book, assets, max_assets=1000)

        a, d = _median_us(arrays, args.reps), _median_us(dicts, args.reps)
        print(f"{n:>6}{a:>14.1f}{d:>13.1f}{d / a:>15.1f}x")
    print("\nthe same with the book built each bar (Portfolio.from_arrays / Portfolio from a dict)")
    print(f"{'assets':>6}{'arrays (us)':>14}{'dicts (us)':>13}{'dicts / arrays':>16}")
    for n in (20, 500, 1000):
        assets = tuple(f"A{i:04d}" for i in range(n))
        rng = np.random.default_rng(n)
        r, w = rng.normal(0.0, 0.01, n), np.full(n, 1.0 / n)
        p = 100.0 * (1.0 + r)
        rd, pd_ = dict(zip(assets, r.tolist(), strict=True)), dict(zip(assets, p.tolist(), strict=True))
        wd = dict(zip(assets, w.tolist(), strict=True))

        def arrays_book(assets: Any = assets, r: Any = r, p: Any = p, w: Any = w) -> None:
            market = MarketState.from_arrays(assets, returns=r, prices=p)
            book = Portfolio.from_arrays(assets, w, equity=1e6)
            parse_inputs(market, book, assets, max_assets=1000)

        def dicts_book(assets: Any = assets, rd: Any = rd, pd_: Any = pd_, wd: Any = wd) -> None:
            market = MarketState(returns=rd, prices=pd_)
            book = Portfolio(weights=wd, equity=1e6)
            parse_inputs(market, book, assets, max_assets=1000)

        a, d = _median_us(arrays_book, args.reps), _median_us(dicts_book, args.reps)
        print(f"{n:>6}{a:>14.1f}{d:>13.1f}{d / a:>15.1f}x")


if __name__ == "__main__":
    main()
