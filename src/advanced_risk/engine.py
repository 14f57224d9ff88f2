"""The decision core shared by ``manage_risk`` and ``manage_risk_sync``: one bar in, one decision out.

Per bar, in order (each step is a component; a component that raises makes the decision
*degraded*, never an exception for the caller):

- ``parse``: validate the inputs and map them onto the asset universe. Bad input raises
  :class:`~advanced_risk.errors.InvalidInputError` here, before any state has changed.
- ``observe``: feed the :class:`RiskTracker`, the streaming ATR, peak equity and the VaR-breach and
  loss streaks.
- the allocator (PPO policy) proposes target weights with an uncertainty, and the learned risk
  agents (optional) advise a size scale, a stop distance and a de-risking action, gated by their
  MC-dropout uncertainty; the async manager runs both off the event loop within the deadline, the
  sync twin inline.
- ``decide``: trading state, VaR/CVaR, leverage, hedge, weights, position sizes, stops, risk level;
  the agents' advice can only add caution to the rules (see :mod:`advanced_risk.agents`).

The engine is not thread-safe: the manager serialises calls.
"""

from __future__ import annotations

import dataclasses
import math
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any, Protocol

import numpy as np

from advanced_risk._logging import get_logger
from advanced_risk.config import RiskConfig
from advanced_risk.engine_inputs import MAX_BAR_RETURN, Bar, parse_inputs
from advanced_risk.errors import InvalidInputError
from advanced_risk.measures._validation import FloatArray
from advanced_risk.measures.var import VaRMethod
from advanced_risk.risk.atr import StreamingATR
from advanced_risk.risk.garch import GarchParams
from advanced_risk.risk.hedging import HedgingStrategy
from advanced_risk.risk.leverage import VolatilityTargetLeverage
from advanced_risk.risk.rules import RiskObservation, Streak, TradingStateMachine, classify_risk_level
from advanced_risk.risk.tracker import RiskTracker
from advanced_risk.state import PersistedState
from advanced_risk.types import (
    AgentAdvice,
    CorrelationState,
    HedgeInstruction,
    MarketState,
    Portfolio,
    RiskDecision,
    RiskLevel,
    TradingState,
)

__all__ = ["Advisor", "Allocation", "Allocator", "DecisionEngine", "Observed", "component_fault", "warm_up"]

log = get_logger(__name__)

DEFAULT_UNCERTAINTY_THRESHOLD = 0.1
"""Used when neither the config nor the policy file sets an uncertainty threshold."""

Background = Callable[[FloatArray], "Future[GarchParams]"]
"""Starts a GJR-GARCH fit of these returns off the decision path (the manager: a worker process)."""


@dataclass(frozen=True, slots=True)
class Allocation:
    """What the allocator proposes: weights over the assets then cash, and its uncertainty."""

    weights: FloatArray
    uncertainty: float | None


class Allocator(Protocol):
    """A policy the engine can ask for target weights (``RLPortfolioManager`` via ``PolicyAllocator``)."""

    @property
    def asset_count(self) -> int: ...

    @property
    def history_length(self) -> int: ...

    def allocate(self, returns: FloatArray, weights: FloatArray, drawdown: float) -> Allocation: ...


class Advisor(Protocol):
    """The learned risk agents as the engine sees them (:class:`~advanced_risk.agents.RiskAgentsAdvisor`)."""

    @property
    def asset_count(self) -> int: ...

    @property
    def history_length(self) -> int: ...

    def observe(
        self, close: FloatArray, held: FloatArray, portfolio_return: float | None, stops: FloatArray
    ) -> None: ...

    def request(self, returns: FloatArray, drawdown: float, exposure: float) -> Any: ...

    def advise(self, observations: Any) -> AgentAdvice: ...


@dataclass(frozen=True, slots=True)
class Observed:
    """What ``observe`` derived from a bar (read by ``decide``)."""

    bar: Bar
    drawdown: float
    returns: FloatArray | None
    faults: tuple[str, ...]


