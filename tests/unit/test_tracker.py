"""Unit tests of risk/tracker.py: streaming results equal the batch kernels; the shock flag's rules."""

from __future__ import annotations

import dataclasses
import importlib.resources
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from advanced_risk.config import TrackerConfig
from advanced_risk.errors import InvalidInputError
from advanced_risk.measures import (
    average_pairwise_correlation,
    ewma_correlation,
    ewma_covariance,
    ewma_variance,
    filtered_historical_cvar,
    filtered_historical_var,
    portfolio_cvar,
    portfolio_var,
)
from advanced_risk.measures.var import VaRMethod
from advanced_risk.risk.tracker import RiskSnapshot, RiskTracker, next_shock_state

CONFIG = TrackerConfig(window=250, fhs_window=400, method=VaRMethod.HISTORICAL)


@pytest.fixture(scope="module")
def stock_returns() -> np.ndarray:
    """Simple returns of the bundled 20 stocks, rows 3000..3600 (600 bars)."""
    path = importlib.resources.files("advanced_risk") / "datasets" / "sp500_stocks_daily.csv.gz"
    with importlib.resources.as_file(path) as file:
        prices = pd.read_csv(file, parse_dates=["Date"], index_col="Date")
    return prices.pct_change().iloc[3001:3601].to_numpy()


@pytest.fixture(scope="module")
def fed(stock_returns: np.ndarray) -> RiskTracker:
    """A tracker fed all 600 bars (the 400-row ring buffer has wrapped around)."""
    tracker = RiskTracker(stock_returns.shape[1], CONFIG)
    for row in stock_returns:
        tracker.update(row)
    return tracker


def _weights(n: int) -> np.ndarray:
    w = np.linspace(1.0, 2.0, n)
    return 0.9 * w / w.sum()  # 10% cash


# ------------------------------------------------------------------------- streaming equals batch
@pytest.mark.parametrize("method", ["historical", "gaussian", "cornish_fisher"])
def test_tracker_var_and_cvar_equal_batch_portfolio_kernels_on_trailing_window(
    fed: RiskTracker, stock_returns: np.ndarray, method: str
) -> None:
    w = _weights(20)
    window = stock_returns[-CONFIG.window :]
    assert fed.var(w, method, 0.99) == pytest.approx(portfolio_var(w, window, 0.99, method), abs=1e-12)
    assert fed.cvar(w, method, 0.99) == pytest.approx(portfolio_cvar(w, window, 0.99, method), abs=1e-12)


def test_tracker_fhs_ewma_equals_filtered_historical_simulation_on_fhs_window(
    fed: RiskTracker, stock_returns: np.ndarray
) -> None:
    w = _weights(20)
    p = stock_returns[-CONFIG.fhs_window :] @ w
    variance = ewma_variance(p, lam=CONFIG.ewma_lambda)
    assert fed.var(w, "fhs_ewma", 0.975) == pytest.approx(
        filtered_historical_var(p, variance, 0.975), abs=1e-12
    )
    assert fed.cvar(w, "fhs_ewma", 0.975) == pytest.approx(
        filtered_historical_cvar(p, variance, 0.975), abs=1e-12
    )
    batch = portfolio_var(w, stock_returns[-CONFIG.fhs_window :], 0.975, "fhs_ewma")  # same lam 0.94
    assert fed.var(w, "fhs_ewma", 0.975) == pytest.approx(batch, abs=1e-12)


def test_tracker_uses_config_method_and_alpha_by_default(fed: RiskTracker, stock_returns: np.ndarray) -> None:
    w = _weights(20)
    expected = portfolio_var(w, stock_returns[-CONFIG.window :], 0.99, CONFIG.method)  # alpha None: 0.99
    assert fed.var(w) == pytest.approx(expected, abs=1e-12)


