"""Rows no store could write, errors no store should raise, and flushes over a failing store.

The journal writer's thread must outlive every row it is handed: a row no commit could ever write
is refused before it is queued (``InvalidInputError`` naming the field), a row whose id the store
holds already fails alone (``DuplicateDecisionError``) while the rest of its commit lands, and any
other error of a commit counts as a store failure (rows kept, retried). A flush or call queued
behind rows the store fails fails itself: it never reports durable what is not.
"""

from __future__ import annotations

import asyncio
import math
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from advanced_risk.config import RiskConfig
from advanced_risk.engine.journal import JournalWriter
from advanced_risk.engine.state import StateStore
from advanced_risk.errors import DuplicateDecisionError, InvalidInputError, StateStoreError
from advanced_risk.manager import AdvancedRiskManager
from advanced_risk.types import MarketState, Portfolio, TradingState


class Flaky:
    """Makes a store's ``append_decisions`` raise ``error`` while ``failing`` is set."""

    def __init__(self, store: StateStore, error: Exception) -> None:
        self.failing = threading.Event()
        self.error = error
        append = store.append_decisions

        def append_decisions(entries, timestamps=None):  # type: ignore[no-untyped-def]
            if self.failing.is_set():
                raise self.error
            return append(entries, timestamps=timestamps)

        store.append_decisions = append_decisions  # type: ignore[method-assign]


def _ids(journal: JournalWriter) -> list[str]:
    return journal.call(lambda s: [e.decision_id for e in s.journal(limit=1000)]).result(timeout=5.0)


@pytest.fixture
def journal() -> Any:
    writer = JournalWriter(StateStore(None), linger_s=0.0, retry_interval_s=0.01)
    yield writer
    writer.close()


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"x": object()}, "payload"),
        ({"x": b"bytes"}, "payload"),
        ({"deep": [1, {"z": complex(1, 2)}]}, "payload"),
        (["not", "a", "mapping"], "payload"),
        (42, "payload"),
    ],
)
def test_a_payload_no_commit_could_encode_is_refused_at_submit(
    journal: JournalWriter, payload: Any, field: str
) -> None:
    with pytest.raises(InvalidInputError, match=field):
        journal.submit("bad", payload)
    journal.submit("good", {"x": 1}).result(timeout=5.0)  # the writer lives on, unharmed
    assert _ids(journal) == ["good"]
    assert journal.healthy


@pytest.mark.parametrize("peak", [0.0, -1.0, math.nan, math.inf, "100", np.array([1.0, 2.0]), True])
def test_a_peak_no_store_would_take_is_refused_at_submit(journal: JournalWriter, peak: Any) -> None:
    with pytest.raises(InvalidInputError, match="peak_equity"):
        journal.submit("bad", "{}", peak)
    journal.submit("good", "{}", np.float64(5.0)).result(timeout=5.0)
    assert journal.call(lambda s: s.load().peak_equity).result(timeout=5.0) == 5.0


@pytest.mark.parametrize("decision_id", ["", None, 7])
def test_an_id_that_is_not_a_non_empty_string_is_refused(journal: JournalWriter, decision_id: Any) -> None:
    with pytest.raises(InvalidInputError, match="decision_id"):
        journal.submit(decision_id, "{}")
    with pytest.raises(InvalidInputError, match="decision_id"):
        journal.submit(decision_id, {"a": 1})


def test_an_id_still_queued_is_refused_and_the_first_row_stays() -> None:
    writer = JournalWriter(StateStore(None), linger_s=math.inf)
    try:
        first = writer.submit("same", '{"n": 1}', urgent=False)
        with pytest.raises(InvalidInputError, match="queued already"):
            writer.submit("same", '{"n": 2}', urgent=False)
        assert writer.read_decision("same") == {"n": 1}
        writer.flush().result(timeout=5.0)
        assert first.done()
        assert first.exception() is None
        assert writer.read_decision("same") == {"n": 1}
    finally:
        writer.close()


