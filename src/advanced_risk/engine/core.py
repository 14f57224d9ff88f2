"""The decision core shared by ``manage_risk`` and ``manage_risk_sync``: one bar in, one decision out.

Per bar, in order (each step is a component; a component that raises makes the decision
*degraded*, never an exception for the caller):

- ``parse``: validate the inputs and map them onto the asset universe. Bad input raises
  :class:`~advanced_risk.errors.InvalidInputError` here, before any state has changed.
- ``observe``: feed the :class:`RiskTracker`, the streaming ATR, peak equity and the VaR-breach and
  loss streaks.
- the allocator (PPO policy) proposes target weights with an uncertainty, and the learned risk
  agents (optional) advise a size scale, a stop distance and a de-risking action, gated by their
  MC-dropout uncertainty; the engine builds their inputs (``policy_request``, ``agents_request``)
  and :mod:`advanced_risk.engine.components` runs them within the deadline. The engine sees them
  only through :mod:`advanced_risk.engine.protocols`.
- ``decide``: trading state, target weights, leverage, hedge, VaR/CVaR, position sizes and stops,
  risk level; the agents' advice can only add caution to the rules.

Books are signed (negative weights are shorts; gross exposure above 1 is a leveraged book) and the
universe follows the bars by name (:mod:`advanced_risk.engine.inputs`): every per-asset state (the
tracker's columns, ATR, stops, last closes) is an array in universe order, reshaped only at a bar
where assets join or leave, so the per-bar work has no per-asset Python loop.

The engine is not thread-safe: the manager serialises calls.

One module because the steps of :class:`DecisionEngine` share its per-asset state arrays, which
every bar reads and a universe change reshapes together; what needs none of that state lives
beside it (``inputs``, ``protocols``, ``refits``, ``components``).
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np

from advanced_risk.config import RiskConfig
from advanced_risk.engine.inputs import MAX_BAR_RETURN, Bar, parse_inputs
from advanced_risk.engine.protocols import Advisor, Allocation, Allocator
from advanced_risk.engine.refits import Background, GarchRefits
from advanced_risk.engine.snapshot import EngineSnapshot, settings_key
from advanced_risk.engine.state import PersistedState, Restart, priced_of
from advanced_risk.errors import InvalidInputError
from advanced_risk.logs import get_logger
from advanced_risk.measures.decide_kernels import policy_book_kernel, with_cash_kernel
from advanced_risk.measures.decide_kernels import warm_up as warm_up_decide_kernels
from advanced_risk.measures.rolling_max import RollingMax
from advanced_risk.measures.stop_kernels import position_sizes_kernel, trail_stops_kernel
from advanced_risk.measures.validation import BoolArray, FloatArray, IntArray
from advanced_risk.measures.var import VaRMethod
from advanced_risk.risk.atr import StreamingATR
from advanced_risk.risk.garch import GarchParams
from advanced_risk.risk.hedging import HedgingStrategy
from advanced_risk.risk.leverage import LongRunVolatility, VolatilityTargetLeverage
from advanced_risk.risk.rules import RiskObservation, Streak, TradingStateMachine, classify_risk_level
from advanced_risk.risk.strategy_drawdown import StrategyDrawdown
from advanced_risk.risk.tracker import RiskTracker
from advanced_risk.types import (
    AgentAdvice,
    CorrelationState,
    DriftStatus,
    HedgeInstruction,
    MarketState,
    Portfolio,
    RiskDecision,
    RiskLevel,
    TradingState,
)

__all__ = ["DecisionEngine", "Observed", "component_fault", "warm_up"]

log = get_logger(__name__)

DEFAULT_UNCERTAINTY_THRESHOLD = 0.1
"""Used when neither the config nor the policy file sets an uncertainty threshold."""

JUMP_ALERT = 0.3
"""A one-bar return at least this large (either way) is said in the decision's alerts: it is taken
as a real move, and an unadjusted split (2:1 is -50 %, 3:2 is -33 %) or a bad tick would be too."""
JUMP_ALERTS_NAMED = 5
"""The most assets a bar's jump alerts name, one alert each (the largest moves); one more counts the rest."""
GROSS_ALERT = 20.0
"""A book passed with a gross exposure ``sum |weights|`` above this is said in the decision's alerts:
weights are fractions of equity, and a book given in percent (50 for 50 %) reads as 100 times its
size. Not refused: a leveraged book may be large, and only the units are in doubt."""


@dataclass(frozen=True, slots=True)
class Observed:
    """What ``observe`` derived from a bar (read by ``decide``)."""

    bar: Bar
    drawdown: float
    returns: FloatArray | None
    faults: tuple[str, ...]
    strategy_drawdown: float = 0.0  # of the reference book (risk/strategy_drawdown.py)


