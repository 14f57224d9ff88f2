"""The books the risk layer is evaluated on: bundled real data and seeded synthetic paths.

A :class:`Book` is a universe (per-bar simple returns and closes of its assets) and the strategy's
*desired* target weights, rebalanced every bar (or, for the shipped policy's book, the policy's
allocation). Every book is built from data inside the package, so an evaluation is reproducible
anywhere:

- ``stocks20``: the 20 bundled S&P 500 stocks (1990-2022), equal weight;
- ``subset1``, ``subset5``, ``subset10``: seeded random subsets of 1, 5 and 10 of those stocks,
  equal weight, named by their tickers;
- ``index``: the S&P 500 index (adjusted close, 1999-2018) held alone;
- ``long-short``: 150 % long / 50 % short across a seeded split of the 20 stocks (10 long at 15 %
  each, 10 short at -5 % each: net 100 %, gross 200 %);
- ``policy``: the 20 stocks allocated by the shipped PPO policy (``models/ppo_sp500_2012.armodel``,
  trained on data up to 2012-12-31); slow (the policy runs every bar), so not in the default set;
- synthetic: paths of :class:`~advanced_risk.rl.portfolio.market.RegimeSwitchingMarket` (bull / bear / crisis
  regimes: calm bull runs, slow bears and crashes), 5 assets, equal weight. Training paths use seeds
  ``0 .. n-1`` and test paths seeds ``1000 .. 1000 + n - 1``: the two sets never overlap, so
  defaults can be chosen on training paths only.

Real books are split by date: ``train`` is every bar before :data:`SPLIT_DATE` (2013-01-01),
``test`` every bar from it on. A synthetic book belongs to the period of its seed set.

One module because a :class:`Book`'s checks, the books built from bundled data and the windows
:func:`book_window` cuts from them are one definition of a book and of its two periods.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

import numpy as np
import pandas as pd

from advanced_risk.data import load_sp500_index, load_sp500_stocks
from advanced_risk.engine.inputs import CASH
from advanced_risk.errors import InvalidInputError
from advanced_risk.measures.validation import FloatArray

__all__ = [
    "BOOK_KEYS",
    "DEFAULT_BOOK_KEYS",
    "DEFAULT_POLICY",
    "PERIODS",
    "SPLIT_DATE",
    "SYNTHETIC_SEEDS",
    "Book",
    "BookWindow",
    "bar_frequency_warning",
    "book_window",
    "build_books",
    "date_span",
    "index_book",
    "period_bars",
    "period_side",
    "policy_book",
    "returns_and_prices",
    "stock_books",
    "synthetic_books",
]

Period = Literal["train", "test"]

SPLIT_DATE: Final = "2013-01-01"
"""First date of the test period of the real books (the shipped policy was trained before it)."""

PERIODS: Final = ("train", "test")
"""The two evaluation periods, reported separately."""

SYNTHETIC_SEEDS: Final = {"train": 0, "test": 1000}
"""First seed of each period's synthetic paths (path ``i`` of a period uses seed ``first + i``)."""

MAX_SYNTHETIC_PATHS: Final = 1000
"""Most synthetic paths per period, so the train and test seed sets stay disjoint."""

SYNTHETIC_ASSETS: Final = 5
"""Assets of each synthetic path."""

BOOK_KEYS: Final = ("stocks20", "subset1", "subset5", "subset10", "index", "long-short", "policy")
"""Every real book, by key."""

DEFAULT_BOOK_KEYS: Final = ("stocks20", "subset1", "subset5", "subset10", "index", "long-short")
"""The real books evaluated by default (``policy`` is slow: opt in)."""

DEFAULT_POLICY: Final = Path(__file__).resolve().parents[4] / "models" / "ppo_sp500_2012.armodel"
"""The shipped policy (a source checkout's ``models/`` folder)."""


