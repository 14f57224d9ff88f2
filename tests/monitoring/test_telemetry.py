"""Telemetry (issue 15): what the manager records per decision, against hand-computed counts."""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap
import time
import tracemalloc
from collections.abc import Mapping

import numpy as np
import pytest

from advanced_risk.engine.journal import JournalWriter
from advanced_risk.engine.state import StateStore
from advanced_risk.errors import InvalidInputError
from advanced_risk.histogram import LatencyHistogram
from advanced_risk.monitoring.telemetry import (
    DEFAULT_LATENCY_BUCKETS_S,
    JournalCounters,
    Telemetry,
    var_breached,
)
from advanced_risk.types import (
    CorrelationState,
    HedgeInstruction,
    RiskDecision,
    RiskLevel,
    TradingState,
)


def decision(
    *,
    equity: float | None = None,
    var: float = 0.02,
    degraded: bool = False,
    alerts: tuple[str, ...] = (),
    drift: Mapping[str, float] | None = None,
    state: TradingState = TradingState.ACTIVE,
    leverage: float = 1.0,
    hedge_ratio: float = 0.0,
    drawdown: float = math.nan,
) -> RiskDecision:
    return RiskDecision(
        rebalance_weights={"a": 0.5, "cash": 0.5},
        leverage=leverage,
        hedge=HedgeInstruction(hedge_ratio > 0.0, hedge_ratio, ""),
        position_sizes={},
        stop_levels={},
        var=var,
        cvar=var * 1.5,
        correlation=CorrelationState(math.nan, False),
        risk_level=RiskLevel.LOW,
        trading_state=state,
        alerts=alerts,
        degraded=degraded,
        equity=equity,
        drawdown=drawdown,
        drift=drift,
    )


def test_outcome_counts_and_deadline_misses_match_hand_counts() -> None:
    telemetry = Telemetry()
    flags = [(False, False), (True, True), (False, True), (False, False), (True, False)]
    for degraded, late in flags:
        telemetry.record(decision(degraded=degraded), 1e-4, late)
    s = telemetry.snapshot()
    assert (s.decisions_ok, s.decisions_degraded, s.deadline_misses, s.decisions) == (3, 2, 2, 5)
    assert (telemetry.decisions, telemetry.degraded, telemetry.deadline_misses) == (5, 2, 2)


@pytest.mark.parametrize(
    ("previous_equity", "equity", "previous_var", "breach"),
    [
        pytest.param(100.0, 97.0, 0.02, True, id="loss-beyond-var"),
        pytest.param(100.0, 75.0, 0.25, False, id="loss-equal-to-var"),
        pytest.param(100.0, 99.0, 0.02, False, id="loss-within-var"),
        pytest.param(100.0, 110.0, 0.02, False, id="gain"),
        pytest.param(None, 90.0, 0.02, False, id="no-previous-equity"),
        pytest.param(100.0, None, 0.02, False, id="no-equity"),
        pytest.param(100.0, 50.0, math.nan, False, id="var-warming-up"),
        pytest.param(math.nan, 50.0, 0.02, False, id="nan-previous-equity"),
        pytest.param(100.0, math.nan, 0.02, False, id="nan-equity"),
        pytest.param(0.0, 50.0, 0.02, False, id="zero-previous-equity"),
    ],
)
def test_var_breached_is_realised_return_below_minus_previous_var(
    previous_equity: float | None, equity: float | None, previous_var: float, breach: bool
) -> None:
    assert var_breached(previous_equity, equity, previous_var) is breach


def test_var_breaches_match_a_hand_computed_sequence() -> None:
    # (equity, VaR given for the next bar); returns: -3 % vs 2 % (breach), -0.5 % vs 2 %, -6.7 % vs NaN
    # (skipped), no equity (skipped), no previous equity (skipped), -6.25 % vs 5 % (breach),
    # +6.7 % vs 10 %, -1.9 % vs 1 % (breach)
    bars = [(100.0, 0.02), (97.0, 0.02), (96.5, math.nan), (90.0, 0.01), (None, 0.02),
            (80.0, 0.05), (75.0, 0.10), (80.0, 0.01), (78.5, 0.01)]  # fmt: skip
    telemetry = Telemetry()
    for equity, var in bars:
        telemetry.record(decision(equity=equity, var=var), 1e-4, False)
    assert telemetry.snapshot().var_breaches == 3


