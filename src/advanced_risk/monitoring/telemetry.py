"""What the manager counts per decision, for monitoring: counters, the last decision's gauges, latency.

:class:`Telemetry` is fed once per call, on the decision path, so :meth:`Telemetry.record` is O(1)
and allocates nothing in the common case: a few integer increments, one histogram count, and a
reference to the decision (its gauges are read only when someone asks). Alerts are classified and
drift scores copied only when a decision carries them. Everything costly (the latency buckets' one
``np.cumsum``, copies of the dictionaries) happens in :meth:`Telemetry.snapshot`, at scrape time.

The snapshot is a frozen :class:`TelemetrySnapshot`; ``advanced_risk.monitoring.prometheus`` turns
it into Prometheus metrics (this module imports neither ``prometheus_client`` nor anything beyond
NumPy and the standard library, so the core install keeps its dependencies).

Threads: one thread records (the manager serialises its calls); a scrape may read from another.
No lock is taken. :meth:`Telemetry.record` bumps a sequence number before and after its updates
(odd while it writes) and :meth:`Telemetry.snapshot` reads again when the number moved under it, so
a snapshot's counters, latency histogram and gauges are those of one instant between two calls (a
scrape on another thread could otherwise be descheduled between two reads while dozens of
decisions ran: measured 32 decisions apart between ``decisions_total`` and the latency count).
After :data:`_SNAPSHOT_TRIES` moved reads (a recorder that never pauses) the last read is used.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Protocol

from advanced_risk.errors import InvalidInputError
from advanced_risk.histogram import LatencyHistogram
from advanced_risk.monitoring.alerts import AlertKind, alert_kind
from advanced_risk.types import RiskDecision, TradingState

__all__ = [
    "DEFAULT_LATENCY_BUCKETS_S",
    "JournalCounters",
    "JournalLike",
    "Telemetry",
    "TelemetrySnapshot",
    "var_breached",
]

DEFAULT_LATENCY_BUCKETS_S: tuple[float, ...] = (
    50e-6,
    100e-6,
    250e-6,
    500e-6,
    1e-3,
    2.5e-3,
    5e-3,
    10e-3,
    25e-3,
    50e-3,
    100e-3,
    250e-3,
    1.0,
)
"""Upper bounds (seconds) of the latency histogram's Prometheus buckets: 50 us to 1 s, dense around
the sub-millisecond budget of a call (the ones up to 10 ms are exact bucket edges of
:class:`~advanced_risk.histogram.LatencyHistogram`; the others within 1/1,024)."""


_SNAPSHOT_TRIES = 50
"""Reads :meth:`Telemetry.snapshot` makes at most while records keep landing under it."""


class JournalLike(Protocol):
    """What :meth:`JournalCounters.read` reads (``advanced_risk.engine.journal.JournalWriter``)."""

    @property
    def committed(self) -> int: ...
    @property
    def dropped(self) -> int: ...
    @property
    def pending(self) -> int: ...
    @property
    def healthy(self) -> bool: ...
    @property
    def last_commit_ts(self) -> float | None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class JournalCounters:
    """The journal writer's counters at one instant (of its current opening).

    Attributes
    ----------
    committed : rows made durable.
    dropped : rows lost because more than ``max_pending`` waited for a failing store (a fault).
    pending : rows kept for a retry while the store fails.
    healthy : False from a failed commit until the next successful one.
    last_commit_ts : Unix time of the last commit that made rows durable; None before the first.
    """

    committed: int
    dropped: int
    pending: int
    healthy: bool
    last_commit_ts: float | None = None

    @classmethod
    def read(cls, journal: JournalLike) -> JournalCounters:
        """The counters of ``journal`` now (five attribute reads, no lock)."""
        return cls(
            committed=journal.committed,
            dropped=journal.dropped,
            pending=journal.pending,
            healthy=journal.healthy,
            last_commit_ts=journal.last_commit_ts,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class TelemetrySnapshot:
    """Everything :class:`Telemetry` knows at one instant, plus the caller's journal and kill switch.

    Attributes
    ----------
    taken_at : Unix time of the snapshot.
    decisions_ok, decisions_degraded : decisions recorded, by outcome (``RiskDecision.degraded``).
    deadline_misses : calls that returned after their deadline.
    latency_buckets : ``(upper bound in seconds, cumulative count)`` per bucket bound, ascending,
        without the ``+Inf`` bucket (that count is ``latency_count``); see
        :meth:`~advanced_risk.histogram.LatencyHistogram.cumulative_counts` for the precision.
    latency_count, latency_sum_s : calls recorded and the sum of their latencies (seconds).
    trading_state : the caller's current state if given, else the last decision's; None before any.
    kill_switch : whether the manual kill switch is engaged (as given by the caller).
    var, cvar, leverage, drawdown, hedge_ratio : the last decision's values (VaR and CVaR as
        positive loss fractions of equity); NaN before the first decision, and where the decision
        has NaN (VaR warming up, drawdown unknown).
    equity : the last decision's ``equity``; NaN when it was not given.
    var_breaches : bars whose realised return fell below minus the previous decision's VaR (see
        :func:`var_breached`).
    alerts : alert kind -> alerts counted (every :class:`AlertKind` present, from 0).
    drift : model -> the latest input drift score a decision reported for it (NaN while warming, and
        for a score that is not a number).
    journal : the journal's counters; None when the caller has no journal (closed manager).
    """

    taken_at: float
    decisions_ok: int
    decisions_degraded: int
    deadline_misses: int
    latency_buckets: tuple[tuple[float, int], ...]
    latency_count: int
    latency_sum_s: float
    trading_state: TradingState | None
    kill_switch: bool
    var: float
    cvar: float
    leverage: float
    drawdown: float
    hedge_ratio: float
    equity: float
    var_breaches: int
    alerts: Mapping[str, int]
    drift: Mapping[str, float]
    journal: JournalCounters | None = None

    @property
    def decisions(self) -> int:
        """Decisions recorded, both outcomes."""
        return self.decisions_ok + self.decisions_degraded

    @property
    def journal_last_commit_age_s(self) -> float:
        """Seconds from the journal's last durable commit to ``taken_at`` (>= 0); NaN without a
        journal or before its first commit."""
        journal = self.journal
        if journal is None or journal.last_commit_ts is None:
            return math.nan
        return max(self.taken_at - journal.last_commit_ts, 0.0)


def var_breached(previous_equity: float | None, equity: float | None, previous_var: float) -> bool:
    """Whether the book's realised return breached the VaR the previous decision gave for it.

    The realised return is ``r = equity / previous_equity - 1``; a breach is ``r < -previous_var``.

    Notes
    -----
    False (no breach counted) when either equity is None or NaN, ``previous_equity <= 0``, or
    ``previous_var`` is NaN (VaR still warming up): an unknown return is not a breach.

    Examples
    --------
    >>> var_breached(100.0, 97.0, 0.02), var_breached(100.0, 99.0, 0.02), var_breached(None, 90.0, 0.02)
    (True, False, False)
    """
    if previous_equity is None or equity is None or not previous_equity > 0.0:
        return False
    return equity / previous_equity - 1.0 < -previous_var  # NaN anywhere: False


def _checked_buckets(bounds: Iterable[float]) -> tuple[float, ...]:
    """``bounds`` as a tuple, if non-empty, finite, > 0 and strictly increasing."""
    out = tuple(float(b) for b in bounds)
    ok = bool(out) and all(0.0 < b < math.inf for b in out)
    if not ok or any(a >= b for a, b in itertools.pairwise(out)):
        raise InvalidInputError(
            f"latency_buckets_s must be finite, > 0 and strictly increasing, got {list(out)}"
        )
    return out


class Telemetry:
    """The per-decision record behind the Prometheus metrics: O(1) per call, fixed memory.

    Parameters
    ----------
    latency_buckets_s : upper bounds (seconds) of the exported latency buckets; the histogram
        itself keeps 3 significant digits of every latency, whatever the bounds.
    classify : alert text -> kind (default :func:`advanced_risk.monitoring.alerts.alert_kind`).

    Examples
    --------
    >>> from advanced_risk.types import CorrelationState, HedgeInstruction, RiskLevel
    >>> def decision(equity, var=0.02, degraded=False):
    ...     return RiskDecision(
    ...         rebalance_weights={"cash": 1.0}, leverage=1.0, position_sizes={}, stop_levels={},
    ...         hedge=HedgeInstruction(False, 0.0, ""), var=var, cvar=0.03,
    ...         correlation=CorrelationState(math.nan, False), risk_level=RiskLevel.LOW,
    ...         trading_state=TradingState.ACTIVE, equity=equity, degraded=degraded)
    >>> t = Telemetry()
    >>> for d, seconds in ((decision(100.0), 2e-4), (decision(97.0, degraded=True), 8e-3)):
    ...     t.record(d, seconds, late=seconds > 5e-3)
    >>> s = t.snapshot()
    >>> s.decisions_ok, s.decisions_degraded, s.deadline_misses, s.var_breaches, s.equity
    (1, 1, 1, 1, 97.0)
    """

    __slots__ = (
        "_alerts",
        "_buckets",
        "_classify",
        "_degraded",
        "_drift",
        "_last",
        "_late",
        "_ok",
        "_seq",
        "latencies",
        "var_breaches",
    )

    def __init__(
        self,
        *,
        latency_buckets_s: Sequence[float] = DEFAULT_LATENCY_BUCKETS_S,
        classify: Callable[[str], str] | None = None,
    ) -> None:
        self._buckets = _checked_buckets(latency_buckets_s)
        self._classify: Callable[[str], str] = alert_kind if classify is None else classify
        self.latencies = LatencyHistogram()
        """Every recorded call's latency (the manager's ``metrics()`` percentiles read it)."""
        self.var_breaches = 0
        """Bars whose realised return breached the previous decision's VaR (:func:`var_breached`)."""
        self._ok = self._degraded = self._late = 0
        self._seq = 0  # odd while record() writes (see the module docstring)
        self._last: RiskDecision | None = None
        self._alerts: dict[str, int] = dict.fromkeys(map(str, AlertKind), 0)
        self._drift: dict[str, float] = {}

    @property
    def decisions(self) -> int:
        """Decisions recorded."""
        return self._ok + self._degraded

    @property
    def degraded(self) -> int:
        """Degraded decisions recorded."""
        return self._degraded

    @property
    def deadline_misses(self) -> int:
        """Calls recorded as late (returned after their deadline)."""
        return self._late

    @property
    def last_decision(self) -> RiskDecision | None:
        """The decision recorded last (None before the first)."""
        return self._last

    def record(self, decision: RiskDecision, latency_s: float, late: bool) -> None:
        """Count one call: its outcome, lateness, latency, VaR breach, alerts and drift scores.

        Parameters
        ----------
        decision : the decision returned to the caller.
        latency_s : the call's full time in seconds (finite, >= 0).
        late : whether the call returned after its deadline.

        Raises
        ------
        InvalidInputError
            ``latency_s`` NaN, infinite or negative (nothing is counted then).
        """
        if not 0.0 <= latency_s < math.inf:
            raise InvalidInputError(f"latency_s must be finite and >= 0, got {latency_s!r}")
        self._seq += 1
        if decision.degraded:
            self._degraded += 1
        else:
            self._ok += 1
        if late:
            self._late += 1
        self.latencies.record_ms(latency_s * 1000.0)
        previous = self._last
        if previous is not None and var_breached(previous.equity, decision.equity, previous.var):
            self.var_breaches += 1
        self._last = decision
        if decision.alerts:
            self._count_alerts(decision.alerts)
        if decision.drift:
            self._drift.update(decision.drift)
        self._seq += 1

    def _count_alerts(self, alerts: Iterable[str]) -> None:
        counts = self._alerts
        for text in alerts:
            kind = str(self._classify(text))
            counts[kind] = counts.get(kind, 0) + 1

    def snapshot(
        self,
        *,
        journal: JournalCounters | None = None,
        kill_switch: bool = False,
        trading_state: TradingState | None = None,
    ) -> TelemetrySnapshot:
        """Everything recorded so far, frozen, with the caller's journal counters and kill switch.

        Parameters
        ----------
        journal : the journal's counters now (``JournalCounters.read(writer)``), or None.
        kill_switch : whether the kill switch is engaged.
        trading_state : the current trading state, when the caller knows it (an operator control
            may have changed it since the last decision); else the last decision's.
        """
        for _ in range(_SNAPSHOT_TRIES):
            seq = self._seq
            counts = self.latencies.cumulative_counts((*self._buckets, math.inf))
            read = (
                self._ok,
                self._degraded,
                self._late,
                self.latencies.sum_ms,
                self._last,
                self.var_breaches,
            )
            alerts, drift = dict(self._alerts), dict(self._drift)
            if seq % 2 == 0 and self._seq == seq:  # no record began or ended during the reads
                break
            time.sleep(0)  # let the recorder finish its call
        ok, degraded, late, sum_ms, last, breaches = read
        drift = {model: _as_float(score) for model, score in drift.items()}  # the copy, not self._drift
        state = trading_state if trading_state is not None or last is None else last.trading_state
        return TelemetrySnapshot(
            taken_at=time.time(),
            decisions_ok=ok,
            decisions_degraded=degraded,
            deadline_misses=late,
            latency_buckets=tuple(zip(self._buckets, counts[:-1], strict=True)),
            latency_count=counts[-1],
            latency_sum_s=sum_ms / 1000.0,
            trading_state=state,
            kill_switch=bool(kill_switch),
            **_gauges(last),
            var_breaches=breaches,
            alerts=MappingProxyType(alerts),
            drift=MappingProxyType(drift),
            journal=journal,
        )


def _gauges(decision: RiskDecision | None) -> dict[str, float]:
    """The gauges of the last decision (NaN each before any decision; equity NaN when not given)."""
    if decision is None:
        return dict.fromkeys(("var", "cvar", "leverage", "drawdown", "hedge_ratio", "equity"), math.nan)
    return {
        "var": _as_float(decision.var),
        "cvar": _as_float(decision.cvar),
        "leverage": _as_float(decision.leverage),
        "drawdown": _as_float(decision.drawdown),
        "hedge_ratio": _as_float(decision.hedge.ratio),
        "equity": _as_float(decision.equity),
    }


def _as_float(value: object) -> float:
    """``value`` as a float, NaN for None or a non-number (a hand-built decision's; raising would fail
    every scrape, kill switch and journal health included, until a later decision replaced it)."""
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan
