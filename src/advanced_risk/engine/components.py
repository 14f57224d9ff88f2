"""The learned components of one call: the policy's allocation and the agents' advice, within a deadline.

Their inputs are built on the caller's thread (:meth:`DecisionEngine.policy_request`,
:meth:`DecisionEngine.agents_request`: snapshots of the engine's state). The work itself runs either
inline, on the caller's thread, or on one worker thread, waited for until the call's deadline.

Which one (:class:`InferencePath`, default ``AUTO``):

- a component is *bounded* when its class declares ``bounded_cost = True`` (the built-in NumPy
  inference: ``PolicyAllocator``, ``RiskAgentsAdvisor``; a fixed amount of arithmetic per bar that
  cannot block); every other component (a user's allocator or advisor, a wrapper) may hang;
- the sync twin runs bounded components inline;
- the async path runs them inline too while their measured cost fits the budget: the running p99
  estimate of a run (:class:`CostEstimate`, the last 256 runs) is at most
  :data:`INLINE_BUDGET_FRACTION` of ``deadline_ms``. Inline there is no thread hop (a hand-off to
  the worker and back through the loop costs ~0.15-0.3 ms, more than the inference itself);
- anything else runs on the worker, waited for until the deadline: a late run gives the degraded
  decision at the deadline, and the event loop never waits on it.

One worker run at a time: while a run for an earlier bar that missed its deadline is still going,
no new one starts (inline or on the worker: both would share the component's state), so late runs
never pile up, and the late result is dropped (it never reaches a later decision).

A component that raises (any exception but ``KeyboardInterrupt``: ``asyncio.CancelledError`` or
``SystemExit`` from a user's allocator included), answers something invalid or is late is a fault
(text for the degraded decision), never an exception for the caller.
"""

from __future__ import annotations

import asyncio
import math
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from enum import StrEnum
from typing import Any

import numpy as np

from advanced_risk.engine.core import DecisionEngine, Observed, component_fault
from advanced_risk.engine.protocols import Advisor, Allocation, Allocator
from advanced_risk.measures.decide_kernels import clipped_weights_kernel
from advanced_risk.measures.validation import FloatArray
from advanced_risk.types import AgentAdvice, DriftStatus

__all__ = [
    "INLINE_BUDGET_FRACTION",
    "ComponentRunner",
    "Components",
    "CostEstimate",
    "InferencePath",
    "PolicyRequest",
    "checked_allocation",
    "is_bounded",
    "run_components",
]

PolicyRequest = tuple[FloatArray, FloatArray, float]
"""The allocator's arguments: return history, held long weights plus cash, drawdown."""
Components = tuple[Allocation | None, AgentAdvice | None, tuple[str, ...]]
"""The policy's allocation, the agents' advice and the faults of either."""

INLINE_BUDGET_FRACTION = 0.25
"""The async path runs bounded components inline while their cost's p99 estimate is at most this
fraction of ``deadline_ms``; the rest of the deadline is the decision's own (observe, decide, the
journal) and the loop's other tasks'."""


class InferencePath(StrEnum):
    """Where :class:`ComponentRunner` runs the components (``AUTO``: the rule of the module docstring)."""

    AUTO = "auto"
    INLINE = "inline"  # always on the caller's thread (tests; a component known to be bounded)
    WORKER = "worker"  # always on the worker thread, waited for until the deadline


