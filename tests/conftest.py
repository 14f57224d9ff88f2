"""Shared fixtures: the bundled real data sets, loaded once per test session."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from advanced_risk.data import load_sp500_index, load_sp500_stocks


@pytest.fixture(scope="session")
def sp500_index() -> pd.DataFrame:
    """S&P 500 index OHLCV, 1999-2018 (5,031 bars)."""
    return load_sp500_index()


@pytest.fixture(scope="session")
def sp500_stocks() -> pd.DataFrame:
    """Adjusted closes of 20 S&P 500 stocks, 1990-2022 (8,313 bars)."""
    return load_sp500_stocks()


@pytest.fixture(scope="session")
def sp500_index_returns(sp500_index: pd.DataFrame) -> np.ndarray:
    """Simple returns of the index's Adj Close (5,030 values)."""
    close = sp500_index["Adj Close"].to_numpy()
    return close[1:] / close[:-1] - 1.0