class DecisionEngine:
    """Turns one validated bar into a :class:`RiskDecision` (see the module docstring).

    Parameters
    ----------
    config : the risk configuration.
    restored : the safety state of the state store (None: a fresh start).
    restart : what a restart read from the journal (None: nothing).

        - ``stops`` seed the stops of the first bar that carries prices, for that bar's assets
          (:meth:`_seed_stops`), and trail on from there.
        - ``equity`` is the ``drawdown_window`` high-water mark a restart rebuilds, so that it
          measures drawdowns as the running manager did. When it holds fewer than
          ``drawdown_window`` values, the restored peak goes in first (it may be a bar older than
          the journal shows: the cautious reading).
        - ``weights`` cap the positions of a restart while REDUCING (:meth:`_restored_reduce_from`),
          ``leverage`` the leverage until the tracker is warm again (:meth:`_restart_cap`).
        - ``streaks`` resume the rules' counters; ``last`` is the last healthy decision: what a
          degraded one falls back on, and the book whose return the first bar checks against its
          VaR (the VaR-breach streak).
    allocator, advisor : the policy and the learned risk agents (None: the rules alone).
    background : runs a GJR-GARCH fit off this thread (None: in the caller's thread).
    """

    def __init__(
        self,
        config: RiskConfig,
        *,
        restored: PersistedState | None = None,
        restart: Restart | None = None,
        allocator: Allocator | None = None,
        advisor: Advisor | None = None,
        background: Background | None = None,
    ) -> None:
        self.config = config
        self.allocator = allocator
        self.advisor = advisor
        state = restored or PersistedState(None, TradingState.ACTIVE, "", False, 0.0)
        back = restart or Restart()
        self.peak_equity: float | None = state.peak_equity
        # Equity of the last drawdown_window bars (used only with a window), rebuilt from the journal
        self._equity_window = _equity_window(config.drawdown_window, state.peak_equity, back.equity)
        self.machine = TradingStateMachine(
            config,
            state=state.trading_state,
            reason=state.reason,
            kill_switch=state.kill_switch,
            halt_votes=back.streaks.get("halt_votes", 0),
        )
        self.hedger = None if config.hedge is None else HedgingStrategy.from_config(config)
        self.leverage_model = VolatilityTargetLeverage(config.leverage)
        relative = config.leverage.relative_target is not None
        # the long-run volatility of the book asked for (relative vol target); a restart starts it
        # again, which can only raise the target back towards target_volatility's, never above it
        self._long_run = LongRunVolatility(config.leverage.relative_halflife) if relative else None
        self.assets: tuple[str, ...] | None = None
        self.tracker: RiskTracker | None = None
        # per-asset state, in universe order (NaN: not seen / no stop)
        self._atr = StreamingATR(0, config.sizing.atr_period)
        self._last_close = np.empty(0)
        self._held = np.empty(0)
        self._stop = np.empty(0)
        self._stop_short = np.empty(0, dtype=bool)
        self._restored_stops = dict(back.stops) if back.stops else None  # seeded at the first priced bar
        self._restoring = False  # some restored stop waits for its asset's ATR (_check_restored)
        self._columns: dict[int, IntArray | None] = {}  # id(component) -> its columns in the universe
        self._in_order: dict[int, bool] = {}  # id(component) -> its columns are 0, 1, ..., n - 1
        self._reduce_from: FloatArray | None = None  # held when REDUCING began (signed, universe order)
        # a restart while REDUCING: the last journaled decision's weights, which cap the positions
        # as they capped them before (consumed by the first decision)
        reducing = state.trading_state is TradingState.REDUCING
        self._restored_weights = dict(back.weights) if back.weights and reducing else None
        self._restart_leverage = back.leverage or None  # a HALTED decision's 0 caps nothing
        self._var_streak = Streak(back.streaks.get("var_breach", 0))
        self._loss_streak = Streak(back.streaks.get("loss", 0))
        self._strategy: StrategyDrawdown | None = None  # made at the first bar (seeded from equity)
        # the last healthy decision's levered book (target x leverage, universe order) and its VaR:
        # a VaR breach is that book's return below the VaR priced for it; GJR-GARCH refits fit it
        self._priced: tuple[FloatArray, float] | None = None
        self._restored_priced = priced_of(back.last)  # a restart's, by asset: laid out at the first bar
        self._snapshot = back.snapshot  # installed at the first bar if it names the same universe
        self._seasoned = False  # every asset has the tracker's window of its own history
        self._refits = GarchRefits(background, config.garch_install_lag)
        self.last: RiskDecision | None = back.last  # the last healthy decision (a restart: journalled)

    # -- parse: validation only, no state change ----------------------------------------------------
    def parse(
        self, market_state: MarketState | Mapping[str, Any], portfolio: Portfolio | Mapping[str, Any]
    ) -> Bar:
        """Validate and align the inputs (raises ``InvalidInputError``; changes nothing)."""
        bar = parse_inputs(
            market_state,
            portfolio,
            self.assets,
            self._held if self.assets else None,
            self.config.max_assets,
        )
        for component, kind in ((self.allocator, "policy"), (self.advisor, "risk agents")):
            if (
                component is not None
                and _names(component) is None
                and (bar.returns is not None or bar.prices is not None)
                and len(bar.assets) != component.asset_count
            ):
                raise InvalidInputError(
                    f"the {kind} was trained on {component.asset_count} unnamed assets, market_state "
                    f"names {len(bar.assets)}: save it with asset names to trade a different universe"
                )
        if bar.returns is None and bar.prices is not None:
            _check_derived_returns(bar, self._derived_returns(bar))
        self._check_equity(bar.portfolio)
        return bar

    def _check_equity(self, book: Portfolio) -> None:
        """Refuse an equity (or peak) print above ``max_equity_jump`` x the peak: a data error."""
        jump, peak = self.config.max_equity_jump, self.peak_equity
        if jump is None or peak is None:
            return
        for name, value in (("equity", book.equity), ("peak_equity", book.peak_equity)):
            if value is not None and value > jump * peak:
                raise InvalidInputError(
                    f"portfolio.{name}={value:.6g} is more than max_equity_jump={jump:g} x the peak "
                    f"equity {peak:.6g}: a data error (a real change of capital: reset_peak)"
                )

    def reset_peak(self, value: float) -> None:
        """Measure drawdowns from ``value`` from now on (the equity window restarts there)."""
        self.peak_equity = value
        self._equity_window.clear()
        self._equity_window.push(value)

    @property
    def has_history(self) -> bool:
        """Whether an earlier bar carried prices."""
        return bool(np.isfinite(self._last_close).any())

    def _previous_close(self, bar: Bar) -> FloatArray:
        """Last closes in the bar's universe order (NaN for assets that join at this bar)."""
        if not bar.universe_changed:
            return self._last_close
        kept = np.delete(self._last_close, bar.left)
        return np.append(kept, np.full(len(bar.joined), np.nan))

    def _derived_returns(self, bar: Bar) -> FloatArray | None:
        """Close-to-close returns when the bar gives prices only (0 for an asset's first close).

        The first bar after a graceful restart reads the snapshot's last closes when it names the
        snapshot's universe: the return the running manager would have derived."""
        if bar.prices is None:
            return None
        if self.assets is None:
            snap = self._snapshot
            if snap is None or snap.assets != bar.assets or not np.isfinite(snap.last_close).any():
                return None
            previous = snap.last_close
        elif self.has_history:
            previous = self._previous_close(bar)
        else:
            return None
        derived = bar.prices / previous - 1.0
        return np.where(np.isnan(derived), 0.0, derived)

    # -- observe: the state updates of one bar -------------------------------------------------------
    def observe(self, bar: Bar) -> Observed:
        """Feed the bar to the stateful components; their faults are collected, not raised."""
        returns = bar.returns if bar.returns is not None else self._derived_returns(bar)
        self._follow_universe(bar)
        faults: list[str] = []
        port: float | None = None
        if returns is not None:
            port = float(bar.held @ returns)
            if self._priced is not None:  # no book priced yet: the streak (0, or restored) waits
                self._var_streak.update(self._breached(returns))
            self._loss_streak.update(port < 0.0)
            try:
                self._feed_tracker(returns)
            except Exception as exc:  # a component fault: degrade, never raise
                faults.append(component_fault("tracker", exc))
        if bar.prices is not None:
            if self._restored_stops is not None:
                self._seed_stops(bar.assets, bar.prices)
            try:
                high = bar.high if bar.high is not None else bar.prices
                low = bar.low if bar.low is not None else bar.prices
                self._atr.update(high, low, bar.prices)
            except Exception as exc:
                faults.append(component_fault("atr", exc))
            self._last_close = bar.prices
            advisor, cols = self.advisor, self._columns_of(self.advisor)
            if advisor is not None and cols is not None:
                try:
                    stops = np.where(self._stop_short[cols], np.nan, self._stop[cols])
                    advisor.observe(bar.prices[cols], bar.held[cols], port, stops)
                except Exception as exc:
                    faults.append(component_fault("risk agents", exc))
        self._held = bar.held
        equity = bar.portfolio.equity
        if equity is not None:
            self.peak_equity = max(self.peak_equity or equity, equity, bar.portfolio.peak_equity or 0.0)
            self._equity_window.push(equity)
        drawdown = bar.portfolio.current_drawdown
        if equity is not None and self.peak_equity:
            drawdown = max(drawdown, 1.0 - equity / self._reference_peak())
        drawdown = min(max(drawdown, 0.0), 1.0)
        return Observed(bar, drawdown, returns, tuple(faults), self._strategy_update(returns, drawdown))

    def _breached(self, returns: FloatArray) -> bool:
        """Whether this bar's return of the last priced book is below the VaR priced for it."""
        return self._priced is not None and float(self._priced[0] @ returns) < -self._priced[1]

    def streaks(self) -> dict[str, int]:
        """The rules' counters after the last observed bar (``RiskDecision.streaks``)."""
        return {
            "loss": self._loss_streak.count,
            "var_breach": self._var_streak.count,
            "halt_votes": self.machine.halt_votes,
        }

    def _strategy_update(self, returns: FloatArray | None, drawdown: float) -> float:
        """The reference book earns this bar's returns; its drawdown (seeded from the account's)."""
        if self._strategy is None:  # a restart starts from the restored drawdown, not from 0
            if self.machine.state is TradingState.REDUCING and self.config.drawdown_basis == "strategy":
                # restarted while REDUCING: the strategy's drawdown (not kept) counts as at least
                # the threshold, so REDUCING lasts until the book asked for recovers from there
                drawdown = max(drawdown, self.config.reduce_drawdown)
            self._strategy = StrategyDrawdown(
                self.config.drawdown_window,
                initial_drawdown=drawdown,
                trend_halflife=self.config.leverage.trend_halflife,
            )
            return self._strategy.drawdown
        return self._strategy.update(returns) if returns is not None else self._strategy.drawdown

    def _follow_universe(self, bar: Bar) -> None:
        """Reshape every per-asset state to the bar's universe (assets that left, then those that joined)."""
        if self.assets is None and not bar.assets:
            return
        if self.assets is not None and not bar.universe_changed:
            return
        left, k = bar.left, len(bar.joined)
        self._last_close = np.append(np.delete(self._last_close, left), np.full(k, np.nan))
        self._held = np.append(np.delete(self._held, left), np.zeros(k))
        self._stop = np.append(np.delete(self._stop, left), np.full(k, np.nan))
        self._stop_short = np.append(np.delete(self._stop_short, left), np.zeros(k, dtype=bool))
        if self._reduce_from is not None:  # a joiner gets no new position while REDUCING
            self._reduce_from = np.append(np.delete(self._reduce_from, left), np.zeros(k))
        if self._priced is not None:  # a joiner was not in the book the VaR priced
            self._priced = (np.append(np.delete(self._priced[0], left), np.zeros(k)), self._priced[1])
        if k:
            self._atr.add_assets(k)
            self._seasoned = False
        if left:
            self._atr.remove_assets(left)
        if self._strategy is not None:
            self._strategy.reshape(left, k)
        if self.tracker is not None:
            if k:
                self.tracker.add_assets(k)  # first: removing every old asset would leave none
            if left:
                self.tracker.remove_assets(left)
        if self.assets is not None:
            log.info("universe_changed", joined=list(bar.joined), left=[self.assets[i] for i in left])
            if (
                self._restored_stops is not None
            ):  # a leaver's restored stop goes with it (a rejoin starts bare)
                for i in left:
                    self._restored_stops.pop(self.assets[i], None)
        self.assets = bar.assets
        self._columns.clear()
        self._in_order.clear()
        if self._restored_priced is not None:  # a restart: the journalled book, in this universe
            book, var = self._restored_priced
            self._priced = (np.array([book.get(a, 0.0) for a in bar.assets], dtype=np.float64), var)
            self._restored_priced = None
        if self._snapshot is not None:
            self._install_snapshot(bar.assets)

    def snapshot(self) -> EngineSnapshot | None:
        """The learnt per-asset state after the last bar (before the first bar: the snapshot the
        open took, or None): what a graceful close saves so that the next open goes on from it
        (:mod:`engine.snapshot`)."""
        if self.assets is None:  # no bar yet: the snapshot taken at open, if any, goes on as it is
            return self._snapshot
        atr = self._atr
        return EngineSnapshot(
            assets=self.assets,
            settings=settings_key(self.config),
            tracker=None if self.tracker is None else self.tracker.state(),
            atr_counts=atr.counts.copy(),
            atr_total=atr.total.copy(),
            atr_value=atr.value.copy(),
            atr_prev_close=atr.prev_close.copy(),
            last_close=self._last_close.copy(),
            stop=self._stop.copy(),
            stop_short=self._stop_short.copy(),
            seasoned=self._seasoned,
            strategy=None if self._strategy is None else self._strategy.state(),
            refit=self._refits.pending(REFIT_SAVE_TIMEOUT_S),
            long_run=None if self._long_run is None else self._long_run.state(),
            components=self._component_states(),
        )

    def _component_states(self) -> dict[str, Any]:
        """The ``snapshot_state()`` of the policy and the agents that have one; a component that
        fails to give it is left out (a ``component_state_not_saved`` warning): it then starts
        afresh after the restart, as after a crash."""
        out: dict[str, Any] = {}
        for name, component in (("policy", self.allocator), ("agents", self.advisor)):
            get = getattr(component, "snapshot_state", None)
            if get is None:
                continue
            try:
                state = get()
                json.dumps(state)  # JSON data, or left out here rather than failing the snapshot
            except Exception as exc:
                log.warning("component_state_not_saved", component=name, error=repr(exc))
                continue
            out[name] = state
        return out

    def _restore_components(self, states: Mapping[str, Any]) -> None:
        """Hand each component its saved state (``restore_state``); one that refuses it starts
        afresh (a ``component_state_not_restored`` warning)."""
        for name, component in (("policy", self.allocator), ("agents", self.advisor)):
            restore = getattr(component, "restore_state", None)
            if restore is None or name not in states:
                continue
            try:
                restore(states[name])
            except Exception as exc:
                log.warning("component_state_not_restored", component=name, error=repr(exc))

    def _install_snapshot(self, assets: tuple[str, ...]) -> None:
        """Go on from the snapshot of the last close if it is of this universe and these settings
        (its stops then replace the journal's, which they equal or trail ahead of); else drop it."""
        snap, self._snapshot = self._snapshot, None
        assert snap is not None  # the caller checked
        why = "another universe" if snap.assets != assets else ""
        if not why and snap.settings != settings_key(self.config):
            why = "other tracker, ATR, drawdown or long-run volatility settings"
        try:
            tracker, strategy, long_run = (None, None, None) if why else self._rebuilt(snap)
        except (InvalidInputError, ValueError, KeyError) as exc:
            why = f"{type(exc).__name__}: {exc}"
        if why:
            log.info("snapshot_not_used", reason=why, saved=len(snap.assets), bar=len(assets))
            return
        self.tracker, self._strategy = tracker, strategy
        self._long_run = long_run if long_run is not None else self._long_run
        if snap.refit is not None and tracker is not None:
            self._refits.resume(*snap.refit)
        self._atr.counts, self._atr.total = snap.atr_counts, snap.atr_total
        self._atr.value, self._atr.prev_close = snap.atr_value, snap.atr_prev_close
        self._last_close, self._stop, self._stop_short = snap.last_close, snap.stop, snap.stop_short
        self._seasoned, self._restored_stops, self._restoring = snap.seasoned, None, False
        self._restart_leverage = None  # the tracker goes on: no warm-up to cap the leverage through
        self._restore_components(snap.components or {})
        log.info(
            "snapshot_restored", assets=len(assets), bars=0 if tracker is None else tracker.n_observations
        )

    def _rebuilt(
        self, snap: EngineSnapshot
    ) -> tuple[RiskTracker | None, StrategyDrawdown | None, LongRunVolatility | None]:
        """The tracker, the strategy drawdown and the long-run volatility a snapshot saved (each
        None where it saved none); raises what their ``from_state`` raise for a damaged one."""
        cfg = self.config
        tracker = (
            None
            if snap.tracker is None
            else RiskTracker.from_state(snap.tracker, cfg.tracker, auto_refit=False)
        )
        strategy = (
            None
            if snap.strategy is None
            else StrategyDrawdown.from_state(snap.strategy, cfg.drawdown_window, cfg.leverage.trend_halflife)
        )
        relative = self._long_run is not None and snap.long_run is not None
        long_run = (
            LongRunVolatility.from_state(cfg.leverage.relative_halflife, *snap.long_run)
            if relative and snap.long_run is not None
            else None
        )
        return tracker, strategy, long_run

    def _seed_stops(self, assets: tuple[str, ...], prices: FloatArray) -> None:
        """Seed the stops of a restart from the restored ones (once: at the first bar with prices).

        A restored stop below the bar's close is a long's, above it a short's; one at the close, or
        of an asset not in this bar, is dropped (an asset that joins later starts without one).
        Until its asset's ATR is ready the stop stands as restored (:meth:`_check_restored`).
        """
        restored, self._restored_stops = self._restored_stops, None
        assert restored is not None  # the caller checked
        level = np.array([restored.get(a, math.nan) for a in assets], dtype=np.float64)
        short = level > prices
        seeded = short | (level < prices)
        self._stop = np.where(seeded, level, self._stop)
        self._stop_short = np.where(seeded, short, self._stop_short)
        self._restoring = bool(seeded.any())
        dropped = sorted(set(restored) - {assets[i] for i in np.flatnonzero(seeded)})
        log.info("stops_restored", seeded=int(seeded.sum()), dropped=dropped[:20])

    def _check_restored(self, prices: FloatArray, target: FloatArray, held: FloatArray) -> None:
        """Drop a restored stop that waits for its asset's ATR if the close traded through it or
        the position's side (the sign of its target weight, else of its held weight, else long) is
        not the stop's: once the ATR is ready, that asset's stop restarts from the close. A stop
        whose ATR is ready trails from where it stands, as if there had been no restart.

        Only a restored stop can stand on an asset whose ATR is not ready (the kernel sets a stop
        only where it is, and an ATR stays ready); the check ends once none waits.
        """
        waiting = ~self._atr.ready & ~np.isnan(self._stop)
        if not waiting.any():
            self._restoring = False
            return
        stop, stop_short = self._stop, self._stop_short
        short = np.where(target != 0.0, target < 0.0, held < 0.0)
        through = np.where(stop_short, prices >= stop, prices <= stop)
        drop = waiting & (through | (short != stop_short))
        if drop.any():
            self._stop = np.where(drop, np.nan, stop)
            names = [self.assets[i] for i in np.flatnonzero(drop)[:20]] if self.assets else []
            log.info("restored_stops_dropped", assets=names)

    def _feed_tracker(self, returns: FloatArray) -> None:
        """Update the tracker (made at the first returns) and start a GJR-GARCH refit if one is due."""
        if self.tracker is None:
            self.tracker = RiskTracker(returns.shape[0], self.config.tracker, auto_refit=False)
        self.tracker.update(returns)
        if VaRMethod(self.config.tracker.method) is VaRMethod.FHS_GARCH:
            self._refits.start_if_due(self.tracker, self._fit_book())

    def _fit_book(self) -> FloatArray | None:
        """The book a GJR-GARCH refit fits: the last priced book at unit gross exposure (its shorts
        short), or None (equal weight) before the first priced decision or for a flat book."""
        if self._priced is None:
            return None
        book = self._priced[0]
        gross = float(np.abs(book).sum())
        return book / gross if gross > 0.0 and math.isfinite(gross) else None

    def refit_due(self) -> Future[GarchParams] | None:
        """The pending GJR-GARCH refit if it must take effect at this bar (the caller may wait for it)."""
        return None if self.tracker is None else self._refits.due(self.tracker)

    def _uncertainty_threshold(self) -> float:
        """The config's threshold, else the policy's calibrated one, else 0.1."""
        if self.config.uncertainty_threshold is not None:
            return self.config.uncertainty_threshold
        calibrated = getattr(self.allocator, "uncertainty_threshold", None)
        return float(calibrated) if calibrated is not None else DEFAULT_UNCERTAINTY_THRESHOLD

    def _reference_peak(self) -> float:
        """The peak the rules measure drawdown from: all-time, or the last ``drawdown_window`` bars."""
        assert self.peak_equity is not None  # the caller checked
        if self.config.drawdown_window is None:
            return self.peak_equity
        return self._equity_window.value

    def _columns_of(self, component: Allocator | Advisor | None) -> IntArray | None:
        """Where the component's assets sit in the universe (by name), or None if some are absent."""
        if component is None or self.assets is None:
            return None
        key = id(component)
        if key not in self._columns:
            names = _names(component)
            if names is None:
                cols = np.arange(len(self.assets)) if len(self.assets) == component.asset_count else None
            else:
                index = {a: i for i, a in enumerate(self.assets)}
                found = [index.get(a) for a in names]
                cols = None if None in found else np.array(found, dtype=np.int64)
            self._columns[key] = cols
            self._in_order[key] = cols is not None and _is_range(cols)
        return self._columns[key]

    def _history(self, component: Allocator | Advisor) -> tuple[IntArray, FloatArray] | None:
        """The component's columns and its return history, or None until every one of its assets has it."""
        cols, tracker = self._columns_of(component), self.tracker
        if cols is None or tracker is None:
            return None
        length = component.history_length
        if tracker.n_observations < length or int(tracker.asset_observations[cols].min()) < length:
            return None
        history = tracker.recent_returns(length)
        whole = cols.size == history.shape[1] and self._in_order.get(id(component), False)
        return cols, history if whole else history[:, cols]

    def policy_request(self, observed: Observed) -> tuple[FloatArray, FloatArray, float] | None:
        """The allocator's inputs (history, current weights with cash, drawdown), or None if not ready."""
        if self.allocator is None or (found := self._history(self.allocator)) is None:
            return None
        cols, history = found
        return history.copy(), with_cash_kernel(observed.bar.held, cols), observed.drawdown

    def agents_request(self, observed: Observed) -> Any:
        """The risk agents' observations for this bar (a snapshot), or None if absent or not ready."""
        advisor = self.advisor
        if advisor is None or observed.bar.prices is None or (found := self._history(advisor)) is None:
            return None
        cols, history = found
        # no copy: the advisor builds its observations from this view now, on this thread
        exposure = float(np.maximum(observed.bar.held[cols], 0.0).sum())
        return advisor.request(history, observed.drawdown, exposure)

    # -- decide ---------------------------------------------------------------------------------------
    def decide(
        self,
        observed: Observed,
        allocation: Allocation | None,
        faults: tuple[str, ...] = (),
        advice: AgentAdvice | None = None,
        stamp: tuple[str, float] | None = None,
    ) -> RiskDecision:
        """The decision for an observed bar; ``faults`` (from the caller) make it degraded.

        In order: the trading state, the target book, leverage, hedge, VaR/CVaR of the levered book,
        sizes and stops; each step appends its alerts, so they read in that order. ``stamp``:
        ``(decision_id, perf_counter() at the call's start)``, see :func:`_stamped`."""
        late_refit = None if self.tracker is None else self._refits.install(self.tracker)
        faults = observed.faults + faults
        shock = self.tracker.correlation_shock if self.tracker is not None else False
        if faults:
            return self._faulted(observed, faults, shock)
        bar = observed.bar
        alerts = [late_refit] if late_refit else []
        drift = _drift_scores(allocation, advice)
        allocation, advice = _drift_gate(allocation, advice, alerts)
        state = self._trading_state(observed, shock, alerts)
        target, reference = self._target_book(bar, state, allocation, advice, alerts)
        uncertainty = None if allocation is None else allocation.uncertainty
        leverage = self._decided_leverage(bar, reference, shock, state, uncertainty, alerts)
        if self._strategy is not None:  # the book asked for, before any cut: its drawdown drives the cuts
            self._strategy.set_weights(reference)
        hedge = self._decided_hedge(observed, state, advice)
        var, cvar, warming = self._var_cvar(bar, levered := target * leverage)
        if self._unpriced(var, cvar):  # never a silent NaN: a component fault
            return self.conservative(observed, (f"tracker gave a non-finite VaR/CVaR ({var}, {cvar})",))
        self._priced = (levered, var)  # a NaN VaR (warming up) is never breached
        self._risk_alerts(observed, warming, shock, alerts)
        average = self.tracker.average_correlation() if self.tracker is not None else math.nan
        sizes, stops = self._sizes_and_stops(bar, target, leverage, state, advice)
        decision = RiskDecision(
            rebalance_weights=_weights_map(bar.assets, target),
            leverage=float(leverage),
            hedge=hedge,
            position_sizes=sizes,
            stop_levels=stops,
            var=var,
            cvar=cvar,
            correlation=CorrelationState(average=float(average), shock=bool(shock)),
            risk_level=classify_risk_level(
                observed.drawdown, self.config, var=var, correlation_shock=shock, trading_state=state
            ),
            trading_state=state,
            uncertainty=uncertainty,
            risk_agents=advice,
            alerts=tuple(alerts),
            equity=bar.portfolio.equity,
            drawdown=observed.drawdown,
            drift=drift,
            streaks=self.streaks(),
            **_stamped(stamp),
        )
        self.last = decision
        return decision

    def _faulted(self, observed: Observed, faults: tuple[str, ...], shock: bool) -> RiskDecision:
        """The conservative decision for a bar with component faults; the rules still run on its
        drawdown and streaks first: a fault never holds back a HALT."""
        changes: list[str] = []
        self._trading_state(observed, shock, changes)
        _jump_alert(observed, changes)  # the move still fed the tracker, the ATR and the last close
        return self.conservative(observed, faults, tuple(changes))

    def _cut_drawdown(self, observed: Observed) -> float:
        """The drawdown the hedge and the REDUCING rule measure (``RiskConfig.drawdown_basis``)."""
        return observed.strategy_drawdown if self.config.drawdown_basis == "strategy" else observed.drawdown

    def _trading_state(self, observed: Observed, shock: bool, alerts: list[str]) -> TradingState:
        """Run the rules on this bar; a change of state appends an alert saying why."""
        by_strategy = self.config.drawdown_basis == "strategy"
        update = self.machine.evaluate(
            RiskObservation(
                drawdown=observed.drawdown,
                strategy_drawdown=observed.strategy_drawdown if by_strategy else None,
                correlation_shock=shock,
                var_breach_streak=self._var_streak.count,
                loss_streak=self._loss_streak.count,
            )
        )
        if update.changed:
            alerts.append(
                f"trading state {update.previous.value} -> {update.state.value}: {self.machine.reason}"
            )
        return update.state

    def _target_book(
        self,
        bar: Bar,
        state: TradingState,
        allocation: Allocation | None,
        advice: AgentAdvice | None,
        alerts: list[str],
    ) -> tuple[FloatArray, FloatArray]:
        """The weights to hold next (signed, universe order) and the book asked for before any cut.

        The book asked for is the held book with the policy's allocation over its assets
        (:meth:`_allocate`); then REDUCING caps it (:meth:`_reduced`), HALTED empties it and the
        agents scale it by ``1 - advice.cut``. Appends alerts for positions the policy leaves to
        the rules, an idle policy, the agents' advice, and positions the cuts close.
        """
        held = bar.held
        target, kept = self._allocate(held, allocation)
        reference = target
        if kept:
            alerts.append(f"policy allocates its own assets only; kept under the rules: {kept}")
        idle = (
            self._idle(self.allocator, "policy", "the held book is kept") if allocation is None else "",
            self._idle(self.advisor, "risk agents", "the rules decide alone") if advice is None else "",
        )
        alerts.extend(a for a in idle if a)
        if state is TradingState.REDUCING:
            target = self._reduced(held, target, allocation is not None)
        else:
            self._reduce_from = self._restored_weights = None
        if state is TradingState.HALTED:
            target = np.zeros_like(held)
        if advice is not None:
            target = target * (1.0 - advice.cut)
            alerts.extend(_advice_alerts(advice))
        if state is not TradingState.ACTIVE or (advice is not None and advice.cut >= 1.0):
            why = f"trading state {state.value}" if state is not TradingState.ACTIVE else "risk agents"
            if closing := _closing(bar.assets, held, target):
                alerts.append(f"closing {closing} ({why})")
        return target, reference

    def _decided_leverage(
        self,
        bar: Bar,
        reference: FloatArray,
        shock: bool,
        state: TradingState,
        uncertainty: float | None,
        alerts: list[str],
    ) -> float:
        """Volatility-target leverage of the book asked for (``reference``), times
        ``uncertainty_leverage_factor`` while the policy's uncertainty is above its threshold (with
        an alert); 0 when HALTED; capped after a restart (:meth:`_restart_cap`); at most 1 while
        REDUCING."""
        leverage = self._leverage(bar, reference, shock)
        threshold = self._uncertainty_threshold()
        if uncertainty is not None and uncertainty > threshold:
            leverage *= self.config.uncertainty_leverage_factor
            alerts.append(f"policy uncertainty {uncertainty:.3g} > {threshold:g}: leverage cut")
        if state is TradingState.HALTED:
            return 0.0
        leverage = self._restart_cap(leverage, alerts)
        if state is TradingState.REDUCING:
            return min(leverage, 1.0)
        return leverage

    def _restart_cap(self, leverage: float, alerts: list[str]) -> float:
        """After a restart, ``leverage`` at most the last journaled decision's (with an alert) until
        the tracker has ``correlation_warmup`` bars of its own: its volatility (an empty tracker gives
        the cap) and correlation-shock estimates start afresh, and a restart is never less cautious
        than the decision the bot held. A last decision with leverage 0 (HALTED) caps nothing: after
        a ``resume`` the book must be able to trade again."""
        cap = self._restart_leverage
        if cap is None:
            return leverage
        seen = self.tracker.n_observations if self.tracker is not None else 0
        warmup = self.config.tracker.correlation_warmup
        if seen >= warmup:
            self._restart_leverage = None
            return leverage
        if leverage <= cap:
            return leverage
        alerts.append(
            f"restart: leverage capped at the last journaled decision's {cap:.4g} until the tracker "
            f"has {warmup} bars of its own (it has {seen})"
        )
        return cap

    def _decided_hedge(
        self, observed: Observed, state: TradingState, advice: AgentAdvice | None
    ) -> HedgeInstruction:
        """The drawdown hedge's instruction, raised to ``advice.cut`` when the agents' monitor asks
        for a hedge or a halt."""
        hedge = self._hedge(self._cut_drawdown(observed), halted=state is TradingState.HALTED)
        if advice is not None and advice.monitor in ("hedge", "halt") and hedge.ratio < advice.cut:
            return HedgeInstruction(True, advice.cut, f"risk agents: monitor requests {advice.monitor}")
        return hedge

    def _risk_alerts(self, observed: Observed, warming: str, shock: bool, alerts: list[str]) -> None:
        """Append the alerts of the risk figures: a one-bar move of at least ``JUMP_ALERT``, a book
        passed with a gross exposure above ``GROSS_ALERT``, assets too young for the tracker, a
        correlation shock."""
        _jump_alert(observed, alerts)
        gross = float(np.abs(observed.bar.held).sum())
        if gross > GROSS_ALERT:
            alerts.append(
                f"portfolio.weights: gross exposure {gross:.4g} (sum of |weights|) > {GROSS_ALERT:g}; "
                "weights are fractions of equity (0.5 is 50 %), a book in percent is traded 100 times over"
            )
        if warming:
            alerts.append(
                f"VaR/CVaR: fewer than {self.config.tracker.window} bars of history for {warming}; "
                "floored by the Gaussian EWMA estimate"
            )
        if shock:
            alerts.append("correlation shock")

    def _unpriced(self, var: float, cvar: float) -> bool:
        """Whether a ready tracker gave a non-finite VaR or CVaR (a fault, never a silent NaN)."""
        tracker = self.tracker
        return tracker is not None and tracker.ready and not (math.isfinite(var) and math.isfinite(cvar))

    def _idle(self, component: Allocator | Advisor | None, kind: str, meanwhile: str) -> str:
        """Why a configured policy or set of risk agents gave nothing at this bar: some of its
        assets are not in the bar, or have less history than it reads ("" otherwise, and during the
        start-up warm-up). ``kind`` names it in the alert, ``meanwhile`` says what decides instead."""
        tracker, assets = self.tracker, self.assets
        if component is None or assets is None or tracker is None:
            return ""
        names = _names(component)
        cols = self._columns_of(component)
        if names is not None and cols is None:
            present = set(assets)
            missing = [a for a in names if a not in present]
            its = "its" if kind == "policy" else "their"  # the policy; the (three) risk agents
            return f"{kind} idle: {its} asset(s) {missing[:10]} are not in this bar; {meanwhile}"
        length = component.history_length
        if cols is None or tracker.n_observations < length:
            return ""
        young = [assets[i] for i in cols if tracker.asset_observations[i] < length]
        if young:
            waits = "waits" if kind == "policy" else "wait"
            return f"{kind} {waits} for {length} bars of history of {young[:10]}; {meanwhile}"
        return ""

    def _reduced(self, held: FloatArray, target: FloatArray, allocated: bool) -> FloatArray:
        """The REDUCING book: exposure scaled by ``reduce_exposure``, not frozen (a book frozen in
        cash could never recover the drawdown that put it in REDUCING).

        The policy's fresh allocation is scaled each bar. A held position (no policy, or one the
        policy does not cover) is capped at ``reduce_exposure`` times its size when REDUCING began:
        a bot that feeds back what it holds keeps half its book while REDUCING, not half of half of
        half; an asset that joins meanwhile gets no new position, and a position asked for on the
        other side of the one held when REDUCING began is closed, not opened.
        """
        if self._reduce_from is None:
            self._reduce_from = self._restored_reduce_from(held)
        start, factor = self._reduce_from, self.config.reduce_exposure
        # a position on the other side of the one held when REDUCING began would be a new one
        same_side = np.sign(target) == np.sign(start)
        kept = np.sign(target) * np.minimum(np.abs(target), factor * np.abs(start))
        capped = np.where(same_side, kept, 0.0)
        cols = self._columns_of(self.allocator) if allocated else None
        if cols is not None:
            mine = held[cols] >= 0.0  # the policy's long book over its assets (shorts are kept)
            capped[cols] = np.where(mine, target[cols] * factor, capped[cols])
        return capped

    def _restored_reduce_from(self, held: FloatArray) -> FloatArray:
        """The held book REDUCING caps from: ``held``, or after a restart while REDUCING the last
        journaled weights over ``reduce_exposure`` (an asset they do not hold: 0, no new position),
        so the cap is the last decision's weight and a bot that passes back what it holds is not
        halved again."""
        restored, self._restored_weights = self._restored_weights, None
        if restored is None or self.assets is None:
            return held.copy()
        last = np.array([restored.get(a, 0.0) for a in self.assets], dtype=np.float64)
        factor = self.config.reduce_exposure
        return last / factor if factor > 0.0 else last

    def _allocate(self, held: FloatArray, allocation: Allocation | None) -> tuple[FloatArray, str]:
        """The book before the rules: the held weights, with the policy's long book over its assets.

        The policy is long-only: it allocates the long book of the assets it was trained on. Positions
        outside that (other assets, and shorts of its assets) are kept as held, under the rules; the
        second value names them.
        """
        cols = self._columns_of(self.allocator)
        if allocation is None or cols is None or self.assets is None:
            return held.copy(), ""
        target, kept = policy_book_kernel(held, cols, allocation.weights)
        if not kept.size:
            return target, ""
        return target, ", ".join(self.assets[i] for i in kept[:20]) + (" ..." if kept.size > 20 else "")

    def conservative(
        self, observed: Observed | None, reasons: tuple[str, ...], changes: tuple[str, ...] = ()
    ) -> RiskDecision:
        """The fail-safe decision: no new risk (held weights, never above the last target), leverage cut,
        hedge on. A position is never flipped or opened; one the last decision closed stays closed.
        HALTED (the rules ran on this bar, or earlier) holds nothing. ``changes``: the alerts of a
        trading-state change on this bar, after the reason it is degraded."""
        cfg, last = self.config, self.last
        assets = observed.bar.assets if observed is not None else (self.assets or ())
        held = observed.bar.held if observed is not None else np.zeros(len(assets))
        target = held.copy()
        if last is not None:
            previous = _array_of(last.rebalance_weights, assets, held)
            same_side = previous * held > 0.0
            target = np.where(same_side, np.sign(held) * np.minimum(np.abs(previous), np.abs(held)), held)
            target = np.where(previous == 0.0, 0.0, target)
        if self.machine.state is TradingState.HALTED:
            target = np.zeros_like(target)
        previous_leverage = last.leverage if last is not None else 1.0
        ratio = max(cfg.degraded_hedge_ratio, last.hedge.ratio if last is not None else 0.0)
        reason = "degraded: " + "; ".join(reasons)
        log.warning("decision_degraded", reasons=list(reasons))
        if observed is not None and observed.bar.prices is not None and observed.bar.assets == self.assets:
            # the close and the ATR moved (observe ran): the stops trail them as on a healthy bar
            self._trail_stops(observed.bar, observed.bar.prices, target, None)
        stops = self._stop_levels(assets)
        return RiskDecision(
            rebalance_weights=_weights_map(assets, target),
            leverage=cfg.degraded_leverage_factor * min(previous_leverage, 1.0),
            hedge=HedgeInstruction(active=True, ratio=ratio, reason=reason),
            position_sizes=dict.fromkeys(assets, 0.0),
            stop_levels=stops,
            var=last.var if last is not None else math.nan,
            cvar=last.cvar if last is not None else math.nan,
            correlation=last.correlation if last is not None else CorrelationState(math.nan, False),
            risk_level=RiskLevel.CRITICAL if self.machine.state is TradingState.HALTED else RiskLevel.HIGH,
            trading_state=self.machine.state,
            uncertainty=None,
            alerts=(reason, *changes),
            degraded=True,
            equity=observed.bar.portfolio.equity if observed is not None else None,
            drawdown=observed.drawdown if observed is not None else math.nan,
            streaks=self.streaks() if observed is not None else None,
        )

    # -- components -----------------------------------------------------------------------------------
    def _annual_vol(self, bar: Bar, weights: FloatArray) -> float | None:
        tracker = self.tracker
        if tracker is not None and tracker.n_observations >= 2:
            variance = max(tracker.portfolio_variance(weights), 0.0)
            return math.sqrt(variance * self.config.periods_per_year)
        return bar.market.volatility

    def _hedge(self, drawdown: float, *, halted: bool) -> HedgeInstruction:
        """The drawdown hedge's instruction; with ``hedge=None`` only a HALTED book is hedged."""
        if self.hedger is not None:
            return self.hedger.execute_hedge(drawdown, halted=halted)
        if halted:
            return HedgeInstruction(True, 1.0, "trading halted")
        return HedgeInstruction(False, 0.0, "no drawdown hedge (hedge=None)")

    def _leverage(self, bar: Bar, reference: FloatArray, shock: bool) -> float:
        """Volatility-target leverage of the book asked for (``reference``: before REDUCING, HALTED
        and the agents' cut). The cuts then scale the exposure down; a leverage computed on the cut
        book would scale it back up (a book halved has half the volatility, so twice the leverage)."""
        vol = self._annual_vol(bar, reference)
        if vol is None:
            return min(1.0, self.config.leverage.max_leverage)
        below_trend = self._strategy is not None and self._strategy.below_trend
        return self.leverage_model.leverage(
            vol, correlation_shock=shock, below_trend=below_trend, long_run_vol=self._long_run_vol(vol)
        )

    def _long_run_vol(self, vol: float) -> float | None:
        """The long-run volatility of the book asked for, with this bar's conditional volatility
        ``vol`` entered; None without a relative target. A flat book (zero volatility) enters
        nothing: a bot out of the market keeps its long-run risk."""
        long_run = self._long_run
        if long_run is None:
            return None
        if vol > 0.0 and math.isfinite(vol):
            return long_run.update(vol)
        return long_run.value

    def _var_cvar(self, bar: Bar, book: FloatArray) -> tuple[float, float, str]:
        """VaR/CVaR of the decided book: the tracker once ready, else Gaussian from the summary vol.

        While an asset of the book has fewer than ``window`` bars of its own (it joined late), the
        tracker's history reads zero returns for it before it joined; the figures are then floored
        by the Gaussian estimate from the EWMA covariance, which is normalised per asset. The third
        value names those assets ("" when none).
        """
        tracker, cfg = self.tracker, self.config
        z = NormalDist().inv_cdf(cfg.alpha)
        if tracker is not None and tracker.ready:
            var, cvar = tracker.var_cvar(book, self._var_method(tracker), cfg.alpha)
            if self._seasoned or self.assets is None:
                return var, cvar, ""
            ages = tracker.asset_observations
            young = (ages < cfg.tracker.window) & (book != 0.0)
            if not young.any():
                # ages only grow until an asset joins (_follow_universe clears the flag)
                self._seasoned = bool(ages.min() >= cfg.tracker.window)
                return var, cvar, ""
            sigma = math.sqrt(max(tracker.portfolio_variance(book), 0.0))
            names = ", ".join(self.assets[i] for i in np.flatnonzero(young)[:20])
            return max(var, z * sigma), max(cvar, _gaussian_cvar(sigma, z, cfg.alpha)), names
        vol = bar.market.volatility
        if vol is None:
            return math.nan, math.nan, ""
        sigma = vol / math.sqrt(cfg.periods_per_year) * float(np.abs(book).sum())
        return z * sigma, _gaussian_cvar(sigma, z, cfg.alpha), ""

    def _var_method(self, tracker: RiskTracker) -> VaRMethod:
        """The configured method; fhs_garch uses fhs_ewma until the first refit takes effect."""
        method = VaRMethod(self.config.tracker.method)
        if method is VaRMethod.FHS_GARCH and tracker.garch_params is None:
            return VaRMethod.FHS_EWMA
        return method

    def _sizes_and_stops(
        self,
        bar: Bar,
        target: FloatArray,
        leverage: float,
        state: TradingState,
        advice: AgentAdvice | None = None,
    ) -> tuple[dict[str, float], dict[str, float]]:
        """Position sizes (units, >= 0) and protective stops, for longs and shorts alike.

        A position's side is the sign of its target weight, else of its held weight, else long. A
        long's stop is ``k * ATR`` below the close and only ever rises; a short's is above and only
        ever falls; a stop the price traded through (or a side change) restarts from the close.
        Assets whose ATR has not warmed up get no size, and no stop except one restored at a
        restart (the last journaled decision's): it is reported as restored until the ATR is
        ready, then trails on from there; one the close trades through, or on the other side of
        the position, is dropped meanwhile (:meth:`_check_restored`).
        """
        prices = bar.prices
        if prices is None:
            return {}, self._stop_levels(bar.assets)
        distance, short, ready = self._trail_stops(bar, prices, target, advice)
        stops = self._stop_levels(bar.assets)
        equity = bar.portfolio.equity
        if equity is None or not ready.any():
            return {}, stops
        if state is not TradingState.ACTIVE:
            return dict.fromkeys(_names_where(bar.assets, ready), 0.0), stops
        size = self._position_sizes(equity, prices, distance, short, leverage, advice)
        return _map_where(bar.assets, size, ready), stops

    def _trail_stops(
        self, bar: Bar, prices: FloatArray, target: FloatArray, advice: AgentAdvice | None
    ) -> tuple[FloatArray, BoolArray, BoolArray]:
        """Move the stops to this bar's close and ATR (see :meth:`_sizes_and_stops`); return the
        distance to the stop, whether each position is short and whether its ATR is ready."""
        if self._restoring:
            self._check_restored(prices, target, bar.held)
        ready = self._atr.ready
        multiple = self.config.sizing.atr_multiplier if advice is None else advice.stop_multiple
        trailing = advice is None or advice.trailing  # the stop agent may keep a live stop where it is
        # the stops move in one kernel (measures.stop_kernels: the same elementwise arithmetic as the
        # NumPy formulation of tests/unit/test_decide_fast_paths.py, bit for bit)
        distance, short, self._stop, self._stop_short = trail_stops_kernel(
            target, bar.held, prices, self._atr.value, multiple, ready, self._stop, self._stop_short, trailing
        )
        return distance, short, ready

    def _position_sizes(
        self,
        equity: float,
        prices: FloatArray,
        distance: FloatArray,
        short: BoolArray,
        leverage: float,
        advice: AgentAdvice | None,
    ) -> FloatArray:
        """Units per asset: ``equity * risk_per_trade / distance`` (the loss at the stop), capped at
        ``equity * max_position_fraction * leverage / price`` and, with Kelly on, at the Kelly stake;
        then scaled by the agents' ``scale * (1 - cut)``."""
        sizing = self.config.sizing
        at_risk = equity * sizing.risk_per_trade
        capped = equity * sizing.max_position_fraction * leverage
        size = position_sizes_kernel(distance, prices, at_risk, capped)  # the minimum of the two, per asset
        kelly = self._kelly_fractions(short)
        if kelly is not None:
            size = np.minimum(size, kelly * equity * leverage / prices)
        if advice is not None:
            size = size * (advice.scale * (1.0 - advice.cut))
        return size

    def _kelly_fractions(self, short: BoolArray) -> FloatArray | None:
        """Fractional, capped continuous Kelly per asset in its side's direction (None: Kelly off).

        ``clip(fraction * m / s**2, 0, cap)`` with ``m`` the mean return over the tracker's window
        (negated for a short) and ``s**2`` its variance; 0 where ``m <= 0`` or the variance is 0, and
        0 while the tracker has fewer than ``window`` bars (no estimate yet).
        """
        kelly, tracker = self.config.kelly, self.tracker
        if kelly is None:
            return None
        if tracker is None or not tracker.ready:
            return np.zeros(short.shape[0])
        window = tracker.recent_returns()
        mean = np.where(short, -window.mean(axis=0), window.mean(axis=0))
        var = window.var(axis=0)
        full = np.divide(mean, var, out=np.zeros_like(mean), where=var > 0.0)
        return np.clip(kelly.fraction * full, 0.0, kelly.cap)  # type: ignore[no-any-return]

    def _stop_levels(self, assets: tuple[str, ...]) -> dict[str, float]:
        """The stops to report for ``assets``. Until the first bar with prices after a restart seeds
        them (:meth:`_seed_stops`), the restored stops stand as restored: a bar without prices (or a
        degraded one) must not report, and journal, none (a second restart would then lose them)."""
        if self._restored_stops is not None:  # no stop was set since the restart: only these stand
            return {a: self._restored_stops[a] for a in assets if a in self._restored_stops}
        return _map_where(assets, self._stop, ~np.isnan(self._stop)) if self._stop.size else {}


