"""``JournalWriter.append``: a row nobody waits for, queued without a future.

It must land, be read back, be refused and retried exactly as a submitted row is; the manager
queues its non-durable decisions this way (no future created on the deciding thread, none completed
under the GIL by the writer).
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from structlog.testing import capture_logs

from advanced_risk.config import RiskConfig
from advanced_risk.engine.journal import JournalWriter
from advanced_risk.engine.state import StateStore
from advanced_risk.errors import InvalidInputError, StateStoreError
from advanced_risk.manager import AdvancedRiskManager
from advanced_risk.types import MarketState, Portfolio


def _ids(journal: JournalWriter) -> list[str]:
    return journal.call(lambda s: [e.decision_id for e in s.journal(limit=1000)]).result(timeout=5.0)


def test_an_appended_row_is_read_back_queued_and_committed() -> None:
    writer = JournalWriter(StateStore(None), linger_s=60.0)
    try:
        writer.append("a", {"x": 1}, peak_equity=2.0)
        assert writer.read_decision("a") == {"x": 1}  # lingering: answered from memory
        writer.flush().result(timeout=5.0)
        assert _ids(writer) == ["a"]
        assert writer.read_decision("a") == {"x": 1}
        assert writer.committed == 1
    finally:
        writer.close()


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (("", "{}"), "decision_id"),
        (("a", {"x": object()}), "payload"),
        (("a", "{}", float("nan")), "peak_equity"),
    ],
)
def test_an_append_no_commit_could_write_is_refused_at_once(args: tuple[Any, ...], field: str) -> None:
    writer = JournalWriter(StateStore(None))
    try:
        with pytest.raises(InvalidInputError, match=field):
            writer.append(*args)
        assert writer.pending == 0
    finally:
        writer.close()


def test_an_appended_row_an_id_still_queued_is_refused() -> None:
    writer = JournalWriter(StateStore(None), linger_s=60.0)
    try:
        writer.append("a", "{}")
        with pytest.raises(InvalidInputError, match="queued already"):
            writer.append("a", "{}")
    finally:
        writer.close()


def test_an_appended_row_the_store_fails_is_kept_and_lands_on_the_retry() -> None:
    store = StateStore(None)
    failing = threading.Event()
    failing.set()
    append = store.append_decisions

    def flaky(entries, timestamps=None):  # type: ignore[no-untyped-def]
        if failing.is_set():
            raise StateStoreError("disk full")
        return append(entries, timestamps=timestamps)

    store.append_decisions = flaky  # type: ignore[method-assign]
    writer = JournalWriter(store, linger_s=0.0, retry_interval_s=0.01)
    try:
        writer.append("a", "{}", urgent=True)
        with pytest.raises(StateStoreError):
            writer.flush().result(timeout=5.0)
        assert not writer.healthy
        failing.clear()
        writer.flush().result(timeout=5.0)
        assert _ids(writer) == ["a"]
        assert writer.healthy
    finally:
        writer.close()


def test_an_append_after_close_is_dropped_with_an_event() -> None:
    writer = JournalWriter(StateStore(None))
    writer.close()
    with capture_logs() as logs:
        writer.append("late", "{}")  # no raise: nobody waits for it
    assert [e["event"] for e in logs] == ["journal_row_dropped"]
    assert logs[0]["decision_id"] == "late"


def test_the_managers_memory_decisions_create_no_future(monkeypatch: pytest.MonkeyPatch) -> None:
    submitted: list[str] = []
    plain = JournalWriter.submit

    def counting(self: JournalWriter, decision_id: str, *args: Any, **kwargs: Any) -> Any:
        submitted.append(decision_id)
        return plain(self, decision_id, *args, **kwargs)

    monkeypatch.setattr(JournalWriter, "submit", counting)
    risk = AdvancedRiskManager(RiskConfig(rate_limit_per_s=None))
    try:
        ids = []
        for k in range(5):
            market = MarketState(returns={"A": 0.001 * k, "B": -0.001}, prices={"A": 100.0 + k, "B": 50.0})
            ids.append(risk.manage_risk_sync(market, Portfolio(weights={"A": 0.5, "B": 0.5})).decision_id)
        assert all(risk.read_decision(i) is not None for i in ids)
    finally:
        risk.close_sync()
    assert submitted == []
