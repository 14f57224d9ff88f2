"""Frozen, keyword-only configuration objects, validated once in ``__post_init__``.

A config reports *all* its bad fields at once in one :class:`~advanced_risk.errors.ConfigError`
(a subclass of ``InvalidInputError``), and ``from_dict`` rejects unknown keys, so a typo in a TOML
file is an error rather than a silently ignored setting.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Self

from advanced_risk.errors import ConfigError, InvalidInputError
from advanced_risk.measures._validation import check_positive_int, check_range
from advanced_risk.measures.var import VaRMethod

__all__ = [
    "EnvConfig",
    "HedgeConfig",
    "KellyConfig",
    "LeverageConfig",
    "MarketKind",
    "PPOConfig",
    "RewardKind",
    "RiskConfig",
    "SizingConfig",
    "TrackerConfig",
]


def _collect(checks: list[Callable[[], object]], owner: str) -> None:
    """Run every check, gather the messages of those that fail, raise them together."""
    problems: list[str] = []
    for check in checks:
        try:
            check()
        except InvalidInputError as exc:
            problems.append(str(exc))
    if problems:
        raise ConfigError(f"{owner}: " + "; ".join(problems))


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise InvalidInputError(message)


class _ConfigMixin:
    """``from_dict`` / ``to_dict`` shared by every config."""

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Self:
        """Build from a mapping (e.g. a TOML table); unknown keys raise ``ConfigError``."""
        known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"{cls.__name__}: unknown field(s) {unknown}; known: {sorted(known)}")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict view (enums as their string values), suitable for JSON or TOML."""
        out = dataclasses.asdict(self)  # type: ignore[call-overload]
        return {k: (v.value if hasattr(v, "value") else v) for k, v in out.items()}


@dataclass(frozen=True, slots=True, kw_only=True)
class TrackerConfig(_ConfigMixin):
    """Settings of the streaming :class:`~advanced_risk.risk.tracker.RiskTracker`."""

    window: int = 250
    """Ring-buffer length in bars for historical / parametric VaR."""
    alpha: float = 0.99
    """Confidence level of VaR/CVaR."""
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
    correlation_warmup: int = 60
    """Bars before the correlation baseline starts and the shock flag is evaluated (early EWMA is noise)."""
    fhs_window: int = 500
    """Residual window of filtered historical simulation (longer than ``window``: tails need data)."""
    garch_refit_every: int = 250
    """Bars between GJR-GARCH refits (the fit uses ``arch`` and costs ~0.1-1 s)."""

    def __post_init__(self) -> None:
        if self.method in tuple(VaRMethod):  # a plain string such as "historical" becomes the enum
            object.__setattr__(self, "method", VaRMethod(self.method))
        _collect(
            [
                lambda: _require(
                    isinstance(self.window, int) and self.window >= 20,
                    f"window must be >= 20, got {self.window}",
                ),
                lambda: _require(0 < self.alpha < 1, f"alpha must be in (0, 1), got {self.alpha}"),
                lambda: _require(
                    self.method in tuple(VaRMethod),
                    f"method must be one of {[m.value for m in VaRMethod]}, got {self.method!r}",
                ),
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
                lambda: _require(
                    isinstance(self.correlation_warmup, int) and self.correlation_warmup >= 2,
                    f"correlation_warmup must be >= 2, got {self.correlation_warmup}",
                ),
                lambda: _require(
                    isinstance(self.fhs_window, int) and self.fhs_window >= 100,
                    f"fhs_window must be >= 100, got {self.fhs_window}",
                ),
                lambda: _require(
                    isinstance(self.garch_refit_every, int) and self.garch_refit_every >= 1,
                    f"garch_refit_every must be >= 1, got {self.garch_refit_every}",
                ),
            ],
            "TrackerConfig",
        )


