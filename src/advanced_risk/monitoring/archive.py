"""Moving a journal's old rows into an archive file, next to a live bot (``journal --archive-before``).

A state file keeps all of its journal: ~0.9 KiB a decision at 20 assets, ~10 KiB at 500
(docs/operations.md), so a minute-bar bot grows it by hundreds of MB to GB a year.
:func:`archive_journal` moves the rows written before a time into another state file of the same
schema (created if missing) and deletes them from the live one. It never touches ``risk_state``
(the safety state: peak equity, trading state, kill switch) nor ``schema_version``. The operator's
controls (``{"event": ...}`` rows) are journal rows with their own time: they move with the
decisions of their time. The archive is a state file like any other: ``journal``, ``read_journal``
and ``report --journal`` read it as they read a live one.

Safe next to a manager writing the same file, and against a crash at any instant:

- copy, then delete: a batch (``batch_rows``) is read from the live file (a WAL read: the bot's
  writer is not blocked), inserted into the archive in one transaction (``synchronous=FULL``: on
  disk before anything is deleted), then deleted from the live file. A SIGKILL or power cut
  at any instant leaves every row in at least one of the two files;
- a rerun is idempotent: the archive's ``decision_id`` is unique, so a row found there already (a
  run killed between its copy and its delete) is not inserted twice, only deleted from the live
  file; a row whose id the archive holds with another time or payload stops the run
  (``StateStoreError``) before that batch deletes anything;
- the deletes are short write transactions (``BEGIN IMMEDIATE``, waiting up to the store's busy
  timeout for the bot's lock), sized to hold the lock about :data:`LOCK_TARGET_S` (0.5 ms) and
  :data:`PAUSE_S` (20 ms) apart: a decision's commit, which waits for the lock at most until its
  deadline (5 ms by default), finds it taken ~2 % of the time, and then free on SQLite's first
  retry (1 ms later);
- only the rows deleted from the live file are counted moved, and a delete names each row by id
  and ``decision_id``, so a row written by the bot meanwhile is never deleted.

The archive's row ids are its own (increasing in the order rows arrive, i.e. the journal order of
the live file archived oldest first); ``decision_id`` is the key shared by both files. Deleted rows
leave free pages in the live file, which SQLite reuses for new rows (the file stops growing); the
file shrinks only with ``VACUUM`` (``vacuum=True``), which holds the write lock for its whole run:
the bot's commits wait or fail meanwhile, so vacuum with the bot stopped.

One module because the checks before a run (the cutoff, the two files), the copy-then-delete loop
and its CLI report (progress lines that a vanished stderr stops without stopping the run) are one
operation whose guarantees (every row in at least one file, nothing changed on bad input) hold
only together.
"""

from __future__ import annotations

import contextlib
import math
import os
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from advanced_risk.engine.state import SCHEMA_VERSION, StateStore
from advanced_risk.errors import InvalidInputError, StateStoreError
from advanced_risk.logs import get_logger
from advanced_risk.measures.validation import check_positive_int, check_range
from advanced_risk.monitoring.journal import is_state_file, parse_time

__all__ = [
    "LOCK_TARGET_S",
    "PAUSE_S",
    "ArchiveProgress",
    "ArchiveResult",
    "archive_journal",
    "format_progress",
    "format_result",
    "stderr_progress",
]

log = get_logger(__name__)

LOCK_TARGET_S = 0.0005
"""How long one delete transaction aims to hold the live file's write lock (its size adapts)."""
PAUSE_S = 0.02
"""Default pause between two delete transactions: the bot's commits get the lock in between."""
_FIRST_DELETE_ROWS = 200  # rows of the first delete transaction, before its size adapts
_JOURNAL_COLUMNS = ("id", "decision_id", "ts", "payload")
_Row = tuple[int, str, float, str]


@dataclass(frozen=True, slots=True)
class ArchiveProgress:
    """Where a run of :func:`archive_journal` stands after one batch."""

    batch: int
    """Batches done, from 1."""
    rows_moved: int
    """Rows deleted from the live file so far (each is in the archive)."""
    bytes_moved: int
    """Bytes of those rows (``decision_id``, payload and 8 for the time)."""
    last_ts: float
    """Unix time of the batch's last row."""


@dataclass(frozen=True, slots=True)
class ArchiveResult:
    """What a run of :func:`archive_journal` did."""

    rows_moved: int
    """Rows deleted from the live file; each is in the archive."""
    bytes_moved: int
    """Bytes of those rows (``decision_id``, payload and 8 for the time)."""
    already_archived: int
    """Of those, rows the archive held already (a rerun after an interrupted run)."""
    batches: int
    """Batches copied."""
    archive: Path
    """The archive file."""
    file_bytes: int
    """Size of the live file (with its WAL) at the end."""
    free_bytes: int
    """Bytes of free pages in the live file at the end: reused by new rows (0 after a vacuum)."""
    vacuumed: bool
    """Whether the live file was vacuumed."""
    seconds: float
    """Wall time of the run."""


