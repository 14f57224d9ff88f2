"""AdvancedRiskManager: the async facade a trading bot embeds (and its synchronous twin).

::

    async with AdvancedRiskManager(RiskConfig(state_path="risk.db"), policy="models/policy.armodel") as risk:
        while trading:
            decision = await risk.manage_risk(market_state, portfolio)

The manager orchestrates; the work is done by the :class:`~advanced_risk.engine.core.DecisionEngine`
(shared by both entry points), the policy and the :class:`~advanced_risk.engine.journal.JournalWriter`:

- validation at the edge: bad input raises ``InvalidInputError`` (the caller's own fault) and
  changes no state;
- off the event loop: a user's allocator or advisor (one worker thread, waited for until the
  deadline), SQLite reads, retries and rows nobody waits for (the journal thread), GARCH refits (a
  worker process, so a fit never holds this process's GIL); the loop itself runs the decision
  arithmetic, the built-in NumPy inference while its measured cost fits a quarter of the deadline
  (engine/components.py: no thread hop for bounded work) and, with ``journal_sync`` on disk, the
  commit of its own row (one fsync, in the next loop iteration: engine/journal.py says why);
- a deadline per call (``RiskConfig.deadline_ms``): a component that raises or is late yields the
  conservative decision (``degraded=True``, alert, ``decision_degraded`` event), never an exception;
- calls are throttled (asyncio-throttle, ``rate_limit_per_s``), serialised (bars are sequential)
  and paced: at most one decision (or one commit) per loop iteration, so the loop keeps ticking;
- safety state (trading state, kill switch) is written before the decision that changed it
  returns; with ``journal_sync`` each decision's journal row is durable before it returns.

Without ``async with`` the manager opens lazily on the first call.

One module because :class:`AdvancedRiskManager` is the one object that holds a call's locks,
deadline and journal hand-off and the operator controls that share them; the work it schedules
lives in :mod:`advanced_risk.engine` (``core``, ``components``, ``journal``).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import json
import math
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import replace
from os import PathLike
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar

import numpy as np
from asyncio_throttle.throttler import Throttler
from numpy.typing import ArrayLike

from advanced_risk.config import RiskConfig
from advanced_risk.engine.callers import CallerLock
from advanced_risk.engine.components import ComponentRunner, Components
from advanced_risk.engine.core import DecisionEngine, Observed, warm_up
from advanced_risk.engine.journal import JournalWriter
from advanced_risk.engine.protocols import Advisor, Allocator
from advanced_risk.engine.snapshot import EngineSnapshot
from advanced_risk.engine.snapshot import decode as decode_snapshot
from advanced_risk.engine.snapshot import encode as encode_snapshot
from advanced_risk.engine.state import PersistedState, Restart, StateStore
from advanced_risk.errors import InvalidInputError, StateStoreError
from advanced_risk.logs import get_logger
from advanced_risk.measures.validation import FloatArray, check_range
from advanced_risk.measures.var_method import VaRMethod
from advanced_risk.monitoring.alerts import AlertEvent
from advanced_risk.monitoring.drift import DriftSettings
from advanced_risk.monitoring.hooks import AlertDispatcher, AlertHook, AlertPager
from advanced_risk.monitoring.telemetry import JournalCounters, Telemetry, TelemetrySnapshot
from advanced_risk.risk.garch import GarchParams
from advanced_risk.risk.garch_worker import shared_worker
from advanced_risk.risk.rules import check_reason
from advanced_risk.rl.portfolio.allocator import PolicyAllocator, load_allocator
from advanced_risk.types import MarketState, Portfolio, RiskDecision, StateChange, TradingState

if TYPE_CHECKING:
    from advanced_risk.monitoring.prometheus import MetricsServer, RiskMetricsCollector

__all__ = ["AdvancedRiskManager"]

_WORKER_START_TIMEOUT_S = 60.0
_INLINE_STRIKES = 3  # inline commits in a row over twice the deadline: the disk is stalling
_INLINE_PAUSE_S = 30.0  # then commit on the journal thread for this long
_SNAPSHOT_TIMEOUT_S = 10.0  # a close waits this long for the snapshot behind the last rows


def _landed(done: Future[None]) -> bool:
    """Whether a journal row's future completed with the row durable."""
    return done.done() and not done.cancelled() and done.exception() is None


log = get_logger(__name__)

MarketInput = MarketState | Mapping[str, Any]
PortfolioInput = Portfolio | Mapping[str, Any]
PolicyInput = Allocator | str | PathLike[str] | Any | None


def _check_alert_hook(hook: object) -> None:
    """Refuse an ``on_alert`` that is not callable with one argument (the event) at construction,
    rather than at the first alert, where its failure would only be logged."""
    if not callable(hook):
        raise InvalidInputError(f"on_alert must be callable, got {type(hook).__name__}")
    try:
        signature = inspect.signature(hook)
    except (TypeError, ValueError):  # a builtin or C callable without a signature: trust it
        return
    try:
        signature.bind(None)
    except TypeError as exc:
        raise InvalidInputError(f"on_alert must take one argument (the AlertEvent): {exc}") from exc