class CostEstimate:
    """A running p99 of the components' cost (wall time of one run, in ms) over the last ``window`` runs.

    The costs sit in a ring of ``window`` floats (fixed memory); the estimate is refreshed every
    ``every`` runs (one ``np.partition`` of the ring, ~3 us). The p99 of ``m`` costs is the
    ``ceil(0.99 m)``-th smallest (the inverted-CDF order statistic): over 256 runs, the third
    largest, so one outlier (a GC pause) moves nothing while a slower machine moves it within
    ``every`` runs. 0.0 until the first refresh. A run that missed its deadline counts with the
    time it was waited for, a lower bound of its cost.
    """

    __slots__ = ("_costs", "_every", "_runs", "p99_ms")

    def __init__(self, every: int = 16, window: int = 256) -> None:
        self._every = every
        self._costs = np.zeros(window)
        self._runs = 0
        self.p99_ms = 0.0
        """The current estimate (ms)."""

    def record_ms(self, ms: float) -> None:
        """Count one run's cost (O(1) but every ``every`` runs)."""
        window = self._costs.shape[0]
        self._costs[self._runs % window] = ms
        self._runs += 1
        if self._runs % self._every == 0:
            filled = min(self._runs, window)
            k = math.ceil(0.99 * filled) - 1
            self.p99_ms = float(np.partition(self._costs[:filled], k)[k])


def is_bounded(component: Any) -> bool:
    """Whether ``component`` is None or its class declares ``bounded_cost = True`` (looked up on the
    class, so a wrapper that forwards attributes is not taken for the component it wraps)."""
    return component is None or getattr(type(component), "bounded_cost", False) is True


