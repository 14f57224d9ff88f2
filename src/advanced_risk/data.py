"""Load and validate price and OHLCV tables; the bundled real data sets.

Two real daily data sets ship inside the package (see ``datasets/SOURCES.md`` for sources and
licences): adjusted closes of 20 large S&P 500 stocks (1990-2022) and the S&P 500 index OHLCV
(1999-2018). The loaders verify each file's SHA-256 before parsing it.

``validate_prices`` and ``validate_ohlcv`` accept a DataFrame or a CSV path (optionally compressed:
``.gz``, ``.bz2``, ``.xz``, ``.zip``) and either return a clean, date-indexed float DataFrame or
raise :class:`~advanced_risk.errors.DataValidationError` naming the row (date) and column at fault.
A file that cannot be read at all (missing, unreadable, a directory, empty, truncated or corrupt
compression) raises the same error naming the file, never a raw ``EOFError``, ``zlib.error`` or
``OSError``. Nothing is silently fixed: bad rows are refused, never dropped or filled.
"""

from __future__ import annotations

import hashlib
import io
import lzma
import math
import tarfile
import warnings
import zipfile
import zlib
from importlib import resources
from os import PathLike
from typing import Final

import numpy as np
import pandas as pd

from advanced_risk.errors import DataIntegrityError, DataValidationError

__all__ = [
    "DATASETS",
    "READ_ERRORS",
    "check_header",
    "error_name",
    "load_sp500_index",
    "load_sp500_stocks",
    "parse_dates",
    "sha256_of",
    "validate_ohlcv",
    "validate_prices",
]

DATASETS: Final[dict[str, str]] = {
    "sp500_stocks_daily.csv.gz": "ee21cac28befb1d0a739a9ceb22184f995394726aa0cfde9a21941d1ac04ac0d",
    "sp500_index_ohlcv.csv.gz": "1e028cbb9c400cc018c816ccc439b33c919387e726c3ed5ca2c05c82746059de",
}
"""Bundled file name -> SHA-256 of its bytes."""

OHLC_COLUMNS: Final = ("Open", "High", "Low", "Close")

TableSource = pd.DataFrame | str | PathLike[str]