def _in_range(
    value: object, name: str, lo: float, hi: float, *, lo_open: bool = False, hi_open: bool = False
) -> None:
    """``check_range`` for configs: a finite real in the interval, else ``InvalidInputError`` naming it."""
    check_range(value, name, lo, hi, lo_open=lo_open, hi_open=hi_open)


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
    max_leverage: float = 2.0
    """Cap of the leverage; also the answer at zero realised volatility."""
    shock_factor: float = 0.5
    """Leverage is multiplied by this while a correlation shock is on."""

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
    """Confidence level of the reported VaR/CVaR."""
    reduce_drawdown: float = 0.08
    """Drawdown from peak equity at which trading moves to REDUCING."""
    halt_drawdown: float = 0.15
    """Drawdown from peak equity at which trading moves to HALTED."""
    deadline_ms: float = 5.0
    """Per-call deadline of ``manage_risk``; past it the decision is conservative and degraded."""
    tracker: TrackerConfig = dataclasses.field(default_factory=TrackerConfig)
    """Settings of the streaming risk tracker."""
    halt_confirmations: int = 3
    """Consecutive checks a halt rule must fire before trading moves to HALTED (kill switch: at once)."""
    var_breach_streak: int = 3
    """Consecutive VaR breaches that move trading to REDUCING."""
    loss_streak: int = 10
    """Consecutive losing bars that make a halt rule fire."""
    var_limit: float | None = 0.05
    """VaR (loss fraction at ``alpha``) at which the risk level becomes HIGH; None: VaR does not grade it."""
    sizing: SizingConfig = dataclasses.field(default_factory=SizingConfig)
    """Settings of the ATR position sizer."""
    kelly: KellyConfig = dataclasses.field(default_factory=KellyConfig)
    """Settings of the Kelly sizer."""
    hedge: HedgeConfig = dataclasses.field(default_factory=HedgeConfig)
    """Settings of the drawdown hedge (fully on at ``halt_drawdown``)."""
    leverage: LeverageConfig = dataclasses.field(default_factory=LeverageConfig)
    """Settings of volatility-target leverage."""
    state_path: str | None = None
    """SQLite file for peak equity, trading state, kill switch and decision journal (None: in memory)."""
    journal_sync: bool = True
    """Wait (within the deadline) until each decision's journal row is durable before returning it."""
    rate_limit_per_s: float | None = 10_000.0
    """Most ``manage_risk`` calls per second (asyncio-throttle); None: no throttle."""
    mc_samples: int = 10
    """MC-dropout samples of the policy per decision (its uncertainty)."""
    uncertainty_threshold: float | None = None
    """Policy uncertainty (mean MC-dropout std of the pre-softmax action) above which leverage is cut;
    None: the policy's own calibrated threshold (saved with it), else 0.1."""
    uncertainty_leverage_factor: float = 0.5
    """Leverage multiplier while the policy's uncertainty is above the threshold."""
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
    """Bars per year, to annualise the tracker's volatility for volatility-target leverage."""

    def __post_init__(self) -> None:
        for name, kind in _RISK_SUBCONFIGS.items():  # a TOML table becomes its config object
            value = getattr(self, name)
            if isinstance(value, Mapping):
                object.__setattr__(self, name, kind.from_dict(value))
        _collect(
            [
                *[
                    (
                        lambda n=n, k=k: _require(
                            isinstance(getattr(self, n), k),
                            f"{n} must be a {k.__name__}, got {type(getattr(self, n)).__name__}",
                        )
                    )
                    for n, k in _RISK_SUBCONFIGS.items()
                ],
                lambda: check_positive_int(self.halt_confirmations, "halt_confirmations"),
                lambda: check_positive_int(self.var_breach_streak, "var_breach_streak"),
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
                lambda: _require(self.deadline_ms > 0, f"deadline_ms must be > 0, got {self.deadline_ms}"),
                lambda: _require(
                    self.state_path is None or isinstance(self.state_path, str),
                    f"state_path must be a path string or None, got {self.state_path!r}",
                ),
                lambda: (
                    None
                    if self.rate_limit_per_s is None
                    else _in_range(self.rate_limit_per_s, "rate_limit_per_s", 0.0, 1e9, lo_open=True)
                ),
                lambda: check_positive_int(self.mc_samples, "mc_samples"),
                lambda: check_positive_int(self.periods_per_year, "periods_per_year"),
                lambda: (
                    None
                    if self.uncertainty_threshold is None
                    else _in_range(
                        self.uncertainty_threshold, "uncertainty_threshold", 0.0, 1e6, lo_open=True
                    )
                ),
                lambda: _in_range(self.uncertainty_leverage_factor, "uncertainty_leverage_factor", 0.0, 1.0),
                lambda: _in_range(self.reduce_exposure, "reduce_exposure", 0.0, 1.0),
                lambda: (
                    None
                    if self.drawdown_window is None
                    else check_positive_int(self.drawdown_window, "drawdown_window")
                ),
                lambda: _in_range(self.degraded_leverage_factor, "degraded_leverage_factor", 0.0, 1.0),
                lambda: _in_range(self.degraded_hedge_ratio, "degraded_hedge_ratio", 0.0, 1.0),
                lambda: _require(
                    isinstance(self.tracker, TrackerConfig),
                    f"tracker must be a TrackerConfig, got {type(self.tracker).__name__}",
                ),
            ],
            "RiskConfig",
        )


