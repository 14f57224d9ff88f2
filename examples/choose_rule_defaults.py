"""Choose the rules' defaults on training data only: the grid and objective of docs/risk_rules.md.

Every configuration of the pre-declared grid is run through the evaluation harness
(``advanced_risk.rules_evaluation``) on the training books only: the bundled stocks and index before
2013-01-01 and synthetic training paths (seeds 0..N-1). Score = training books passing the issue's
acceptance check; ties broken by the median of (managed Sharpe - vol target Sharpe). Nothing from
2013 on is read.

Run:  python examples/choose_rule_defaults.py [--synthetic 16] [--jobs 2] [--out grid_train.json]
"""

from __future__ import annotations

import argparse
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
from advanced_risk.rules_evaluation.books import build_books, synthetic_books
from advanced_risk.rules_evaluation.harness import run_book
from advanced_risk.rules_evaluation.report import book_metrics

REAL_BOOKS = ("stocks20", "subset1", "subset5", "subset10", "index", "long-short")
CUTS: dict[str, dict[str, Any]] = {  # drawdown cuts, strategy basis (docs/risk_rules.md)
    "none": {"hedge": None, "reduce_drawdown": 0.25},
    "mild": {"hedge": HedgeConfig(max_drawdown_threshold=0.10), "reduce_drawdown": 0.15},
    "old-levels": {"hedge": HedgeConfig(max_drawdown_threshold=0.05), "reduce_drawdown": 0.08},
}
FIXED: dict[str, Any] = {"halt_drawdown": 0.30, "loss_streak": 20, "drawdown_basis": "strategy"}


def grid() -> dict[str, RiskConfig]:
    """The twelve configurations, plus the previous default for reference."""
    out = {"previous default": RiskConfig(drawdown_basis="equity")}
    for vol, cap, cut in itertools.product((0.10, 0.15), (1.0, 1.5), CUTS):
        leverage = LeverageConfig(target_volatility=vol, max_leverage=cap)
        out[f"vol {vol:.2f}, cap {cap:.1f}, cuts {cut}"] = RiskConfig(leverage=leverage, **FIXED, **CUTS[cut])
    return out


def score(name: str, config: RiskConfig, synthetic: int) -> dict[str, Any]:
    """Run one configuration on every training book; its score and per-book figures."""
    logging.disable(logging.WARNING)
    books = build_books(REAL_BOOKS) + synthetic_books(synthetic, "train")
    rows = []
    for book in books:
        m = book_metrics(run_book(book, config, period="train"), reps=200)
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
    return {
        "config": name,
        "passed": sum(r["passed"] for r in rows),
        "books": len(rows),
        "median_sharpe_vs_voltarget": statistics.median(r["sharpe"][0] - r["sharpe"][2] for r in rows),
        "rows": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--synthetic", type=int, default=16, help="synthetic training paths (default 16)")
    parser.add_argument("--jobs", type=int, default=2, help="processes (default 2)")
    parser.add_argument("--out", type=Path, default=Path("grid_train.json"), help="JSON of every result")
    args = parser.parse_args()
    started = time.perf_counter()
    configs = grid()
    with ProcessPoolExecutor(args.jobs) as pool:
        futures = {n: pool.submit(score, n, c, args.synthetic) for n, c in configs.items()}
        results = [f.result() for f in futures.values()]
    ranked = sorted(
        (r for r in results if r["config"] != "previous default"),
        key=lambda r: (r["passed"], r["median_sharpe_vs_voltarget"]),
        reverse=True,
    )
    print(f"training books: {results[0]['books']} ({', '.join(REAL_BOOKS)}, {args.synthetic} synthetic)")
    print(f"{'configuration':<40} {'passed':>7} {'median dSharpe vs VT':>21}")
    for r in [*ranked, next(r for r in results if r["config"] == "previous default")]:
        print(f"{r['config']:<40} {r['passed']:>3}/{r['books']:<3} {r['median_sharpe_vs_voltarget']:>21.3f}")
    print(f"\nchosen: {ranked[0]['config']}  ({time.perf_counter() - started:.0f} s)")
    args.out.write_text(json.dumps({"ranked": ranked, "all": results}, indent=1, default=str))


if __name__ == "__main__":
    main()
