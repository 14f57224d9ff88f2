"""JournalWriter: rows nobody waits for linger and are group-committed; urgent work never waits."""

from __future__ import annotations

import time
from concurrent.futures import Future

import pytest

from advanced_risk.engine.journal import MEMORY_LINGER_S, JournalWriter
from advanced_risk.engine.state import INSERT_CHUNK, StateStore
from advanced_risk.errors import InvalidInputError
from advanced_risk.types import TradingState

LONG_LINGER_S = 5.0  # far longer than any wait below: a test that waited for it would fail its timeout


def _writer(linger_s: float) -> JournalWriter:
    return JournalWriter(StateStore(None), linger_s=linger_s)


def test_rows_nobody_waits_for_are_committed_together_within_the_linger() -> None:
    journal = _writer(0.05)
    try:
        futures = [journal.submit(f"d{i}", "{}", urgent=False) for i in range(20)]
        for f in futures:
            f.result(timeout=2.0)
        assert journal.committed == 20
        assert journal.call(lambda s: s.count()).result(timeout=2.0) == 20
    finally:
        journal.close()


def test_an_urgent_row_is_committed_without_waiting_for_the_linger() -> None:
    journal = _writer(LONG_LINGER_S)
    try:
        lazy = journal.submit("lazy", "{}", urgent=False)
        start = time.monotonic()
        journal.submit("durable", "{}").result(timeout=2.0)
        lazy.result(timeout=2.0)  # queued before it: committed with it
        assert time.monotonic() - start < 2.0
    finally:
        journal.close()


def test_a_flush_or_a_query_ends_the_linger_and_sees_every_earlier_row() -> None:
    journal = _writer(LONG_LINGER_S)
    try:
        journal.submit("a", "{}", urgent=False)
        journal.flush().result(timeout=2.0)
        journal.submit("b", "{}", urgent=False)
        ids = journal.call(lambda s: [e.decision_id for e in s.journal()]).result(timeout=2.0)
        assert ids == ["a", "b"]
    finally:
        journal.close()


def test_close_commits_lingering_rows() -> None:
    journal = _writer(LONG_LINGER_S)
    future = journal.submit("last", "{}", urgent=False)
    start = time.monotonic()
    journal.close(timeout=2.0)
    assert time.monotonic() - start < 2.0
    assert future.done()


def test_a_row_keeps_the_time_it_was_submitted_not_the_time_it_was_written() -> None:
    journal = _writer(0.3)
    try:
        before = time.time()
        journal.submit("late", "{}", urgent=False).result(timeout=2.0)
        entry = journal.call(lambda s: s.get_decision("late")).result(timeout=2.0)
        assert entry is not None
        assert before <= entry.ts < before + 0.2  # written ~0.3 s later
    finally:
        journal.close()


def test_append_decisions_refuses_a_timestamp_count_that_does_not_match() -> None:
    store = StateStore(None)
    try:
        with pytest.raises(InvalidInputError, match="timestamps"):
            store.append_decisions([("a", "{}"), ("b", "{}")], timestamps=[1.0])
    finally:
        store.close()


def test_a_memory_store_lingers_longer_than_a_file_but_not_forever() -> None:
    journal = JournalWriter(StateStore(None))
    try:
        future = journal.submit("m", "{}", urgent=False)
        time.sleep(0.2)  # past a file's 50 ms linger
        assert not future.done()
        future.result(timeout=MEMORY_LINGER_S + 2.0)  # bounded: the commit-age metric stays honest
        assert journal.committed == 1
    finally:
        journal.close()


def test_linger_rows_queued_rows_end_the_linger() -> None:
    journal = JournalWriter(StateStore(None), linger_s=LONG_LINGER_S, linger_rows=5)
    try:
        futures = [journal.submit(f"r{i}", "{}", urgent=False) for i in range(5)]
        start = time.monotonic()
        for f in futures:
            f.result(timeout=2.0)
        assert time.monotonic() - start < 2.0
    finally:
        journal.close()


