"""The bar loop of the evaluation: one book, three strategies, the same returns and costs.

Execution semantics (those of ``examples/trading_loop.py``), for every bar ``t`` of a window:

1. The bar happens to what the bot holds: with ``h`` the weights decided at the previous close,
   the book earns ``g_t = h . r_t`` and the weights drift with prices, ``h <- h * (1 + r_t) / (1 + g_t)``;
   equity ``E <- E * (1 + g_t)``.
2. The strategy decides at the bar's close (a :data:`Decider`: ``decide(t, h, E)``) the weights to
   hold next, ``target``.
3. The bot trades to ``target`` and pays ``cost`` (10 bp) on the traded value: turnover
   ``u_t = sum |target - h|``, ``E <- E * (1 - cost * u_t)``, ``h <- target``.

The bar's reported (net) return is ``(1 + g_t) * (1 - cost * u_t) - 1``, so the reported returns
compound exactly to the equity the strategy sees (``trading_loop.py`` reports the first-order
``g_t - cost * u_t``; the two differ by ``cost * u_t * g_t``, below 1e-5 a bar). The first
``warmup`` rows are shown to the strategy (the manager warms its tracker on them) but not traded:
the book holds cash, and every strategy starts from cash at the first evaluated bar, buying in at
its close. A bar that would take equity to zero or below is ruin: its return is -1 and the
strategy holds nothing afterwards.

The three strategies of a book:

- **managed**: ``manage_risk_sync`` decides. It is called with ``MarketState(returns=r_t,
  prices=closes_t)`` and ``Portfolio(weights=desired_t, equity=E)``, where ``desired_t`` are the
  book's *desired* target weights (e.g. equal weight), not the drifted held ones: without a policy
  the manager scales the weights it is given, so it must be given what the strategy wants to hold.
  The bot then holds ``rebalance_weights * leverage * (1 - hedge.ratio if hedge.active else 1)``.
  A policy book (``Book.policy``) passes the policy to the manager as ``policy=`` and the held
  weights as ``Portfolio.weights``, exactly as ``trading_loop.py`` does.
- **unmanaged**: trades to ``desired_t`` every bar (for a policy book: the policy alone, as
  ``trading_loop.PolicyAlone``, no leverage, no hedge).
- **vol target** (the textbook one-liner): ``b_t = desired_{t-1} . r_t`` is the return of the desired
  book over bar ``t`` before costs (``desired_{-1} = desired_0``); ``s2`` its RiskMetrics EWMA
  variance (lambda 0.94, :func:`advanced_risk.measures.ewma_variance`, started at the mean of ``b^2``
  over the warm-up rows); exposure decided at the close of bar ``t``:
  ``x_t = min(1, 0.15 / sqrt(periods_per_year * s2_t))`` (1 where ``s2_t = 0``) with ``s2_t`` using
  ``b`` up to and including bar ``t``; target ``x_t * desired_t``.

The manager runs with the caller's :class:`~advanced_risk.config.RiskConfig`, except four fields the
harness sets so that a replay is reproducible on any machine (:func:`harness_config`):
``deterministic_refits=True``, ``rate_limit_per_s=None``, ``state_path=None`` and
``deadline_ms >= 60,000`` (a decision is never degraded for the machine's speed).

Many books over one or both periods: :mod:`~advanced_risk.evaluation.rules.evaluate`.

One module because the bar loop, the three strategies' deciders and the replay of one book share
the execution semantics stated above, and each part is read against them.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from advanced_risk.config import RiskConfig
from advanced_risk.errors import InvalidInputError
from advanced_risk.evaluation.rules.books import SPLIT_DATE, Book, BookWindow, Period, book_window
from advanced_risk.measures.validation import FloatArray

if TYPE_CHECKING:
    from advanced_risk.manager import AdvancedRiskManager
    from advanced_risk.rl.portfolio.manager import RLPortfolioManager

__all__ = [
    "COST",
    "EWMA_LAMBDA",
    "HARNESS_DEADLINE_MS",
    "VOL_TARGET",
    "WARMUP",
    "BarDecision",
    "BookResult",
    "Decider",
    "ManagerDecider",
    "PolicyAloneDecider",
    "StrategyPath",
    "book_returns",
    "harness_config",
    "run_book",
    "simulate",
    "vol_target_exposure",
]


COST: Final = 0.001
"""Cost per unit of traded value (10 bp), charged on turnover ``sum |target - held|``."""

WARMUP: Final = 300
"""Bars shown to the strategies before the evaluated period (not traded)."""

VOL_TARGET: Final = 0.15
"""Annualised volatility the textbook baseline targets."""

EWMA_LAMBDA: Final = 0.94
"""RiskMetrics decay of the textbook baseline's variance."""

