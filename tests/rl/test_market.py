"""Market models: reproducible paths, the moments they promise, the historical date split."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from advanced_risk.config import EnvConfig, MarketKind
from advanced_risk.errors import InvalidInputError
from advanced_risk.rl.portfolio.market import (
    DEFAULT_TRANSITIONS,
    CorrelatedGBM,
    HistoricalReplay,
    MarketModel,
    RegimeSwitchingMarket,
    make_market,
)


@pytest.fixture(scope="module")
def replay_train() -> HistoricalReplay:
    return HistoricalReplay(5, split="train")


@pytest.fixture(scope="module")
def replay_test() -> HistoricalReplay:
    return HistoricalReplay(5, split="test")


@pytest.mark.parametrize("kind", list(MarketKind))
def test_same_seed_gives_the_same_path(kind: MarketKind) -> None:
    market = make_market(EnvConfig(asset_count=4, market=kind))
    assert isinstance(market, MarketModel)
    a = market.sample_path(np.random.default_rng(7), 300)
    b = market.sample_path(np.random.default_rng(7), 300)
    c = market.sample_path(np.random.default_rng(8), 300)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.shape == (300, 4)
    assert np.all(a > -1.0)
    assert np.all(np.isfinite(a))


def test_gbm_matches_its_annualised_drift_vol_and_correlation() -> None:
    corr = np.array([[1.0, 0.6, -0.2], [0.6, 1.0, 0.1], [-0.2, 0.1, 1.0]])
    mu, sigma = np.array([0.05, 0.10, -0.02]), np.array([0.2, 0.3, 0.1])
    market = CorrelatedGBM(mu, sigma, corr)
    log_r = np.log1p(market.sample_path(np.random.default_rng(0), 400_000))
    np.testing.assert_allclose(log_r.std(axis=0) * np.sqrt(252), sigma, rtol=0.01)
    standard_error = sigma * np.sqrt(252 / log_r.shape[0])  # of the annualised mean log return
    assert np.all(np.abs(log_r.mean(axis=0) * 252 - (mu - sigma**2 / 2)) < 4 * standard_error)
    np.testing.assert_allclose(np.corrcoef(log_r.T), corr, atol=0.01)


def test_gbm_default_has_a_monotone_sharpe_edge() -> None:
    market = CorrelatedGBM.default(5)
    sharpe = market.drifts / market.vols
    assert np.all(np.diff(sharpe) > 0)


def test_regime_chain_matches_its_transition_matrix_and_stationary_law() -> None:
    market = RegimeSwitchingMarket(3)
    regimes = market.sample_regimes(np.random.default_rng(1), 300_000)
    counts = np.zeros((3, 3))
    np.add.at(counts, (regimes[:-1], regimes[1:]), 1)
    np.testing.assert_allclose(counts / counts.sum(axis=1, keepdims=True), DEFAULT_TRANSITIONS, atol=0.01)
    np.testing.assert_allclose(np.bincount(regimes) / regimes.size, market.stationary, atol=0.02)
    np.testing.assert_allclose(market.stationary @ DEFAULT_TRANSITIONS, market.stationary, atol=1e-12)


def test_each_regime_has_its_own_vol_and_correlation() -> None:
    market = RegimeSwitchingMarket(2)
    returns, regimes = market.sample_path_and_regimes(np.random.default_rng(2), 300_000)
    log_r = np.log1p(returns)
    for k, (vol, rho) in enumerate(zip((0.12, 0.25, 0.50), (0.3, 0.5, 0.8), strict=True)):
        rows = log_r[regimes == k]
        assert rows.std(axis=0).mean() * np.sqrt(252) == pytest.approx(vol, rel=0.03)
        assert np.corrcoef(rows.T)[0, 1] == pytest.approx(rho, abs=0.03)


def test_historical_splits_never_overlap(
    replay_train: HistoricalReplay, replay_test: HistoricalReplay
) -> None:
    assert replay_train.dates.max() <= np.datetime64("2012-12-31")
    assert replay_test.dates.min() >= np.datetime64("2013-01-01")
    assert replay_train.returns.shape[1] == replay_test.returns.shape[1] == 5


def test_historical_path_is_a_contiguous_window_of_the_split(replay_test: HistoricalReplay) -> None:
    path = replay_test.sample_path(np.random.default_rng(3), 100)
    starts = np.flatnonzero(np.all(replay_test.returns == path[0], axis=1))
    assert any(np.array_equal(replay_test.returns[s : s + 100], path) for s in starts)


def test_historical_returns_are_the_first_tickers_simple_returns(
    sp500_stocks: pd.DataFrame, replay_train: HistoricalReplay
) -> None:
    assert replay_train.tickers == list(sp500_stocks.columns[:5])
    expected = sp500_stocks.iloc[:, :5].pct_change().iloc[1:].loc[:"2012-12-31"].to_numpy()
    np.testing.assert_allclose(replay_train.returns, expected, rtol=1e-15)


def test_historical_split_follows_the_config_dates() -> None:
    config = EnvConfig(
        asset_count=2,
        market=MarketKind.HISTORICAL,
        split="test",
        train_end="2015-12-31",
        test_start="2016-06-01",
    )
    market = make_market(config)
    assert isinstance(market, HistoricalReplay)
    assert market.dates.min() >= np.datetime64("2016-06-01")


@pytest.mark.parametrize(
    ("build", "match"),
    [
        pytest.param(lambda: HistoricalReplay(21), "asset_count", id="too-many-stocks"),
        pytest.param(lambda: HistoricalReplay(0), "asset_count", id="no-stocks"),
        pytest.param(lambda: HistoricalReplay(3, split="valid"), "split", id="bad-split"),
        pytest.param(lambda: CorrelatedGBM([0.1, 0.1], [0.2, -0.1]), "vols", id="negative-vol"),
        pytest.param(lambda: CorrelatedGBM([0.1, np.nan], 0.2), "drifts", id="nan-drift"),
        pytest.param(lambda: CorrelatedGBM(0.1, 0.2, [[1, 2], [2, 1]], n_assets=2), "positive", id="not-pd"),
        pytest.param(lambda: CorrelatedGBM([0.1, 0.2], [0.2, 0.2, 0.2]), "shape", id="length-mismatch"),
        pytest.param(lambda: RegimeSwitchingMarket(2, transitions=np.eye(2)), "transitions", id="bad-chain"),
        pytest.param(
            lambda: make_market(EnvConfig(asset_count=25, market=MarketKind.HISTORICAL)),
            "asset_count",
            id="config-too-many-stocks",
        ),
    ],
)
def test_invalid_market_parameters_raise(build: object, match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        build()  # type: ignore[operator]


def test_path_longer_than_the_split_raises(replay_test: HistoricalReplay) -> None:
    with pytest.raises(InvalidInputError, match="does not fit"):
        replay_test.sample_path(np.random.default_rng(0), replay_test.returns.shape[0] + 1)


def test_n_steps_must_be_positive() -> None:
    with pytest.raises(InvalidInputError, match="n_steps"):
        CorrelatedGBM.default(2).sample_path(np.random.default_rng(0), 0)
