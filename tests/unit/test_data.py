from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from advanced_risk import data
from advanced_risk.errors import DataIntegrityError, DataValidationError, InvalidInputError


def test_bundled_stocks_load_with_expected_shape_and_dates(sp500_stocks: pd.DataFrame) -> None:
    assert sp500_stocks.shape == (8313, 20)
    assert sp500_stocks.index[0] == pd.Timestamp("1990-01-02")
    assert sp500_stocks.index[-1] == pd.Timestamp("2022-12-28")
    assert list(sp500_stocks.columns[:3]) == ["AAPL", "AMD", "BAC"]


def test_bundled_index_loads_with_ohlcv_columns(sp500_index: pd.DataFrame) -> None:
    assert sp500_index.shape == (5031, 6)
    assert list(sp500_index.columns) == ["Open", "High", "Low", "Close", "Adj Close", "Volume"]
    assert sp500_index.index[0] == pd.Timestamp("1999-01-04")
    assert sp500_index.index[-1] == pd.Timestamp("2018-12-31")


def test_bundled_files_match_recorded_sha256() -> None:
    from importlib import resources

    for name, digest in data.DATASETS.items():
        raw = (resources.files("advanced_risk") / "datasets" / name).read_bytes()
        assert data.sha256_of(raw) == digest


def test_tampered_bundled_file_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(data.DATASETS, "sp500_index_ohlcv.csv.gz", "0" * 64)
    with pytest.raises(DataIntegrityError, match="SHA-256"):
        data.load_sp500_index()


def _ohlcv() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "Date": ["2020-01-01", "2020-01-02", "2020-01-03"],
            "Open": [10.0, 11.0, 12.0],
            "High": [11.0, 12.0, 13.0],
            "Low": [9.0, 10.0, 11.0],
            "Close": [10.5, 11.5, 12.5],
            "Volume": [100.0, 200.0, 300.0],
        }
    )


