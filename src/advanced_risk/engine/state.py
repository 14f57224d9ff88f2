"""The crash-safe state store: peak equity, trading state, kill switch and the decision journal.

State that must survive a restart lives in one SQLite file (stdlib ``sqlite3``):

- ``journal_mode=WAL`` and ``synchronous=FULL``: a write returns only after its transaction is in
  the write-ahead log on disk, so a decision acknowledged by :meth:`StateStore.append_decision`
  survives a SIGKILL or a power cut, and a crash mid-write never corrupts the file;
- a ``schema_version`` table and an ordered list of migrations: opening an older file upgrades it
  in one transaction; opening a file from a newer library is refused;
- ``risk_state``: one row with peak equity, trading state, its reason and the kill switch;
- ``journal``: append-only ``(id INTEGER PRIMARY KEY, decision_id TEXT UNIQUE, ts, payload JSON)``;
- ``snapshot``: one row, the engine's learnt state saved at a graceful close, stamped with the
  newest journalled decision's id: it is read back only while that decision is still the newest.

``StateStore(None)`` keeps everything in memory (nothing survives the process; the manager logs
that state is not persisted). ``max_journal_rows`` makes an in-memory journal a ring: each append
deletes the oldest rows beyond the bound in the same transaction (a range delete by row id), and
:attr:`StateStore.evicted` counts them; an evicted decision reads back as None. A file keeps all
of history.

Threading contract: one store owns one connection (``check_same_thread=False``) guarded by a lock,
so any thread may call it and calls run one at a time. Every call blocks on disk I/O (an fsync per
write), so async code calls it off the event loop (``asyncio.to_thread`` or a single-thread
executor). Several processes may open the same file; SQLite's locking serialises their writes and a
writer waits up to ``busy_timeout_s`` for a lock.

Failure contract: every ``sqlite3`` error (locked, read-only, disk I/O, corrupt file, duplicate
``decision_id``) surfaces as :class:`~advanced_risk.errors.StateStoreError` naming the operation;
a failed write is rolled back and leaves the store usable. Two faults SQLite does not see are
checked before every operation of a writable file store: the file deleted or replaced (its inode
changed), and the file, its WAL or its ``-shm`` index not writable (an immutable ``-shm`` that
SQLite has mapped into memory would otherwise kill the process with SIGBUS).

One module because :class:`StateStore` owns one connection and the lock that guards it, and every
method (schema, safety state, journal) is one transaction on that connection under those checks.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, fields, is_dataclass
from enum import Enum
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

import numpy as np

from advanced_risk.engine.snapshot import EngineSnapshot
from advanced_risk.errors import DuplicateDecisionError, InvalidInputError, StateStoreError
from advanced_risk.logs import get_logger
from advanced_risk.measures.validation import check_positive_int, check_range
from advanced_risk.types import RiskDecision, TradingState

__all__ = [
    "SCHEMA_VERSION",
    "STREAKS",
    "JournalEntry",
    "PersistedState",
    "Restart",
    "StateStore",
    "priced_of",
]

log = get_logger(__name__)
_T = TypeVar("_T")

_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (  # version 1
        """CREATE TABLE risk_state (
               id INTEGER PRIMARY KEY CHECK (id = 1),
               peak_equity REAL,
               trading_state TEXT NOT NULL,
               reason TEXT NOT NULL,
               kill_switch INTEGER NOT NULL,
               updated_ts REAL NOT NULL)""",
        "INSERT INTO risk_state VALUES (1, NULL, 'active', '', 0, 0.0)",
        """CREATE TABLE journal (
               id INTEGER PRIMARY KEY,
               decision_id TEXT NOT NULL UNIQUE,
               ts REAL NOT NULL,
               payload TEXT NOT NULL)""",
    ),
    (  # version 2: the engine's learnt state, saved at close (engine/snapshot.py)
        """CREATE TABLE snapshot (
               id INTEGER PRIMARY KEY CHECK (id = 1),
               decision_id TEXT NOT NULL,
               ts REAL NOT NULL,
               payload BLOB NOT NULL)""",
    ),
)
SCHEMA_VERSION = len(_MIGRATIONS)
"""Schema version this library writes; migration ``i`` upgrades version ``i`` to ``i + 1``."""


@dataclass(frozen=True, slots=True)
class PersistedState:
    """The safety state restored on start-up."""

    peak_equity: float | None
    """Highest equity seen (None until the first equity is recorded)."""
    trading_state: TradingState
    """Trading state at the last save."""
    reason: str
    """Why that state was entered."""
    kill_switch: bool
    """Whether the manual kill switch is engaged."""
    updated_ts: float
    """Unix time of the last change (0.0: never written)."""


STREAKS = ("loss", "var_breach", "halt_votes")
"""The rules' counters a decision carries (``RiskDecision.streaks``) and a restart resumes."""


