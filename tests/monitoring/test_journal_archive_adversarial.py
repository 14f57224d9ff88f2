"""Adversarial cases of ``journal --archive-before``: a row at the cutoff itself, a failure in the
middle of a batch's deletes, an immutable WAL, an archive another run is creating, stderr and
stdout that go away mid-run, reading an archived decision back, and a 300,000-row journal."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import tracemalloc
from pathlib import Path

import pytest

from advanced_risk import AdvancedRiskManager, RiskConfig
from advanced_risk.__main__ import main
from advanced_risk.engine.state import StateStore
from advanced_risk.errors import StateStoreError
from advanced_risk.monitoring.archive import archive_journal
from advanced_risk.monitoring.journal import read_journal

T0 = 1_700_000_000.0  # 2023-11-14T22:13:20Z


def _journal(path: Path, times: list[float]) -> Path:
    with StateStore(path) as store:
        for lo in range(0, len(times), 20_000):
            chunk = times[lo : lo + 20_000]
            store.append_decisions([(f"d-{lo + i}", {"i": lo + i}) for i in range(len(chunk))], chunk)
    return path


def _ids(path: Path) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        return {r[0] for r in conn.execute("SELECT decision_id FROM journal")}
    finally:
        conn.close()


@pytest.mark.parametrize("form", ["float", "text"])
def test_a_row_written_at_the_cutoff_itself_stays(form: str, tmp_path: Path) -> None:
    # a bot's time.time() has sub-microsecond digits; Timestamp.timestamp() rounded the cutoff
    # up to the microsecond, so the row at exactly that time moved ("strictly before")
    t = T0 + 0.1234567
    live = _journal(tmp_path / "risk.db", [t - 1.0, t, t + 1.0])
    before = t if form == "float" else repr(t)
    assert archive_journal(live, before, tmp_path / "a.db", pause_s=0.0).rows_moved == 1
    assert _ids(live) == {"d-1", "d-2"}


@pytest.mark.parametrize(
    ("before", "moved"),
    [
        (0, 0),
        ("-5", 0),
        ("1969-12-31", 0),
        (T0, 0),  # exactly the first row's time
        ("2023-11-14T22:13:25Z", 5),
        ("2023-11-14T23:13:25+01:00", 5),  # the same instant with an offset
        ("2023-11-14T22:13:24.999999999Z", 5),
        ("2262-01-01", 10),
    ],
)
def test_time_edges(before: object, moved: int, tmp_path: Path) -> None:
    live = _journal(tmp_path / "risk.db", [T0 + i for i in range(10)])
    result = archive_journal(live, before, tmp_path / "a.db", pause_s=0.0)  # type: ignore[arg-type]
    assert result.rows_moved == moved
    assert len(_ids(live)) == 10 - moved


def test_equal_times_across_a_batch_boundary_all_move(tmp_path: Path) -> None:
    live = _journal(tmp_path / "risk.db", [T0] * 7 + [T0 + 1] * 7)
    result = archive_journal(live, T0 + 1, tmp_path / "a.db", batch_rows=3, pause_s=0.0)
    assert (result.rows_moved, result.batches) == (7, 3)
    assert _ids(tmp_path / "a.db") == {f"d-{i}" for i in range(7)}


def test_a_failure_mid_batch_counts_the_rows_already_deleted(tmp_path: Path) -> None:
    live = _journal(tmp_path / "risk.db", [T0 + i for i in range(1000)])
    conn = sqlite3.connect(live)  # the 2nd delete transaction of the batch fails (first: 200 rows)
    conn.execute(
        "CREATE TRIGGER no_delete BEFORE DELETE ON journal WHEN old.id > 300 "
        "BEGIN SELECT RAISE(ABORT, 'disk says no'); END"
    )
    conn.commit()
    conn.close()
    with pytest.raises(StateStoreError, match="disk says no") as info:
        archive_journal(live, "now", tmp_path / "a.db", pause_s=0.0)
    gone = 1000 - len(_ids(live))
    assert gone >= 200
    assert f"failed after {gone} rows moved" in str(info.value)  # it said 0
    assert _ids(live) | _ids(tmp_path / "a.db") == {f"d-{i}" for i in range(1000)}


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("chattr") is None, reason="chattr +i needs root")
def test_an_immutable_wal_is_refused_before_anything_is_copied(tmp_path: Path) -> None:
    live = _journal(tmp_path / "risk.db", [T0 + i for i in range(50)])
    store = StateStore(live)  # a running bot: its -wal and -shm exist
    wal = Path(f"{live}-wal")
    try:
        if subprocess.run(["chattr", "+i", str(wal)], capture_output=True).returncode:
            pytest.skip("chattr +i refused here")
        try:
            with pytest.raises(StateStoreError, match="not writable"):
                archive_journal(live, "now", tmp_path / "a.db", pause_s=0.0)
        finally:
            subprocess.run(["chattr", "-i", str(wal)], check=True)
    finally:
        store.close()
    assert not (tmp_path / "a.db").exists()  # it copied a batch, then failed its delete
    assert len(_ids(live)) == 50


@pytest.mark.parametrize("kind", ["zero bytes", "sqlite without tables"])
def test_an_archive_file_without_a_schema_yet_is_taken_as_new(kind: str, tmp_path: Path) -> None:
    live = _journal(tmp_path / "risk.db", [T0 + i for i in range(20)])
    archive = tmp_path / "a.db"
    archive.touch()
    if kind != "zero bytes":
        conn = sqlite3.connect(archive)
        conn.execute("PRAGMA journal_mode=WAL")  # what StateStore writes before its schema
        conn.close()
    assert archive_journal(live, "now", archive, pause_s=0.0).rows_moved == 20
    assert len(read_journal(archive)) == 20


def test_two_runs_at_once_on_a_new_archive_move_each_row_once(tmp_path: Path) -> None:
    # the second run met the file the first was creating (no schema yet) and refused it
    for attempt in range(5):
        folder = tmp_path / str(attempt)
        folder.mkdir()
        live = _journal(folder / "risk.db", [T0 + i for i in range(3000)])
        errors: list[BaseException] = []
        moved: list[int] = []

        def run(
            live: Path = live,
            folder: Path = folder,
            moved: list[int] = moved,
            errors: list[BaseException] = errors,
        ) -> None:
            try:
                moved.append(archive_journal(live, "now", folder / "a.db", batch_rows=500).rows_moved)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=run) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
        assert sum(moved) == 3000
        assert not _ids(live)
        assert len(read_journal(folder / "a.db")) == 3000


_PROG = (sys.executable, "-m", "advanced_risk", "journal")


def _cli_proc(live: Path, archive: Path, **streams: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [*_PROG, str(live), "--archive-before", "now", "--archive-to", str(archive), "--batch-rows", "50"],
        **streams,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("stream", ["stderr", "stdout"])
def test_a_reader_that_goes_away_does_not_stop_or_fail_the_run(stream: str, tmp_path: Path) -> None:
    # `... 2>&1 | head -1`: the progress line's BrokenPipeError stopped the run after a batch (and
    # a summary into a closed pipe made a finished run exit 2)
    live = _journal(tmp_path / "risk.db", [T0 + i for i in range(2000)])
    other = "stdout" if stream == "stderr" else "stderr"
    proc = _cli_proc(live, tmp_path / "a.db", **{stream: subprocess.PIPE, other: subprocess.DEVNULL})
    pipe = proc.stderr if stream == "stderr" else proc.stdout
    assert pipe is not None
    pipe.close()  # the reader is gone before the first line
    assert proc.wait(timeout=120) == 0
    assert not _ids(live)
    assert len(_ids(tmp_path / "a.db")) == 2000


def test_without_stderr_the_progress_does_not_land_on_stdout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # started with 2>&- Python's sys.stderr is None, and print(file=None) writes to stdout
    live = _journal(tmp_path / "risk.db", [T0 + i for i in range(200)])
    monkeypatch.setattr(sys, "stderr", None)
    code = main(["journal", str(live), "--archive-before", "now", "--archive-to", str(tmp_path / "a.db")])
    out = capsys.readouterr().out
    assert code == 0
    assert [line for line in out.splitlines() if not line.startswith("{")] == [
        line for line in out.splitlines() if line.startswith("moved 200 rows")
    ]


def test_an_archived_decision_reads_back_from_the_archive_not_the_manager(tmp_path: Path) -> None:
    live = tmp_path / "risk.db"
    risk = AdvancedRiskManager(RiskConfig(state_path=live))
    decision = risk.manage_risk_sync({"returns": {"a": 0.01}}, {"weights": {"a": 0.5}})
    risk.close_sync()
    archive_journal(live, "2262-01-01", tmp_path / "a.db", pause_s=0.0)
    risk = AdvancedRiskManager(RiskConfig(state_path=live))
    try:
        assert risk.read_decision(decision.decision_id) is None  # as for an id never journalled
    finally:
        risk.close_sync()
    with StateStore(tmp_path / "a.db", read_only=True) as store:
        entry = store.get_decision(decision.decision_id)
    assert entry is not None
    assert entry.payload == json.loads(decision.to_json())


@pytest.mark.slow
def test_300k_rows_move_with_bounded_memory(tmp_path: Path) -> None:
    n = 300_000
    live = _journal(tmp_path / "risk.db", [T0 + i for i in range(n)])
    tracemalloc.start()
    try:
        result = archive_journal(live, T0 + n - 10_000, tmp_path / "a.db", pause_s=0.0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result.rows_moved == n - 10_000
    assert peak < 64 * 2**20, f"{peak / 2**20:.1f} MiB"  # a batch, not the journal (~8 MiB seen)
    assert len(_ids(live)) == 10_000
