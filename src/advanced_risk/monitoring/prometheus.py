"""The telemetry as Prometheus metrics: a custom collector read at scrape time, and an HTTP endpoint.

Needs the ``[metrics]`` extra (``pip install "advanced_risk[metrics]"``, i.e. ``prometheus-client``);
this is the only module of the package that imports ``prometheus_client`` (an import-linter contract
checks it). Nothing is updated per decision: :class:`RiskMetricsCollector` asks its ``source`` for a
:class:`~advanced_risk.monitoring.telemetry.TelemetrySnapshot` on every scrape and builds the metric
families from it, so the decision path pays only :meth:`Telemetry.record
<advanced_risk.monitoring.telemetry.Telemetry.record>`.

Metrics (``namespace`` ``advanced_risk``; docs/operations.md has the table with units):

- ``advanced_risk_decision_latency_seconds`` (histogram), ``advanced_risk_decisions_total{outcome}``,
  ``advanced_risk_deadline_misses_total``;
- ``advanced_risk_trading_state{state}`` (1 for the current state, 0 for the others),
  ``advanced_risk_kill_switch``;
- the last decision's ``advanced_risk_var``, ``_cvar``, ``_leverage``, ``_drawdown``,
  ``_hedge_ratio``, ``_equity``; ``advanced_risk_var_breaches_total``;
- ``advanced_risk_alerts_total{kind}``, ``advanced_risk_input_drift_score{model}``;
- ``advanced_risk_journal_rows_total``, ``_journal_dropped_total``, ``_journal_pending``,
  ``_journal_healthy``, ``_journal_last_commit_age_seconds``.

A gauge with no value yet (VaR warming up, no decision yet, no journal commit yet) is exported as
NaN, so the series exists from the first scrape; the journal metrics have no sample while the
source has no journal (a closed manager).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from advanced_risk.errors import InvalidInputError
from advanced_risk.logs import get_logger
from advanced_risk.monitoring.telemetry import JournalCounters, Telemetry, TelemetrySnapshot
from advanced_risk.types import TradingState

__all__ = ["MetricsServer", "RiskMetricsCollector", "exported_names", "metric_families", "serve_metrics"]

log = get_logger(__name__)

_NAMESPACE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


class RiskMetricsCollector(Collector):
    """A Prometheus collector over a telemetry source, read at every scrape (nothing per decision).

    Parameters
    ----------
    source : returns the telemetry now, e.g. ``AdvancedRiskManager.telemetry_snapshot``; called
        once per scrape, on the scraping thread.
    namespace : prefix of every metric name (a valid Prometheus name, no colon).

    Raises
    ------
    InvalidInputError
        ``source`` not callable, or ``namespace`` not a valid metric name prefix.

    Examples
    --------
    >>> from prometheus_client import CollectorRegistry, generate_latest
    >>> registry = CollectorRegistry()
    >>> registry.register(RiskMetricsCollector(Telemetry().snapshot))
    >>> b"advanced_risk_decisions_total" in generate_latest(registry)
    True
    """

    def __init__(self, source: Callable[[], TelemetrySnapshot], namespace: str = "advanced_risk") -> None:
        if not callable(source):
            raise InvalidInputError(f"source must be callable, got {type(source).__name__}")
        if not isinstance(namespace, str) or _NAMESPACE.fullmatch(namespace) is None:
            raise InvalidInputError(f"namespace must match [a-zA-Z_][a-zA-Z0-9_]*, got {namespace!r}")
        self._source = source
        self._namespace = namespace

    def collect(self) -> Iterator[Metric]:
        """The metric families of the source's snapshot now."""
        yield from metric_families(self._source(), self._namespace)

    def describe(self) -> Iterator[Metric]:
        """The families' names and types (no call to the source: registering reads no telemetry)."""
        yield from metric_families(Telemetry().snapshot(), self._namespace)


def metric_families(snapshot: TelemetrySnapshot, namespace: str = "advanced_risk") -> list[Metric]:
    """Every metric family of ``snapshot``, names prefixed by ``namespace``."""
    return [
        *_decision_families(snapshot, namespace),
        *_risk_families(snapshot, namespace),
        *_journal_families(snapshot, namespace),
    ]