def test_tracker_ewma_covariance_and_correlation_equal_batch(
    fed: RiskTracker, stock_returns: np.ndarray
) -> None:
    lam = CONFIG.ewma_lambda
    np.testing.assert_allclose(fed.covariance(), ewma_covariance(stock_returns, lam), rtol=1e-12, atol=1e-18)
    np.testing.assert_allclose(fed.correlation(), ewma_correlation(stock_returns, lam), rtol=0, atol=1e-12)


def test_tracker_average_correlation_equals_batch_average_pairwise(
    fed: RiskTracker, stock_returns: np.ndarray
) -> None:
    expected = average_pairwise_correlation(ewma_correlation(stock_returns, CONFIG.ewma_lambda))
    assert fed.average_correlation() == pytest.approx(expected, abs=1e-12)


def test_tracker_ring_buffer_returns_the_last_rows_oldest_first(
    fed: RiskTracker, stock_returns: np.ndarray
) -> None:
    np.testing.assert_array_equal(fed.recent_returns(), stock_returns[-CONFIG.window :])
    np.testing.assert_array_equal(fed.recent_returns(10_000), stock_returns[-CONFIG.fhs_window :])


def test_tracker_fhs_uses_all_bars_while_fewer_than_fhs_window(stock_returns: np.ndarray) -> None:
    tracker = RiskTracker(20, CONFIG)
    for row in stock_returns[:300]:
        tracker.update(row)
    w = _weights(20)
    expected = portfolio_var(w, stock_returns[:300], 0.99, "fhs_ewma")
    assert tracker.var(w, "fhs_ewma", 0.99) == pytest.approx(expected, abs=1e-12)


def test_tracker_is_ready_after_window_bars_and_counts_observations(stock_returns: np.ndarray) -> None:
    tracker = RiskTracker(20, CONFIG)
    for i, row in enumerate(stock_returns[: CONFIG.window], start=1):
        assert not tracker.ready
        tracker.update(row)
        assert tracker.n_observations == i
    assert tracker.ready


def test_snapshot_reports_the_same_numbers_as_the_queries(fed: RiskTracker) -> None:
    w = _weights(20)
    snap = fed.snapshot(w, "gaussian", 0.95)
    assert isinstance(snap, RiskSnapshot)
    assert (snap.var, snap.cvar) == (fed.var(w, "gaussian", 0.95), fed.cvar(w, "gaussian", 0.95))
    assert (snap.method, snap.alpha, snap.n_observations) == (VaRMethod.GAUSSIAN, 0.95, 600)
    assert snap.average_correlation == fed.average_correlation()
    assert snap.correlation_shock == fed.correlation_shock
    with pytest.raises(dataclasses.FrozenInstanceError):
        snap.var = 0.0  # type: ignore[misc]


# ------------------------------------------------------------------------------ correlation shock
def _regime_returns(seed: int = 7) -> tuple[np.ndarray, slice]:
    """20 independent assets for 500 bars, 40 bars driven by one common factor (corr 0.8), calm again.

    With 20 assets the calm average EWMA correlation is quiet enough (std ~0.02) that the default
    margins see no false alarm; with very few assets its noise alone can approach shock_margin.
    """
    rng = np.random.default_rng(seed)
    calm = rng.normal(0.0, 0.01, size=(1300, 20))
    factor = rng.normal(0.0, 0.01, size=(40, 1))
    stressed = np.sqrt(0.8) * factor + np.sqrt(0.2) * rng.normal(0.0, 0.01, size=(40, 20))
    jump = slice(500, 540)
    return np.vstack([calm[:500], stressed, calm[500:]]), jump


@pytest.mark.parametrize("seed", [7, 8, 9])
def test_correlation_shock_rises_on_a_correlation_jump_and_clears_by_itself(seed: int) -> None:
    returns, jump = _regime_returns(seed)
    tracker = RiskTracker(20, TrackerConfig(window=50))
    flags = []
    for row in returns:
        tracker.update(row)
        flags.append(tracker.correlation_shock)
    flag = np.array(flags)
    assert not flag[: jump.start].any()  # no false alarm in the calm regime
    assert flag[jump.start : jump.start + 10].any()  # rises within days of the jump
    assert not flag[-500:].any()  # cleared by itself, no reset
    changes = np.flatnonzero(np.diff(flag.astype(int)))
    assert len(changes) == 2  # exactly one rise and one clear: no flapping