@dataclass(frozen=True, slots=True)
class Restart:
    """What a restart reads from the journal beside the safety state (:class:`PersistedState`).

    Each is from the newest journalled decision unless said otherwise; an empty value restores
    nothing of its kind (a fresh start, an in-memory store, or a row that could not be read).
    """

    stops: Mapping[str, float] = field(default_factory=dict)
    """asset -> protective stop (:meth:`StateStore.last_stops`)."""
    equity: Sequence[float] = ()
    """The equity of the newest ``drawdown_window`` decisions, oldest first
    (:meth:`StateStore.recent_equity`)."""
    weights: Mapping[str, float] = field(default_factory=dict)
    """asset -> target weight (:meth:`StateStore.last_weights`; read only while REDUCING)."""
    leverage: float | None = None
    """The leverage (:meth:`StateStore.last_leverage`)."""
    streaks: Mapping[str, int] = field(default_factory=dict)
    """The rules' counters (:meth:`StateStore.last_streaks`)."""
    last: RiskDecision | None = None
    """The last healthy decision (:meth:`StateStore.last_healthy`): what a degraded one falls back
    on, and the book (:func:`priced_of`) whose next return is checked against its VaR."""
    snapshot: EngineSnapshot | None = None
    """The engine's learnt state saved at the last graceful close (:meth:`StateStore.load_snapshot`)."""


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One journaled decision."""

    id: int
    """Row id, increasing in append order."""
    decision_id: str
    """The caller's unique id of the decision."""
    ts: float
    """Unix time the decision was journaled."""
    payload: dict[str, Any]
    """The decision as JSON data (non-finite floats are stored as null)."""


