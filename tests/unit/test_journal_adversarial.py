"""Adversarial checks of JournalWriter's snapshot drain, lingering rows and non-urgent safety states.

Every submitted row lands exactly once and in each submitter's order, whoever commits it (the
writer thread's snapshot drain, a caller's inline ``commit_now``, a flush, a call, close); a safety
state nobody waits for is never lost across store failures and always lands ahead of the rows queued
after it; close ends a 1 s memory linger at once; the writer never spins when idle.
"""

from __future__ import annotations

import asyncio
import gc
import json
import random
import threading
import time
from concurrent.futures import Future
from typing import Any

import numpy as np
import pytest

from advanced_risk.config import RiskConfig
from advanced_risk.engine.journal import MEMORY_LINGER_S, JournalWriter
from advanced_risk.engine.state import INSERT_CHUNK, StateStore
from advanced_risk.errors import StateStoreError
from advanced_risk.manager import AdvancedRiskManager
from advanced_risk.types import TradingState

LONG_LINGER_S = 5.0  # a test that waited for this linger would blow its own timeouts


def _ids(journal: JournalWriter, limit: int = 100_000) -> list[str]:
    return journal.call(lambda s: [e.decision_id for e in s.journal(limit=limit)]).result(timeout=5.0)


def _assert_idle(journal: JournalWriter) -> None:
    """The writer thread (and nothing else of ours) burns no CPU while idle."""
    time.sleep(0.05)
    start = time.process_time()
    time.sleep(0.3)
    assert time.process_time() - start < 0.1
    assert journal._thread.is_alive()


class EventLog:
    """Wraps a store's writes so that the order in which things landed can be checked."""

    def __init__(self, store: StateStore) -> None:
        self.events: list[tuple[str, Any]] = []
        self.fail_safety = 0  # failures still to inject
        self.fail_append = 0
        self._lock = threading.Lock()
        append, safety = store.append_decisions, store.set_safety_state

        def append_decisions(entries, timestamps=None):  # type: ignore[no-untyped-def]
            entries = list(entries)
            with self._lock:
                if self.fail_append:
                    self.fail_append -= 1
                    raise StateStoreError("append_decisions failed: injected")
            n = append(entries, timestamps=timestamps)
            with self._lock:
                self.events.extend(("row", i) for i, _ in entries)
            return n

        def set_safety_state(state, reason, kill_switch, *, resume=False):  # type: ignore[no-untyped-def]
            with self._lock:
                if self.fail_safety:
                    self.fail_safety -= 1
                    raise StateStoreError("set_safety_state failed: injected")
            safety(state, reason, kill_switch, resume=resume)
            with self._lock:
                self.events.append(("safety", reason))

        store.append_decisions = append_decisions  # type: ignore[method-assign]
        store.set_safety_state = set_safety_state  # type: ignore[method-assign]

    def index(self, kind: str, value: Any) -> int:
        return self.events.index((kind, value))


# -- many threads, every entry point -------------------------------------------------------------------


@pytest.mark.parametrize("linger_s", [0.0, 0.002, MEMORY_LINGER_S, LONG_LINGER_S])
def test_concurrent_submitters_land_every_row_once_in_each_threads_order(linger_s: float) -> None:
    store = StateStore(None)
    journal = JournalWriter(store, linger_s=linger_s, max_batch=7)  # small batches: many takes
    threads, per_thread = 6, 150
    errors: list[BaseException] = []
    futures: dict[str, Future[None]] = {}
    futures_lock = threading.Lock()
    start = threading.Barrier(threads)

    def worker(k: int) -> None:
        rng = random.Random(k)
        try:
            start.wait()
            for i in range(per_thread):
                decision_id = f"t{k}-{i:04d}"
                payload = json.dumps({"k": k, "i": i, "text": f'it\'s "q" ü {k}'})
                urgent = rng.random() < 0.2
                done = journal.submit(
                    decision_id, payload, None if i % 5 else float(k * 1000 + i + 1), urgent=urgent
                )
                with futures_lock:
                    futures[decision_id] = done
                roll = rng.random()
                if roll < 0.05:
                    journal.commit_now(done, timeout=2.0)
                    assert done.done()
                elif roll < 0.08:
                    journal.flush().result(timeout=5.0)
                    assert done.done()
                elif roll < 0.10:
                    assert journal.call(lambda s, d=decision_id: s.get_decision(d) is not None).result(
                        timeout=5.0
                    )
                # a row is always found, queued or committed
                back = journal.read_decision(f"t{k}-{rng.randrange(i + 1):04d}")
                assert back is not None
                assert back["k"] == k
        except BaseException as exc:  # handed to the main thread
            errors.append(exc)

    pool = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(timeout=30.0)
    try:
        assert not errors, errors[0]
        journal.flush().result(timeout=5.0)
        assert all(f.done() and f.exception() is None for f in futures.values())
        ids = _ids(journal)
        assert len(ids) == len(set(ids)) == threads * per_thread
        for k in range(threads):
            mine = [i for i in ids if i.startswith(f"t{k}-")]
            assert mine == [f"t{k}-{i:04d}" for i in range(per_thread)]
        assert journal.committed == threads * per_thread
        assert journal.healthy
        assert journal.pending == 0
        assert store.load().peak_equity == max(
            k * 1000 + i + 1 for k in range(threads) for i in range(0, per_thread, 5)
        )
        _assert_idle(journal)
    finally:
        journal.close()


