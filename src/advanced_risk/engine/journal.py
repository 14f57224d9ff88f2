"""The journal writer: one thread owns the state store and group-commits decisions.

SQLite wants one writer, and a commit with ``synchronous=FULL`` waits for the disk (~0.5 ms
here). Each decision is handed to :class:`JournalWriter`; whoever commits next drains everything
queued since the last commit and writes it in one transaction (group commit), so 100 concurrent
callers pay for a handful of fsyncs, not 100. Each submission returns a
``concurrent.futures.Future`` that completes when its row is durable.

Two committers share one commit lock, so rows land in the order they were queued:

- the writer thread, for rows nobody waits for, calls, retries and close;
- the caller, through :meth:`JournalWriter.commit_now`, when it must return a durable decision
  within a deadline. On an event loop busy deciding for other tasks, handing the commit to a thread
  costs more than the commit itself: the thread waits for the GIL behind the loop (up to the
  interpreter's 5 ms switch interval per wait, several waits per commit), then the loop must get
  round to resuming the waiting task. With 100 tasks x 50 calls on 2 cores, 89 % of the decisions
  miss a 5 ms deadline waiting for the thread (measured); committing on the caller's thread costs
  one fsync (~0.5 ms) inside the call. The cost: the caller blocks for that fsync, and
  ``commit_now`` bounds the wait for another process's lock by the deadline, but not a disk that
  stalls inside fsync (the manager then stops committing inline for a while; see manager.py).

Rows nobody waits for (``submit(..., urgent=False)``: an in-memory store, or ``journal_sync=False``)
linger: the thread waits up to ``linger_s`` (50 ms in a file, 1 s in memory, or until
``linger_rows`` rows are queued) after the first such row and commits everything queued meanwhile
in one go; rows that arrive during that commit wait for the next one (see ``_drain``). A commit
takes the GIL from the deciding thread at each of the decision's GIL releases (NumPy's larger
copies, for one), so while decisions come back to back every commit lands inside one: waking the
thread for every decision cost +170 us at the median of a synchronous call with the PPO policy, and
a 2 ms linger (a commit every one or two decisions) ~180 us (-50 to +310 over seven runs) at the
median of back-to-back async calls with the policy and the risk agents against a 50 ms one
(``benchmarks/profile_manager.py --journal``); 20 and 50 ms differ by less than the machine's noise.
A durable row, a call, a flush or close ends the wait at once; a row nobody waits for reaches the
store about ``linger_s`` after it was decided, plus the commit before it (a crash loses about that
much of a journal the bot chose not to wait for).

Failure policy: a failed commit (locked, read-only or full disk) marks the writer unhealthy and keeps
the rows for retry (bounded by ``max_pending``; beyond it the oldest are dropped with an event), so a
transient fault loses nothing. Futures of rows not yet committed stay pending; a later successful
commit completes them and marks the writer healthy again. Retries run on the writer thread only,
``retry_interval_s`` apart and at each new submission. A call or flush queued behind rows the store
fails fails itself (``StateStoreError``): it never reports durable what is not. A row no store could
ever write is refused before it is queued (``InvalidInputError`` from :meth:`JournalWriter.submit`),
and one whose id the store holds already is rejected at its commit (its future fails with
``DuplicateDecisionError``) while the rest of the commit lands: neither can hold the journal back.
Any other error of a commit counts as a store failure: the writer thread never dies of one.

Reading back: :meth:`JournalWriter.read_decision` answers from memory for a row not yet committed
(queued, lingering or kept for retry: an index kept under the writer's lock) and from the store
for a committed one; a row leaves the index only once its transaction committed, so every
submitted row is always found in one place or the other.

One module because :class:`JournalWriter`'s queue, commit lock, retry state and in-memory index
keep one invariant together: every submitted row is in memory or in the store, in queue order.
"""

from __future__ import annotations

import dataclasses
import json
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar

from advanced_risk.engine.state import StateStore, journal_row
from advanced_risk.errors import DuplicateDecisionError, InvalidInputError, StateStoreError
from advanced_risk.logs import get_logger
from advanced_risk.types import TradingState

__all__ = ["JournalWriter"]

log = get_logger(__name__)

T = TypeVar("T")