HARNESS_DEADLINE_MS: Final = 60_000.0
"""Smallest ``deadline_ms`` the harness runs the manager with (replays never miss a deadline)."""


@dataclass(frozen=True, slots=True, eq=False)
class BarDecision:
    """What a strategy decided at a bar's close.

    Attributes
    ----------
    target : ``(n,)`` weights to hold over the next bar (signed fractions of equity; cash is the rest).
    hedged : whether a hedge is on (the manager's ``hedge.active``; already applied to ``target``).
    state : the trading state (``active``, ``reducing`` or ``halted``).
    degraded : whether the manager answered a degraded (fallback) decision.
    """

    target: FloatArray
    hedged: bool = False
    state: str = "active"
    degraded: bool = False


Decider = Callable[[int, FloatArray, float], BarDecision]
"""``decide(t, held, equity) -> BarDecision``: called at the close of row ``t`` of the window, with
the weights held after the bar's drift and the equity after the bar's gain (before trading)."""


@dataclass(frozen=True, slots=True, eq=False)
class StrategyPath:
    """What one strategy did over the evaluated bars (``N`` rows, warm-up excluded).

    Attributes
    ----------
    returns : ``(N,)`` net return of each bar, ``(1 + g_t) * (1 - cost * u_t) - 1``.
    holdings : ``(N, n)`` weights held after trading at each bar's close.
    turnover : ``(N,)`` traded value ``sum |target - held|`` at each close (the first bar's is the buy-in).
    hedged : ``(N,)`` whether a hedge was on after the bar's decision.
    states : ``(N,)`` trading state after the bar's decision.
    degraded : ``(N,)`` whether the decision was degraded.
    """

    returns: FloatArray
    holdings: FloatArray
    turnover: FloatArray
    hedged: NDArray[np.bool_]
    states: NDArray[np.str_]
    degraded: NDArray[np.bool_]

    @property
    def gross_exposure(self) -> FloatArray:
        """``(N,)`` gross exposure ``sum |holdings|`` held after each close."""
        out: FloatArray = np.abs(self.holdings).sum(axis=1)
        return out

    @property
    def equity(self) -> FloatArray:
        """``(N,)`` equity after each bar, starting from 1 before the first evaluated bar."""
        return np.asarray(np.cumprod(1.0 + self.returns), dtype=np.float64)


def _check_returns(returns: FloatArray) -> FloatArray:
    r = np.asarray(returns, dtype=np.float64)
    if r.ndim != 2 or r.shape[0] < 1 or r.shape[1] < 1:
        raise InvalidInputError(f"returns must be a (T, n) array with T, n >= 1, got shape {r.shape}")
    if not np.all(np.isfinite(r)) or np.any(r <= -1.0):
        raise InvalidInputError("returns must be finite and > -1")
    return r


