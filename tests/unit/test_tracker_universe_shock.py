"""The correlation-shock flag reads a rise of the correlations, not a change of the pairs averaged:
removing an asset or counting a late joiner moves the baseline by the jump that change alone makes."""

from __future__ import annotations

import numpy as np
import pytest

from advanced_risk.risk.tracker import RiskTracker


def _rows(rng: np.random.Generator, n: int, loose: int) -> np.ndarray:
    """Two assets with correlation ~0.9, then ``loose`` independent ones."""
    common = rng.standard_normal((n, 1)) * 0.01
    pair = common + rng.standard_normal((n, 2)) * 0.003
    return np.hstack([pair, rng.standard_normal((n, loose)) * 0.01])


def _ewma_average_correlation(rows: np.ndarray, lam: float = 0.94) -> float:
    """Independent reference: RiskMetrics EWMA covariance summed by hand, its correlation, the mean
    of the upper triangle."""
    weights = (1.0 - lam) * lam ** np.arange(len(rows))[::-1]
    cov = (rows * weights[:, None]).T @ rows
    sd = np.sqrt(np.diag(cov))
    corr = cov / np.outer(sd, sd)
    return float(corr[np.triu_indices(len(sd), 1)].mean())


def _shock_bars(tracker: RiskTracker, rows: np.ndarray) -> int:
    count = 0
    for row in rows:
        tracker.update(row)
        count += tracker.correlation_shock
    return count


@pytest.mark.parametrize("seed", range(4))
def test_removing_an_uncorrelated_asset_raises_no_shock(seed: int) -> None:
    rng = np.random.default_rng(seed)
    tracker = RiskTracker(3)
    _shock_bars(tracker, _rows(rng, 300, 1))
    before = tracker.correlation_baseline
    tracker.remove_assets([2])  # the average jumps from ~0.3 (three pairs) to ~0.9 (one pair)
    assert tracker.average_correlation() > before + 0.3
    assert not tracker.correlation_shock
    assert _shock_bars(tracker, _rows(rng, 100, 0)) == 0  # was up on every bar: a baseline left behind


def test_after_a_removal_the_average_is_the_remaining_pairs_and_the_excess_is_kept() -> None:
    rng = np.random.default_rng(7)
    tracker = RiskTracker(4)
    rows = _rows(rng, 200, 2)
    _shock_bars(tracker, rows)
    excess = tracker.average_correlation() - tracker.correlation_baseline
    tracker.remove_assets([0, 3])
    reference = _ewma_average_correlation(rows[:, [1, 2]])
    assert tracker.average_correlation() == pytest.approx(reference, abs=1e-9)
    assert tracker.average_correlation() - tracker.correlation_baseline == pytest.approx(excess, abs=1e-12)


@pytest.mark.parametrize("seed", range(4))
def test_a_correlated_late_joiner_raises_no_shock_when_its_pairs_start_to_count(seed: int) -> None:
    rng = np.random.default_rng(seed)
    tracker = RiskTracker(2)  # one asset of the correlated pair and an independent one
    rows = _rows(rng, 700, 1)
    _shock_bars(tracker, rows[:300, 1:])
    tracker.add_assets(1)  # the pair's other asset: the average goes from ~0 to ~0.3 once counted
    warmup = tracker.config.correlation_warmup
    joined = rows[300:, [1, 2, 0]]
    _shock_bars(tracker, joined[: warmup - 1])
    before = tracker.average_correlation()
    excess = before - tracker.correlation_baseline
    tracker.update(joined[warmup - 1])  # its pairs count from this bar
    assert tracker.average_correlation() > before + 0.2
    # the baseline moved with the jump: the one pair counted before keeps its excess, a third of
    # the three pairs counted now; beyond that the excess moves only by one bar's news
    assert abs(tracker.average_correlation() - tracker.correlation_baseline - excess / 3) < 0.1
    assert _shock_bars(tracker, joined[warmup:]) <= 0.3 * (len(joined) - warmup)


def test_a_joiner_removed_before_its_pairs_count_changes_nothing_later() -> None:
    rng = np.random.default_rng(3)
    tracker = RiskTracker(3)
    rows = _rows(rng, 300, 1)
    _shock_bars(tracker, rows[:200])
    tracker.add_assets(1)
    _shock_bars(tracker, np.hstack([rows[200:210], rows[200:210, :1]]))
    tracker.remove_assets([3])
    base = tracker.correlation_baseline
    for row in rows[210:]:
        tracker.update(row)
    control = RiskTracker(3)
    _shock_bars(control, rows)
    assert np.isfinite(base)
    assert tracker.average_correlation() == pytest.approx(control.average_correlation(), abs=1e-12)


def test_removal_down_to_one_asset_lowers_the_flag_and_restarts_the_baseline() -> None:
    rng = np.random.default_rng(5)
    tracker = RiskTracker(3)
    rows = _rows(rng, 300, 1)
    rows[250:, 2] = rows[250:, 0]  # the loose asset joins the pair: a real shock
    assert _shock_bars(tracker, rows) > 0
    assert tracker.correlation_shock
    tracker.remove_assets([1, 2])
    assert not tracker.correlation_shock
    assert np.isnan(tracker.average_correlation())
    assert np.isnan(tracker.correlation_baseline)
