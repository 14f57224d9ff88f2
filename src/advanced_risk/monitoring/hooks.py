"""The ``on_alert`` hook: which events page a person, and their delivery off the deciding thread.

:class:`AlertPager` turns each decision into the events worth paging for, on *transitions* so a run
of bad bars pages once, not once a bar:

- a trading-state change (``kind="state_change"``, or ``"kill_switch"`` when the kill switch moved
  the state) at the decision that made it;
- a degraded run: its first degraded decision (``"degraded"``, the decision's first reason), and its
  end at the next decision that is not degraded (``"recovered"``, with the run's length);
- input drift: a model's first drifted decision (``"drift"``, the engine's alert naming the
  features), and its end when the model is back in distribution (``"recovered"``).

Operator controls (``engage_kill_switch``, ``resume``) page too; the manager raises those directly.

:class:`AlertDispatcher` delivers events on one daemon thread with a bounded queue, so a hook that is
slow, hangs or raises never delays or changes a decision. A plain function runs on that thread. A
coroutine function runs on the bot's event loop when the alert was raised by an async call (through
``asyncio.run_coroutine_threadsafe``), else on the dispatcher's own loop. A hook that raises is
logged (``alert_hook_failed``) and counted; events beyond ``max_pending`` waiting are dropped and
counted (a hung hook must not grow memory without bound).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import queue
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

from advanced_risk.logs import get_logger
from advanced_risk.monitoring.alerts import AlertEvent, AlertKind, alert_kind
from advanced_risk.types import RiskDecision

__all__ = ["AlertDispatcher", "AlertHook", "AlertPager"]

log = get_logger(__name__)

AlertHook = Callable[[AlertEvent], Awaitable[None] | None]
"""A function (or coroutine function) called with each :class:`AlertEvent`."""

_STOP = object()


class AlertPager:
    """The events of each decision worth paging for (state changes and the edges of bad runs)."""

    __slots__ = ("_degraded_run", "_drifted")

    def __init__(self) -> None:
        self._degraded_run = 0  # degraded decisions in a row so far
        self._drifted: set[str] = set()  # models whose last decision was drifted

    def events(self, decision: RiskDecision) -> list[AlertEvent]:
        """The events ``decision`` raises (usually none: O(alerts) string checks)."""
        state, did = decision.trading_state.value, decision.decision_id
        out = []
        for text in decision.alerts:
            kind = alert_kind(text)
            if kind in (AlertKind.STATE_CHANGE, AlertKind.KILL_SWITCH):
                out.append(AlertEvent.now(text, state, did))
            elif kind is AlertKind.DRIFT and (model := _drift_model(text)) not in self._drifted:
                self._drifted.add(model)
                out.append(AlertEvent.now(text, state, did))
        out.extend(self._degraded_edges(decision))
        out.extend(self._drift_ends(decision))
        return out

    def _degraded_edges(self, decision: RiskDecision) -> list[AlertEvent]:
        state, did = decision.trading_state.value, decision.decision_id
        if decision.degraded:
            self._degraded_run += 1
            if self._degraded_run == 1:
                return [AlertEvent.now(decision.alerts[0] if decision.alerts else "degraded", state, did)]
            return []
        run, self._degraded_run = self._degraded_run, 0
        if run == 0:
            return []
        message = f"recovered: a decision is not degraded after {run} degraded decision(s)"
        return [AlertEvent(AlertKind.RECOVERED, message, state, did, _now())]

    def _drift_ends(self, decision: RiskDecision) -> list[AlertEvent]:
        if not self._drifted or decision.degraded:
            return []
        drifted_now = {_drift_model(t) for t in decision.alerts if alert_kind(t) is AlertKind.DRIFT}
        ended = sorted(self._drifted - drifted_now)
        self._drifted &= drifted_now
        state, did = decision.trading_state.value, decision.decision_id
        return [
            AlertEvent(AlertKind.RECOVERED, f"recovered: {model} input drift is over", state, did, _now())
            for model in ended
        ]


def _drift_model(text: str) -> str:
    """The model an ``input drift: <model> score ...`` alert names."""
    return text.removeprefix("input drift: ").split(" score ", 1)[0]


def _now() -> float:
    return time.time()


class AlertDispatcher:
    """Delivers :class:`AlertEvent` to a hook on one daemon thread (never on the deciding one).

    Parameters
    ----------
    hook : the bot's ``on_alert`` function or coroutine function.
    max_pending : events that may wait for a slow hook; more are dropped and counted.
    timeout_s : the longest a coroutine hook is waited for on the bot's loop (a loop that stopped
        never runs it); then it counts as failed and the next event is delivered.
    """

    def __init__(self, hook: AlertHook, max_pending: int = 1000, timeout_s: float = 30.0) -> None:
        self._hook = hook
        self._timeout_s = timeout_s
        self._queue: queue.Queue[Any] = queue.Queue(max_pending)
        self.delivered = 0
        """Events the hook returned from (or whose coroutine completed) without raising."""
        self.failed = 0
        """Events whose hook raised (logged as ``alert_hook_failed``)."""
        self.dropped = 0
        """Events dropped because ``max_pending`` were already waiting."""
        self._own_loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._run, name="advanced-risk-alerts", daemon=True)
        self._thread.start()

    def emit(self, event: AlertEvent) -> None:
        """Queue ``event`` (O(1), never blocks; dropped and counted when the queue is full).

        The caller's running loop (if any) travels with the event, whatever the hook looks like: an
        object with an ``async def __call__``, a ``functools.partial`` or a lambda returning a
        coroutine are awaited on the bot's loop too (events are rare, so the lookup costs nothing).
        """
        loop = _running_loop()
        try:
            self._queue.put_nowait((event, loop))
        except queue.Full:
            self.dropped += 1
            log.warning("alert_dropped", kind=event.kind.value, pending=self._queue.qsize())

    def close(self, timeout: float = 2.0) -> None:
        """Deliver what is queued (up to ``timeout`` seconds), then stop the thread.

        Called from the hook itself (a hook that closes the manager, e.g. on the kill switch), the
        thread stops once the hook returns: a thread cannot wait for itself.
        """
        try:
            self._queue.put((_STOP, None), timeout=timeout)
        except queue.Full:
            return  # a hung hook: the daemon thread is abandoned
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            event, loop = self._queue.get()
            if event is _STOP:
                break
            self._deliver(event, loop)
        if self._own_loop is not None:
            self._own_loop.close()

    def _deliver(self, event: AlertEvent, loop: asyncio.AbstractEventLoop | None) -> None:
        try:
            result = self._hook(event)
            if inspect.isawaitable(result):
                self._await(result, loop)
            self.delivered += 1
        except Exception as exc:  # a failing hook never reaches the decision
            self.failed += 1
            log.warning("alert_hook_failed", kind=event.kind.value, error=repr(exc))

    def _await(self, awaitable: Awaitable[None], loop: asyncio.AbstractEventLoop | None) -> None:
        """Run a coroutine hook to completion: on the bot's loop while it runs, else on our own.

        The bot's loop may end between the event and its delivery (``asyncio.run`` returning
        cancels what is scheduled, then closes the loop): a hook that had not started there yet runs
        on our own loop instead of being lost; one cancelled while it ran counts as failed.
        """
        started = False

        async def wrapped() -> None:
            nonlocal started
            started = True
            await awaitable

        if loop is not None and loop.is_running():
            job = wrapped()
            try:
                asyncio.run_coroutine_threadsafe(job, loop).result(self._timeout_s)
                return
            except (concurrent.futures.CancelledError, RuntimeError):  # RuntimeError: loop closed
                if started:
                    raise
                job.close()  # never started: nothing of the hook ran on the bot's loop
        if self._own_loop is None:
            self._own_loop = asyncio.new_event_loop()
        self._own_loop.run_until_complete(wrapped())


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
