"""Adversarial checks of today's journal wake-up (13d3464), JournalWriter.append (2002d83) and
RollingMax (13d3464); none found a defect, they guard the invariants probed."""

from __future__ import annotations

import collections
import random
import threading
import time
from collections import deque

import pytest
from structlog.testing import capture_logs

from advanced_risk.engine.journal import JournalWriter
from advanced_risk.engine.state import StateStore
from advanced_risk.measures.rolling_max import RollingMax


def _recording_store() -> tuple[StateStore, list[str], dict[str, float]]:
    store = StateStore(None)
    written: list[str] = []
    landed: dict[str, float] = {}
    append = store.append_decisions

    def record(entries, timestamps=None):  # type: ignore[no-untyped-def]
        result = append(entries, timestamps=timestamps)
        now = time.monotonic()
        for entry in entries:
            written.append(entry[0])
            landed[entry[0]] = now
        return result

    store.append_decisions = record  # type: ignore[method-assign]
    return store, written, landed


def test_rows_appended_and_submitted_from_threads_racing_flush_and_close_land_once_or_are_dropped() -> None:
    store, written, _ = _recording_store()
    writer = JournalWriter(store, linger_s=0.005, max_batch=7)
    queued: list[str] = []
    futures = {}
    lock, stop = threading.Lock(), threading.Event()

    def work(k: int) -> None:
        rnd = random.Random(k)
        i = 0
        while not stop.is_set():
            did = f"{k}-{i}"
            i += 1
            future = None
            if rnd.random() < 0.5:
                writer.append(did, "{}", urgent=rnd.random() < 0.1)
            else:
                future = writer.submit(did, "{}", urgent=rnd.random() < 0.5)
            with lock:
                queued.append(did)
                if future is not None:
                    futures[did] = future
            if rnd.random() < 0.05:
                writer.flush()
            if rnd.random() < 0.02:
                writer.set_safety_state("active", "x", False, urgent=rnd.random() < 0.5)
            if rnd.random() < 0.3:
                time.sleep(0.0005)

    with capture_logs() as logs:
        threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        time.sleep(0.2)
        writer.close(timeout=10.0)
        time.sleep(0.01)  # appends after close: dropped, each with its event
        stop.set()
        for t in threads:
            t.join()
    assert not writer._thread.is_alive()
    dropped = {e["decision_id"] for e in logs if e["event"] == "journal_row_dropped"}
    counts = collections.Counter(written)
    assert all(n == 1 for n in counts.values())
    refused = {d for d, f in futures.items() if f.exception(timeout=0) is not None}
    assert not refused & set(counts)
    assert not dropped & set(counts)
    assert [d for d in queued if d not in counts and d not in dropped and d not in refused] == []
    assert all(f.done() for f in futures.values())


@pytest.mark.timing
def test_a_row_appended_after_a_drain_lands_within_the_linger() -> None:
    store, _, landed = _recording_store()
    linger = 0.02
    writer = JournalWriter(store, linger_s=linger)
    sent: dict[str, float] = {}
    try:
        rnd = random.Random(0)
        for i in range(60):
            did = f"r{i}"
            sent[did] = time.monotonic()
            if i % 3 == 0:
                writer.commit_now(writer.submit(did, "{}", urgent=False), 0.01)
            else:
                writer.append(did, "{}")
            time.sleep(rnd.random() * 0.03)
        writer.flush().result(timeout=5.0)
    finally:
        writer.close()
    late = {d: landed[d] - sent[d] for d in sent if landed[d] - sent[d] > linger + 0.03}
    assert late == {}


def test_rolling_max_matches_the_max_of_a_bounded_deque() -> None:
    rnd = random.Random(0)
    values = [0.0, -0.0, 1.0, 2.0, 1e308, 5e-324, 3.0]
    for _ in range(2000):
        window = rnd.choice([None, 1, 2, 3, 5, 10])
        peak, ref = RollingMax(window), deque[float](maxlen=window)
        for _ in range(rnd.randint(1, 40)):
            if rnd.random() < 0.05:
                peak.clear()
                ref.clear()
                continue
            v = rnd.choice([*values, rnd.random()])
            peak.push(v)
            ref.append(v)
            assert peak.value == max(ref)
            assert len(peak) == len(ref)
