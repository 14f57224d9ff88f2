"""The Prometheus endpoint (issue 15): scraped over HTTP, parsed, checked against the snapshot."""

from __future__ import annotations

import math
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

pytest.importorskip("prometheus_client")

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from tests.monitoring.test_telemetry import decision

from advanced_risk.errors import InvalidInputError
from advanced_risk.monitoring.prometheus import (
    MetricsServer,
    RiskMetricsCollector,
    exported_names,
    serve_metrics,
)
from advanced_risk.monitoring.telemetry import JournalCounters, Telemetry, TelemetrySnapshot
from advanced_risk.types import TradingState

EXPECTED_NAMES = {
    "advanced_risk_decision_latency_seconds",
    "advanced_risk_decisions_total",
    "advanced_risk_deadline_misses_total",
    "advanced_risk_trading_state",
    "advanced_risk_kill_switch",
    "advanced_risk_var",
    "advanced_risk_cvar",
    "advanced_risk_leverage",
    "advanced_risk_drawdown",
    "advanced_risk_hedge_ratio",
    "advanced_risk_equity",
    "advanced_risk_var_breaches_total",
    "advanced_risk_alerts_total",
    "advanced_risk_input_drift_score",
    "advanced_risk_journal_rows_total",
    "advanced_risk_journal_dropped_total",
    "advanced_risk_journal_pending",
    "advanced_risk_journal_healthy",
    "advanced_risk_journal_last_commit_age_seconds",
}
JOURNAL = JournalCounters(committed=41, dropped=2, pending=3, healthy=False, last_commit_ts=1.0e9)


def _fed_telemetry() -> Telemetry:
    telemetry = Telemetry()
    bars = [
        decision(equity=100.0, var=0.02, alerts=("correlation shock: 0.91",), drift={"policy": 0.4}),
        decision(equity=97.0, var=0.03, degraded=True, alerts=("degraded: policy timed out",)),
        decision(
            equity=96.0,
            var=0.025,
            leverage=0.5,
            hedge_ratio=0.5,
            drawdown=0.04,
            state=TradingState.REDUCING,
            drift={"policy": 1.2, "risk_agents": 0.3},
        ),
    ]
    for i, d in enumerate(bars):
        telemetry.record(d, 2e-4 * (i + 1), late=i == 1)
    return telemetry


@pytest.fixture
def fed() -> Telemetry:
    return _fed_telemetry()


@pytest.fixture
def server(fed: Telemetry) -> Iterator[MetricsServer]:
    handle = serve_metrics(lambda: fed.snapshot(journal=JOURNAL, kill_switch=True), port=0)
    yield handle
    handle.close()


def _scrape(port: int) -> dict[str, list[Sample]]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        assert response.status == 200
        text = response.read().decode()
    return {family.name: family.samples for family in text_string_to_metric_families(text)}


def _value(samples: list[Sample], name: str, **labels: str) -> float:
    matches = [s.value for s in samples if s.name == name and s.labels == labels]
    assert len(matches) == 1, (name, labels, samples)
    return matches[0]


def test_the_endpoint_serves_every_metric_on_a_free_port(server: MetricsServer) -> None:
    assert server.port > 0
    assert server.addr == "127.0.0.1"
    families = _scrape(server.port)
    # the parser names a counter's family without _total
    exported = {name + "_total" if name + "_total" in EXPECTED_NAMES else name for name in families}
    assert exported == EXPECTED_NAMES


def test_scraped_counters_and_gauges_equal_the_snapshot(server: MetricsServer, fed: Telemetry) -> None:
    f = _scrape(server.port)
    s = fed.snapshot()
    assert _value(f["advanced_risk_decisions"], "advanced_risk_decisions_total", outcome="ok") == 2
    assert _value(f["advanced_risk_decisions"], "advanced_risk_decisions_total", outcome="degraded") == 1
    assert _value(f["advanced_risk_deadline_misses"], "advanced_risk_deadline_misses_total") == 1
    assert _value(f["advanced_risk_var_breaches"], "advanced_risk_var_breaches_total") == s.var_breaches == 1
    for name in ("var", "cvar", "leverage", "drawdown", "hedge_ratio", "equity"):
        assert _value(f[f"advanced_risk_{name}"], f"advanced_risk_{name}") == getattr(s, name)
    assert _value(f["advanced_risk_kill_switch"], "advanced_risk_kill_switch") == 1.0
    state = f["advanced_risk_trading_state"]
    states = {st.value: _value(state, "advanced_risk_trading_state", state=st.value) for st in TradingState}
    assert states == {"active": 0.0, "reducing": 1.0, "halted": 0.0}
    alerts = f["advanced_risk_alerts"]
    assert _value(alerts, "advanced_risk_alerts_total", kind="correlation_shock") == 1
    assert _value(alerts, "advanced_risk_alerts_total", kind="degraded") == 1
    assert _value(alerts, "advanced_risk_alerts_total", kind="drift") == 0
    drift = f["advanced_risk_input_drift_score"]
    assert _value(drift, "advanced_risk_input_drift_score", model="policy") == 1.2
    assert _value(drift, "advanced_risk_input_drift_score", model="risk_agents") == 0.3


