"""Crash safety of the state store: SIGKILL a journaling process at random moments, lose nothing acked.

A child process opens a :class:`~advanced_risk.engine.state.StateStore`, then journals decisions and raises
the peak equity in a tight loop, printing each id only after the call returned (i.e. after the
commit). The test kills it with SIGKILL at random moments (mostly mid-loop, sometimes while it is
still starting up and opening the file), then checks that the database passes
``PRAGMA integrity_check`` and holds every acknowledged decision and at least the acknowledged peak.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

from advanced_risk.engine.state import StateStore

from .conftest import journal_ids, run_and_kill

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")

CHILD = """
import sys
from advanced_risk.engine.state import StateStore

path, run = sys.argv[1], sys.argv[2]
store = StateStore(path, busy_timeout_s=10.0)
print("ready", flush=True)
i = 0
while True:
    decision_id = f"{run}-{i}"
    store.append_decision(decision_id, {"run": run, "i": i, "weights": {"a": 0.5, "b": 0.25}})
    sys.stdout.write(f"ack {decision_id}\\n")
    if i % 3 == 0:
        peak = store.raise_peak_equity(1000.0 + i)
        sys.stdout.write(f"peak {peak!r}\\n")
    sys.stdout.flush()
    i += 1
"""


def _kill_once(script: Path, db: Path, run: str, rng: random.Random) -> tuple[list[str], float]:
    """Start the child, SIGKILL it at a random moment; return the acknowledged ids and the best peak."""
    lines = run_and_kill(script, [str(db), run], rng, startup_share=0.2, startup_s=1.0, running_s=0.05)
    acked = [line[4:].decode() for line in lines if line.startswith(b"ack ")]
    peaks = [float(line[5:]) for line in lines if line.startswith(b"peak ")]
    return acked, max(peaks, default=0.0)


@pytest.mark.parametrize(
    "kills", [pytest.param(5, id="5-kills"), pytest.param(50, id="50-kills", marks=pytest.mark.slow)]
)
def test_sigkill_while_journaling_keeps_the_file_sound_and_every_acked_decision(
    tmp_path: Path, kills: int
) -> None:
    script = tmp_path / "journal_child.py"
    script.write_text(CHILD)
    db = tmp_path / "risk.db"
    rng = random.Random(20240505 + kills)
    acked: list[str] = []
    best_peak = 0.0
    for k in range(kills):
        ids, peak = _kill_once(script, db, f"r{k}", rng)
        acked.extend(ids)
        best_peak = max(best_peak, peak)
    assert len(acked) > kills  # the kills did land mid-loop, not only before the first write

    stored = journal_ids(db)
    assert len(stored) == len(set(stored))
    missing = set(acked) - set(stored)
    assert not missing, f"{len(missing)} acknowledged decisions lost, e.g. {sorted(missing)[:5]}"

    with StateStore(db) as store:  # a restart opens the crashed file and sees the same journal
        assert store.integrity_check() == "ok"
        assert store.count() == len(stored)
        peak = store.load().peak_equity
        assert peak is not None
        assert peak >= best_peak