def exported_names(namespace: str = "advanced_risk") -> tuple[str, ...]:
    """The name of every metric the collector exports, as a query names it (a counter with its
    ``_total``; a histogram without its ``_bucket`` / ``_sum`` / ``_count`` suffixes)."""
    probe = Telemetry().snapshot(journal=JournalCounters(committed=0, dropped=0, pending=0, healthy=True))
    return tuple(
        f"{family.name}_total" if family.type == "counter" else family.name
        for family in metric_families(probe, namespace)
    )


def _gauge(name: str, documentation: str, value: float, unit: str = "") -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value, unit=unit)


def _decision_families(s: TelemetrySnapshot, ns: str) -> list[Metric]:
    buckets = [(repr(float(le)), float(n)) for le, n in s.latency_buckets]
    latency = HistogramMetricFamily(
        f"{ns}_decision_latency_seconds",
        "Full time of a manage_risk call, any wait for a durable journal row included.",
        buckets=[*buckets, ("+Inf", float(s.latency_count))],
        sum_value=s.latency_sum_s,
        unit="seconds",
    )
    decisions = CounterMetricFamily(
        f"{ns}_decisions_total",
        "Decisions returned, by outcome (degraded: conservative fallback).",
        labels=["outcome"],
    )
    decisions.add_metric(["ok"], s.decisions_ok)
    decisions.add_metric(["degraded"], s.decisions_degraded)
    misses = CounterMetricFamily(
        f"{ns}_deadline_misses_total", "Calls that returned after their deadline.", value=s.deadline_misses
    )
    state = GaugeMetricFamily(
        f"{ns}_trading_state", "1 for the current trading state, 0 for the others.", labels=["state"]
    )
    for member in TradingState:
        state.add_metric([member.value], 1.0 if s.trading_state is member else 0.0)
    kill = _gauge(f"{ns}_kill_switch", "1 while the manual kill switch is engaged.", float(s.kill_switch))
    return [latency, decisions, misses, state, kill]


def _risk_families(s: TelemetrySnapshot, ns: str) -> list[Metric]:
    gauges = [
        _gauge(f"{ns}_var", "Last decision's one-bar VaR of the decided book, fraction of equity.", s.var),
        _gauge(f"{ns}_cvar", "Last decision's one-bar CVaR of the decided book, fraction of equity.", s.cvar),
        _gauge(f"{ns}_leverage", "Last decision's gross exposure multiplier.", s.leverage),
        _gauge(f"{ns}_drawdown", "Last decision's account drawdown from peak equity, fraction.", s.drawdown),
        _gauge(f"{ns}_hedge_ratio", "Last decision's share of exposure to hedge (0 to 1).", s.hedge_ratio),
        _gauge(f"{ns}_equity", "Account equity given with the last decision (currency).", s.equity),
    ]
    breaches = CounterMetricFamily(
        f"{ns}_var_breaches_total",
        "Bars whose realised return (equity ratio - 1) fell below minus the previous decision's VaR.",
        value=s.var_breaches,
    )
    alerts = CounterMetricFamily(f"{ns}_alerts_total", "Decision alerts, by kind.", labels=["kind"])
    for kind, count in sorted(s.alerts.items()):
        alerts.add_metric([kind], count)
    drift = GaugeMetricFamily(
        f"{ns}_input_drift_score",
        "Latest input drift score of a learned model (0: like training).",
        labels=["model"],
    )
    for model, score in sorted(s.drift.items()):
        drift.add_metric([model], score)
    return [*gauges, breaches, alerts, drift]


