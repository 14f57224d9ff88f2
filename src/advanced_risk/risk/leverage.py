"""Volatility-target leverage: lever up in calm markets, down in turbulent ones, and cut on shocks.

::

    target = min(target_volatility, relative_target * long_run_vol)   (relative_target set)
    L = clip(target / realised_vol, min_leverage, max_leverage)
    L = max(min_leverage, L * trend_factor)        while the strategy is below its trend
    L = max(min_leverage, L * shock_factor)        while a correlation shock is on

``target_volatility`` and ``realised_vol`` must be in the same units (both annualised, say).
``long_run_vol`` is the book's own long-run volatility (:class:`LongRunVolatility`, the mean of its
conditional variance over ``relative_halflife`` bars), so the relative target holds a book calmer
than ``target_volatility`` at ``relative_target`` of its own risk on average; it only ever lowers
the target, so it is never less cautious than ``target_volatility`` alone.

Properties (tested): the result always lies in ``[min_leverage, max_leverage]``; it is
non-increasing in ``realised_vol``; a shock or a trend cut never raises it. The trend (the
strategy's reference book below the moving average of its log equity) is followed by
:class:`~advanced_risk.risk.strategy_drawdown.StrategyDrawdown`; this rule only applies the cut.
Zero realised volatility gives ``max_leverage`` (the limit of the formula, capped), a deliberate,
documented choice: a flat price series is the calmest market there is. A NaN, infinite or
negative volatility is refused with ``InvalidInputError``: it is a data fault, and levering up on
it (e.g. 10x at a negative volatility) is the one answer that must never come out.
"""

from __future__ import annotations

import math

from advanced_risk.config import LeverageConfig
from advanced_risk.errors import InvalidInputError
from advanced_risk.measures.validation import check_flag, check_range, halflife_decay

__all__ = ["LongRunVolatility", "VolatilityTargetLeverage", "volatility_target_leverage"]


def volatility_target_leverage(
    realised_vol: float,
    target_volatility: float = 0.15,
    *,
    min_leverage: float = 0.0,
    max_leverage: float = 2.0,
    correlation_shock: bool = False,
    shock_factor: float = 0.5,
) -> float:
    """Leverage that scales the book to ``target_volatility``, capped, cut on a correlation shock.

    Parameters
    ----------
    realised_vol : current volatility estimate (>= 0, finite).
    target_volatility : volatility aimed at (> 0), same units as ``realised_vol``.
    min_leverage, max_leverage : bounds of the result, ``0 <= min_leverage <= max_leverage``.
    correlation_shock : whether the correlation-shock flag is up.
    shock_factor : multiplier in [0, 1] applied while the shock is on.

    Raises
    ------
    InvalidInputError
        If ``realised_vol`` is NaN, infinite or negative, or a setting is out of range.

    Examples
    --------
    >>> volatility_target_leverage(0.30, 0.15)     # twice the target vol: half the exposure
    0.5
    >>> volatility_target_leverage(0.05, 0.15)     # 3x would exceed the cap
    2.0
    >>> volatility_target_leverage(0.30, 0.15, correlation_shock=True)
    0.25
    """
    config = LeverageConfig(
        target_volatility=target_volatility,
        min_leverage=min_leverage,
        max_leverage=max_leverage,
        shock_factor=shock_factor,
    )
    return VolatilityTargetLeverage(config).leverage(realised_vol, correlation_shock=correlation_shock)


