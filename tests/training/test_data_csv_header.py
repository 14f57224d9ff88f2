"""``--data-csv`` errors name the file once: a repeated column name (named, every one of them), an
unnamed column and a bad close."""

from __future__ import annotations

from pathlib import Path

import pytest

from advanced_risk.training.cli import main


def _csv(tmp_path: Path, header: str, body: str | None = None) -> Path:
    width = header.count(",")
    rows = body or "\n".join(
        f"2020-01-{d:02d}," + ",".join(str(10 + d + c) for c in range(width)) for d in range(1, 29)
    )
    path = tmp_path / "prices.csv"
    path.write_text(f"{header}\n{rows}\n")
    return path


@pytest.mark.parametrize(
    ("header", "body", "expected"),
    [
        ("date,AAA,AAA", None, "column name(s) 'AAA' appear more than once"),
        ("date,AAA,BBB, AAA ,BBB", None, "column name(s) 'AAA', 'BBB' appear more than once"),
        ("date,AAA,,BBB", None, "column 3 of the header has no name"),
        ("date,AAA", "2020-01-01,10\n2020-01-02,-1", "non-positive price in column 'AAA'"),
    ],
    ids=["one-repeated", "two-repeated", "unnamed", "bad-close"],
)
def test_a_data_csv_error_names_the_file_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], header: str, body: str | None, expected: str
) -> None:
    path = _csv(tmp_path, header, body)
    code = main(["--data-csv", str(path), "--total-steps", "64", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert expected in err
    assert err.count("prices.csv") == 1, err
    assert "\n" not in err
