"""Adversarial tests of the rules-evaluation harness on books a user would bring: dates in other
forms, unsorted or tz-aware; CSV files with empty dates and bad cells; book names that break
Markdown tables or matplotlib's mathtext; outputs that cannot be written; figures against
independent NumPy computations."""

from __future__ import annotations

import dataclasses
import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from advanced_risk.__main__ import main
from advanced_risk.errors import InvalidInputError
from advanced_risk.evaluation.rules import Book, book_metrics, evaluate_rules, run_book
from advanced_risk.evaluation.rules.books import book_window
from advanced_risk.evaluation.rules.csv_book import csv_book

SPLIT = "2000-01-01"  # before every date below: all of a real book's bars are test bars


def _book(
    rows: int = 60, weights: tuple[float, ...] = (0.5, 0.5), name: str = "own", seed: int = 1, **kw: object
) -> Book:
    rng = np.random.default_rng(seed)
    returns = rng.normal(0.0003, 0.01, (rows, len(weights)))
    prices = 100.0 * np.cumprod(1.0 + returns, axis=0)
    dates = kw.pop("dates", pd.bdate_range("2015-01-01", periods=rows))
    assets = tuple(f"A{i}" for i in range(len(weights)))
    return Book("own", name, assets, returns, prices, np.array(weights), dates=dates)  # type: ignore[arg-type]


def _evaluate(book: Book, **kw: object) -> object:
    options: dict[str, object] = {"synthetic_paths": 0, "warmup": 20, "reps": 30, "split_date": SPLIT}
    return evaluate_rules(books=[book], **{**options, **kw})  # type: ignore[arg-type]


# -- a Book's dates and arrays -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "form",
    [
        lambda d: list(d),
        lambda d: d.to_numpy(),
        lambda d: [str(x.date()) for x in d],
    ],
    ids=["list-of-timestamps", "datetime64-array", "strings"],
)
def test_a_book_takes_dates_in_any_form_pandas_reads(form: object) -> None:
    """Was an AttributeError ('list' object has no attribute 'searchsorted') in the window."""
    base = _book()
    book = _book(dates=form(base.dates))  # type: ignore[operator]
    assert isinstance(book.dates, pd.DatetimeIndex)
    assert book.dates.equals(base.dates)
    window = book_window(book, "test", warmup=20, split_date="2015-02-02")
    assert window.dates is not None
    assert str(window.dates[0].date()) == "2015-02-02"


def test_a_book_takes_lists_of_numbers() -> None:
    """Was an AttributeError ('list' object has no attribute 'ndim')."""
    base = _book()
    returns, prices = base.returns.tolist(), base.prices.tolist()
    book = Book("own", "lists", list(base.assets), returns, prices, [1, 0], dates=base.dates)  # type: ignore[arg-type]
    assert book.returns.dtype == np.float64
    assert book.weights.tolist() == [1.0, 0.0]
    assert book.assets == ("A0", "A1")


@pytest.mark.parametrize(
    ("dates", "bar"),
    [
        (pd.bdate_range("2015-01-01", periods=60)[::-1], 1),  # descending
        (pd.DatetimeIndex(["2015-01-01"] * 60), 1),  # repeated
        (pd.bdate_range("2015-01-01", periods=60).insert(30, pd.NaT).delete(31), 30),  # a NaT
    ],
    ids=["unsorted", "repeated", "NaT"],
)
def test_a_book_refuses_dates_that_do_not_increase_naming_the_bar(dates: pd.DatetimeIndex, bar: int) -> None:
    """Were accepted: the period cut (a binary search) then took arbitrary rows."""
    with pytest.raises(InvalidInputError, match=f"dates must increase strictly.*bar {bar}"):
        _book(dates=dates)


def test_a_book_refuses_asset_names_that_are_not_strings() -> None:
    """Was accepted, then refused by the manager naming market_state.returns, not the book."""
    base = _book()
    with pytest.raises(InvalidInputError, match="assets must be unique, non-empty strings"):
        Book("own", "ints", (1, 2), base.returns, base.prices, base.weights, dates=base.dates)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="returns must be numbers"):
        Book("own", "text", base.assets, [["a", "b"]], base.prices, base.weights, dates=base.dates)  # type: ignore[arg-type]