@dataclass(frozen=True, slots=True, eq=False)
class Book:
    """A universe and the strategy's desired book.

    Attributes
    ----------
    key : the family (``stocks20``, ``subset5``, ``index``, ``synthetic`` ...).
    name : the unique display name (tickers for subsets, the seed for synthetic paths).
    assets : asset names, the columns of ``returns`` and ``prices``.
    returns : ``(T, n)`` simple return of each asset over bar ``t`` (finite, > -1).
    prices : ``(T, n)`` close of each asset at the end of bar ``t`` (> 0).
    weights : ``(n,)`` desired target weights (signed fractions of equity), held again after
        every bar: the unmanaged strategy rebalances to them at each close.
    dates : the date of each bar, strictly increasing (any sequence ``pandas.DatetimeIndex`` takes;
        tz-aware dates are cut at the split date's wall time in their zone); None for synthetic
        paths (they are split by seed, not date).
    split : the period a synthetic path belongs to; None for real books (split by date).
    policy : model file of an allocator passed to the manager as ``policy=``; the desired book is
        then the policy's allocation (``weights`` only seeds the vol target's warm-up).
    """

    key: str
    name: str
    assets: tuple[str, ...]
    returns: FloatArray
    prices: FloatArray
    weights: FloatArray
    dates: pd.DatetimeIndex | None = None
    split: Period | None = None
    policy: str | None = None

    def __post_init__(self) -> None:
        # lists and integer arrays become float64 arrays, any sequence of dates a DatetimeIndex
        for field_name in ("returns", "prices", "weights"):
            try:
                value = np.asarray(getattr(self, field_name), dtype=np.float64)
            except (TypeError, ValueError) as exc:
                raise InvalidInputError(f"book {self.name!r}: {field_name} must be numbers: {exc}") from exc
            object.__setattr__(self, field_name, value)
        object.__setattr__(self, "assets", tuple(self.assets))
        if self.dates is not None:
            object.__setattr__(self, "dates", _as_dates(self.dates, self.name))
        n = len(self.assets)
        if n == 0 or len(set(self.assets)) != n or not all(isinstance(a, str) and a for a in self.assets):
            raise InvalidInputError(f"book {self.name!r}: assets must be unique, non-empty strings")
        if CASH in self.assets:  # the manager's key for the cash weight: refused here, not mid-replay
            raise InvalidInputError(
                f"book {self.name!r}: asset name {CASH!r} is reserved for the cash weight; rename that asset"
            )
        for field_name in ("returns", "prices"):
            arr = getattr(self, field_name)
            if arr.ndim != 2 or arr.shape[1] != n or not np.all(np.isfinite(arr)):
                raise InvalidInputError(
                    f"book {self.name!r}: {field_name} must be a finite (T, {n}) array, got shape {arr.shape}"
                )
        if self.returns.shape != self.prices.shape:
            raise InvalidInputError(f"book {self.name!r}: returns and prices must have the same shape")
        if np.any(self.returns <= -1.0) or np.any(self.prices <= 0.0):
            raise InvalidInputError(f"book {self.name!r}: returns must be > -1 and prices > 0")
        if self.weights.shape != (n,) or not np.all(np.isfinite(self.weights)):
            raise InvalidInputError(f"book {self.name!r}: weights must be a finite ({n},) array")
        if not np.any(self.weights):
            raise InvalidInputError(
                f"book {self.name!r}: weights: at least one must be non-zero (a book holding nothing "
                "has no risk)"
            )
        if self.dates is not None and len(self.dates) != self.returns.shape[0]:
            raise InvalidInputError(f"book {self.name!r}: dates must have one entry per bar")
        if (self.dates is None) == (self.split is None):
            raise InvalidInputError(
                f"book {self.name!r}: give dates (real data) or split (synthetic), not both"
            )


def _as_dates(dates: object, name: str) -> pd.DatetimeIndex:
    """``dates`` as a strictly increasing DatetimeIndex without NaT (the periods are cut by date)."""
    try:
        index = pd.DatetimeIndex(dates)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"book {name!r}: dates must be dates: {exc}") from exc
    if index.hasnans or not (index.is_monotonic_increasing and index.is_unique):
        bad = int(np.argmax(index.isna())) if index.hasnans else int(np.argmax(np.diff(index.asi8) <= 0)) + 1
        raise InvalidInputError(
            f"book {name!r}: dates must increase strictly, no NaT: bar {bad} {index[bad]}"
        )
    return index


SESSION_SHARE: Final = 10.0
"""Most calendar time per traded time :func:`bar_frequency_warning` allows: a bar every minute of a
6.5-hour session on 252 of 365 days is 5.4 (``365.25 * 1440 / (252 * 390)``); 10 leaves room for
shorter sessions."""


