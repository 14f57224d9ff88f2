"""Choose the rules' defaults on training data only: the grids and objective of docs/risk_rules.md.

Every configuration of a pre-declared grid is run through the evaluation harness
(``advanced_risk.evaluation.rules``) on the training books only: the bundled stocks and index before
2013-01-01 and synthetic training paths (seeds 0..N-1). Score = training books passing the issue's
acceptance check; ties broken by the median of (managed Sharpe - vol target Sharpe). Nothing from
2013 on is read, unless ``--judge-seed`` asks for the round to be judged afterwards on fresh
synthetic test paths (and the real test books, reported beside them).

Grids: ``defaults`` (round 1: volatility target, leverage cap, drawdown cuts), ``triggers``
(round 2: what a correlation shock and a VaR-breach streak do, on round 1's choice) and ``trend``
(round 3: a trend cut on the strategy's reference book, on round 2's defaults) and ``relative``
(round 4: a volatility target relative to the book's own long-run volatility).

Run:  python examples/choose_rule_defaults.py [--grid defaults|triggers|trend|relative]
          [--synthetic 16] [--jobs 2] [--judge-seed 2000] [--out grid_train.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import logging
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from advanced_risk import RiskConfig
from advanced_risk.config import HedgeConfig, LeverageConfig
from advanced_risk.evaluation.rules.books import Period, build_books, synthetic_books
from advanced_risk.evaluation.rules.harness import run_book
from advanced_risk.evaluation.rules.report import book_metrics

REAL_BOOKS = ("stocks20", "subset1", "subset5", "subset10", "index", "long-short")
CUTS: dict[str, dict[str, Any]] = {  # drawdown cuts, strategy basis (docs/risk_rules.md)
    "none": {"hedge": None, "reduce_drawdown": 0.25},
    "mild": {"hedge": HedgeConfig(max_drawdown_threshold=0.10), "reduce_drawdown": 0.15},
    "old-levels": {"hedge": HedgeConfig(max_drawdown_threshold=0.05), "reduce_drawdown": 0.08},
}
FIXED: dict[str, Any] = {"halt_drawdown": 0.30, "loss_streak": 20, "drawdown_basis": "strategy"}


def grid() -> dict[str, RiskConfig]:
    """Round 1: the twelve configurations, plus the previous default for reference."""
    out = {"previous default": RiskConfig(drawdown_basis="equity")}
    for vol, cap, cut in itertools.product((0.10, 0.15), (1.0, 1.5), CUTS):
        leverage = LeverageConfig(target_volatility=vol, max_leverage=cap)
        out[f"vol {vol:.2f}, cap {cap:.1f}, cuts {cut}"] = RiskConfig(leverage=leverage, **FIXED, **CUTS[cut])
    return out


SHOCK: dict[str, dict[str, Any]] = {  # what a correlation shock does (round 2)
    "reduce+cut": {"reduce_on_correlation_shock": True, "shock_factor": 0.5},
    "cut only": {"reduce_on_correlation_shock": False, "shock_factor": 0.5},
    "ignored": {"reduce_on_correlation_shock": False, "shock_factor": 1.0},
}


def trigger_grid(base: RiskConfig | None = None) -> dict[str, RiskConfig]:
    """Round 2: correlation shock x VaR-breach streak on ``base`` (default ``RiskConfig()``)."""
    base = base or RiskConfig()
    out = {}
    for shock, streak in itertools.product(SHOCK, (3, None)):
        knobs = SHOCK[shock]
        leverage = dataclasses.replace(base.leverage, shock_factor=knobs["shock_factor"])
        config = dataclasses.replace(
            base,
            leverage=leverage,
            reduce_on_correlation_shock=knobs["reduce_on_correlation_shock"],
            var_breach_streak=streak,
        )
        out[f"shock {shock}, VaR streak {streak or 'off'}"] = config
    return out


def _leverage_grid(
    base: RiskConfig | None, off: str, label: str, knobs: dict[str, tuple[Any, ...]]
) -> dict[str, RiskConfig]:
    """``base`` (default ``RiskConfig()``) as ``off``, and every product of the ``LeverageConfig``
    values in ``knobs``, named by ``label.format(*values)``."""
    base = base or RiskConfig()
    out = {off: base}
    for values in itertools.product(*knobs.values()):
        leverage = dataclasses.replace(base.leverage, **dict(zip(knobs, values, strict=True)))
        out[label.format(*values)] = dataclasses.replace(base, leverage=leverage)
    return out


def trend_grid(base: RiskConfig | None = None) -> dict[str, RiskConfig]:
    """Round 3: the trend cut's half-life x factor on ``base`` (default ``RiskConfig()``), and no cut."""
    knobs = {"trend_halflife": (50, 100, 200), "trend_factor": (0.5, 0.25)}
    return _leverage_grid(base, "trend off", "trend {} bars, x {}", knobs)