def test_commit_now_racing_the_writer_thread_keeps_the_global_submission_order() -> None:
    # one submitter, rows alternately committed inline and left to the thread's short linger
    store = StateStore(None)
    journal = JournalWriter(store, linger_s=0.001, max_batch=3)
    try:
        for i in range(400):
            done = journal.submit(f"r{i:04d}", "{}", urgent=False)
            if i % 3 == 0:
                assert journal.commit_now(done, timeout=2.0)
            if i % 50 == 0:
                time.sleep(0.002)  # let the thread's linger end mid-stream
        journal.flush().result(timeout=5.0)
        assert _ids(journal) == [f"r{i:04d}" for i in range(400)]
        _assert_idle(journal)
    finally:
        journal.close()


def test_the_snapshot_drain_never_leaves_a_row_stranded_behind_a_long_linger() -> None:
    # rows keep arriving during each commit (slow store); after the last one, nothing is queued by
    # anyone: each row must still land within about one linger of the last commit
    store = StateStore(None)
    append = store.append_decisions

    def slow(entries, timestamps=None):  # type: ignore[no-untyped-def]
        time.sleep(0.01)
        return append(entries, timestamps=timestamps)

    store.append_decisions = slow  # type: ignore[method-assign]
    journal = JournalWriter(store, linger_s=0.02)
    try:
        futures = []
        for i in range(60):
            futures.append(journal.submit(f"s{i}", "{}", urgent=False))
            time.sleep(0.002)
        deadline = time.monotonic() + 1.0
        for f in futures:
            f.result(timeout=max(deadline - time.monotonic(), 0.01))
        assert _ids(journal) == [f"s{i}" for i in range(60)]
        _assert_idle(journal)
    finally:
        journal.close()


@pytest.mark.timing  # wall-clock bound: run alone, not beside a busy worker
def test_a_steady_stream_of_lingering_rows_lands_each_within_about_one_linger() -> None:
    # the snapshot drain leaves rows that arrive mid-commit for the next one: none may starve
    store = StateStore(None)
    journal = JournalWriter(store, linger_s=0.03)
    late: list[float] = []

    def track(future: Future[None], submitted: float) -> None:
        future.add_done_callback(lambda _: late.append(time.monotonic() - submitted))

    gc.collect()
    gc.disable()  # a full collection of a long test process's heap stalls both threads for its length
    try:
        end = time.monotonic() + 0.5
        n = 0
        while time.monotonic() < end:
            track(journal.submit(f"s{n}", "{}", urgent=False), time.monotonic())
            n += 1
            if n % 20 == 0:
                time.sleep(0.001)
        time.sleep(0.2)  # nobody flushes: the linger alone lands the tail
        assert len(late) == n
        assert max(late) < 0.25
        assert _ids(journal) == [f"s{i}" for i in range(n)]
    finally:
        gc.enable()
        journal.close()


# -- close under a 1 s memory linger ---------------------------------------------------------------------