REFIT_SAVE_TIMEOUT_S = 5.0
"""How long a snapshot waits for a GJR-GARCH refit under way (a fit takes ~0.05-1 s)."""


def _equity_window(window: int | None, peak: float | None, equity: Sequence[float]) -> RollingMax:
    """The rolling high-water mark of a (re)start: the journalled ``equity``, oldest first, after
    the restored ``peak`` when they are fewer than ``window`` (the peak may be a bar older than the
    journal shows: the cautious reading)."""
    out = RollingMax(window)
    if peak is not None and (window is None or len(equity) < window):
        out.push(peak)
    for value in equity:
        out.push(value)
    return out


def _jump_alert(observed: Observed, alerts: list[str]) -> None:
    """Append one alert per asset that moved at least ``JUMP_ALERT`` either way in this bar, the
    largest moves first; past ``JUMP_ALERTS_NAMED`` such assets one more alert counts the rest."""
    returns = observed.returns
    # a few ulps of slack: 0.14 / 0.20 - 1 is -0.29999999999999993, a 30 % move in decimal prices
    edge = JUMP_ALERT - 1e-12
    if returns is None or not returns.size or (returns.max() < edge and returns.min() > -edge):
        return
    size = np.abs(returns)
    movers = np.flatnonzero(size >= edge)
    movers = movers[np.argsort(-size[movers], kind="stable")]
    assets = observed.bar.assets
    for i in movers[:JUMP_ALERTS_NAMED]:
        alerts.append(
            f"{assets[i]} moved {returns[i]:+.1%} in one bar: taken as a real move "
            "(adjust the prices if it is a split or a bad tick)"
        )
    if movers.size > JUMP_ALERTS_NAMED:
        rest = movers.size - JUMP_ALERTS_NAMED
        alerts.append(f"{rest} more assets moved {JUMP_ALERT:.0%} or more in one bar")


