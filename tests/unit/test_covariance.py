"""Unit tests of measures/covariance.py: EWMA (batch and streaming), rolling correlation, averages."""

from __future__ import annotations

import importlib.resources

import numpy as np
import pandas as pd
import pytest

from advanced_risk.errors import InvalidInputError
from advanced_risk.measures import covariance as cov
from advanced_risk.measures.covariance import (
    average_pairwise_correlation,
    covariance_to_correlation,
    ewma_correlation,
    ewma_covariance,
    ewma_covariance_update,
    rolling_correlation,
)


@pytest.fixture(scope="module")
def stock_returns() -> pd.DataFrame:
    """Simple returns of the bundled 20 stocks (8,312 rows, oldest first)."""
    path = importlib.resources.files("advanced_risk") / "datasets" / "sp500_stocks_daily.csv.gz"
    with importlib.resources.as_file(path) as file:
        prices = pd.read_csv(file, parse_dates=["Date"], index_col="Date")
    return prices.pct_change().iloc[1:]


def _random_returns(n_rows: int, n_assets: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(n_assets, n_assets)) / np.sqrt(n_assets)
    return rng.normal(0.0005, 0.01, size=(n_rows, n_assets)) @ (np.eye(n_assets) + mix)


# ------------------------------------------------------------------------------------------------ EWMA
def test_ewma_covariance_equals_explicit_normalised_weight_sum() -> None:
    r = _random_returns(300, 6)
    lam = 0.94
    w = lam ** np.arange(len(r) - 1, -1, -1.0)
    w /= w.sum()
    expected = np.einsum("t,tj,tk->jk", w, r, r)
    np.testing.assert_allclose(ewma_covariance(r, lam), expected, rtol=1e-12, atol=1e-18)


def test_ewma_streaming_update_equals_batch() -> None:
    r = _random_returns(500, 8, seed=1)
    state, weight = np.zeros((8, 8)), 0.0
    for t, row in enumerate(r, start=1):
        state, weight = ewma_covariance_update(state, weight, row, lam=0.97)
        if t in (1, 2, 17, 250, 500):
            np.testing.assert_allclose(
                state / weight, ewma_covariance(r[:t], lam=0.97), rtol=1e-12, atol=1e-18
            )


def test_ewma_streaming_normaliser_is_one_minus_lam_to_the_t() -> None:
    weight = 0.0
    for _ in range(40):
        _, weight = ewma_covariance_update(np.zeros((1, 1)), weight, [0.01], lam=0.9)
    assert weight == pytest.approx(1.0 - 0.9**40, abs=1e-12)


def test_ewma_correlation_of_one_row_is_plus_or_minus_one() -> None:
    corr = ewma_correlation([[0.01, -0.02, 0.03]])
    np.testing.assert_allclose(corr, [[1, -1, 1], [-1, 1, -1], [1, -1, 1]], atol=1e-15)


def test_ewma_correlation_is_nan_for_a_zero_variance_asset() -> None:
    r = _random_returns(50, 3)
    r[:, 1] = 0.0
    corr = ewma_correlation(r)
    assert np.isnan(corr[1]).all()
    assert np.isnan(corr[:, 1]).all()
    assert np.isfinite(corr[np.ix_([0, 2], [0, 2])]).all()


def test_covariance_to_correlation_hand_case() -> None:
    corr = covariance_to_correlation([[4.0, 2.0], [2.0, 9.0]])
    np.testing.assert_allclose(corr, [[1.0, 1.0 / 3.0], [1.0 / 3.0, 1.0]], rtol=1e-15)


def test_kernels_match_their_plain_python_versions() -> None:
    r = _random_returns(130, 4, seed=3)
    np.testing.assert_allclose(
        cov._ewma_covariance(r, 0.94), cov._ewma_covariance_python(r, 0.94), rtol=1e-14
    )
    np.testing.assert_allclose(
        cov._rolling_correlation(r, 20), cov._rolling_correlation_python(r, 20), rtol=1e-13, equal_nan=True
    )


# ------------------------------------------------------------------------------------- rolling window
def test_rolling_correlation_matches_pandas_on_sp500_stocks(stock_returns: pd.DataFrame) -> None:
    data = stock_returns.iloc[:2500]  # includes RRC's 60-day flat stretch at the start
    ours = rolling_correlation(data.to_numpy(), window=60)
    theirs = data.rolling(60).corr().to_numpy().reshape(len(data), 20, 20)
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-10, equal_nan=True)


def test_rolling_correlation_matches_pandas_late_in_a_long_series(stock_returns: pd.DataFrame) -> None:
    data = stock_returns.iloc[:, :6]  # 8,312 rows: drift in the running moments would show here
    ours = rolling_correlation(data.to_numpy(), window=250)[-300:]
    theirs = data.rolling(250).corr().to_numpy().reshape(len(data), 6, 6)[-300:]
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-10)


def test_rolling_correlation_is_nan_before_the_window_is_full() -> None:
    out = rolling_correlation(_random_returns(30, 3), window=10)
    assert np.isnan(out[:9]).all()
    assert np.isfinite(out[9:]).all()


def test_rolling_correlation_entry_uses_rows_t_minus_window_plus_one_to_t() -> None:
    r = _random_returns(40, 3, seed=5)
    out = rolling_correlation(r, window=12)
    np.testing.assert_allclose(out[25], np.corrcoef(r[14:26].T), rtol=0, atol=1e-13)


