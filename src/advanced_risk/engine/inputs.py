"""Validation at the manager's edge: the bot's market state and portfolio, aligned on one universe.

``parse_inputs`` accepts :class:`MarketState` / :class:`Portfolio` or plain dicts of their fields and
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
``trend``         carried for the caller's records (no rule reads it, so it is not enough
                  input on its own)
================  ===================================================================

The universe follows the bars by name. A bar's assets are the keys of its ``returns`` or ``prices``
(else, before any bar named assets, the portfolio's weights); ``"cash"`` is reserved.

- **Join**: an asset named for the first time is appended to the universe and warms up on its own
  (its ATR, stop, VaR history and correlation start at that bar).
- **Leave**: an asset an earlier bar named and this one does not leaves the universe, if not held: its
  weight at the previous bar was 0, or this bar's portfolio lists it with weight 0. Otherwise the
  bar is refused: the engine tracks assets by name and does not follow renames (a held asset that
  disappears while another appears is refused, not carried over).
- The portfolio may not hold (non-zero weight) an asset the market state does not name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeGuard

import numpy as np

from advanced_risk.errors import InvalidInputError
from advanced_risk.measures.validation import FloatArray
from advanced_risk.types import ArrayMapping, MarketState, Portfolio

__all__ = ["CASH", "MAX_BAR_RETURN", "Bar", "parse_inputs"]

CASH = "cash"
MAX_BAR_RETURN = 10.0
"""The largest simple return one bar may carry (+1000 %): beyond it the tick is a data error. One
absurd return (a price in cents read as dollars, 1e10 from a bad feed) would otherwise sit in the
tracker's EWMA covariance and FHS window for hundreds of bars, or overflow it for good."""


@dataclass(frozen=True, slots=True)
class Bar:
    """One validated bar: the inputs and their per-asset arrays in universe order.

    ``assets`` is the universe after this bar (the assets kept, in their old order, then those that
    joined, in the bar's order); ``left`` holds the indices, in the previous universe, of the assets
    that left.
    """

    market: MarketState
    portfolio: Portfolio
    assets: tuple[str, ...]
    held: FloatArray
    returns: FloatArray | None
    prices: FloatArray | None
    high: FloatArray | None
    low: FloatArray | None
    joined: tuple[str, ...] = ()
    left: tuple[int, ...] = ()

    @property
    def universe_changed(self) -> bool:
        """Whether assets joined or left at this bar."""
        return bool(self.joined or self.left)


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


def _array(values: Mapping[str, float], universe: tuple[str, ...]) -> FloatArray | None:
    """The values in universe order (every asset present); one C-level pass when the order matches,
    a copy of the array itself when the bar came as arrays (``MarketState.from_arrays``)."""
    if not values:
        return None
    if _arrays_in_order(values, universe):
        return values.array.copy()
    if len(values) == len(universe) and tuple(values) == universe:
        return np.fromiter(values.values(), dtype=np.float64, count=len(universe))
    return np.array([values[a] for a in universe], dtype=np.float64)


def _arrays_in_order(values: Mapping[str, float], universe: tuple[str, ...]) -> TypeGuard[ArrayMapping]:
    """Whether ``values`` came as an array (``from_arrays``) naming exactly ``universe``, in its order."""
    return type(values) is ArrayMapping and (values.names is universe or values.names == universe)


def _held(weights: Mapping[str, float], universe: tuple[str, ...]) -> FloatArray:
    if _arrays_in_order(weights, universe):  # Portfolio.from_arrays in the universe's order
        return weights.array.copy()
    if len(weights) == len(universe) and tuple(weights) == universe:
        return np.fromiter(weights.values(), dtype=np.float64, count=len(universe))
    return np.array([weights.get(a, 0.0) for a in universe], dtype=np.float64)


def _next_universe(
    names: tuple[str, ...], universe: tuple[str, ...] | None
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[int, ...]]:
    """(new universe, joined names, indices of the leavers in the old universe)."""
    if universe is None:
        return names, names, ()
    if names == universe:
        return universe, (), ()
    present = set(names)
    old = set(universe)
    kept = tuple(a for a in universe if a in present)
    joined = tuple(a for a in names if a not in old)
    left = tuple(i for i, a in enumerate(universe) if a not in present)
    return kept + joined, joined, left


def parse_inputs(
    market_state: MarketState | Mapping[str, Any],
    portfolio: Portfolio | Mapping[str, Any],
    universe: tuple[str, ...] | None,
    previous_held: FloatArray | None = None,
    max_assets: int = 1_000,
) -> Bar:
    """Validate one bar against the universe (see the module docstring).

    Parameters
    ----------
    market_state, portfolio : the bot's inputs (value objects or plain dicts).
    universe : the assets of earlier bars, or None before the first.
    previous_held : the held weights of the previous bar (universe order), to refuse a held asset
        that leaves.
    max_assets : the most assets a bar may name (``RiskConfig.max_assets``).
    """
    market: MarketState = _as_value(market_state, MarketState, "market_state")
    book: Portfolio = _as_value(portfolio, Portfolio, "portfolio")
    _check_market_fields(market)
    names = _bar_names(market, book, universe, max_assets)
    assets, joined, left = _next_universe(names, universe)
    _check_portfolio(book, assets, universe, previous_held, left)
    returns = _array(market.returns, assets)
    prices = _array(market.prices, assets)
    high, low = _array(market.high, assets), _array(market.low, assets)
    _check_values(market, assets, returns, prices, high, low)
    return Bar(
        market=market,
        portfolio=book,
        assets=assets,
        held=_held(book.weights, assets),
        returns=returns,
        prices=prices,
        high=high,
        low=low,
        joined=joined,
        left=left,
    )


