"""Settings of the risk engine: the tracker, sizing, Kelly, hedge, leverage and the manager.

Frozen, keyword-only dataclasses validated once in ``__post_init__`` (see :mod:`._base`).

One module because it is the risk engine's settings reference, every field documented where it is
defined: ``RiskConfig`` nests the component sections and checks them against its own fields
(``tracker.alpha`` is ``alpha``, the hedge's threshold is below ``halt_drawdown``).
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from advanced_risk.config._base import _as_enum, _collect, _ConfigMixin, _in_range, _one_of, _require
from advanced_risk.measures.validation import check_positive_int
from advanced_risk.measures.var_method import VaRMethod

__all__ = [
    "MAX_BARS",
    "MAX_DRIFT_WINDOW",
    "MAX_WINDOW",
    "HedgeConfig",
    "KellyConfig",
    "LeverageConfig",
    "RiskConfig",
    "SizingConfig",
    "TrackerConfig",
]

MAX_BARS = 10**9
"""Largest count of bars a setting may name (a warm-up, a refit interval, a rolling peak's window):
beyond any run, and small enough for every container and float it becomes."""

MAX_WINDOW = 1_000_000
"""Largest history the tracker keeps (``TrackerConfig.window``, ``fhs_window``): its memory is
``window x assets x 8`` bytes (4 GB at 500 assets), so a larger one is a typo, not a setting."""

MAX_DRIFT_WINDOW = 20_000
"""Largest ``RiskConfig.drift_window`` (bars): the window's memory grows with it (2 bytes per feature
and bar)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TrackerConfig(_ConfigMixin):
    """Settings of the streaming :class:`~advanced_risk.risk.tracker.RiskTracker`."""

    window: int = 250
    """Ring-buffer length in bars for historical / parametric VaR."""
    alpha: float | None = None
    """Confidence level of VaR/CVaR. None: 0.99 for a standalone ``RiskTracker``; inside
    :class:`RiskConfig`, ``RiskConfig.alpha`` (the one setting of the engine's confidence level:
    ``RiskConfig`` stores its tracker with this filled in, and rejects a different value)."""
    method: VaRMethod = VaRMethod.FHS_GARCH
    """VaR method used by ``RiskTracker.var`` when none is named."""
    ewma_lambda: float = 0.94
    """RiskMetrics decay of the EWMA covariance (fast correlation)."""
    baseline_lambda: float = 0.995
    """Decay of the slow baseline of the average pairwise correlation."""
    shock_margin: float = 0.15
    """The correlation-shock flag rises when fast average correlation exceeds the baseline by this."""
    clear_margin: float = 0.075
    """... and clears when the excess falls back below this (hysteresis: clear_margin < shock_margin)."""
    shock_noise_multiple: float = 3.0
    """Both margins are raised, in proportion, to at least this many sampling standard deviations of
    the fast average correlation of independent assets (``risk.tracker.shock_noise_floor``: 0.10
    for 3 pairs, 0.013 for 190), so a book of few assets is not flagged on noise; 0: fixed margins.
    3 flags at most 0.8 % of the bars of independent GARCH-t books of 2-20 assets (chosen on synthetic
    data only: docs/risk_rules.md, round 5); it changes nothing from 6 assets on."""
    correlation_warmup: int = 60
    """Bars before the correlation baseline starts and the shock flag is evaluated (early EWMA is noise)."""
    fhs_window: int = 500
    """Residual window of filtered historical simulation (longer than ``window``: tails need data)."""
    garch_refit_every: int = 250
    """Bars between GJR-GARCH refits (the fit uses ``arch`` and costs ~0.1-1 s)."""

    def __post_init__(self) -> None:
        _as_enum(self, "method", VaRMethod)
        _collect(
            [
                lambda: _require(
                    isinstance(self.window, int) and 20 <= self.window <= MAX_WINDOW,
                    f"window must be in [20, {MAX_WINDOW}], got {self.window}",
                ),
                lambda: (
                    None
                    if self.alpha is None
                    else _in_range(self.alpha, "alpha", 0.0, 1.0, lo_open=True, hi_open=True)
                ),
                lambda: _one_of(self.method, "method", VaRMethod),
                lambda: _require(
                    0 < self.ewma_lambda < 1, f"ewma_lambda must be in (0, 1), got {self.ewma_lambda}"
                ),
                lambda: _require(
                    0 < self.baseline_lambda < 1,
                    f"baseline_lambda must be in (0, 1), got {self.baseline_lambda}",
                ),
                lambda: _require(
                    0 < self.clear_margin < self.shock_margin < 2,
                    "0 < clear_margin < shock_margin < 2 required, got "
                    f"{self.clear_margin} and {self.shock_margin}",
                ),
                lambda: _in_range(self.shock_noise_multiple, "shock_noise_multiple", 0.0, 10.0),
                lambda: _require(
                    isinstance(self.correlation_warmup, int) and 2 <= self.correlation_warmup <= MAX_BARS,
                    f"correlation_warmup must be in [2, {MAX_BARS}], got {self.correlation_warmup}",
                ),
                lambda: _require(
                    isinstance(self.fhs_window, int) and 100 <= self.fhs_window <= MAX_WINDOW,
                    f"fhs_window must be in [100, {MAX_WINDOW}], got {self.fhs_window}",
                ),
                lambda: _require(
                    isinstance(self.garch_refit_every, int) and 1 <= self.garch_refit_every <= MAX_BARS,
                    f"garch_refit_every must be in [1, {MAX_BARS}], got {self.garch_refit_every}",
                ),
            ],
            "TrackerConfig",
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class SizingConfig(_ConfigMixin):
    """Settings of :class:`~advanced_risk.risk.sizing.PositionSizer` (ATR risk budget, stops, caps)."""

    risk_per_trade: float = 0.02
    """Fraction of equity lost if a position is stopped out (0.02 = the classic 2 % rule)."""
    atr_multiplier: float = 2.0
    """Stop distance in ATRs when no explicit ``stop_points`` is given."""
    atr_period: int = 14
    """Wilder ATR period used by ``PositionSizer.latest_atr``."""
    max_position_fraction: float = 1.0
    """Cap on one position's notional as a fraction of equity, before leverage."""

    def __post_init__(self) -> None:
        _collect(
            [
                lambda: _in_range(self.risk_per_trade, "risk_per_trade", 0.0, 1.0, lo_open=True),
                lambda: _in_range(self.atr_multiplier, "atr_multiplier", 0.0, 1e6, lo_open=True),
                lambda: check_positive_int(self.atr_period, "atr_period"),
                lambda: _in_range(
                    self.max_position_fraction, "max_position_fraction", 0.0, 1e6, lo_open=True
                ),
            ],
            "SizingConfig",
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class KellyConfig(_ConfigMixin):
    """Settings of :class:`~advanced_risk.risk.sizing.KellySizer`."""

    fraction: float = 0.5
    """Share of the full Kelly fraction that is used (0.5 = half-Kelly)."""
    cap: float = 0.25
    """Largest fraction of equity Kelly may allocate to one bet."""

    def __post_init__(self) -> None:
        _collect(
            [
                lambda: _in_range(self.fraction, "fraction", 0.0, 1.0, lo_open=True),
                lambda: _in_range(self.cap, "cap", 0.0, 1e6),
            ],
            "KellyConfig",
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class HedgeConfig(_ConfigMixin):
    """Settings of :class:`~advanced_risk.risk.hedging.HedgingStrategy` (full hedge at halt_drawdown)."""

    max_drawdown_threshold: float = 0.05
    """Drawdown above which the hedge turns on; its ratio grows linearly to 1 at halt_drawdown."""
    release_margin: float = 0.01
    """Hysteresis: an active hedge turns off only at or below ``max_drawdown_threshold - release_margin``."""

    def __post_init__(self) -> None:
        _collect(
            [
                lambda: _in_range(
                    self.max_drawdown_threshold, "max_drawdown_threshold", 0.0, 1.0, hi_open=True
                ),
                lambda: _in_range(self.release_margin, "release_margin", 0.0, 1.0),
                lambda: _require(
                    not isinstance(self.release_margin, int | float)
                    or not isinstance(self.max_drawdown_threshold, int | float)
                    or self.release_margin <= self.max_drawdown_threshold,
                    f"release_margin ({self.release_margin}) must be <= max_drawdown_threshold "
                    f"({self.max_drawdown_threshold})",
                ),
            ],
            "HedgeConfig",
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class LeverageConfig(_ConfigMixin):
    """Settings of volatility-target leverage (:mod:`advanced_risk.risk.leverage`)."""

    target_volatility: float = 0.15
    """Volatility the book aims at, in the units of the realised volatility given (e.g. annualised)."""
    min_leverage: float = 0.0
    """Floor of the leverage (also after a correlation-shock cut)."""
    max_leverage: float = 1.0
    """Cap of the leverage; also the answer at zero realised volatility. 1 by default: a cap of 1.5
    cost Sharpe or drawdown on the training books (docs/risk_rules.md)."""
    shock_factor: float = 0.5
    """Leverage is multiplied by this while a correlation shock is on."""
    trend_halflife: int | None = None
    """Half-life in bars of the trend cut's moving average of the strategy's log equity (None: no
    trend cut). While the strategy's reference book is below it, the leverage is multiplied by
    ``trend_factor`` (``risk/strategy_drawdown.py``, docs/risk_rules.md round 3)."""
    trend_factor: float = 0.5
    """Leverage is multiplied by this while the strategy is below its trend (``trend_halflife`` set)."""
    relative_target: float | None = None
    """With a value ``k``, the volatility aimed at is ``min(target_volatility, k * long-run
    volatility)``, the long-run volatility being the mean of the book's own conditional variance over
    ``relative_halflife`` bars (:class:`~advanced_risk.risk.leverage.LongRunVolatility`): a book calmer
    than ``target_volatility`` is still held at ``k`` of its own risk on average, in any units of
    time. The long-run volatility is the book's as asked (not per unit of exposure): a bot that
    doubles its book is held near its old risk until the average catches up, and one that goes nearly
    (not exactly) flat for a while pulls the average down. None: ``target_volatility`` alone
    (docs/risk_rules.md round 4)."""
    relative_halflife: int = 500
    """Half-life in bars of the long-run volatility's moving average (``relative_target`` set)."""

    def __post_init__(self) -> None:
        _collect(
            [
                lambda: _in_range(self.target_volatility, "target_volatility", 0.0, 100.0, lo_open=True),
                lambda: _in_range(self.min_leverage, "min_leverage", 0.0, 1e3),
                lambda: _in_range(self.max_leverage, "max_leverage", 0.0, 1e3, lo_open=True),
                lambda: _require(
                    not (
                        isinstance(self.min_leverage, int | float)
                        and isinstance(self.max_leverage, int | float)
                    )
                    or self.min_leverage <= self.max_leverage,
                    f"min_leverage ({self.min_leverage}) must be <= max_leverage ({self.max_leverage})",
                ),
                lambda: _in_range(self.shock_factor, "shock_factor", 0.0, 1.0),
                lambda: _in_range(self.trend_factor, "trend_factor", 0.0, 1.0),
                lambda: (
                    None
                    if self.trend_halflife is None
                    else check_positive_int(self.trend_halflife, "trend_halflife")
                ),
                lambda: (
                    None
                    if self.relative_target is None
                    else _in_range(self.relative_target, "relative_target", 0.0, 100.0, lo_open=True)
                ),
                lambda: check_positive_int(self.relative_halflife, "relative_halflife"),
            ],
            "LeverageConfig",
        )


_RISK_SUBCONFIGS: dict[str, type[_ConfigMixin]] = {
    "tracker": TrackerConfig,
    "sizing": SizingConfig,
    "kelly": KellyConfig,
    "hedge": HedgeConfig,
    "leverage": LeverageConfig,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class RiskConfig(_ConfigMixin):
    """Top-level settings of the risk engine (the manager grows this in later releases)."""

    alpha: float = 0.99
    """Confidence level of the reported VaR/CVaR, and of the tracker (``tracker.alpha`` may only be
    None or equal to this; the stored ``tracker`` carries this value)."""
    reduce_drawdown: float = 0.25
    """Drawdown at which trading moves to REDUCING (of the strategy or the equity: ``drawdown_basis``).
    Chosen on training data (docs/risk_rules.md): volatility targeting already cuts the book as
    risk rises, and a drawdown cut on top of it cost Sharpe on the training books."""
    halt_drawdown: float = 0.30
    """Drawdown of the account's equity from its peak at which trading moves to HALTED (left only by
    ``resume``: a catastrophe brake, not a trading rule; docs/risk_rules.md)."""
    drawdown_basis: str = "strategy"
    """What the drawdown hedge and the REDUCING rule measure. ``"strategy"``: the drawdown of the
    book asked for (the bot's weights, or the policy's allocation) before any cut of the risk layer
    (``risk/strategy_drawdown.py``): it recovers with the market, so the cuts come off with the
    recovery. ``"equity"``: the account's own drawdown, which a hedge it triggered keeps from
    recovering (the cut locks itself in). The HALT rule always measures the account's equity."""
    deadline_ms: float = 5.0
    """Per-call deadline of ``manage_risk``; past it the decision is conservative and degraded."""
    tracker: TrackerConfig = dataclasses.field(default_factory=TrackerConfig)
    """Settings of the streaming risk tracker."""
    halt_confirmations: int = 3
    """Consecutive checks a halt rule must fire before trading moves to HALTED (kill switch: at once)."""
    var_breach_streak: int | None = 3
    """Consecutive VaR breaches that move trading to REDUCING; None: VaR breaches never do."""
    reduce_on_correlation_shock: bool = True
    """Whether the tracker's correlation-shock flag moves trading to REDUCING (the leverage cut of
    ``leverage.shock_factor`` applies either way; 1.0 turns that off)."""
    loss_streak: int = 20
    """Consecutive losing bars that make a halt rule fire (confirmed on ``halt_confirmations`` bars)."""
    var_limit: float | None = 0.05
    """VaR (loss fraction at ``alpha``) at which the risk level becomes HIGH; None: VaR does not grade it."""
    sizing: SizingConfig = dataclasses.field(default_factory=SizingConfig)
    """Settings of the ATR position sizer."""
    kelly: KellyConfig | None = None
    """Kelly cap on position sizes; None (default): off. When set, each asset's size is also capped at
    ``clip(kelly.fraction * m / s**2, 0, kelly.cap) * equity * leverage / price`` units, with ``m``
    and ``s**2`` the mean and variance of its returns over the tracker's window (``m`` negated for a
    short): the ATR risk budget bounds the loss at the stop, Kelly the stake given the estimated edge
    (0 with no edge, and 0 until the tracker has ``window`` bars)."""
    hedge: HedgeConfig | None = None
    """Settings of the drawdown hedge (fully on at ``halt_drawdown``); None (the default, chosen on
    training data: docs/risk_rules.md): no drawdown hedge. A HALTED book is still fully hedged, a
    degraded decision still partly."""
    leverage: LeverageConfig = dataclasses.field(default_factory=LeverageConfig)
    """Settings of volatility-target leverage."""
    state_path: str | None = None
    """SQLite file for peak equity, trading state, kill switch and decision journal (None: in memory;
    an ``os.PathLike`` is stored as its string)."""
    journal_sync: bool = True
    """Wait (within the deadline) until each decision's journal row is durable before returning it.
    False: rows are committed in batches by the journal's thread, at most 50 ms after each decision
    (a crash can lose that much of the journal; the safety state is always written through)."""
    memory_journal_rows: int = 10_000
    """With ``state_path=None``: the journal in memory keeps only the newest this many decisions (a
    ring; older rows are evicted, counted in ``metrics()["journal_evicted"]``, and ``read_decision``
    returns None for them), so memory stays bounded however long the bot runs. A journal on disk
    keeps all of history: set ``state_path`` to keep every decision."""
    rate_limit_per_s: float | None = 10_000.0
    """Most ``manage_risk`` calls per second (asyncio-throttle); None: no throttle."""
    mc_samples: int = 10
    """MC-dropout samples of the policy per decision (its uncertainty)."""
    uncertainty_threshold: float | None = None
    """Policy uncertainty (mean MC-dropout std of the pre-softmax action) above which leverage is cut;
    None: the policy's own calibrated threshold (saved with it), else 0.1."""
    uncertainty_leverage_factor: float = 0.5
    """Leverage multiplier while the policy's uncertainty is above the threshold."""
    risk_agents_path: str | None = None
    """Model file of trained risk agents (``train_ppo_agent.py --agents risk``); None: rules only."""
    agents_uncertainty_threshold: float | None = None
    """Normalised MC-dropout std above which an agent is replaced by its rule; None: the threshold
    stored with the agents (0.1 unless calibrated)."""
    drift_window: int = 250
    """Bars of the rolling window over which each learned model's input drift is scored (mean PSI of
    its observation features against the training statistics in its model file; docs/drift.md).
    The defaults (window, min_bars and each shipped model's threshold) were chosen on training data
    only: the lowest detection delay of a volatility x2.5 shift with <= 1 % false alarms on held-out
    in-distribution paths (docs/drift.md). At most ``MAX_DRIFT_WINDOW`` (20,000) bars: the window
    keeps one 2-byte bin index per feature and bar (~6 MB for the shipped policy's 160 features at
    the maximum). A graceful restart (``close``, then a new manager) goes on with the window saved
    at the close; after a crash a model is scored again only once ``drift_min_bars`` bars have
    passed."""
    drift_threshold: float | None = None
    """Drift score (mean PSI over the model's features) above which the model's advice is replaced by
    the rules for the bar, with an alert naming the features that moved most. None: each model's own
    threshold, stored with its training statistics (the shipped PPO policy 0.448, S&P 500 risk agents
    1.444; calibrated for the default window and min_bars: set one here when you change those)."""
    drift_min_bars: int = 250
    """Bars the drift window must hold before a model can be declared drifted (1..drift_window)."""
    drawdown_window: int | None = 252
    """Bars of equity history the rules' drawdown is measured over (rolling high-water mark); None:
    from the all-time peak. A rolling peak lets a book that de-risked recover out of REDUCING/hedging;
    measured from the all-time peak, a book cut to little exposure can stay there for years."""
    reduce_exposure: float = 0.5
    """While REDUCING, the allocation's asset weights are scaled by this (the rest goes to cash)."""
    degraded_leverage_factor: float = 0.5
    """A degraded decision's leverage: this times min(previous leverage, 1)."""
    degraded_hedge_ratio: float = 0.5
    """A degraded decision hedges at least this share of the exposure."""
    periods_per_year: int = 252
    """Bars per year: 252 for daily bars of an exchange, 365 for 24/7 markets (crypto), 252 * 390 for
    minute bars of a US session. Every annualised figure uses it (volatility-target leverage, and the
    Gaussian VaR from ``MarketState.volatility``)."""
    max_equity_jump: float | None = 10.0
    """A bar whose ``portfolio.equity`` (or ``peak_equity``) exceeds this multiple of the peak equity
    seen so far is refused as a data error (``InvalidInputError``): one bad equity print would
    otherwise become the peak, and every later bar would read as a drawdown of ~100 % (REDUCING,
    then HALTED, for good). None: no check. A real change of capital: :meth:`reset_peak`."""
    max_assets: int = 1_000
    """Most assets a bar may name. The per-bar work grows with the square of the universe (an
    (n, n) covariance, n x fhs_window of history: 8 MB and 4 MB at 1,000 assets, 10,000 assets would
    be 800 MB and seconds per bar); a bar beyond it is refused with ``InvalidInputError``."""
    garch_install_lag: int = 250
    """Bars between the bar a GJR-GARCH refit starts (in the background) and the bar it takes effect:
    fixed by the bar count, so a replay of the same bars gives the same decisions. 250 (one refit
    period) leaves a fit (~50-100 ms in the worker) room even at 1,000 bars a second; the parameters
    move slowly, and the filter uses every new return at once. Live, a refit not done by then is
    not waited for: the previous parameters stay in force until it lands, and the decision of the
    install bar says so in an alert (not degraded: stale parameters are not a fault);
    ``deterministic_refits`` waits instead."""
    deterministic_refits: bool = False
    """True (backtests, replays): a refit due at its install bar is waited for however long it takes,
    so no decision depends on the machine's speed. False (live): never waited for; a late refit takes
    effect at the first bar after it lands."""

    def __post_init__(self) -> None:
        path: object = self.state_path
        if isinstance(path, os.PathLike):  # a pathlib.Path is a path too
            object.__setattr__(self, "state_path", os.fspath(path))
        for name, kind in _RISK_SUBCONFIGS.items():  # a TOML table becomes its config object
            value = getattr(self, name)
            if isinstance(value, Mapping):
                object.__setattr__(self, name, kind.from_dict(value))
        _collect(
            [
                *[
                    (
                        lambda n=n, k=k: _require(
                            isinstance(getattr(self, n), k)
                            or (n in ("kelly", "hedge") and getattr(self, n) is None),
                            f"{n} must be a {k.__name__}, got {type(getattr(self, n)).__name__}",
                        )
                    )
                    for n, k in _RISK_SUBCONFIGS.items()
                ],
                lambda: check_positive_int(self.halt_confirmations, "halt_confirmations"),
                lambda: (
                    None
                    if self.var_breach_streak is None
                    else check_positive_int(self.var_breach_streak, "var_breach_streak")
                ),
                lambda: _require(
                    isinstance(self.reduce_on_correlation_shock, bool),
                    f"reduce_on_correlation_shock must be a bool, got {self.reduce_on_correlation_shock!r}",
                ),
                lambda: check_positive_int(self.loss_streak, "loss_streak"),
                lambda: (
                    None
                    if self.var_limit is None
                    else _in_range(self.var_limit, "var_limit", 0.0, 1.0, lo_open=True)
                ),
                lambda: _require(
                    not isinstance(self.hedge, HedgeConfig)
                    or not isinstance(self.halt_drawdown, int | float)
                    or self.hedge.max_drawdown_threshold < self.halt_drawdown,
                    "hedge.max_drawdown_threshold must be < halt_drawdown, got "
                    f"{getattr(self.hedge, 'max_drawdown_threshold', None)} and {self.halt_drawdown}",
                ),
                lambda: _require(0 < self.alpha < 1, f"alpha must be in (0, 1), got {self.alpha}"),
                lambda: _require(
                    0 < self.reduce_drawdown < self.halt_drawdown < 1,
                    "0 < reduce_drawdown < halt_drawdown < 1 required, got "
                    f"{self.reduce_drawdown} and {self.halt_drawdown}",
                ),
                lambda: _in_range(self.deadline_ms, "deadline_ms", 0.0, math.inf, lo_open=True),
                lambda: _require(
                    self.state_path is None
                    or (
                        isinstance(self.state_path, str)
                        and self.state_path.strip() not in ("", ":memory:")
                        and "\x00" not in self.state_path
                    ),
                    f"state_path must be a file path (str or os.PathLike; None keeps the state in "
                    f"memory), got {self.state_path!r}",
                ),
                lambda: (
                    None
                    if self.rate_limit_per_s is None
                    else _in_range(self.rate_limit_per_s, "rate_limit_per_s", 0.0, 1e9, lo_open=True)
                ),
                lambda: check_positive_int(self.mc_samples, "mc_samples"),
                lambda: check_positive_int(self.memory_journal_rows, "memory_journal_rows"),
                lambda: _in_range(
                    check_positive_int(self.periods_per_year, "periods_per_year"), "periods_per_year", 1, 1e12
                ),
                lambda: check_positive_int(self.garch_install_lag, "garch_install_lag"),
                lambda: _require(
                    self.drawdown_basis in ("strategy", "equity"),
                    f"drawdown_basis must be 'strategy' or 'equity', got {self.drawdown_basis!r}",
                ),
                lambda: check_positive_int(self.max_assets, "max_assets"),
                lambda: (
                    None
                    if self.max_equity_jump is None
                    else _in_range(self.max_equity_jump, "max_equity_jump", 1.0, 1e12, lo_open=True)
                ),
                lambda: (
                    None
                    if self.uncertainty_threshold is None
                    else _in_range(
                        self.uncertainty_threshold, "uncertainty_threshold", 0.0, 1e6, lo_open=True
                    )
                ),
                lambda: _in_range(self.uncertainty_leverage_factor, "uncertainty_leverage_factor", 0.0, 1.0),
                lambda: _require(
                    self.risk_agents_path is None or isinstance(self.risk_agents_path, str),
                    f"risk_agents_path must be a path string or None, got {self.risk_agents_path!r}",
                ),
                lambda: (
                    None
                    if self.agents_uncertainty_threshold is None
                    else _in_range(
                        self.agents_uncertainty_threshold, "agents_uncertainty_threshold", 0.0, 1.0
                    )
                ),
                lambda: _in_range(
                    check_positive_int(self.drift_window, "drift_window", minimum=2),
                    "drift_window",
                    2,
                    MAX_DRIFT_WINDOW,
                ),
                lambda: (
                    None
                    if self.drift_threshold is None
                    else _in_range(self.drift_threshold, "drift_threshold", 0.0, 1e6, lo_open=True)
                ),
                lambda: check_positive_int(self.drift_min_bars, "drift_min_bars"),
                lambda: _require(
                    type(self.drift_window) is not int
                    or type(self.drift_min_bars) is not int
                    or self.drift_min_bars <= self.drift_window,
                    f"drift_min_bars must be <= drift_window ({self.drift_window}), "
                    f"got {self.drift_min_bars}",
                ),
                lambda: _in_range(self.reduce_exposure, "reduce_exposure", 0.0, 1.0),
                lambda: (
                    None
                    if self.drawdown_window is None
                    else _in_range(
                        check_positive_int(self.drawdown_window, "drawdown_window"),
                        "drawdown_window",
                        1,
                        MAX_BARS,
                    )
                ),
                lambda: _in_range(self.degraded_leverage_factor, "degraded_leverage_factor", 0.0, 1.0),
                lambda: _in_range(self.degraded_hedge_ratio, "degraded_hedge_ratio", 0.0, 1.0),
                lambda: _require(
                    isinstance(self.tracker, TrackerConfig),
                    f"tracker must be a TrackerConfig, got {type(self.tracker).__name__}",
                ),
                lambda: _require(
                    not isinstance(self.tracker, TrackerConfig)
                    or self.tracker.alpha is None
                    or self.tracker.alpha == self.alpha,
                    f"tracker.alpha ({getattr(self.tracker, 'alpha', None)}) differs from alpha "
                    f"({self.alpha}): set the confidence level once, as RiskConfig.alpha (leave "
                    "tracker.alpha None)",
                ),
            ],
            "RiskConfig",
        )
        if self.tracker.alpha != self.alpha:  # None: the tracker uses the engine's confidence level
            object.__setattr__(self, "tracker", dataclasses.replace(self.tracker, alpha=self.alpha))

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict view; ``tracker.alpha`` is left out (it is ``alpha``: the one setting)."""
        out = _ConfigMixin.to_dict(self)
        out["tracker"].pop("alpha", None)
        return out