def archive_journal(
    path: str | Path,
    before: str | float | pd.Timestamp,
    archive_to: str | Path,
    *,
    batch_rows: int = 5000,
    vacuum: bool = False,
    busy_timeout_s: float = 5.0,
    pause_s: float = PAUSE_S,
    progress: Callable[[ArchiveProgress], None] | None = None,
) -> ArchiveResult:
    """Move the journal rows of ``path`` written before ``before`` into the state file ``archive_to``.

    Safe while a manager writes ``path`` and against a crash at any instant (the module docstring
    says how): every row ends in at least one of the two files, and a rerun after an interrupted
    run leaves each row in exactly one. The safety state (``risk_state``) and the schema version of
    ``path`` are never touched.

    Parameters
    ----------
    path : the live state file (``RiskConfig.state_path``).
    before : rows with a journal time strictly before this one move (:func:`parse_time` forms:
        ISO 8601, no zone meaning UTC; Unix seconds; ``now``; ``today``).
    archive_to : the archive, a state file: created (with its folders) if missing, appended to if
        it is a state file of this library's schema.
    batch_rows : rows copied per archive transaction (one ``fsync`` of the archive each).
    vacuum : end with ``VACUUM`` of ``path`` so that the file shrinks; it holds the write lock for
        its whole run (the bot's commits wait or fail meanwhile): run it with the bot stopped.
    busy_timeout_s : how long a transaction waits for another connection's lock (the store's
        default, 5 s).
    pause_s : pause between two delete transactions of the live file. Each holds its write lock
        about :data:`LOCK_TARGET_S`, so the lock is held ~2 % of the time at the default 20 ms: a
        decision's commit finds it taken that often and then waits ~1 ms (SQLite's first retry).
        0 is fastest, for a file no bot writes.
    progress : called after each batch (e.g. to print a line).

    Returns
    -------
    ArchiveResult
        Rows and bytes moved, the live file's size and free bytes at the end.

    Raises
    ------
    InvalidInputError
        ``before`` is not a time, ``archive_to`` is ``path`` (or one of its ``-wal``/``-shm``
        files, or a link to it), ``batch_rows`` is not a positive integer. Nothing is changed.
    StateStoreError
        ``path`` is missing, not a state file, or not writable; ``archive_to`` exists and is not a
        state file of this schema, is under a file or in a folder that cannot be written (nothing
        is changed); or a store fails during the run (what was moved before stays moved, the rest
        stays in ``path``; rerun to finish), or the archive holds one of the ids with another row.
    """
    cutoff = _cutoff(before)
    batch = check_positive_int(batch_rows, "batch_rows")
    timeout = check_range(busy_timeout_s, "busy_timeout_s", 0.0, 3600.0)
    pause = check_range(pause_s, "pause_s", 0.0, 60.0)
    source, target = Path(path).expanduser(), Path(archive_to).expanduser()
    _check_source(source)
    if is_state_file(target, source):
        raise InvalidInputError(f"archive_to {target} is the state file {source} itself: choose another file")
    _check_archive(target)
    started = time.perf_counter()
    with StateStore(target, busy_timeout_s=timeout):  # creates the archive's schema, or checks it
        pass
    src = _connect(source, timeout, synchronous="NORMAL")
    arc = _connect(target, timeout, synchronous="FULL")
    moved = nbytes = already = batches = 0
    try:
        last_id = 0
        while rows := src.execute(
            "SELECT id, decision_id, ts, payload FROM journal WHERE id > ? AND ts < ? ORDER BY id LIMIT ?",
            (last_id, cutoff, batch),
        ).fetchall():
            last_id = rows[-1][0]
            already += _copy(arc, rows, target)
            for deleted in _delete(src, rows, pause):
                moved += deleted  # per delete transaction: a failure mid-batch reports what is gone
            batches += 1
            nbytes += sum(len(r[1].encode()) + len(r[3].encode()) + 8 for r in rows)
            log.debug("journal_archive_batch", path=str(source), batch=batches, rows_moved=moved)
            if progress is not None:
                progress(ArchiveProgress(batches, moved, nbytes, float(rows[-1][2])))
        if vacuum:
            src.execute("VACUUM")
            src.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size = int(src.execute("PRAGMA page_size").fetchone()[0])
        free = int(src.execute("PRAGMA freelist_count").fetchone()[0]) * page_size
    except sqlite3.Error as exc:
        raise StateStoreError(
            f"archive of {source} into {target} failed after {moved} rows moved: {exc} "
            "(the rows not moved are still in the live file; rerun to finish)"
        ) from exc
    finally:
        src.close()
        arc.close()
    size = sum(os.path.getsize(f) for f in (source, Path(f"{source}-wal")) if f.exists())
    result = ArchiveResult(
        moved, nbytes, already, batches, target, size, free, vacuum, time.perf_counter() - started
    )
    log.info(
        "journal_archived",
        path=str(source),
        archive=str(target),
        before=cutoff,
        rows_moved=moved,
        bytes_moved=nbytes,
        already_archived=already,
        vacuumed=vacuum,
    )
    return result