def test_rolling_correlation_is_nan_for_a_flat_column_like_pandas() -> None:
    r = _random_returns(40, 3, seed=2)
    r[5:25, 2] = 0.0013  # 20 identical values: zero variance in windows lying inside the run
    out = rolling_correlation(r, window=10)
    assert np.isnan(out[14:25, 2, :]).all()
    assert np.isnan(out[14:25, :, 2]).all()
    assert np.isfinite(out[14:25, :2, :2]).all()
    assert np.isfinite(out[25:]).all()  # defined again once a different value enters the window


# ------------------------------------------------------------------------------------------ averages
def test_average_pairwise_correlation_hand_case() -> None:
    corr = [[1.0, 0.2, 0.4], [0.2, 1.0, 0.6], [0.4, 0.6, 1.0]]
    assert average_pairwise_correlation(corr) == pytest.approx(0.4, abs=1e-15)


def test_average_pairwise_correlation_skips_undefined_pairs() -> None:
    nan = np.nan
    corr = [[1.0, nan, 0.5], [nan, nan, nan], [0.5, nan, 1.0]]
    assert average_pairwise_correlation(corr) == pytest.approx(0.5, abs=1e-15)


def test_average_pairwise_correlation_is_nan_when_no_pair_is_defined() -> None:
    assert np.isnan(average_pairwise_correlation([[np.nan, np.nan], [np.nan, 1.0]]))


# ---------------------------------------------------------------------------------------- bad inputs
@pytest.mark.parametrize(
    ("call", "field"),
    [
        pytest.param(lambda: ewma_covariance([0.01, 0.02]), "returns", id="ewma-1d"),
        pytest.param(lambda: ewma_covariance([[0.01, np.nan]]), "returns", id="ewma-nan"),
        pytest.param(lambda: ewma_covariance([[0.01, 0.02]], lam=1.0), "lam", id="ewma-lam-1"),
        pytest.param(lambda: ewma_correlation([[0.01, 0.02]], lam=0.0), "lam", id="corr-lam-0"),
        pytest.param(
            lambda: ewma_covariance_update(np.zeros((2, 2)), 0.0, [0.1]), "returns_row", id="row-len"
        ),
        pytest.param(lambda: ewma_covariance_update(np.zeros((2, 3)), 0.0, [0.1, 0.2]), "state", id="state"),
        pytest.param(lambda: ewma_covariance_update(np.zeros((1, 1)), 1.0, [0.1]), "weight", id="weight"),
        pytest.param(lambda: rolling_correlation(np.zeros((5, 2)), window=1), "window", id="window-1"),
        pytest.param(lambda: rolling_correlation(np.zeros((5, 2)), window=6), "window", id="window-long"),
        pytest.param(lambda: rolling_correlation(np.zeros((5, 2)), window=2.0), "window", id="window-float"),
        pytest.param(lambda: rolling_correlation([[0.1, np.inf]] * 3, window=2), "returns", id="rolling-inf"),
        pytest.param(lambda: covariance_to_correlation([[1.0, 0.0]]), "cov", id="cov-not-square"),
        pytest.param(lambda: covariance_to_correlation([[-1.0]]), "cov", id="cov-negative-variance"),
        pytest.param(lambda: average_pairwise_correlation([[1.0]]), "corr", id="avg-1x1"),
        pytest.param(lambda: average_pairwise_correlation([[1.0, np.inf], [0.0, 1.0]]), "corr", id="avg-inf"),
        pytest.param(lambda: average_pairwise_correlation("x"), "corr", id="avg-text"),
    ],
)
def test_bad_input_raises_invalid_input_error_naming_the_field(call: object, field: str) -> None:
    with pytest.raises(InvalidInputError, match=field):
        call()  # type: ignore[operator]


# ------------------------------------------------------------------ zero variance, like pandas
def test_an_all_zero_covariance_has_an_all_nan_correlation_as_pandas_gives() -> None:
    flat = pd.DataFrame(np.zeros((10, 3)))  # three assets that never move
    theirs = flat.corr().to_numpy()
    ours = covariance_to_correlation(np.zeros((3, 3)))
    assert np.isnan(theirs).all()
    np.testing.assert_array_equal(ours, theirs)  # all NaN, diagonal included
    assert np.isnan(average_pairwise_correlation(ours))  # no pair is defined
    assert np.isnan(ewma_correlation(np.zeros((10, 3)))).all()


def test_a_zero_variance_asset_gets_the_nan_row_and_column_pandas_gives() -> None:
    rng = np.random.default_rng(4)
    r = rng.normal(0.0, 0.01, (50, 4))
    r[:, 2] = 0.0  # a flat asset: zero variance, exactly (a constant other than 0 leaves ~1e-36 in np.cov)
    theirs = pd.DataFrame(r).corr().to_numpy()
    ours = covariance_to_correlation(np.cov(r.T))
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))
    assert np.isnan(ours[2]).all()
    assert np.isnan(ours[:, 2]).all()
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12, equal_nan=True)


def test_streaming_update_refuses_a_return_whose_square_overflows() -> None:
    with pytest.raises(InvalidInputError, match=r"returns_row must be within \[-1e\+06, 1e\+06\]"):
        ewma_covariance_update(np.zeros((2, 2)), 0.0, [1e200, 0.0])
    with pytest.raises(InvalidInputError, match="returns must be within"):
        ewma_covariance([[1e200, 0.0]])
