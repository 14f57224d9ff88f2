"""The engine snapshot a graceful close saves: exact state round trips, and refusals.

The tracker, the strategy drawdown and the rolling peak each save what they have learnt and are
rebuilt from it; the rebuilt object must answer every later bar as the original does (checked bar
by bar against the original, fed the same rows). The archive format refuses damaged input with
``InvalidInputError`` and never unpickles; the store keeps a snapshot only for the decision it was
saved with.
"""

from __future__ import annotations

import io
import math
import pickle
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from advanced_risk.config import RiskConfig, TrackerConfig
from advanced_risk.engine.snapshot import EngineSnapshot, decode, encode, settings_key
from advanced_risk.engine.state import SCHEMA_VERSION, StateStore
from advanced_risk.errors import InvalidInputError
from advanced_risk.measures.rolling_max import RollingMax
from advanced_risk.monitoring.drift import DriftMonitor, reference_from_samples
from advanced_risk.risk.garch import GarchParams
from advanced_risk.risk.strategy_drawdown import StrategyDrawdown
from advanced_risk.risk.tracker import RiskTracker

# what RiskTracker.state() covers, and what is rebuilt from the settings instead
TRACKER_SAVED = {
    "_buffer", "_pos", "_n_obs", "_ewma_state", "_ewma_weight", "_age", "_late_joiners",
    "_counted_from", "_fast_correlation", "_baseline", "_shock", "_noise_pairs", "_noise_margins",
    "_garch", "_garch_fit_bar",
}  # fmt: skip
TRACKER_FROM_SETTINGS = {"_n", "_config", "_method", "_capacity", "_auto_refit"}


def _same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def test_every_tracker_attribute_is_saved_or_rebuilt_from_the_settings() -> None:
    """A new attribute must be added to ``state``/``from_state`` (or to the rebuilt set) here."""
    assert set(vars(RiskTracker(3))) == TRACKER_SAVED | TRACKER_FROM_SETTINGS


@pytest.mark.parametrize("method", ["fhs_garch", "historical"])
def test_a_rebuilt_tracker_answers_every_later_bar_as_the_original(method: str) -> None:
    rng = np.random.default_rng(7)
    cfg = TrackerConfig(window=50, fhs_window=120, correlation_warmup=20, method=method)
    rows = rng.standard_t(4, size=(420, 4)) * 0.01
    original = RiskTracker(4, cfg)
    for row in rows[:200]:
        original.update(row)
    original.var(np.full(4, 0.25))  # the first fhs_garch query fits
    original.add_assets(1)  # a late joiner: per-pair normalisers, a pending count
    for row in rows[200:230]:
        original.update(np.append(row, 0.001))
    rebuilt = RiskTracker.from_state(original.state(), cfg)
    weights = np.array([0.3, 0.2, -0.1, 0.4, 0.2])
    for row in rows[230:]:
        both = np.append(row, 0.5 * row[0])
        original.update(both)
        rebuilt.update(both)
        assert original.var_cvar(weights) == rebuilt.var_cvar(weights)
        assert _same(original.average_correlation(), rebuilt.average_correlation())
        assert original.correlation_shock == rebuilt.correlation_shock
        assert _same(original.correlation_baseline, rebuilt.correlation_baseline)
    assert original.garch_params == rebuilt.garch_params