def test_correlation_shock_is_off_during_warm_up() -> None:
    rng = np.random.default_rng(1)
    common = rng.normal(0.0, 0.01, size=(59, 1)) + rng.normal(0.0, 0.001, size=(59, 4))
    tracker = RiskTracker(4, TrackerConfig(window=50, correlation_warmup=60))
    for row in common:
        tracker.update(row)
        assert not tracker.correlation_shock
    assert np.isnan(tracker.correlation_baseline)


def test_shock_rule_holds_its_state_between_the_margins_instead_of_flapping() -> None:
    excess = [0.10, 0.16, 0.14, 0.151, 0.149, 0.08, 0.076, 0.074, 0.10, 0.149, 0.151]
    state, states = False, []
    for x in excess:
        state = next_shock_state(state, x, shock_margin=0.15, clear_margin=0.075)
        states.append(state)
    assert states == [False, True, True, True, True, True, True, False, False, False, True]


# -------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("call", "field"),
    [
        pytest.param(lambda t: t.update([0.01] * 19), "returns_row", id="row-too-short"),
        pytest.param(lambda t: t.update([[0.01] * 20]), "returns_row", id="row-2d"),
        pytest.param(lambda t: t.update([0.01] * 19 + [np.nan]), "returns_row", id="row-nan"),
        pytest.param(lambda t: t.update([np.inf] + [0.01] * 19), "returns_row", id="row-inf"),
        pytest.param(lambda t: t.update(["a"] * 20), "returns_row", id="row-text"),
        pytest.param(lambda t: t.var([0.05] * 19), "weights", id="weights-length"),
        pytest.param(lambda t: t.cvar([np.nan] * 20), "weights", id="weights-nan"),
        pytest.param(lambda t: t.var([0.05] * 20, method="montecarlo"), "method", id="method"),
        pytest.param(lambda t: t.snapshot([0.05] * 20, alpha=1.2), "alpha", id="alpha"),
        pytest.param(lambda t: RiskTracker(0), "n_assets", id="no-asset"),
        pytest.param(lambda t: RiskTracker(3, config={"window": 50}), "config", id="config-dict"),
    ],
)
def test_bad_input_raises_invalid_input_error_naming_the_field(
    fed: RiskTracker, call: object, field: str
) -> None:
    with pytest.raises(InvalidInputError, match=field):
        call(fed)  # type: ignore[operator]


def test_bad_row_leaves_the_tracker_unchanged(stock_returns: np.ndarray) -> None:
    tracker = RiskTracker(20, CONFIG)
    tracker.update(stock_returns[0])
    before = tracker.covariance()
    with pytest.raises(InvalidInputError, match="returns_row"):
        tracker.update(np.full(20, np.nan))
    assert tracker.n_observations == 1
    np.testing.assert_array_equal(tracker.covariance(), before)


def test_var_before_ready_raises_naming_the_bars_needed() -> None:
    tracker = RiskTracker(3, TrackerConfig(window=50))
    tracker.update([0.01, 0.02, 0.03])
    with pytest.raises(InvalidInputError, match="needs 50 bars"):
        tracker.var([0.3, 0.3, 0.4])