def bar_frequency_warning(book: Book, periods_per_year: int) -> str | None:
    """Why ``periods_per_year`` cannot be the bars per year of ``book``'s dates, or None.

    The median spacing of the dates gives the bars a year would hold if trading never stopped,
    ``rate = 365.25 days / median spacing``; a market that trades only part of the time holds
    fewer, down to ``rate / SESSION_SHARE``. A ``periods_per_year`` above ``1.5 * rate`` (daily
    bars with a minute config, weekly bars with the default 252) or below ``rate / SESSION_SHARE``
    (minute or hourly bars with the default 252) misstates every annualised figure and the
    manager's annualised volatility. None for a synthetic book or fewer than 2 dates.

    Examples
    --------
    >>> dates = pd.date_range("2024-01-02 09:30", periods=3, freq="min")
    >>> book = Book("csv", "mine", ("A",), np.zeros((3, 1)), np.ones((3, 1)), np.ones(1), dates=dates)
    >>> bar_frequency_warning(book, 252)[:46]
    'book mine: bars 0 days 00:01:00 apart, but the'
    >>> bar_frequency_warning(book, 252 * 390) is None
    True
    """
    if book.dates is None or len(book.dates) < 2:
        return None
    spacing = pd.Series(book.dates[1:] - book.dates[:-1]).median()
    rate = pd.Timedelta(days=365.25) / spacing
    if rate / SESSION_SHARE <= periods_per_year <= 1.5 * rate:
        return None
    return (
        f"book {book.name}: bars {spacing} apart, but the config's periods_per_year is "
        f"{periods_per_year} (bars per year): every annualised figure (Sharpe, CAGR, the volatility "
        f"the manager and the vol target compare with their targets) is off; set periods_per_year "
        f"to the bars in a year (--config FILE.toml), between {rate / SESSION_SHARE:,.0f} and "
        f"{rate:,.0f} for bars this far apart"
    )


@dataclass(frozen=True, slots=True, eq=False)
class BookWindow:
    """The rows of a book one evaluation replays: ``warmup`` rows shown to the manager, then the period.

    ``returns`` / ``prices`` / ``desired`` hold ``warmup + bars`` rows; ``dates`` the dates of the
    ``bars`` evaluated rows (None for synthetic paths).
    """

    returns: FloatArray
    prices: FloatArray
    desired: FloatArray
    warmup: int
    dates: pd.DatetimeIndex | None

    @property
    def bars(self) -> int:
        """Number of evaluated bars (after the warm-up)."""
        return int(self.returns.shape[0] - self.warmup)


def returns_and_prices(closes: pd.DataFrame) -> tuple[FloatArray, FloatArray, pd.DatetimeIndex]:
    """A frame of closes (dates by assets) as a book's per-bar simple returns, closes and dates:
    bar ``t`` is the move from row ``t`` to row ``t + 1`` (the first row only prices the second)."""
    px = closes.to_numpy(dtype=np.float64)
    return px[1:] / px[:-1] - 1.0, px[1:], pd.DatetimeIndex(closes.index[1:])


def _equal_weight(key: str, name: str, closes: pd.DataFrame) -> Book:
    returns, prices, dates = returns_and_prices(closes)
    n = closes.shape[1]
    return Book(key, name, tuple(closes.columns), returns, prices, np.full(n, 1.0 / n), dates=dates)


def stock_books(seed: int = 0) -> list[Book]:
    """The books on the bundled 20 stocks: all of them, seeded subsets of 1, 5 and 10, long-short.

    Parameters
    ----------
    seed : seeds the subsets and the long/short split (``numpy.random.default_rng(seed)``).

    Returns
    -------
    ``[stocks20, subset1, subset5, subset10, long-short]``; subsets are equal weight and named by
    their tickers (in the data's column order); the long-short book holds 15 % in each of 10 seeded
    names and -5 % in each of the other 10.
    """
    closes = load_sp500_stocks()
    tickers = list(closes.columns)
    rng = np.random.default_rng(seed)
    books = [_equal_weight("stocks20", "20 stocks EW", closes)]
    for k in (1, 5, 10):
        chosen = sorted(rng.choice(len(tickers), size=k, replace=False).tolist())
        names = [tickers[i] for i in chosen]
        books.append(
            _equal_weight(f"subset{k}", f"{k} stock{'s' if k > 1 else ''}: {','.join(names)}", closes[names])
        )
    order = rng.permutation(len(tickers))
    half = len(tickers) // 2
    weights = np.empty(len(tickers))
    weights[order[:half]] = 1.5 / half
    weights[order[half:]] = -0.5 / (len(tickers) - half)
    returns, prices, dates = returns_and_prices(closes)
    books.append(
        Book("long-short", "long-short 150/50", tuple(tickers), returns, prices, weights, dates=dates)
    )
    return books


def index_book() -> Book:
    """The S&P 500 index (adjusted close, 1999-2018) held alone at weight 1."""
    closes = load_sp500_index()[["Adj Close"]].rename(columns={"Adj Close": "SPX"})
    return _equal_weight("index", "S&P 500 index", closes)