def simulate(
    returns: FloatArray, decide: Decider, *, warmup: int = WARMUP, cost: float = COST
) -> StrategyPath:
    """Replay ``returns`` bar by bar through ``decide`` with the module's execution semantics.

    Parameters
    ----------
    returns : ``(T, n)`` simple returns of each asset over each bar (finite, > -1).
    decide : the strategy, called at every row's close (warm-up rows included, their decisions not
        traded).
    warmup : rows shown but not traded (``0 <= warmup < T``).
    cost : cost per unit of traded value, in [0, 1).

    Returns
    -------
    The :class:`StrategyPath` of the ``T - warmup`` evaluated rows.

    Examples
    --------
    Hold 100 % of one asset: buy in at the first close (10 bp), then earn its returns.

    >>> path = simulate(np.array([[0.5], [0.1], [-0.2]]), lambda t, h, e: BarDecision(np.ones(1)),
    ...                 warmup=1, cost=0.001)
    >>> path.returns.round(6).tolist(), path.turnover.tolist()
    ([-0.001, -0.2], [1.0, 0.0])
    """
    r = _check_returns(returns)
    n_rows, n = r.shape
    if not isinstance(warmup, int) or isinstance(warmup, bool) or not 0 <= warmup < n_rows:
        raise InvalidInputError(f"warmup must be an integer in [0, {n_rows}), got {warmup!r}")
    if not (isinstance(cost, float | int) and 0.0 <= cost < 1.0):
        raise InvalidInputError(f"cost must be in [0, 1), got {cost!r}")
    bars = n_rows - warmup
    net = np.zeros(bars)
    holdings = np.zeros((bars, n))
    traded = np.zeros(bars)
    hedged = np.zeros(bars, dtype=np.bool_)
    states = np.full(bars, "active", dtype="<U8")
    degraded = np.zeros(bars, dtype=np.bool_)
    held = np.zeros(n)
    equity = 1.0
    for t in range(n_rows):
        gross = float(held @ r[t])
        growth = 1.0 + gross
        if growth <= 0.0:  # ruin: the book is gone, nothing is held afterwards
            if t >= warmup:
                net[t - warmup] = -1.0
                states[t - warmup :] = "ruined"
            break
        equity *= growth
        held = held * (1.0 + r[t]) / growth
        decision = decide(t, held, equity)
        if t < warmup:
            continue
        target = np.asarray(decision.target, dtype=np.float64)
        if target.shape != (n,) or not np.all(np.isfinite(target)):
            raise InvalidInputError(f"target at row {t} must be a finite ({n},) array, got {target!r}")
        i = t - warmup
        traded[i] = float(np.abs(target - held).sum())
        kept = 1.0 - cost * traded[i]
        if kept <= 0.0:
            net[i] = -1.0
            states[i:] = "ruined"
            break
        equity *= kept
        net[i] = growth * kept - 1.0
        held = target.copy()
        holdings[i] = held
        hedged[i] = decision.hedged
        states[i] = decision.state
        degraded[i] = decision.degraded
    return StrategyPath(net, holdings, traded, hedged, states, degraded)


def book_returns(desired: FloatArray, returns: FloatArray) -> FloatArray:
    """``b_t = desired_{t-1} . r_t``: the desired book's return over each bar before costs.

    ``desired_{-1}`` is ``desired_0`` (the book held into the first row).

    Examples
    --------
    >>> desired = np.array([[0.5, 0.5], [1.0, 0.0]])
    >>> book_returns(desired, np.array([[0.02, 0.0], [0.01, 0.03]])).round(6).tolist()
    [0.01, 0.02]
    """
    d = np.asarray(desired, dtype=np.float64)
    r = np.asarray(returns, dtype=np.float64)
    if d.shape != r.shape or d.ndim != 2:
        raise InvalidInputError(f"desired must have the shape of returns {r.shape}, got {d.shape}")
    previous = np.vstack([d[:1], d[:-1]])
    out: FloatArray = np.einsum("ti,ti->t", previous, r)
    return out


def vol_target_exposure(
    book: FloatArray,
    *,
    warmup: int = WARMUP,
    lam: float = EWMA_LAMBDA,
    target: float = VOL_TARGET,
    periods_per_year: int = 252,
) -> FloatArray:
    """Exposure of the textbook vol target decided at each row's close.

    ``s2`` is the EWMA variance ``s2_{t+1} = lam * s2_t + (1 - lam) * b_t**2`` of the book's returns
    ``b`` (:func:`advanced_risk.measures.ewma_variance`), started at ``mean(b[:max(warmup, 1)]**2)``;
    the exposure decided at the close of row ``t`` is ``min(1, target / sqrt(periods_per_year *
    s2_{t+1}))``, and 1 where that variance is 0.

    Parameters
    ----------
    book : ``(T,)`` returns of the desired book (:func:`book_returns`), finite, at least 2.
    warmup, lam, target, periods_per_year : as above; ``target > 0``.

    Examples
    --------
    >>> x = vol_target_exposure(np.array([0.02, 0.0]), warmup=1, lam=0.5, target=0.1, periods_per_year=100)
    >>> x.round(6).tolist()
    [0.5, 0.707107]
    """
    from advanced_risk import measures

    b = np.asarray(book, dtype=np.float64)
    if b.ndim != 1 or b.shape[0] < 2:
        raise InvalidInputError(f"book must be a 1-D array of at least 2 returns, got shape {b.shape}")
    if not (isinstance(target, float | int) and target > 0 and math.isfinite(target)):
        raise InvalidInputError(f"target must be a finite number > 0, got {target!r}")
    head = b[: max(int(warmup), 1)]
    variance = measures.ewma_variance(b, lam, float(np.mean(head * head)))[1:]
    vol = np.sqrt(periods_per_year * variance)
    ratio = np.divide(target, vol, out=np.ones_like(vol), where=vol > 0.0)
    out: FloatArray = np.minimum(1.0, ratio)
    return out


