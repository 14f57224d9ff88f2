"""Value objects at the API edge: what the bot passes in and what it gets back.

``MarketState`` and ``Portfolio`` are validated once, on construction (``InvalidInputError`` naming
the field and value); inside the library they are trusted. Both also build from plain dicts (a
portfolio's asset weights may sit beside its reserved keys)::

    MarketState.from_mapping({"volatility": 0.3, "trend": 0.05})
    Portfolio.from_mapping({"btc": 0.5, "eth": 0.3, "current_drawdown": 0.02})

``RiskDecision`` is frozen and also reads like a mapping (``decision["leverage"]``).

One module because these values are the bot's whole vocabulary, imported from one place, and the
outputs nest one another (``RiskDecision`` holds ``HedgeInstruction``, ``CorrelationState``,
``AgentAdvice``).
"""

from __future__ import annotations

import functools
import math
from collections.abc import ItemsView, Iterator, KeysView, Mapping, Sequence, ValuesView
from dataclasses import dataclass, field, fields
from enum import StrEnum
from types import MappingProxyType
from typing import Any

import numpy as np
import orjson
from numpy.typing import ArrayLike, NDArray

from advanced_risk.errors import InvalidInputError
from advanced_risk.measures.validation import check_finite_scalar, check_range

__all__ = [
    "MAX_PRICE",
    "AgentAdvice",
    "CorrelationState",
    "DriftStatus",
    "HedgeInstruction",
    "MarketState",
    "Portfolio",
    "RiskDecision",
    "RiskLevel",
    "StateChange",
    "TradingState",
]


class TradingState(StrEnum):
    """Whether new risk may be taken (nautilus_trader's trading states)."""

    ACTIVE = "active"
    REDUCING = "reducing"
    HALTED = "halted"


class RiskLevel(StrEnum):
    """Coarse summary of the decision's risk for dashboards and alerts."""

    LOW = "low"
    ELEVATED = "elevated"
    HIGH = "high"
    CRITICAL = "critical"


MAX_PRICE = 1e12
"""Exclusive upper bound of every price, high and low ``MarketState`` accepts. No traded instrument
is quoted near it (in any currency), so a larger value is a feed error (e.g. 1e308 from a bad
parse); let through, it would poison the ATR, the stops and the position sizes for many bars."""


MAX_ABS_WEIGHT = 1e6
"""A held weight (fraction of equity in one asset) is refused beyond ``+-1e6``: no book holds a
million times its equity in one name, and such a number is a bad parse (units instead of a
fraction, a price in the weight field). Bounding it keeps the book's variance and VaR finite, where
``1e200`` overflowed them and degraded the decision instead of refusing the bar."""


def _frozen_floats(
    values: Mapping[str, Any] | None, name: str, *, lo: float = -math.inf, hi: float = math.inf
) -> Mapping[str, float]:
    """Validate an asset -> number mapping (each value finite, in ``(lo, hi)``); return a read-only copy.

    A value beyond the float range (a Python int such as ``10**400``) is refused like inf, with
    ``InvalidInputError`` naming the field and asset, never ``OverflowError``.
    """
    if values is None:
        return MappingProxyType({})
    if not isinstance(values, Mapping):
        raise InvalidInputError(f"{name} must be a mapping of asset -> number, got {type(values).__name__}")
    out: dict[str, float] = {}
    for asset, value in values.items():
        kind = type(value)
        if type(asset) is str and asset and (kind is float or kind is np.float64 or kind is int):
            try:  # fast path (no ABC checks, no message built): plain finite numbers
                v = float(value)
            except OverflowError:  # an int beyond the float range: the slow path names it
                v = math.nan
            if lo < v < hi:  # also rejects inf (hi <= inf) and NaN
                out[asset] = v
                continue
        out[_plain_name(asset)] = _checked_float(asset, value, name, lo, hi)
    return MappingProxyType(out)


def _plain_name(name: Any) -> Any:
    """A str subclass (NumPy's ``np.str_``, an enum's str) as the plain str it holds; the journal's
    JSON encoder takes only plain str keys. Anything else as it is (refused by the caller)."""
    return str.__str__(name) if isinstance(name, str) and type(name) is not str else name


def _checked_float(asset: Any, value: Any, name: str, lo: float, hi: float = math.inf) -> float:
    """The slow path of :func:`_frozen_floats`: validate one entry, raising a precise message."""
    if not isinstance(asset, str) or not asset:
        raise InvalidInputError(f"{name} keys must be non-empty asset names, got {asset!r}")
    v = check_finite_scalar(value, f"{name}[{asset!r}]")
    if v <= lo:
        raise InvalidInputError(f"{name}[{asset!r}] must be > {lo}, got {v}")
    if v >= hi:
        raise InvalidInputError(
            f"{name}[{asset!r}] must be < {hi:g} (a larger value is a feed error), got {v:g}"
        )
    return v