def test_tz_aware_dates_are_cut_at_the_split_dates_wall_time_in_their_zone() -> None:
    """Was a TypeError (tz-naive against tz-aware) from the split, and a traceback from the CLI."""
    naive = pd.bdate_range("2015-01-01", periods=60)
    aware = _book(dates=naive.tz_localize("Europe/Berlin"))
    window = book_window(aware, "test", warmup=20, split_date="2015-02-02")
    assert window.dates is not None
    assert window.dates[0] == pd.Timestamp("2015-02-02", tz="Europe/Berlin")
    # an aware split date against naive dates: compared in UTC
    plain = book_window(_book(dates=naive), "test", warmup=20, split_date="2015-02-02T00:00+00:00")
    assert plain.dates is not None
    assert str(plain.dates[0].date()) == "2015-02-02"


def test_the_cli_evaluates_a_csv_with_tz_aware_dates(tmp_path: Path) -> None:
    closes = 100 * np.exp(np.cumsum(np.random.default_rng(4).normal(0, 0.01, (340, 2)), axis=0))
    dates = pd.date_range("2016-01-01", periods=340, freq="D", tz="America/New_York")
    text = "date,X,Y\n" + "".join(
        f"{d.isoformat()},{a:.5f},{b:.5f}\n" for d, (a, b) in zip(dates, closes, strict=True)
    )
    (tmp_path / "tz.csv").write_text(text)
    out = tmp_path / "out"
    code = main(["evaluate-rules", "--prices", str(tmp_path / "tz.csv"), "--out", str(out), "--jobs", "1"])
    assert code == 0
    assert json.loads((out / "report.json").read_text())["books"][0]["bars"] == 339 - 300


# -- CSV books -----------------------------------------------------------------------------------------


