"""A bot's own book from a CSV of closes, for the evaluation harness (``evaluate-rules --prices``).

Whether a book is better off through the manager is a question about the bot's own data; this
module reads that data into a :class:`~advanced_risk.evaluation.rules.books.Book` the harness
replays like the bundled books.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from advanced_risk.data import check_header, impossible_move, parse_dates, stamp_text
from advanced_risk.engine.inputs import CASH
from advanced_risk.errors import InvalidInputError
from advanced_risk.evaluation.rules.books import Book, returns_and_prices
from advanced_risk.measures.validation import MAX_ABS_RETURN, FloatArray

__all__ = ["csv_book"]


def _check_moves(returns: FloatArray, closes: pd.DataFrame, file: Path) -> None:
    """Refuse a bar whose return is a total loss or beyond :data:`MAX_ABS_RETURN`, naming the
    column and date: a close that is a tiny number (``1e-300``) is a feed or unit error."""
    found = impossible_move(returns, MAX_ABS_RETURN)
    if found is not None:
        row, col = found
        px = closes.to_numpy(dtype=np.float64)
        before, after = px[row, col], px[row + 1, col]
        raise InvalidInputError(
            f"prices: {file}: column {closes.columns[col]!s} moves from {before:g} to {after:g} on "
            f"{stamp_text(closes.index[row + 1])} (a return of {returns[row, col]:g}): a close in other "
            "units or a bad print"
        )


def _cut_by(first: pd.Series, rows: int) -> str:
    """What leaves a file of ``rows`` rows short, from each column's ``first`` close date: the
    columns without any close, else those listed last, else the file's length."""
    never = [str(c) for c, d in first.items() if pd.isna(d)]
    if never:
        return f"columns {never} have no close"
    latest = first.max()
    if latest == first.min():
        return f"the file has {rows} rows"
    late = [str(c) for c, d in first.items() if d == latest]
    return f"columns {late} have no close before {stamp_text(latest)}"