# ------------------------------------------------------------------------------------------- GARCH
def test_tracker_fhs_garch_equals_filtered_historical_simulation_with_its_fitted_params(
    stock_returns: np.ndarray,
) -> None:
    tracker = RiskTracker(20, dataclasses.replace(CONFIG, garch_refit_every=50))
    for row in stock_returns:
        tracker.update(row)
    w = _weights(20)
    var, cvar = tracker.var(w, "fhs_garch", 0.99), tracker.cvar(w, "fhs_garch", 0.99)
    params = tracker.garch_params
    assert params is not None
    p = stock_returns[-CONFIG.fhs_window :] @ w
    # the book rescaled to the model's unconditional second moment, filtered, scaled back
    persistence = params.alpha + params.gamma / 2 + params.beta
    scale = math.sqrt(np.mean(p * p) / (params.omega / (1 - persistence) + params.mu**2))
    q = p / scale
    variance = params.variance(q)
    assert var == pytest.approx(scale * filtered_historical_var(q, variance, 0.99, params.mu), abs=1e-12)
    assert cvar == pytest.approx(scale * filtered_historical_cvar(q, variance, 0.99, params.mu), abs=1e-12)
    assert 0.0 < var < cvar < 0.2


def test_tracker_fhs_garch_var_scales_with_the_book(stock_returns: np.ndarray) -> None:
    """VaR is positively homogeneous: a book k times the size has k times the VaR (the fit's constant
    omega once made a small book read as relatively riskier: 49 breaches against 20 expected)."""
    tracker = RiskTracker(20, dataclasses.replace(CONFIG, garch_refit_every=50))
    for row in stock_returns:
        tracker.update(row)
    w = _weights(20)
    for k in (0.1, 0.5, 2.0):
        assert tracker.var(k * w, "fhs_garch", 0.99) == pytest.approx(
            k * tracker.var(w, "fhs_garch", 0.99), rel=1e-9
        )
        assert tracker.cvar(k * w, "fhs_garch", 0.99) == pytest.approx(
            k * tracker.cvar(w, "fhs_garch", 0.99), rel=1e-9
        )


def test_tracker_refits_garch_only_every_garch_refit_every_bars(stock_returns: np.ndarray) -> None:
    tracker = RiskTracker(20, dataclasses.replace(CONFIG, garch_refit_every=50))
    for row in stock_returns[:400]:
        tracker.update(row)
    w = _weights(20)
    tracker.var(w, "fhs_garch")
    first = tracker.garch_params
    for row in stock_returns[400:449]:
        tracker.update(row)
    tracker.var(w, "fhs_garch")
    assert tracker.garch_params is first  # 49 bars later: not due
    tracker.update(stock_returns[449])
    tracker.var(w, "fhs_garch")
    assert tracker.garch_params is not first  # 50 bars later: refitted