def _optional(value: Any, name: str, lo: float, hi: float, *, lo_open: bool = False) -> float | None:
    return (
        None if value is None else check_range(value, name, lo, hi, lo_open=lo_open, hi_open=math.isinf(hi))
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class MarketState:
    """What the market looks like this bar.

    Attributes
    ----------
    returns : asset -> simple return of this bar (> -1). Feeds the VaR/correlation tracker.
    prices : asset -> last price (> 0 and < ``MAX_PRICE``, 1e12). Needed for stop levels and
        position sizes in units.
    high, low : asset -> bar high / low (> 0 and < ``MAX_PRICE``). With ``prices`` as the close
        they give ATR.
    volatility : summary annualised volatility (>= 0), e.g. 0.3; drives volatility-target leverage
        when per-asset returns are not given.
    trend : summary trend signal (finite, e.g. 0.05 for +5 %).
    """

    returns: Mapping[str, float] = field(default_factory=dict)
    prices: Mapping[str, float] = field(default_factory=dict)
    high: Mapping[str, float] = field(default_factory=dict)
    low: Mapping[str, float] = field(default_factory=dict)
    volatility: float | None = None
    trend: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "returns", _frozen_floats(self.returns, "market_state.returns", lo=-1.0))
        for name in ("prices", "high", "low"):
            object.__setattr__(
                self,
                name,
                _frozen_floats(getattr(self, name), f"market_state.{name}", lo=0.0, hi=MAX_PRICE),
            )
        object.__setattr__(
            self, "volatility", _optional(self.volatility, "market_state.volatility", 0.0, 100.0)
        )
        if self.trend is not None:
            object.__setattr__(self, "trend", check_finite_scalar(self.trend, "market_state.trend"))
        for asset, hi in self.high.items():
            lo = self.low.get(asset)
            if lo is not None and hi < lo:
                raise InvalidInputError(f"market_state.high[{asset!r}]={hi} is below market_state.low={lo}")

    @classmethod
    def from_arrays(
        cls,
        assets: Sequence[str],
        *,
        returns: ArrayLike | None = None,
        prices: ArrayLike | None = None,
        high: ArrayLike | None = None,
        low: ArrayLike | None = None,
        volatility: float | None = None,
        trend: float | None = None,
    ) -> MarketState:
        """Build from arrays in the order of ``assets``, for bots that hold NumPy arrays.

        Each array holds one value per asset (shape ``(len(assets),)``), converted to float64; None
        leaves the field empty. The checks are those of the constructor, vectorised (one pass per
        field), with the same messages; the result equals the constructor's on the same values:
        ``MarketState.from_arrays(names, returns=r) == MarketState(returns=dict(zip(names, r.tolist())))``.

        Raises
        ------
        InvalidInputError
            Asset names that are empty, not str or repeated; an array of another shape; a value
            that is not finite or out of its field's range; a high below its low.

        Examples
        --------
        >>> import numpy as np
        >>> MarketState.from_arrays(("a", "b"), returns=np.array([0.01, -0.02])).returns["b"]
        -0.02
        """
        names = _asset_names(assets)
        arrays = {
            field_name: None
            if values is None
            else _checked_array(values, names, f"market_state.{field_name}", lo=lo, hi=hi)
            for field_name, values, lo, hi in (
                ("returns", returns, -1.0, math.inf),
                ("prices", prices, 0.0, MAX_PRICE),
                ("high", high, 0.0, MAX_PRICE),
                ("low", low, 0.0, MAX_PRICE),
            )
        }
        hi_a, lo_a = arrays["high"], arrays["low"]
        if hi_a is not None and lo_a is not None and (hi_a < lo_a).any():
            i = int(np.flatnonzero(hi_a < lo_a)[0])
            raise InvalidInputError(
                f"market_state.high[{names[i]!r}]={hi_a[i]} is below market_state.low={lo_a[i]}"
            )
        state = object.__new__(cls)  # every field checked above: skip the per-asset checks
        for field_name, a in arrays.items():  # the engine reads the arrays back without a dict
            object.__setattr__(state, field_name, _EMPTY if a is None else ArrayMapping(names, a))
        object.__setattr__(state, "volatility", _optional(volatility, "market_state.volatility", 0.0, 100.0))
        object.__setattr__(
            state, "trend", None if trend is None else check_finite_scalar(trend, "market_state.trend")
        )
        return state

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> MarketState:
        """Build from a plain dict; unknown keys raise ``InvalidInputError`` (typos are not ignored)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise InvalidInputError(f"market_state has unknown field(s) {unknown}; known: {sorted(known)}")
        return cls(**dict(values))


_EMPTY: Mapping[str, float] = MappingProxyType({})


class ArrayMapping(Mapping[str, float]):
    """A read-only ``asset -> value`` mapping over a float64 array in the order of ``names``
    (``array``).

    What :meth:`MarketState.from_arrays` stores in each field: the engine takes the array itself
    (no dict is built and read back per bar), while the bot reads it as the dict it stands for:
    ``m[name]`` is a Python float, iteration follows ``names``, and it equals any mapping with the
    same items. The values are a read-only copy (a bot may refill its own array for the next bar).

    Examples
    --------
    >>> m = ArrayMapping(("a", "b"), np.array([0.01, -0.02]))
    >>> m["b"], list(m), m == {"a": 0.01, "b": -0.02}
    (-0.02, ['a', 'b'], True)
    """

    __slots__ = ("_index", "array", "names")

    def __init__(self, names: tuple[str, ...], values: NDArray[np.float64]) -> None:
        if values.shape != (len(names),):
            raise InvalidInputError(f"{len(names)} names and {values.shape} values do not match")
        self.names = names
        """The assets, in the order of ``values``."""
        self.array: NDArray[np.float64] = np.array(values, dtype=np.float64)  # own, read-only copy
        """The values, in the order of ``names`` (read-only)."""
        self.array.flags.writeable = False
        self._index: dict[str, int] | None = None  # built on the first lookup by name

    def __getitem__(self, key: str) -> float:
        if self._index is None:
            self._index = _positions(self.names)
        return float(self.array[self._index[key]])

    def __contains__(self, key: object) -> bool:
        if self._index is None:
            self._index = _positions(self.names)
        return key in self._index

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __len__(self) -> int:
        return len(self.names)

    def __reversed__(self) -> Iterator[str]:
        return reversed(self.names)

    def __reduce__(self) -> tuple[type[ArrayMapping], tuple[tuple[str, ...], NDArray[np.float64]]]:
        return (ArrayMapping, (self.names, self.array))  # a copy or unpickled one is read-only too

    def __repr__(self) -> str:
        return repr(self.copy())

    def copy(self) -> dict[str, float]:
        """The items as a new dict (what ``mappingproxy.copy`` gives for the dict form)."""
        return dict(zip(self.names, self.array.tolist(), strict=True))

    def keys(self) -> KeysView[str]:
        """The names as ``dict_keys`` (reversible, and its repr), as the dict form gives them."""
        return self.copy().keys()

    def values(self) -> ValuesView[float]:
        return self.copy().values()

    def items(self) -> ItemsView[str, float]:
        return self.copy().items()

    def __or__(self, other: Any) -> dict[str, float]:
        merged: dict[str, float] = self.copy() | other  # as mappingproxy: a TypeError where dict refuses
        return merged

    def __ror__(self, other: Any) -> dict[str, float]:
        merged: dict[str, float] = other | self.copy()
        return merged

    def __ior__(self, other: Any) -> ArrayMapping:
        raise TypeError("'|=' is not supported by ArrayMapping; use '|' instead")


@functools.lru_cache(maxsize=64)  # a bot sends the same asset tuple every bar
def _positions(names: tuple[str, ...]) -> dict[str, int]:
    return {name: i for i, name in enumerate(names)}


def _asset_names(assets: Sequence[Any], what: str = "market_state") -> tuple[str, ...]:
    """The checked names of ``assets`` (a sequence of str, not one str: ``"AB"`` would be read as the
    assets ``"A"`` and ``"B"``), cached per tuple; messages begin with ``what``."""
    if isinstance(assets, str | bytes):
        raise InvalidInputError(
            f"{what} assets must be a sequence of asset names, got the str {assets!r:.40} "
            f"(use [{assets!r:.40}])"
        )
    names = assets if type(assets) is tuple else tuple(assets)
    try:
        return _checked_asset_names(names, what)
    except TypeError:  # an unhashable name (a list): not a str, refused with the same message
        bad = next(name for name in names if type(name) is not str)
        raise InvalidInputError(f"{what} assets must be non-empty asset names, got {bad!r}") from None


@functools.lru_cache(maxsize=64)  # a bot sends the same asset tuple every bar
def _checked_asset_names(names: tuple[Any, ...], what: str) -> tuple[str, ...]:
    """``names`` if every one is a non-empty str and none repeats, else ``InvalidInputError``; a
    subclass of str (NumPy's ``np.str_`` from an array of names) becomes the plain str."""
    if any(type(name) is not str for name in names):
        names = tuple(_plain_name(name) for name in names)
    for name in names:
        if type(name) is not str or not name:
            raise InvalidInputError(f"{what} assets must be non-empty asset names, got {name!r}")
    if len(set(names)) != len(names):
        seen: set[str] = set()
        twice = sorted({a for a in names if a in seen or seen.add(a)})  # type: ignore[func-returns-value]
        raise InvalidInputError(f"{what} assets must be unique, got {twice} more than once")
    return names


def _checked_array(
    values: ArrayLike, assets: tuple[str, ...], name: str, *, lo: float, hi: float = math.inf
) -> NDArray[np.float64]:
    """``values`` as a float64 array of one finite value per asset in ``(lo, hi)`` (vectorised checks);
    a bad entry raises the message the mapping form gives for it."""
    if not isinstance(values, np.ndarray):
        _check_labels(values, assets, name)
        _refuse_non_numbers(values, assets, name, lo, hi)
    try:
        kind = values.dtype.kind if isinstance(values, np.ndarray) else np.asarray(values).dtype.kind
    except (TypeError, ValueError) as exc:  # a ragged sequence (a list in the list): not one number each
        raise InvalidInputError(f"{name} must be an array of numbers, got {type(values).__name__}") from exc
    if kind in "bcmMSUV":  # bools, complex, times, text: the mapping form refuses each value
        raise InvalidInputError(f"{name} must be an array of real numbers, got dtype kind {kind!r}")
    try:
        a = np.asarray(values, dtype=np.float64)
    except OverflowError as exc:  # a Python int beyond the float range (the mapping form's message)
        raise InvalidInputError(f"{name} must be finite, got a number too large for a float") from exc
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{name} must be an array of numbers, got {type(values).__name__}") from exc
    if a.shape != (len(assets),):
        raise InvalidInputError(
            f"{name} must have shape ({len(assets)},) (one value per asset, in the order of assets), "
            f"got {a.shape}"
        )
    if a.size and not (a.min() > lo and a.max() < hi):  # a NaN makes both comparisons False
        i = int(np.flatnonzero(~((a > lo) & (a < hi)))[0])
        _checked_float(assets[i], _entry(values, i, a), name, lo, hi)
    return a


def _entry(values: ArrayLike, i: int, converted: NDArray[np.float64]) -> Any:
    """Entry ``i`` as the caller gave it where the float conversion may hide it (``None`` in a list
    or an object array reads as NaN), so the message names what was sent."""
    if isinstance(values, np.ndarray) and values.dtype.kind != "O":
        return float(converted[i])
    return np.asarray(values, dtype=object).reshape(-1)[i]


def _refuse_non_numbers(values: Any, assets: tuple[str, ...], name: str, lo: float, hi: float) -> None:
    """Refuse a sequence's first entry that is not a number (a bool, text, complex, None) with the
    message the mapping form gives for it, naming the asset: converted to an array, ``True`` would
    read as 1.0 and text would be refused without saying which asset. A NumPy array is not scanned
    (its dtype says it all); a sequence of another length is left to the shape check."""
    try:
        entries = values.tolist() if hasattr(values, "tolist") else list(values)
    except TypeError:  # not a sequence (a scalar): the shape check refuses it
        return
    if not isinstance(entries, list) or len(entries) != len(assets):
        return
    for asset, value in zip(assets, entries, strict=True):
        if value is None or isinstance(value, bool | str | bytes | complex):
            _checked_float(asset, value, name, lo, hi)


def _check_labels(values: Any, assets: tuple[str, ...], name: str) -> None:
    """Refuse a labelled array (a pandas Series) whose labels are not ``assets`` in order.

    Its values are read by position, so a Series indexed by asset in another order (or by other
    assets) would give each asset another asset's value without a word. A Series with the default
    positional index (0, 1, ...) is read by position like an array.
    """
    index = getattr(values, "index", None)
    if index is None or callable(index):  # not labelled (a list's ``index`` is a method)
        return
    labels = tuple(index)
    if labels == assets or labels == tuple(range(len(labels))):
        return
    shown = list(labels[:10]) + (["..."] if len(labels) > 10 else [])
    raise InvalidInputError(
        f"{name} is labelled {shown}, not the assets in their order; values are read by position: "
        "pass it reindexed to the assets (.reindex(assets)) or as a plain array"
    )


_PORTFOLIO_FIELDS = ("current_drawdown", "equity", "peak_equity")
_RESERVED_KEYS = (*_PORTFOLIO_FIELDS, "weights")


def _normalised_key(key: str) -> str:
    return key.lower().replace("_", "").replace("-", "").replace(" ", "").replace(".", "")


def _edit_distance(a: str, b: str, limit: int) -> int:
    """Damerau-Levenshtein distance (optimal string alignment: insert, delete, substitute, swap two
    neighbours) of ``a`` and ``b``, or ``limit + 1`` as soon as it is known to exceed ``limit``."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    before: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            d = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                d = min(d, before[j - 2] + 1)
            current.append(d)
        if min(current) > limit:
            return limit + 1
        before, previous = previous, current
    return previous[-1]


@functools.lru_cache(maxsize=4096)  # the same asset names arrive every bar
def _resembled_reserved_key(key: str) -> str | None:
    """The reserved key of the flat portfolio form that ``key`` looks like a misspelling of, else None.

    Keys are compared case-insensitively, ignoring ``_``, ``-``, ``.`` and spaces. ``key`` resembles
    a reserved key when its edit distance to it (insert, delete, substitute, or swap two neighbouring
    letters: 1 each) is <= 1 for ``equity`` and ``weights``, and <= 2 for the longer ``peak_equity``
    and ``current_drawdown``. So ``current_drawdwn``, ``Equity``, ``peak-equity`` and ``weigths`` are
    rejected, while tickers such as ETH, EQT, EQIX, PEAK, SPY or BRK.B stay assets.
    """
    k = _normalised_key(key)
    for reserved in _RESERVED_KEYS:
        r = _normalised_key(reserved)
        limit = 1 if len(r) < 10 else 2
        if _edit_distance(k, r, limit) <= limit:
            return reserved
    return None


def _reject_misspelled_reserved_keys(values: Mapping[str, Any]) -> None:
    for key in values:
        if key in _RESERVED_KEYS or not isinstance(key, str):
            continue
        reserved = _resembled_reserved_key(key)
        if reserved is not None:
            raise InvalidInputError(
                f"portfolio key {key!r} looks like a misspelling of the reserved key {reserved!r} "
                f"(did you mean {reserved!r}?); an asset with this name needs the nested form "
                "{'weights': {...}}"
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class Portfolio:
    """What the bot holds now.

    Attributes
    ----------
    weights : asset -> fraction of equity (finite; negative for shorts). Cash is ``1 - sum``.
    current_drawdown : drawdown from peak equity as a fraction in [0, 1].
    equity : account equity in currency (> 0), needed for position sizes in currency and units.
    peak_equity : highest equity seen (>= equity) if the bot tracks it; else the state store does.
    """

    weights: Mapping[str, float] = field(default_factory=dict)
    current_drawdown: float = 0.0
    equity: float | None = None
    peak_equity: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(
            self,
            "weights",
            _frozen_floats(self.weights, "portfolio.weights", lo=-MAX_ABS_WEIGHT, hi=MAX_ABS_WEIGHT),
        )
        object.__setattr__(
            self,
            "current_drawdown",
            check_range(self.current_drawdown, "portfolio.current_drawdown", 0.0, 1.0),
        )
        # both > 0: sizes are fractions of the equity, drawdowns are measured from the peak
        equity = _optional(self.equity, "portfolio.equity", 0.0, math.inf, lo_open=True)
        object.__setattr__(self, "equity", equity)
        peak = _optional(self.peak_equity, "portfolio.peak_equity", 0.0, math.inf, lo_open=True)
        object.__setattr__(self, "peak_equity", peak)
        if self.equity is not None and self.peak_equity is not None and self.peak_equity < self.equity:
            raise InvalidInputError(
                f"portfolio.peak_equity ({self.peak_equity}) must be >= portfolio.equity ({self.equity})"
            )

    @classmethod
    def from_arrays(
        cls,
        assets: Sequence[str],
        weights: ArrayLike,
        *,
        current_drawdown: float = 0.0,
        equity: float | None = None,
        peak_equity: float | None = None,
    ) -> Portfolio:
        """Build from the weights as an array in the order of ``assets``, for bots that hold arrays.

        The weights are checked in one vectorised pass with the constructor's messages and kept as
        an :class:`ArrayMapping` (a read-only copy: read as the dict it stands for, and taken as an
        array by the engine without a dict per bar); the other fields as in the constructor. The
        result equals ``Portfolio(weights=dict(zip(assets, weights)), ...)`` on the same values.

        Raises
        ------
        InvalidInputError
            Asset names that are empty, not str or repeated; weights of another shape, not finite
            or beyond ``MAX_ABS_WEIGHT``; the scalar fields as the constructor refuses them.

        Examples
        --------
        >>> import numpy as np
        >>> book = Portfolio.from_arrays(("a", "b"), np.array([0.6, -0.2]), equity=1e6)
        >>> book.weights["b"], round(book.cash_weight, 10)
        (-0.2, 0.6)
        """
        names = _asset_names(assets, "portfolio")
        w = _checked_array(weights, names, "portfolio.weights", lo=-MAX_ABS_WEIGHT, hi=MAX_ABS_WEIGHT)
        book = cls(current_drawdown=current_drawdown, equity=equity, peak_equity=peak_equity)
        object.__setattr__(book, "weights", ArrayMapping(names, w))
        return book

    @property
    def cash_weight(self) -> float:
        """The weight not invested in any asset: ``1 - sum(weights)``."""
        return 1.0 - math.fsum(self.weights.values())

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> Portfolio:
        """Build from a flat dict: reserved keys are fields, every other key is an asset weight.

        The reserved keys are ``current_drawdown``, ``equity``, ``peak_equity`` and ``weights`` (a
        nested asset -> weight mapping, instead of flat asset keys). A top-level key that looks like
        a misspelled reserved key raises ``InvalidInputError`` (``"current_drawdwn"`` would otherwise
        become an asset): case-insensitive, ignoring ``_ - .`` and spaces, within edit distance 1 of
        ``equity`` / ``weights`` or 2 of ``peak_equity`` / ``current_drawdown``. Tickers such as
        ETH, EQT, EQIX, PEAK or SPY are far from all of them; an asset whose name does resemble one
        can still be given inside ``{"weights": {...}}``, where keys are not checked.
        """
        _reject_misspelled_reserved_keys(values)
        scalars = {k: values[k] for k in _PORTFOLIO_FIELDS if k in values}
        nested = values.get("weights")
        if nested is not None:
            extra = sorted(set(values) - {*_PORTFOLIO_FIELDS, "weights"})
            if extra:
                raise InvalidInputError(f"portfolio has both 'weights' and flat asset keys {extra}; use one")
            return cls(weights=nested, **scalars)
        weights = {k: v for k, v in values.items() if k not in _PORTFOLIO_FIELDS}
        return cls(weights=weights, **scalars)


@dataclass(frozen=True, slots=True)
class HedgeInstruction:
    """Whether to hedge, how much of the exposure (0..1), and why."""

    active: bool
    ratio: float
    reason: str


@dataclass(frozen=True, slots=True)
class CorrelationState:
    """Average pairwise correlation of the assets and whether a correlation shock is on."""

    average: float
    shock: bool


@dataclass(frozen=True, slots=True)
class DriftStatus:
    """How far a model's recent inputs have moved from those it was trained on.

    Attributes
    ----------
    score : the model's drift score over the monitor's window (>= 0; 0 = like training;
        docs/drift.md defines it). NaN until the window holds ``min_bars`` observations.
    threshold : the score above which the model counts as drifted.
    drifted : ``score > threshold`` (False while the score is NaN): the engine then replaces the
        model's advice by the rules and says so in an alert.
    features : the names of the features that moved most, largest first (empty when not drifted).
    """

    score: float
    threshold: float
    drifted: bool
    features: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class AgentAdvice:
    """What the risk agents advise for this bar, after gating.

    Attributes
    ----------
    scale : multiplier of the new position sizes (0..1).
    stop_multiple : stop distance in ATRs.
    trailing : whether stops trail the highest close.
    monitor : the de-risking action: ``none``, ``reduce``, ``hedge`` or ``halt`` (a request: it
        empties the book for this bar; only the rules or the kill switch change the trading state).
    cut : the monitor action's exposure cut (0, 0.25, 0.5, 1).
    uncertainty : agent -> normalised MC-dropout std.
    overridden : agent -> why the rule replaced it (empty when every agent was confident).
    drift : the agents' input drift (None when their model file has no training statistics).
    """

    scale: float
    stop_multiple: float
    trailing: bool
    monitor: str
    cut: float
    uncertainty: Mapping[str, float]
    overridden: Mapping[str, str]
    drift: DriftStatus | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values."""
        return {
            "scale": self.scale,
            "stop_multiple": self.stop_multiple,
            "trailing": self.trailing,
            "monitor": self.monitor,
            "cut": self.cut,
            "uncertainty": dict(self.uncertainty),
            "overridden": dict(self.overridden),
            "drift": None if self.drift is None else _drift_dict(self.drift),
        }


def _advice_of(data: Mapping[str, Any] | None) -> AgentAdvice | None:
    """The :class:`AgentAdvice` of :meth:`AgentAdvice.to_dict` (None for None)."""
    if data is None:
        return None
    drift = data.get("drift")
    return AgentAdvice(
        scale=_float_or_nan(data["scale"]),
        stop_multiple=_float_or_nan(data["stop_multiple"]),
        trailing=bool(data["trailing"]),
        monitor=str(data["monitor"]),
        cut=_float_or_nan(data["cut"]),
        uncertainty={str(k): _float_or_nan(v) for k, v in data["uncertainty"].items()},
        overridden={str(k): str(v) for k, v in data["overridden"].items()},
        drift=None if drift is None else _drift_of(drift),
    )


def _drift_of(data: Mapping[str, Any]) -> DriftStatus:
    return DriftStatus(
        score=_float_or_nan(data["score"]),
        threshold=_float_or_nan(data["threshold"]),
        drifted=bool(data["drifted"]),
        features=tuple(str(f) for f in data.get("features", ())),
    )


def _float_or_nan(value: Any) -> float:
    """A JSON number as a float; null (how :meth:`RiskDecision.to_json` writes NaN) as NaN."""
    return math.nan if value is None else float(value)


def _floats_map(data: Mapping[str, Any]) -> dict[str, float]:
    return {str(k): _float_or_nan(v) for k, v in data.items()}


def _drift_dict(drift: DriftStatus) -> dict[str, Any]:
    return {
        "score": drift.score,
        "threshold": drift.threshold,
        "drifted": drift.drifted,
        "features": list(drift.features),
    }


@dataclass(frozen=True, slots=True, kw_only=True)
class RiskDecision(Mapping[str, Any]):
    """The answer of ``manage_risk``: frozen, and readable as a mapping (``decision["leverage"]``).

    Attributes
    ----------
    rebalance_weights : asset -> signed target weight (negative: short), one entry per asset of the
        bar, plus ``"cash" = 1 - sum(asset weights)`` (negative when a leveraged long book borrows).
        The rules scale positions towards 0 and never flip one.
    leverage : gross exposure multiplier to apply to the weights (0 when halted).
    hedge : whether to hedge, the share of exposure to hedge (0..1) and why.
    position_sizes : asset -> largest new position in units (>= 0, in the position's direction:
        risk budget at the ATR stop, capped; needs ``portfolio.equity`` and per-asset prices; 0 while
        REDUCING or HALTED: no new positions). Absent for an asset whose ATR is not warm yet.
    stop_levels : asset -> protective (trailing) stop price: below the price for a long (rises
        only), above it for a short (falls only). The side is the sign of the target weight, else of
        the held weight, else long. Absent for an asset whose ATR is not warm yet, unless restored
        at a restart (the last journalled stop, with ``RiskConfig.state_path``).
    var, cvar : one-bar VaR / CVaR of the decided signed book (weights x leverage) at
        ``config.alpha``, positive loss fractions; NaN while there is not enough history for any
        estimate (null in JSON).
    correlation : average pairwise EWMA correlation (NaN for one asset, null in JSON) and the
        correlation-shock flag.
    risk_level, trading_state : the grading and the ACTIVE / REDUCING / HALTED state.
    uncertainty : the policy's MC-dropout uncertainty (None without a policy).
    risk_agents : what the learned risk agents advised after gating, including which agents the
        rules replaced and why (None without agents, or before they have enough history).
    alerts : short reasons worth a human's attention (state changes, faults, shocks).
    degraded : True when a component failed or missed the deadline and this is the conservative
        fallback (no new risk: previous or cash weights, leverage cut, hedge on).
    latency_ms : time from the call's start until this decision was final and handed to the journal,
        in milliseconds (the row holds the same value); ``metrics()`` reports the full call time,
        any wait for the row to be durable included.
    decision_id : the key of this decision in the journal.
    equity : ``portfolio.equity`` as given with this bar (None when not given): with the next
        decision's it gives the book's realised return that the journal's VaR backtest uses.
    drawdown : the account drawdown the rules used, in [0, 1] (the larger of the bot's and the
        store's peak-to-equity drawdown); NaN on a degraded decision made before any input was read.
    drift : model -> input drift score of the learned components that track it (``"policy"``,
        ``"risk_agents"``; None when none does). A drifted model's advice was replaced by the
        rules, with an alert naming the features that moved.
    streaks : the rules' counters after this bar: ``"loss"`` (losing bars of the held book in a
        row), ``"var_breach"`` (bars in a row whose return of the last priced book was below its
        VaR) and ``"halt_votes"`` (consecutive checks on which a halt rule fired; HALTED at
        ``halt_confirmations``). None on a decision made before any input was read. A restart
        resumes them from the journalled decision, so a streak under way still ends in its halt.
    """

    rebalance_weights: Mapping[str, float]
    leverage: float
    hedge: HedgeInstruction
    position_sizes: Mapping[str, float]
    stop_levels: Mapping[str, float]
    var: float
    cvar: float
    correlation: CorrelationState
    risk_level: RiskLevel
    trading_state: TradingState
    uncertainty: float | None = None
    risk_agents: AgentAdvice | None = None
    alerts: tuple[str, ...] = ()
    degraded: bool = False
    latency_ms: float = 0.0
    decision_id: str = ""
    equity: float | None = None
    drawdown: float = math.nan
    drift: Mapping[str, float] | None = None
    streaks: Mapping[str, int] | None = None

    def to_json(self) -> str:
        """The decision as compact JSON (enums as values, non-finite floats as null): the journal row.

        Every float that is not finite (VaR before enough history, the correlation of one asset, ...)
        is written as null.
        """
        h, c = self.hedge, self.correlation
        data = {
            "decision_id": self.decision_id,
            "rebalance_weights": dict(self.rebalance_weights),
            "leverage": self.leverage,
            "hedge": {"active": h.active, "ratio": h.ratio, "reason": h.reason},
            "position_sizes": dict(self.position_sizes),
            "stop_levels": dict(self.stop_levels),
            "var": self.var,
            "cvar": self.cvar,
            "correlation": {"average": c.average, "shock": c.shock},
            "risk_level": self.risk_level.value,
            "trading_state": self.trading_state.value,
            "uncertainty": self.uncertainty,
            "risk_agents": None if self.risk_agents is None else self.risk_agents.to_dict(),
            "alerts": list(self.alerts),
            "degraded": self.degraded,
            "latency_ms": self.latency_ms,
            "equity": self.equity,
            "drawdown": self.drawdown,
            "drift": None if self.drift is None else dict(self.drift),
            "streaks": None if self.streaks is None else dict(self.streaks),
        }
        # orjson: ~10x faster than json for the thousands of floats of a 500-asset book
        return orjson.dumps(data).decode()

    @classmethod
    def from_json(cls, text: str | bytes) -> RiskDecision:
        """The decision :meth:`to_json` wrote (a journal row), with every field; the nulls it wrote
        for non-finite floats read back as NaN (``uncertainty``, ``equity`` and ``drift`` stay None).

        Raises
        ------
        InvalidInputError
            ``text`` is not JSON, or not a decision's: the message names the field.
        """
        try:
            data = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise InvalidInputError(f"decision is not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise InvalidInputError(f"decision must be a JSON object, got {type(data).__name__}")
        field_name = "decision"
        try:
            values: dict[str, Any] = {}
            for field_name, read in _DECISION_FIELDS.items():
                if field_name in data:
                    values[field_name] = read(data[field_name])
            return cls(**values)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InvalidInputError(f"decision field {field_name!r} cannot be read: {exc!r}") from None

    def __getitem__(self, key: str) -> Any:
        if key not in self._keys():
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys())

    def __len__(self) -> int:
        return len(self._keys())

    @classmethod
    def _keys(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))


