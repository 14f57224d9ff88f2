"""Bounded memory (issue 11): the in-memory journal is a ring, latency statistics a fixed histogram."""

from __future__ import annotations

import asyncio
import json
import math
from pathlib import Path

import numpy as np
import pytest

from advanced_risk import AdvancedRiskManager, RiskConfig
from advanced_risk.engine.state import StateStore
from advanced_risk.errors import InvalidInputError, StateStoreError
from advanced_risk.histogram import LatencyHistogram

BOUND, DECISIONS = 50, 300
HISTOGRAM_PRECISION = 1.0 / 2048  # a bucket's half width relative to its lowest value


def _config(**overrides: object) -> RiskConfig:
    values: dict[str, object] = {
        "deadline_ms": 50.0,
        "tracker": {"method": "fhs_ewma"},  # no GARCH worker
        "rate_limit_per_s": None,
    }
    values.update(overrides)
    return RiskConfig(**values)  # type: ignore[arg-type]


def _run(risk: AdvancedRiskManager, n: int) -> list[dict[str, object]]:
    """``n`` sync decisions of a two-asset book; returns each as the bot received it (JSON data)."""
    rng = np.random.default_rng(7)
    out = []
    for _ in range(n):
        r = rng.normal(0.0005, 0.01, 2).tolist()
        decision = risk.manage_risk_sync({"returns": {"a": r[0], "b": r[1]}}, {"a": 0.4, "b": 0.4})
        out.append(json.loads(decision.to_json()))
    asyncio.run(risk.flush())
    return out


def test_the_in_memory_journal_keeps_the_newest_rows_and_says_how_many_it_evicted() -> None:
    risk = AdvancedRiskManager(_config(memory_journal_rows=BOUND))
    try:
        decisions = _run(risk, DECISIONS)
        metrics = risk.metrics()
        assert metrics["journal_committed"] == DECISIONS
        assert metrics["journal_evicted"] == DECISIONS - BOUND
        assert metrics["journal_dropped"] == 0  # nothing failed: the ring evicts by design
        assert risk._journal is not None
        assert risk._journal.call(lambda store: store.count()).result(timeout=5.0) == BOUND
        evicted, kept = decisions[: DECISIONS - BOUND], decisions[DECISIONS - BOUND :]
        assert all(risk.read_decision(str(d["decision_id"])) is None for d in evicted)
        assert [risk.read_decision(str(d["decision_id"])) for d in kept] == kept
    finally:
        risk.close_sync()


def test_the_ring_is_for_memory_only_a_file_keeps_all_of_history(tmp_path: Path) -> None:
    path = str(tmp_path / "risk.db")
    risk = AdvancedRiskManager(_config(memory_journal_rows=10, state_path=path, journal_sync=False))
    try:
        decisions = _run(risk, 30)
        assert risk.metrics()["journal_evicted"] == 0
        assert risk.read_decision(str(decisions[0]["decision_id"])) == decisions[0]
    finally:
        risk.close_sync()
    with StateStore(path, read_only=True) as store:
        assert store.count() == 30


def test_the_store_evicts_in_the_appending_transaction_single_rows_and_batches() -> None:
    with StateStore(None, max_journal_rows=3) as store:
        for i in range(5):
            store.append_decision(f"d{i}", {"i": i})
        assert (store.count(), store.evicted) == (3, 2)
        store.append_decisions([(f"b{i}", {"i": i}) for i in range(4)])
        assert (store.count(), store.evicted) == (3, 6)
        assert [e.decision_id for e in store.journal()] == ["b1", "b2", "b3"]
        assert store.get_decision("d4") is None
        assert store.get_decision("b3") is not None
        with pytest.raises(StateStoreError, match="already journaled"):  # a failed append evicts nothing
            store.append_decision("b3", {})
        assert (store.count(), store.evicted) == (3, 6)
    with StateStore(None) as unbounded:
        unbounded.append_decisions([(f"d{i}", {}) for i in range(10)])
        assert (unbounded.count(), unbounded.evicted, unbounded.max_journal_rows) == (10, 0, None)


def test_the_bound_is_validated(tmp_path: Path) -> None:
    for bad in (0, -1, 1.5, True):
        with pytest.raises(InvalidInputError, match="memory_journal_rows"):
            RiskConfig(memory_journal_rows=bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="in-memory journal only"):
        StateStore(tmp_path / "risk.db", max_journal_rows=10)
    assert RiskConfig().memory_journal_rows == 10_000


@pytest.mark.parametrize("n", [1, 2, 3, 10, 101, 10_000, 200_000])
def test_histogram_percentiles_match_numpy_within_its_precision(n: int) -> None:
    rng = np.random.default_rng(n)
    samples = rng.lognormal(np.log(0.15), 0.8, n)  # ms: ~150 us median, a long tail
    samples[: n // 100] *= 50.0  # a few slow calls
    hist = LatencyHistogram()
    for ms in samples.tolist():
        hist.record_ms(ms)
    p50, p99 = hist.percentiles_ms((50.0, 99.0))
    exact50, exact99 = np.percentile(samples, [50, 99], method="inverted_cdf")
    assert p50 == pytest.approx(exact50, rel=HISTOGRAM_PRECISION)
    assert p99 == pytest.approx(exact99, rel=HISTOGRAM_PRECISION)
    if n >= 10_000:  # numpy's default (linear between order statistics): as close, given the samples
        linear50, linear99 = np.percentile(samples, [50, 99])
        assert p50 == pytest.approx(linear50, rel=2 * HISTOGRAM_PRECISION)
        assert p99 == pytest.approx(linear99, rel=2 * HISTOGRAM_PRECISION)
    assert hist.max_ms == samples.max()  # exact
    assert hist.count == n


def test_histogram_memory_is_fixed_and_extremes_are_clamped() -> None:
    hist = LatencyHistogram()
    size = hist._view.nbytes
    for ms in (0.0, -1.0, math.nan, 1e-9, 1e12, 0.2):
        hist.record_ms(ms)
    assert hist._view.nbytes == size
    assert hist.count == 6
    assert hist.max_ms == 1e12
    assert all(math.isnan(v) for v in LatencyHistogram().percentiles_ms((50.0, 99.0)))
    with pytest.raises(ValueError, match="percentile"):
        hist.percentiles_ms((101.0,))


def test_manager_metrics_read_latency_from_the_histogram() -> None:
    risk = AdvancedRiskManager(_config())
    try:
        assert math.isnan(risk.metrics()["latency_max_ms"])
        _run(risk, 20)
        metrics = risk.metrics()
        assert metrics["calls"] == 20
        assert 0.0 < metrics["latency_p50_ms"] <= metrics["latency_p99_ms"] <= metrics["latency_max_ms"]
    finally:
        risk.close_sync()
