"""The correlation-shock margins scale with the sampling noise of the average correlation (round 5
of docs/risk_rules.md): a book of few assets is not flagged on noise, a book of 6 or more is
unchanged."""

from __future__ import annotations

import dataclasses
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from advanced_risk.config import TrackerConfig
from advanced_risk.errors import InvalidInputError
from advanced_risk.risk.tracker import RiskTracker, next_shock_state, shock_noise_floor


def _flags(returns: np.ndarray, k: float, **changes: float) -> np.ndarray:
    tracker = RiskTracker(
        returns.shape[1], dataclasses.replace(TrackerConfig(), shock_noise_multiple=k, **changes)
    )
    out = np.zeros(returns.shape[0], dtype=bool)
    for t, row in enumerate(returns):
        tracker.update(row)
        out[t] = tracker.correlation_shock
    return out


def test_the_floor_is_the_sampling_std_of_an_ewma_correlation_of_independent_series() -> None:
    """Monte Carlo reference: 4,000 independent pairs, the EWMA correlation (weights lambda^age,
    normalised, zero mean) at the last of 400 bars; its std against the formula for one pair, and
    the average over 3 pairs sharing assets against the formula for 3."""
    lam, bars = 0.94, 400
    rng = np.random.default_rng(5)
    w = lam ** np.arange(bars)[::-1]
    x = rng.standard_normal((4_000, 3, bars))

    def corr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return (w * a * b).sum(-1) / np.sqrt((w * a * a).sum(-1) * (w * b * b).sum(-1))

    one = corr(x[:, 0], x[:, 1])
    three = (one + corr(x[:, 0], x[:, 2]) + corr(x[:, 1], x[:, 2])) / 3.0
    assert one.std() == pytest.approx(shock_noise_floor(lam, 1), rel=0.05)
    assert three.std() == pytest.approx(shock_noise_floor(lam, 3), rel=0.05)
    assert shock_noise_floor(lam, 0) == math.inf


def _independent(n: int, bars: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.standard_t(5, (bars, n)) * 0.01 / math.sqrt(5.0 / 3.0)


def test_few_independent_assets_are_rarely_flagged_by_default() -> None:
    """Regression values of the calibration (examples/calibrate_shock_margin.py): 3 independent
    assets were flagged on ~10 % of the bars with fixed margins; with the default well under 2 %."""
    returns = _independent(3, 3_000, seed=1)
    fixed = _flags(returns, 0.0)[60:].mean()
    default = _flags(returns, TrackerConfig().shock_noise_multiple)[60:].mean()
    assert fixed > 0.03
    assert default < 0.02
    assert TrackerConfig().shock_noise_multiple == 3.0


@pytest.mark.parametrize("n", [6, 20])
def test_six_assets_or_more_are_unchanged(n: int) -> None:
    """At k = 3 the noise floor of 15 pairs or more is under the fixed margin: the same flags bar
    for bar, on a path with a real correlation jump so that the flag does rise."""
    returns = _independent(n, 800, seed=n)
    factor = np.random.default_rng(99).standard_normal((800, 1)) * 0.01
    returns[400:] = math.sqrt(0.4) * returns[400:] + math.sqrt(0.6) * factor[400:]
    fixed, scaled = _flags(returns, 0.0), _flags(returns, 3.0)
    assert fixed.any()
    assert np.array_equal(fixed, scaled)


def test_a_true_shock_on_three_assets_is_still_flagged() -> None:
    returns = _independent(3, 1_000, seed=3)
    factor = np.random.default_rng(7).standard_normal((1_000, 1)) * 0.01
    returns[600:] = math.sqrt(0.3) * returns[600:] + math.sqrt(0.7) * factor[600:]
    flags = _flags(returns, 3.0)
    assert flags[600:700].any()


def test_margins_follow_the_pairs_counted_when_an_asset_joins() -> None:
    """Two assets (1 pair: floor 3 x 0.176 = 0.53), then a third joins: once its pairs count (after
    correlation_warmup bars) the margins drop to the 3-pair floor (0.31); the hysteresis ratio stays."""
    cfg = dataclasses.replace(TrackerConfig(), shock_noise_multiple=3.0, correlation_warmup=20)
    tracker = RiskTracker(2, cfg)
    rng = np.random.default_rng(0)
    for _ in range(30):
        tracker.update(rng.standard_normal(2) * 0.01)
    one_pair = 3.0 * shock_noise_floor(cfg.ewma_lambda, 1)
    assert tracker._shock_margins() == pytest.approx(
        (one_pair, one_pair * cfg.clear_margin / cfg.shock_margin)
    )
    tracker.add_assets(1)
    for _ in range(cfg.correlation_warmup + 1):
        tracker.update(rng.standard_normal(3) * 0.01)
    three_pairs = 3.0 * shock_noise_floor(cfg.ewma_lambda, 3)
    assert tracker._shock_margins()[0] == pytest.approx(three_pairs)
    tracker.remove_assets([0])
    tracker.update(rng.standard_normal(2) * 0.01)
    assert tracker._shock_margins()[0] == pytest.approx(one_pair)


def test_hysteresis_rule_is_unchanged() -> None:
    assert next_shock_state(False, 0.10, 0.15, 0.075) is False
    assert next_shock_state(True, 0.10, 0.15, 0.075) is True


@pytest.mark.parametrize("bad", [-0.1, math.nan, math.inf, 10.5, "3"])
def test_a_bad_multiple_is_refused_naming_the_field(bad: object) -> None:
    with pytest.raises(InvalidInputError, match="shock_noise_multiple"):
        TrackerConfig(shock_noise_multiple=bad)  # type: ignore[arg-type]


def test_the_calibration_command_runs() -> None:
    """examples/calibrate_shock_margin.py, smoke-sized: the grid's table and its choice print."""
    script = Path(__file__).resolve().parents[2] / "examples" / "calibrate_shock_margin.py"
    done = subprocess.run(
        [sys.executable, str(script), "--bars", "300", "--seeds", "1"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "share of bars flagged under the null" in done.stdout
    assert "chosen (smallest k" in done.stdout