def warm_up(config: RiskConfig) -> None:
    """Run a scratch engine through synthetic bars so the first real bar pays no one-off cost.

    The first call of each numba kernel loads it from numba's disk cache and initialises numba's
    target (~0.5-1 s). Paid inside the
    first ``manage_risk`` call, that blows its deadline; the manager calls this from ``open`` (off
    the event loop) instead. The scratch engine shares nothing with the real one.
    """
    tracker_cfg = dataclasses.replace(config.tracker, window=20, correlation_warmup=2, fhs_window=100)
    scratch = DecisionEngine(dataclasses.replace(config, tracker=tracker_cfg))
    rng = np.random.default_rng(0)
    assets, prices = ("a", "b"), np.array([100.0, 50.0])
    allocation = Allocation(np.array([0.4, 0.4, 0.2]), 0.0)
    garch = VaRMethod(config.tracker.method) is VaRMethod.FHS_GARCH
    for i in range(tracker_cfg.window + config.sizing.atr_period + 2):
        returns = rng.normal(0.0, 0.01, 2)
        prices = prices * (1.0 + returns)
        market = MarketState(
            returns=dict(zip(assets, returns.tolist(), strict=True)),
            prices=dict(zip(assets, prices.tolist(), strict=True)),
            high=dict(zip(assets, (prices * 1.01).tolist(), strict=True)),
            low=dict(zip(assets, (prices * 0.99).tolist(), strict=True)),
            volatility=0.2,
        )
        book = Portfolio(weights={"a": 0.4, "b": -0.4}, equity=100_000.0)
        observed = scratch.observe(scratch.parse(market, book))
        if garch and i == tracker_cfg.window and scratch.tracker is not None:
            scratch.tracker.install_garch(GarchParams(0.0, 1e-6, 0.05, 0.05, 0.9))
        scratch.decide(observed, allocation)
    warm_up_decide_kernels()  # the scratch engine has no policy: its books' kernels were not run