def test_scraped_journal_metrics_equal_the_counters(server: MetricsServer) -> None:
    f = _scrape(server.port)
    assert _value(f["advanced_risk_journal_rows"], "advanced_risk_journal_rows_total") == 41
    assert _value(f["advanced_risk_journal_dropped"], "advanced_risk_journal_dropped_total") == 2
    assert _value(f["advanced_risk_journal_pending"], "advanced_risk_journal_pending") == 3
    assert _value(f["advanced_risk_journal_healthy"], "advanced_risk_journal_healthy") == 0.0
    name = "advanced_risk_journal_last_commit_age_seconds"
    assert JOURNAL.last_commit_ts is not None
    assert _value(f[name], name) == pytest.approx(time.time() - JOURNAL.last_commit_ts, abs=5.0)


def test_scraped_latency_histogram_equals_the_snapshot(server: MetricsServer, fed: Telemetry) -> None:
    samples = _scrape(server.port)["advanced_risk_decision_latency_seconds"]
    s = fed.snapshot()
    buckets = {float(x.labels["le"]): x.value for x in samples if x.name.endswith("_bucket")}
    assert buckets == {**{le: float(n) for le, n in s.latency_buckets}, math.inf: 3.0}
    assert _value(samples, "advanced_risk_decision_latency_seconds_count") == s.latency_count == 3
    assert _value(samples, "advanced_risk_decision_latency_seconds_sum") == pytest.approx(12e-4)
    assert buckets[5e-4] == 2.0  # 0.2 ms and 0.4 ms at or below 0.5 ms, 0.6 ms above


def test_before_any_decision_gauges_are_nan_and_journal_metrics_absent() -> None:
    with serve_metrics(Telemetry().snapshot, port=0) as handle:
        f = _scrape(handle.port)
    assert math.isnan(_value(f["advanced_risk_var"], "advanced_risk_var"))
    assert f["advanced_risk_journal_rows"] == []
    assert {x.value for x in f["advanced_risk_trading_state"]} == {0.0}
    assert (
        _value(f["advanced_risk_decision_latency_seconds"], "advanced_risk_decision_latency_seconds_count")
        == 0
    )


def test_the_endpoint_stops_and_frees_its_port_on_close(fed: Telemetry) -> None:
    handle = serve_metrics(fed.snapshot, port=0)
    port = handle.port
    assert _scrape(port)
    handle.close()
    handle.close()  # again: nothing
    assert handle.closed
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2)
    with socket.socket() as sock:  # nothing listens there any more (TIME_WAIT aside)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))


def test_serving_on_a_given_registry_registers_and_close_unregisters(fed: Telemetry) -> None:
    registry = CollectorRegistry()
    handle = serve_metrics(fed.snapshot, port=0, registry=registry)
    try:
        assert b"advanced_risk_decisions_total" in generate_latest(registry)
        with pytest.raises(ValueError, match="Duplicated timeseries"):
            registry.register(RiskMetricsCollector(fed.snapshot))
    finally:
        handle.close()
    assert b"advanced_risk" not in generate_latest(registry)


def test_a_collector_on_the_callers_registry_reads_the_source_at_each_scrape() -> None:
    telemetry = Telemetry()
    calls: list[TelemetrySnapshot] = []

    def source() -> TelemetrySnapshot:
        calls.append(telemetry.snapshot())
        return calls[-1]

    registry = CollectorRegistry()
    registry.register(RiskMetricsCollector(source, namespace="bot_risk"))
    assert calls == []  # registering reads nothing
    telemetry.record(decision(), 1e-4, False)
    text = generate_latest(registry).decode()
    assert 'bot_risk_decisions_total{outcome="ok"} 1.0' in text
    assert len(calls) == 1


def test_exported_names_lists_every_sample_family() -> None:
    assert set(exported_names()) == EXPECTED_NAMES


@pytest.mark.parametrize("port", [-1, 65536, 1.5, True, "9100"], ids=["neg", "big", "float", "bool", "str"])
def test_a_bad_port_raises_naming_the_field(port: object) -> None:
    with pytest.raises(InvalidInputError, match="port"):
        serve_metrics(Telemetry().snapshot, port=port)  # type: ignore[arg-type]


@pytest.mark.parametrize("namespace", ["", "9risk", "risk-engine", "a:b"])
def test_a_bad_namespace_raises_naming_the_field(namespace: str) -> None:
    with pytest.raises(InvalidInputError, match="namespace"):
        RiskMetricsCollector(Telemetry().snapshot, namespace=namespace)