def test_close_under_the_memory_linger_commits_every_row_at_once() -> None:
    default = JournalWriter(StateStore(None))
    assert default._linger_s == MEMORY_LINGER_S  # memory: 1 s by default
    default.close()
    store = StateStore(None)
    # a linger far beyond any stall of a loaded machine: a 1 s one can end before the check below
    journal = JournalWriter(store, linger_s=60.0)
    futures = [journal.submit(f"m{i}", {"i": i}, urgent=False) for i in range(500)]
    safety = journal.set_safety_state(TradingState.REDUCING, "late", False, urgent=False)
    tail = [journal.submit(f"n{i}", {"i": i}, urgent=False) for i in range(5)]
    time.sleep(0.05)  # the thread is lingering now
    assert not any(f.done() for f in futures)
    start = time.monotonic()
    journal.close(timeout=2.0)
    assert time.monotonic() - start < 5.0  # far under the linger: close does not wait it out
    assert all(f.done() and f.exception() is None for f in [*futures, *tail, safety])
    assert journal.committed == 505
    # the store is closed now; a later submit fails at once, never hangs
    late = journal.submit("after-close", "{}", urgent=False)
    with pytest.raises(StateStoreError, match="closed"):
        late.result(timeout=0.1)
    with pytest.raises(StateStoreError, match="closed"):
        journal.set_safety_state(TradingState.ACTIVE, "x", False, urgent=False).result(timeout=0.1)


def test_close_from_another_thread_while_submitters_run_loses_no_accepted_row() -> None:
    store = StateStore(None)
    log = EventLog(store)
    journal = JournalWriter(store)
    accepted: list[tuple[str, Future[None]]] = []
    stop = threading.Event()

    def submitter(k: int) -> None:
        i = 0
        while not stop.is_set():
            accepted.append((f"c{k}-{i}", journal.submit(f"c{k}-{i}", "{}", urgent=bool(i % 7 == 0))))
            i += 1
            if journal.closed:
                break

    pool = [threading.Thread(target=submitter, args=(k,)) for k in range(3)]
    for t in pool:
        t.start()
    time.sleep(0.05)
    journal.close(timeout=2.0)
    stop.set()
    for t in pool:
        t.join(timeout=5.0)
    landed = {v for kind, v in log.events if kind == "row"}
    for decision_id, future in accepted:
        assert future.done(), decision_id
        if future.exception() is None:
            assert decision_id in landed
        else:  # refused: queued after close
            assert decision_id not in landed
            assert isinstance(future.exception(), StateStoreError)
    rows = [v for kind, v in log.events if kind == "row"]
    assert len(rows) == len(set(rows))


# -- a safety state nobody waits for, through store failures ---------------------------------------------


@pytest.mark.parametrize(("fail_safety", "fail_append"), [(3, 0), (0, 3), (2, 2), (1, 5)])
def test_a_non_urgent_safety_state_survives_store_failures_and_lands_ahead_of_later_rows(
    fail_safety: int, fail_append: int
) -> None:
    store = StateStore(None)
    log = EventLog(store)
    journal = JournalWriter(store, linger_s=LONG_LINGER_S, retry_interval_s=0.005)
    try:
        before = [journal.submit(f"b{i}", "{}", urgent=False) for i in range(3)]
        log.fail_safety, log.fail_append = fail_safety, fail_append
        safety = journal.set_safety_state(TradingState.HALTED, "drawdown", False, urgent=False)
        after = [journal.submit(f"a{i}", "{}", urgent=False) for i in range(3)]
        urgent = journal.submit("urgent", "{}")  # ends the linger; the store fails for a while
        urgent.result(timeout=2.0)
        for f in [*before, safety, *after]:
            f.result(timeout=2.0)
        assert journal.healthy
        assert not journal.safety_pending
        assert log.fail_safety == 0
        assert log.fail_append == 0
        at = log.index("safety", "drawdown")
        for i in range(3):
            assert log.index("row", f"a{i}") > at
        assert log.index("row", "urgent") > at
        ids = _ids(journal)
        assert ids == ["b0", "b1", "b2", "a0", "a1", "a2", "urgent"]
        state = journal.call(lambda s: s.load()).result(timeout=2.0)
        assert (state.trading_state, state.reason) == (TradingState.HALTED, "drawdown")
        _assert_idle(journal)
    finally:
        journal.close()