def csv_book(
    path: str | Path, weights: FloatArray | list[float] | None = None, *, name: str | None = None
) -> Book:
    """A bot's own book from a CSV of closes: the first column the dates, one column per asset.

    Parameters
    ----------
    path : the CSV file (a header row of asset names; the first column's values parse as dates).
    weights : the desired target weights, signed fractions of equity, one per asset column in the
        file's order (default: equal weight, ``1 / n`` each); held again after every bar.
    name : display name (default ``"<file stem>"``).

    NaN policy: rows before every asset has its first close are dropped (the harness replays a
    fixed universe); a missing close after that is the previous close carried forward (a bar with
    no print earns 0). A close that is not a positive number, a file that cannot be read, fewer
    than 3 rows left or weights of another length raise ``InvalidInputError`` naming the file and
    the field, as do a repeated date, a row without a date, all-zero weights and a bar whose return
    is a total loss or beyond ``MAX_ABS_RETURN`` (a close of ``1e-300``: named by column and date);
    a bad close is named by column and date. Dates may come in any order (they are sorted) and
    may carry a time zone (a split date is then read in that zone; offsets that change within the
    file, a local zone across daylight saving, are read in UTC).

    Examples
    --------
    >>> import tempfile, os
    >>> text = "date,A,B\\n2020-01-01,10,20\\n2020-01-02,11,\\n2020-01-03,12,21\\n"
    >>> with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False) as fh:
    ...     _ = fh.write(text)
    >>> book = csv_book(fh.name, [1.5, -0.5]); os.unlink(fh.name)
    >>> book.assets, book.returns.round(4).tolist()      # B's missing close: carried, return 0
    (('A', 'B'), [[0.1, 0.0], [0.0909, 0.05]])
    """
    file = Path(path)
    try:
        with warnings.catch_warnings():  # pandas' date-format guess on a first column of non-dates
            warnings.simplefilter("ignore", UserWarning)
            warnings.simplefilter("ignore", FutureWarning)  # mixed UTC offsets: handled below
            frame = pd.read_csv(file, index_col=0, parse_dates=[0])
            header = pd.read_csv(file, header=None, nrows=1, dtype=str, keep_default_na=False)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise InvalidInputError(f"prices: cannot read {file} as a CSV of closes: {exc}") from exc
    # a repeated or empty asset name would be renamed by pandas (A.1, Unnamed: 2): refused
    check_header([str(name) for name in header.iloc[0]] if len(header) else [], "prices", file, skip=1)
    if CASH in (str(c) for c in frame.columns):
        raise InvalidInputError(f"prices: {file}: column {CASH!r} is reserved for the cash weight; rename it")
    text = not isinstance(frame.index, pd.DatetimeIndex) and not pd.api.types.is_numeric_dtype(frame.index)
    if text and frame.shape[0] > 0:
        # what read_csv leaves as text: stamps with UTC offsets that change (a local zone across
        # daylight saving; read as instants, in UTC), ISO stamps with and without a time of day,
        # rows in several formats (refused where day and month could swap), or no dates at all
        frame.index = parse_dates(frame.index, f"prices: {file}: the first column", missing_ok=True)
    if frame.shape[0] == 0 and frame.shape[1] > 0:
        raise InvalidInputError(f"prices: {file}: no data rows (only a header)")
    if frame.shape[1] > 0 and pd.api.types.is_numeric_dtype(frame.index):
        raise InvalidInputError(
            f"prices: {file}: the first column holds numbers, not dates (Unix times are ambiguous: "
            "seconds or milliseconds; write them as dates, e.g. 2015-01-02 or 2015-01-02T14:30:00Z)"
        )
    if frame.shape[1] == 0 or not isinstance(frame.index, pd.DatetimeIndex):
        raise InvalidInputError(
            f"prices: {file} needs dates in its first column and one close column per asset"
        )
    if frame.index.hasnans:  # a row whose date is empty (or a time pandas could not place)
        row = int(np.argmax(frame.index.isna())) + 1
        raise InvalidInputError(f"prices: {file}: data row {row} (after the header) has no date")
    closes = frame.apply(pd.to_numeric, errors="coerce").astype(np.float64)
    # a cell that is there but is no positive finite number (text, 0, a negative, inf)
    wrong = ((closes <= 0.0) | np.isinf(closes) | (closes.isna() & frame.notna())).to_numpy()
    if wrong.any():
        row, col = (int(i[0]) for i in np.nonzero(wrong))
        columns = [str(c) for c, w in zip(closes.columns, wrong.any(axis=0), strict=True) if w]
        raise InvalidInputError(
            f"prices: {file}: closes must be positive numbers; columns {columns} (first: "
            f"{closes.columns[col]!s} on {stamp_text(closes.index[row])} is {frame.iat[row, col]!s})"
        )
    duplicated = closes.index.duplicated()
    if duplicated.any():
        raise InvalidInputError(
            f"prices: {file}: duplicate date {stamp_text(closes.index[duplicated][0])} in the first column"
        )
    closes = closes.sort_index()
    rows = len(closes)
    first = closes.apply(pd.Series.first_valid_index)  # each asset's first close (NaN: none at all)
    closes = closes.ffill().dropna()
    if closes.shape[0] < 3:
        raise InvalidInputError(
            f"prices: {file}: fewer than 3 rows where every asset has a close ({_cut_by(first, rows)})"
        )
    n = closes.shape[1]
    w = np.full(n, 1.0 / n) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != (n,) or not np.all(np.isfinite(w)):
        raise InvalidInputError(
            f"weights: {n} finite numbers expected (one per column of {file}), got {w.tolist()}"
        )
    if not np.any(w):  # named as the command line's --weights (Book names the book)
        raise InvalidInputError("weights: at least one must be non-zero (a book holding nothing has no risk)")
    returns, prices, dates = returns_and_prices(closes)
    _check_moves(returns, closes, file)
    return Book(
        "csv", name or file.stem, tuple(str(c) for c in closes.columns), returns, prices, w, dates=dates
    )