class StateStore:
    """SQLite-backed safety state and decision journal (see the module docstring for contracts).

    Parameters
    ----------
    path : database file (its directory is created if missing), or None for an in-memory store.
    busy_timeout_s : how long a write waits for another connection's lock before failing.
    read_only : open an existing file for reading only (no directory or file is created, no
        migration runs, every write raises ``StateStoreError``); e.g. to read the journal of a
        closed manager, or next to a running one (WAL readers do not block its writer).
    max_journal_rows : in-memory store only: keep the newest this many journal rows (None: all).
        Memory then stays bounded however long the process runs; older rows are deleted in the
        transaction that appends past the bound and counted in :attr:`evicted`.

    Raises
    ------
    StateStoreError
        If the file cannot be opened, is not a database, or has a newer schema (read-only: a
        missing file or a schema other than this library's).
    InvalidInputError
        If ``max_journal_rows`` is not a positive integer, or is given for a file (or read-only).

    Examples
    --------
    >>> with StateStore(None) as store:
    ...     store.append_decision("d-1", {"leverage": 0.5})
    ...     store.raise_peak_equity(10_500.0)
    ...     store.count(), store.load().peak_equity
    1
    10500.0
    (1, 10500.0)
    """

    def __init__(
        self,
        path: str | Path | None,
        *,
        busy_timeout_s: float = 5.0,
        read_only: bool = False,
        max_journal_rows: int | None = None,
    ) -> None:
        timeout = check_range(busy_timeout_s, "busy_timeout_s", 0.0, 3600.0)
        self._path = None if path is None else Path(path).expanduser()
        self._label = ":memory:" if self._path is None else str(self._path)
        if read_only and self._path is None:
            raise InvalidInputError("read_only needs a database file, not an in-memory store")
        if max_journal_rows is not None:
            if self._path is not None:
                raise InvalidInputError(
                    "max_journal_rows bounds an in-memory journal only; a file keeps all of history"
                )
            check_positive_int(max_journal_rows, "max_journal_rows")
        self._max_rows = max_journal_rows
        self._evicted = 0
        self._read_only = read_only
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        try:
            if self._path is not None and not read_only:
                self._path.parent.mkdir(parents=True, exist_ok=True)
            target, uri = self._label, False
            if read_only and self._path is not None:
                target, uri = self._path.resolve().as_uri() + "?mode=ro", True
            conn = sqlite3.connect(
                target, timeout=timeout, isolation_level=None, check_same_thread=False, uri=uri
            )
        except (OSError, sqlite3.Error) as exc:
            raise StateStoreError(f"open failed on {self._label}: {exc}") from exc
        self._conn = conn
        self._identity: tuple[int, int] | None = None  # (device, inode): set once the schema exists
        try:
            self._configure(conn)
        except BaseException:
            conn.close()
            self._conn = None
            raise
        self._identity = self._file_identity()
        log.info(
            "state_store_opened",
            path=self._label,
            persistent=self.persistent,
            schema=SCHEMA_VERSION,
            read_only=read_only,
        )

    # -- lifecycle ---------------------------------------------------------------------------------

    @property
    def path(self) -> Path | None:
        """The database file, or None when in memory."""
        return self._path

    @property
    def persistent(self) -> bool:
        """Whether the state survives the process (False for an in-memory store)."""
        return self._path is not None

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has been called."""
        return self._conn is None

    @property
    def max_journal_rows(self) -> int | None:
        """The in-memory journal's bound (None: unbounded, always for a file)."""
        return self._max_rows

    @property
    def evicted(self) -> int:
        """Journal rows deleted to keep an in-memory journal within ``max_journal_rows``."""
        return self._evicted

    def close(self) -> None:
        """Close the connection; further calls raise ``StateStoreError``. Closing twice is a no-op."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"StateStore({self._label!r}, closed={self.closed})"

    # -- safety state ------------------------------------------------------------------------------

    def load(self) -> PersistedState:
        """Read the persisted safety state (defaults on a fresh store: ACTIVE, no peak, switch off)."""
        with self._op("load") as conn:
            row = conn.execute(
                "SELECT peak_equity, trading_state, reason, kill_switch, updated_ts FROM risk_state"
            ).fetchone()
        if row is None:
            raise StateStoreError(f"load failed on {self._label}: risk_state row is missing")
        try:
            state = TradingState(row[1])
        except ValueError:
            raise StateStoreError(f"load failed on {self._label}: bad trading_state {row[1]!r}") from None
        return PersistedState(row[0], state, row[2], bool(row[3]), row[4])

    def save_state(self, state: PersistedState) -> None:
        """Overwrite the whole safety state in one transaction (``updated_ts`` is set to now)."""
        peak = None if state.peak_equity is None else _finite_positive(state.peak_equity, "peak_equity")
        trading_state = _as_state(state.trading_state)
        self._write(
            "save_state",
            "UPDATE risk_state SET peak_equity = ?, trading_state = ?, reason = ?, kill_switch = ?, "
            "updated_ts = ?",
            (peak, trading_state.value, str(state.reason), int(bool(state.kill_switch)), time.time()),
        )

    def set_trading_state(self, trading_state: TradingState | str, reason: str) -> None:
        """Persist a trading-state change and its reason."""
        s = _as_state(trading_state)
        self._write(
            "set_trading_state",
            "UPDATE risk_state SET trading_state = ?, reason = ?, updated_ts = ?",
            (s.value, str(reason), time.time()),
        )

    def set_safety_state(
        self, trading_state: TradingState | str, reason: str, kill_switch: bool, *, resume: bool = False
    ) -> None:
        """Persist the trading state, its reason and the kill switch in one transaction.

        Only a ``resume`` lowers what is stored: otherwise a stored HALTED (and its reason) and an
        engaged kill switch stay as they are, so a process writing its own state change (REDUCING)
        never clears a halt another process (an operator's script) wrote to the same file.
        """
        s = _as_state(trading_state)
        if resume:
            sql = "UPDATE risk_state SET trading_state = ?, reason = ?, kill_switch = ?, updated_ts = ?"
            params: tuple[Any, ...] = (s.value, str(reason), int(bool(kill_switch)), time.time())
        else:  # SQLite evaluates every SET expression on the row as it was before the update
            sql = (
                "UPDATE risk_state SET "
                "trading_state = CASE WHEN trading_state = ? THEN trading_state ELSE ? END, "
                "reason = CASE WHEN trading_state = ? THEN reason ELSE ? END, "
                "kill_switch = MAX(kill_switch, ?), updated_ts = ?"
            )
            halted = TradingState.HALTED.value
            params = (halted, s.value, halted, str(reason), int(bool(kill_switch)), time.time())
        self._write("set_safety_state", sql, params)

    def set_kill_switch(self, engaged: bool) -> None:
        """Persist the kill switch."""
        self._write(
            "set_kill_switch",
            "UPDATE risk_state SET kill_switch = ?, updated_ts = ?",
            (int(bool(engaged)), time.time()),
        )

    def raise_peak_equity(self, equity: float) -> float:
        """Record ``equity``; the stored peak becomes ``max(peak, equity)`` atomically. Returns the peak."""
        e = _finite_positive(equity, "equity")

        def run(conn: sqlite3.Connection) -> float:
            conn.execute(
                "UPDATE risk_state SET peak_equity = ?1, updated_ts = ?2 "
                "WHERE peak_equity IS NULL OR peak_equity < ?1",
                (e, time.time()),
            )
            peak: float = conn.execute("SELECT peak_equity FROM risk_state").fetchone()[0]
            return peak

        return self._transaction("raise_peak_equity", run)

    def set_peak_equity(self, equity: float | None) -> None:
        """Overwrite the peak (e.g. reset it when an operator resumes after a drawdown halt)."""
        e = None if equity is None else _finite_positive(equity, "equity")
        self._write(
            "set_peak_equity", "UPDATE risk_state SET peak_equity = ?, updated_ts = ?", (e, time.time())
        )

    # -- decision journal --------------------------------------------------------------------------

    def append_decision(
        self, decision_id: str, payload: Mapping[str, Any] | str, *, ts: float | None = None
    ) -> int:
        """Journal one decision; returns its row id once the transaction is committed (durable).

        Raises
        ------
        InvalidInputError
            If ``decision_id`` is empty or ``payload`` holds something JSON cannot represent.
        StateStoreError
            If ``decision_id`` is already journaled or the database fails (nothing is written).
        """
        row = journal_row(decision_id, payload, ts)
        return self._append(
            "append_decision",
            lambda conn: int(
                conn.execute("INSERT INTO journal (decision_id, ts, payload) VALUES (?, ?, ?)", row).lastrowid
                or 0
            ),
        )

    def append_decisions(
        self,
        entries: Iterable[tuple[str, Mapping[str, Any] | str]],
        timestamps: Sequence[float] | None = None,
    ) -> int:
        """Journal several decisions in one transaction (one fsync); all or none. Returns the count.

        ``timestamps`` (Unix seconds, one per entry) records when each decision was made; default:
        now, for all of them.
        """
        entries = list(entries)
        if timestamps is not None and len(timestamps) != len(entries):
            raise InvalidInputError(f"timestamps must have one value per entry, got {len(timestamps)}")
        when: Sequence[float | None] = [None] * len(entries) if timestamps is None else timestamps
        rows = [journal_row(i, payload, ts) for (i, payload), ts in zip(entries, when, strict=True)]
        self._append("append_decisions", lambda conn: insert_rows(conn, rows))
        return len(rows)

    def journal(self, limit: int = 100) -> list[JournalEntry]:
        """The last ``limit`` journaled decisions, oldest first."""
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise InvalidInputError(f"limit must be an integer >= 0, got {limit!r}")
        with self._op("journal") as conn:
            rows = conn.execute(
                "SELECT id, decision_id, ts, payload FROM journal ORDER BY id DESC LIMIT ?", (limit,)
            ).fetchall()
        return [JournalEntry(r[0], r[1], r[2], json.loads(r[3])) for r in reversed(rows)]

    def journal_between(
        self,
        since: float | None = None,
        until: float | None = None,
        *,
        valid: tuple[float, float] = (-math.inf, math.inf),
    ) -> list[JournalEntry]:
        """The journal's rows written at Unix time ``since`` <= ts <= ``until`` (None: unbounded),
        oldest first; only those rows are read and decoded.

        A row whose ``ts`` is not a number, or a number outside ``valid`` (a corrupt file), is
        returned whatever the bounds, so the caller's check of the times still sees it.
        """
        for name, bound in (("since", since), ("until", until)):
            if bound is not None and (isinstance(bound, bool) or not isinstance(bound, int | float)):
                raise InvalidInputError(f"{name} must be Unix seconds or None, got {bound!r}")
        with self._op("journal_between") as conn:
            rows = conn.execute(
                "SELECT id, decision_id, ts, payload FROM journal "
                "WHERE ((?1 IS NULL OR ts >= ?1) AND (?2 IS NULL OR ts <= ?2)) "
                "OR typeof(ts) NOT IN ('real', 'integer') OR ts <= ?3 OR ts >= ?4 ORDER BY id",
                (since, until, max(valid[0], -1e300), min(valid[1], 1e300)),
            ).fetchall()
        return [JournalEntry(r[0], r[1], r[2], json.loads(r[3])) for r in rows]

    def operator_events(self) -> list[JournalEntry]:
        """The journal's operator rows (``{"event": ...}``: kill switch, resume, peak reset), oldest
        first; the decisions between them are not read (a text prefix match in SQL)."""
        with self._op("operator_events") as conn:
            rows = conn.execute(
                "SELECT id, decision_id, ts, payload FROM journal "
                "WHERE payload LIKE '{\"event\":%' ORDER BY id"
            ).fetchall()
        return [JournalEntry(r[0], r[1], r[2], json.loads(r[3])) for r in rows]

    def get_decision(self, decision_id: str) -> JournalEntry | None:
        """The journaled decision with this id, or None."""
        with self._op("get_decision") as conn:
            r = conn.execute(
                "SELECT id, decision_id, ts, payload FROM journal WHERE decision_id = ?", (decision_id,)
            ).fetchone()
        return None if r is None else JournalEntry(r[0], r[1], r[2], json.loads(r[3]))

    def last_stops(self) -> dict[str, float]:
        """The ``stop_levels`` of the newest journaled decision (operator rows skipped): the
        protective stops a restart seeds its own from; ``{}`` when the journal holds no decision.

        A newest row that is not JSON, or whose ``stop_levels`` is not a mapping of asset names to
        finite prices >= 0, restores nothing: ``{}``, and a ``stops_not_restored`` warning names
        the row and why (an older row is not read instead: its stops would be staler still).

        Raises
        ------
        StateStoreError
            If the database fails.
        """
        return self._newest_mapping("last_stops", _stops_of, "stops_not_restored")

    def last_weights(self) -> dict[str, float]:
        """The ``rebalance_weights`` of the newest journaled decision (operator rows skipped, the
        ``cash`` entry left out): what a restart while REDUCING caps each position at; ``{}`` when
        the journal holds no decision, or (with a ``weights_not_restored`` warning) when the newest
        row is not JSON or its weights are not a mapping of asset names to finite numbers.

        Raises
        ------
        StateStoreError
            If the database fails.
        """
        return self._newest_mapping("last_weights", _weights_of, "weights_not_restored")

    def last_leverage(self) -> float | None:
        """The ``leverage`` of the newest journaled decision (operator rows skipped), or None when
        the journal holds no decision or its leverage is not a finite number >= 0: what a restart
        caps leverage at until its tracker is warm again.

        Raises
        ------
        StateStoreError
            If the database fails.
        """
        with self._op("last_leverage") as conn:
            row = _newest_decision(conn)
        return None if row is None else _leverage_of(row[1])

    def last_streaks(self) -> dict[str, int]:
        """The ``streaks`` of the newest journaled decision (operator rows skipped): the rules'
        counters a restart resumes (:data:`STREAKS`); ``{}`` when the journal holds no decision or
        the newest one has none (a library before streaks were journalled), or (with a
        ``streaks_not_restored`` warning) when a count is not an integer >= 0.

        Raises
        ------
        StateStoreError
            If the database fails.
        """
        counts = self._newest_mapping("last_streaks", _streaks_of, "streaks_not_restored")
        return {name: int(value) for name, value in counts.items()}

    def last_healthy(self) -> RiskDecision | None:
        """The newest journaled decision that was not degraded (operator rows skipped), or None:
        the decision a degraded one falls back on (its weights, leverage, VaR), as the running
        engine's last healthy decision, however many degraded rows came after it. SQLite finds the
        rows whose text says ``"degraded":false`` (a key :meth:`RiskDecision.to_json` writes once;
        in a string a quote is escaped), newest first, and only those are decoded. A row that
        cannot be read as a decision is passed over, with a ``decision_not_restored`` warning.

        Raises
        ------
        StateStoreError
            If the database fails.
        """
        with self._op("last_healthy") as conn:
            cursor = conn.execute(
                "SELECT decision_id, payload FROM journal WHERE payload NOT LIKE '{\"event\":%' "
                "AND instr(payload, '\"degraded\":false') > 0 ORDER BY id DESC"
            )
            while (row := cursor.fetchone()) is not None:
                try:
                    decision = RiskDecision.from_json(row[1])
                except InvalidInputError as exc:
                    log.warning(
                        "decision_not_restored", path=self._label, decision_id=row[0], reason=str(exc)
                    )
                    continue
                if not decision.degraded:
                    return decision
        return None

    def last_priced(self) -> tuple[dict[str, float], float] | None:
        """The levered book the newest healthy journaled decision priced (:meth:`last_healthy`:
        ``rebalance_weights`` without ``cash``, times ``leverage``) and its ``var``, or None (no
        healthy decision, or its VaR not finite): the book whose next return a restart checks
        against that VaR, so a VaR-breach streak under way goes on counting.

        Raises
        ------
        StateStoreError
            If the database fails.
        """
        return priced_of(self.last_healthy())

    def save_snapshot(self, payload: bytes, decision_id: str | None = None) -> str | None:
        """Keep ``payload`` (the engine's state, ``engine.snapshot.encode``) as the snapshot of the
        newest journaled decision, replacing any earlier one; returns that decision's id, or None
        (nothing saved) when the journal holds no decision, or when ``decision_id`` is given and
        the newest decision is another one (another writer journalled after the engine's last
        decision: its state would be read as the newer one's).

        Raises
        ------
        StateStoreError
            If the database fails.
        """
        if not isinstance(payload, bytes):
            raise InvalidInputError(f"payload must be bytes, got {type(payload).__name__}")

        def body(conn: sqlite3.Connection) -> str | None:
            newest = _newest_decision(conn)
            if newest is None or (decision_id is not None and newest[0] != decision_id):
                return None
            conn.execute(
                "INSERT OR REPLACE INTO snapshot VALUES (1, ?, ?, ?)", (newest[0], time.time(), payload)
            )
            return newest[0]

        return self._transaction("save_snapshot", body)

    def take_snapshot(self) -> tuple[str, bytes] | None:
        """``(decision_id, payload)`` of :meth:`load_snapshot` (the decision it is stamped with), and
        the snapshot deleted in the same transaction: what an open
        does, so a snapshot serves one restart only. A run that then cannot save its own at close
        (a failing store) leaves none, rather than the older one: its decisions that never landed
        would otherwise make that older state pass for the newest.

        Raises
        ------
        StateStoreError
            If the database fails (nothing is deleted; the open then uses no snapshot).
        """

        def body(conn: sqlite3.Connection) -> tuple[str, bytes] | None:
            fresh = self._fresh_snapshot(conn)
            conn.execute("DELETE FROM snapshot")
            return fresh

        return self._transaction("take_snapshot", body)

    def load_snapshot(self) -> bytes | None:
        """The saved snapshot while the decision it was saved with is still the newest journaled
        one, else None: after it, the store has seen decisions its state has not (another run that
        did not close, or crashed), and a stale state would be read as fresh.

        Raises
        ------
        StateStoreError
            If the database fails.
        """
        with self._op("load_snapshot") as conn:
            fresh = self._fresh_snapshot(conn)
        return None if fresh is None else fresh[1]

    def _fresh_snapshot(self, conn: sqlite3.Connection) -> tuple[str, bytes] | None:
        """The snapshot row's stamp and payload if its decision is still the newest journaled one."""
        row = conn.execute("SELECT decision_id, payload FROM snapshot WHERE id = 1").fetchone()
        if row is None:
            return None
        newest = _newest_decision(conn)
        if newest is None or newest[0] != row[0]:
            log.info("snapshot_stale", path=self._label, saved_at=row[0], newest=newest and newest[0])
            return None
        return str(row[0]), bytes(row[1])

    def _newest_mapping(
        self, op: str, parse: Callable[[Any], tuple[dict[str, float], str]], warning: str
    ) -> dict[str, float]:
        """``parse`` of the newest journaled decision's payload; ``{}`` without one, or with a
        ``warning`` event naming the row and why ``parse`` refused it."""
        with self._op(op) as conn:
            row = _newest_decision(conn)
        if row is None:
            return {}
        mapping, why = parse(row[1])
        if why:
            log.warning(warning, path=self._label, decision_id=row[0], reason=why)
        return mapping

    def recent_equity(self, bars: int) -> list[float]:
        """The ``equity`` of the newest ``bars`` journaled decisions, oldest first: the rolling
        high-water mark of ``RiskConfig.drawdown_window`` a restart rebuilds.

        Operator rows are skipped, except the newest ``reset_peak``: the window restarted at its
        ``peak_equity`` then, so the list starts with that value and holds nothing older. Rows
        without a finite equity > 0 (a bar without equity) are left out, as the running manager
        left them out of its window.

        Raises
        ------
        StateStoreError
            If the database fails.
        """
        n = check_positive_int(bars, "bars")
        newest_first: list[float] = []
        with self._op("recent_equity") as conn:
            for (text,) in conn.execute("SELECT payload FROM journal ORDER BY id DESC"):
                event, equity = _equity_of(text)
                if event == "reset_peak":
                    if equity is not None:
                        newest_first.append(equity)
                    break
                if event is None and equity is not None:
                    newest_first.append(equity)
                    if len(newest_first) >= n:
                        break
        return newest_first[::-1]

    def count(self) -> int:
        """Number of journaled decisions kept (at most ``max_journal_rows`` when that is set)."""
        with self._op("count") as conn:
            n: int = conn.execute("SELECT COUNT(*) FROM journal").fetchone()[0]
        return n

    def integrity_check(self) -> str:
        """SQLite's ``PRAGMA integrity_check`` result: ``"ok"`` for a sound file."""
        with self._op("integrity_check") as conn:
            rows = conn.execute("PRAGMA integrity_check").fetchall()
        return "; ".join(str(r[0]) for r in rows)

    @contextmanager
    def busy_timeout(self, seconds: float) -> Iterator[None]:
        """Within the block, wait at most ``seconds`` for another connection's lock (then restore).

        For a caller with a deadline: a write that would wait longer for a lock held by another
        process fails (``StateStoreError``, "database is locked") instead of blocking.
        """
        ms = int(max(check_range(seconds, "seconds", 0.0, 3600.0), 0.0) * 1000.0)
        previous = self._set_busy_timeout(ms)
        try:
            yield
        finally:
            self._set_busy_timeout(previous)

    def _set_busy_timeout(self, ms: int) -> int:
        """Set the connection's busy timeout (a setting of the connection: no file is touched, so
        none of the checks of ``_op``); returns the previous one (-1 on a closed store)."""
        with self._lock:
            conn = self._conn
            if conn is None or ms < 0:
                return -1
            with suppress(sqlite3.Error):
                previous = int(conn.execute("PRAGMA busy_timeout").fetchone()[0])
                conn.execute(f"PRAGMA busy_timeout={ms}")
                return previous
            return -1

    # -- internals ---------------------------------------------------------------------------------

    @contextmanager
    def _op(self, name: str) -> Iterator[sqlite3.Connection]:
        """Serialise access, and turn any sqlite3 error into a StateStoreError naming ``name``."""
        with self._lock:
            conn = self._conn
            if conn is None:
                raise StateStoreError(f"{name} failed on {self._label}: the state store is closed")
            if self._identity is not None and self._file_identity() != self._identity:
                # SQLite would go on writing to the unlinked (or swapped-out) file: nothing durable
                raise StateStoreError(
                    f"{name} failed on {self._label}: the state file was deleted or replaced"
                )
            if self._identity is not None and not self._read_only and (locked := self._unwritable()):
                raise StateStoreError(f"{name} failed on {self._label}: {locked} is not writable")
            try:
                yield conn
            except BaseException as exc:
                if conn.in_transaction:
                    with suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.IntegrityError) and name.startswith("append_decision"):
                    raise DuplicateDecisionError(
                        f"{name} failed on {self._label}: decision_id already journaled ({exc})"
                    ) from exc
                if isinstance(exc, sqlite3.Error):
                    raise StateStoreError(f"{name} failed on {self._label}: {exc}") from exc
                raise

    def _unwritable(self) -> str | None:
        """The first of the database, its WAL and its shared-memory index that exists and cannot be
        written (read-only, immutable), or None.

        SQLite maps the ``-shm`` index into memory and writes to it even to read: once that file is
        immutable, the write faults and the process dies of SIGBUS inside SQLite, where no
        exception can catch it. Checked before every operation (three ``access`` calls, ~2 us each),
        so such a store is a ``StateStoreError`` like any other failing disk.
        """
        if self._path is None:
            return None
        for suffix in ("", "-wal", "-shm"):
            file = f"{self._path}{suffix}"
            if not os.access(file, os.W_OK) and os.path.exists(file):
                return Path(file).name
        return None

    def _file_identity(self) -> tuple[int, int] | None:
        """(device, inode) of the database file; None when it is missing (or in memory)."""
        if self._path is None:
            return None
        try:
            st = os.stat(self._path)
        except OSError:
            return None
        return st.st_dev, st.st_ino

    def _transaction(self, name: str, body: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run ``body`` inside ``BEGIN IMMEDIATE ... COMMIT``; return after the commit."""
        with self._op(name) as conn:
            conn.execute("BEGIN IMMEDIATE")
            result = body(conn)
            conn.execute("COMMIT")
        return result

    def _append(self, name: str, insert: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run ``insert`` and, for a bounded journal, evict the oldest rows in the same transaction."""

        def body(conn: sqlite3.Connection) -> tuple[_T, int]:
            return insert(conn), self._evict(conn)

        result, evicted = self._transaction(name, body)
        self._evicted += evicted  # counted once committed: a rolled-back delete evicted nothing
        return result

    def _evict(self, conn: sqlite3.Connection) -> int:
        """Delete the rows older than the newest ``max_journal_rows``; returns how many.

        Row ids are contiguous (``INTEGER PRIMARY KEY`` without AUTOINCREMENT: each insert takes
        max(id) + 1, and only this deletes rows, oldest first), so the newest ``n`` rows are those
        with ``id > max(id) - n``: a lookup of the max and a range delete on the primary key, whose
        cost is the rows deleted, not the rows kept.
        """
        bound = self._max_rows
        if bound is None:
            return 0
        newest = conn.execute("SELECT max(id) FROM journal").fetchone()[0]
        if newest is None or newest <= bound:
            return 0
        return int(conn.execute("DELETE FROM journal WHERE id <= ?", (newest - bound,)).rowcount)

    def _write(self, name: str, sql: str, params: tuple[Any, ...]) -> None:
        self._transaction(name, lambda conn: conn.execute(sql, params))

    def _configure(self, conn: sqlite3.Connection) -> None:
        """Set the pragmas and bring the schema to ``SCHEMA_VERSION``."""
        if self._read_only:  # nothing to set or migrate: the file must already be this library's
            with self._op("open") as c:
                version = self._schema_version(c)
            if version != SCHEMA_VERSION:
                raise StateStoreError(
                    f"open failed on {self._label}: schema version {version}, this library reads "
                    f"{SCHEMA_VERSION} read-only (open it writable to migrate)"
                )
            return
        with self._op("open") as c:
            mode = c.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if self._path is not None and str(mode).lower() != "wal":
                raise sqlite3.OperationalError(f"journal_mode WAL refused (got {mode!r})")
            c.execute("PRAGMA synchronous=FULL")
            version = self._schema_version(c)
        if version > SCHEMA_VERSION:
            raise StateStoreError(
                f"open failed on {self._label}: schema version {version} is newer than this "
                f"library's {SCHEMA_VERSION}; upgrade advanced_risk"
            )
        if version < SCHEMA_VERSION:
            self._transaction("migrate", self._migrate)

    @staticmethod
    def _schema_version(conn: sqlite3.Connection) -> int:
        exists = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
        ).fetchone()
        if exists is None:
            return 0
        row = conn.execute("SELECT version FROM schema_version").fetchone()
        return 0 if row is None else int(row[0])

    def _migrate(self, conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        version = self._schema_version(conn)  # re-read under the write lock: another process may have won
        for statements in _MIGRATIONS[version:]:
            for sql in statements:
                conn.execute(sql)
        conn.execute("DELETE FROM schema_version")
        conn.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
        if version < SCHEMA_VERSION:
            log.info(
                "state_store_migrated", path=self._label, from_version=version, to_version=SCHEMA_VERSION
            )


def _finite_positive(value: float, name: str) -> float:
    return check_range(value, name, 0.0, math.inf, lo_open=True, hi_open=True)


def _newest_decision(conn: sqlite3.Connection) -> tuple[str, Any] | None:
    """``(decision_id, payload)`` of the newest journal row that is a decision (not an operator
    event), or None."""
    row: tuple[str, Any] | None = conn.execute(
        "SELECT decision_id, payload FROM journal "
        "WHERE payload NOT LIKE '{\"event\":%' ORDER BY id DESC LIMIT 1"
    ).fetchone()
    return row


def _leverage_of(text: Any) -> float | None:
    """The ``leverage`` of a journaled decision's JSON text when it is a finite number >= 0, else None."""
    try:
        payload = json.loads(text)
    except (TypeError, ValueError, RecursionError):
        return None
    value = _finite_or_nan(payload.get("leverage") if isinstance(payload, dict) else None)
    return value if math.isfinite(value) and value >= 0.0 else None


def _weights_of(text: Any) -> tuple[dict[str, float], str]:
    """The ``rebalance_weights`` of a journaled decision's JSON text without ``cash``, and ``""``;
    or ``{}`` and why the text is not a decision with weights (not JSON, no mapping, a weight that
    is not a finite number)."""
    weights, why = _floats_of(text, "rebalance_weights", -math.inf, "a finite number")
    weights.pop("cash", None)
    return weights, why


def _floats_of(text: Any, field: str, low: float, what: str) -> tuple[dict[str, float], str]:
    """The mapping ``field`` of a journaled decision's JSON text as asset -> finite float ``>= low``,
    and ``""``; or ``{}`` and why not (not JSON, no mapping, a value that is not ``what``)."""
    try:
        payload = json.loads(text)
    except (TypeError, ValueError, RecursionError) as exc:
        return {}, f"payload is not JSON ({type(exc).__name__}: {exc})"
    mapping = payload.get(field) if isinstance(payload, dict) else None
    if not isinstance(mapping, dict):
        return {}, f"payload holds no {field} mapping"
    out: dict[str, float] = {}
    for asset, raw in mapping.items():
        value = _finite_or_nan(raw)
        if not (math.isfinite(value) and value >= low):
            return {}, f"{field}[{asset!r}] = {raw!r} is not {what}"
        out[asset] = value
    return out, ""


def _finite_or_nan(value: Any) -> float:
    """``float(value)`` for an int or float (not a bool) within float's range, else NaN."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return math.nan
    try:
        return float(value)
    except OverflowError:  # an integer beyond float's range
        return math.nan


def _streaks_of(text: Any) -> tuple[dict[str, float], str]:
    """The ``streaks`` of a journaled decision's JSON text, and ``""``: ``{}`` when it has none (a
    row written before streaks were journalled, or a decision made before any input was read);
    ``{}`` and why when a count is not a whole number >= 0."""
    counts, why = _floats_of(text, "streaks", 0.0, "a count >= 0")
    if why.endswith("holds no streaks mapping"):
        return {}, ""
    bad = [name for name, value in counts.items() if name not in STREAKS or not value.is_integer()]
    if bad:
        return {}, f"streaks[{bad[0]!r}] is not one of {STREAKS} with a whole count"
    return counts, why


def priced_of(decision: RiskDecision | None) -> tuple[dict[str, float], float] | None:
    """``(weights x leverage, var)`` of a healthy decision (``cash`` left out), or None: no decision,
    a degraded one (it priced nothing) or one without a finite VaR or leverage."""
    if (
        decision is None
        or decision.degraded
        or not (math.isfinite(decision.var) and math.isfinite(decision.leverage))
    ):
        return None
    weights = decision.rebalance_weights
    return {a: w * decision.leverage for a, w in weights.items() if a != "cash"}, decision.var


def _stops_of(text: Any) -> tuple[dict[str, float], str]:
    """The ``stop_levels`` of a journaled decision's JSON text, and ``""``; or ``{}`` and why the
    text is not a decision with stops (not JSON, no ``stop_levels`` mapping, a level that is not
    a finite number >= 0)."""
    return _floats_of(text, "stop_levels", 0.0, "a finite price >= 0")


def _equity_of(text: Any) -> tuple[str | None, float | None]:
    """``(event, equity)`` of a journal row's JSON text: the operator event's name (None for a
    decision) and its ``equity`` (a ``reset_peak``'s ``peak_equity``) when that is a finite number
    > 0, else None. A row that is not a JSON object reads as ``("", None)``."""
    try:
        payload = json.loads(text)
    except (TypeError, ValueError, RecursionError):
        return "", None
    if not isinstance(payload, dict):
        return "", None
    event = payload.get("event")
    name = None if event is None else str(event)
    value = payload.get("peak_equity" if name == "reset_peak" else "equity")
    if not isinstance(value, int | float) or isinstance(value, bool):
        return name, None
    try:
        equity = float(value)
    except OverflowError:  # an integer beyond float's range
        return name, None
    return name, (equity if math.isfinite(equity) and equity > 0.0 else None)


def _as_state(state: TradingState | str) -> TradingState:
    try:
        return TradingState(state)
    except ValueError:
        allowed = [s.value for s in TradingState]
        raise InvalidInputError(f"trading_state must be one of {allowed}, got {state!r}") from None


#: rows per INSERT statement of :func:`insert_rows`, 3 parameters each: within the bound on a
#: statement's parameters (32,766 from SQLite 3.32, 999 before)
INSERT_CHUNK = 2048 if sqlite3.sqlite_version_info >= (3, 32, 0) else 256


def insert_rows(conn: sqlite3.Connection, rows: Sequence[tuple[str, float, str]]) -> None:
    """Insert journal rows with a few multi-row ``INSERT`` statements of power-of-two sizes.

    ``executemany`` steps the statement once per row, and Python's sqlite3 releases the GIL around
    every step: a writer thread then waits for the GIL again after each row (up to the
    interpreter's switch interval while another thread computes), and each of those waits forces
    the computing thread to hand the GIL over once. One statement per chunk is one step: a batch of
    a few hundred rows costs the deciding thread a handful of hand-overs instead of hundreds.

    The chunks are powers of two (at most :data:`INSERT_CHUNK` rows, one statement per set bit of
    the batch's size): Python's sqlite3 caches each statement text (128 of them) and a cached
    statement keeps a copy of the parameters it was last bound to, so one text per batch size kept
    up to 128 batches of payloads in SQLite's memory for as long as the process ran (a soak of the
    in-memory journal: +54 MiB over 150,000 decisions of 5 assets with prices, and a 500-asset row
    is 30x larger). With power-of-two texts at most 12 are cached, which together keep less
    than two of the largest batches.

    Parameters
    ----------
    conn : an open connection inside the caller's transaction.
    rows : ``(decision_id, ts, payload)`` per row, in journal order.
    """
    lo = 0
    while lo < len(rows):
        size = min(INSERT_CHUNK, 1 << ((len(rows) - lo).bit_length() - 1))
        chunk = rows[lo : lo + size]
        values = ", ".join(["(?, ?, ?)"] * size)
        params = [v for row in chunk for v in row]
        conn.execute(f"INSERT INTO journal (decision_id, ts, payload) VALUES {values}", params)
        lo += size


def journal_row(
    decision_id: str, payload: Mapping[str, Any] | str, ts: float | None
) -> tuple[str, float, str]:
    """The ``(decision_id, ts, payload JSON)`` row the journal stores for one decision.

    ``payload`` is a mapping (encoded here: enums, dataclasses and numpy values included, non-finite
    floats as null) or text that is already JSON (kept as is); ``ts`` defaults to now.

    Raises
    ------
    InvalidInputError
        ``decision_id`` empty or not a string, ``ts`` negative or not finite, ``payload`` neither
        a mapping nor a string, or holding a value JSON cannot represent (the message names it).
    """
    if not isinstance(decision_id, str) or not decision_id:
        raise InvalidInputError(f"decision_id must be a non-empty string, got {decision_id!r}")
    when = time.time() if ts is None else check_range(ts, "ts", 0.0, math.inf, hi_open=True)
    if isinstance(payload, str):  # already JSON (the manager encodes on its own thread)
        return decision_id, when, payload
    if not isinstance(payload, Mapping):
        raise InvalidInputError(f"payload must be a mapping or a JSON string, got {type(payload).__name__}")
    text = json.dumps(_jsonable(payload, "payload"), separators=(",", ":"), allow_nan=False)
    return decision_id, when, text


def _jsonable(obj: Any, where: str) -> Any:
    """JSON data for ``obj``: mappings, sequences, enums, dataclasses and numpy values included."""
    if obj is None or isinstance(obj, bool | int | str):
        return obj.value if isinstance(obj, Enum) else obj
    if isinstance(obj, float | np.floating):
        x = float(obj)
        return x if math.isfinite(x) else None
    if isinstance(obj, Enum):
        return _jsonable(obj.value, where)
    if isinstance(obj, np.integer | np.bool_):
        return obj.item()
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v, f"{where}[{k!r}]") for k, v in obj.items()}
    if is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _jsonable(getattr(obj, f.name), f"{where}.{f.name}") for f in fields(obj)}
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist(), where)
    if isinstance(obj, list | tuple | set | frozenset):
        return [_jsonable(v, f"{where}[{i}]") for i, v in enumerate(obj)]
    raise InvalidInputError(f"{where} is not JSON-serialisable: {type(obj).__name__}")