class AdvancedRiskManager:
    """The risk engine a bot embeds: one decision per bar, fast, fail-safe, persistent.

    Parameters
    ----------
    config : settings (defaults: ``RiskConfig()``, state in memory).
    policy : None (keep the held weights; risk rules only), a model file path (an
        ``RLPortfolioManager`` saved by ``train_ppo_agent.py``), an ``RLPortfolioManager``, or any
        object with the :class:`~advanced_risk.engine.protocols.Allocator` interface.
    risk_agents : None (``config.risk_agents_path``, else rules only), a model file path (saved by
        ``train_ppo_agent.py --agents risk``) or :class:`~advanced_risk.rl.agents.policy.RiskAgents`:
        learned sizer, stop and monitor agents gated by their MC-dropout uncertainty
        (:mod:`advanced_risk.rl.agents.advisor`).
    on_alert : None, or a function or coroutine function called with an
        :class:`~advanced_risk.monitoring.alerts.AlertEvent` for trading-state changes, the kill
        switch, resumes, the start and end of a degraded run and of a model's input drift
        (:mod:`advanced_risk.monitoring.hooks`). It runs off the deciding thread (a coroutine on the
        bot's loop); one that is slow, hangs or raises never delays or changes a decision. One
        that cannot be called with the event alone (``lambda: None``) is refused here with
        ``InvalidInputError`` rather than failing, only logged, at the first alert.

    Raises
    ------
    ModelLoadError
        If ``policy`` or ``risk_agents`` names a missing, corrupt or mismatched model file.
    InvalidInputError
        If the policy and the risk agents were trained on different numbers of assets.
    """

    def __init__(
        self,
        config: RiskConfig | None = None,
        policy: PolicyInput = None,
        risk_agents: Any = None,
        *,
        on_alert: AlertHook | None = None,
    ) -> None:
        if config is not None and not isinstance(config, RiskConfig):
            raise InvalidInputError(f"config must be a RiskConfig, got {type(config).__name__}")
        if on_alert is not None:
            _check_alert_hook(on_alert)
        self._on_alert = on_alert
        self._pager = AlertPager()
        self._dispatcher: AlertDispatcher | None = None
        self._servers: list[MetricsServer] = []  # closed with the manager
        self.config = cfg = config or RiskConfig()
        self._allocator: Allocator | None = load_allocator(policy, cfg.mc_samples, _drift_settings(cfg))
        self._advisor: Advisor | None = _load_advisor(risk_agents, cfg)
        allocator, advisor = self._allocator, self._advisor
        _check_component(allocator, "policy", cfg)
        _check_component(advisor, "risk_agents", cfg)
        names = (getattr(allocator, "asset_names", None), getattr(advisor, "asset_names", None))
        unnamed = None in names
        if (
            allocator is not None
            and advisor is not None
            and unnamed  # named models each find their own assets in the universe
            and allocator.asset_count != advisor.asset_count
        ):
            raise InvalidInputError(
                f"the policy trades {allocator.asset_count} assets but the risk agents were "
                f"trained on {advisor.asset_count} (save both with asset names to combine them)"
            )
        self._engine: DecisionEngine | None = None
        self._journal: JournalWriter | None = None
        # the built-in NumPy inference runs inline (bounded, measured); a user's allocator may block,
        # so it runs on the policy worker, within the deadline (engine/components.py)
        self._components = ComponentRunner(deadline_ms=cfg.deadline_ms)
        self._pending_resume: tuple[Future[None], str] | None = None  # a resume waiting for the store
        self._background_pool = _garch_pool()
        self._garch_worker = shared_worker()  # one child per process; it exits with the process
        self._pools_closed = False
        # one caller at a time, whether a thread or a task of any event loop (engine/callers.py)
        self._callers = CallerLock()
        self._open_lock = threading.Lock()  # concurrent first calls open the store once
        rate = self.config.rate_limit_per_s
        self._throttler = None if rate is None else _throttler(rate)
        self._ids = itertools.count(1)
        self._run = uuid.uuid4().hex[:12]
        # counts, latency histogram and the last decision's gauges: O(1) per call, fixed memory
        self._telemetry = Telemetry()
        self._inline_paused_until = 0.0  # perf_counter time: commits go to the journal thread until then
        self._inline_strikes = 0  # inline commits in a row that overran the deadline
        self._decided_this_tick = False  # a decision started in this event-loop iteration

    # -- lifecycle ---------------------------------------------------------------------------------
    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def open(self) -> None:
        """Open the state store and restore the safety state (idempotent)."""
        if self._engine is None:
            await asyncio.to_thread(self._open_sync)

    def _open_sync(self) -> None:
        with self._open_lock:
            if self._engine is None:
                self._open_locked()

    def _open_locked(self) -> None:
        path = self.config.state_path
        store = StateStore(path, max_journal_rows=self.config.memory_journal_rows if path is None else None)
        if path is None:
            log.info("state_in_memory", reason="RiskConfig.state_path is None; nothing survives a restart")
        restored = store.load()
        restart = _restart_of(store, self.config, restored) if path is not None else Restart()
        if self._pools_closed:  # reopened after close(): a shut-down executor takes no new work
            self._components.reopen()
            self._background_pool = _garch_pool()
            self._pools_closed = False
        # the GARCH worker starts beside the warm-up: a refit then costs only the fit (~50 ms), well
        # inside the garch_install_lag bars even of a fast backtest
        started = self._background_pool.submit(self._garch_worker.start) if _uses_garch(self.config) else None
        _warm_up(self.config, self._allocator, self._advisor)
        if started is not None:
            try:
                started.result(timeout=_WORKER_START_TIMEOUT_S)
            except Exception as exc:  # refits then come late (degraded, and said so), never wrong
                log.warning("garch_worker_start_failed", error=repr(exc))
        self._journal = JournalWriter(store)
        if self._on_alert is not None and self._dispatcher is None:
            self._dispatcher = AlertDispatcher(self._on_alert)
        self._engine = DecisionEngine(
            self.config,
            restored=restored,
            restart=restart,
            allocator=self._allocator,
            advisor=self._advisor,
            background=self._fit_garch_async,
        )
        log.info(
            "risk_manager_opened",
            trading_state=restored.trading_state.value,
            peak_equity=restored.peak_equity,
            stops_restored=len(restart.stops),
            streaks=dict(restart.streaks),
            policy=type(self._allocator).__name__ if self._allocator else None,
            risk_agents=self._advisor is not None,
        )

    async def close(self) -> None:
        """Flush the journal, close the store and stop the worker threads."""
        await asyncio.to_thread(self.close_sync)

    def close_sync(self) -> None:
        """:meth:`close` for synchronous callers.

        It waits for a decision in flight on another thread or loop (one caller at a time): closing
        the journal under it lost that decision's row, and the rows of the calls that reopened it.
        """
        with self._callers.held():
            self._close_locked()

    def _close_locked(self) -> None:
        if self._journal is not None:
            if self._engine is not None and self.config.state_path is not None:
                _save_snapshot(self._journal, self._engine)
            self._journal.close()
            self._journal = None
        self._engine = None
        if self._dispatcher is not None:
            self._dispatcher.close()
            self._dispatcher = None
        for server in self._servers:
            server.close()
        self._servers.clear()
        self._components.shutdown()
        self._background_pool.shutdown(wait=False, cancel_futures=True)
        self._pools_closed = True

    # -- the decision --------------------------------------------------------------------------------
    async def manage_risk(self, market_state: MarketInput, portfolio: PortfolioInput) -> RiskDecision:
        """Decide one bar (see the module docstring); raises only ``InvalidInputError`` for bad input."""
        if self._engine is None:
            await self.open()
        # one loop tick per call: concurrent callers and the bot's other tasks take turns (without
        # it a call that needs no worker never yields, and 100 tasks run one after another). Twice:
        # the loop makes the timers that came due during the previous decision ready only after this
        # task's first resumption is queued, so with one yield the bot's timers (a heartbeat) would
        # wait for this decision too (a ticker's lag was two decisions, measured)
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        if self._throttler is not None:
            async with self._throttler:
                return await self._manage_locked(market_state, portfolio)
        return await self._manage_locked(market_state, portfolio)

    async def _manage_locked(self, market_state: MarketInput, portfolio: PortfolioInput) -> RiskDecision:
        async with self._callers.held_async():
            await self._pace()
            start = time.perf_counter()
            deadline = start + self.config.deadline_ms / 1000.0
            engine = self._require_engine()
            bar = engine.parse(market_state, portfolio)  # InvalidInputError: the caller's fault
            self._apply_pending_resume(engine)
            self._apply_store_halt(engine)
            observed = engine.observe(bar)
            # from here the bar is consumed (the tracker, the streaks and the peak saw it): a call
            # cancelled now still decides it, degraded and journalled, then re-raises the
            # cancellation, so the state never holds a bar without its decision
            cancelled = False
            try:
                components = await self._components.run_async(engine, observed, deadline)
            except asyncio.CancelledError:
                cancelled = True
                components = (None, None, ("the call was cancelled while the components ran",))
            if not cancelled:
                try:
                    await self._refit_async(engine)
                except asyncio.CancelledError:
                    cancelled = True
            inline = self._inline_commits() and not cancelled
            decision, done = self._finish(engine, observed, components, start, inline=inline)
            if done is not None and inline:
                await self._pace()  # the decision and its fsync in two loop iterations, not one
                self._commit_inline(done, deadline)
        if cancelled:
            raise asyncio.CancelledError
        if done is not None:
            decision = await self._await_durable(decision, observed, done, start, deadline)
        return self._record(decision, start, deadline)

    async def _pace(self) -> None:
        """Let the loop tick between two blocking steps: at most one (a decision, or a decision's
        inline commit) runs per loop iteration.

        The lock alone does not pace callers: when it has no waiters, every task ready in the same
        iteration takes it in turn without yielding (the fast path), so 100 tasks in lockstep would run
        100 decisions (~100 ms) before the loop could run anything else. The first step of an iteration
        marks it (cleared by a callback that runs at the start of the next one); a second step in
        the same iteration yields once first, holding the lock (later callers queue behind it).
        """
        if self._decided_this_tick:
            await asyncio.sleep(0)  # the clear was scheduled first: it runs before this resumes
        self._decided_this_tick = True
        asyncio.get_running_loop().call_soon(self._next_tick)

    def _next_tick(self) -> None:
        self._decided_this_tick = False

    def _inline_commits(self) -> bool:
        """Whether the async path commits its rows itself (not while paused by a stalling disk)."""
        return time.perf_counter() >= self._inline_paused_until

    def _commit_inline(self, done: Future[None], deadline: float) -> None:
        """Commit this decision's row on the loop's thread (engine/journal.py says why), within the deadline.

        The wait for another process's lock is bounded by the deadline; an fsync is not. A single
        slow fsync (a WAL checkpoint: ~10 ms here, now and then) is tolerated; a disk stalling
        (``_INLINE_STRIKES`` commits in a row over twice ``deadline_ms``) sends the next
        ``_INLINE_PAUSE_S`` of commits back to the journal thread, where a stall costs the
        decision its durability (degraded, said so), not the loop its ticks.
        """
        journal = self._journal
        now = time.perf_counter()
        if journal is None:
            return
        journal.commit_now(done, max(deadline - now, 0.0))
        spent = time.perf_counter() - now
        stalled = spent > 2.0 * self.config.deadline_ms / 1000.0  # twice the deadline for one fsync
        self._inline_strikes = self._inline_strikes + 1 if stalled else 0
        if self._inline_strikes >= _INLINE_STRIKES:
            self._inline_strikes = 0
            self._inline_paused_until = time.perf_counter() + _INLINE_PAUSE_S
            log.warning("journal_commit_slow", commit_ms=round(spent * 1000.0, 3), pause_s=_INLINE_PAUSE_S)

    def manage_risk_sync(self, market_state: MarketInput, portfolio: PortfolioInput) -> RiskDecision:
        """The synchronous twin of :meth:`manage_risk`: same core, same decision, no event loop.

        For strategy callbacks that are synchronous (backtests, nautilus ``on_bar``, freqtrade).
        The built-in policy and agents run inline (a user's allocator on the worker, within the
        deadline); the deadline and journal semantics are the same.
        """
        with self._callers.held():
            if self._engine is None:
                self._open_sync()
            start = time.perf_counter()
            deadline = start + self.config.deadline_ms / 1000.0
            engine = self._require_engine()
            bar = engine.parse(market_state, portfolio)
            self._apply_pending_resume(engine)
            self._apply_store_halt(engine)
            observed = engine.observe(bar)
            components = self._components.run_sync(engine, observed, deadline)
            self._refit_sync(engine)
            decision, done = self._finish(engine, observed, components, start)
            if done is not None:
                with contextlib.suppress(FutureTimeout, StateStoreError):
                    done.result(timeout=max(deadline - time.perf_counter(), 0.0))
                if not _landed(done):  # late, or the writer closed meanwhile
                    decision = self._journal_late(engine, decision, observed, start)
            return self._record(decision, start, deadline)

    async def manage_risk_arrays(
        self,
        assets: Sequence[str],
        portfolio: PortfolioInput,
        *,
        returns: ArrayLike | None = None,
        prices: ArrayLike | None = None,
        high: ArrayLike | None = None,
        low: ArrayLike | None = None,
        volatility: float | None = None,
        trend: float | None = None,
    ) -> RiskDecision:
        """:meth:`manage_risk` for a bot that holds its market data as arrays in a fixed asset order.

        Parameters
        ----------
        assets : the asset names, in the order of the arrays (the same tuple every bar is cheapest).
        portfolio : as for :meth:`manage_risk`.
        returns, prices, high, low : one value per asset each (None: not given this bar); see
            :class:`~advanced_risk.types.MarketState` for what each enables.
        volatility, trend : the summary fields of :class:`~advanced_risk.types.MarketState`.

        The market state is built with :meth:`MarketState.from_arrays` (vectorised checks), so the
        decision is the one :meth:`manage_risk` returns for the same values given as dicts.

        Raises
        ------
        InvalidInputError
            As :meth:`manage_risk`, for an array whose shape is not ``(len(assets),)``, and for
            ``assets`` given as one str (``"BTC"`` would otherwise be read as its characters).
        """
        market = MarketState.from_arrays(
            assets,
            returns=returns,
            prices=prices,
            high=high,
            low=low,
            volatility=volatility,
            trend=trend,
        )
        return await self.manage_risk(market, portfolio)

    def manage_risk_arrays_sync(
        self,
        assets: Sequence[str],
        portfolio: PortfolioInput,
        *,
        returns: ArrayLike | None = None,
        prices: ArrayLike | None = None,
        high: ArrayLike | None = None,
        low: ArrayLike | None = None,
        volatility: float | None = None,
        trend: float | None = None,
    ) -> RiskDecision:
        """The synchronous twin of :meth:`manage_risk_arrays` (see :meth:`manage_risk_sync`)."""
        market = MarketState.from_arrays(
            assets,
            returns=returns,
            prices=prices,
            high=high,
            low=low,
            volatility=volatility,
            trend=trend,
        )
        return self.manage_risk_sync(market, portfolio)

    def _refit_to_wait_for(self, engine: DecisionEngine) -> Future[GarchParams] | None:
        """A GARCH refit due at this bar and not done, with ``deterministic_refits`` only.

        Live (the default), a late refit is not waited for: the previous parameters stay in force
        and the decision says so (engine). A replay waits however long the fit takes.
        """
        job = engine.refit_due()
        if not self.config.deterministic_refits or job is None or job.done():
            return None
        return job

    def _refit_sync(self, engine: DecisionEngine) -> None:
        job = self._refit_to_wait_for(engine)
        if job is not None:
            with contextlib.suppress(Exception):  # a failed fit: the engine keeps the old parameters
                job.result()

    async def _refit_async(self, engine: DecisionEngine) -> None:
        job = self._refit_to_wait_for(engine)
        if job is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(asyncio.wrap_future(job))

    def _fit_garch_async(self, returns: FloatArray) -> Future[GarchParams]:
        """A GJR-GARCH refit in the worker process, awaited by a background thread."""
        return self._background_pool.submit(self._garch_worker.fit, returns)

    def _require_engine(self) -> DecisionEngine:
        if self._engine is None:
            raise RuntimeError("AdvancedRiskManager is closed")
        return self._engine

    def _finish(
        self,
        engine: DecisionEngine,
        observed: Observed,
        components: Components,
        start: float,
        *,
        inline: bool = False,
    ) -> tuple[RiskDecision, Future[None] | None]:
        """Decide, then hand the decision (and any safety-state change) to the journal.

        The decision gets its id and ``latency_ms`` (``start`` to now) before it is encoded: the
        journal row is the decision returned, byte for byte. ``inline``: the caller commits the row
        itself (``JournalWriter.commit_now``), so the row does not wake the journal thread at once
        (it lingers there, and is committed by the thread only if the caller never does).
        """
        allocation, advice, faults = components
        journal = self._journal
        before = (engine.machine.state, engine.machine.kill_switch)
        # a failing store is retried at every decision (without waiting): healed, this one is healthy
        store_down = journal is not None and not journal.retry_now()
        if store_down and journal is not None and journal.safety_pending:
            faults = (*faults, f"safety state not durable yet (state store: {journal.last_error})")
        elif store_down and journal is not None:
            faults = (*faults, f"state store unavailable: {journal.last_error}")
        decision_id = f"{self._run}-{next(self._ids)}"
        try:
            decision = engine.decide(observed, allocation, faults, advice, stamp=(decision_id, start))
        except Exception as exc:  # a fault in the decision arithmetic itself
            log.error("component_failed", component="engine", error=repr(exc))
            decision = engine.conservative(observed, (f"engine failed: {type(exc).__name__}: {exc}",))
        if decision.decision_id != decision_id:  # a degraded decision: stamped here
            decision = replace(
                decision, decision_id=decision_id, latency_ms=(time.perf_counter() - start) * 1000.0
            )
        if journal is None:
            return decision, None
        on_disk = self.config.state_path is not None
        changed = (engine.machine.state, engine.machine.kill_switch) != before
        # written ahead of the row; in memory it lands with the rows (nothing to wait for)
        safety = _submit_safety_state(journal, engine, urgent=on_disk) if changed else None
        # memory: nothing to wait for; a store already failing: the decision is degraded anyway and
        # waiting for its row would only burn the rest of the deadline (the row stays queued for retry)
        durable = self.config.journal_sync and on_disk and not store_down
        # encoded here: the journal thread then only runs SQLite, which releases the GIL; a row
        # nobody waits for lingers to be committed with the next ones (engine/journal.py)
        if durable:
            urgent = not inline
            return decision, journal.submit(
                decision.decision_id, decision.to_json(), engine.peak_equity, urgent=urgent
            )
        journal.append(decision.decision_id, decision.to_json(), engine.peak_equity)
        # a new safety state is waited for even with journal_sync=False: a restart must never come
        # up less cautious than this decision unless the bot was told it is not durable
        return decision, (safety if safety is not None and on_disk and not store_down else None)

    async def _await_durable(
        self,
        decision: RiskDecision,
        observed: Observed,
        done: Future[None],
        start: float,
        deadline: float,
    ) -> RiskDecision:
        if not done.done():  # committed inline: no loop round-trips to learn it
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    asyncio.shield(asyncio.wrap_future(done)), max(deadline - time.perf_counter(), 0.0)
                )
        if not _landed(done):  # late, or the writer closed meanwhile
            return self._journal_late(self._require_engine(), decision, observed, start)
        return decision

    def _journal_late(
        self, engine: DecisionEngine, decision: RiskDecision, observed: Observed, start: float
    ) -> RiskDecision:
        """The decision to return when ``decision``'s row was not durable in time, journalled too.

        The queued row stays queued and lands once the store allows: it is the decision as decided.
        The bot receives another one, so that one is a decision of its own: a new ``decision_id``,
        its own ``latency_ms``, an alert naming the id it replaces, and its own row (queued behind
        the first, not waited for: the deadline is spent). Every returned id is then journalled as
        returned, and ``read_decision`` finds both rows.

        A decision that was not degraded is replaced by the conservative one. One that was already
        degraded (e.g. a late policy used up the deadline) is kept, first fault first, with the
        extra alert; it still needs a new id and row: its queued row lacks that alert, and reusing
        the id would leave the journal holding a decision the bot never received.
        """
        journal = self._journal
        why = "journal not durable within the deadline"
        # the store's error only while it is failing: the last error outlives its recovery, and a
        # late commit on a healthy store (a slow fsync, another process's lock) is not that error
        if journal is not None and journal.last_error and not journal.healthy:
            why += f" (state store: {journal.last_error})"
        replaces = f"replaces {decision.decision_id}: {why}"
        if decision.degraded:
            fallback = replace(decision, alerts=(*decision.alerts, replaces))
        else:
            fallback = engine.conservative(observed, (replaces,))
        fallback = replace(
            fallback,
            decision_id=f"{self._run}-{next(self._ids)}",
            latency_ms=(time.perf_counter() - start) * 1000.0,
        )
        if journal is not None:
            journal.append(fallback.decision_id, fallback.to_json())
        return fallback

    def _record(self, decision: RiskDecision, start: float, deadline: float) -> RiskDecision:
        """Count the call in :meth:`metrics` (the full call time, any wait for durability included).

        The decision itself is returned as journalled: its ``latency_ms`` was set before its row was
        encoded (the time to decide up to the journal hand-off).
        """
        now = time.perf_counter()
        self._telemetry.record(decision, now - start, now > deadline)
        if self._dispatcher is not None:
            for event in self._pager.events(decision):
                self._dispatcher.emit(event)
        return decision

    def _journal_event(self, event: str, *, urgent: bool = False, **fields: Any) -> None:
        """Journal an operator control as a row of its own (``{"event": ..., ...}``, id
        ``<run>-<event>-<n>``) beside the decisions, for the audit trail (``python -m advanced_risk
        journal PATH --events``); queued, never waited for (``urgent``: committed without lingering)."""
        journal = self._journal
        if journal is not None:
            row = json.dumps({"event": event, **fields})
            journal.append(f"{self._run}-{event.replace('_', '-')}-{next(self._ids)}", row, urgent=urgent)

    def _page(self, message: str) -> None:
        """Raise an operator control's event to the ``on_alert`` hook (if any)."""
        if self._dispatcher is not None:
            self._dispatcher.emit(AlertEvent.now(message, self.trading_state))

    # -- operator controls -------------------------------------------------------------------------
    async def resume(self, reason: str) -> StateChange:
        """Leave HALTED explicitly (no restart needed).

        Less caution goes to the store first: the state in memory changes only once ACTIVE is
        durable, so a restart never comes up less cautious than a decision the bot received. Returns
        within ``deadline_ms``: if the write has not landed by then, ``StateChange(changed=False,
        durable=False, pending=True)``; the write is retried at every later call, and the first
        decision after it lands resumes.
        """
        await self.open()
        async with self._callers.held_async():
            start = time.perf_counter()
            engine, journal = self._require_engine(), self._journal
            machine = engine.machine
            if machine.state is not TradingState.HALTED:
                return StateChange(changed=False, durable=True)
            why = check_reason(reason)
            self._pending_resume = None  # this request supersedes one still waiting for the store
            if journal is None:
                return StateChange(changed=machine.resume(why), durable=False)
            done = journal.set_safety_state(TradingState.ACTIVE, f"resumed: {why}", False, resume=True)
            if await self._durable_within(done, start):
                changed = machine.resume(why)
                self._page(f"trading state halted -> active: resumed: {why}")
                self._journal_event("resume", reason=why)
                return StateChange(changed=changed, durable=True)
            self._pending_resume = (done, why)
            return StateChange(changed=False, durable=False, pending=True)

    async def engage_kill_switch(self, reason: str) -> StateChange:
        """Halt at once (no confirmations): in memory at once (more caution never waits), then on the
        store. Returns within ``deadline_ms`` saying whether the halt is durable; if not, the write is
        retried at every later call (and decisions say so while the store fails)."""
        await self.open()
        async with self._callers.held_async():
            start = time.perf_counter()
            engine = self._require_engine()
            why = check_reason(reason)  # refused before anything changes
            self._pending_resume = None  # a halt cancels a resume still waiting for the store
            before = engine.machine.state
            changed = engine.machine.engage_kill_switch(why)
            if changed:
                self._page(f"trading state {before.value} -> halted: {engine.machine.reason}")
            journal = self._journal
            if journal is None:
                return StateChange(changed=changed, durable=False)
            written = _submit_safety_state(journal, engine)
            if changed:
                self._journal_event("kill_switch", reason=why, previous=before.value)
            durable = await self._durable_within(written, start)
            return StateChange(changed=changed, durable=durable)

    async def _durable_within(self, done: Future[None], start: float) -> bool:
        """Wait for a safety-state write until ``deadline_ms`` after ``start``; whether it landed."""
        remaining = start + self.config.deadline_ms / 1000.0 - time.perf_counter()
        try:
            await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(done)), max(remaining, 0.0))
        except (TimeoutError, StateStoreError):
            return False
        return True

    def _apply_pending_resume(self, engine: DecisionEngine) -> None:
        """A resume whose write has landed since it was asked for takes effect now."""
        pending = self._pending_resume
        if pending is None or not pending[0].done():
            return
        self._pending_resume = None
        if pending[0].exception() is None and engine.machine.resume(pending[1]):
            self._page(f"trading state halted -> active: resumed: {pending[1]}")
            self._journal_event("resume", reason=pending[1])

    def _apply_store_halt(self, engine: DecisionEngine) -> None:
        """A halt the state file holds and this manager does not (another process engaged the kill
        switch on the same file) halts it too, from this decision on. The journal reads the file's
        state after each commit, so the halt takes effect at the first decision after the next
        commit (with the default 50 ms linger: the decision after the one in flight)."""
        journal = self._journal
        reason = None if journal is None else journal.halted_in_store
        if reason is None or engine.machine.state is TradingState.HALTED:
            return
        before = engine.machine.state
        engine.machine.engage_kill_switch(f"halted in the state store: {reason}")
        self._page(f"trading state {before.value} -> halted: {engine.machine.reason}")
        self._journal_event(
            "kill_switch", reason=f"halted in the state store: {reason}", previous=before.value
        )

    async def reset_peak(self, value: float, reason: str) -> None:
        """Set the peak equity drawdowns are measured from (after a deposit, a withdrawal or a bad
        equity print), durably, with a journal row saying who changed it from what and why.

        Raises
        ------
        InvalidInputError
            If ``value`` is not a finite number > 0, ``reason`` is empty, or the new peak is lower
            while HALTED: lowering the peak lowers the drawdown, so it would un-halt by the back
            door; ``resume`` first.
        StateStoreError
            If the store fails the new peak, or the decisions journalled before it (the peak would
            otherwise land ahead of the higher peak they carry); the peak in memory is unchanged.
        """
        peak = check_range(value, "value", 0.0, math.inf, lo_open=True, hi_open=True)
        why = check_reason(reason)
        await self.open()
        async with self._callers.held_async():
            engine = self._require_engine()
            previous = engine.peak_equity
            if engine.machine.state is TradingState.HALTED and (previous is None or peak < previous):
                raise InvalidInputError(
                    f"reset_peak({peak:g}) would lower the peak ({previous}) while HALTED; resume() first"
                )
            journal = self._journal
            if journal is not None:  # disk first: memory is never less cautious than the store
                await asyncio.wrap_future(journal.call(lambda store: store.set_peak_equity(peak)))
                # journalled once it took effect: a reset the store refused leaves no row
                self._journal_event(
                    "reset_peak", urgent=True, previous=previous, peak_equity=peak, reason=why
                )
            engine.reset_peak(peak)
            log.warning("peak_equity_reset", previous=previous, peak_equity=peak, reason=why)

    async def _persist_state(self, engine: DecisionEngine) -> None:
        journal = self._journal
        if journal is None:
            return
        await asyncio.wrap_future(_submit_safety_state(journal, engine))

    async def flush(self) -> None:
        """Wait until every decision returned so far is durable in the journal.

        Raises
        ------
        StateStoreError
            If the state store fails to commit them (the message says how many rows wait and why):
            they stay queued and are retried; ``flush`` again to wait for them.
        """
        if self._journal is not None:
            await asyncio.wrap_future(self._journal.flush())

    def read_decision(self, decision_id: str) -> dict[str, Any] | None:
        """The journalled decision ``decision_id``, as the bot received it.

        Parameters
        ----------
        decision_id : the ``RiskDecision.decision_id`` of a decision this manager (or an earlier
            one on the same ``state_path``) returned.

        Returns
        -------
        dict or None
            The journal row as JSON data, ``json.loads(decision.to_json())`` of the decision
            returned: from memory while the row is still queued in the journal, else from the store.
            None for an id never journalled or moved to an archive (``python -m advanced_risk
            journal --archive-before``: read it there); with the state in memory, also for an id the ring has
            evicted (older than the newest ``RiskConfig.memory_journal_rows`` decisions, see
            ``metrics()["journal_evicted"]``), and for every id once the manager is closed (nothing
            survives ``close``).

        Raises
        ------
        StateStoreError
            If the state store fails the read (e.g. the file is not a database).
        InvalidInputError
            If ``decision_id`` is not a str.

        Notes
        -----
        Synchronous, and it may block: a committed row is read on the journal thread, after the
        transaction it is running (up to the store's busy timeout while another connection holds
        the lock); a row not yet committed is answered at once. After :meth:`close` (or before
        :meth:`open`) an on-disk store is read through a read-only connection.

        Examples
        --------
        >>> import json
        >>> risk = AdvancedRiskManager()
        >>> decision = risk.manage_risk_sync({"returns": {"a": 0.01}}, {"weights": {"a": 0.5}})
        >>> risk.read_decision(decision.decision_id) == json.loads(decision.to_json())
        True
        >>> risk.read_decision("no-such-id") is None
        True
        >>> risk.close_sync()
        """
        if not isinstance(decision_id, str):
            raise InvalidInputError(f"decision_id must be a str, got {type(decision_id).__name__}")
        journal = self._journal
        if journal is not None:
            try:
                return journal.read_decision(decision_id)
            except StateStoreError:
                if not journal.closed:  # a real read failure, not a close() racing this read
                    raise
        path = self.config.state_path
        if path is None or not Path(path).expanduser().is_file():
            return None
        with StateStore(path, read_only=True) as store:
            entry = store.get_decision(decision_id)
        return None if entry is None else entry.payload

    @property
    def trading_state(self) -> str:
        """The current trading state's value ('active', 'reducing', 'halted')."""
        return self._engine.machine.state.value if self._engine is not None else "closed"

    def metrics(self) -> dict[str, float | int | bool]:
        """Counters and latency of the calls so far, and the journal's health.

        Returns
        -------
        dict
            - ``calls``, ``degraded``, ``deadline_violations``: calls, degraded decisions, calls
              that returned after their deadline;
            - ``latency_p50_ms``, ``latency_p99_ms``: percentiles of the full call time over every
              call, from a fixed-size log-bucket histogram (within 0.05 % of the exact order
              statistic; O(1) memory and cost per call); ``latency_max_ms``: exact; NaN before the
              first call;
            - ``journal_healthy``: False from a failed commit until the next successful one;
            - ``journal_committed``: rows committed; ``journal_pending``: rows kept for a retry
              while the store fails;
            - ``journal_evicted``: rows the in-memory journal's ring deleted to keep the newest
              ``RiskConfig.memory_journal_rows`` (by design; 0 on disk, which keeps all of
              history); ``read_decision`` returns None for them;
            - ``journal_dropped``: rows lost because more than the writer's ``max_pending`` waited
              for a failing store (a fault; never journalled).

            The ``journal_*`` counts are of the current opening (0 after ``close``).
        """
        t = self._telemetry
        p50, p99 = t.latencies.percentiles_ms((50.0, 99.0))
        journal = self._journal
        return {
            "calls": t.decisions,
            "degraded": t.degraded,
            "deadline_violations": t.deadline_misses,
            "latency_p50_ms": p50,
            "latency_p99_ms": p99,
            "latency_max_ms": t.latencies.max_ms if t.decisions else float("nan"),
            "journal_healthy": journal.healthy if journal is not None else False,
            "journal_committed": journal.committed if journal is not None else 0,
            "journal_pending": journal.pending if journal is not None else 0,
            "journal_evicted": journal.evicted if journal is not None else 0,
            "journal_dropped": journal.dropped if journal is not None else 0,
        }

    def telemetry_snapshot(self) -> TelemetrySnapshot:
        """Everything :meth:`metrics` and the Prometheus metrics report, frozen, now.

        Counts since the manager was created; the gauges are the last decision's, the trading state
        and kill switch the live ones (an operator control may have moved them since). Cheap enough
        for a scrape (~0.2 ms), not meant for every bar.
        """
        journal, engine = self._journal, self._engine
        return self._telemetry.snapshot(
            journal=None if journal is None else JournalCounters.read(journal),
            kill_switch=engine is not None and engine.machine.kill_switch,
            trading_state=None if engine is None else engine.machine.state,
        )

    def metrics_collector(self, namespace: str = "advanced_risk") -> RiskMetricsCollector:
        """A Prometheus collector of this manager's metrics, to register on the bot's own registry
        (``registry.register(risk.metrics_collector())``); read at scrape time only.

        Needs the ``[metrics]`` extra (``prometheus-client``); docs/operations.md lists the metrics.
        """
        from advanced_risk.monitoring.prometheus import RiskMetricsCollector

        return RiskMetricsCollector(self.telemetry_snapshot, namespace)

    def serve_metrics(self, port: int, addr: str = "127.0.0.1") -> MetricsServer:
        """Serve this manager's Prometheus metrics over HTTP at ``http://addr:port/metrics``.

        A background thread of ``prometheus_client`` answers scrapes (nothing runs per decision).
        ``port=0`` picks a free port (``server.port``); ``server.close()`` stops it, and so does
        closing the manager. The default address is the local host only: expose it wider on purpose
        (``addr="0.0.0.0"``). Needs the ``[metrics]`` extra.

        Raises
        ------
        OSError
            The address cannot be served (e.g. the port is in use); the message names it.
        """
        from advanced_risk.monitoring.prometheus import serve_metrics

        server = serve_metrics(self.telemetry_snapshot, port, addr)
        self._servers = [s for s in self._servers if not s.closed]
        self._servers.append(server)
        return server


