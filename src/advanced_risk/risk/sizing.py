"""Position sizing: an ATR risk budget with stop levels (``PositionSizer``) and Kelly (``KellySizer``).

``PositionSizer`` answers "how many units may I buy so that being stopped out costs at most
``risk_per_trade`` of my equity?":

- stop distance ``d = stop_points`` if given, else ``atr_multiplier * atr``;
- units ``= min(equity * risk_per_trade / d, equity * max_position_fraction * leverage / entry_price)``,
  i.e. the risk budget, capped so one position's notional never exceeds its share of equity times the
  allowed leverage;
- the stop sits ``d`` below the entry of a long and ``d`` above the entry of a short; a trailing
  stop follows the price by the same distance and never loosens.

``KellySizer`` turns a strategy's win rate and average win/loss into a fraction of equity with
:func:`advanced_risk.measures.kelly.kelly_discrete` and
:func:`~advanced_risk.measures.kelly.fractional_kelly`: a fraction of full Kelly (half by default),
capped, and 0 on a negative edge (Kelly never sizes a short here).

Both validate their inputs (``InvalidInputError`` naming the field and value) and are otherwise pure:
no state, so one instance can serve every asset.

One module because the two sizers answer one question from two sides (the loss at the stop, the
stake given the edge) with the same input checks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from numpy.typing import ArrayLike, NDArray

from advanced_risk.config import KellyConfig, SizingConfig
from advanced_risk.errors import InvalidInputError
from advanced_risk.measures.kelly import fractional_kelly, kelly_continuous, kelly_discrete
from advanced_risk.measures.validation import (
    FloatArray,
    as_array,
    as_positive,
    check_finite_scalar,
    check_range,
    check_same_length,
)
from advanced_risk.measures.volatility import wilder_atr

__all__ = ["KellySizer", "PositionPlan", "PositionSizer", "Side"]


class Side(StrEnum):
    """Direction of a position: a long's stop is below the price, a short's above."""

    LONG = "long"
    SHORT = "short"


@dataclass(frozen=True, slots=True)
class PositionPlan:
    """A sized position and its protective stop, as :meth:`PositionSizer.plan` computes it."""

    units: float
    """Position size in units of the instrument (>= 0; the side says the direction)."""
    notional: float
    """``units * entry_price`` in currency."""
    stop_price: float
    """Protective stop level (clipped at 0 for a long whose stop distance exceeds the price)."""
    stop_distance: float
    """Distance between entry and stop in price points."""
    risk_amount: float
    """Currency lost if the stop is hit: ``units * stop_distance`` (<= the risk budget)."""
    capped: bool
    """True when the position cap (fraction x leverage), not the risk budget, set the size."""
    side: Side
    """Long or short."""


def _nonnegative(value: float, name: str) -> float:
    return check_range(value, name, 0.0, math.inf, hi_open=True)


def _positive(value: float, name: str) -> float:
    return check_range(value, name, 0.0, math.inf, lo_open=True, hi_open=True)


class PositionSizer:
    """ATR risk-budget sizing with long/short stop levels and a trailing stop.

    Parameters
    ----------
    risk_per_trade : fraction of equity at risk per position, in (0, 1] (0.02 = 2 %).
    atr_multiplier : stop distance in ATRs when ``stop_points`` is not given (> 0).
    max_position_fraction : cap on a position's notional as a fraction of equity, before leverage (> 0).
    atr_period : Wilder period used by :meth:`latest_atr`.
    config : a :class:`~advanced_risk.config.SizingConfig`; when given, the other arguments are ignored.

    Raises
    ------
    ConfigError
        (an ``InvalidInputError``) naming every bad argument and its value.

    Examples
    --------
    Risk 2 % of 10,000 with a 2-ATR stop (ATR 2.5, so 5 points): 200 / 5 = 40 units.

    >>> sizer = PositionSizer(risk_per_trade=0.02, atr_multiplier=2.0)
    >>> sizer.calculate_size(10_000, atr=2.5, entry_price=100.0)
    40.0
    >>> sizer.stop_level(100.0, atr=2.5), sizer.stop_level(100.0, atr=2.5, side="short")
    (95.0, 105.0)
    """

    __slots__ = ("_config",)

    def __init__(
        self,
        risk_per_trade: float = 0.02,
        atr_multiplier: float = 2.0,
        max_position_fraction: float = 1.0,
        atr_period: int = 14,
        *,
        config: SizingConfig | None = None,
    ) -> None:
        self._config = config or SizingConfig(
            risk_per_trade=risk_per_trade,
            atr_multiplier=atr_multiplier,
            max_position_fraction=max_position_fraction,
            atr_period=atr_period,
        )

    @classmethod
    def from_config(cls, config: SizingConfig) -> PositionSizer:
        """Build from a validated :class:`~advanced_risk.config.SizingConfig`."""
        return cls(config=config)

    @property
    def config(self) -> SizingConfig:
        """The settings in use (frozen)."""
        return self._config

    def __repr__(self) -> str:
        return f"PositionSizer({self._config!r})"

    def stop_distance(self, atr: float, stop_points: float | None = None) -> float:
        """Distance between entry and stop: ``stop_points`` if given, else ``atr_multiplier * atr``.

        Raises
        ------
        InvalidInputError
            If ``atr`` is negative or not finite, ``stop_points`` is not > 0, or the distance is 0
            (zero ATR and no ``stop_points``): a zero distance would mean an unbounded size.
        """
        a = _nonnegative(atr, "atr")
        if stop_points is not None:
            return _positive(stop_points, "stop_points")
        distance = self._config.atr_multiplier * a
        if distance <= 0.0:
            raise InvalidInputError(f"atr must be > 0 when stop_points is not given, got {a}")
        return distance

    def calculate_size(
        self,
        balance: float,
        atr: float,
        entry_price: float,
        stop_points: float | None = None,
        *,
        leverage: float = 1.0,
    ) -> float:
        """Units to trade so that a stop-out loses at most ``risk_per_trade * balance``.

        ``min(balance * risk_per_trade / d, balance * max_position_fraction * leverage / entry_price)``
        with ``d`` from :meth:`stop_distance`. A zero balance or zero leverage gives 0.

        Parameters
        ----------
        balance : account equity in currency (>= 0).
        atr : current average true range in price points (>= 0).
        entry_price : price at which the position is opened (> 0).
        stop_points : explicit stop distance in price points (> 0); overrides the ATR stop.
        leverage : leverage allowed now (>= 0), e.g. from volatility targeting; scales the cap only.

        Examples
        --------
        The cap binds: a 1-point stop would allow 200 units (20,000), but one position may hold at
        most 50 % of equity x 1.0 leverage = 5,000, i.e. 50 units at 100.

        >>> PositionSizer(max_position_fraction=0.5).calculate_size(10_000, 0.0, 100.0, stop_points=1.0)
        50.0
        """
        return self.plan(balance, atr, entry_price, stop_points=stop_points, leverage=leverage).units

    def plan(
        self,
        balance: float,
        atr: float,
        entry_price: float,
        *,
        side: Side | str = Side.LONG,
        stop_points: float | None = None,
        leverage: float = 1.0,
    ) -> PositionPlan:
        """Size a position and place its stop in one call (see :meth:`calculate_size`)."""
        b = _nonnegative(balance, "balance")
        price = _positive(entry_price, "entry_price")
        lev = _nonnegative(leverage, "leverage")
        s = _as_side(side)
        distance = self.stop_distance(atr, stop_points)
        by_risk = b * self._config.risk_per_trade / distance
        by_cap = b * self._config.max_position_fraction * lev / price
        units = min(by_risk, by_cap)
        if not math.isfinite(units):
            raise InvalidInputError(
                f"position size overflows (balance {b}, stop distance {distance}, entry_price {price})"
            )
        return PositionPlan(
            units=units,
            notional=units * price,
            stop_price=_stop(price, distance, s),
            stop_distance=distance,
            risk_amount=units * distance,
            capped=by_cap < by_risk,
            side=s,
        )

    def plan_many(
        self,
        balance: float,
        atr: ArrayLike,
        entry_price: ArrayLike,
        *,
        short: ArrayLike | None = None,
        leverage: float = 1.0,
    ) -> tuple[FloatArray, FloatArray]:
        """Vectorised :meth:`plan` for many assets at once (ATR stops): ``(units, stop_prices)``.

        ``balance`` and ``leverage`` apply to each position separately (each is capped at
        ``max_position_fraction * leverage`` of the balance). ``short`` is an optional mask of
        booleans (or 0/1 integers), or of :class:`Side` values / their strings ``"long"`` and
        ``"short"``; unmarked assets are long. About as fast for 20 assets as one scalar :meth:`plan`.

        Raises
        ------
        InvalidInputError
            If shapes differ, a value is not finite, an ATR is <= 0 or a price <= 0 (index named),
            or ``short`` holds anything else (a NaN, another string: a protective stop on the wrong
            side of the price is never guessed).
        """
        b = _nonnegative(balance, "balance")
        lev = _nonnegative(leverage, "leverage")
        a = as_positive(atr, "atr")
        price = as_positive(entry_price, "entry_price")
        check_same_length("atr", a, "entry_price", price)
        distance = self._config.atr_multiplier * a
        with np.errstate(over="ignore"):  # an overflow is refused just below
            units = np.minimum(
                b * self._config.risk_per_trade / distance,
                b * self._config.max_position_fraction * lev / price,
            )
        if not np.isfinite(units).all():
            i = int(np.argmin(np.isfinite(units)))
            raise InvalidInputError(f"position size overflows at index {i} (balance {b}, atr {a[i]})")
        if short is None:
            return units, np.maximum(price - distance, 0.0)
        mask = _short_mask(short, price.shape)
        return units, np.where(mask, price + distance, np.maximum(price - distance, 0.0))

    def stop_level(
        self,
        entry_price: float,
        atr: float,
        side: Side | str = Side.LONG,
        stop_points: float | None = None,
    ) -> float:
        """Initial stop: ``entry - d`` for a long (not below 0), ``entry + d`` for a short."""
        price = _positive(entry_price, "entry_price")
        return _stop(price, self.stop_distance(atr, stop_points), _as_side(side))

    def update_trailing_stop(
        self,
        current_stop: float,
        price: float,
        atr: float,
        side: Side | str = Side.LONG,
        stop_points: float | None = None,
    ) -> float:
        """Move a trailing stop with the price; it only ever tightens.

        Long: ``max(current_stop, price - d)``. Short: ``min(current_stop, price + d)``. A
        ``current_stop`` of 0 means no stop yet on either side (a short's stop at 0 would be hit at
        every price), so the first call places it at ``price -/+ d``.

        Examples
        --------
        >>> sizer = PositionSizer(atr_multiplier=2.0)
        >>> sizer.update_trailing_stop(95.0, price=110.0, atr=2.5)   # price rose: stop follows
        105.0
        >>> sizer.update_trailing_stop(105.0, price=101.0, atr=2.5)  # price fell: stop stays
        105.0
        >>> sizer.update_trailing_stop(0.0, price=100.0, atr=2.5, side="short")  # no stop yet
        105.0
        """
        stop = _nonnegative(current_stop, "current_stop")
        p = _positive(price, "price")
        s = _as_side(side)
        candidate = _stop(p, self.stop_distance(atr, stop_points), s)
        if s is Side.LONG:
            return max(stop, candidate)
        return candidate if stop == 0.0 else min(stop, candidate)

    @staticmethod
    def stop_hit(stop_price: float, price: float, side: Side | str = Side.LONG) -> bool:
        """Whether ``price`` has reached the stop (long: at or below it; short: at or above it)."""
        stop = _nonnegative(stop_price, "stop_price")
        p = _positive(price, "price")
        return p <= stop if _as_side(side) is Side.LONG else p >= stop

    def latest_atr(self, high: ArrayLike, low: ArrayLike, close: ArrayLike) -> float:
        """The last Wilder ATR(``atr_period``) value of the bars (TA-Lib's convention).

        Raises
        ------
        InvalidInputError
            If the bars are invalid or fewer than ``atr_period + 1`` (no ATR yet).
        """
        atr = wilder_atr(high, low, close, n=self._config.atr_period)
        last = float(atr[-1])
        if not math.isfinite(last):
            n = self._config.atr_period
            raise InvalidInputError(f"close needs at least {n + 1} bars for ATR({n}), got {atr.shape[0]}")
        return last


def _as_side(side: Side | str) -> Side:
    try:
        return Side(side)
    except ValueError:
        raise InvalidInputError(f"side must be 'long' or 'short', got {side!r}") from None


def _stop(price: float, distance: float, side: Side) -> float:
    return max(price - distance, 0.0) if side is Side.LONG else price + distance


class KellySizer:
    """Fractional, capped Kelly sizing of a repeated bet, as a fraction of equity.

    ``size = clip(fraction * (p - (1 - p) / b), 0, cap)`` with ``b = avg_win / avg_loss``.

    Parameters
    ----------
    fraction : share of full Kelly used, in (0, 1] (0.5 = half-Kelly).
    cap : largest fraction of equity returned (>= 0).
    config : a :class:`~advanced_risk.config.KellyConfig`; when given, the other arguments are ignored.

    Examples
    --------
    60 % winners that win as much as the losers lose: full Kelly 0.2, half-Kelly 0.1.

    >>> round(KellySizer(fraction=0.5, cap=0.25).size(win_rate=0.6, avg_win=1.0, avg_loss=1.0), 12)
    0.1
    >>> KellySizer().size(0.4, 1.0, 1.0)  # negative edge: no position
    0.0
    """

    __slots__ = ("_config",)

    def __init__(
        self, fraction: float = 0.5, cap: float = 0.25, *, config: KellyConfig | None = None
    ) -> None:
        self._config = config or KellyConfig(fraction=fraction, cap=cap)

    @classmethod
    def from_config(cls, config: KellyConfig) -> KellySizer:
        """Build from a validated :class:`~advanced_risk.config.KellyConfig`."""
        return cls(config=config)

    @property
    def config(self) -> KellyConfig:
        """The settings in use (frozen)."""
        return self._config

    def __repr__(self) -> str:
        return f"KellySizer({self._config!r})"

    def size(self, win_rate: float, avg_win: float, avg_loss: float) -> float:
        """Fraction of equity for a bet won with probability ``win_rate``.

        Parameters
        ----------
        win_rate : probability of a winning trade, in [0, 1].
        avg_win : average gain of a winning trade (> 0).
        avg_loss : average loss of a losing trade as a positive magnitude (> 0).

        A ratio ``b = avg_win / avg_loss`` beyond the float range takes Kelly's limit rather than
        an error about a ``win_loss_ratio`` the caller never passed: ``b`` overflowing to inf gives
        full Kelly ``p``; ``b`` underflowing to 0 (or so small that ``(1 - p) / b`` overflows) gives
        0 unless ``p`` is 1 (a fraction of minus infinity, clipped at 0; a sure win is 1 for every
        ``b``).

        Examples
        --------
        >>> KellySizer(cap=1.0).size(0.6, 1e308, 1e-308), KellySizer().size(0.5, 5e-324, 1e300)
        (0.3, 0.0)
        """
        p = check_range(win_rate, "win_rate", 0.0, 1.0)
        w = _positive(avg_win, "avg_win")
        loss = _positive(avg_loss, "avg_loss")
        b = w / loss
        if b == math.inf:  # the loss term (1 - p) / b is 0
            return self._apply(p)
        if p == 1.0:
            return self._apply(1.0)
        if b == 0.0 or not math.isfinite((1.0 - p) / b):  # full Kelly -> -inf: no position
            return 0.0
        return self._apply(kelly_discrete(p, b))

    def size_continuous(self, mu: float, sigma: float) -> float:
        """Fraction of equity for Gaussian returns: ``clip(fraction * mu / sigma**2, 0, cap)``."""
        return self._apply(kelly_continuous(mu, sigma))

    def size_from_trades(self, pnls: ArrayLike) -> float:
        """Estimate win rate and average win/loss from past trade P&Ls, then :meth:`size` them.

        Zero P&Ls count as neither win nor loss. No winners gives 0; no losers gives full Kelly
        ``p = 1``, i.e. ``min(fraction, cap)`` (a small sample without losses is not an edge of
        infinite size). The averages are scaled by the largest magnitude first, so P&Ls near the
        float limit (whose sum overflows) still give their finite mean.
        """
        x = as_array(pnls, "pnls", ndim=1)
        wins, losses = x[x > 0.0], x[x < 0.0]
        decided = wins.shape[0] + losses.shape[0]
        if wins.shape[0] == 0:
            return 0.0
        if losses.shape[0] == 0:
            return self._apply(1.0)
        return self.size(wins.shape[0] / decided, _mean(wins), _mean(-losses))

    def _apply(self, full_kelly: float) -> float:
        f = check_finite_scalar(full_kelly, "full_kelly")
        return fractional_kelly(f, self._config.fraction, self._config.cap)


def _mean(x: FloatArray) -> float:
    """``np.mean`` of positive values; where its sum overflows, ``max * mean(x / max)`` instead."""
    with np.errstate(over="ignore"):
        mean = float(np.mean(x))
    if math.isfinite(mean):
        return mean
    top = float(x.max())
    return top * float(np.mean(x / top))


def _short_mask(short: ArrayLike, shape: tuple[int, ...]) -> NDArray[np.bool_]:
    """``short`` as a boolean mask of ``shape``: booleans, 0/1 integers or ``Side`` strings."""
    raw = np.asarray(short)
    if raw.shape != shape:
        raise InvalidInputError(f"short must have shape {shape} like entry_price, got {raw.shape}")
    if raw.dtype.kind == "b":
        return raw
    if raw.dtype.kind in "iu" and np.isin(raw, (0, 1)).all():
        return raw.astype(bool)
    if raw.dtype.kind in "UO":
        text = raw.astype(str)
        if np.isin(text, (Side.LONG.value, Side.SHORT.value)).all():
            mask: NDArray[np.bool_] = text == Side.SHORT.value
            return mask
    raise InvalidInputError(f"short must hold booleans, 0/1 or 'long'/'short' (Side), got {short!r}"[:300])