def test_a_tracker_state_of_other_settings_or_damaged_is_refused() -> None:
    tracker = RiskTracker(3, TrackerConfig(window=30, fhs_window=100))
    for row in np.random.default_rng(1).normal(0.0, 0.01, size=(35, 3)):
        tracker.update(row)
    state = tracker.state()
    with pytest.raises(InvalidInputError, match="buffer"):
        RiskTracker.from_state(state, TrackerConfig(window=30, fhs_window=120))
    with pytest.raises(InvalidInputError, match="ewma_state"):
        RiskTracker.from_state(
            {**state, "ewma_state": np.zeros((2, 2))}, TrackerConfig(window=30, fhs_window=100)
        )
    cfg = TrackerConfig(window=30, fhs_window=100)
    for name in ("buffer", "ewma_state"):
        poisoned = state[name].copy()
        poisoned.flat[0] = np.nan
        with pytest.raises(InvalidInputError, match=f"{name} holds a value that is not finite"):
            RiskTracker.from_state({**state, name: poisoned}, cfg)
    with pytest.raises(InvalidInputError, match="ints"):
        RiskTracker.from_state(
            {k: v for k, v in state.items() if k != "ints"}, TrackerConfig(window=30, fhs_window=100)
        )


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(st.floats(0.1, 10.0), min_size=1, max_size=60),
    split=st.integers(0, 60),
    window=st.one_of(st.none(), st.integers(1, 12)),
)
def test_a_rebuilt_rolling_max_follows_the_original(
    values: list[float], split: int, window: int | None
) -> None:
    original = RollingMax(window)
    head, tail = values[: split % len(values) + 1], values[split % len(values) + 1 :]
    for v in head:
        original.push(v)
    rebuilt = RollingMax.from_state(window, *original.state())
    for v in tail:
        original.push(v)
        rebuilt.push(v)
        assert original.value == rebuilt.value
    assert len(original) == len(rebuilt)


def test_a_rolling_max_state_that_cannot_be_one_is_refused() -> None:
    with pytest.raises(ValueError, match="RollingMax"):
        RollingMax.from_state(5, [0, 1], [1.0, 2.0], 2)  # values must decrease
    with pytest.raises(ValueError, match="RollingMax"):
        RollingMax.from_state(5, [0, 3], [2.0, 1.0], 3)  # an index past the count


@settings(max_examples=40, deadline=None)
@given(
    returns=st.lists(st.floats(-0.2, 0.2), min_size=2, max_size=50),
    window=st.one_of(st.none(), st.integers(1, 20)),
    halflife=st.one_of(st.none(), st.integers(1, 10)),
)
def test_a_rebuilt_strategy_drawdown_follows_the_original(
    returns: list[float], window: int | None, halflife: int | None
) -> None:
    original = StrategyDrawdown(window, initial_drawdown=0.1, trend_halflife=halflife)
    original.set_weights(np.array([1.0, -0.5]))
    half = len(returns) // 2
    for r in returns[:half]:
        original.update(np.array([r, -r / 2]))
    rebuilt = StrategyDrawdown.from_state(original.state(), window, halflife)
    for r in returns[half:]:
        row = np.array([r, -r / 2])
        assert original.update(row) == rebuilt.update(row)
        assert original.below_trend == rebuilt.below_trend


def _snapshot(n: int = 3, refit: bool = True) -> EngineSnapshot:
    tracker = RiskTracker(n, TrackerConfig(window=20, fhs_window=100))
    for row in np.random.default_rng(2).normal(0.0, 0.01, size=(25, n)):
        tracker.update(row)
    strategy = StrategyDrawdown(10)
    strategy.set_weights(np.full(n, 1.0 / n))
    return EngineSnapshot(
        assets=tuple(f"A{i}" for i in range(n)),
        settings=settings_key(RiskConfig()),
        tracker=tracker.state(),
        atr_counts=np.arange(n, dtype=np.int64),
        atr_total=np.linspace(1.0, 2.0, n),
        atr_value=np.full(n, np.nan),
        atr_prev_close=np.linspace(10.0, 20.0, n),
        last_close=np.linspace(10.0, 20.0, n),
        stop=np.array([9.0] + [np.nan] * (n - 1)),
        stop_short=np.zeros(n, dtype=bool),
        seasoned=True,
        strategy=strategy.state(),
        refit=(120, GarchParams(0.0, 1e-6, 0.05, 0.1, 0.85, 6.0)) if refit else None,
    )


@pytest.mark.parametrize("refit", [True, False])
def test_encode_then_decode_gives_the_snapshot_back(refit: bool) -> None:
    snap = _snapshot(refit=refit)
    back = decode(encode(snap))
    assert back.assets == snap.assets
    assert back.settings == snap.settings
    assert back.seasoned is True
    assert back.refit == snap.refit
    for name in (
        "atr_counts",
        "atr_total",
        "atr_value",
        "atr_prev_close",
        "last_close",
        "stop",
        "stop_short",
    ):
        np.testing.assert_array_equal(getattr(back, name), getattr(snap, name))
    assert back.tracker is not None
    assert snap.tracker is not None
    assert set(back.tracker) == set(snap.tracker)
    for name, value in snap.tracker.items():
        np.testing.assert_array_equal(back.tracker[name], value)