def _check_component(component: Allocator | Advisor | None, kind: str, config: RiskConfig) -> None:
    """Refuse a policy or risk agents whose declared shape the engine cannot honour, at construction.

    ``asset_count`` must be an int >= 1; ``history_length`` an int in ``[0, capacity]``, the
    capacity being the return history the tracker keeps (``max(tracker.window,
    tracker.fhs_window)`` bars: a longer one is never served, so the component would idle, then get
    a short history); ``asset_names``, if set, a sequence (not a str) of ``asset_count`` distinct,
    non-empty str (a repeated name would receive two weights in one place, and a str would be read
    as its characters).

    Raises
    ------
    InvalidInputError
        Naming the attribute (``policy.history_length``, ...) and its value.
    """
    if component is None:
        return
    count, length = component.asset_count, component.history_length
    if not _is_int(count) or count < 1:
        raise InvalidInputError(f"{kind}.asset_count must be an int >= 1, got {count!r}")
    capacity = max(config.tracker.window, config.tracker.fhs_window)
    if not _is_int(length) or not 0 <= length <= capacity:
        raise InvalidInputError(
            f"{kind}.history_length must be an int in [0, {capacity}] (the bars of returns the tracker "
            f"keeps: max(tracker.window, tracker.fhs_window)), got {length!r}"
        )
    names = getattr(component, "asset_names", None)
    if names is None:
        return
    try:
        names = () if isinstance(names, str | bytes) else tuple(names)
    except TypeError:
        names = ()
    if not names:
        raise InvalidInputError(
            f"{kind}.asset_names must be None or a sequence of asset names (not a str), got "
            f"{getattr(component, 'asset_names', None)!r:.80}"
        )
    bad = [a for a in names if not isinstance(a, str) or not a]
    if bad:
        raise InvalidInputError(f"{kind}.asset_names must be non-empty str, got {bad[0]!r}")
    if len(set(names)) != len(names):
        twice = sorted({a for a in names if names.count(a) > 1})
        raise InvalidInputError(f"{kind}.asset_names must be distinct, got {twice[:10]} more than once")
    if len(names) != count:
        raise InvalidInputError(
            f"{kind}.asset_names names {len(names)} assets but {kind}.asset_count is {count}"
        )