def _names(component: Any) -> tuple[str, ...] | None:
    """The asset names a model was trained on (None: unnamed, matched by position)."""
    names = getattr(component, "asset_names", None)
    return None if names is None else tuple(names)


def _is_range(cols: IntArray) -> bool:
    return bool(cols[0] == 0 and (cols.size == 1 or (np.diff(cols) == 1).all()))


def _check_derived_returns(bar: Bar, derived: FloatArray | None) -> None:
    """Returns derived from prices meet the rules of given returns: in (-1, MAX_BAR_RETURN]."""
    if derived is None:
        return
    bad = (derived <= -1.0) | (derived > MAX_BAR_RETURN)
    if bad.any():
        assert bar.prices is not None  # derived from them
        i = int(np.flatnonzero(bad)[0])
        raise InvalidInputError(
            f"market_state.prices[{bar.assets[i]!r}]={bar.prices[i]} is a move of {derived[i]:.3g} "
            f"from the last close: outside (-1, {MAX_BAR_RETURN:g}] in one bar, a data error"
        )


def _gaussian_cvar(sigma: float, z: float, alpha: float) -> float:
    return sigma * NormalDist().pdf(z) / (1.0 - alpha)


def _stamped(stamp: tuple[str, float] | None) -> dict[str, Any]:
    """A decision's ``decision_id`` and ``latency_ms`` (milliseconds from ``stamp[1]``, a
    ``time.perf_counter()``, to now) for ``stamp = (decision_id, start)``; none for None.

    Only a decision built by ``decide``'s full path is stamped: a degraded one (``conservative``)
    keeps ``decision_id=""`` and its caller stamps it.
    """
    if stamp is None:
        return {}
    return {"decision_id": stamp[0], "latency_ms": (time.perf_counter() - stamp[1]) * 1000.0}


