"""Crash safety of the safety state (issue 11): SIGKILL a bot that halts and resumes, and check that a
restart is never less cautious than the last thing the bot was told.

The child decides bars with ``journal_sync=True`` and engages the kill switch / resumes every few
bars, printing after each call returned: ``ack <id> <state>`` for a decision that was not degraded
(durable before it returned), ``halt <durable>`` / ``resume <durable>`` for the operator controls,
and ``resuming`` before a resume: a resume writes ACTIVE to the store before it returns (memory
stays the more cautious until then), so a kill during it may restart ACTIVE, as the operator asked.
After each SIGKILL the file must pass ``PRAGMA integrity_check``, and if the last line the bot saw
said HALTED (a durable halt, or a decision in HALTED), the file must say HALTED too; a restarted
manager comes up in the file's state.
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
assets = ("a", "b")

def say(line):
    sys.stdout.write(line + "\\n")
    sys.stdout.flush()

async def main():
    config = RiskConfig(state_path=path, journal_sync=True, deadline_ms=500.0, tracker={"method": "fhs_ewma"})
    async with AdvancedRiskManager(config) as risk:
        say("ready")
        i = 0
        while True:
            if i % 5 == 2:
                change = await risk.engage_kill_switch(f"run {run} bar {i}")
                say(f"halt {change.durable}")
            elif i % 5 == 4:
                say("resuming")  # the operator asked: from here the store may say ACTIVE first
                change = await risk.resume(f"run {run} bar {i}")
                say(f"resume {change.durable}")
            market = {"returns": dict.fromkeys(assets, 0.001), "prices": dict.fromkeys(assets, 10.0 + i % 7)}
            book = {"weights": dict.fromkeys(assets, 0.2), "equity": 1000.0 + i}
            decision = await risk.manage_risk(market, book)
            if not decision.degraded:
                say(f"ack {decision.decision_id} {decision.trading_state.value}")
            i += 1

asyncio.run(main())
"""


def _told_halted(lines: list[bytes]) -> bool | None:
    """Whether the last safety-relevant line the bot saw said HALTED (None: it saw none)."""
    for raw in reversed(lines):
        fields = raw.decode().split()
        if fields[0] == "resuming":  # a resume in flight goes to the store first: either state is fine
            return None
        if fields[0] == "ack":
            return fields[2] == "halted"
        if fields[0] == "halt" and fields[1] == "True":
            return True
        if fields[0] == "resume" and fields[1] == "True":
            return False
    return None


def _disk_state(db: Path) -> str:
    conn = sqlite3.connect(db)
    try:
        return str(conn.execute("SELECT trading_state FROM risk_state").fetchone()[0])
    finally:
        conn.close()


@pytest.mark.parametrize(
    "kills", [pytest.param(5, id="5-kills"), pytest.param(50, id="50-kills", marks=pytest.mark.slow)]
)
def test_sigkill_during_halts_and_resumes_never_restarts_less_cautious(tmp_path: Path, kills: int) -> None:
    script = tmp_path / "safety_child.py"
    script.write_text(CHILD)
    db = tmp_path / "risk.db"
    rng = random.Random(11_2026 + kills)
    told_halted = 0
    for k in range(1, kills + 1):
        lines = run_and_kill(script, [str(db), str(k)], rng, startup_share=0.1, startup_s=1.5, running_s=0.2)
        if not db.exists():
            continue
        journal_ids(db)  # integrity_check is ok
        told = _told_halted(lines)
        if told:
            told_halted += 1
            assert _disk_state(db) == "halted", f"kill {k}: told HALTED, file active; last lines {lines[-6:]}"
    if kills >= 20:
        assert told_halted >= 1  # the kills did land after halts (5 early kills may all miss them)

    async def restart() -> str:
        async with AdvancedRiskManager(RiskConfig(state_path=str(db))) as risk:
            return risk.trading_state

    assert asyncio.run(restart()) == _disk_state(db)