def policy_book(model: str | Path = DEFAULT_POLICY) -> Book:
    """The 20 stocks allocated by a policy file (default: the shipped ``ppo_sp500_2012.armodel``).

    Raises ``InvalidInputError`` naming ``policy`` when the file does not exist (the shipped model
    lives in a source checkout's ``models/`` folder, not in the installed package).
    """
    path = Path(model)
    if not path.is_file():
        raise InvalidInputError(f"policy: model file not found: {path}")
    book = _equal_weight("policy", f"PPO policy ({path.name})", load_sp500_stocks())
    return Book(
        book.key, book.name, book.assets, book.returns, book.prices, book.weights, book.dates, None, str(path)
    )


def synthetic_books(
    n_paths: int,
    split: Period,
    *,
    bars: int = 2520,
    warmup: int = 300,
    n_assets: int = SYNTHETIC_ASSETS,
    first_seed: int | None = None,
) -> list[Book]:
    """Equal-weight books on regime-switching paths: ``n_paths`` seeds of the ``split``'s seed set.

    Path ``i`` draws ``warmup + bars`` rows from ``RegimeSwitchingMarket(n_assets).sample_path(rng,
    ...)`` with ``rng = numpy.random.default_rng(first_seed + i)``; its closes start at 100.
    ``first_seed`` defaults to ``SYNTHETIC_SEEDS[split]``: training seeds are ``0 .. n_paths - 1``,
    test seeds ``1000 .. 1000 + n_paths - 1``. A later round of choices can be judged on fresh test
    seeds (e.g. ``first_seed=2000``); training seeds must stay below 1000 and test seeds at or
    above it, so the two sets never overlap.
    """
    from advanced_risk.rl.portfolio.market import RegimeSwitchingMarket

    if split not in PERIODS:
        raise InvalidInputError(f"split must be one of {PERIODS}, got {split!r}")
    if not isinstance(n_paths, int) or not 0 <= n_paths <= MAX_SYNTHETIC_PATHS:
        raise InvalidInputError(
            f"synthetic_paths must be an integer in [0, {MAX_SYNTHETIC_PATHS}], got {n_paths!r}"
        )
    if not isinstance(bars, int) or bars < 2:
        raise InvalidInputError(f"synthetic_bars must be an integer >= 2, got {bars!r}")
    first = SYNTHETIC_SEEDS[split] if first_seed is None else first_seed
    train_end = SYNTHETIC_SEEDS["test"]
    if (
        not isinstance(first, int)
        or isinstance(first, bool)
        or first < 0
        or (split == "train" and first + n_paths > train_end)
        or (split == "test" and first < train_end)
    ):
        raise InvalidInputError(
            f"synthetic_seed: {split} seeds must lie in "
            f"{'[0, ' + str(train_end) + ')' if split == 'train' else '[' + str(train_end) + ', ...)'}, "
            f"got {first_seed!r} for {n_paths} paths"
        )
    market = RegimeSwitchingMarket(n_assets)
    assets = tuple(f"S{i + 1}" for i in range(n_assets))
    books = []
    for i in range(n_paths):
        seed = first + i
        returns = market.sample_path(np.random.default_rng(seed), warmup + bars)
        prices = np.asarray(100.0 * np.cumprod(1.0 + returns, axis=0), dtype=np.float64)
        books.append(
            Book(
                "synthetic",
                f"synthetic seed {seed}",
                assets,
                returns,
                prices,
                np.full(n_assets, 1.0 / n_assets),
                split=split,
            )
        )
    return books


def _check_warmup(warmup: int) -> int:
    if not isinstance(warmup, int) or isinstance(warmup, bool) or warmup < 0:
        raise InvalidInputError(f"warmup must be an integer >= 0, got {warmup!r}")
    return warmup


def _split_cut(dates: pd.DatetimeIndex, split_date: str) -> int:
    """Rows of ``dates`` before ``split_date`` (a naive date is a wall time in the dates' zone;
    naive dates against an aware split date are compared in UTC)."""
    try:
        first_test = pd.Timestamp(split_date)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"split_date must be a date, got {split_date!r}") from exc
    if (tz := dates.tz) is not None:
        first_test = first_test.tz_localize(tz) if first_test.tz is None else first_test.tz_convert(tz)
    elif first_test.tz is not None:
        first_test = first_test.tz_convert(None)
    return int(dates.searchsorted(first_test))