_T = TypeVar("_T")


def _from_journal(store: StateStore, read: Callable[[], _T], default: _T, event: str) -> _T:
    """``read()`` (a restart's reading of the journal), or ``default`` and an ``event`` warning when
    the journal cannot be read: what a restart restores from it is never a reason to fail it."""
    try:
        return read()
    except Exception as exc:
        log.warning(event, path=str(store.path), reason=repr(exc))
        return default


def _restart_of(store: StateStore, config: RiskConfig, restored: PersistedState) -> Restart:
    """What a restart on a file store reads from its journal (:class:`Restart`); each part that
    cannot be read is left empty, with a warning naming it (see :func:`_from_journal`)."""
    reducing = restored.trading_state is TradingState.REDUCING
    last = _from_journal(store, store.last_healthy, None, "decision_not_restored")
    return Restart(
        # the last journaled decision's stops: trailed protection survives a restart
        stops=_restored_stops(store),
        equity=_restored_equity(store, config.drawdown_window),
        weights=_restored_weights(store) if reducing else {},
        leverage=_from_journal(store, store.last_leverage, None, "leverage_not_restored"),
        streaks=_from_journal(store, store.last_streaks, {}, "streaks_not_restored"),
        last=last,
        snapshot=_restored_snapshot(store),
    )