def _drift_scores(allocation: Allocation | None, advice: AgentAdvice | None) -> dict[str, float] | None:
    """Model -> input drift score of the components that track it (None when none does)."""
    scores = {}
    if allocation is not None and allocation.drift is not None:
        scores["policy"] = allocation.drift.score
    if advice is not None and advice.drift is not None:
        scores["risk_agents"] = advice.drift.score
    return scores or None


def _drift_gate(
    allocation: Allocation | None, advice: AgentAdvice | None, alerts: list[str]
) -> tuple[Allocation | None, AgentAdvice | None]:
    """The allocation and advice to use: a drifted model's is dropped (the rules decide instead),
    with an alert naming its score and the features that moved most."""
    if allocation is not None and allocation.drift is not None and allocation.drift.drifted:
        alerts.append(_drift_alert("policy", allocation.drift))
        allocation = None
    if advice is not None and advice.drift is not None and advice.drift.drifted:
        alerts.append(_drift_alert("risk agents", advice.drift))
        advice = None
    return allocation, advice


def _drift_alert(model: str, drift: DriftStatus) -> str:
    features = ", ".join(drift.features[:5]) or "n/a"
    return (
        f"input drift: {model} score {drift.score:.3g} > {drift.threshold:g} "
        f"(features: {features}); replaced by the rules"
    )


