"""``evaluate-rules --period all`` on a user's book that covers only one period: the period it does
not cover is skipped with a warning naming the book, the period and the split date; the report and
its counts hold only the books evaluated; a book with too few bars in every period is refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from advanced_risk.__main__ import main
from advanced_risk.errors import InvalidInputError
from advanced_risk.evaluation.rules import evaluate_rules
from advanced_risk.evaluation.rules.books import Book
from advanced_risk.evaluation.rules.csv_book import csv_book

REPO = Path(__file__).resolve().parents[2]


def _closes_csv(path: Path, start: str, rows: int) -> Path:
    """A CSV of ``rows`` business days of closes of 3 assets from ``start``."""
    rng = np.random.default_rng(11)
    closes = 100.0 * np.exp(np.cumsum(rng.normal(0.0003, 0.01, (rows, 3)), axis=0))
    dates = pd.bdate_range(start, periods=rows)
    lines = [
        "date,AAA,BBB,CCC",
        *(f"{d.date()},{a:.6f},{b:.6f},{c:.6f}" for d, (a, b, c) in zip(dates, closes, strict=True)),
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def _book(tmp_path: Path, start: str, rows: int = 400) -> Book:
    return csv_book(_closes_csv(tmp_path / "mine.csv", start, rows))


def test_period_all_skips_the_train_period_a_book_starting_after_the_split(tmp_path: Path) -> None:
    book = _book(tmp_path, "2015-01-02")
    with pytest.warns(UserWarning, match=r"mine.*'train'.*2013-01-01.*--split-date"):
        evaluation = evaluate_rules(books=[book], period="all", synthetic_paths=0, reps=20)
    assert [(m.book, m.period) for m in evaluation.metrics] == [("mine", "test")]
    assert evaluation.periods == ("test",)
    assert evaluation.settings["periods"] == ["test"]
    assert evaluation.settings["skipped"] == [
        {"book": "mine", "period": "train", "bars": 0, "split_date": "2013-01-01"}
    ]
    passed = int(evaluation.metrics[0].passed)
    summary = evaluation.summary()
    assert summary[0] == f"test: acceptance passed on {passed}/1 real books"
    assert any(line.startswith("train: not evaluated") and "mine" in line for line in summary)
    written = evaluation.write(tmp_path / "out")
    report = json.loads(written["json"].read_text())
    assert [b["period"] for b in report["books"]] == ["test"]
    assert report["settings"]["skipped"][0]["period"] == "train"
    markdown = written["markdown"].read_text()
    assert "## train" not in markdown
    assert "train: not evaluated" in markdown


def test_period_all_skips_the_test_period_a_book_ending_before_the_split(tmp_path: Path) -> None:
    book = _book(tmp_path, "2009-06-01")  # 400 business days: ends in December 2010
    with pytest.warns(UserWarning, match=r"mine.*'test'.*2013-01-01"):
        evaluation = evaluate_rules(books=[book], period="all", synthetic_paths=0, reps=20)
    assert [(m.book, m.period, m.bars) for m in evaluation.metrics] == [("mine", "train", 99)]
    assert evaluation.periods == ("train",)


def test_period_all_keeps_a_period_with_synthetic_paths_and_counts_only_evaluated_books(
    tmp_path: Path,
) -> None:
    book = _book(tmp_path, "2015-01-02")
    with pytest.warns(UserWarning, match="'train'"):
        evaluation = evaluate_rules(
            books=[book], period="all", synthetic_paths=1, synthetic_bars=20, warmup=30, reps=20
        )
    assert [(m.book, m.period) for m in evaluation.metrics] == [
        ("synthetic seed 0", "train"),
        ("mine", "test"),
        ("synthetic seed 1000", "test"),
    ]
    assert evaluation.periods == ("train", "test")
    train_line = evaluation.summary()[0]
    assert train_line.startswith("train: acceptance passed on 0/0 real books and ")
    assert "not evaluated: mine (0 bars)" in train_line
    markdown = evaluation.to_markdown()
    train_section = markdown.split("## train")[1].split("## test")[0]
    assert "Not evaluated in this period" in train_section
    assert "| mine |" not in train_section


def test_period_all_refuses_a_book_with_too_few_bars_in_every_period(tmp_path: Path) -> None:
    book = _book(tmp_path, "2015-01-02", rows=10)
    with pytest.raises(InvalidInputError, match=r"^period: .*mine.*2013-01-01") as error:
        evaluate_rules(books=[book], period="all", synthetic_paths=0, reps=20)
    assert "'train'" in str(error.value)
    assert "'test'" in str(error.value)
    assert "warm-up of 300" in str(error.value)


@pytest.mark.parametrize(("start", "period"), [("2015-01-02", "train"), ("2009-06-01", "test")])
def test_an_explicit_period_without_bars_still_raises_suggesting_the_split_date(
    tmp_path: Path, start: str, period: str
) -> None:
    book = _book(tmp_path, start)
    assert book.dates is not None
    first, last = str(book.dates[0].date()), str(book.dates[-1].date())
    with pytest.raises(InvalidInputError, match=r"^period: ") as error:
        evaluate_rules(books=[book], period=period, synthetic_paths=0, reps=20)
    message = str(error.value)
    assert "--split-date" in message
    assert first in message
    assert last in message


def test_cli_period_all_on_a_csv_starting_after_the_split(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv = _closes_csv(tmp_path / "mine.csv", "2015-01-02", 400)
    out = tmp_path / "out"
    argv = ["evaluate-rules", "--prices", str(csv), "--period", "all", "--quick", "--out", str(out)]
    with pytest.warns(UserWarning, match=r"mine.*'train'.*--split-date"):
        code = main([*argv, "--jobs", "1", "--split-date", "2013-01-01"])
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    assert [(b["book"], b["period"]) for b in report["books"]] == [("mine", "test")]
    printed = capsys.readouterr().out
    assert "test period" in printed
    assert "train period" not in printed


def test_cli_period_all_on_a_short_csv_exits_2_naming_period(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv = _closes_csv(tmp_path / "mine.csv", "2015-01-02", 10)
    out = tmp_path / "out"
    code = main(["evaluate-rules", "--prices", str(csv), "--period", "all", "--out", str(out), "--jobs", "1"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert "error: period: " in err
    assert "\n" not in err


def test_cli_the_skipped_period_is_a_line_on_stderr(tmp_path: Path) -> None:
    """As a process (no pytest capture of warnings): the warning reaches stderr."""
    csv = _closes_csv(tmp_path / "mine.csv", "2015-01-02", 400)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    argv = ["--prices", str(csv), "--period", "all", "--quick", "--jobs", "1", "--out", str(tmp_path / "o")]
    done = subprocess.run(
        [sys.executable, "-m", "advanced_risk", "evaluate-rules", *argv],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "'train'" in done.stderr
    assert "--split-date" in done.stderr