def _restored_snapshot(store: StateStore) -> EngineSnapshot | None:
    """The engine state the last graceful close saved, taken out of the store
    (:meth:`StateStore.take_snapshot`: it serves this open only), or None: none saved, stale, or
    unreadable (a ``snapshot_not_restored`` warning)."""
    taken = _from_journal(store, store.take_snapshot, None, "snapshot_not_restored")
    if taken is None:
        return None
    stamp, data = taken
    snapshot = _from_journal(store, lambda: decode_snapshot(data), None, "snapshot_not_restored")
    return None if snapshot is None else replace(snapshot, stamp=stamp)


def _save_snapshot(journal: JournalWriter, engine: DecisionEngine) -> None:
    """Save the engine's learnt state behind the journal's last row (a graceful close): the next
    open goes on from it. Never raises: a close does not fail for it (a ``snapshot_not_saved``
    warning; the next open then starts the tracker afresh, as after a crash)."""
    snapshot = engine.snapshot()
    if snapshot is None:
        return
    try:
        # a run that decided nothing hands the snapshot it took on, with its stamp
        data, last = encode_snapshot(snapshot), journal.last_decision or snapshot.stamp or None
        saved = journal.call(lambda store: store.save_snapshot(data, last)).result(
            timeout=_SNAPSHOT_TIMEOUT_S
        )
    except Exception as exc:
        log.warning("snapshot_not_saved", reason=repr(exc))
        return
    if saved is None:
        log.warning(
            "snapshot_not_saved", reason=f"the journal's newest decision is not this run's last ({last})"
        )