class MarketKind(StrEnum):
    """Where the environment's returns come from (see ``advanced_risk.rl.market``)."""

    GBM = "gbm"
    """Correlated geometric Brownian motion with fixed drifts and volatilities."""
    REGIME = "regime"
    """Markov regime switching between bull, bear and crisis (own drift, vol and correlation)."""
    HISTORICAL = "historical"
    """Replay of the bundled 20 S&P 500 stocks from random start dates inside a date split."""


class RewardKind(StrEnum):
    """How a step's reward is computed from the portfolio's move."""

    SHAPED = "shaped"
    """The seed's shaping: ``r - vol_penalty*vol - drawdown_penalty*max(DD - free, 0) - cost_penalty*c``."""
    LOG_RETURN = "log_return"
    """``log(V_t / V_(t-1))`` net of costs: maximising its sum maximises terminal wealth."""


@dataclass(frozen=True, slots=True, kw_only=True)
class EnvConfig(_ConfigMixin):
    """Settings of the portfolio environment (``TradingEnvironment`` and ``VectorTradingEnv``)."""

    asset_count: int = 10
    """Number of risky assets; the action adds one cash slot (weights over assets + cash)."""
    initial_balance: float = 10_000.0
    """Starting portfolio value in currency."""
    transaction_cost: float = 0.001
    """Proportional cost per unit of traded value (0.001 = 10 bp)."""
    window: int = 20
    """Look-back in bars of the return features in the observation."""
    max_steps: int = 252
    """Steps per episode before truncation."""
    reward: RewardKind = RewardKind.SHAPED
    """Reward definition."""
    vol_penalty: float = 0.1
    """Shaped reward: weight of the portfolio's recent volatility."""
    drawdown_penalty: float = 2.0
    """Shaped reward: weight of the drawdown beyond ``drawdown_free``."""
    drawdown_free: float = 0.05
    """Shaped reward: drawdown tolerated without penalty."""
    cost_penalty: float = 10.0
    """Shaped reward: weight of the step's transaction cost (as a fraction of value)."""
    ruin_fraction: float = 0.5
    """An episode terminates when value falls below this fraction of ``initial_balance``."""
    no_trade_band: float = 0.0
    """Skip rebalancing while the L1 distance between target and held weights is below this."""
    rebalance_rate: float = 1.0
    """Partial rebalancing: trade this fraction of the way from held to target weights (1: all the way)."""
    market: MarketKind = MarketKind.GBM
    """Return generator."""
    train_end: str = "2012-12-31"
    """Historical market: last date of the training split (inclusive)."""
    test_start: str = "2013-01-01"
    """Historical market: first date of the test split (must be after ``train_end``)."""
    split: str = "train"
    """Historical market: which split episodes are drawn from, "train" or "test"."""

    def __post_init__(self) -> None:
        for name, enum in (("reward", RewardKind), ("market", MarketKind)):
            value = getattr(self, name)
            if value in tuple(enum):
                object.__setattr__(self, name, enum(value))
        _collect(
            [
                lambda: _require(
                    isinstance(self.asset_count, int) and self.asset_count >= 1,
                    f"asset_count must be an integer >= 1, got {self.asset_count!r}",
                ),
                lambda: _require(
                    self.initial_balance > 0, f"initial_balance must be > 0, got {self.initial_balance}"
                ),
                lambda: _require(
                    0 <= self.transaction_cost < 0.1,
                    f"transaction_cost must be in [0, 0.1), got {self.transaction_cost}",
                ),
                lambda: _require(
                    isinstance(self.window, int) and self.window >= 2,
                    f"window must be an integer >= 2, got {self.window!r}",
                ),
                lambda: _require(
                    isinstance(self.max_steps, int) and self.max_steps >= 1,
                    f"max_steps must be an integer >= 1, got {self.max_steps!r}",
                ),
                lambda: _require(
                    self.reward in tuple(RewardKind),
                    f"reward must be one of {[k.value for k in RewardKind]}, got {self.reward!r}",
                ),
                lambda: _require(
                    self.market in tuple(MarketKind),
                    f"market must be one of {[k.value for k in MarketKind]}, got {self.market!r}",
                ),
                lambda: _require(
                    min(self.vol_penalty, self.drawdown_penalty, self.cost_penalty) >= 0,
                    "reward penalties must be >= 0, got "
                    f"{self.vol_penalty}, {self.drawdown_penalty}, {self.cost_penalty}",
                ),
                lambda: _require(
                    0 <= self.drawdown_free < 1, f"drawdown_free must be in [0, 1), got {self.drawdown_free}"
                ),
                lambda: _require(
                    0 < self.ruin_fraction < 1, f"ruin_fraction must be in (0, 1), got {self.ruin_fraction}"
                ),
                lambda: _require(
                    0 <= self.no_trade_band < 2, f"no_trade_band must be in [0, 2), got {self.no_trade_band}"
                ),
                lambda: _require(
                    0 < self.rebalance_rate <= 1,
                    f"rebalance_rate must be in (0, 1], got {self.rebalance_rate}",
                ),
                lambda: _require(
                    self.split in ("train", "test"), f"split must be 'train' or 'test', got {self.split!r}"
                ),
                lambda: _require(
                    str(self.train_end) < str(self.test_start),
                    f"train_end ({self.train_end}) must be before test_start ({self.test_start})",
                ),
            ],
            "EnvConfig",
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class PPOConfig(_ConfigMixin):
    """PPO hyperparameters (CleanRL's names; one line each, shown by ``train_ppo_agent.py --help``)."""

    learning_rate: float = 3e-4
    """Adam learning rate (annealed linearly to 0 when ``anneal_lr``)."""
    num_envs: int = 8
    """Parallel environments in the vector env."""
    num_steps: int = 256
    """Steps per environment per rollout (batch = num_envs * num_steps)."""
    total_timesteps: int = 200_000
    """Environment steps of a training run."""
    gamma: float = 0.99
    """Discount factor."""
    gae_lambda: float = 0.95
    """GAE lambda."""
    update_epochs: int = 10
    """Passes over each rollout."""
    num_minibatches: int = 8
    """Minibatches per epoch."""
    clip_coef: float = 0.2
    """Surrogate clipping epsilon."""
    clip_vloss: bool = True
    """Clip the value loss around the old values."""
    ent_coef: float = 0.0
    """Entropy bonus weight."""
    vf_coef: float = 0.5
    """Value loss weight."""
    max_grad_norm: float = 0.5
    """Global gradient-norm clip."""
    target_kl: float | None = 0.02
    """Stop the epoch loop early when the approximate KL exceeds this (None: never)."""
    anneal_lr: bool = True
    """Linear learning-rate decay over the run."""
    norm_obs: bool = True
    """Running mean/std observation normalisation (saved with the model)."""
    obs_clip: float = 10.0
    """Normalised observations are clipped to [-obs_clip, obs_clip]."""
    norm_adv: bool = True
    """Normalise advantages to zero mean, unit std within each minibatch."""
    hidden_sizes: tuple[int, ...] = (64, 64)
    """Hidden layer widths of actor and critic."""
    init_log_std: float = -0.5
    """Initial state-independent log standard deviation of the Gaussian policy."""
    dropout: float = 0.1
    """Dropout probability in the actor (used for MC-dropout uncertainty at inference)."""
    grad_accum_steps: int = 1
    """Micro-batches per minibatch; their gradients add up to one optimizer step (less memory, same step)."""
    device: str = "auto"
    """"auto" (CUDA if available), "cpu" or "cuda"."""
    amp: bool = False
    """Mixed precision (autocast + GradScaler); only takes effect on CUDA."""
    seed: int = 0
    """Seed of torch, numpy and the environments."""

    def __post_init__(self) -> None:
        sizes: object = self.hidden_sizes
        if isinstance(sizes, list):  # a TOML/JSON list becomes a tuple
            object.__setattr__(self, "hidden_sizes", tuple(sizes))
        positive_ints = ("num_envs", "num_steps", "total_timesteps", "update_epochs", "num_minibatches")
        _collect(
            [
                *[
                    (
                        lambda n=n: _require(
                            isinstance(getattr(self, n), int) and getattr(self, n) >= 1,
                            f"{n} must be an integer >= 1, got {getattr(self, n)!r}",
                        )
                    )
                    for n in positive_ints
                ],
                lambda: _require(
                    self.learning_rate > 0, f"learning_rate must be > 0, got {self.learning_rate}"
                ),
                lambda: _require(0 < self.gamma <= 1, f"gamma must be in (0, 1], got {self.gamma}"),
                lambda: _require(
                    0 <= self.gae_lambda <= 1, f"gae_lambda must be in [0, 1], got {self.gae_lambda}"
                ),
                lambda: _require(
                    0 < self.clip_coef < 1, f"clip_coef must be in (0, 1), got {self.clip_coef}"
                ),
                lambda: _require(
                    min(self.ent_coef, self.vf_coef) >= 0,
                    f"ent_coef and vf_coef must be >= 0, got {self.ent_coef}, {self.vf_coef}",
                ),
                lambda: _require(
                    self.max_grad_norm > 0, f"max_grad_norm must be > 0, got {self.max_grad_norm}"
                ),
                lambda: _require(
                    self.target_kl is None or self.target_kl > 0,
                    f"target_kl must be > 0 or None, got {self.target_kl}",
                ),
                lambda: _require(
                    len(self.hidden_sizes) >= 1
                    and all(isinstance(h, int) and h >= 1 for h in self.hidden_sizes),
                    f"hidden_sizes must be positive integers, got {self.hidden_sizes!r}",
                ),
                lambda: _require(0 <= self.dropout < 1, f"dropout must be in [0, 1), got {self.dropout}"),
                lambda: _require(
                    isinstance(self.grad_accum_steps, int) and self.grad_accum_steps >= 1,
                    f"grad_accum_steps must be an integer >= 1, got {self.grad_accum_steps!r}",
                ),
                lambda: _require(self.obs_clip > 0, f"obs_clip must be > 0, got {self.obs_clip}"),
                lambda: _require(
                    self.device in ("auto", "cpu", "cuda") or str(self.device).startswith("cuda:"),
                    f"device must be 'auto', 'cpu' or 'cuda[:N]', got {self.device!r}",
                ),
                lambda: _require(
                    (self.num_envs * self.num_steps) % self.num_minibatches == 0,
                    f"num_envs * num_steps ({self.num_envs * self.num_steps}) must be divisible by "
                    f"num_minibatches ({self.num_minibatches})",
                ),
            ],
            "PPOConfig",
        )

    @property
    def batch_size(self) -> int:
        """Transitions per rollout: ``num_envs * num_steps``."""
        return self.num_envs * self.num_steps

    @property
    def minibatch_size(self) -> int:
        """Transitions per minibatch: ``batch_size // num_minibatches``."""
        return self.batch_size // self.num_minibatches
