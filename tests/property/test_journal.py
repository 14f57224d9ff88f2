"""Property test of the journal writer: whatever mix of lingering rows, durable rows and flushes a
caller sends, every row is committed exactly once, in submission order, and every future resolves."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from advanced_risk.engine.journal import JournalWriter
from advanced_risk.engine.state import StateStore

# each step: submit a lingering row, submit a durable row, or flush
STEPS = st.lists(st.sampled_from(["lazy", "durable", "flush"]), min_size=1, max_size=40)


@settings(max_examples=25, deadline=None)
@given(steps=STEPS, linger_ms=st.sampled_from([0.0, 1.0, 5.0]))
def test_every_row_lands_once_in_order_whatever_the_mix(steps: list[str], linger_ms: float) -> None:
    journal = JournalWriter(StateStore(None), linger_s=linger_ms / 1000.0)
    submitted, futures = [], []
    try:
        for k, step in enumerate(steps):
            if step == "flush":
                futures.append(journal.flush())
                continue
            decision_id = f"d{k}"
            submitted.append(decision_id)
            futures.append(journal.submit(decision_id, "{}", urgent=step == "durable"))
        ids = journal.call(lambda s: [e.decision_id for e in s.journal(limit=100)]).result(timeout=5.0)
        assert ids == submitted
        for future in futures:
            future.result(timeout=5.0)
        assert journal.committed == len(submitted)
    finally:
        journal.close()
