"""Dates in users' tables, as pandas 3 reads them: one format per column, no silent day/month swap.

``validate_prices`` (the training ``--data-csv`` path) parsed each date alone (``format="mixed"``):
a day-first file starting ``30/12/2019`` read ``02/01/2020`` as 1 February without a word. The
``--prices`` CSV book refused ISO stamps of varying precision and day-first files starting on a
day <= 12 with a message that did not say what was wrong with the dates.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from advanced_risk.data import validate_prices
from advanced_risk.errors import InvalidInputError
from advanced_risk.evaluation.rules.csv_book import csv_book


def _table(dates: list[str | None]) -> pd.DataFrame:
    return pd.DataFrame({"Date": dates, "A": [float(10 + i) for i in range(len(dates))]})


def _days(index: pd.DatetimeIndex) -> list[str]:
    return [str(d.date()) for d in index]


def test_a_day_first_column_is_read_day_first_in_every_row() -> None:
    prices = validate_prices(_table(["30/12/2019", "31/12/2019", "02/01/2020", "03/01/2020"]))
    assert _days(prices.index) == ["2019-12-30", "2019-12-31", "2020-01-02", "2020-01-03"]


def test_a_day_first_column_starting_on_a_day_up_to_12_is_read_day_first() -> None:
    dates = [f"{d:02d}/01/2018" for d in range(1, 16)]
    assert _days(validate_prices(_table(dates)).index)[-1] == "2018-01-15"


def test_iso_dates_with_and_without_a_time_of_day_are_read() -> None:
    prices = validate_prices(_table(["2020-01-01", "2020-01-02 14:30", "2020-01-03T00:00:00.5"]))
    assert prices.index[1] == pd.Timestamp("2020-01-02 14:30")


def test_a_mixture_where_day_and_month_could_swap_is_refused_naming_the_row() -> None:
    with pytest.raises(InvalidInputError, match=r"row 2 \('02/01/2020'\) reads as 2020-02-01 or 2020-01-02"):
        validate_prices(_table(["2020-01-01", "2020-01-02", "02/01/2020", "2020-02-03"]))


def test_offsets_that_change_are_read_as_utc_and_naive_mixed_with_aware_is_refused() -> None:
    dst = ["2020-03-06 09:30:00-05:00", "2020-03-09 09:30:00-04:00", "2020-03-10 09:30:00-04:00"]
    assert validate_prices(_table(dst)).index[1] == pd.Timestamp("2020-03-09 13:30")
    with pytest.raises(InvalidInputError, match="mixes times with a time zone and times without one"):
        validate_prices(_table(["2020-01-01", "2020-01-02 00:00:00+00:00", "2020-01-03"]))


def test_a_row_without_a_date_is_named() -> None:
    with pytest.raises(InvalidInputError, match=r"column 'Date': row 1 has no date"):
        validate_prices(_table(["2020-01-01", None, "2020-01-03"]))


def test_a_pyarrow_backed_date_index_and_columns_are_accepted() -> None:
    pa = pytest.importorskip("pyarrow")
    index = pd.Index(pd.date_range("2020-01-01", periods=3), dtype=pd.ArrowDtype(pa.timestamp("s")))
    frame = pd.DataFrame({"A": pd.array([1.0, 2.0, 3.0], dtype="float64[pyarrow]")}, index=index)
    prices = validate_prices(frame)
    assert isinstance(prices.index, pd.DatetimeIndex)
    assert prices["A"].dtype == "float64"
    assert prices["A"].tolist() == [1.0, 2.0, 3.0]


@pytest.mark.parametrize(
    ("dates", "first"),
    [
        (["2020-01-01 00:00:00.000001", "2020-01-02 00:00:00.5", "2020-01-03", "2020-01-06"], "2020-01-02"),
        ([f"{d:02d}/01/2018" for d in range(1, 16)], "2018-01-02"),
    ],
    ids=["iso-precision", "day-first"],
)
def test_a_csv_book_reads_what_read_csv_leaves_as_text(tmp_path: Path, dates: list[str], first: str) -> None:
    path = tmp_path / "closes.csv"
    path.write_text("date,A\n" + "".join(f"{d},{10 + i}\n" for i, d in enumerate(dates)))
    book = csv_book(path)
    assert book.dates is not None
    assert str(book.dates[0].date()) == first
    assert len(book.dates) == len(dates) - 1


def test_a_csv_book_of_ambiguous_mixed_formats_is_refused_naming_the_row(tmp_path: Path) -> None:
    path = tmp_path / "closes.csv"
    path.write_text("date,A\n2020-01-01,10\n2020-01-02,11\n03/01/2020,12\n2020-01-06,13\n")
    with pytest.raises(InvalidInputError, match=r"^prices: .*row 2 \('03/01/2020'\) reads as"):
        csv_book(path)