def test_an_id_the_store_holds_fails_alone_and_the_rest_of_its_commit_lands() -> None:
    writer = JournalWriter(StateStore(None), linger_s=math.inf)
    try:
        writer.submit("a", '{"n": 1}').result(timeout=5.0)
        before = writer.submit("b", '{"n": 2}', urgent=False)
        again = writer.submit("a", '{"n": 3}', urgent=False)  # committed already: not queued
        after = writer.submit("c", '{"n": 4}', urgent=False)
        writer.flush().result(timeout=5.0)  # the commit holding all three
        assert before.result(timeout=0) is None
        assert after.result(timeout=0) is None
        with pytest.raises(DuplicateDecisionError, match="'a'"):
            again.result(timeout=0)
        assert _ids(writer) == ["a", "b", "c"]
        assert writer.read_decision("a") == {"n": 1}  # the stored row, not the rejected one
        assert writer.healthy
        assert writer.pending == 0
        writer.submit("d", "{}").result(timeout=5.0)  # nothing held back behind the rejected row
    finally:
        writer.close()


def test_an_id_the_store_holds_alone_in_its_commit_leaves_the_writer_healthy(journal: JournalWriter) -> None:
    journal.submit("a", "{}", 10.0).result(timeout=5.0)
    again = journal.submit("a", "{}", 20.0)
    with pytest.raises(DuplicateDecisionError):
        again.result(timeout=5.0)
    journal.flush().result(timeout=5.0)
    assert journal.healthy
    assert journal.call(lambda s: s.load().peak_equity).result(timeout=5.0) == 20.0  # the peak holds


@pytest.mark.parametrize("error", [RuntimeError("boom"), KeyError("k"), InvalidInputError("x must be y")])
def test_any_error_of_a_commit_is_a_store_failure_the_thread_outlives(error: Exception) -> None:
    store = StateStore(None)
    flaky = Flaky(store, error)
    writer = JournalWriter(store, linger_s=0.0, retry_interval_s=0.01)
    try:
        flaky.failing.set()
        kept = writer.submit("r1", "{}")
        with pytest.raises(StateStoreError, match=type(error).__name__):
            writer.flush().result(timeout=5.0)
        assert not writer.healthy
        assert type(error).__name__ in (writer.last_error or "")
        assert not kept.done()
        assert writer.pending == 1
        assert writer._thread.is_alive()
        flaky.failing.clear()
        kept.result(timeout=5.0)  # the thread's retry lands it
        writer.flush().result(timeout=5.0)
        assert writer.healthy
        assert _ids(writer) == ["r1"]
    finally:
        writer.close()


def test_a_flush_behind_rows_the_store_fails_fails_and_a_later_one_succeeds() -> None:
    store = StateStore(None)
    flaky = Flaky(store, StateStoreError("append_decisions failed: disk full"))
    writer = JournalWriter(store, linger_s=0.0, retry_interval_s=0.01)
    try:
        writer.submit("ok", "{}").result(timeout=5.0)
        flaky.failing.set()
        rows = [writer.submit(f"r{i}", "{}", urgent=False) for i in range(3)]
        with pytest.raises(StateStoreError, match=r"3 earlier rows not durable yet.*disk full"):
            writer.flush().result(timeout=5.0)
        # a read is not held back: it answers what the store holds, and memory the rest
        assert writer.call(lambda s: s.count(), ordered=False).result(timeout=5.0) == 1
        assert writer.read_decision("r1") == {}
        assert writer.read_decision("ok") == {}
        assert not any(r.done() for r in rows)
        flaky.failing.clear()
        writer.flush().result(timeout=5.0)
        assert all(r.done() and r.exception() is None for r in rows)
        assert _ids(writer) == ["ok", "r0", "r1", "r2"]
    finally:
        writer.close()