def relative_grid(base: RiskConfig | None = None) -> dict[str, RiskConfig]:
    """Round 4: the relative volatility target's fraction x half-life on ``base``, and none."""
    knobs = {"relative_target": (0.6, 0.7, 0.8), "relative_halflife": (250, 1000)}
    return _leverage_grid(base, "relative off", "relative {}, half-life {}", knobs)


GRIDS = {"defaults": grid, "triggers": trigger_grid, "trend": trend_grid, "relative": relative_grid}


def score(
    name: str,
    config: RiskConfig,
    synthetic: int,
    period: Period = "train",
    first_seed: int | None = None,
    real: tuple[str, ...] = REAL_BOOKS,
) -> dict[str, Any]:
    """Run one configuration on every book of ``period``; its score and per-book figures."""
    logging.disable(logging.WARNING)
    books = build_books(real) + synthetic_books(synthetic, period, first_seed=first_seed)
    rows = []
    for book in books:
        m = book_metrics(run_book(book, config, period=period), reps=200)
        rows.append(
            {
                "book": m.book,
                "passed": m.passed,
                "sharpe": [m.managed.sharpe, m.unmanaged.sharpe, m.voltarget.sharpe],
                "max_dd": [m.managed.max_drawdown, m.unmanaged.max_drawdown, m.voltarget.max_drawdown],
                "hedged": m.managed.hedged,
                "reducing": m.managed.reducing,
                "halted": m.managed.halted,
            }
        )
    synthetic_rows = [r for r in rows if r["book"].startswith("synthetic")]
    return {
        "config": name,
        "passed": sum(r["passed"] for r in rows),
        "books": len(rows),
        "synthetic_passed": sum(r["passed"] for r in synthetic_rows),
        "median_sharpe_vs_voltarget": statistics.median(r["sharpe"][0] - r["sharpe"][2] for r in rows),
        "median_reducing": statistics.median(r["reducing"] for r in rows),
        "rows": rows,
    }


def _table(results: list[dict[str, Any]], title: str) -> None:
    print(f"\n{title}")
    print(f"{'configuration':<40} {'passed':>7} {'median dSharpe vs VT':>21} {'median REDUCING':>16}")
    for r in results:
        print(
            f"{r['config']:<40} {r['passed']:>3}/{r['books']:<3} "
            f"{r['median_sharpe_vs_voltarget']:>21.3f} {r['median_reducing']:>15.1%}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", choices=tuple(GRIDS), default="defaults", help="round (default: defaults)")
    parser.add_argument("--synthetic", type=int, default=16, help="synthetic training paths (default 16)")
    parser.add_argument("--jobs", type=int, default=2, help="processes (default 2)")
    parser.add_argument(
        "--judge-seed",
        type=int,
        default=None,
        help="after choosing, run every configuration on 64 synthetic test paths from this seed "
        "(fresh ones: 2000) and the real test books",
    )
    parser.add_argument("--out", type=Path, default=Path("grid_train.json"), help="JSON of every result")
    args = parser.parse_args()
    started = time.perf_counter()
    configs = GRIDS[args.grid]()
    with ProcessPoolExecutor(args.jobs) as pool:
        futures = {n: pool.submit(score, n, c, args.synthetic) for n, c in configs.items()}
        results = [f.result() for f in futures.values()]
    ranked = sorted(
        (r for r in results if r["config"] != "previous default"),
        key=lambda r: (r["passed"], r["median_sharpe_vs_voltarget"]),
        reverse=True,
    )
    print(f"training books: {results[0]['books']} ({', '.join(REAL_BOOKS)}, {args.synthetic} synthetic)")
    _table([*ranked, *(r for r in results if r["config"] == "previous default")], "training")
    print(f"\nchosen: {ranked[0]['config']}  ({time.perf_counter() - started:.0f} s)")
    report: dict[str, Any] = {"ranked": ranked, "all": results}
    if args.judge_seed is not None:
        with ProcessPoolExecutor(args.jobs) as pool:
            futures = {
                n: pool.submit(score, n, c, 64, "test", args.judge_seed, ()) for n, c in configs.items()
            }
            judged = [f.result() for f in futures.values()]
            futures = {n: pool.submit(score, n, c, 0, "test", None) for n, c in configs.items()}
            real = [f.result() for f in futures.values()]
        _table(judged, f"judged: 64 synthetic test paths, seeds {args.judge_seed}..{args.judge_seed + 63}")
        _table(real, "real test books (2013 on; seen before this round)")
        report |= {"judged_synthetic": judged, "real_test": real}
        print(f"\n({time.perf_counter() - started:.0f} s in all)")
    args.out.write_text(json.dumps(report, indent=1, default=str))


if __name__ == "__main__":
    main()