def harness_config(config: RiskConfig | None = None) -> RiskConfig:
    """``config`` (default ``RiskConfig()``) with the four fields a reproducible replay needs.

    ``deterministic_refits=True`` (GARCH refits are waited for), ``rate_limit_per_s=None`` (no
    throttle), ``state_path=None`` (in memory) and ``deadline_ms`` at least
    :data:`HARNESS_DEADLINE_MS`; every rule setting is kept.
    """
    if config is None:
        config = RiskConfig()
    if not isinstance(config, RiskConfig):
        raise InvalidInputError(f"config must be a RiskConfig, got {type(config).__name__}")
    return dataclasses.replace(
        config,
        deterministic_refits=True,
        rate_limit_per_s=None,
        state_path=None,
        deadline_ms=max(config.deadline_ms, HARNESS_DEADLINE_MS),
    )


class ManagerDecider:
    """A :data:`Decider` that asks ``manager.manage_risk_sync`` and applies its decision.

    Parameters
    ----------
    manager : the manager (its config and policy are the caller's).
    assets : asset names, the columns of the window.
    window : the rows replayed (returns, closes, desired weights).
    pass_held : give the manager the held weights (a policy book, as ``trading_loop.py``) instead of
        the desired ones.
    """

    def __init__(
        self, manager: AdvancedRiskManager, assets: tuple[str, ...], window: BookWindow, *, pass_held: bool
    ) -> None:
        self.manager = manager
        self.assets = assets
        self.returns = window.returns
        self.prices = window.prices
        self.desired = window.desired
        self.pass_held = pass_held

    def __call__(self, t: int, held: FloatArray, equity: float) -> BarDecision:
        from advanced_risk.types import MarketState, Portfolio

        assets = self.assets
        weights = held if self.pass_held else self.desired[t]
        decision = self.manager.manage_risk_sync(
            MarketState(
                returns=dict(zip(assets, self.returns[t].tolist(), strict=True)),
                prices=dict(zip(assets, self.prices[t].tolist(), strict=True)),
            ),
            Portfolio(weights=dict(zip(assets, weights.tolist(), strict=True)), equity=equity),
        )
        rebalance = decision.rebalance_weights
        unhedged = 1.0 - decision.hedge.ratio if decision.hedge.active else 1.0
        target = np.fromiter((rebalance[a] for a in assets), dtype=np.float64, count=len(assets))
        return BarDecision(
            target * (decision.leverage * unhedged),
            hedged=decision.hedge.active,
            state=decision.trading_state.value,
            degraded=decision.degraded,
        )


class PolicyAloneDecider:
    """A :data:`Decider` trading a policy's allocation alone (``trading_loop.PolicyAlone``).

    From row ``warmup`` on it calls ``policy.rebalance(returns[: t + 1][-history:], held + cash,
    drawdown)``, the drawdown measured from its own equity's peak since the first evaluated bar; it
    holds nothing during the warm-up.
    """

    def __init__(self, policy: RLPortfolioManager, returns: FloatArray, warmup: int) -> None:
        from advanced_risk.rl import history_length

        self.policy = policy
        self.returns = returns
        self.warmup = warmup
        self.history = history_length(policy.env_config)
        self.peak = 1.0

    def __call__(self, t: int, held: FloatArray, equity: float) -> BarDecision:
        if t < self.warmup:
            return BarDecision(np.zeros_like(held))
        self.peak = max(self.peak, equity)
        weights = np.append(held, max(0.0, 1.0 - float(held.sum())))
        start = max(0, t + 1 - self.history)
        target = self.policy.rebalance(self.returns[start : t + 1], weights, 1.0 - equity / self.peak)
        return BarDecision(np.asarray(target[:-1], dtype=np.float64))