@dataclass(slots=True)
class _Row:
    decision_id: str
    payload: Mapping[str, Any] | str
    peak_equity: float | None
    done: Future[None] | None  # None: nobody waits for it (JournalWriter.append)
    urgent: bool = True
    ts: float = dataclasses.field(default_factory=time.time)  # when submitted, not when written


@dataclass(slots=True)
class _Call:
    fn: Callable[[StateStore], Any]
    done: Future[Any]
    ordered: bool = True  # fails while earlier rows are not durable


_SAFETY = object()  # wakes the writer for a pending safety state
_Item = _Row | _Call | object


def _positive(value: Any) -> bool:
    """Whether ``value`` is a finite real number > 0 (False for NaN, text, None or a bool)."""
    try:
        return not isinstance(value, bool) and bool(0.0 < value < math.inf)
    except (TypeError, ValueError):  # not a number; an array
        return False


def _store_error(exc: Exception) -> StateStoreError:
    """``exc`` as the store failure it is to the writer (any error of a commit is one: the rows are
    kept and retried, and the writer thread lives on)."""
    if isinstance(exc, StateStoreError):
        return exc
    error = StateStoreError(f"journal commit failed: {type(exc).__name__}: {exc}")
    error.__cause__ = exc
    return error


def _complete(future: Future[Any] | None, result: Any = None, error: BaseException | None = None) -> None:
    """Resolve ``future`` unless the waiter already gave up on it (cancelled after its deadline);
    None (a row :meth:`JournalWriter.append` queued) has nobody to tell."""
    if future is None or future.done():
        return
    if error is None:
        future.set_result(result)
    else:
        future.set_exception(error)


#: seconds a row nobody waits for may wait, in a file, to be committed with the rows that follow
LINGER_S = 0.05
#: the same for an in-memory store: its rows are lost with the process whenever they land, so
#: landing them early buys nothing, while each commit costs the deciding thread GIL hand-overs.
#: Bounded all the same, so the journal's commit age (a metric worth an alert) stays meaningful
MEMORY_LINGER_S = 1.0
#: rows queued that end a linger (bounds the memory rows waiting to land)
LINGER_ROWS = 10_000