def _or_none(read: Any) -> Any:
    """``read`` for a JSON value that may be null (read back as None)."""
    return lambda v: None if v is None else read(v)


#: how :meth:`RiskDecision.from_json` reads each field of :meth:`RiskDecision.to_json`
_DECISION_FIELDS: dict[str, Any] = {
    "rebalance_weights": _floats_map,
    "leverage": _float_or_nan,
    "hedge": lambda v: HedgeInstruction(bool(v["active"]), _float_or_nan(v["ratio"]), str(v["reason"])),
    "position_sizes": _floats_map,
    "stop_levels": _floats_map,
    "var": _float_or_nan,
    "cvar": _float_or_nan,
    "correlation": lambda v: CorrelationState(_float_or_nan(v["average"]), bool(v["shock"])),
    "risk_level": RiskLevel,
    "trading_state": TradingState,
    "uncertainty": _or_none(_float_or_nan),
    "risk_agents": _advice_of,
    "alerts": lambda v: tuple(str(a) for a in v),
    "degraded": bool,
    "latency_ms": _float_or_nan,
    "decision_id": str,
    "equity": _or_none(_float_or_nan),
    "drawdown": _float_or_nan,
    "drift": _or_none(_floats_map),
    "streaks": _or_none(lambda v: {str(k): int(c) for k, c in v.items()}),
}


@dataclass(frozen=True, slots=True)
class StateChange:
    """The answer of an operator control (``engage_kill_switch``, ``resume``).

    Truthy when the trading state changed, as the plain ``bool`` these controls returned before.

    Attributes
    ----------
    changed : whether the state in memory changed now.
    durable : whether the new safety state is on the store (written within the deadline). False
        means it is queued and retried at every later call until it lands; until then decisions are
        degraded and say so when the store is failing.
    pending : a resume that is not durable yet takes effect in memory only once it is (memory is
        never less cautious than the store): True while it waits.
    """

    changed: bool
    durable: bool
    pending: bool = False

    def __bool__(self) -> bool:
        return self.changed