def _restored_stops(store: StateStore) -> dict[str, float]:
    """The stops of the last journaled decision (:meth:`StateStore.last_stops`), or ``{}`` and a
    ``stops_not_restored`` warning when the journal cannot be read."""
    return _from_journal(store, store.last_stops, {}, "stops_not_restored")


def _restored_weights(store: StateStore) -> dict[str, float]:
    """The weights of the last journaled decision (:meth:`StateStore.last_weights`): what a restart
    while REDUCING caps each position at; ``{}`` (REDUCING then caps from the book of the first bar,
    as when it begins) with a ``weights_not_restored`` warning when the journal cannot be read."""
    return _from_journal(store, store.last_weights, {}, "weights_not_restored")


def _restored_equity(store: StateStore, window: int | None) -> list[float]:
    """The equity of the newest ``window`` journaled decisions (:meth:`StateStore.recent_equity`):
    the drawdown window a restart rebuilds; ``[]`` (the restored peak alone, the cautious reading)
    without a window or when the journal cannot be read, with an ``equity_window_not_restored``
    warning."""
    if window is None:
        return []
    return _from_journal(store, lambda: store.recent_equity(window), [], "equity_window_not_restored")


def _is_int(value: object) -> bool:
    """Whether ``value`` is an integer (a Python or NumPy int; not a bool)."""
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _load_advisor(risk_agents: Any, config: RiskConfig) -> Advisor | None:
    """The risk agents given, else those of ``config.risk_agents_path``, else None (rules only)."""
    source = risk_agents if risk_agents is not None else config.risk_agents_path
    if source is None:
        return None
    from advanced_risk.rl.agents.advisor import (
        load_risk_agents,  # numba kernels: loaded only when asked for
    )

    return load_risk_agents(
        source,
        config.sizing,
        config.mc_samples,
        config.agents_uncertainty_threshold,
        drift=_drift_settings(config),
    )


