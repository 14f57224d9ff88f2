"""Volatility-target leverage: lever up in calm markets, down in turbulent ones, and cut on shocks.

::

    L = clip(target_volatility / realised_vol, min_leverage, max_leverage)
    L = max(min_leverage, L * trend_factor)        while the strategy is below its trend
    L = max(min_leverage, L * shock_factor)        while a correlation shock is on

``target_volatility`` and ``realised_vol`` must be in the same units (both annualised, say).

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
from advanced_risk.measures.validation import check_range

__all__ = ["VolatilityTargetLeverage", "volatility_target_leverage"]


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

    def leverage(
        self, realised_vol: float, *, correlation_shock: bool = False, below_trend: bool = False
    ) -> float:
        """Leverage for this volatility (see the module docstring for the formula).

        ``below_trend`` (the strategy below its trend) applies ``trend_factor``.

        Raises
        ------
        InvalidInputError
            If ``realised_vol`` is NaN, infinite or negative (``"realised_vol must be ..."``).
        """
        vol = check_range(realised_vol, "realised_vol", 0.0, math.inf, hi_open=True)
        cfg = self._config
        raw = math.inf if vol == 0.0 else cfg.target_volatility / vol
        lev = min(max(raw, cfg.min_leverage), cfg.max_leverage)
        if below_trend:
            lev = max(cfg.min_leverage, lev * cfg.trend_factor)
        if correlation_shock:
            lev = max(cfg.min_leverage, lev * cfg.shock_factor)
        return lev