class DecisionEngine:
    """Turns one validated bar into a :class:`RiskDecision` (see the module docstring)."""

    def __init__(
        self,
        config: RiskConfig,
        *,
        restored: PersistedState | None = None,
        allocator: Allocator | None = None,
        advisor: Advisor | None = None,
        background: Background | None = None,
    ) -> None:
        self.config = config
        self.allocator = allocator
        self.advisor = advisor
        self._background = background
        state = restored or PersistedState(None, TradingState.ACTIVE, "", False, 0.0)
        self.peak_equity: float | None = state.peak_equity
        # Equity of the last drawdown_window bars, seeded with the restored peak so that a restart
        # measures from it until the window has rolled past it.
        self._equity_window: deque[float] = deque(maxlen=config.drawdown_window or 1)
        if state.peak_equity is not None:
            self._equity_window.append(state.peak_equity)
        self.machine = TradingStateMachine(
            config, state=state.trading_state, reason=state.reason, kill_switch=state.kill_switch
        )
        self.hedger = HedgingStrategy.from_config(config)
        self.leverage_model = VolatilityTargetLeverage(config.leverage)
        self.assets: tuple[str, ...] | None = None
        self.tracker: RiskTracker | None = None
        self._atr: StreamingATR | None = None
        self._last_close: FloatArray | None = None
        self._var_streak, self._loss_streak = Streak(), Streak()
        self._last_var: float | None = None
        self._stops: dict[str, float] = {}
        self._garch_job: Future[GarchParams] | None = None
        self.last: RiskDecision | None = None

    # -- parse: validation only, no state change ----------------------------------------------------
    def parse(
        self, market_state: MarketState | Mapping[str, Any], portfolio: Portfolio | Mapping[str, Any]
    ) -> Bar:
        """Validate and align the inputs (raises ``InvalidInputError``; changes nothing)."""
        expected = next((c.asset_count for c in (self.allocator, self.advisor) if c is not None), None)
        bar = parse_inputs(market_state, portfolio, self.assets, expected, self._last_close is not None)
        if bar.returns is None and bar.prices is not None and self._last_close is not None:
            derived = bar.prices / self._last_close - 1.0  # what observe will feed the tracker
            worst = int(np.argmax(derived))
            if derived[worst] > MAX_BAR_RETURN:
                raise InvalidInputError(
                    f"market_state.prices[{bar.assets[worst]!r}]={bar.prices[worst]} is a move of "
                    f"{derived[worst]:.3g} from the last close {self._last_close[worst]}: above "
                    f"{MAX_BAR_RETURN:g} in one bar, a data error"
                )
        return bar

    # -- observe: the state updates of one bar -------------------------------------------------------
    def observe(self, bar: Bar) -> Observed:
        """Feed the bar to the stateful components; their faults are collected, not raised."""
        if self.assets is None and bar.assets:
            self.assets = bar.assets
        faults: list[str] = []
        returns = bar.returns
        if returns is None and bar.prices is not None and self._last_close is not None:
            returns = bar.prices / self._last_close - 1.0
        if bar.prices is not None:
            self._last_close = bar.prices
        port: float | None = None
        if returns is not None:
            held = bar.held
            port = float(held @ returns)
            self._var_streak.update(self._last_var is not None and port < -self._last_var)
            self._loss_streak.update(port < 0.0)
            try:
                self._tracker_for(len(bar.assets)).update(returns)
            except Exception as exc:  # a component fault: degrade, never raise
                faults.append(component_fault("tracker", exc))
        if bar.prices is not None:
            try:
                self._update_atr(bar)
            except Exception as exc:
                faults.append(component_fault("atr", exc))
            if self.advisor is not None:
                try:
                    stops = np.array([self._stops.get(a, np.nan) for a in bar.assets])
                    self.advisor.observe(bar.prices, bar.held, port, stops)
                except Exception as exc:
                    faults.append(component_fault("risk agents", exc))
        equity = bar.portfolio.equity
        if equity is not None:
            self.peak_equity = max(self.peak_equity or equity, equity, bar.portfolio.peak_equity or 0.0)
            self._equity_window.append(equity)
        drawdown = bar.portfolio.current_drawdown
        if equity is not None and self.peak_equity:
            drawdown = max(drawdown, 1.0 - equity / self._reference_peak())
        return Observed(bar, min(max(drawdown, 0.0), 1.0), returns, tuple(faults))

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
        return max(self._equity_window)

    def policy_request(self, observed: Observed) -> tuple[FloatArray, FloatArray, float] | None:
        """The allocator's inputs (history, current weights with cash, drawdown), or None if not ready."""
        if self.allocator is None or self.tracker is None:
            return None
        if self.tracker.n_observations < self.allocator.history_length:
            return None
        history = self.tracker.recent_returns(self.allocator.history_length).copy()
        return history, _with_cash(observed.bar.held), observed.drawdown

    def agents_request(self, observed: Observed) -> Any:
        """The risk agents' observations for this bar (a snapshot), or None if absent or not ready."""
        advisor = self.advisor
        if advisor is None or self.tracker is None or observed.bar.prices is None:
            return None
        if self.tracker.n_observations < advisor.history_length:
            return None
        # no copy: the advisor builds its observations from this view now, on this thread
        history = self.tracker.recent_returns(advisor.history_length)
        held = observed.bar.held
        return advisor.request(history, observed.drawdown, float(np.maximum(held, 0.0).sum()))

    # -- decide ---------------------------------------------------------------------------------------
    def decide(
        self,
        observed: Observed,
        allocation: Allocation | None,
        faults: tuple[str, ...] = (),
        advice: AgentAdvice | None = None,
    ) -> RiskDecision:
        """The decision for an observed bar; ``faults`` (from the caller) make it degraded."""
        faults = observed.faults + faults
        if faults:
            return self.conservative(observed, faults)
        cfg, bar = self.config, observed.bar
        shock = self.tracker.correlation_shock if self.tracker is not None else False
        update = self.machine.evaluate(
            RiskObservation(
                drawdown=observed.drawdown,
                correlation_shock=shock,
                var_breach_streak=self._var_streak.count,
                loss_streak=self._loss_streak.count,
            )
        )
        state = update.state
        alerts = []
        if update.changed:
            alerts.append(f"trading state {update.previous.value} -> {state.value}: {self.machine.reason}")
        held = bar.held
        target = held.copy() if allocation is None else allocation.weights[:-1].copy()
        if state is TradingState.REDUCING:
            # Scale the exposure down rather than freeze it: a book frozen in cash could never
            # recover the drawdown that put it in REDUCING (it would stay there forever).
            target = target * cfg.reduce_exposure
        elif state is TradingState.HALTED:
            target = np.zeros_like(held)
        if advice is not None:
            target = target * (1.0 - advice.cut)
            alerts.extend(_advice_alerts(advice))
        target = _long_only_budget(target)
        leverage = self._leverage(bar, target, shock)
        uncertainty = None if allocation is None else allocation.uncertainty
        threshold = self._uncertainty_threshold()
        if uncertainty is not None and uncertainty > threshold:
            leverage *= cfg.uncertainty_leverage_factor
            alerts.append(f"policy uncertainty {uncertainty:.3g} > {threshold:g}: leverage cut")
        if state is TradingState.HALTED:
            leverage = 0.0
        elif state is TradingState.REDUCING:
            leverage = min(leverage, 1.0)
        hedge = self.hedger.execute_hedge(observed.drawdown, halted=state is TradingState.HALTED)
        if advice is not None and advice.monitor in ("hedge", "halt") and hedge.ratio < advice.cut:
            hedge = HedgeInstruction(True, advice.cut, f"risk agents: monitor requests {advice.monitor}")
        var, cvar = self._var_cvar(bar, target * leverage)
        if (
            self.tracker is not None
            and self.tracker.ready
            and not (math.isfinite(var) and math.isfinite(cvar))
        ):
            # never a silent NaN: a ready tracker that cannot price the book is a component fault
            return self.conservative(observed, (f"tracker gave a non-finite VaR/CVaR ({var}, {cvar})",))
        self._last_var = var if math.isfinite(var) else None
        if shock:
            alerts.append("correlation shock")
        average = self.tracker.average_correlation() if self.tracker is not None else math.nan
        sizes, stops = self._sizes_and_stops(bar, leverage, state, advice)
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
                observed.drawdown, cfg, var=var, correlation_shock=shock, trading_state=state
            ),
            trading_state=state,
            uncertainty=uncertainty,
            risk_agents=advice,
            alerts=tuple(alerts),
        )
        self.last = decision
        return decision

    def conservative(self, observed: Observed | None, reasons: tuple[str, ...]) -> RiskDecision:
        """The fail-safe decision: no new risk (previous or cash weights), leverage cut, hedge on."""
        cfg, last = self.config, self.last
        assets = observed.bar.assets if observed is not None else (self.assets or ())
        held = observed.bar.held if observed is not None else np.zeros(len(assets))
        if last is not None and tuple(k for k in last.rebalance_weights if k != "cash") == assets:
            previous = np.array([last.rebalance_weights[a] for a in assets])
            target = np.minimum(previous, np.maximum(held, 0.0))
        else:
            target = np.maximum(held, 0.0)
        target = _long_only_budget(target)
        if self.machine.state is TradingState.HALTED:
            target = np.zeros_like(target)
        previous_leverage = last.leverage if last is not None else 1.0
        ratio = max(cfg.degraded_hedge_ratio, last.hedge.ratio if last is not None else 0.0)
        reason = "degraded: " + "; ".join(reasons)
        log.warning("decision_degraded", reasons=list(reasons))
        return RiskDecision(
            rebalance_weights=_weights_map(assets, target),
            leverage=cfg.degraded_leverage_factor * min(previous_leverage, 1.0),
            hedge=HedgeInstruction(active=True, ratio=ratio, reason=reason),
            position_sizes=dict.fromkeys(assets, 0.0),
            stop_levels=dict(self._stops),
            var=last.var if last is not None else math.nan,
            cvar=last.cvar if last is not None else math.nan,
            correlation=last.correlation if last is not None else CorrelationState(math.nan, False),
            risk_level=RiskLevel.CRITICAL if self.machine.state is TradingState.HALTED else RiskLevel.HIGH,
            trading_state=self.machine.state,
            uncertainty=None,
            alerts=(reason,),
            degraded=True,
        )

    # -- components -----------------------------------------------------------------------------------
    def _tracker_for(self, n_assets: int) -> RiskTracker:
        if self.tracker is None:
            self.tracker = RiskTracker(n_assets, self.config.tracker, auto_refit=False)
        return self.tracker

    def _update_atr(self, bar: Bar) -> None:
        assert bar.prices is not None  # the caller checked
        if self._atr is None:
            self._atr = StreamingATR(len(bar.assets), self.config.sizing.atr_period)
        high = bar.high if bar.high is not None else bar.prices
        low = bar.low if bar.low is not None else bar.prices
        self._atr.update(high, low, bar.prices)

    def _annual_vol(self, bar: Bar, weights: FloatArray) -> float | None:
        tracker = self.tracker
        if tracker is not None and tracker.n_observations >= 2:
            return math.sqrt(
                max(float(weights @ tracker.covariance() @ weights), 0.0) * self.config.periods_per_year
            )
        return bar.market.volatility

    def _leverage(self, bar: Bar, target: FloatArray, shock: bool) -> float:
        vol = self._annual_vol(bar, target)
        if vol is None:
            return min(1.0, self.config.leverage.max_leverage)
        return self.leverage_model.leverage(vol, correlation_shock=shock)

    def _var_cvar(self, bar: Bar, book: FloatArray) -> tuple[float, float]:
        """VaR/CVaR of the decided book: the tracker once ready, else Gaussian from the summary vol."""
        tracker, cfg = self.tracker, self.config
        if tracker is not None and tracker.ready:
            snap = tracker.snapshot(book, self._var_method(tracker), cfg.alpha)
            return snap.var, snap.cvar
        vol = bar.market.volatility
        if vol is None:
            return math.nan, math.nan
        z = NormalDist().inv_cdf(cfg.alpha)
        sigma = vol / math.sqrt(cfg.periods_per_year) * float(np.abs(book).sum())
        return z * sigma, sigma * NormalDist().pdf(z) / (1.0 - cfg.alpha)

    def _var_method(self, tracker: RiskTracker) -> VaRMethod:
        """The configured method; fhs_garch refits off the hot path (ewma until the first fit lands)."""
        method = VaRMethod(self.config.tracker.method)
        if method is not VaRMethod.FHS_GARCH:
            return method
        job = self._garch_job
        if job is not None and job.done():
            self._garch_job = None
            try:
                tracker.install_garch(job.result())
            except Exception as exc:
                log.warning("garch_refit_failed", error=str(exc))
        if self._garch_job is None and tracker.garch_refit_due and self._background is not None:
            returns = tracker.fhs_returns(np.full(tracker.n_assets, 1.0 / tracker.n_assets))
            self._garch_job = self._background(returns)
        return method if tracker.garch_params is not None else VaRMethod.FHS_EWMA

    def _sizes_and_stops(
        self, bar: Bar, leverage: float, state: TradingState, advice: AgentAdvice | None = None
    ) -> tuple[dict[str, float], dict[str, float]]:
        atr = self._atr
        if bar.prices is None or atr is None or atr.count < atr.period:
            return {}, dict(self._stops)
        multiple = self.config.sizing.atr_multiplier if advice is None else advice.stop_multiple
        distance = multiple * atr.value
        candidate = np.maximum(bar.prices - distance, 0.0)
        previous = np.array([self._stops.get(a, np.nan) for a in bar.assets])
        # A held long's stop only ever tightens, until the price trades through it: that stop was
        # hit, and a stop above the market is no protective order, so it restarts below the price.
        # Without trailing (the stop agent's choice) a live stop stays where it was set.
        live = (bar.held > 0.0) & ~np.isnan(previous) & (bar.prices > previous)
        kept = previous if advice is not None and not advice.trailing else np.fmax(previous, candidate)
        stop = np.where(live, kept, candidate)
        stops = dict(zip(bar.assets, stop.tolist(), strict=True))
        self._stops = stops
        equity = bar.portfolio.equity
        if equity is None or state is not TradingState.ACTIVE:
            return dict.fromkeys(bar.assets, 0.0), stops
        sizing = self.config.sizing
        by_risk = equity * sizing.risk_per_trade / np.maximum(distance, 1e-12)
        by_cap = equity * sizing.max_position_fraction * leverage / bar.prices
        size = np.minimum(by_risk, by_cap) * (1.0 if advice is None else advice.scale * (1.0 - advice.cut))
        return dict(zip(bar.assets, size.tolist(), strict=True)), stops


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
        book = Portfolio(weights={"a": 0.4, "b": 0.4}, equity=100_000.0)
        observed = scratch.observe(scratch.parse(market, book))
        if garch and i == tracker_cfg.window and scratch.tracker is not None:
            scratch.tracker.install_garch(GarchParams(0.0, 1e-6, 0.05, 0.05, 0.9))
        scratch.decide(observed, allocation)


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


def _with_cash(held: FloatArray) -> FloatArray:
    """Held weights as the policy sees them: long-only, at most fully invested, plus cash."""
    assets = _long_only_budget(np.maximum(held, 0.0))
    return np.append(assets, 1.0 - assets.sum())


def _long_only_budget(weights: FloatArray) -> FloatArray:
    w = np.maximum(weights, 0.0)
    total = float(w.sum())
    return w / total if total > 1.0 else w


def _weights_map(assets: tuple[str, ...], weights: FloatArray) -> dict[str, float]:
    out = dict(zip(assets, weights.tolist(), strict=True))
    out["cash"] = max(1.0 - math.fsum(out.values()), 0.0)
    return out
