"""Shared helpers of the SIGKILL crash tests: run a child, kill it at a random moment, read the file."""

from __future__ import annotations

import contextlib
import random
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest


def run_and_kill(
    script: Path,
    args: list[str],
    rng: random.Random,
    *,
    startup_share: float,
    startup_s: float,
    running_s: float,
) -> list[bytes]:
    """Start ``script args``, SIGKILL it at a random moment, return its complete output lines.

    With probability ``startup_share`` the kill lands during start-up (within ``startup_s``);
    otherwise after the child printed ``ready`` (within ``running_s``). A line cut by the kill has
    no newline and is not returned: it was never acknowledged.
    """
    proc = subprocess.Popen(
        [sys.executable, str(script), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=script.parent,
    )
    watchdog = threading.Timer(60.0, proc.kill)  # never hang the suite on a stuck child
    watchdog.start()
    try:
        assert proc.stdout is not None
        if rng.random() < startup_share:  # imports, open, schema migration, first writes
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=rng.uniform(0.0, startup_s))
        else:
            first = proc.stdout.readline()
            if first != b"ready\n":
                proc.kill()
                _, err = proc.communicate()
                pytest.fail(f"child did not start: {first!r} {err.decode(errors='replace')[-2000:]}")
            threading.Event().wait(rng.uniform(0.0, running_s))
        proc.send_signal(signal.SIGKILL)
        out, err = proc.communicate()
    finally:
        watchdog.cancel()
    assert proc.returncode == -signal.SIGKILL, err.decode(errors="replace")[-2000:]
    return out.split(b"\n")[:-1]


def journal_ids(db: Path) -> list[str]:
    """The journal's decision ids in append order, after asserting ``PRAGMA integrity_check`` is ok."""
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        return [row[0] for row in conn.execute("SELECT decision_id FROM journal ORDER BY id")]
    finally:
        conn.close()