def test_alerts_are_counted_by_the_kind_alert_kind_gives() -> None:
    telemetry = Telemetry()
    telemetry.record(
        decision(alerts=("trading state active -> reducing: drawdown 9 %", "correlation shock: 0.9")),
        1e-4,
        False,
    )
    telemetry.record(decision(), 1e-4, False)
    telemetry.record(
        decision(alerts=("trading state reducing -> halted: kill switch: operator", "something new")),
        1e-4,
        False,
    )
    alerts = telemetry.snapshot().alerts
    nonzero = {kind: n for kind, n in alerts.items() if n}
    assert nonzero == {"state_change": 1, "correlation_shock": 1, "kill_switch": 1, "other": 1}
    assert alerts["drift"] == 0  # every kind is exported from the start


def test_a_custom_classifier_counts_its_own_kinds() -> None:
    telemetry = Telemetry(classify=lambda text: text.split(":")[0])
    for alerts in (("x: 1", "y: 2"), ("x: 3",), ()):
        telemetry.record(decision(alerts=alerts), 1e-4, False)
    alerts = telemetry.snapshot().alerts
    assert (alerts["x"], alerts["y"]) == (2, 1)


def test_drift_keeps_the_latest_score_per_model() -> None:
    telemetry = Telemetry()
    for drift in ({"policy": 0.5}, None, {"policy": 1.5, "risk_agents": 0.25}, {"risk_agents": 3.0}, {}):
        telemetry.record(decision(drift=drift), 1e-4, False)
    assert dict(telemetry.snapshot().drift) == {"policy": 1.5, "risk_agents": 3.0}


def test_gauges_are_the_last_decisions_and_nan_before_any() -> None:
    telemetry = Telemetry()
    empty = telemetry.snapshot()
    gauges = ("var", "cvar", "leverage", "drawdown", "hedge_ratio", "equity")
    assert all(math.isnan(getattr(empty, name)) for name in gauges)
    assert empty.trading_state is None
    telemetry.record(decision(equity=100.0), 1e-4, False)
    last = decision(
        equity=95.0, var=0.03, leverage=0.5, hedge_ratio=0.25, drawdown=0.05, state=TradingState.REDUCING
    )
    telemetry.record(last, 1e-4, False)
    s = telemetry.snapshot(kill_switch=True)
    assert (s.var, s.cvar, s.leverage, s.drawdown, s.hedge_ratio, s.equity) == (
        0.03, 0.03 * 1.5, 0.5, 0.05, 0.25, 95.0,
    )  # fmt: skip
    assert s.trading_state is TradingState.REDUCING
    assert s.kill_switch is True
    assert telemetry.last_decision is last
    assert telemetry.snapshot(trading_state=TradingState.HALTED).trading_state is TradingState.HALTED


def _log_uniform_latencies(n: int, seed: int) -> np.ndarray:
    """Latencies from 20 us to 2 s, none within 0.2 % below a bucket bound (the histogram's buckets
    are 1/1,024 wide: a value in a bound's own bucket counts as above it)."""
    rng = np.random.default_rng(seed)
    latencies = np.exp(rng.uniform(np.log(20e-6), np.log(2.0), n))
    bounds = np.array(DEFAULT_LATENCY_BUCKETS_S)
    near = ((latencies[:, None] >= bounds * (1 - 2e-3)) & (latencies[:, None] <= bounds)).any(axis=1)
    return latencies[~near]


def test_latency_buckets_match_numpy_on_the_same_latencies() -> None:
    latencies = _log_uniform_latencies(20_000, seed=15)
    telemetry = Telemetry()
    for seconds in latencies:
        telemetry.record(decision(), float(seconds), False)
    s = telemetry.snapshot()
    expected = [int((latencies <= bound).sum()) for bound in DEFAULT_LATENCY_BUCKETS_S]
    assert [bound for bound, _ in s.latency_buckets] == list(DEFAULT_LATENCY_BUCKETS_S)
    assert [count for _, count in s.latency_buckets] == expected
    assert s.latency_count == len(latencies)
    assert s.latency_sum_s == pytest.approx(float(latencies.sum()), rel=1e-9)