def _same_assets(a: Mapping[str, float], b: Mapping[str, float]) -> bool:
    """Whether two per-asset fields name the same assets (in any order)."""
    if type(a) is ArrayMapping and type(b) is ArrayMapping and a.names is b.names:
        return True
    return a.keys() == b.keys()


def _check_market_fields(market: MarketState) -> None:
    """Refuse per-asset fields that name different assets, and a bar that carries nothing a rule reads.

    ``returns`` and ``prices`` name the same assets; ``high`` and ``low`` need ``prices`` (the close)
    and name its assets. Every bar needs returns, prices or volatility: one without (a feed glitch)
    would be decided on the last bar's data with nothing to say so.
    """
    if market.returns and market.prices and not _same_assets(market.returns, market.prices):
        raise InvalidInputError("market_state.returns and market_state.prices must name the same assets")
    for field, values in (("high", market.high), ("low", market.low)):
        if values and not market.prices:
            raise InvalidInputError(f"market_state.{field} needs market_state.prices (the close) as well")
        if values and not _same_assets(values, market.prices):
            raise InvalidInputError(f"market_state.{field} must name the same assets as market_state.prices")
    if not (market.returns or market.prices) and market.volatility is None:
        raise InvalidInputError(
            "market_state needs returns, prices or volatility (trend alone is read by no rule)"
        )


def _bar_names(
    market: MarketState, book: Portfolio, universe: tuple[str, ...] | None, max_assets: int
) -> tuple[str, ...]:
    """The assets the bar names: the keys of its returns or prices, else the universe so far, else
    the portfolio's weights. ``"cash"`` is refused as an asset, and so are more than ``max_assets``."""
    per_asset = market.returns or market.prices
    if per_asset and type(per_asset) is ArrayMapping:
        names = per_asset.names
    elif per_asset:
        names = tuple(per_asset)
    elif universe is not None:
        names = universe
    else:
        names = tuple(book.weights)
    if CASH in per_asset or (not per_asset and CASH in names):
        raise InvalidInputError(f"'{CASH}' is reserved for the cash weight; rename that asset")
    if len(names) > max_assets:
        raise InvalidInputError(
            f"market_state names {len(names)} assets, more than RiskConfig.max_assets={max_assets} "
            "(the per-bar work grows with the square of the universe)"
        )
    return names


def _check_values(
    market: MarketState,
    assets: tuple[str, ...],
    returns: FloatArray | None,
    prices: FloatArray | None,
    high: FloatArray | None,
    low: FloatArray | None,
) -> None:
    """Refuse a return above ``MAX_BAR_RETURN`` and a close outside its bar's ``[low, high]``."""
    if returns is not None and float(returns.max()) > MAX_BAR_RETURN:
        i = int(np.argmax(returns))
        raise InvalidInputError(
            f"market_state.returns[{assets[i]!r}]={returns[i]} is above {MAX_BAR_RETURN:g} "
            f"(+{MAX_BAR_RETURN:.0%}) in one bar: a data error"
        )
    if prices is None:
        return
    for bound, name, outside in ((low, "low", np.less), (high, "high", np.greater)):
        if bound is not None and outside(prices, bound).any():
            i = int(np.flatnonzero(outside(prices, bound))[0])
            raise InvalidInputError(
                f"market_state.prices[{assets[i]!r}]={prices[i]} is outside "
                f"[low={market.low.get(assets[i])}, high={market.high.get(assets[i])}] ({name})"
            )


def _check_portfolio(
    book: Portfolio,
    assets: tuple[str, ...],
    universe: tuple[str, ...] | None,
    previous_held: FloatArray | None,
    left: tuple[int, ...],
) -> None:
    """Refuse holdings outside the bar's assets and held assets that leave (see the module docstring)."""
    weights = book.weights
    in_bar = _arrays_in_order(weights, assets) or (
        len(weights) <= len(assets) and weights.keys() <= set(assets)
    )
    if not in_bar:
        members = set(assets)
        outside = sorted(a for a, w in weights.items() if a not in members and w != 0.0)
        if outside:
            raise InvalidInputError(
                f"portfolio.weights holds {outside} but market_state has no data for them; "
                f"the assets of this bar are {list(assets)[:20]}{' ...' if len(assets) > 20 else ''}"
            )
    if not left or universe is None or previous_held is None:
        return
    held_leavers = [
        (universe[i], float(previous_held[i]))
        for i in left
        if previous_held[i] != 0.0 and weights.get(universe[i]) != 0.0
    ]
    if held_leavers:
        raise InvalidInputError(
            f"asset(s) {[a for a, _ in held_leavers]} left the universe while held (weights "
            f"{[w for _, w in held_leavers]} at the previous bar): close a position (weight 0) before "
            "its asset leaves. Assets are tracked by name: a renamed asset is a new one, so rename "
            "only once the old one is flat"
        )