class JournalWriter:
    """Owns a :class:`StateStore` and group-commits journal rows, on its thread or the caller's.

    Parameters
    ----------
    store : the opened store; from now on only this writer uses it (one committer at a time).
    max_batch : rows written in one transaction at most.
    max_pending : rows kept for retry while the store fails; older ones are dropped beyond this.
    retry_interval_s : wait between retries while the store fails.
    linger_s : how long the thread waits after a non-urgent row before committing (0: no wait,
        ``math.inf``: until something else ends the wait); default :data:`LINGER_S` for a file,
        :data:`MEMORY_LINGER_S` for an in-memory store.
    linger_rows : queued rows that end a linger at once; default :data:`LINGER_ROWS`, or the
        store's ``max_journal_rows`` when smaller (a bounded ring queues no more than it keeps).
    """

    def __init__(
        self,
        store: StateStore,
        *,
        max_batch: int = 1024,
        max_pending: int = 100_000,
        retry_interval_s: float = 0.05,
        linger_s: float | None = None,
        linger_rows: int | None = None,
    ) -> None:
        self._store = store
        self._max_batch = max_batch
        self._max_pending = max_pending
        self._retry_interval_s = retry_interval_s
        if linger_s is None:
            linger_s = LINGER_S if store.persistent else MEMORY_LINGER_S
        self._linger_s = linger_s
        if linger_rows is None:
            linger_rows = min(LINGER_ROWS, store.max_journal_rows or LINGER_ROWS)
        self._linger_rows = linger_rows
        self._work = threading.Event()  # set while items are queued (or close was called)
        self._wake = threading.Event()  # set by urgent work: ends a linger
        self._lock = threading.Lock()  # guards _items, _unwritten, _closing and _pending_safety
        self._commit_lock = threading.Lock()  # one committer at a time: rows land in queue order
        self._items: deque[_Item] = deque()
        self._urgent = 0  # queued items that end a linger: urgent rows, calls, safety states
        self._unwritten: dict[str, _Row] = {}  # submitted, not yet committed: read_decision's memory
        self._last_decision: str | None = None  # the id of the newest decision row queued (not an event)
        self._closing = False  # close() was called: nothing may be queued after it
        self._retry: list[_Row] = []
        self._pending_peak: float | None = None
        # the latest safety state not yet durable, and every future waiting for it (or an older one)
        self._pending_safety: tuple[TradingState, str, bool, bool, list[Future[None]]] | None = None
        # the halt the store held at the last commit (another process's kill switch, say); a resume
        # bumps the epoch, so a read that began before it can never re-halt the resumed manager
        self._halted_in_store: str | None = None
        self._epoch = 0
        self._healthy = True
        self._gave_up = False  # a commit of the current drain failed: no further attempts in it
        self._last_error: str | None = None
        self._committed = 0
        self._last_commit_ts: float | None = None
        self._dropped = 0
        self._thread = threading.Thread(target=self._run, name="advanced-risk-journal", daemon=True)
        self._thread.start()

    # -- what callers use --------------------------------------------------------------------------
    @property
    def healthy(self) -> bool:
        """False from a failed commit until the next successful one."""
        return self._healthy

    @property
    def last_error(self) -> str | None:
        """The message of the last failed commit (None if none failed)."""
        return self._last_error

    @property
    def committed(self) -> int:
        """Rows made durable by this writer."""
        return self._committed

    @property
    def last_commit_ts(self) -> float | None:
        """Unix time (``time.time()``) of the last commit that made decision rows durable; None
        before the first. Its age tells a monitor that the journal has stopped landing rows."""
        return self._last_commit_ts

    @property
    def pending(self) -> int:
        """Rows waiting for a retry after a failed commit."""
        return len(self._retry)

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has been called (the writer then takes no new work)."""
        return self._closing

    @property
    def last_decision(self) -> str | None:
        """The id of the newest decision row this writer queued (operator events left out), None
        before the first: what a snapshot saved at close is stamped with."""
        return self._last_decision

    @property
    def dropped(self) -> int:
        """Rows dropped because more than ``max_pending`` waited for a failing store."""
        return self._dropped

    @property
    def evicted(self) -> int:
        """Rows a bounded in-memory store deleted to keep its newest ``max_journal_rows``.

        Unlike :attr:`dropped`, nothing failed: the ring keeps the newest rows by design.
        """
        return self._store.evicted

    def submit(
        self,
        decision_id: str,
        payload: Mapping[str, Any] | str,
        peak_equity: float | None = None,
        *,
        urgent: bool = True,
    ) -> Future[None]:
        """Queue one decision (and an optional new peak equity); the future completes once durable.

        ``urgent=False`` for a row nobody waits for: it may linger up to ``linger_s`` to be committed
        with the rows that follow it.

        Raises
        ------
        InvalidInputError
            At once, on the caller's thread, for a row that no commit could ever write:
            ``decision_id`` empty, not a string or still queued, ``payload`` neither JSON text nor
            a mapping JSON can represent (a mapping is encoded here), ``peak_equity`` not a finite
            number > 0. A ``decision_id`` the store holds already fails the row's future with
            :class:`DuplicateDecisionError` at its commit (the other rows of the commit land).
        """
        done: Future[None] = Future()
        self._queue(decision_id, payload, peak_equity, done, urgent)
        return done

    def append(
        self,
        decision_id: str,
        payload: Mapping[str, Any] | str,
        peak_equity: float | None = None,
        *,
        urgent: bool = False,
    ) -> None:
        """Queue one decision nobody waits for: :meth:`submit` without its future.

        A future per row costs the deciding thread its creation and the writer thread its
        completion under the GIL (~2-3 us per row, milliseconds per commit of a thousand rows,
        during which the decisions that share the GIL wait). The row lands as a submitted one does,
        and the same ``InvalidInputError`` refuses it at once; a failed commit keeps it for retry.
        Queued after :meth:`close` began, it is dropped with a ``journal_row_dropped`` event.
        """
        self._queue(decision_id, payload, peak_equity, None, urgent)

    def _queue(
        self,
        decision_id: str,
        payload: Mapping[str, Any] | str,
        peak_equity: float | None,
        done: Future[None] | None,
        urgent: bool,
    ) -> None:
        if not isinstance(payload, str):  # the text the row will hold; InvalidInputError names it
            payload = journal_row(decision_id, payload, 0.0)[2]
        elif not isinstance(decision_id, str) or not decision_id:
            raise InvalidInputError(f"decision_id must be a non-empty string, got {decision_id!r}")
        if peak_equity is not None and not _positive(peak_equity):
            raise InvalidInputError(f"peak_equity must be a finite number > 0 or None, got {peak_equity!r}")
        row = _Row(decision_id, payload, peak_equity, done, urgent)
        with self._lock:
            if self._closing:
                if done is None:
                    log.warning("journal_row_dropped", decision_id=decision_id, why="writer closed")
                else:
                    done.set_exception(StateStoreError(f"journal of {decision_id!r} failed: writer closed"))
                return
            if decision_id in self._unwritten:  # one commit would write both: neither would land
                raise InvalidInputError(f"decision_id {decision_id!r} is queued already (ids are unique)")
            self._unwritten[decision_id] = row
            if not payload.startswith('{"event":'):
                self._last_decision = decision_id
            self._items.append(row)
            self._urgent += urgent
            backlog = len(self._items)
            if backlog == 1:  # the queue was empty; _take clears _work only when it finds it empty
                self._work.set()  # under the lock: no later row can find the queue busy and unsignalled
        if urgent or backlog >= self._linger_rows:
            self._wake.set()

    def commit_now(self, done: Future[None], timeout: float) -> bool:
        """Commit everything queued on the calling thread, so that ``done`` completes now.

        For a caller that must return a durable row within a deadline (see the module docstring).
        Waits at most ``timeout`` seconds for the commit lock (the writer thread may be mid-commit)
        and for another process's lock on the file. A failing store is left to the writer thread,
        which retries with back-off: nothing is attempted here while the writer is unhealthy.

        Returns
        -------
        bool
            Whether ``done`` has completed (its row is durable, or it failed).
        """
        if done.done() or not self._healthy or self._closing:
            return done.done()
        if not self._commit_lock.acquire(timeout=max(timeout, 0.0)):
            return done.done()
        healthy = True
        try:
            if not done.done():
                try:
                    with self._store.busy_timeout(max(timeout, 0.0)):
                        healthy = self._drain()
                except StateStoreError as exc:  # the file is gone or closed: the thread retries
                    self._fail(self._retry, None, exc)
                    healthy = False
        finally:
            self._commit_lock.release()
        if not healthy:
            self._work.set()  # the writer thread takes over the retries
        return done.done()

    def retry_now(self) -> bool:
        """While the store fails: one attempt, on the calling thread and without waiting, at what
        it holds back (rows, peak, safety state); returns whether the writer is healthy now.

        Called at every decision, so the first decision after a store heals finds it healthy. A
        failing attempt costs one refused ``BEGIN`` (~50 us); if the writer thread is mid-retry
        (holding the commit lock), nothing is attempted.
        """
        if self._healthy or self._closing:
            return self._healthy
        if not self._commit_lock.acquire(blocking=False):
            return False
        try:
            with self._store.busy_timeout(0.0):
                self._drain()
        except StateStoreError as exc:  # the file is gone or closed
            self._fail(self._retry, None, exc)
        finally:
            self._commit_lock.release()
        return self._healthy

    def set_safety_state(
        self,
        state: TradingState,
        reason: str,
        kill_switch: bool,
        *,
        resume: bool = False,
        urgent: bool = True,
    ) -> Future[None]:
        """Make the safety state durable: written ahead of any row queued after it, and retried at
        every commit until it lands (a failed write is never dropped). A newer state replaces one
        still pending; the futures of both complete when the newer lands. Only a ``resume`` lowers
        a halt stored by another process (:meth:`StateStore.set_safety_state`).

        ``urgent=False`` (nobody waits for it) does not end a linger: the state lands with the next
        commit, still ahead of every row queued after it.
        """
        try:  # a state no store could write would be retried ahead of every row, for ever
            state = TradingState(state)
        except ValueError:
            allowed = [s.value for s in TradingState]
            raise InvalidInputError(f"state must be one of {allowed}, got {state!r}") from None
        done: Future[None] = Future()
        with self._lock:
            if self._closing:
                done.set_exception(StateStoreError("safety state write failed: writer closed"))
                return done
            waiting = [] if self._pending_safety is None else self._pending_safety[4]
            if resume:
                self._epoch += 1
                self._halted_in_store = None
            self._pending_safety = (state, str(reason), bool(kill_switch), resume, [*waiting, done])
            if urgent:
                self._items.append(_SAFETY)
                self._urgent += 1
        if urgent:
            self._work.set()
            self._wake.set()
        return done

    @property
    def halted_in_store(self) -> str | None:
        """The reason of a HALTED state (or kill switch) the file store held at the last commit,
        whoever wrote it; None when it held none, for an in-memory store, or since a resume."""
        return self._halted_in_store

    @property
    def safety_pending(self) -> bool:
        """Whether a safety state is waiting to be durable (retried at every commit)."""
        return self._pending_safety is not None

    def call(self, fn: Callable[[StateStore], T], *, ordered: bool = True) -> Future[T]:
        """Run ``fn(store)`` after everything queued before it is committed (on whichever thread
        commits next).

        The future fails with ``StateStoreError`` after :meth:`close` (at once), and while the store
        fails the rows (or the trading state) queued before the call: they are kept for retry, and
        ``fn`` does not run, so nothing it writes can land ahead of them. ``ordered=False`` runs
        ``fn`` all the same (a read, say: it answers what the store holds).
        """
        done: Future[T] = Future()
        with self._lock:
            if self._closing:
                done.set_exception(StateStoreError("journal call failed: writer closed"))
                return done
            self._items.append(_Call(fn, done, ordered))
            self._urgent += 1
        self._work.set()
        self._wake.set()
        return done

    def read_decision(self, decision_id: str) -> dict[str, Any] | None:
        """The journal row of ``decision_id`` as JSON data, whether committed yet or not.

        Parameters
        ----------
        decision_id : the id the row was submitted under.

        Returns
        -------
        dict or None
            The row's payload decoded (``json.loads`` of the stored JSON): from memory while the row
            is queued, lingering or kept for retry, else from the store; None for an unknown id,
            and for a row a bounded in-memory store has evicted (see :attr:`evicted`).

        Raises
        ------
        StateStoreError
            If the store fails the read, or the writer is closed (read the file instead).

        Notes
        -----
        A committed row is read after everything queued before the read is committed, so the call
        blocks until then (up to the store's busy timeout while another connection holds the
        lock). A row not yet committed is answered at once.
        """
        with self._lock:
            row = self._unwritten.get(decision_id)
        if row is not None:
            text = (
                row.payload if isinstance(row.payload, str) else journal_row(decision_id, row.payload, 0.0)[2]
            )
            data: dict[str, Any] = json.loads(text)
            return data
        entry = self.call(lambda store: store.get_decision(decision_id), ordered=False).result()
        return None if entry is None else entry.payload

    def flush(self) -> Future[None]:
        """A future that completes once every row queued before it has been committed; it fails
        with ``StateStoreError`` if the store fails them (they stay kept for retry: flush again)."""
        return self.call(lambda store: None)

    def close(self, timeout: float = 5.0) -> None:
        """Commit what is queued, stop the thread and close the store (again: wait for it again)."""
        with self._lock:
            self._closing = True  # under the lock: nothing is queued after it
        self._work.set()
        self._wake.set()
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.error("journal_close_timeout", timeout_s=timeout, pending=len(self._retry))
            return
        self._store.close()

    # -- committing (the writer thread, or the caller in commit_now) --------------------------------
    def _behind(self) -> bool:
        return bool(self._retry) or self._pending_peak is not None or self._pending_safety is not None

    def _take(self, limit: int | None = None) -> list[_Item]:
        """Up to ``max_batch`` (and ``limit``) queued items, oldest first (clears ``_work`` once the
        queue is empty)."""
        with self._lock:
            n = min(len(self._items), self._max_batch, len(self._items) if limit is None else limit)
            batch = [self._items.popleft() for _ in range(n)]
            self._urgent -= sum(not isinstance(item, _Row) or item.urgent for item in batch)
            if not self._items and not self._closing:
                self._work.clear()
        return batch

    def _drain(self, *, arrived: bool = True) -> bool:
        """Commit what is queued, in order (the caller holds the commit lock); whether healthy.

        ``arrived=False`` (the writer thread) commits only the items queued when the drain began:
        rows that arrive meanwhile linger for the next one. Each SQLite step hands the GIL over, so
        while the deciding thread computes back to back every transaction of the writer stretches
        over several of its switch intervals; draining until the queue is empty then never ends,
        and the deciding thread hands the GIL over for a transaction of a few rows at a time, all
        the time (p50 +75 us, p99 +300-400 us of a synchronous decision, measured).

        At most one commit attempt fails per drain: after it, the rest are kept for the retry (a
        caller's time budget is spent once, not once per queued call).
        """
        self._gave_up = False
        with self._lock:
            left = None if arrived else len(self._items)
        while batch := self._take(left):  # also clears _work when nothing is queued
            if left is not None:
                left -= len(batch)
            rows: list[_Row] = []
            for item in batch:
                if isinstance(item, _Row):
                    rows.append(item)
                elif isinstance(item, _Call):
                    self._commit(rows)  # a call sees every row queued before it
                    rows = []
                    self._run_call(item)
            self._commit(rows)
        if self._behind():
            self._commit([])  # a queued safety state (or a retry) with no row behind it
        return self._healthy

    def _run_call(self, call: _Call) -> None:
        # a call runs after earlier rows and safety state are durable; while the store fails them,
        # an ordered call fails too (a flush must never report durable what is not)
        if self._behind():
            self._commit([])
        if call.ordered and not self._healthy:
            error = StateStoreError(
                f"journal call failed: {len(self._retry)} earlier rows"
                f"{' and the trading state' if self._pending_safety is not None else ''}"
                f" not durable yet (kept for retry): {self._last_error}"
            )
            _complete(call.done, error=error)
            return
        try:
            result = call.fn(self._store)
        except BaseException as exc:  # handed to the waiter, never raised on this thread
            _complete(call.done, error=exc)
        else:
            _complete(call.done, result)

    def _write_safety(self) -> bool:
        """Write the pending safety state; True when nothing is left pending."""
        pending = self._pending_safety
        if pending is None:
            return True
        state, reason, kill, resume, waiting = pending
        self._store.set_safety_state(state, reason, kill, resume=resume)  # StateStoreError: kept
        with self._lock:
            if self._pending_safety is pending:  # else a newer state arrived meanwhile: write it next
                self._pending_safety = None
        for done in waiting:
            _complete(done)
        return self._pending_safety is None

    def _commit(self, rows: list[_Row]) -> None:
        if self._gave_up:  # a commit of this drain failed already: one attempt per drain, no more
            self._keep(self._retry + rows)
            return
        rows = self._retry + rows
        epoch = self._epoch
        peaks = [r.peak_equity for r in rows if r.peak_equity is not None]
        if self._pending_peak is not None:
            peaks.append(self._pending_peak)
        try:  # the safety state first: a decision row never lands ahead of the state it reports
            while not self._write_safety():
                pass
        except Exception as exc:  # the store failed: the thread lives on
            self._fail(rows, max(peaks, default=None), _store_error(exc))
            return
        if not rows and not peaks:
            if not self._healthy:
                log.info("journal_recovered", rows=0)
            self._healthy = True
            return
        rows, error = self._write_rows(rows)
        if error is not None:
            self._fail(rows, max(peaks, default=None), error)
            return
        self._committed += len(rows)
        if rows:
            self._last_commit_ts = time.time()
        self._retry = []
        self._forget(rows)  # only now: until the commit, read_decision answers from memory
        try:  # the rows are durable now; a failed peak update is retried on its own
            if peaks:
                self._store.raise_peak_equity(max(peaks))
        except Exception as exc:  # the store failed: the thread lives on
            self._fail([], max(peaks), _store_error(exc))
        else:
            self._pending_peak = None
            if not self._healthy:
                log.info("journal_recovered", rows=len(rows))
            self._healthy = True
        for r in rows:
            _complete(r.done)
        if rows and self._store.persistent:
            self._read_halt(epoch)

    def _write_rows(self, rows: list[_Row]) -> tuple[list[_Row], StateStoreError | None]:
        """Write ``rows`` in one transaction; returns the rows meant to land and the failure (None
        once they have landed).

        A row whose id the store holds already is rejected: its future fails with
        :class:`DuplicateDecisionError` and the others are written without it (retrying it could
        never succeed, and would hold back every row queued after it).
        """
        while rows:
            try:
                self._store.append_decisions(
                    [(r.decision_id, r.payload) for r in rows], timestamps=[r.ts for r in rows]
                )
            except DuplicateDecisionError as exc:
                try:
                    known = [r for r in rows if self._store.get_decision(r.decision_id) is not None]
                except Exception as read:  # the store failed: the thread lives on
                    return rows, _store_error(read)
                if not known:  # no clash with a stored row after all: keep them all for the retry
                    return rows, exc
                log.error("journal_rows_rejected", rows=len(known), first=known[0].decision_id)
                self._forget(known)
                for r in known:
                    _complete(r.done, error=DuplicateDecisionError(f"{r.decision_id!r} is journaled already"))
                rejected = {id(r) for r in known}
                rows = [r for r in rows if id(r) not in rejected]
            except Exception as exc:  # the store failed: the thread lives on
                return rows, _store_error(exc)
            else:
                break
        return rows, None

    def _read_halt(self, epoch: int) -> None:
        """Note a halt the file holds (written by this process or another); a read that began
        before a resume was asked for is discarded."""
        try:
            stored = self._store.load()
        except StateStoreError:
            return  # the next commit reads again
        halted = stored.kill_switch or stored.trading_state is TradingState.HALTED
        with self._lock:
            if epoch == self._epoch:
                self._halted_in_store = (stored.reason or "halted") if halted else None

    def _forget(self, rows: list[_Row]) -> None:
        """Drop committed (or dropped) rows from the in-memory index, unless the id was resubmitted."""
        if not rows:
            return
        with self._lock:
            for r in rows:
                if self._unwritten.get(r.decision_id) is r:
                    del self._unwritten[r.decision_id]

    def _fail(self, rows: list[_Row], peak: float | None, exc: StateStoreError) -> None:
        """Keep ``rows`` (the retry list and the batch that failed) and ``peak`` for the retry."""
        if self._healthy:
            log.error("journal_commit_failed", error=str(exc), rows=len(rows))
        self._healthy, self._last_error, self._gave_up = False, str(exc), True
        self._keep(rows)
        if peak is not None:
            self._pending_peak = peak if self._pending_peak is None else max(peak, self._pending_peak)

    def _keep(self, rows: list[_Row]) -> None:
        """Make ``rows`` the retry list, dropping the oldest beyond ``max_pending``."""
        overflow = len(rows) - self._max_pending
        if overflow > 0:
            self._dropped += overflow
            log.error("journal_rows_dropped", rows=overflow, kept=self._max_pending)
            self._forget(rows[:overflow])
            rows = rows[overflow:]
        self._retry = rows

    # -- the writer thread -------------------------------------------------------------------------
    def _lingering(self) -> float:
        """Seconds the oldest queued item may still linger (``math.inf``: no limit): a row nobody
        waits for yet (or one whose caller is about to commit it inline) waits ``linger_s`` from
        its submission, unless ``linger_rows`` items are queued."""
        with self._lock:
            head = self._items[0] if self._items else None
            urgent = self._urgent > 0 or len(self._items) >= self._linger_rows
        if self._closing or urgent or not isinstance(head, _Row):
            return 0.0
        return min(max(self._linger_s - (time.time() - head.ts), 0.0), self._linger_s)  # clock steps

    def _run(self) -> None:
        while True:
            queued = self._work.wait(self._retry_interval_s if self._behind() else None)
            if queued and (wait := self._lingering()) > 0.0:
                # gather what follows; urgent work (or linger_rows rows) ends the wait
                self._wake.wait(None if math.isinf(wait) else wait)
            self._wake.clear()  # after the wait: work queued since is drained below or next turn
            with self._commit_lock:
                # while this thread waited for the lock, a caller may have committed inline and
                # queued its next row: that one is the caller's to commit (it lingers again)
                if queued and self._lingering() > 0.0:
                    continue
                self._drain(arrived=self._closing)  # a retry too, when nothing was queued
                if self._closing and not self._items:
                    break
            if not self._healthy:
                time.sleep(self._retry_interval_s)  # back off: the store needs time (lock, disk)
        if self._retry:
            log.error("journal_rows_lost_on_close", rows=len(self._retry), error=self._last_error)
        if self._pending_safety is not None:
            log.error("journal_safety_state_lost_on_close", error=self._last_error)
