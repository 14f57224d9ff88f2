"""A user's own books through the rules evaluation: bar lengths the config does not annualise,
CSV files whose problem must be named."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from advanced_risk import RiskConfig
from advanced_risk.errors import InvalidInputError
from advanced_risk.evaluation.rules import evaluate_rules
from advanced_risk.evaluation.rules.books import Book, bar_frequency_warning
from advanced_risk.evaluation.rules.csv_book import csv_book


def _book(dates: pd.DatetimeIndex) -> Book:
    rng = np.random.default_rng(0)
    returns = rng.normal(0.0, 0.01, (len(dates), 2))
    prices = 100.0 * np.cumprod(1.0 + returns, axis=0)
    return Book("csv", "mine", ("A", "B"), returns, prices, np.array([0.5, 0.5]), dates=dates)


@pytest.mark.parametrize(
    ("dates", "periods_per_year"),
    [
        (pd.date_range("2024-01-02 09:30", periods=400, freq="min"), 252),  # minute bars, daily config
        (pd.date_range("2015-01-02", periods=400, freq="W"), 252),  # weekly bars, daily config
        (pd.date_range("2015-01-02", periods=400, freq="MS"), 252),  # monthly bars
        (pd.bdate_range("2015-01-02", periods=400), 252 * 390),  # daily bars, minute config
    ],
)
def test_a_bar_length_the_config_does_not_annualise_is_named(
    dates: pd.DatetimeIndex, periods_per_year: int
) -> None:
    message = bar_frequency_warning(_book(dates), periods_per_year)
    assert message is not None
    assert "periods_per_year" in message
    assert str(periods_per_year) in message
    assert "mine" in message


@pytest.mark.parametrize(
    ("dates", "periods_per_year"),
    [
        (pd.bdate_range("2015-01-02", periods=400), 252),  # exchange days
        (pd.date_range("2015-01-02", periods=400, freq="D"), 365),  # 24/7 daily
        (pd.date_range("2015-01-02", periods=400, freq="D"), 252),  # calendar days, daily config
        (pd.date_range("2024-01-02 09:30", periods=390, freq="min"), 252 * 390),  # one session
        (pd.date_range("2024-01-02", periods=400, freq="h", tz="UTC"), 365 * 24),  # 24/7 hourly
    ],
)
def test_a_bar_length_the_config_annualises_is_not_flagged(
    dates: pd.DatetimeIndex, periods_per_year: int
) -> None:
    assert bar_frequency_warning(_book(dates), periods_per_year) is None


def test_evaluate_rules_warns_when_minute_bars_are_annualised_as_days() -> None:
    book = _book(pd.date_range("2024-01-02 09:30", periods=310, freq="min"))
    with pytest.warns(UserWarning, match="periods_per_year"):
        evaluate_rules(books=[book], synthetic_paths=0, split_date="2024-01-02", reps=10)
    # told the bar length (the config's periods_per_year): no warning
    assert bar_frequency_warning(book, RiskConfig(periods_per_year=252 * 390).periods_per_year) is None


def test_an_asset_without_any_close_is_named(tmp_path: Path) -> None:
    dates = pd.bdate_range("2015-01-02", periods=20)
    frame = pd.DataFrame({"A": np.linspace(10, 12, 20), "EMPTY": np.nan}, index=dates)
    frame.index.name = "date"
    path = tmp_path / "closes.csv"
    frame.to_csv(path)
    with pytest.raises(InvalidInputError, match="EMPTY"):
        csv_book(path)


def test_an_asset_listed_too_late_is_named(tmp_path: Path) -> None:
    dates = pd.bdate_range("2015-01-02", periods=20)
    late = np.r_[np.full(19, np.nan), 5.0]
    frame = pd.DataFrame({"A": np.linspace(10, 12, 20), "LATE": late}, index=dates)
    frame.index.name = "date"
    path = tmp_path / "closes.csv"
    frame.to_csv(path)
    with pytest.raises(InvalidInputError, match="LATE"):
        csv_book(path)
