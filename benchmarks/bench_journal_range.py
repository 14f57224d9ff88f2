"""Reading a time range of a long journal: selected in SQLite against filtering the whole journal.

Builds a state file of ``--rows`` journal rows (one real decision's JSON, its time advanced a minute
a row: a minute-bar bot's year is ~100,000 rows), then times ``read_journal(path, since, until)``
for the last day beside the reference, ``filter_journal(read_journal(path), since, until)``, and
prints the ratio. Run: ``python benchmarks/bench_journal_range.py [--rows N]``.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import tempfile
import time
from pathlib import Path

import numpy as np

from advanced_risk import AdvancedRiskManager, RiskConfig
from advanced_risk.engine.state import StateStore
from advanced_risk.monitoring.journal import filter_journal, read_journal


def build(path: Path, rows: int) -> float:
    """A state file of ``rows`` decisions a minute apart; returns the last row's Unix time."""
    risk = AdvancedRiskManager(RiskConfig(state_path=str(path), rate_limit_per_s=None))
    rng = np.random.default_rng(0)
    assets = [f"A{i}" for i in range(20)]
    for _ in range(2):
        bar = {"returns": dict(zip(assets, rng.normal(0, 0.01, 20).tolist(), strict=True))}
        risk.manage_risk_sync(bar, {"weights": dict.fromkeys(assets, 0.05)})
    risk.close_sync()
    with StateStore(path, read_only=True) as store:
        payload = store.journal(1)[0].payload
    start = time.time() - 60.0 * rows
    text = json.dumps(payload)
    with sqlite3.connect(path) as conn:
        conn.execute("DELETE FROM journal")
        conn.executemany(
            "INSERT INTO journal (decision_id, ts, payload) VALUES (?, ?, ?)",
            ((f"d{k}", start + 60.0 * k, text) for k in range(rows)),
        )
    return start + 60.0 * (rows - 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000, help="journal rows (default 200,000)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "risk.db"
        last = build(path, args.rows)
        since, until = last - 86_400.0, last
        t0 = time.perf_counter()
        ours = read_journal(path, since=since, until=until)
        t1 = time.perf_counter()
        reference = filter_journal(read_journal(path), since=since, until=until)
        t2 = time.perf_counter()
        assert ours["id"].tolist() == reference["id"].tolist()
        print(f"journal of {args.rows:,} rows, the last day ({len(ours):,} rows):")
        print(f"  read_journal(since, until), in SQLite  {t1 - t0:8.3f} s")
        print(f"  filter_journal(read_journal(path))     {t2 - t1:8.3f} s  (reference)")
        print(f"  ratio                                  {(t2 - t1) / (t1 - t0):8.1f}x")


if __name__ == "__main__":
    main()