def test_a_non_urgent_safety_state_pending_while_the_store_fails_is_retried_on_its_own() -> None:
    # nothing queued behind it: the failing writer's retry loop still lands it once the store heals
    store = StateStore(None)
    log = EventLog(store)
    journal = JournalWriter(store, linger_s=LONG_LINGER_S, retry_interval_s=0.005)
    try:
        log.fail_append = 1
        first = journal.submit("x", "{}")  # fails once: the writer is unhealthy and retries
        log.fail_safety = 4
        safety = journal.set_safety_state(TradingState.HALTED, "halt", True, urgent=False)
        first.result(timeout=2.0)
        safety.result(timeout=2.0)
        assert journal.healthy
        assert not journal.safety_pending
        state = journal.call(lambda s: s.load()).result(timeout=2.0)
        assert state.kill_switch
        assert state.trading_state is TradingState.HALTED
        _assert_idle(journal)
    finally:
        journal.close()


def test_newer_non_urgent_safety_states_replace_older_ones_and_every_waiter_completes() -> None:
    store = StateStore(None)
    log = EventLog(store)
    journal = JournalWriter(store, linger_s=LONG_LINGER_S)
    try:
        waits = []
        for i, state in enumerate([TradingState.REDUCING, TradingState.HALTED, TradingState.REDUCING]):
            waits.append(journal.set_safety_state(state, f"s{i}", False, urgent=False))
            journal.submit(f"row{i}", "{}", urgent=False)
        journal.flush().result(timeout=2.0)
        assert all(w.done() and w.exception() is None for w in waits)
        assert [e for e in log.events if e[0] == "safety"] == [("safety", "s2")]
        # the non-resume write never lowers a stored HALTED; here none was stored before s2
        assert log.index("safety", "s2") < log.index("row", "row0")
        state = journal.call(lambda s: s.load()).result(timeout=2.0)
        assert state.trading_state is TradingState.REDUCING
    finally:
        journal.close()


def test_a_non_urgent_safety_state_set_during_a_commit_lands_ahead_of_rows_queued_after_it() -> None:
    store = StateStore(None)
    log = EventLog(store)
    journal = JournalWriter(store, linger_s=LONG_LINGER_S)
    inner = store.append_decisions
    during: list[Future[None]] = []

    def racing(entries, timestamps=None):  # type: ignore[no-untyped-def]
        entries = list(entries)
        if entries[0][0] == "first":  # mid-commit: a state change, then a row
            during.append(journal.set_safety_state(TradingState.HALTED, "mid", False, urgent=False))
            during.append(journal.submit("later", "{}", urgent=False))
        return inner(entries, timestamps=timestamps)

    store.append_decisions = racing  # type: ignore[method-assign]
    try:
        journal.submit("first", "{}").result(timeout=2.0)
        time.sleep(0.1)
        # the state lands at the end of that drain (nothing else pending); the row lingers
        assert not during[1].done()
        journal.flush().result(timeout=2.0)
        assert all(f.done() for f in during)
        assert log.index("row", "first") < log.index("safety", "mid") < log.index("row", "later")
    finally:
        journal.close()


# -- bounded ring, big batches, odd payloads -------------------------------------------------------------


def test_a_bounded_ring_keeps_the_newest_rows_and_read_decision_agrees() -> None:
    bound = 50
    store = StateStore(None, max_journal_rows=bound)
    journal = JournalWriter(store, linger_s=LONG_LINGER_S)
    try:
        futures = [journal.submit(f"r{i:04d}", {"i": i}, urgent=False) for i in range(3 * bound + 7)]
        # the ring's bound ends a linger once `bound` rows are queued; a tail of fewer rows left by
        # a writer that woke mid-stream lingers by design (up to the 5 s here): the flush ends it
        journal.flush().result(timeout=2.0)
        assert all(f.done() and f.exception() is None for f in futures)
        assert journal.pending == 0
        n = len(futures)
        assert _ids(journal) == [f"r{i:04d}" for i in range(n - bound, n)]
        assert journal.evicted == n - bound
        assert journal.read_decision(f"r{n - 1:04d}") == {"i": n - 1}
        assert journal.read_decision("r0000") is None
        _assert_idle(journal)
    finally:
        journal.close()


def test_a_bounded_ring_smaller_than_one_batch_keeps_only_the_newest() -> None:
    store = StateStore(None, max_journal_rows=2)
    journal = JournalWriter(store, linger_s=LONG_LINGER_S, max_batch=64)
    try:
        futures = [journal.submit(f"q{i}", "{}", urgent=bool(i == 9)) for i in range(10)]
        for f in futures:
            f.result(timeout=2.0)
        assert _ids(journal) == ["q8", "q9"]
        assert journal.evicted == 8
    finally:
        journal.close()