def _drift_settings(config: RiskConfig) -> DriftSettings:
    """The input-drift monitors' settings of ``config`` (docs/drift.md)."""
    return DriftSettings(
        window=config.drift_window, threshold=config.drift_threshold, min_bars=config.drift_min_bars
    )


def _warm_up(config: RiskConfig, allocator: Allocator | None, advisor: Advisor | None = None) -> None:
    """Pay the one-off costs (numba cache loads, the ``arch`` import, the first inference) now.

    Called from ``open`` (a worker thread), so the first bar meets its deadline. A failure here is
    not fatal: the first bars are then merely slow (and degraded if late).
    """
    try:
        warm_up(config)
        if isinstance(allocator, PolicyAllocator):
            allocator.warm_up()
        advisor_warm_up = getattr(advisor, "warm_up", None)
        if advisor_warm_up is not None:
            advisor_warm_up()
    except Exception as exc:
        log.warning("warm_up_failed", error=repr(exc))


def _throttler(rate_per_s: float) -> Throttler:
    """At most ``rate_per_s`` calls per second: ``n`` calls per ``n / rate_per_s`` seconds with
    ``n = max(floor(rate), 1)`` (0.5/s is one call per 2 s, not one per second)."""
    calls = max(int(rate_per_s), 1)
    return Throttler(rate_limit=calls, period=calls / rate_per_s)


def _submit_safety_state(
    journal: JournalWriter, engine: DecisionEngine, *, urgent: bool = True
) -> Future[None]:
    """Hand the trading state, its reason and the kill switch to the journal (durable, retried);
    ``urgent=False``: nobody waits for it (``JournalWriter.set_safety_state``)."""
    machine = engine.machine
    return journal.set_safety_state(machine.state, machine.reason, machine.kill_switch, urgent=urgent)


def _uses_garch(config: RiskConfig) -> bool:
    return VaRMethod(config.tracker.method) is VaRMethod.FHS_GARCH


def _garch_pool() -> ThreadPoolExecutor:
    """One thread that waits on the GARCH worker process (waiting on a pipe holds no GIL)."""
    return ThreadPoolExecutor(1, thread_name_prefix="advanced-risk-garch")