def test_histogram_cumulative_counts_at_exact_bucket_edges() -> None:
    hist = LatencyHistogram()
    for ms in (0.0999, 0.1, 0.5, 0.9999, 1.0, 2.0, math.nan, -1.0):
        hist.record_ms(ms)
    # 100 us and 1 ms are bucket edges: a value equal to the bound counts above it
    assert hist.cumulative_counts((1e-4, 1e-3, 2.5e-3, math.inf)) == [3, 6, 8, 8]
    assert hist.sum_ms == pytest.approx(0.0999 + 0.1 + 0.5 + 0.9999 + 1.0 + 2.0)
    with pytest.raises(ValueError, match="bucket bound"):
        hist.cumulative_counts((0.0,))


@pytest.mark.parametrize("latency_s", [math.nan, -1e-6, math.inf], ids=["nan", "negative", "inf"])
def test_a_bad_latency_raises_naming_the_field_and_counts_nothing(latency_s: float) -> None:
    telemetry = Telemetry()
    with pytest.raises(InvalidInputError, match="latency_s"):
        telemetry.record(decision(), latency_s, False)
    assert telemetry.snapshot().decisions == 0
    assert telemetry.snapshot().latency_count == 0


@pytest.mark.parametrize(
    "bounds",
    [(), (1e-3, 1e-3), (1e-3, 1e-4), (0.0, 1.0), (1e-3, math.inf), (math.nan,)],
    ids=["empty", "repeated", "decreasing", "zero", "inf", "nan"],
)
def test_bad_bucket_bounds_raise_naming_the_field(bounds: tuple[float, ...]) -> None:
    with pytest.raises(InvalidInputError, match="latency_buckets_s"):
        Telemetry(latency_buckets_s=bounds)


def test_record_keeps_fixed_memory_over_many_decisions() -> None:
    decisions = [
        decision(equity=100.0 + i, alerts=("correlation shock",), drift={"policy": 0.1 * i}) for i in range(4)
    ]
    telemetry = Telemetry()
    for d in decisions:  # every dict key exists from here on
        telemetry.record(d, 1e-4, False)
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        for i in range(20_000):
            telemetry.record(decisions[i % 4], 1e-4 + i * 1e-9, i % 7 == 0)
        growth = sum(stat.size_diff for stat in tracemalloc.take_snapshot().compare_to(before, "filename"))
    finally:
        tracemalloc.stop()
    assert growth < 4096, f"{growth} bytes kept by 20,000 records"


def test_journal_counters_read_the_writer_and_last_commit_ts_is_set_on_commit() -> None:
    writer = JournalWriter(StateStore(None), linger_s=0.0)
    try:
        assert JournalCounters.read(writer).last_commit_ts is None
        before = time.time()
        writer.submit("d-1", '{"decision_id": "d-1"}').result(timeout=5)
        after = time.time()
        counters = JournalCounters.read(writer)
    finally:
        writer.close()
    assert (counters.committed, counters.dropped, counters.pending, counters.healthy) == (1, 0, 0, True)
    assert counters.last_commit_ts is not None
    assert before <= counters.last_commit_ts <= after
    s = Telemetry().snapshot(journal=counters)
    assert s.journal_last_commit_age_s == pytest.approx(s.taken_at - counters.last_commit_ts)
    assert math.isnan(Telemetry().snapshot().journal_last_commit_age_s)


BLOCKED_IMPORT = textwrap.dedent(
    """
    import importlib.abc
    import sys

    class BlockPrometheus(importlib.abc.MetaPathFinder):
        def find_spec(self, fullname, path, target=None):
            if fullname.split(".")[0] == "prometheus_client":
                raise ImportError(f"{fullname} is blocked: the core install has no [metrics] extra")
            return None

    sys.meta_path.insert(0, BlockPrometheus())
    import advanced_risk.manager
    import advanced_risk.monitoring.telemetry as telemetry

    t = telemetry.Telemetry()
    print(t.snapshot().decisions, "prometheus_client" in sys.modules)
    try:
        import advanced_risk.monitoring.prometheus
    except ImportError as exc:
        print("blocked:", exc)
    """
)


def test_the_core_and_telemetry_import_without_prometheus_client() -> None:
    done = subprocess.run(
        [sys.executable, "-c", BLOCKED_IMPORT], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert lines[0] == "0 False"
    assert lines[1].startswith("blocked: prometheus_client")  # the finder was in force
