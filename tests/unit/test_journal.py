"""JournalWriter: rows nobody waits for linger and are group-committed; urgent work never waits."""

from __future__ import annotations

import time

import pytest

from advanced_risk.engine.journal import JournalWriter
from advanced_risk.engine.state import StateStore
from advanced_risk.errors import InvalidInputError

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