def sha256_of(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def _read_bundled(name: str) -> bytes:
    data = (resources.files("advanced_risk") / "datasets" / name).read_bytes()
    digest = sha256_of(data)
    if digest != DATASETS[name]:
        raise DataIntegrityError(f"bundled data set {name} has SHA-256 {digest}, expected {DATASETS[name]}")
    return data


def load_sp500_stocks() -> pd.DataFrame:
    """Adjusted daily closes of 20 S&P 500 stocks, 1990-01-02 to 2022-12-28 (8,313 rows).

    Returns a DataFrame indexed by ``Date`` with one float column per ticker, validated by
    :func:`validate_prices`.
    """
    raw = pd.read_csv(io.BytesIO(_read_bundled("sp500_stocks_daily.csv.gz")), compression="gzip")
    return validate_prices(raw)


def load_sp500_index() -> pd.DataFrame:
    """S&P 500 index daily OHLCV with ``Adj Close``, 1999-01-04 to 2018-12-31 (5,031 rows).

    Returns a DataFrame indexed by ``Date`` with columns Open, High, Low, Close, Adj Close, Volume,
    validated by :func:`validate_ohlcv`.
    """
    raw = pd.read_csv(io.BytesIO(_read_bundled("sp500_index_ohlcv.csv.gz")), compression="gzip")
    return validate_ohlcv(raw)


READ_ERRORS: Final = (
    OSError,  # unreadable, a directory, a bad gzip header (gzip.BadGzipFile), bz2 data errors
    EOFError,  # a truncated .gz / .bz2 / .xz
    ValueError,  # pandas' ParserError and EmptyDataError, UnicodeDecodeError, "Multiple files in ZIP"
    zlib.error,  # corrupt deflate data inside a .gz or .zip
    lzma.LZMAError,
    zipfile.BadZipFile,
    tarfile.TarError,
    ImportError,  # a compression whose codec is not installed (.zst without zstandard)
)
"""What reading a table file can raise; each becomes ``DataValidationError`` naming the file."""


def _as_frame(source: TableSource, what: str) -> pd.DataFrame:
    """The table itself, or the CSV at ``source`` read (compression inferred from the suffix).

    Every read error (missing, unreadable, a directory, empty, not CSV, a truncated or corrupt
    compressed file, a codec that is not installed) raises ``DataValidationError`` naming the file,
    with the underlying error as ``__cause__``.
    """
    if isinstance(source, pd.DataFrame):
        return source.copy()
    try:
        frame = pd.read_csv(source)
        header = pd.read_csv(source, header=None, nrows=1, dtype=str, keep_default_na=False)
    except FileNotFoundError as exc:
        raise DataValidationError(f"{what} file not found: {source}") from exc
    except READ_ERRORS as exc:
        raise DataValidationError(
            f"{what} file {source} cannot be read as CSV: {error_name(exc)}: {exc}"
        ) from exc
    check_header([str(name) for name in header.iloc[0]] if len(header) else [], what, source)
    return frame


def check_header(names: list[str], what: str, source: object, *, skip: int = 0) -> None:
    """Refuse a header with an empty or repeated name: pandas would rename them (``Unnamed: 1``,
    ``A.1``) and those invented names would become asset names (in a model file, in a report).

    ``names`` is the header row as written; its first ``skip`` columns (an index column that may be
    unnamed) are not checked. Raises ``DataValidationError`` naming ``what``, ``source`` and the
    column (numbered from 1, as in the file).
    """
    stripped = [name.strip() for name in names]
    empty = [i for i, name in enumerate(stripped) if not name and i >= skip]
    if empty:
        raise DataValidationError(f"{what} file {source}: column {empty[0] + 1} of the header has no name")
    seen: set[str] = set()
    for name in stripped[skip:]:
        if name in seen:
            raise DataValidationError(
                f"{what} file {source}: column name {name!r} appears twice in the header"
            )
        seen.add(name)


def error_name(exc: BaseException) -> str:
    """The exception's class name, qualified where the bare name says nothing (``zlib.error``).

    Examples
    --------
    >>> import zlib
    >>> error_name(zlib.error("bad")), error_name(ValueError("bad"))
    ('zlib.error', 'ValueError')
    """
    kind = type(exc)
    return f"{kind.__module__}.{kind.__name__}" if kind.__name__ == "error" else kind.__name__


DATE_COLUMN_NAMES: Final = ("date", "datetime", "timestamp", "time")
"""Names (any case) a table's date column may have; ``Date`` is the bundled files' own."""


def _date_column(df: pd.DataFrame) -> str | None:
    """The first column whose name is one of :data:`DATE_COLUMN_NAMES` in any case, or None."""
    for column in df.columns:
        if isinstance(column, str) and column.strip().lower() in DATE_COLUMN_NAMES:
            return column
    return None


def stamp_text(stamp: pd.Timestamp) -> str:
    """A row's time for a message or a setting: the day alone at midnight (daily bars), else ISO 8601.

    Examples
    --------
    >>> stamp_text(pd.Timestamp("2015-01-02")), stamp_text(pd.Timestamp("2015-01-02 14:30"))
    ('2015-01-02', '2015-01-02T14:30:00')
    """
    return stamp.date().isoformat() if stamp == stamp.normalize() else stamp.isoformat()


def impossible_move(returns: np.ndarray, max_abs: float = math.inf) -> tuple[int, int] | None:
    """``(row, column)`` of the first simple return (row-major) that is not finite, a total loss
    (``<= -1``: valid prices whose ratio rounds to zero) or above ``max_abs``; None if there is none.

    Positive finite prices can still give such a return (``1e-300`` to ``1e300``), which no market
    makes: callers refuse the table naming the column and date.
    """
    bad = ~np.isfinite(returns) | (returns <= -1.0) | (returns > max_abs)
    if not bad.any():
        return None
    row, col = np.argwhere(bad)[0]
    return int(row), int(col)


def _naive_utc(dates: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """Dates with a time zone as naive UTC (the splits compare against naive dates); naive kept."""
    return dates if dates.tz is None else dates.tz_convert("UTC").tz_localize(None)


_OFFSET_AT_END: Final = r"\d:\d{2}(?::\d{2}(?:[.,]\d+)?)?\s*(?:[zZ]|UTC|[+-]\d{2}(?::?\d{2})?)\s*$"
"""A time of day with its zone at the end of a stamp: ``14:30Z``, ``14:30:00+01:00``, ``00:00-0500``."""

_MIXED_ZONES: Final = (
    "mixes times with a time zone and times without one: give every row its zone "
    "(e.g. 2015-01-02T14:30:00Z) or none"
)


def _to_datetime(values: pd.Series, **kwargs: object) -> pd.Series:
    """``pandas.to_datetime`` of ``values``, raising ``ValueError`` where pandas 2 returns objects
    (offsets that change within the column) instead of raising as pandas 3 does."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # pandas' note on the day-first format it guessed
        warnings.simplefilter("ignore", FutureWarning)  # pandas 2: mixed offsets, handled below
        out: pd.Series = pd.to_datetime(values, **kwargs)  # type: ignore[call-overload]
    if not pd.api.types.is_datetime64_any_dtype(out.dtype):
        raise ValueError("Mixed timezones detected")
    return out


def parse_dates(values: pd.Series | pd.Index, where: str, *, missing_ok: bool = False) -> pd.DatetimeIndex:
    """A column (or index) of dates as a DatetimeIndex, each row read in the same format.

    Datetimes (NumPy or pyarrow-backed, dates or stamps of any resolution) are kept. Text is read
    as ISO 8601 (``2015-01-02``, ``2015-01-02 14:30``, ``2015-01-02T14:30:00Z``: times of day may
    come and go), else in the one format pandas infers from the first row (``30/12/2019`` is
    day-first, and so is every row after it; ``01/02/2020`` is month-first unless a later row such
    as ``13/02/2020`` only reads day-first). Stamps whose UTC offsets change within the column (a
    local zone across daylight saving) are read as instants in UTC. Rows of formats that differ
    are read one by one only where that is unambiguous: a day-first ``02/01/2020`` among
    ``2020-01-03`` rows could be 2 January or 1 February and is refused.

    Raises ``DataValidationError`` beginning with ``where``: a value that is not a date, a row
    without a date (named by its 0-based row; NaT instead with ``missing_ok``), numbers (Unix
    times: seconds or milliseconds?), naive stamps mixed with stamps carrying a zone, or an
    ambiguous mixture of formats.
    """
    series = pd.Series(values, copy=False).reset_index(drop=True)
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        parsed = pd.to_datetime(series)
    elif pd.api.types.is_numeric_dtype(series.dtype):
        raise DataValidationError(
            f"{where} holds numbers, not dates (Unix times are ambiguous: seconds or milliseconds; "
            "write them as dates, e.g. 2015-01-02 or 2015-01-02T14:30:00Z)"
        )
    else:
        parsed = _parse_text_dates(series, where)
    missing = np.flatnonzero(parsed.isna().to_numpy())
    if missing.size and not missing_ok:
        raise DataValidationError(f"{where}: row {int(missing[0])} has no date")
    return pd.DatetimeIndex(parsed)


def _parse_text_dates(series: pd.Series, where: str) -> pd.Series:
    # {}: the one format pandas infers from row 0, month first where it cannot tell (01/02/2020);
    # a day-first column whose first rows could be either (01/01/2018 .. 13/01/2018) is read next
    attempts: tuple[dict[str, object], ...] = ({"format": "ISO8601"}, {}, {"dayfirst": True})
    for kwargs in attempts:
        try:
            return _to_datetime(series, **kwargs)
        except (ValueError, TypeError) as exc:
            if "Mixed timezones" not in str(exc):
                continue
            text = series.dropna().astype(str)
            if not text.str.contains(_OFFSET_AT_END, regex=True).all():
                raise DataValidationError(f"{where} {_MIXED_ZONES}") from exc
            try:
                return _to_datetime(series, utc=True, **kwargs)
            except (ValueError, TypeError):
                continue
    try:  # rows in differing formats: each read alone, both ways round for day and month
        month_first = _to_datetime(series, format="mixed", dayfirst=False)
        day_first = _to_datetime(series, format="mixed", dayfirst=True)
    except (ValueError, TypeError) as exc:
        if "Mixed timezones" in str(exc):
            raise DataValidationError(f"{where} {_MIXED_ZONES}") from exc
        raise DataValidationError(f"{where} holds a value that is not a date ({exc})") from exc
    # year first (2020-01-02) is never day first, though dateutil's dayfirst reads it as 1 February
    year_first = series.astype(str).str.match(r"\s*\d{4}[-/.]\d{1,2}[-/.]\d{1,2}").to_numpy(dtype=bool)
    ambiguous = (month_first != day_first).to_numpy() & month_first.notna().to_numpy() & ~year_first
    differ = np.flatnonzero(ambiguous)
    if differ.size:
        i = int(differ[0])
        raise DataValidationError(
            f"{where} mixes date formats, and row {i} ({series.iloc[i]!r}) reads as "
            f"{month_first.iloc[i].date()} or {day_first.iloc[i].date()}: write the dates in one "
            "format, e.g. ISO 8601 (2015-01-02)"
        )
    return month_first


def _with_date_index(df: pd.DataFrame, what: str) -> pd.DataFrame:
    column = _date_column(df)
    if column is not None:
        dates = parse_dates(df[column], f"{what}: column {column!r}").rename("Date")
        df = df.drop(columns=column).set_index(_naive_utc(dates))
    elif isinstance(df.index, pd.DatetimeIndex) or pd.api.types.is_datetime64_any_dtype(df.index.dtype):
        # a pyarrow-backed index (timestamp[us][pyarrow], date32[pyarrow]) is no DatetimeIndex
        df = df.set_axis(_naive_utc(parse_dates(df.index, f"{what}: the index")), axis=0)
    else:
        raise DataValidationError(
            f"{what} needs a date column (named Date, Datetime, Timestamp or Time, any case) or a "
            f"DatetimeIndex; found columns {list(df.columns)[:8]}"
        )
    if len(df) < 2:
        raise DataValidationError(f"{what} needs at least 2 rows, got {len(df)}")
    duplicated = df.index.duplicated()
    if duplicated.any():
        raise DataValidationError(
            f"{what}: duplicate date {df.index[duplicated][0].date()} in the date column"
        )
    backwards = np.flatnonzero(np.diff(df.index.to_numpy().astype(np.int64)) < 0)
    if backwards.size:
        i = int(backwards[0]) + 1
        raise DataValidationError(
            f"{what}: dates must increase, row {i} ({df.index[i].date()}) "
            f"comes after {df.index[i - 1].date()}"
        )
    return df


def _numeric(df: pd.DataFrame, what: str) -> pd.DataFrame:
    for col in df.columns:
        values = pd.to_numeric(df[col], errors="coerce")
        bad = values.isna() & df[col].notna()
        if bad.any():
            row = df.index[bad.to_numpy()][0]
            raise DataValidationError(
                f"{what}: non-numeric value {df.at[row, col]!r} in column {col!r} at {row.date()}"
            )
        df[col] = values.astype(np.float64)
    return df


def _first_bad(df: pd.DataFrame, mask: np.ndarray, what: str, problem: str) -> None:
    if mask.any():
        r, c = np.argwhere(mask)[0]
        col = df.columns[c]
        raise DataValidationError(
            f"{what}: {problem} in column {col!r} at row {r} ({df.index[r].date()}), "
            f"got {df.to_numpy()[r, c]}"
        )


def validate_prices(source: TableSource, *, what: str = "prices") -> pd.DataFrame:
    """Validate a wide price table (Date + one column per asset).

    Accepts a DataFrame (with a ``Date`` column or a DatetimeIndex) or a CSV path. Refuses
    duplicate or decreasing dates, non-numeric cells, NaN/inf and non-positive prices, naming the
    row and column.
    """
    df = _numeric(_with_date_index(_as_frame(source, what), what), what)
    if df.shape[1] == 0:
        raise DataValidationError(f"{what} needs at least one price column")
    values = df.to_numpy()
    _first_bad(df, ~np.isfinite(values), what, "NaN or inf")
    _first_bad(df, values <= 0, what, "non-positive price")
    return df


def validate_ohlcv(source: TableSource, *, what: str = "ohlcv") -> pd.DataFrame:
    """Validate an OHLCV table: Date, Open, High, Low, Close, optional Adj Close and Volume.

    Refuses missing columns, duplicate or decreasing dates, NaN/inf, non-positive prices,
    ``High < max(Open, Close)``, ``Low > min(Open, Close)`` and negative volume, naming the row and
    column at fault.
    """
    df = _numeric(_with_date_index(_as_frame(source, what), what), what)
    missing = [c for c in OHLC_COLUMNS if c not in df.columns]
    if missing:
        raise DataValidationError(f"{what}: missing column(s) {missing}; found {list(df.columns)}")
    _first_bad(df, ~np.isfinite(df.to_numpy()), what, "NaN or inf")
    prices = [c for c in (*OHLC_COLUMNS, "Adj Close") if c in df.columns]
    _first_bad(df[prices], df[prices].to_numpy() <= 0, what, "non-positive price")
    o, h, low, c = (df[k].to_numpy() for k in OHLC_COLUMNS)
    high_bad = h < np.maximum(o, c)
    if high_bad.any():
        r = int(np.flatnonzero(high_bad)[0])
        raise DataValidationError(
            f"{what}: High below max(Open, Close) in column 'High' at row {r} ({df.index[r].date()}), "
            f"got High={h[r]}, Open={o[r]}, Close={c[r]}"
        )
    low_bad = low > np.minimum(o, c)
    if low_bad.any():
        r = int(np.flatnonzero(low_bad)[0])
        raise DataValidationError(
            f"{what}: Low above min(Open, Close) in column 'Low' at row {r} ({df.index[r].date()}), "
            f"got Low={low[r]}, Open={o[r]}, Close={c[r]}"
        )
    if "Volume" in df.columns:
        _first_bad(df[["Volume"]], df[["Volume"]].to_numpy() < 0, what, "negative volume")
    return df