def _csv(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "closes.csv"
    path.write_text(text)
    return path


def test_a_csv_row_without_a_date_is_refused_naming_the_row(tmp_path: Path) -> None:
    """Was accepted: the NaT was sorted last and the book ended on a bar without a date."""
    text = "date,A\n2020-01-01,10\n2020-01-02,11\n,12\n2020-01-06,12\n2020-01-07,13\n"
    with pytest.raises(InvalidInputError, match=r"^prices: .*data row 3 \(after the header\) has no date"):
        csv_book(_csv(tmp_path, text))


@pytest.mark.parametrize(
    ("cell", "shown"), [("abc", "abc"), ("-5", "-5"), ("0", "0"), ("inf", "inf"), ('"1,100.5"', "1,100.5")]
)
def test_a_bad_csv_close_is_named_by_column_and_date(tmp_path: Path, cell: str, shown: str) -> None:
    text = f"date,A,B\n2020-01-01,10,1\n2020-01-02,11,1\n2020-01-03,12,{cell}\n2020-01-06,12,1\n"
    first = r"^prices: .*columns \['B'\] \(first: B on 2020-01-03 is "
    with pytest.raises(InvalidInputError, match=first):
        csv_book(_csv(tmp_path, text))
    with pytest.raises(InvalidInputError) as exc:
        csv_book(_csv(tmp_path, text))
    assert str(exc.value).endswith(f"is {shown})")


def test_a_csv_in_any_date_order_listing_and_delisting(tmp_path: Path) -> None:
    """Unsorted rows are sorted; an asset that lists late starts the book; one that delists is
    carried at its last close (earns 0): pandas' pct_change of the sorted, filled frame."""
    rows = [
        "2020-01-07,13,,6",
        "2020-01-01,10,,5",
        "2020-01-03,12,21,6.6",
        "2020-01-02,11,20,",
        "2020-01-06,12.5,22,6.1",
    ]
    book = csv_book(_csv(tmp_path, "date,A,B,C\n" + "\n".join(rows) + "\n"))
    frame = pd.read_csv(tmp_path / "closes.csv", index_col=0, parse_dates=[0]).sort_index().ffill().dropna()
    np.testing.assert_allclose(book.returns, frame.pct_change().to_numpy()[1:], rtol=1e-15)
    assert book.dates is not None
    assert [str(d.date()) for d in book.dates] == ["2020-01-03", "2020-01-06", "2020-01-07"]
    assert book.returns[-1, 1] == 0.0  # B delisted after 2020-01-06


# -- outputs -------------------------------------------------------------------------------------------

ODD_NAMES = ("cost $5 | $x_$ net", "line\nbreak: a/b\\c ünï €", r"$\notacommand$ " + "x" * 200)


@pytest.fixture(scope="module")
def odd_evaluation() -> object:
    """Three small books whose names hold ``$`` (matplotlib mathtext), ``|`` and a line break
    (Markdown tables), slashes, non-ASCII text and 200 more characters."""
    books = [_book(rows=50, name=n, seed=i) for i, n in enumerate(ODD_NAMES)]
    return evaluate_rules(books=books, synthetic_paths=0, warmup=20, reps=30, split_date=SPLIT)


def _cells(row: str) -> list[str]:
    return [c.strip() for c in re.split(r"(?<!\\)\|", row)[1:-1]]


def test_odd_book_names_keep_the_tables_whole_and_the_png_drawable(
    odd_evaluation: Any, tmp_path: Path
) -> None:
    """A name with "$x_$" failed in savefig (a mathtext ValueError), after report.md and report.json
    were written; "|" and a line break split a Markdown row into wrong columns."""
    for name in ODD_NAMES:
        written = odd_evaluation.write(tmp_path / "out", plot=name)
        assert written["png"].stat().st_size > 10_000
    markdown = written["markdown"].read_text(encoding="utf-8")
    tables = [line for line in markdown.splitlines() if line.startswith("|")]
    header_width = {len(_cells(line)) for line in tables if line.startswith("| book")}
    assert len(header_width) == 2  # the summary and the details tables
    for line in tables:
        assert len(_cells(line)) in header_width, line
    rows = [_cells(line)[0] for line in tables if not line.startswith(("| book", "|---"))]
    assert rows.count("cost $5 \\| $x_$ net") == 2  # summary and details rows
    assert rows.count("line break: a/b\\c ünï €") == 2
    report = json.loads(written["json"].read_text(encoding="utf-8"))
    assert [b["book"] for b in report["books"]] == list(ODD_NAMES)


def test_an_unknown_plot_is_refused_before_anything_is_written(odd_evaluation: Any, tmp_path: Path) -> None:
    """Was refused after report.md and report.json were written (a half-written folder)."""
    with pytest.raises(InvalidInputError, match=r"^plot: no evaluated book named 'nope'"):
        odd_evaluation.write(tmp_path / "out", plot="nope")
    assert not (tmp_path / "out").exists()


def test_a_report_that_cannot_be_written_names_out(odd_evaluation: Any, tmp_path: Path) -> None:
    """Was a bare IsADirectoryError / PermissionError from the Python API."""
    (tmp_path / "out" / "report.json").mkdir(parents=True)  # a folder where the file goes
    with pytest.raises(InvalidInputError, match=r"^out: cannot write the report into"):
        odd_evaluation.write(tmp_path / "out")
    with pytest.raises(InvalidInputError, match=r"^out: cannot create directory"):
        odd_evaluation.write(tmp_path / "out" / "report.md" / "x")  # under a file


# -- figures against independent computations ----------------------------------------------------------


@pytest.mark.parametrize("periods_per_year", [52, 252 * 390], ids=["weekly", "minute"])
def test_figures_of_a_long_short_book_match_numpy(periods_per_year: int) -> None:
    """Sharpe, CAGR, max drawdown, CVaR 95 %, turnover and exposure from the paths by hand; the
    unmanaged path by the execution semantics by hand; annualised with the config's bars per year."""
    from advanced_risk import RiskConfig

    book = _book(rows=140, weights=(1.2, 0.3, -0.5), seed=9)
    result = run_book(
        book, RiskConfig(periods_per_year=periods_per_year), period="test", warmup=40, split_date=SPLIT
    )
    assert result.periods_per_year == periods_per_year
    metrics = book_metrics(result, reps=50)
    # the unmanaged book: hold w, drift, trade back to w at each close, 10 bp on the traded value
    w, held, expected = book.weights, np.zeros(3), []
    for r in book.returns[40:]:
        g = held @ r
        drifted = held * (1 + r) / (1 + g)
        expected.append((1 + g) * (1 - 0.001 * np.abs(w - drifted).sum()) - 1)
        held = w
    np.testing.assert_allclose(result.unmanaged.returns, expected, rtol=0, atol=1e-15)
    for name in ("managed", "unmanaged", "voltarget"):
        path, figures = getattr(result, name), getattr(metrics, name)
        r = path.returns
        equity = np.concatenate([[1.0], np.cumprod(1 + r)])
        tail = np.sort(r)[: int(np.ceil(0.05 * r.size))]
        assert figures.sharpe == pytest.approx(
            r.mean() / r.std(ddof=1) * math.sqrt(periods_per_year), rel=1e-9
        )
        assert figures.cagr == pytest.approx(
            equity[-1] ** (periods_per_year / r.size) - 1, rel=1e-9, abs=1e-12
        )
        assert figures.max_drawdown == pytest.approx(
            (1 - equity / np.maximum.accumulate(equity)).max(), rel=1e-9
        )
        assert figures.cvar95 == pytest.approx(-tail.mean(), rel=1e-9)
        assert figures.turnover == pytest.approx(path.turnover.mean(), rel=1e-12)
        assert figures.exposure == pytest.approx(np.abs(path.holdings).sum(axis=1).mean(), rel=1e-12)
        assert figures.sharpe_low <= figures.sharpe_high


def test_identical_strategies_are_not_significant() -> None:
    """A managed path equal to the unmanaged one bar for bar: the paired difference is 0 with
    p = 1 and a zero-width interval, never a small, significant-looking p-value."""
    result = run_book(_book(rows=60, seed=2), period="test", warmup=20, split_date=SPLIT)
    same = dataclasses.replace(result, managed=result.unmanaged)
    m = book_metrics(same, reps=200)
    assert (m.vs_unmanaged.difference, m.vs_unmanaged.p_value) == (0.0, 1.0)
    assert m.vs_unmanaged.low == m.vs_unmanaged.high == 0.0
    assert m.managed == m.unmanaged


@pytest.mark.parametrize("rows", [2, 3], ids=["two-bars", "three-bars"])
def test_books_shorter_than_any_window_still_report(rows: int, tmp_path: Path) -> None:
    """Two or three bars with no warm-up: every figure finite, the JSON valid and without NaN."""
    evaluation: Any = _evaluate(_book(rows=rows), warmup=0)
    (m,) = evaluation.metrics
    assert m.bars == rows
    for s in (m.managed, m.unmanaged, m.voltarget):
        assert all(math.isfinite(v) for v in (s.sharpe, s.cagr, s.max_drawdown, s.cvar95, s.turnover))
    text = evaluation.write(tmp_path / "out")["json"].read_text()
    assert "NaN" not in text
    assert "Infinity" not in text
    assert json.loads(text)["books"][0]["bars"] == rows


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("date,A,A", r"column name 'A' appears twice in the header"),  # pandas read it as A, A.1
        ("date,A, A ", r"column name 'A' appears twice in the header"),
        ("date,A,", r"column 3 of the header has no name"),  # pandas read it as 'Unnamed: 2'
    ],
)
def test_a_csv_header_with_a_repeated_or_empty_asset_name_is_refused(
    header: str, message: str, tmp_path: Path
) -> None:
    path = tmp_path / "closes.csv"
    path.write_text(f"{header}\n2020-01-01,10,20\n2020-01-02,11,21\n2020-01-03,12,22\n")
    with pytest.raises(InvalidInputError, match=message):
        csv_book(path, [0.5, 0.5])


def test_a_csv_whose_date_column_is_unnamed_is_read(tmp_path: Path) -> None:
    path = tmp_path / "closes.csv"  # pandas' own to_csv of a frame indexed by date
    pd.DataFrame(
        {"A": [10.0, 11.0, 12.0], "B": [20.0, 21.0, 22.0]}, index=pd.bdate_range("2020-01-01", periods=3)
    ).to_csv(path)
    assert path.read_text().startswith(",A,B")
    assert csv_book(path, [0.5, 0.5]).assets == ("A", "B")


def test_a_book_holding_nothing_is_refused_as_a_csv_book_is(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="at least one must be non-zero"):
        _book(weights=(0.0, 0.0))
    path = tmp_path / "closes.csv"
    path.write_text("date,A,B\n2020-01-01,10,20\n2020-01-02,11,21\n2020-01-03,12,22\n")
    with pytest.raises(InvalidInputError, match="at least one must be non-zero"):
        csv_book(path, [0.0, 0.0])
