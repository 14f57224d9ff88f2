"""Benchmark cases for measures/covariance.py and risk/tracker.py, each against what a user would
otherwise run with pandas, measured in the same process.

    cd benchmarks && ../.venv/bin/python -c \
        "import cases_covariance as c; from _harness import print_table; print_table(c.rows())"
"""

from __future__ import annotations

import importlib.resources
import itertools

import numpy as np
import pandas as pd

from _harness import Row, median_seconds
from advanced_risk.config import TrackerConfig
from advanced_risk.measures import rolling_correlation
from advanced_risk.measures.var import VaRMethod
from advanced_risk.risk.tracker import RiskTracker


def _stock_returns(n_rows: int) -> pd.DataFrame:
    path = importlib.resources.files("advanced_risk") / "datasets" / "sp500_stocks_daily.csv.gz"
    with importlib.resources.as_file(path) as file:
        prices = pd.read_csv(file, parse_dates=["Date"], index_col="Date")
    return prices.pct_change().iloc[1 : n_rows + 1]


def _rolling_corr_row() -> Row:
    df = _stock_returns(2500)  # 20 assets x 2500 days, real data
    x = df.to_numpy()
    return Row(
        kernel="rolling corr 60d, 20x2500",
        reference="pandas rolling(60).corr()",
        ours_s=median_seconds(lambda: rolling_correlation(x, 60)),
        reference_s=median_seconds(lambda: df.rolling(60).corr(), repeats=3),
        target=25.0,
    )


def _tracker_row(n_assets: int = 50, window: int = 250) -> Row:
    rng = np.random.default_rng(0)
    mix = np.eye(n_assets) + rng.normal(0.0, 0.3 / np.sqrt(n_assets), size=(n_assets, n_assets))
    returns = rng.normal(0.0003, 0.01, size=(4000, n_assets)) @ mix
    w = np.full(n_assets, 0.9 / n_assets)

    tracker = RiskTracker(n_assets, TrackerConfig(window=window, method=VaRMethod.HISTORICAL))
    for row in returns[:window]:
        tracker.update(row)
    rows = itertools.cycle(returns[window:])

    def ours() -> tuple[float, float]:
        tracker.update(next(rows))
        return tracker.var(w), tracker.average_correlation()

    df = pd.DataFrame(returns, columns=[f"a{i}" for i in range(n_assets)])
    upper = np.triu_indices(n_assets, 1)

    def reference() -> tuple[float, float]:
        recent = df.iloc[-window:]  # the trailing window, already appended
        port = recent @ w
        var = -port.quantile(0.01)
        avg_corr = recent.corr().to_numpy()[upper].mean()
        return var, avg_corr

    return Row(
        kernel=f"tracker update+var+avg corr, {n_assets} assets",
        reference="pandas window quantile + corr()",
        ours_s=median_seconds(ours),
        reference_s=median_seconds(reference),
        target=100.0,
    )


def rows() -> list[Row]:
    """The covariance and tracker benchmark rows."""
    return [_rolling_corr_row(), _tracker_row()]