@dataclass(frozen=True, slots=True, eq=False)
class BookResult:
    """One book replayed over one period by the three strategies.

    Attributes
    ----------
    book, key : the book's name and family.
    period : ``train`` or ``test``.
    assets : the book's assets.
    dates : the evaluated bars' dates (None for synthetic paths).
    managed, unmanaged, voltarget : the three strategies' paths.
    periods_per_year : the config's bars per year (annualisation of every figure).
    seconds : wall time of the replay.
    """

    book: str
    key: str
    period: str
    assets: tuple[str, ...]
    dates: pd.DatetimeIndex | None
    managed: StrategyPath
    unmanaged: StrategyPath
    voltarget: StrategyPath
    periods_per_year: int
    seconds: float

    @property
    def bars(self) -> int:
        """Number of evaluated bars."""
        return int(self.managed.returns.shape[0])


def run_book(
    book: Book,
    config: RiskConfig | None = None,
    *,
    period: Period = "test",
    warmup: int = WARMUP,
    cost: float = COST,
    split_date: str = SPLIT_DATE,
    max_bars: int | None = None,
    risk_agents: str | Path | None = None,
) -> BookResult:
    """Replay ``book`` over ``period`` managed by ``config`` and the two baselines (see the module).

    Parameters
    ----------
    book : any :class:`~advanced_risk.evaluation.rules.books.Book`.
    config : the rules to evaluate (default ``RiskConfig()``); run through :func:`harness_config`.
    period : ``train`` (before ``split_date``) or ``test`` (from it on); a synthetic book only its own.
    warmup : bars shown to the manager before the period, not traded.
    cost : cost per unit of traded value (10 bp).
    split_date : first date of the test period.
    max_bars : evaluate only the last ``max_bars`` bars of the period (quick runs).
    risk_agents : a risk-agents model file for the managed book (``AdvancedRiskManager(...,
        risk_agents=)``); the baselines never use them.

    Raises
    ------
    InvalidInputError
        A bad config, period, warm-up or cost (named), or a period without bars.
    """
    if not isinstance(book, Book):
        raise InvalidInputError(f"book must be a Book, got {type(book).__name__}")
    cfg = harness_config(config)
    window = book_window(book, period, warmup=warmup, split_date=split_date, max_bars=max_bars)
    returns = window.returns
    started = time.perf_counter()
    if book.policy is None:
        desired = window.desired
        unmanaged = simulate(
            returns, lambda t, held, equity: BarDecision(desired[t]), warmup=warmup, cost=cost
        )
    else:
        from advanced_risk.rl.portfolio.manager import RLPortfolioManager

        alone = PolicyAloneDecider(RLPortfolioManager.load(book.policy), returns, warmup)
        unmanaged = simulate(returns, alone, warmup=warmup, cost=cost)
        desired = window.desired.copy()
        desired[warmup:] = unmanaged.holdings  # the policy's allocation is the desired book
    exposure = vol_target_exposure(
        book_returns(desired, returns), warmup=warmup, periods_per_year=cfg.periods_per_year
    )
    voltarget = simulate(
        returns, lambda t, held, equity: BarDecision(exposure[t] * desired[t]), warmup=warmup, cost=cost
    )
    from advanced_risk.manager import AdvancedRiskManager

    manager = AdvancedRiskManager(
        cfg, policy=book.policy, risk_agents=None if risk_agents is None else str(risk_agents)
    )
    try:
        decider = ManagerDecider(manager, book.assets, window, pass_held=book.policy is not None)
        managed = simulate(returns, decider, warmup=warmup, cost=cost)
    finally:
        manager.close_sync()
    return BookResult(
        book=book.name,
        key=book.key,
        period=period,
        assets=book.assets,
        dates=window.dates,
        managed=managed,
        unmanaged=unmanaged,
        voltarget=voltarget,
        periods_per_year=cfg.periods_per_year,
        seconds=time.perf_counter() - started,
    )
