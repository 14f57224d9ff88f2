"""StateStore: round trips, restart, schema, journal, and sqlite failures surfacing as StateStoreError."""

from __future__ import annotations

import math
import os
import sqlite3
import threading
import time
from pathlib import Path
from types import MappingProxyType

import numpy as np
import pytest

from advanced_risk.engine.state import SCHEMA_VERSION, PersistedState, StateStore
from advanced_risk.errors import InvalidInputError, StateStoreError
from advanced_risk.types import HedgeInstruction, RiskLevel, TradingState


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "state" / "risk.db"


def test_fresh_store_has_safe_defaults(db: Path) -> None:
    with StateStore(db) as store:
        state = store.load()
        assert state.peak_equity is None
        assert state.trading_state is TradingState.ACTIVE
        assert (state.reason, state.kill_switch) == ("", False)
        assert store.count() == 0
        assert store.persistent is True


def test_store_uses_wal_full_sync_and_records_the_schema_version(db: Path) -> None:
    with StateStore(db) as store:
        assert store._conn is not None
        assert store._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
    finally:
        conn.close()


def test_state_round_trip(db: Path) -> None:
    with StateStore(db) as store:
        store.save_state(PersistedState(12_000.0, TradingState.REDUCING, "drawdown 0.09", False, 0.0))
        loaded = store.load()
        assert (loaded.peak_equity, loaded.trading_state, loaded.reason, loaded.kill_switch) == (
            12_000.0,
            TradingState.REDUCING,
            "drawdown 0.09",
            False,
        )
        assert loaded.updated_ts > 0
        store.set_trading_state("halted", "kill switch: outage")
        store.set_kill_switch(True)
        state = store.load()
        assert (state.trading_state, state.reason, state.kill_switch) == (
            TradingState.HALTED,
            "kill switch: outage",
            True,
        )


def test_raise_peak_equity_keeps_the_maximum(db: Path) -> None:
    with StateStore(db) as store:
        assert [store.raise_peak_equity(e) for e in (100.0, 120.0, 110.0, 125.5)] == [
            100.0,
            120.0,
            120.0,
            125.5,
        ]
        store.set_peak_equity(90.0)
        assert store.load().peak_equity == 90.0
        store.set_peak_equity(None)
        assert store.load().peak_equity is None


def test_restart_restores_everything(db: Path) -> None:
    with StateStore(db) as store:
        store.raise_peak_equity(10_500.0)
        store.set_trading_state(TradingState.HALTED, "drawdown 0.16 >= halt_drawdown 0.15")
        store.set_kill_switch(True)
        for i in range(5):
            store.append_decision(f"d-{i}", {"i": i, "leverage": 0.5})
        before = store.journal(10)
    with StateStore(db) as store:
        state = store.load()
        assert state.peak_equity == 10_500.0
        assert state.trading_state is TradingState.HALTED
        assert state.reason == "drawdown 0.16 >= halt_drawdown 0.15"
        assert state.kill_switch is True
        assert store.journal(10) == before
        assert store.count() == 5


def test_in_memory_store_works_and_is_not_persistent() -> None:
    store = StateStore(None)
    assert store.persistent is False
    assert store.path is None
    store.append_decision("a", {})
    assert store.count() == 1
    store.close()


def test_journal_is_append_only_in_order_and_limited(db: Path) -> None:
    with StateStore(db) as store:
        ids = [store.append_decision(f"d-{i}", {"i": i}, ts=1000.0 + i) for i in range(7)]
        assert ids == sorted(ids)
        assert len(set(ids)) == 7
        last3 = store.journal(3)
        assert [e.decision_id for e in last3] == ["d-4", "d-5", "d-6"]
        assert [e.payload["i"] for e in last3] == [4, 5, 6]
        assert last3[0].ts == 1004.0
        assert store.journal(0) == []
        entry = store.get_decision("d-2")
        assert entry is not None
        assert entry.payload == {"i": 2}
        assert store.get_decision("missing") is None


def test_payload_is_stored_as_json_with_enums_numpy_dataclasses_and_nan_as_null(db: Path) -> None:
    payload = {
        "state": TradingState.HALTED,
        "level": RiskLevel.HIGH,
        "weights": MappingProxyType({"btc": np.float64(0.5)}),
        "count": np.int64(3),
        "flag": np.bool_(True),
        "hedge": HedgeInstruction(True, 1.0, "halted"),
        "var": math.nan,
        "alerts": ("a", "b"),
        "vector": np.array([1.0, 2.0]),
    }
    with StateStore(db) as store:
        store.append_decision("x", payload)
        got = store.get_decision("x")
    assert got is not None
    assert got.payload == {
        "state": "halted",
        "level": "high",
        "weights": {"btc": 0.5},
        "count": 3,
        "flag": True,
        "hedge": {"active": True, "ratio": 1.0, "reason": "halted"},
        "var": None,
        "alerts": ["a", "b"],
        "vector": [1.0, 2.0],
    }