class VolatilityTargetLeverage:
    """Stateless volatility-target leverage rule built from a :class:`~advanced_risk.config.LeverageConfig`.

    Examples
    --------
    >>> rule = VolatilityTargetLeverage(LeverageConfig(target_volatility=0.1, max_leverage=3.0))
    >>> rule.leverage(0.2), rule.leverage(0.0), rule.leverage(0.2, correlation_shock=True)
    (0.5, 3.0, 0.25)
    >>> rule.leverage(0.2, below_trend=True, correlation_shock=True)  # trend_factor 0.5, then the shock
    0.125
    """

    __slots__ = ("_config",)

    def __init__(self, config: LeverageConfig | None = None) -> None:
        self._config = config or LeverageConfig()

    @property
    def config(self) -> LeverageConfig:
        """The settings in use (frozen)."""
        return self._config

    def __repr__(self) -> str:
        return f"VolatilityTargetLeverage({self._config!r})"

    def target(self, long_run_vol: float | None = None) -> float:
        """The volatility aimed at: ``target_volatility``, lowered to ``relative_target *
        long_run_vol`` when ``relative_target`` is set and ``long_run_vol`` is known (not None).

        ``long_run_vol`` is None (not known yet) or a finite volatility >= 0, checked whether or not
        ``relative_target`` is set. 0 is a valid value (:class:`LongRunVolatility` of a book that
        has only seen flat prices): the target is then 0, so the leverage is ``min_leverage``
        (``max_leverage`` if the realised volatility is 0 too, the formula's limit). NaN, inf, a
        negative value or a non-number raise ``InvalidInputError`` naming ``long_run_vol``: ignoring
        them would silently fall back to the full absolute target.
        """
        cfg = self._config
        if long_run_vol is None:
            return cfg.target_volatility
        long_run = check_range(long_run_vol, "long_run_vol", 0.0, math.inf, hi_open=True)
        if cfg.relative_target is None:
            return cfg.target_volatility
        return min(cfg.target_volatility, cfg.relative_target * long_run)

    def leverage(
        self,
        realised_vol: float,
        *,
        correlation_shock: bool = False,
        below_trend: bool = False,
        long_run_vol: float | None = None,
    ) -> float:
        """Leverage for this volatility (see the module docstring for the formula).

        ``below_trend`` (the strategy below its trend) applies ``trend_factor``; ``long_run_vol``
        (the book's long-run volatility, same units) lowers the target when ``relative_target`` is
        set (:meth:`target`).

        Raises
        ------
        InvalidInputError
            If ``realised_vol`` is NaN, infinite or negative (``"realised_vol must be ..."``), or
            ``long_run_vol`` is neither None nor a finite number >= 0 (``"long_run_vol must be
            ..."``, see :meth:`target`), or a flag is not a bool (``"correlation_shock must be a
            bool"``: the string ``'no'`` is truthy).
        """
        vol = check_range(realised_vol, "realised_vol", 0.0, math.inf, hi_open=True)
        below_trend = check_flag(below_trend, "below_trend")
        correlation_shock = check_flag(correlation_shock, "correlation_shock")
        cfg = self._config
        target = self.target(long_run_vol)
        raw = math.inf if vol == 0.0 else target / vol
        lev = min(max(raw, cfg.min_leverage), cfg.max_leverage)
        if below_trend:
            lev = max(cfg.min_leverage, lev * cfg.trend_factor)
        if correlation_shock:
            lev = max(cfg.min_leverage, lev * cfg.shock_factor)
        return float(lev)  # a bound given as an int (max_leverage=3) came back as the int 3


class LongRunVolatility:
    """The book's long-run volatility: the square root of the mean of its conditional variance.

    ::

        S_t = a S_{t-1} + sigma_t ** 2        W_t = a W_{t-1} + 1        a = 0.5 ** (1 / halflife)
        long_run_vol_t = sqrt(S_t / W_t)

    A bias-corrected exponential mean: the first values are averaged with equal weight rather than
    one of them seeding the average for ``halflife`` bars, so a noisy first estimate (a tracker two
    bars old) fades as the next ones come. Until the first update the value is None. A NaN, infinite
    or negative volatility is refused (``InvalidInputError``), as by the leverage rule, and so is one
    whose square overflows (above ~1e154; it made the long-run volatility inf, nothing changed).

    Examples
    --------
    >>> lr = LongRunVolatility(halflife=1)  # a = 0.5
    >>> lr.value is None
    True
    >>> lr.update(0.1)
    0.1
    >>> round(lr.update(0.2), 6)  # sqrt((0.5 * 0.01 + 0.04) / 1.5)
    0.173205
    """

    __slots__ = ("_decay", "_sum", "_weight")

    def __init__(self, halflife: int = 500) -> None:
        self._decay = halflife_decay(halflife, "halflife")
        self._sum = 0.0
        self._weight = 0.0

    @property
    def value(self) -> float | None:
        """The long-run volatility, or None before the first update."""
        return math.sqrt(self._sum / self._weight) if self._weight else None

    def state(self) -> tuple[float, float]:
        """``(sum, weight)``: the decayed sum of squared volatilities and of weights, what
        :meth:`from_state` rebuilds it from exactly (a graceful restart's snapshot)."""
        return self._sum, self._weight

    @classmethod
    def from_state(cls, halflife: int, total: float, weight: float) -> LongRunVolatility:
        """The long-run volatility :meth:`state` described (``ValueError`` unless both are finite
        and >= 0)."""
        if not (math.isfinite(total) and math.isfinite(weight) and total >= 0.0 and weight >= 0.0):
            raise ValueError(f"not a LongRunVolatility state: sum {total}, weight {weight}")
        out = cls(halflife)
        out._sum, out._weight = float(total), float(weight)
        return out

    def update(self, vol: float) -> float:
        """Enter this bar's conditional volatility; returns the long-run volatility."""
        vol = check_range(vol, "vol", 0.0, math.inf, hi_open=True)
        total = self._decay * self._sum + vol * vol
        if not math.isfinite(total):  # vol above ~1e154: its square overflows to inf
            raise InvalidInputError(
                f"vol must be below ~1e154 (its square overflows the float range), got {vol:g}"
            )
        self._sum = total
        self._weight = self._decay * self._weight + 1.0
        return math.sqrt(self._sum / self._weight)