def _journal_families(s: TelemetrySnapshot, ns: str) -> list[Metric]:
    rows = CounterMetricFamily(f"{ns}_journal_rows_total", "Journal rows committed (current opening).")
    dropped = CounterMetricFamily(
        f"{ns}_journal_dropped_total", "Journal rows lost: more than max_pending waited for a failing store."
    )
    pending = GaugeMetricFamily(f"{ns}_journal_pending", "Journal rows kept for a retry.")
    healthy = GaugeMetricFamily(f"{ns}_journal_healthy", "0 from a failed journal commit until a good one.")
    age = GaugeMetricFamily(
        f"{ns}_journal_last_commit_age_seconds",
        "Seconds since the journal last made rows durable (NaN before the first commit).",
        unit="seconds",
    )
    journal = s.journal
    if journal is not None:
        rows.add_metric([], journal.committed)
        dropped.add_metric([], journal.dropped)
        pending.add_metric([], journal.pending)
        healthy.add_metric([], float(journal.healthy))
        age.add_metric([], s.journal_last_commit_age_s)
    return [rows, dropped, pending, healthy, age]


class MetricsServer:
    """A running metrics endpoint (from :func:`serve_metrics`): its port, and :meth:`close`.

    Also a context manager that closes on exit.
    """

    def __init__(
        self,
        server: WSGIServer,
        thread: threading.Thread,
        registry: CollectorRegistry,
        collector: RiskMetricsCollector,
    ) -> None:
        self._server = server
        self._thread = thread
        self._registry = registry
        self.collector = collector
        """The collector serving the telemetry (registered on ``registry`` until :meth:`close`)."""
        self._closed = False

    @property
    def port(self) -> int:
        """The port the endpoint listens on (the one picked when 0 was asked)."""
        return int(self._server.server_address[1])

    @property
    def addr(self) -> str:
        """The address the endpoint listens on."""
        return str(self._server.server_address[0])

    @property
    def registry(self) -> CollectorRegistry:
        """The registry the endpoint serves."""
        return self._registry

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has been called."""
        return self._closed

    def close(self, timeout: float = 5.0) -> None:
        """Stop serving, release the port and unregister the collector (again: does nothing)."""
        if self._closed:
            return
        self._closed = True
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout)
        self._registry.unregister(self.collector)
        log.info("metrics_server_closed", port=self.port)

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def serve_metrics(
    source: Callable[[], TelemetrySnapshot],
    port: int,
    addr: str = "127.0.0.1",
    registry: CollectorRegistry | None = None,
    *,
    namespace: str = "advanced_risk",
) -> MetricsServer:
    """Serve the telemetry of ``source`` over HTTP for Prometheus to scrape, on a daemon thread.

    Parameters
    ----------
    source : returns the telemetry now (e.g. ``AdvancedRiskManager.telemetry_snapshot``).
    port : TCP port (0: a free one, read back from ``.port``).
    addr : address to listen on; the default serves this machine only (``"0.0.0.0"``: every
        interface).
    registry : the registry to register the collector on and serve; default a new one of its own
        (never the global ``prometheus_client.REGISTRY``), holding only these metrics.
    namespace : prefix of the metric names.

    Returns
    -------
    MetricsServer
        ``.port``, ``.close()`` (stops serving and unregisters the collector); a context manager.

    Raises
    ------
    InvalidInputError
        ``port`` not an int in [0, 65535], or a bad ``source`` / ``namespace``.
    ValueError
        ``registry`` already holds metrics of these names (prometheus_client's duplicate check).
    OSError
        The address cannot be bound (port in use): the message names ``addr:port``, ``errno`` is the
        socket's (e.g. ``EADDRINUSE``); the collector is unregistered again.
    """
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise InvalidInputError(f"port must be an int in [0, 65535], got {port!r}")
    registry = CollectorRegistry() if registry is None else registry
    collector = RiskMetricsCollector(source, namespace)
    registry.register(collector)
    try:
        server, thread = start_http_server(port, addr=addr, registry=registry)
    except OSError as exc:  # the same OSError (errno kept), saying which address could not be bound
        registry.unregister(collector)
        raise OSError(exc.errno, f"cannot serve metrics on {addr}:{port}: {exc.strerror or exc}") from exc
    except BaseException:
        registry.unregister(collector)
        raise
    handle = MetricsServer(server, thread, registry, collector)
    log.info("metrics_server_started", addr=handle.addr, port=handle.port)
    return handle