def test_damaged_or_foreign_bytes_are_refused_and_never_unpickled() -> None:
    data = encode(_snapshot())
    for bad in (b"", b"not an archive", data[: len(data) // 2], pickle.dumps({"assets": ["A"]})):
        with pytest.raises(InvalidInputError, match="snapshot"):
            decode(bad)
    objects = io.BytesIO()
    np.savez(objects, assets=np.array([object()], dtype=object))  # only a pickle could read it
    with pytest.raises(InvalidInputError, match="snapshot"):
        decode(objects.getvalue())
    short = io.BytesIO()
    arrays = {k: v for k, v in np.load(io.BytesIO(data)).items()}
    np.savez(short, **{**arrays, "stop": np.zeros(1)})
    with pytest.raises(InvalidInputError, match="stop"):
        decode(short.getvalue())


def test_the_store_keeps_a_snapshot_for_its_decision_only(tmp_path: Path) -> None:
    with StateStore(tmp_path / "s.db") as store:
        assert store.save_snapshot(b"x") is None  # no decision: nothing to stamp it with
        assert store.load_snapshot() is None
        store.append_decision("d1", {"leverage": 1.0})
        assert store.save_snapshot(b"first") == "d1"
        assert store.load_snapshot() == b"first"
        store.append_decision("d2", {"leverage": 1.0})
        assert store.load_snapshot() is None  # d2 came after it: stale
        assert store.save_snapshot(b"second") == "d2"
        assert store.load_snapshot() == b"second"
        assert store.save_snapshot(b"third", "d1") is None  # d1 is not the newest: refused
        assert store.load_snapshot() == b"second"
        assert store.save_snapshot(b"third", "d2") == "d2"
        with pytest.raises(InvalidInputError, match="bytes"):
            store.save_snapshot("text")  # type: ignore[arg-type]


def test_a_version_1_file_is_upgraded_and_keeps_its_state(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    conn = sqlite3.connect(path)
    conn.executescript(
        """
        CREATE TABLE schema_version (version INTEGER NOT NULL);
        INSERT INTO schema_version VALUES (1);
        CREATE TABLE risk_state (id INTEGER PRIMARY KEY CHECK (id = 1), peak_equity REAL,
            trading_state TEXT NOT NULL, reason TEXT NOT NULL, kill_switch INTEGER NOT NULL,
            updated_ts REAL NOT NULL);
        INSERT INTO risk_state VALUES (1, 123.0, 'reducing', 'drawdown', 0, 5.0);
        CREATE TABLE journal (id INTEGER PRIMARY KEY, decision_id TEXT NOT NULL UNIQUE,
            ts REAL NOT NULL, payload TEXT NOT NULL);
        INSERT INTO journal VALUES (1, 'old', 1.0, '{"leverage": 0.5}');
        """
    )
    conn.close()
    with StateStore(path) as store:
        state = store.load()
        assert (state.peak_equity, state.trading_state.value) == (123.0, "reducing")
        assert store.last_leverage() == 0.5
        assert store.save_snapshot(b"s") == "old"
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
    conn.close()


def test_a_restored_drift_monitor_scores_every_later_bar_as_the_original() -> None:
    rng = np.random.default_rng(4)
    reference = reference_from_samples(rng.normal(size=(2000, 6)), tuple(f"f{i}" for i in range(6)))
    original = DriftMonitor(reference, window=50, threshold=0.2, min_bars=20)
    for row in rng.normal(0.3, 1.2, size=(70, 6)):
        original.update(row)
    rebuilt = DriftMonitor(reference, window=50, threshold=0.2, min_bars=20)
    rebuilt.restore(original.state())
    for row in rng.normal(0.5, 1.5, size=(60, 6)):
        assert original.update(row) == rebuilt.update(row)
    with pytest.raises(ValueError, match="another reference or window"):
        DriftMonitor(reference, window=40, threshold=0.2, min_bars=20).restore(original.state())