class ComponentRunner:
    """Runs an engine's allocator and advisor (``engine.allocator``, ``engine.advisor``), inline or on
    its worker thread (see the module docstring).

    Parameters
    ----------
    deadline_ms : the manager's ``RiskConfig.deadline_ms`` (the inline budget is a fraction of it).
    path : where to run the components (:class:`InferencePath`); settable later through :attr:`path`.
    """

    def __init__(self, *, deadline_ms: float, path: InferencePath = InferencePath.AUTO) -> None:
        self.path = path
        self.budget_ms = INLINE_BUDGET_FRACTION * deadline_ms
        self.cost = CostEstimate()
        self._pool = _worker()
        self._job: Future[tuple[Components, float]] | None = None

    def shutdown(self) -> None:
        """Stop the worker without waiting (a run in progress finishes unseen)."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    def reopen(self) -> None:
        """A fresh worker after :meth:`shutdown` (a shut-down executor takes no new work)."""
        self._pool = _worker()
        self._job = None

    def inline_for(self, engine: DecisionEngine, *, sync: bool) -> bool:
        """Whether this bar's components run on the caller's thread (the module docstring's rule)."""
        if self.path is not InferencePath.AUTO:
            return self.path is InferencePath.INLINE
        if not (is_bounded(engine.allocator) and is_bounded(engine.advisor)):
            return False
        return sync or self.cost.p99_ms <= self.budget_ms

    async def run_async(self, engine: DecisionEngine, observed: Observed, deadline: float) -> Components:
        """The components of this bar, inline or on the worker (awaited until ``deadline``, a
        ``perf_counter`` time)."""
        policy, agents, faults = _requests(engine, observed)
        if policy is None and agents is None:
            return None, None, faults
        if self.inline_for(engine, sync=False) and self._idle():
            return self._inline(engine, policy, agents, faults)
        job = self._start(engine, policy, agents)
        if isinstance(job, str):
            return None, None, (*faults, job)
        waited = time.perf_counter()
        try:
            (allocation, advice, more), cost = await asyncio.wait_for(
                asyncio.shield(asyncio.wrap_future(job)), max(deadline - time.perf_counter(), 0.0)
            )
        except TimeoutError:
            self.cost.record_ms((time.perf_counter() - waited) * 1000.0)
            return None, None, (*faults, _late(policy))
        self.cost.record_ms(cost * 1000.0)
        return allocation, advice, faults + more

    def run_sync(self, engine: DecisionEngine, observed: Observed, deadline: float) -> Components:
        """The components of this bar for the sync twin: inline for bounded components, else on the
        worker, waited for until ``deadline``."""
        policy, agents, faults = _requests(engine, observed)
        if policy is None and agents is None:
            return None, None, faults
        if self.inline_for(engine, sync=True) and self._idle():
            return self._inline(engine, policy, agents, faults)
        job = self._start(engine, policy, agents)
        if isinstance(job, str):
            return None, None, (*faults, job)
        waited = time.perf_counter()
        try:
            (allocation, advice, more), cost = job.result(timeout=max(deadline - time.perf_counter(), 0.0))
        except FutureTimeout:
            self.cost.record_ms((time.perf_counter() - waited) * 1000.0)
            return None, None, (*faults, _late(policy))
        self.cost.record_ms(cost * 1000.0)
        return allocation, advice, faults + more

    def _idle(self) -> bool:
        """Whether no worker run is going (an inline run beside it would share the component's state)."""
        return self._job is None or self._job.done()

    def _inline(
        self, engine: DecisionEngine, policy: PolicyRequest | None, agents: Any, faults: tuple[str, ...]
    ) -> Components:
        (allocation, advice, more), cost = _timed(engine.allocator, policy, engine.advisor, agents)
        self.cost.record_ms(cost * 1000.0)
        return allocation, advice, faults + more

    def _start(
        self, engine: DecisionEngine, policy: PolicyRequest | None, agents: Any
    ) -> Future[tuple[Components, float]] | str:
        """Start a run on the worker, or say why not: a run for an earlier bar is still going."""
        if not self._idle():
            return f"{_late(policy)} (still busy with an earlier bar; not started)"
        job = self._pool.submit(_timed, engine.allocator, policy, engine.advisor, agents)
        self._job = job
        return job


def _timed(
    allocator: Allocator | None, policy: PolicyRequest | None, advisor: Advisor | None, agents: Any
) -> tuple[Components, float]:
    """:func:`run_components` and its wall time in seconds."""
    start = time.perf_counter()
    out = run_components(allocator, policy, advisor, agents)
    return out, time.perf_counter() - start


def run_components(
    allocator: Allocator | None,
    policy: PolicyRequest | None,
    advisor: Advisor | None,
    agents: Any,
) -> Components:
    """The policy's allocation and the agents' advice (the worker's job); faults as text."""
    allocation: Allocation | None = None
    advice: AgentAdvice | None = None
    faults: list[str] = []
    if allocator is not None and policy is not None:
        try:
            allocation = checked_allocation(allocator.allocate(*policy), allocator.asset_count)
        except KeyboardInterrupt:  # the operator's Ctrl-C, not the component's fault
            raise
        except BaseException as exc:
            faults.append(component_fault("policy", exc))
    if advisor is not None and agents is not None:
        try:
            advice = advisor.advise(agents)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:
            faults.append(component_fault("risk agents", exc))
    return allocation, advice, tuple(faults)


def checked_allocation(allocation: Any, n_assets: int) -> Allocation:
    """The allocator's answer if it is a valid long-only allocation, else ``ValueError`` saying why.

    Valid: an :class:`Allocation` whose weights are ``n_assets + 1`` finite numbers in [0, 1]
    (assets, then cash) summing to 1 (within 1e-6), and whose uncertainty is None or finite >= 0.
    The weights returned are clipped to [0, 1] (removing rounding below 1e-9); the drift status, if
    any, must be a :class:`~advanced_risk.types.DriftStatus`.
    """
    if not isinstance(allocation, Allocation):
        raise ValueError(f"allocate returned {type(allocation).__name__}, not an Allocation")
    fast = _valid_allocation(allocation, n_assets)
    if fast is not None:
        return fast
    weights = np.asarray(allocation.weights, dtype=np.float64)
    if weights.shape != (n_assets + 1,):
        raise ValueError(f"allocation weights have shape {weights.shape}, expected ({n_assets + 1},)")
    if not np.isfinite(weights).all() or weights.min() < -1e-9 or weights.max() > 1.0 + 1e-9:
        raise ValueError(f"allocation weights must be finite and in [0, 1], got {weights.tolist()[:8]}")
    if abs(float(weights.sum()) - 1.0) > 1e-6:
        raise ValueError(f"allocation weights (assets then cash) must sum to 1, got {weights.sum():.6g}")
    u = allocation.uncertainty
    if u is not None and not (
        isinstance(u, int | float | np.floating) and not isinstance(u, bool) and math.isfinite(u) and u >= 0.0
    ):
        raise ValueError(f"allocation uncertainty must be None or finite >= 0, got {u!r}")
    drift = allocation.drift
    if drift is not None and not isinstance(drift, DriftStatus):
        raise ValueError(f"allocation drift must be None or a DriftStatus, got {type(drift).__name__}")
    return Allocation(np.clip(weights, 0.0, 1.0), None if u is None else float(u), drift)


def _valid_allocation(allocation: Allocation, n_assets: int) -> Allocation | None:
    """:func:`checked_allocation`'s answer in one kernel when it is valid and its weights are a
    contiguous float64 vector of the right length (the policies' own); None otherwise: the caller
    then runs the NumPy checks, which say why (the same checks, bit for bit the same clip)."""
    weights, u, drift = allocation.weights, allocation.uncertainty, allocation.drift
    if (
        type(weights) is not np.ndarray
        or weights.dtype != np.float64
        or weights.shape != (n_assets + 1,)
        or not weights.flags.c_contiguous
        or not (type(u) is float and math.isfinite(u) and u >= 0.0)
        or not (drift is None or isinstance(drift, DriftStatus))
    ):
        return None
    out = np.empty(n_assets + 1)
    ok, total = clipped_weights_kernel(weights, out)
    if not ok or abs(float(total) - 1.0) > 1e-6:
        return None
    return Allocation(out, u, drift)


def _requests(
    engine: DecisionEngine, observed: Observed
) -> tuple[PolicyRequest | None, Any, tuple[str, ...]]:
    """The policy's and the agents' inputs (snapshots, built on the caller's thread), and the faults
    of building them (part of each component: the bar is observed by now, so a component's
    attribute that raises gives a degraded decision, never an exception for the caller)."""
    faults: list[str] = []
    try:
        policy = engine.policy_request(observed)
    except Exception as exc:
        policy = None
        faults.append(component_fault("policy", exc))
    try:
        agents = engine.agents_request(observed)
    except Exception as exc:
        agents = None
        faults.append(component_fault("risk agents", exc))
    return policy, agents, tuple(faults)


def _late(policy: PolicyRequest | None) -> str:
    """The fault of a run past the deadline, naming the policy when it ran (else the agents)."""
    return f"{'policy' if policy is not None else 'risk agents'} missed the deadline"


def _worker() -> _DaemonWorker:
    return _DaemonWorker("advanced-risk-policy_0")


class _DaemonWorker:
    """One daemon thread running submitted calls in order, with ``ThreadPoolExecutor``'s ``submit``
    and ``shutdown``.

    Not a ``ThreadPoolExecutor``: the interpreter joins its workers at exit, so a user's allocator
    that never returns kept the process from exiting even after ``close()``. A daemon thread is
    abandoned at exit instead (a run in progress finishes unseen, as after :meth:`shutdown`).
    """

    def __init__(self, name: str) -> None:
        self._name = name
        self._queue: queue.SimpleQueue[tuple[Future[Any], Callable[..., Any], tuple[Any, ...]] | None] = (
            queue.SimpleQueue()
        )
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future[Any]:
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot schedule new futures after shutdown")
            future: Future[Any] = Future()
            self._queue.put((future, fn, args))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._closed = True
            if cancel_futures:
                while True:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if item is not None:
                        item[0].cancel()
            self._queue.put(None)
            thread = self._thread
        if wait and thread is not None and thread is not threading.current_thread():
            thread.join()

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            future, fn, args = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = fn(*args)
            except BaseException as exc:  # handed to the waiting caller, as an executor does
                future.set_exception(exc)
            else:
                future.set_result(result)
            del future, fn, args, item