def test_a_bounded_memory_ring_queues_no_more_rows_than_it_keeps() -> None:
    journal = JournalWriter(StateStore(None, max_journal_rows=3), linger_s=LONG_LINGER_S)
    try:
        futures = [journal.submit(f"r{i}", "{}", urgent=False) for i in range(3)]
        for f in futures:
            f.result(timeout=2.0)  # three rows end the linger: none is evicted unread by the queue
    finally:
        journal.close()


def test_rows_queued_during_the_writers_commit_wait_for_the_next_one_in_order() -> None:
    store = StateStore(None)
    journal = JournalWriter(store, linger_s=LONG_LINGER_S)
    batches: list[list[str]] = []
    during: list[Future[None]] = []
    append = store.append_decisions

    def recording(entries, timestamps=None):  # type: ignore[no-untyped-def]
        ids = [decision_id for decision_id, _ in entries]
        batches.append(ids)
        if ids[0] == "first":  # rows decided while the writer commits
            during.extend(journal.submit(f"during{i}", "{}", urgent=False) for i in range(3))
        return append(entries, timestamps=timestamps)

    store.append_decisions = recording  # type: ignore[method-assign]
    try:
        journal.submit("first", "{}").result(timeout=2.0)
        time.sleep(0.3)
        # not swept into the commit under way: they linger for the next one like any other row
        assert not any(f.done() for f in during)
        journal.flush().result(timeout=2.0)
        assert all(f.done() for f in during)
        assert batches == [["first"], ["during0", "during1", "during2"]]
        ids = journal.call(lambda s: [e.decision_id for e in s.journal()]).result(timeout=2.0)
        assert ids == ["first", "during0", "during1", "during2"]
    finally:
        journal.close()


def test_a_safety_state_nobody_waits_for_lands_with_the_next_commit_ahead_of_later_rows() -> None:
    journal = _writer(LONG_LINGER_S)
    try:
        safety = journal.set_safety_state(TradingState.HALTED, "drawdown", False, urgent=False)
        time.sleep(0.2)
        assert not safety.done()  # it woke nobody
        row = journal.submit("after", "{}", urgent=False)
        journal.flush().result(timeout=2.0)
        assert safety.done()
        assert row.done()
        state = journal.call(lambda s: s.load()).result(timeout=2.0)
        assert state.trading_state is TradingState.HALTED
        assert state.reason == "drawdown"
    finally:
        journal.close()


def test_an_urgent_safety_state_does_not_wait_for_the_linger() -> None:
    journal = _writer(LONG_LINGER_S)
    try:
        journal.set_safety_state(TradingState.HALTED, "operator", True).result(timeout=2.0)
    finally:
        journal.close()


@pytest.mark.parametrize("count", [1, INSERT_CHUNK, 2 * INSERT_CHUNK + 3])
def test_append_decisions_writes_every_row_of_a_batch_larger_than_one_statement(count: int) -> None:
    store = StateStore(None)
    try:
        entries = [(f"d{i}", {"i": i, "text": 'it\'s "quoted", ü'}) for i in range(count)]
        assert store.append_decisions(entries, timestamps=[float(i) for i in range(count)]) == count
        assert store.count() == count
        got = store.journal(limit=count)
        assert [e.decision_id for e in got] == [f"d{i}" for i in range(count)]
        assert [e.ts for e in got] == [float(i) for i in range(count)]
        assert got[-1].payload == {"i": count - 1, "text": 'it\'s "quoted", ü'}
    finally:
        store.close()


def test_an_idle_writer_woken_with_nothing_queued_goes_back_to_sleep() -> None:
    # a caller's inline commit can take the last row between a submit and its wake-up: the writer
    # then wakes to an empty queue and must wait again, not spin
    journal = _writer(LONG_LINGER_S)
    try:
        journal._work.set()
        time.sleep(0.05)
        start = time.process_time()
        time.sleep(0.3)
        assert time.process_time() - start < 0.1
    finally:
        journal.close()
