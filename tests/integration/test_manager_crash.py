"""Crash safety of the manager: SIGKILL a process that journals decisions, lose nothing acknowledged.

A child process runs an :class:`AdvancedRiskManager` on a state file with ``journal_sync=True`` and
calls ``manage_risk`` in a loop, printing each returned ``decision_id`` after the call returned.
A decision that is not degraded was durable before it returned (its journal row committed with
``synchronous=FULL``): that is an acknowledgement. A degraded one may say "journal not durable
within the deadline" and promises nothing. The test SIGKILLs the child at random moments (sometimes
during start-up), then checks ``PRAGMA integrity_check`` and that every acknowledged id is journaled,
the peak equity never went backwards, and a restarted manager opens the file.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import sys
from pathlib import Path

import pytest

from advanced_risk.config import RiskConfig
from advanced_risk.manager import AdvancedRiskManager

from .conftest import journal_ids, run_and_kill

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")

CHILD = """
import asyncio, sys
from advanced_risk.config import RiskConfig
from advanced_risk.manager import AdvancedRiskManager

path, run = sys.argv[1], int(sys.argv[2])
assets = ("a", "b", "c")

async def main():
    config = RiskConfig(state_path=path, journal_sync=True, deadline_ms=500.0, tracker={"method": "fhs_ewma"})
    async with AdvancedRiskManager(config) as risk:
        print("ready", flush=True)
        i = 0
        while True:
            equity = 1000.0 * run + i
            market = {"returns": dict.fromkeys(assets, 0.001), "prices": dict.fromkeys(assets, 10.0 + i % 7)}
            book = {"weights": dict.fromkeys(assets, 0.2), "equity": equity}
            decision = await risk.manage_risk(market, book)
            tag = "degraded" if decision.degraded else "ack"
            sys.stdout.write(f"{tag} {decision.decision_id} {equity!r}\\n")
            sys.stdout.flush()
            i += 1

asyncio.run(main())
"""


def _kill_once(script: Path, db: Path, run: int, rng: random.Random) -> tuple[list[str], float]:
    """Start the child, SIGKILL it at a random moment; return the acknowledged ids and the best equity."""
    lines = run_and_kill(script, [str(db), str(run)], rng, startup_share=0.15, startup_s=1.5, running_s=0.15)
    complete = [line.split() for line in lines]
    acked = [fields[1].decode() for fields in complete if fields[0] == b"ack"]
    equities = [float(fields[2]) for fields in complete if fields[0] == b"ack"]
    return acked, max(equities, default=0.0)


@pytest.mark.parametrize(
    "kills", [pytest.param(5, id="5-kills"), pytest.param(50, id="50-kills", marks=pytest.mark.slow)]
)
def test_sigkill_while_the_manager_journals_keeps_the_file_sound_and_every_acknowledged_decision(
    tmp_path: Path, kills: int
) -> None:
    script = tmp_path / "manager_child.py"
    script.write_text(CHILD)
    db = tmp_path / "risk.db"
    rng = random.Random(5_2024 + kills)
    acked: list[str] = []
    best_equity = 0.0
    for k in range(1, kills + 1):
        ids, equity = _kill_once(script, db, k, rng)
        acked.extend(ids)
        best_equity = max(best_equity, equity)
    assert len(acked) > kills // 2  # most kills landed mid-loop, after acknowledged decisions

    stored = journal_ids(db)
    conn = sqlite3.connect(db)
    try:
        peak = conn.execute("SELECT peak_equity FROM risk_state").fetchone()[0]
    finally:
        conn.close()
    assert len(stored) == len(set(stored))
    missing = set(acked) - set(stored)
    assert not missing, f"{len(missing)} of {len(acked)} acknowledged decisions lost: {sorted(missing)[:5]}"
    assert peak is not None
    assert peak >= best_equity

    async def restart() -> None:
        async with AdvancedRiskManager(RiskConfig(state_path=str(db))) as risk:
            assert risk.trading_state == "active"
            assert risk._engine is not None
            assert risk._engine.peak_equity == peak

    asyncio.run(restart())