def _cutoff(before: str | float | pd.Timestamp) -> float:
    """``before`` as Unix seconds, exactly as given: a journal row at that very time stays.

    :func:`parse_time` checks the value; its ``Timestamp.timestamp()`` rounds to the microsecond,
    which would move a row written at ``before`` itself (a bot's ``time.time()`` has finer digits).
    Numbers (and numeric text) are taken as they are, other forms at the timestamp's nanosecond.
    """
    stamp = parse_time(before, "before")
    if not isinstance(before, (bool, pd.Timestamp)):
        try:
            seconds = float(before)
        except (TypeError, ValueError):
            seconds = math.nan
        if math.isfinite(seconds):
            return seconds
    return float(stamp.as_unit("ns").value) / 1e9


def _check_source(source: Path) -> None:
    """``source`` is a state file of this schema that this process may write (with its WAL and
    ``-shm`` index: an immutable one fails the deletes only after a batch was copied)."""
    if not source.is_file():
        raise StateStoreError(f"no state file at {source}")
    with StateStore(source, read_only=True):  # not a database, another schema: StateStoreError
        pass
    sidecars = [Path(f"{source}{suffix}") for suffix in ("-wal", "-shm")]
    for file in (source, *(f for f in sidecars if f.exists()), source.parent):
        if not os.access(file, os.W_OK):
            raise StateStoreError(f"{file} is not writable: the archived rows could not be deleted")


def _check_archive(target: Path) -> None:
    """``target`` is a state file of this schema, or can be created (nothing is created here)."""
    if target.exists() and not _blank(target):
        if not target.is_file():
            raise StateStoreError(f"archive_to {target} is not a file")
        try:
            with StateStore(target, read_only=True) as store:  # another schema: StateStoreError
                store.count()
        except StateStoreError as exc:
            raise StateStoreError(
                f"archive_to {target} is not a state file of schema {SCHEMA_VERSION}: {exc}"
            ) from exc
        conn = sqlite3.connect(target.resolve().as_uri() + "?mode=ro", uri=True)
        try:
            columns = tuple(r[1] for r in conn.execute("PRAGMA table_info(journal)"))
        finally:
            conn.close()
        if columns != _JOURNAL_COLUMNS:
            raise StateStoreError(
                f"archive_to {target}: its journal has the columns {columns}, not {_JOURNAL_COLUMNS}"
            )
        folder = target.parent
    else:
        folder = target.parent
        while not folder.exists():
            folder = folder.parent
        if not folder.is_dir():
            raise StateStoreError(f"archive_to {target} is under {folder}, which is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK) or (target.exists() and not os.access(target, os.W_OK)):
        raise StateStoreError(f"archive_to {target} cannot be written ({folder} or the file is read-only)")


def _blank(target: Path) -> bool:
    """Whether ``target`` is an empty file or an SQLite database without a table: an archive another
    run is creating this instant (the schema comes in one transaction after the file), or ``touch``.
    :class:`StateStore` gives it the schema, as to a missing file."""
    if not target.is_file():
        return False
    if target.stat().st_size == 0:
        return True
    try:
        conn = sqlite3.connect(target.resolve().as_uri() + "?mode=ro", uri=True)
        try:
            return int(conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]) == 0
        finally:
            conn.close()
    except sqlite3.Error:  # not a database: the checks that follow say so
        return False


