"""The learned components of one call: the policy's allocation and the agents' advice, within a deadline.

Their inputs are built on the caller's thread (:meth:`DecisionEngine.policy_request`,
:meth:`DecisionEngine.agents_request`: snapshots of the engine's state). The work itself runs either
inline (the sync twin with the built-in NumPy inference: bounded arithmetic) or on one worker
thread, waited for until the call's deadline (a user's allocator may block; the event loop never
waits on it). One run at a time: while a run for an earlier bar that missed its deadline is still
going, no new one starts, so late runs never pile up, and the late result is dropped (it never
reaches a later decision).

A component that raises, answers something invalid or is late is a fault (text for the degraded
decision), never an exception for the caller.
"""

from __future__ import annotations

import asyncio
import math
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

import numpy as np

from advanced_risk.engine.core import DecisionEngine, Observed, component_fault
from advanced_risk.engine.protocols import Advisor, Allocation, Allocator
from advanced_risk.measures.validation import FloatArray
from advanced_risk.types import AgentAdvice

__all__ = ["ComponentRunner", "Components", "PolicyRequest", "checked_allocation", "run_components"]

PolicyRequest = tuple[FloatArray, FloatArray, float]
"""The allocator's arguments: return history, held long weights plus cash, drawdown."""
Components = tuple[Allocation | None, AgentAdvice | None, tuple[str, ...]]
"""The policy's allocation, the agents' advice and the faults of either."""


class ComponentRunner:
    """Runs an engine's allocator and advisor (``engine.allocator``, ``engine.advisor``), inline or on
    its worker thread.

    Parameters
    ----------
    inline : whether the synchronous path runs them on the caller's thread (the built-in
        inference); the async path always uses the worker.
    """

    def __init__(self, *, inline: bool) -> None:
        self.inline = inline
        self._pool = _worker()
        self._job: Future[Components] | None = None

    def shutdown(self) -> None:
        """Stop the worker without waiting (a run in progress finishes unseen)."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    def reopen(self) -> None:
        """A fresh worker after :meth:`shutdown` (a shut-down executor takes no new work)."""
        self._pool = _worker()
        self._job = None

    async def run_async(self, engine: DecisionEngine, observed: Observed, deadline: float) -> Components:
        """The components of this bar on the worker, awaited until ``deadline`` (``perf_counter``)."""
        policy, agents, faults = _requests(engine, observed)
        if policy is None and agents is None:
            return None, None, faults
        job = self._start(engine, policy, agents)
        if isinstance(job, str):
            return None, None, (*faults, job)
        try:
            allocation, advice, more = await asyncio.wait_for(
                asyncio.shield(asyncio.wrap_future(job)), max(deadline - time.perf_counter(), 0.0)
            )
        except TimeoutError:
            return None, None, (*faults, _late(policy))
        return allocation, advice, faults + more

    def run_sync(self, engine: DecisionEngine, observed: Observed, deadline: float) -> Components:
        """The components of this bar for the sync twin: inline when :attr:`inline`, else on the
        worker, waited for until ``deadline``."""
        policy, agents, faults = _requests(engine, observed)
        if policy is None and agents is None:
            return None, None, faults
        if self.inline:
            allocation, advice, more = run_components(engine.allocator, policy, engine.advisor, agents)
            return allocation, advice, faults + more
        job = self._start(engine, policy, agents)
        if isinstance(job, str):
            return None, None, (*faults, job)
        try:
            allocation, advice, more = job.result(timeout=max(deadline - time.perf_counter(), 0.0))
        except FutureTimeout:
            return None, None, (*faults, _late(policy))
        return allocation, advice, faults + more

    def _start(
        self, engine: DecisionEngine, policy: PolicyRequest | None, agents: Any
    ) -> Future[Components] | str:
        """Start a run on the worker, or say why not: a run for an earlier bar is still going."""
        running = self._job
        if running is not None and not running.done():
            return f"{_late(policy)} (still busy with an earlier bar; not started)"
        job = self._pool.submit(run_components, engine.allocator, policy, engine.advisor, agents)
        self._job = job
        return job


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
        except Exception as exc:
            faults.append(component_fault("policy", exc))
    if advisor is not None and agents is not None:
        try:
            advice = advisor.advise(agents)
        except Exception as exc:
            faults.append(component_fault("risk agents", exc))
    return allocation, advice, tuple(faults)


def checked_allocation(allocation: Any, n_assets: int) -> Allocation:
    """The allocator's answer if it is a valid long-only allocation, else ``ValueError`` saying why.

    Valid: an :class:`Allocation` whose weights are ``n_assets + 1`` finite numbers in [0, 1]
    (assets, then cash) summing to 1 (within 1e-6), and whose uncertainty is None or finite >= 0.
    The weights returned are clipped to [0, 1] (removing rounding below 1e-9).
    """
    if not isinstance(allocation, Allocation):
        raise ValueError(f"allocate returned {type(allocation).__name__}, not an Allocation")
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
    return Allocation(np.clip(weights, 0.0, 1.0), None if u is None else float(u))


def _requests(
    engine: DecisionEngine, observed: Observed
) -> tuple[PolicyRequest | None, Any, tuple[str, ...]]:
    """The policy's and the agents' inputs (snapshots, built on the caller's thread), and the fault
    of building the agents' observation (part of the agents component)."""
    policy = engine.policy_request(observed)
    try:
        agents = engine.agents_request(observed)
    except Exception as exc:
        return policy, None, (component_fault("risk agents", exc),)
    return policy, agents, ()


def _late(policy: PolicyRequest | None) -> str:
    """The fault of a run past the deadline, naming the policy when it ran (else the agents)."""
    return f"{'policy' if policy is not None else 'risk agents'} missed the deadline"


def _worker() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(1, thread_name_prefix="advanced-risk-policy")
