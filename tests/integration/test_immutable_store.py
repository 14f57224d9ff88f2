"""Issue 11: a state store whose files turn immutable mid-run (``chattr +i``) is a store fault, not a
crash. SQLite writes to its memory-mapped ``-shm`` index even to read; once that file is immutable the
write faults and the process died of SIGBUS inside SQLite (3 of 3 before). The store now checks that
its files are writable before every operation.

The bot runs in a child process (a SIGBUS would take pytest with it): decisions before, the kill
switch and decisions during the fault (async and sync), then the files are made writable again and
the halt must land. Skipped where ``chattr`` cannot set the flag (not root, or a filesystem without
it, such as tmpfs).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from advanced_risk.engine.state import StateStore

CHILD = """
import asyncio, subprocess, sys
from advanced_risk import AdvancedRiskManager, RiskConfig

path = sys.argv[1]
files = [path, path + "-wal", path + "-shm"]
assets = ("a", "b")

def bar(i):
    market = {"returns": dict.fromkeys(assets, 0.001), "prices": dict.fromkeys(assets, 10.0 + i % 7)}
    return market, {"weights": dict.fromkeys(assets, 0.2), "equity": 1000.0 + i}

def chattr(flag):
    for f in files:
        subprocess.run(["chattr", flag, f], check=True)

async def main():
    async with AdvancedRiskManager(RiskConfig(state_path=path, deadline_ms=50.0)) as risk:
        for i in range(5):
            print("before", (await risk.manage_risk(*bar(i))).degraded, flush=True)
        chattr("+i")
        try:
            change = await risk.engage_kill_switch("immutable disk")
            print("kill", change.changed, change.durable, flush=True)
            for i in range(5, 25):
                d = await risk.manage_risk(*bar(i))
            print("async", d.degraded, d.trading_state.value, "|".join(d.alerts), flush=True)
            d = risk.manage_risk_sync(*bar(25))
            print("sync", d.degraded, d.trading_state.value, "|".join(d.alerts), flush=True)
        finally:
            chattr("-i")
        await risk.flush()
        d = await risk.manage_risk(*bar(26))
        print("healed", d.degraded, d.trading_state.value, flush=True)

asyncio.run(main())
"""


def _chattr_works(tmp_path: Path) -> bool:
    if shutil.which("chattr") is None:
        return False
    probe = tmp_path / "probe"
    probe.touch()
    ok = subprocess.run(["chattr", "+i", str(probe)], capture_output=True).returncode == 0
    subprocess.run(["chattr", "-i", str(probe)], capture_output=True)
    return ok


def test_an_immutable_store_is_a_store_fault_not_a_sigbus(tmp_path: Path) -> None:
    if not _chattr_works(tmp_path):
        pytest.skip("chattr +i is not available here (needs root and a filesystem with the flag)")
    db = tmp_path / "risk.db"
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    try:
        proc = subprocess.run(
            [sys.executable, "-X", "faulthandler", str(script), str(db)],
            capture_output=True,
            timeout=120,
        )
    finally:
        for suffix in ("", "-wal", "-shm"):
            subprocess.run(["chattr", "-i", f"{db}{suffix}"], capture_output=True)
    err = proc.stderr.decode(errors="replace")[-3000:]
    assert proc.returncode == 0, err  # -7 / 135: SIGBUS
    lines = {line.split(" ", 1)[0]: line.split(" ")[1:] for line in proc.stdout.decode().splitlines()}
    assert lines["before"][0] == "False"
    assert lines["kill"][:2] == ["True", "False"]  # halted in memory, not durable: the bot is told
    for entry in ("async", "sync"):
        degraded, state, *alerts = lines[entry]
        assert degraded == "True"
        assert state == "halted"
        assert "not writable" in " ".join(alerts)
    assert lines["healed"] == ["False", "halted"]
    with StateStore(db, read_only=True) as reader:  # the halt landed once the files healed
        state = reader.load()
    assert state.trading_state.value == "halted"
    assert state.kill_switch