def test_a_call_behind_a_safety_state_the_store_fails_does_not_run() -> None:
    store = StateStore(None)
    writes = store.set_safety_state
    failing = threading.Event()

    def set_safety_state(*args: Any, **kwargs: Any) -> None:
        if failing.is_set():
            raise StateStoreError("set_safety_state failed: locked")
        writes(*args, **kwargs)

    store.set_safety_state = set_safety_state  # type: ignore[method-assign]
    writer = JournalWriter(store, linger_s=0.0, retry_interval_s=0.01)
    try:
        failing.set()
        state = writer.set_safety_state(TradingState.HALTED, "drawdown", False)
        ran = threading.Event()
        with pytest.raises(StateStoreError, match="trading state not durable yet"):
            writer.call(lambda s: ran.set()).result(timeout=5.0)
        assert not ran.is_set()  # nothing it writes lands ahead of the halt
        failing.clear()
        state.result(timeout=5.0)
        writer.call(lambda s: ran.set()).result(timeout=5.0)
        assert ran.is_set()
    finally:
        writer.close()


def test_a_state_no_store_could_write_is_refused(journal: JournalWriter) -> None:
    with pytest.raises(InvalidInputError, match="state must be one of"):
        journal.set_safety_state("paused", "why", False)  # type: ignore[arg-type]
    journal.set_safety_state("reducing", "why", False).result(timeout=5.0)  # type: ignore[arg-type]
    assert journal.call(lambda s: s.load().trading_state).result(timeout=5.0) is TradingState.REDUCING


def test_the_managers_flush_raises_while_the_store_fails_its_decisions(tmp_path: Path) -> None:
    config = RiskConfig(state_path=tmp_path / "state.db", journal_sync=False)
    returns = {"A": 0.001, "B": -0.002}
    prices = {"A": 100.0, "B": 50.0}

    async def scenario() -> None:
        async with AdvancedRiskManager(config) as risk:
            journal = risk._journal
            assert journal is not None
            flaky = Flaky(journal._store, StateStoreError("append_decisions failed: disk I/O error"))
            await risk.flush()
            flaky.failing.set()
            decision = await risk.manage_risk(
                MarketState(returns=returns, prices=prices),
                Portfolio(weights={"A": 0.5, "B": 0.5}, equity=1e6),
            )
            with pytest.raises(StateStoreError, match="disk I/O error"):
                await risk.flush()
            flaky.failing.clear()
            await risk.flush()
            assert risk.read_decision(decision.decision_id) is not None

    asyncio.run(scenario())


def test_a_reset_peak_behind_decisions_the_store_fails_raises_and_changes_nothing(tmp_path: Path) -> None:
    # the failed rows carry the peak 1e6: a lower reset landing first would be raised back by them
    config = RiskConfig(state_path=tmp_path / "state.db", journal_sync=False)
    market = MarketState(returns={"A": 0.001, "B": -0.002}, prices={"A": 100.0, "B": 50.0})

    async def scenario() -> None:
        async with AdvancedRiskManager(config) as risk:
            journal = risk._journal
            assert journal is not None
            flaky = Flaky(journal._store, StateStoreError("append_decisions failed: disk full"))
            flaky.failing.set()
            await risk.manage_risk(market, Portfolio(weights={"A": 0.5, "B": 0.5}, equity=1e6))
            engine = risk._engine
            assert engine is not None
            with pytest.raises(StateStoreError, match="disk full"):
                await risk.reset_peak(5e5, "withdrawal")
            assert engine.peak_equity == 1e6  # memory never ahead of the store
            flaky.failing.clear()
            await risk.reset_peak(5e5, "withdrawal")
            await risk.flush()
            assert engine.peak_equity == 5e5
        with StateStore(config.state_path, read_only=True) as reader:
            assert reader.load().peak_equity == 5e5
            events = [e.payload for e in reader.journal() if "event" in e.payload]
        assert [(e["event"], e["peak_equity"]) for e in events] == [
            ("reset_peak", 5e5)
        ]  # the refused one left none

    asyncio.run(scenario())