def _connect(file: Path, timeout: float, *, synchronous: str) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit) waiting ``timeout`` for locks.

    The live file's deletes may use ``synchronous=NORMAL`` (no fsync at their commit, so a shorter
    hold of the lock): a delete lost to a power cut leaves its rows in both files, which a rerun
    resolves; the archive's inserts are ``FULL``: on disk before the delete starts.
    """
    try:
        conn = sqlite3.connect(file, timeout=timeout, isolation_level=None)
        conn.execute(f"PRAGMA synchronous={synchronous}")
    except sqlite3.Error as exc:
        raise StateStoreError(f"open failed on {file}: {exc}") from exc
    return conn


def _copy(arc: sqlite3.Connection, rows: Sequence[_Row], target: Path) -> int:
    """Insert the rows into the archive in one transaction; returns how many it held already.

    Raises
    ------
    StateStoreError
        The archive holds one of the ``decision_id`` with another time or payload (rolled back).
    """
    arc.execute("BEGIN IMMEDIATE")
    try:
        before = arc.total_changes
        arc.executemany(
            "INSERT INTO journal (decision_id, ts, payload) VALUES (?, ?, ?) "
            "ON CONFLICT (decision_id) DO NOTHING",
            [(r[1], r[2], r[3]) for r in rows],
        )
        held = len(rows) - (arc.total_changes - before)
        if held:
            for _, decision_id, ts, payload in rows:
                kept = arc.execute(
                    "SELECT ts, payload FROM journal WHERE decision_id = ?", (decision_id,)
                ).fetchone()
                if kept != (ts, payload):
                    raise StateStoreError(
                        f"archive {target} holds decision_id {decision_id!r} with another row "
                        f"(time {kept[0] if kept else None!r}): not moved, nothing of its batch deleted"
                    )
        arc.execute("COMMIT")
    except BaseException:
        if arc.in_transaction:
            arc.execute("ROLLBACK")
        raise
    return held


def _delete(src: sqlite3.Connection, rows: Sequence[_Row], pause: float) -> Iterator[int]:
    """Delete the rows from the live file in short write transactions; yields how many each deleted
    once committed (so that a failure in a later transaction still counts the earlier ones)."""
    i, size = 0, _FIRST_DELETE_ROWS
    while i < len(rows):
        chunk = rows[i : i + size]
        src.execute("BEGIN IMMEDIATE")
        held_from = time.perf_counter()
        try:
            before = src.total_changes
            src.executemany(
                "DELETE FROM journal WHERE id = ? AND decision_id = ?", [(r[0], r[1]) for r in chunk]
            )
            count = src.total_changes - before
            src.execute("COMMIT")
        except BaseException:
            if src.in_transaction:
                src.execute("ROLLBACK")
            raise
        held = time.perf_counter() - held_from
        yield count
        i += len(chunk)
        # aim the next transaction at LOCK_TARGET_S, growing or shrinking at most 2x at a time
        size = max(1, min(2 * size, len(rows), int(size * min(2.0, LOCK_TARGET_S / max(held, 1e-6)))))
        if i < len(rows) and pause > 0.0:
            time.sleep(pause)


def _mib(n: int) -> str:
    return f"{n / 2**20:,.1f} MiB"


def _utc(ts: float) -> str:
    return pd.Timestamp(ts, unit="s", tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


def format_progress(p: ArchiveProgress) -> str:
    """One line for one batch, e.g. ``batch 3: 15,000 rows moved (12.3 MiB), up to 2024-05-01T09:30:00Z``.

    Examples
    --------
    >>> format_progress(ArchiveProgress(2, 10_000, 9 * 2**20, 0.0))
    'batch 2: 10,000 rows moved (9.0 MiB), up to 1970-01-01T00:00:00Z'
    """
    return f"batch {p.batch}: {p.rows_moved:,} rows moved ({_mib(p.bytes_moved)}), up to {_utc(p.last_ts)}"


def format_result(r: ArchiveResult, source: str | Path) -> str:
    """The summary of a run: rows and bytes moved, where to, and what became of the live file."""
    again = f", {r.already_archived:,} of them found archived already" if r.already_archived else ""
    if r.vacuumed:
        tail = f"vacuumed: {source} is now {_mib(r.file_bytes)}"
    else:
        tail = (
            f"{source} is {_mib(r.file_bytes)} with {_mib(r.free_bytes)} free, reused by new rows "
            "(--vacuum, with the bot stopped, shrinks it)"
        )
    return (
        f"moved {r.rows_moved:,} rows ({_mib(r.bytes_moved)}) to {r.archive} in {r.batches} batches, "
        f"{r.seconds:.1f} s{again}; {tail}"
    )


def stderr_progress() -> Callable[[ArchiveProgress], None]:
    """A ``progress`` that prints :func:`format_progress` lines on stderr, for the CLI.

    The lines are only a report: once stderr is gone (closed at start, or a reader such as ``head``
    that stopped: a broken pipe), printing stops and the archive runs on to its end.
    """
    live = [sys.stderr is not None]

    def show(p: ArchiveProgress) -> None:
        if not live[0]:
            return
        try:
            print(format_progress(p), file=sys.stderr, flush=True)
        except (OSError, ValueError):  # broken pipe, closed file: drop the lines, not the run
            live[0] = False
            with contextlib.suppress(OSError, ValueError):  # nothing left to flush at exit either
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stderr.fileno())

    return show