def test_tracker_does_not_import_arch_unless_fhs_garch_is_used() -> None:
    code = (
        "import sys, numpy as np\n"
        "from advanced_risk.config import TrackerConfig\n"
        "from advanced_risk.risk.tracker import RiskTracker\n"
        "t = RiskTracker(3, TrackerConfig(window=20))\n"
        "for row in np.random.default_rng(0).normal(0, 0.01, (30, 3)):\n"
        "    t.update(row)\n"
        "t.var([0.3, 0.3, 0.4], 'historical'); t.var([0.3, 0.3, 0.4], 'fhs_ewma')\n"
        "assert 'arch' not in sys.modules, 'arch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_fhs_garch_with_fewer_than_100_bars_raises_naming_the_method() -> None:
    tracker = RiskTracker(3, TrackerConfig(window=50))
    for row in np.random.default_rng(0).normal(0.0, 0.01, size=(60, 3)):
        tracker.update(row)
    with pytest.raises(InvalidInputError, match="fhs_garch needs 100 bars"):
        tracker.var([0.3, 0.3, 0.4], "fhs_garch")


def test_one_asset_has_var_and_no_correlation() -> None:
    rng = np.random.default_rng(3)
    tracker = RiskTracker(1, TrackerConfig(window=50, method=VaRMethod.HISTORICAL))
    rows = rng.normal(0.0, 0.01, (60, 1))
    for row in rows:
        tracker.update(row)
    expected = -np.quantile(rows[-50:, 0] * 0.5, 0.01)  # numpy's linear interpolation
    assert tracker.var([0.5]) == pytest.approx(expected, rel=1e-12)
    assert math.isnan(tracker.average_correlation())
    assert not tracker.correlation_shock


def test_a_late_joiner_covariance_is_the_ewma_of_the_bars_it_was_seen() -> None:
    """Per-pair normaliser: the joiner's entries equal a batch EWMA over the bars since it joined."""

    def ewma_covariance(x: np.ndarray, lam: float) -> np.ndarray:  # RiskMetrics by hand, numpy only
        t = x.shape[0]
        w = (1.0 - lam) * lam ** np.arange(t - 1, -1, -1) / (1.0 - lam**t)
        return (x * w[:, None]).T @ x

    rng = np.random.default_rng(4)
    lam = 0.94
    tracker = RiskTracker(2, TrackerConfig(window=20, ewma_lambda=lam))
    early = rng.normal(0.0, 0.01, (40, 2))
    for row in early:
        tracker.update(row)
    tracker.add_assets(1)
    late = rng.normal(0.0, 0.02, (15, 3))
    for row in late:
        tracker.update(row)
    cov = tracker.covariance()
    since_join = ewma_covariance(late, lam=lam)  # independent batch reference on the shared bars
    np.testing.assert_allclose(cov[2, 2], since_join[2, 2], rtol=1e-12)
    np.testing.assert_allclose(cov[0, 2], since_join[0, 2], rtol=1e-12)
    full = ewma_covariance(np.vstack([early, late[:, :2]]), lam=lam)
    np.testing.assert_allclose(cov[:2, :2], full, rtol=1e-12)
    w = np.array([0.3, -0.2, 0.5])
    assert tracker.portfolio_variance(w) == pytest.approx(float(w @ cov @ w), rel=1e-12)
    assert tracker.asset_observations.tolist() == [55, 55, 15]


def test_removing_assets_keeps_the_others_state() -> None:
    rng = np.random.default_rng(5)
    tracker = RiskTracker(3, TrackerConfig(window=20, method=VaRMethod.HISTORICAL))
    rows = rng.normal(0.0, 0.01, (30, 3))
    for row in rows:
        tracker.update(row)
    before = tracker.covariance()[np.ix_([0, 2], [0, 2])]
    var_before = tracker.var([0.4, 0.0, 0.6])
    tracker.remove_assets([1])
    assert tracker.n_assets == 2
    np.testing.assert_array_equal(tracker.covariance(), before)
    assert tracker.var([0.4, 0.6]) == pytest.approx(var_before, rel=1e-14)  # one fewer zero term
    with pytest.raises(InvalidInputError, match="indices"):
        tracker.remove_assets([0, 1])


# --------------------------------------------------------------------------- overflowing returns
@pytest.mark.parametrize("value", [1e200, -1e200, 1.5e154, 2e6])
def test_a_return_whose_square_would_swamp_the_covariance_is_refused(value: float) -> None:
    # the reported bug: update([1e200, 0, 0]) was accepted and covariance()[0, 0] was inf for 300 bars
    tracker = RiskTracker(3)
    with pytest.raises(InvalidInputError, match=r"returns_row must be within \[-1e\+06, 1e\+06\].*index 0"):
        tracker.update([value, 0.0, 0.0])
    assert tracker.n_observations == 0
    np.testing.assert_array_equal(tracker.covariance(), np.zeros((3, 3)))
    tracker.update([0.01, -0.02, 0.03])
    # by hand: one bar of the zero-mean EWMA is r r^T
    np.testing.assert_allclose(tracker.covariance(), np.outer([0.01, -0.02, 0.03], [0.01, -0.02, 0.03]))


def test_an_int_beyond_the_float_range_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="returns_row must be finite"):
        RiskTracker(2).update([10**400, 0])


def test_returns_at_the_bound_are_accepted() -> None:
    tracker = RiskTracker(3)
    row = np.array([1e6, -9e5, 9e5])  # |r| <= MAX_ABS_RETURN = 1e6, the bound included
    tracker.update(row)
    np.testing.assert_array_equal(tracker.covariance(), np.outer(row, row))  # r r^T, by hand
    assert tracker.covariance()[0, 0] == 1e12