@pytest.mark.parametrize("count", [INSERT_CHUNK - 1, INSERT_CHUNK + 1, 2 * INSERT_CHUNK + 5])
def test_a_writer_batch_larger_than_one_insert_statement_lands_whole_and_in_order(count: int) -> None:
    store = StateStore(None)
    journal = JournalWriter(store, linger_s=LONG_LINGER_S, max_batch=100_000, linger_rows=100_000)
    try:
        texts = [
            "plain",
            "it's",
            'say "hi"',
            "ü€😀",
            "a\nb\tc",
            "\\",
            "'; DROP TABLE journal; --",
            "(?, ?, ?)",
        ]
        futures = [
            journal.submit(f"big{i}", {"i": i, "t": texts[i % len(texts)]}, urgent=False)
            for i in range(count)
        ]
        assert journal.flush().result(timeout=5.0) is None
        assert all(f.done() for f in futures)
        entries = journal.call(lambda s: s.journal(limit=count + 1)).result(timeout=5.0)
        assert [e.decision_id for e in entries] == [f"big{i}" for i in range(count)]
        assert [e.payload for e in entries] == [{"i": i, "t": texts[i % len(texts)]} for i in range(count)]
        assert journal.read_decision(f"big{count - 1}") == {
            "i": count - 1,
            "t": texts[(count - 1) % len(texts)],
        }
    finally:
        journal.close()


def test_a_failing_multi_row_insert_writes_none_of_its_rows() -> None:
    # a duplicate id in the second chunk: the whole transaction rolls back, the first chunk included
    store = StateStore(None)
    try:
        store.append_decisions([("dup", "{}")])
        entries = [(f"e{i}", "{}") for i in range(INSERT_CHUNK + 10)] + [("dup", "{}")]
        with pytest.raises(StateStoreError):
            store.append_decisions(entries)
        assert store.count() == 1
        assert store.get_decision("e0") is None
        store.append_decisions(entries[:-1])  # still usable
        assert store.count() == INSERT_CHUNK + 11
    finally:
        store.close()


# -- idle and wake-ups -------------------------------------------------------------------------------------


def test_the_writer_does_not_spin_after_assorted_sequences() -> None:
    store = StateStore(None, max_journal_rows=5)
    journal = JournalWriter(store, linger_s=0.01)
    try:
        _assert_idle(journal)
        journal.submit("a", "{}", urgent=False).result(timeout=2.0)
        _assert_idle(journal)
        journal.set_safety_state(TradingState.HALTED, "h", True, urgent=False)  # pending, nothing queued
        _assert_idle(journal)
        assert journal.safety_pending  # it woke nobody, as documented
        journal.flush().result(timeout=2.0)
        assert not journal.safety_pending
        done = journal.submit("b", "{}", urgent=False)
        journal.commit_now(done, timeout=1.0)  # taken inline under the thread's nose
        _assert_idle(journal)
        for i in range(12):  # past the ring's bound: linger_rows ends each wait
            journal.submit(f"c{i}", "{}", urgent=False)
        journal.flush().result(timeout=2.0)
        _assert_idle(journal)
        journal.read_decision("c11")
        journal._wake.set()  # a stale wake-up with nothing queued
        _assert_idle(journal)
    finally:
        journal.close()


def test_a_writer_recovering_from_failures_goes_back_to_sleep() -> None:
    store = StateStore(None)
    log = EventLog(store)
    journal = JournalWriter(store, linger_s=0.01, retry_interval_s=0.005)
    try:
        log.fail_append = 5
        journal.submit("z", "{}").result(timeout=2.0)
        assert journal.healthy
        _assert_idle(journal)
    finally:
        journal.close()


# -- the manager with its state in memory ------------------------------------------------------------------

ASSETS = ("aaa", "bbb", "ccc")