def test_duplicate_decision_id_is_refused_and_the_store_stays_usable(db: Path) -> None:
    with StateStore(db) as store:
        store.append_decision("dup", {"n": 1})
        with pytest.raises(StateStoreError, match=r"append_decision failed .*already journaled"):
            store.append_decision("dup", {"n": 2})
        assert store.count() == 1
        assert store.get_decision("dup").payload == {"n": 1}  # type: ignore[union-attr]
        store.append_decision("next", {})
        assert store.count() == 2


def test_append_decisions_is_all_or_nothing(db: Path) -> None:
    with StateStore(db) as store:
        assert store.append_decisions([("a", {}), ("b", {})]) == 2
        with pytest.raises(StateStoreError, match="append_decisions"):
            store.append_decisions([("c", {}), ("a", {})])
        assert store.count() == 2
        assert store.get_decision("c") is None


@pytest.mark.parametrize(
    ("decision_id", "payload", "field"),
    [
        ("", {}, "decision_id"),
        (None, {}, "decision_id"),
        ("ok", [1, 2], "payload must be a mapping"),
        ("ok", {"obj": object()}, r"payload\['obj'\] is not JSON-serialisable"),
    ],
    ids=["empty-id", "none-id", "list-payload", "object-value"],
)
def test_bad_journal_input_raises_invalid_input(decision_id: object, payload: object, field: str) -> None:
    with StateStore(None) as store:
        with pytest.raises(InvalidInputError, match=field):
            store.append_decision(decision_id, payload)  # type: ignore[arg-type]
        assert store.count() == 0


def test_bad_state_values_raise_invalid_input() -> None:
    with StateStore(None) as store:
        with pytest.raises(InvalidInputError, match="trading_state"):
            store.set_trading_state("paused", "x")
        with pytest.raises(InvalidInputError, match="equity"):
            store.raise_peak_equity(math.nan)
        with pytest.raises(InvalidInputError, match="equity"):
            store.raise_peak_equity(-5.0)


def test_read_only_database_raises_state_store_error(db: Path) -> None:
    with StateStore(db) as store:
        store.append_decision("before", {})
        assert store._conn is not None
        store._conn.execute("PRAGMA query_only = ON")  # the connection now behaves like a read-only DB
        with pytest.raises(StateStoreError, match=r"append_decision failed .*readonly"):
            store.append_decision("after", {})
        with pytest.raises(StateStoreError, match="set_trading_state failed"):
            store.set_trading_state("halted", "x")
        assert store.count() == 1  # reads still work


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_read_only_file_raises_state_store_error(tmp_path: Path) -> None:
    path = tmp_path / "ro.db"
    StateStore(path).close()
    path.chmod(0o444)
    tmp_path.chmod(0o555)
    try:
        with pytest.raises(StateStoreError), StateStore(path) as store:
            store.append_decision("x", {})
    finally:
        tmp_path.chmod(0o755)
        path.chmod(0o644)


def test_locked_database_raises_state_store_error_within_the_busy_timeout(db: Path) -> None:
    StateStore(db).close()
    other = sqlite3.connect(db, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        with StateStore(db, busy_timeout_s=0.05) as store:
            start = time.perf_counter()
            with pytest.raises(StateStoreError, match=r"append_decision failed .*locked"):
                store.append_decision("blocked", {})
            assert time.perf_counter() - start < 2.0
            with pytest.raises(StateStoreError, match=r"raise_peak_equity failed .*locked"):
                store.raise_peak_equity(100.0)
            other.execute("ROLLBACK")
            store.append_decision("after-release", {})  # the store recovers once the lock is gone
            assert store.count() == 1
    finally:
        other.close()


def test_closed_store_raises_and_closing_twice_is_fine(db: Path) -> None:
    store = StateStore(db)
    store.close()
    store.close()
    assert store.closed
    with pytest.raises(StateStoreError, match=r"count failed .*closed"):
        store.count()


def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StateStoreError, match="open failed"):
        StateStore(path)


def test_a_newer_schema_is_refused(db: Path) -> None:
    StateStore(db).close()
    conn = sqlite3.connect(db)
    conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    conn.commit()
    conn.close()
    with pytest.raises(StateStoreError, match="newer than this library"):
        StateStore(db)


def test_concurrent_threads_append_without_loss_or_duplicates(db: Path) -> None:
    with StateStore(db) as store:

        def worker(t: int) -> None:
            for i in range(50):
                store.append_decision(f"t{t}-{i}", {"t": t, "i": i})
                store.raise_peak_equity(1000.0 + t * 50 + i)

        threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert store.count() == 400
        assert len({e.decision_id for e in store.journal(1000)}) == 400
        assert store.load().peak_equity == 1000.0 + 7 * 50 + 49
        assert store.integrity_check() == "ok"
