"""Validation at the manager's edge: the bot's market state and portfolio, aligned on one universe.

``parse_inputs`` accepts :class:`MarketState` / :class:`Portfolio` or the seed's plain dicts and
returns a :class:`Bar` whose per-asset arrays follow the universe's order. It only reads: a bad
input raises :class:`~advanced_risk.errors.InvalidInputError` naming the field and value, and no
state anywhere has changed.

What each market field enables:

================  ===================================================================
field             enables
================  ===================================================================
``returns``       the RiskTracker (VaR/CVaR, EWMA correlation, shock flag), the policy's
                  history, VaR-breach and loss streaks, volatility-target leverage
                  (each in (-1, ``MAX_BAR_RETURN`` = 10])
``prices``        stop levels and position sizes in units; returns when ``returns`` is
                  absent (from consecutive prices); ATR from close-to-close moves
``high``/``low``  a true ATR (with ``prices`` as the close) for stops and sizes
``volatility``    leverage and a Gaussian VaR before the tracker has enough history
``trend``         carried for the caller's records (no rule uses it yet)
================  ===================================================================

The universe is fixed by the first bar that names assets (its ``returns`` or ``prices`` keys, else
the portfolio's weights); later bars must name exactly those assets, and ``"cash"`` is reserved.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from advanced_risk.errors import InvalidInputError
from advanced_risk.measures._validation import FloatArray
from advanced_risk.types import MarketState, Portfolio

__all__ = ["CASH", "MAX_BAR_RETURN", "Bar", "parse_inputs"]

CASH = "cash"
MAX_BAR_RETURN = 10.0
"""The largest simple return one bar may carry (+1000 %): beyond it the tick is a data error. One
absurd return (a price in cents read as dollars, 1e10 from a bad feed) would otherwise sit in the
tracker's EWMA covariance and FHS window for hundreds of bars, or overflow it for good."""


@dataclass(frozen=True, slots=True)
class Bar:
    """One validated bar: the inputs and their per-asset arrays in universe order."""

    market: MarketState
    portfolio: Portfolio
    assets: tuple[str, ...]
    held: FloatArray
    returns: FloatArray | None
    prices: FloatArray | None
    high: FloatArray | None
    low: FloatArray | None


def _as_value(value: Any, kind: type[MarketState] | type[Portfolio], name: str) -> Any:
    if isinstance(value, kind):
        return value
    if not isinstance(value, Mapping):
        raise InvalidInputError(f"{name} must be a {kind.__name__} or a dict, got {type(value).__name__}")
    if not value:
        raise InvalidInputError(f"{name} is empty; it needs at least one field")
    for key in value:
        if not isinstance(key, str):
            raise InvalidInputError(f"{name} keys must be strings, got {key!r}")
    return kind.from_mapping(value)


def _same_assets(field: str, given: Mapping[str, float], universe: tuple[str, ...]) -> None:
    unknown = sorted(set(given) - set(universe))
    if unknown:
        raise InvalidInputError(f"{field} names unknown asset(s) {unknown}; the universe is {list(universe)}")
    missing = [a for a in universe if a not in given]
    if missing:
        raise InvalidInputError(f"{field} is missing asset(s) {missing}; every bar must name all of them")


def _array(values: Mapping[str, float], universe: tuple[str, ...]) -> FloatArray | None:
    if not values:
        return None
    return np.array([values[a] for a in universe], dtype=np.float64)


def parse_inputs(
    market_state: MarketState | Mapping[str, Any],
    portfolio: Portfolio | Mapping[str, Any],
    universe: tuple[str, ...] | None,
    expected_assets: int | None = None,
    has_history: bool = False,
) -> Bar:
    """Validate one bar against the universe (see the module docstring).

    Parameters
    ----------
    market_state, portfolio : the bot's inputs (value objects or plain dicts).
    universe : the assets fixed by earlier bars, or None before the first.
    expected_assets : the number of assets the policy was trained on, if a policy is used.
    has_history : whether an earlier bar carried prices (a bar may then switch to prices only).
    """
    market: MarketState = _as_value(market_state, MarketState, "market_state")
    book: Portfolio = _as_value(portfolio, Portfolio, "portfolio")
    per_asset = market.returns or market.prices
    if market.returns and market.prices and set(market.returns) != set(market.prices):
        raise InvalidInputError("market_state.returns and market_state.prices must name the same assets")
    for field, values in (("high", market.high), ("low", market.low)):
        if values and not market.prices:
            raise InvalidInputError(f"market_state.{field} needs market_state.prices (the close) as well")
        if values and set(values) != set(market.prices):
            raise InvalidInputError(f"market_state.{field} must name the same assets as market_state.prices")
    if universe is None:
        universe = tuple(per_asset) if per_asset else tuple(book.weights)
    if CASH in universe:
        raise InvalidInputError(f"'{CASH}' is reserved for the cash weight; rename that asset")
    for field, values in (("market_state.returns", market.returns), ("market_state.prices", market.prices)):
        if values:
            _same_assets(field, values, universe)
    unknown = sorted(set(book.weights) - set(universe))
    if unknown:
        raise InvalidInputError(
            f"portfolio.weights names unknown asset(s) {unknown}; the universe is {list(universe)}"
        )
    if expected_assets is not None and per_asset and len(universe) != expected_assets:
        raise InvalidInputError(
            f"the policy was trained on {expected_assets} assets, market_state names {len(universe)}"
        )
    if (market.high or market.low) and market.prices:  # either bound alone is checked too
        for a in universe:
            lo, hi = market.low.get(a, -np.inf), market.high.get(a, np.inf)
            if not lo <= market.prices[a] <= hi:
                raise InvalidInputError(
                    f"market_state.prices[{a!r}]={market.prices[a]} is outside "
                    f"[low={market.low.get(a)}, high={market.high.get(a)}]"
                )
    for a, r in market.returns.items():
        if r > MAX_BAR_RETURN:
            raise InvalidInputError(
                f"market_state.returns[{a!r}]={r} is above {MAX_BAR_RETURN:g} (+{MAX_BAR_RETURN:.0%}) "
                "in one bar: a data error"
            )
    if not per_asset and market.volatility is None and market.trend is None and not has_history:
        raise InvalidInputError("market_state needs returns, prices, volatility or trend")
    held = np.array([book.weights.get(a, 0.0) for a in universe], dtype=np.float64)
    return Bar(
        market=market,
        portfolio=book,
        assets=universe,
        held=held,
        returns=_array(market.returns, universe),
        prices=_array(market.prices, universe),
        high=_array(market.high, universe),
        low=_array(market.low, universe),
    )