def _period_rows(
    book: Book, period: Period, *, warmup: int, split_date: str, max_bars: int | None
) -> tuple[int, int]:
    """``(start, end)``: the rows of ``book`` a ``period`` evaluation scores (``end - start`` may be
    below 2: too few bars). Checks ``warmup``, ``period`` and ``max_bars``."""
    warmup = _check_warmup(warmup)
    if period not in PERIODS:
        raise InvalidInputError(f"period must be one of {PERIODS}, got {period!r}")
    if max_bars is not None and (not isinstance(max_bars, int) or max_bars < 2):
        raise InvalidInputError(f"max_bars must be None or an integer >= 2, got {max_bars!r}")
    total = book.returns.shape[0]
    if book.dates is None:
        if book.split != period:
            raise InvalidInputError(
                f"period: synthetic book {book.name!r} belongs to {book.split!r}, not {period!r}"
            )
        start, end = warmup, total
    else:
        cut = _split_cut(book.dates, split_date)
        start, end = (warmup, cut) if period == "train" else (max(cut, warmup), total)
    if max_bars is not None:
        start = max(start, end - max_bars)
    return start, end


def period_bars(
    book: Book,
    period: Period,
    *,
    warmup: int = 300,
    split_date: str = SPLIT_DATE,
    max_bars: int | None = None,
) -> int:
    """The bars a ``period`` evaluation of ``book`` would score (0 when it has none; at least 2 are
    needed). Arguments as :func:`book_window`, checked the same way."""
    start, end = _period_rows(book, period, warmup=warmup, split_date=split_date, max_bars=max_bars)
    return max(end - start, 0)


def period_side(period: str, split_date: str) -> str:
    """Where ``period`` lies against the split, in words: ``before 2013-01-01`` or ``from 2013-01-01 on``."""
    return f"before {split_date}" if period == "train" else f"from {split_date} on"


def date_span(book: Book) -> str:
    """The first and last dates of a dated ``book``, in words (empty for a synthetic one)."""
    if book.dates is None or len(book.dates) == 0:
        return ""
    return f"its dates run from {book.dates[0].date()} to {book.dates[-1].date()}"


def book_window(
    book: Book,
    period: Period,
    *,
    warmup: int = 300,
    split_date: str = SPLIT_DATE,
    max_bars: int | None = None,
) -> BookWindow:
    """The rows a ``period`` evaluation of ``book`` replays.

    Real books: ``train`` evaluates every bar before ``split_date`` after the first ``warmup`` bars
    of the data (the warm-up); ``test`` evaluates every bar from ``split_date`` on, preceded by the
    ``warmup`` bars before it. A synthetic path evaluates its rows after its first ``warmup`` rows,
    and only for its own ``split``. ``max_bars`` keeps only the last ``max_bars`` bars of the period
    (the warm-up is then the ``warmup`` bars before them).

    Raises ``InvalidInputError`` naming ``period`` when the book has no bar in it (or fewer than 2;
    for a dated book the message gives the split date and the book's first and last dates), or a
    synthetic path is evaluated outside its split.
    """
    start, end = _period_rows(book, period, warmup=warmup, split_date=split_date, max_bars=max_bars)
    if end - start < 2:
        where = "" if book.dates is None else f" ({period_side(period, split_date)})"
        advice = (
            ""
            if book.dates is None
            else f"; {date_span(book)}: move the split with --split-date (split_date=) or choose "
            "another period"
        )
        raise InvalidInputError(
            f"period: book {book.name!r} has {max(end - start, 0)} bar(s) in {period!r}{where} "
            f"after a warm-up of {warmup}{advice}"
        )
    rows = slice(start - warmup, end)
    returns = book.returns[rows]
    return BookWindow(
        returns=returns,
        prices=book.prices[rows],
        desired=np.broadcast_to(book.weights, returns.shape).copy(),
        warmup=warmup,
        dates=None if book.dates is None else book.dates[start:end],
    )


def build_books(
    keys: tuple[str, ...] | list[str] = DEFAULT_BOOK_KEYS,
    *,
    seed: int = 0,
    policy: str | Path = DEFAULT_POLICY,
) -> list[Book]:
    """The real books named by ``keys`` (any of :data:`BOOK_KEYS`), in that order.

    Raises ``InvalidInputError`` naming ``books`` for an unknown or repeated key.
    """
    unknown = [k for k in keys if k not in BOOK_KEYS]
    if unknown or len(set(keys)) != len(keys):
        raise InvalidInputError(
            f"books: unknown or repeated key(s) {unknown or list(keys)}; known: {list(BOOK_KEYS)}"
        )
    chosen: dict[str, Book] = {}
    if {"stocks20", "subset1", "subset5", "subset10", "long-short"} & set(keys):
        chosen.update({b.key: b for b in stock_books(seed)})
    if "index" in keys:
        chosen["index"] = index_book()
    if "policy" in keys:
        chosen["policy"] = policy_book(policy)
    return [chosen[k] for k in keys]