def _advice_alerts(advice: AgentAdvice) -> list[str]:
    """Alerts for a monitor action and for agents the rules replaced."""
    alerts = [] if advice.monitor == "none" else [f"risk agents: monitor requests {advice.monitor}"]
    if advice.overridden:
        why = ", ".join(f"{agent} ({reason})" for agent, reason in advice.overridden.items())
        alerts.append(f"risk agents overridden by the rules: {why}")
    return alerts


def component_fault(component: str, exc: BaseException) -> str:
    """Log a component's exception (``component_failed``) and return the fault text for the decision."""
    log.error("component_failed", component=component, error=repr(exc))
    return f"{component} failed: {type(exc).__name__}: {exc}"


def _closing(assets: tuple[str, ...], held: FloatArray, target: FloatArray) -> str:
    """Names of the held positions the target closes ("" when none)."""
    closed = np.flatnonzero((held != 0.0) & (target == 0.0))
    return ", ".join(assets[i] for i in closed[:20]) + (" ..." if closed.size > 20 else "")


def _array_of(values: Mapping[str, float], assets: tuple[str, ...], default: FloatArray) -> FloatArray:
    """``values`` in ``assets`` order; ``default`` where an asset is missing."""
    return np.array([values.get(a, d) for a, d in zip(assets, default.tolist(), strict=True)])


def _names_where(assets: tuple[str, ...], mask: BoolArray) -> list[str]:
    return list(assets) if mask.all() else [assets[i] for i in np.flatnonzero(mask)]


def _map_where(assets: tuple[str, ...], values: FloatArray, mask: BoolArray) -> dict[str, float]:
    """``{asset: value}`` where ``mask`` holds (one C-level zip when it holds everywhere)."""
    if mask.all():
        return dict(zip(assets, values.tolist(), strict=True))
    return {assets[i]: float(values[i]) for i in np.flatnonzero(mask)}


def _weights_map(assets: tuple[str, ...], weights: FloatArray) -> dict[str, float]:
    """Signed asset weights plus ``"cash" = 1 - sum`` (negative: borrowed, a leveraged long book)."""
    out = dict(zip(assets, weights.tolist(), strict=True))
    out["cash"] = 1.0 - math.fsum(out.values())
    return out