def _break(column: str, row: int, value: object) -> pd.DataFrame:
    df = _ohlcv()
    df[column] = df[column].astype(object)
    df.loc[row, column] = value
    return df


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        pytest.param(_break("Date", 2, "2020-01-02"), "duplicate date 2020-01-02", id="duplicate-date"),
        pytest.param(_break("Date", 2, "2019-12-31"), "dates must increase, row 2", id="decreasing-date"),
        pytest.param(_break("Close", 1, np.nan), "NaN or inf in column 'Close' at row 1", id="nan"),
        pytest.param(_break("High", 0, np.inf), "NaN or inf in column 'High' at row 0", id="inf"),
        pytest.param(
            _break("Open", 1, -1.0), "non-positive price in column 'Open' at row 1", id="negative-price"
        ),
        pytest.param(
            _break("High", 1, 11.2), "High below max\\(Open, Close\\) in column 'High' at row 1", id="high"
        ),
        pytest.param(
            _break("Low", 2, 12.2), "Low above min\\(Open, Close\\) in column 'Low' at row 2", id="low"
        ),
        pytest.param(_break("Volume", 0, -5.0), "negative volume in column 'Volume' at row 0", id="volume"),
        pytest.param(
            _break("Close", 0, "abc"), "non-numeric value 'abc' in column 'Close'", id="non-numeric"
        ),
        pytest.param(_ohlcv().drop(columns="Low"), "missing column\\(s\\) \\['Low'\\]", id="missing-column"),
        pytest.param(_ohlcv().iloc[:1], "at least 2 rows", id="too-short"),
    ],
)
def test_validate_ohlcv_rejects_bad_rows_naming_row_and_column(frame: pd.DataFrame, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        data.validate_ohlcv(frame)


def test_validate_ohlcv_accepts_clean_frame_and_indexes_by_date() -> None:
    out = data.validate_ohlcv(_ohlcv())
    assert isinstance(out.index, pd.DatetimeIndex)
    assert out["Close"].dtype == np.float64


def test_validate_prices_reads_csv_path(tmp_path: Path) -> None:
    path = tmp_path / "prices.csv"
    path.write_text("Date,A,B\n2020-01-01,1.0,2.0\n2020-01-02,1.1,2.1\n")
    assert data.validate_prices(path).shape == (2, 2)


@pytest.mark.parametrize("name", ["date", "Timestamp", "DATETIME", " time"])
def test_validate_prices_takes_the_common_date_column_names(tmp_path: Path, name: str) -> None:
    path = tmp_path / "prices.csv"
    path.write_text(f"{name},A\n2020-01-01,1.0\n2020-01-02,1.1\n")
    frame = data.validate_prices(path)
    assert frame.index.name == "Date"
    assert [str(d.date()) for d in frame.index] == ["2020-01-01", "2020-01-02"]


def test_a_table_without_a_date_column_is_refused_naming_the_names_taken(tmp_path: Path) -> None:
    path = tmp_path / "prices.csv"
    path.write_text("when,A\n2020-01-01,1.0\n2020-01-02,1.1\n")
    with pytest.raises(InvalidInputError, match=r"needs a date column .* found columns \['when', 'A'\]"):
        data.validate_prices(path)


def test_validate_prices_rejects_zero_price_naming_column(tmp_path: Path) -> None:
    path = tmp_path / "prices.csv"
    path.write_text("Date,A,B\n2020-01-01,1.0,2.0\n2020-01-02,1.1,0.0\n")
    with pytest.raises(InvalidInputError, match="non-positive price in column 'B' at row 1"):
        data.validate_prices(path)


def test_missing_csv_is_invalid_input(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="file not found"):
        data.validate_prices(tmp_path / "nope.csv")


def test_binary_garbage_csv_is_invalid_input(tmp_path: Path) -> None:
    path = tmp_path / "garbage.csv"
    path.write_bytes(gzip.compress(b"\x00\xff" * 100))
    with pytest.raises(InvalidInputError):
        data.validate_prices(path)


# ------------------------------------------------------------------------------ read errors
_GOOD_CSV = "Date,A\n" + "".join(f"2020-01-{d:02d},{100 + d}\n" for d in range(1, 29))


def _truncated_gz(path: Path) -> None:
    whole = gzip.compress(_GOOD_CSV.encode() * 20)
    path.write_bytes(whole[: len(whole) // 2])


def _corrupt_deflate_gz(path: Path) -> None:
    whole = bytearray(gzip.compress(_GOOD_CSV.encode() * 20))
    whole[20:40] = bytes(20)  # a valid header, then broken compressed data
    path.write_bytes(bytes(whole))


def _bad_gzip_header(path: Path) -> None:
    path.write_bytes(b"\x1f\x8b\x08\x00garbage that is not gzip" * 10)


def _not_gzip_at_all(path: Path) -> None:
    path.write_bytes(b"plain text, not gzip")


READ_FAULTS = {
    "truncated.csv.gz": (_truncated_gz, "EOFError"),
    "corrupt_deflate.csv.gz": (_corrupt_deflate_gz, "zlib.error"),
    "bad_header.csv.gz": (_bad_gzip_header, "zlib.error"),
    "not_gzip.csv.gz": (_not_gzip_at_all, "BadGzipFile"),
    "empty.csv": (lambda p: p.write_bytes(b""), "EmptyDataError"),
    "empty.csv.gz": (lambda p: p.write_bytes(gzip.compress(b"")), "EmptyDataError"),
    "a_directory.csv": (lambda p: p.mkdir(), "IsADirectoryError"),
    "garbage.csv.bz2": (lambda p: p.write_bytes(b"garbage"), "OSError"),
    "garbage.csv.xz": (lambda p: p.write_bytes(b"garbage"), "LZMAError"),
    "garbage.csv.zip": (lambda p: p.write_bytes(b"garbage"), "BadZipFile"),
    "binary.csv": (lambda p: p.write_bytes(bytes(range(256)) * 10), "ParserError"),
}


@pytest.mark.parametrize("validate", [data.validate_prices, data.validate_ohlcv], ids=["prices", "ohlcv"])
@pytest.mark.parametrize("name", list(READ_FAULTS))
def test_every_read_error_is_data_validation_error_naming_the_file(
    name: str, validate: object, tmp_path: Path
) -> None:
    make, cause = READ_FAULTS[name]
    path = tmp_path / name
    make(path)
    with pytest.raises(DataValidationError, match="cannot be read as CSV") as info:
        # a subclass of InvalidInputError: code that catches bad input catches it too
        validate(path)  # type: ignore[operator]
    message = str(info.value)
    assert str(path) in message
    assert cause in message
    assert info.value.__cause__ is not None  # the original error is kept for debugging


def test_an_unreadable_file_is_invalid_input_naming_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "locked.csv"
    path.write_text(_GOOD_CSV)

    def denied(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied", str(path))  # chmod 000 does not stop root

    monkeypatch.setattr(data.pd, "read_csv", denied)
    with pytest.raises(InvalidInputError, match=r"locked\.csv cannot be read as CSV: PermissionError"):
        data.validate_prices(path)


def test_a_compressed_file_whose_codec_is_missing_is_invalid_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "prices.csv.zst"
    path.write_bytes(b"whatever")

    def no_codec(*args: object, **kwargs: object) -> None:
        raise ImportError("Missing optional dependency 'zstandard'")

    monkeypatch.setattr(data.pd, "read_csv", no_codec)
    with pytest.raises(InvalidInputError, match=r"prices\.csv\.zst cannot be read as CSV: ImportError"):
        data.validate_prices(path)


def test_a_good_csv_gz_still_reads(tmp_path: Path) -> None:
    path = tmp_path / "prices.csv.gz"
    path.write_bytes(gzip.compress(_GOOD_CSV.encode()))
    table = data.validate_prices(path)
    assert table.shape == (28, 1)
    assert table["A"].iloc[-1] == 128.0


def test_time_zone_aware_dates_become_naive_utc(tmp_path: Path) -> None:
    path = tmp_path / "prices.csv"
    path.write_text("Date,A\n2020-01-01 09:30:00-05:00,1.0\n2020-01-02 09:30:00-05:00,1.1\n")
    frame = data.validate_prices(path)
    assert frame.index.tz is None
    assert [str(d) for d in frame.index] == ["2020-01-01 14:30:00", "2020-01-02 14:30:00"]
    indexed = pd.DataFrame({"A": [1.0, 1.1]}, index=pd.date_range("2020-01-01", periods=2, tz="Asia/Tokyo"))
    assert str(data.validate_prices(indexed).index[0]) == "2019-12-31 15:00:00"


def test_numeric_dates_are_refused_not_read_as_nanoseconds(tmp_path: Path) -> None:
    path = tmp_path / "prices.csv"
    path.write_text("Date,A\n1420070400,1.0\n1420156800,1.1\n")
    with pytest.raises(InvalidInputError, match="holds numbers, not dates"):
        data.validate_prices(path)


@pytest.mark.parametrize(
    ("header", "message"),
    [("Date,A,A", "'A' appears twice"), ("Date,,B", "column 2 of the header has no name")],
)
def test_a_header_with_a_repeated_or_empty_name_is_refused(tmp_path: Path, header: str, message: str) -> None:
    path = tmp_path / "prices.csv"
    path.write_text(f"{header}\n2020-01-01,1.0,2.0\n2020-01-02,1.1,2.1\n")
    with pytest.raises(InvalidInputError, match=message):
        data.validate_prices(path)