@pytest.fixture
def bars() -> Any:
    rng = np.random.default_rng(5)
    prices = np.full(len(ASSETS), 100.0)
    state = {"equity": 100_000.0, "scale": 1.0}

    def next_bar() -> tuple[dict[str, Any], dict[str, Any]]:
        nonlocal prices
        r = rng.normal(0.0003, 0.01, len(ASSETS))
        prices = prices * (1.0 + r)
        state["equity"] *= 1.0 + float(np.mean(r)) * 0.75
        market = {
            "returns": dict(zip(ASSETS, r.tolist(), strict=True)),
            "prices": dict(zip(ASSETS, prices.tolist(), strict=True)),
        }
        book = {"weights": {a: 0.25 for a in ASSETS}, "equity": state["equity"] * state["scale"]}
        return market, book

    next_bar.state = state  # type: ignore[attr-defined]
    return next_bar


def test_a_memory_manager_reads_back_every_decision_through_state_changes(bars: Any) -> None:
    config = RiskConfig(deadline_ms=200.0, tracker={"method": "fhs_ewma"}, drawdown_basis="equity")
    risk = AdvancedRiskManager(config)
    returned = []
    try:
        for _ in range(8):
            returned.append(risk.manage_risk_sync(*bars()))
        bars.state["scale"] = 0.6  # a 40 % loss: the decision itself moves the trading state
        for _ in range(3):
            returned.append(risk.manage_risk_sync(*bars()))
        assert returned[-1].trading_state is TradingState.HALTED
        journal = risk._journal
        assert journal is not None
        # the state change was queued without waking the writer; every row is readable already
        for d in returned:
            assert risk.read_decision(d.decision_id) == json.loads(d.to_json())
        asyncio.run(risk.flush())
        state = journal.call(lambda s: s.load()).result(timeout=2.0)
        assert state.trading_state is TradingState.HALTED
        assert asyncio.run(risk.engage_kill_switch("operator")).durable
        bars.state["scale"] = 1.0
        assert asyncio.run(risk.resume("all clear")).changed
        for _ in range(4):
            returned.append(risk.manage_risk_sync(*bars()))
        for d in returned:  # half lingering, half committed
            assert risk.read_decision(d.decision_id) == json.loads(d.to_json())
        asyncio.run(risk.flush())
        ids = [e.decision_id for e in journal.call(lambda s: s.journal(limit=1000)).result(timeout=2.0)]
        decisions = [i for i in ids if "-kill-switch-" not in i and "-resume-" not in i]
        assert decisions == [d.decision_id for d in returned]
        assert risk.metrics()["journal_healthy"]
        _assert_idle(journal)
    finally:
        risk.close_sync()


def test_a_memory_manager_under_concurrent_tasks_reads_back_every_decision_with_a_small_ring(
    bars: Any,
) -> None:
    ring = 25
    config = RiskConfig(
        deadline_ms=500.0, tracker={"method": "fhs_ewma"}, drawdown_basis="equity", memory_journal_rows=ring
    )

    async def main() -> list[Any]:
        async with AdvancedRiskManager(config) as risk:
            returned: list[Any] = []
            inputs = [bars() for _ in range(20)]
            returned += await asyncio.gather(*(risk.manage_risk(*bar) for bar in inputs))
            bars.state["scale"] = 0.6  # every later bar is deep in drawdown: a state change
            inputs = [bars() for _ in range(20)]
            returned += await asyncio.gather(*(risk.manage_risk(*bar) for bar in inputs))
            assert risk.trading_state == "halted"
            ids = {d.decision_id for d in returned}
            assert len(ids) == len(returned)
            found = {d.decision_id: risk.read_decision(d.decision_id) for d in returned}
            kept = [d for d in returned if found[d.decision_id] is not None]
            for d in kept:
                assert found[d.decision_id] == json.loads(d.to_json())
            journal = risk._journal
            assert journal is not None
            await risk.flush()
            state = journal.call(lambda s: s.load()).result(timeout=2.0)
            assert state.trading_state is TradingState.HALTED
            stored = [
                e.decision_id for e in journal.call(lambda s: s.journal(limit=1000)).result(timeout=2.0)
            ]
            assert len(stored) == ring
            newest = [d.decision_id for d in returned][-ring:]
            assert stored == newest  # no operator rows here: the newest decisions, in order
            for d in returned[-ring:]:
                assert risk.read_decision(d.decision_id) == json.loads(d.to_json())
            assert risk.metrics()["journal_evicted"] == len(returned) - ring
            return returned

    assert len(asyncio.run(main())) == 40
