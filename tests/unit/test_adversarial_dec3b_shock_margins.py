"""Adversarial checks of the noise-scaled correlation-shock margins (8084d20).

Expected behaviour: at every bar after the warm-up the flag follows ``next_shock_state`` with both
margins raised, in proportion, to ``shock_noise_multiple * shock_noise_floor(lambda, pairs)`` for
the pairs counted (fixed margins with multiple 0); one asset, or assets joining and leaving, never
raise; independent books of 2-4 assets are rarely flagged.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from advanced_risk.config import TrackerConfig
from advanced_risk.errors import ConfigError, InvalidInputError
from advanced_risk.risk.tracker import RiskTracker, next_shock_state, shock_noise_floor


def _config(multiple: float = 3.0, **kw: object) -> TrackerConfig:
    values: dict[str, object] = {
        "window": 20,
        "correlation_warmup": 10,
        "fhs_window": 100,
        "shock_noise_multiple": multiple,
    }
    values.update(kw)
    return TrackerConfig(**values)  # type: ignore[arg-type]


def _margins(cfg: TrackerConfig, pairs: int) -> tuple[float, float]:
    if cfg.shock_noise_multiple == 0.0:
        return cfg.shock_margin, cfg.clear_margin
    floor = cfg.shock_noise_multiple * shock_noise_floor(cfg.ewma_lambda, pairs)
    scale = max(1.0, floor / cfg.shock_margin)
    return cfg.shock_margin * scale, cfg.clear_margin * scale


def _regime_path(n: int, bars: int, seed: int) -> np.ndarray:
    """Independent, then a common factor (correlation ~0.8), then independent again."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 0.01, (bars, n))
    common = rng.normal(0.0, 0.01, (bars, 1))
    lo, hi = bars // 3, 2 * bars // 3
    x[lo:hi] = 0.5 * x[lo:hi] + 2.0 * common[lo:hi]
    return x


@pytest.mark.parametrize("n", [2, 3, 4, 6, 20])
@pytest.mark.parametrize("multiple", [0.0, 1.0, 3.0, 10.0])
def test_the_flag_follows_the_scaled_margins_bar_by_bar(n: int, multiple: float) -> None:
    cfg = _config(multiple)
    tracker = RiskTracker(n, cfg)
    shock_margin, clear_margin = _margins(cfg, n * (n - 1) // 2)
    flagged = 0
    for row in _regime_path(n, 450, seed=n):
        before, baseline = tracker.correlation_shock, tracker.correlation_baseline
        tracker.update(row)
        if math.isnan(baseline):
            assert not tracker.correlation_shock
            continue
        fast = tracker.average_correlation()
        want = next_shock_state(before, fast - baseline, shock_margin, clear_margin)
        assert tracker.correlation_shock == want
        flagged += want
    if multiple <= 3.0 or n >= 6:
        assert flagged > 0  # the correlated regime is still seen


def test_the_default_changes_nothing_from_six_assets() -> None:
    cfg = _config()
    assert _margins(cfg, 15) == (cfg.shock_margin, cfg.clear_margin)
    assert _margins(cfg, 3)[0] > cfg.shock_margin


def test_noise_floor_edges() -> None:
    assert shock_noise_floor(0.94, 0) == math.inf
    assert shock_noise_floor(0.94, -3) == math.inf
    assert shock_noise_floor(0.94, 1) == pytest.approx(math.sqrt(0.06 / 1.94))
    assert shock_noise_floor(0.94, 10**9) > 0.0


@pytest.mark.parametrize("bad", [math.nan, math.inf, -0.1, 10.5, "3", True])
def test_an_invalid_multiple_is_refused(bad: object) -> None:
    with pytest.raises((InvalidInputError, ConfigError)):
        TrackerConfig(shock_noise_multiple=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("n", [2, 3, 4])
def test_independent_small_books_are_rarely_flagged(n: int) -> None:
    cfg = TrackerConfig(window=20, fhs_window=100)  # the default warm-up and margins
    flagged = bars = 0
    for seed in range(3):
        tracker = RiskTracker(n, cfg)
        for row in np.random.default_rng(100 + seed).normal(0.0, 0.01, (1500, n)):
            tracker.update(row)
            if not math.isnan(tracker.correlation_baseline):
                bars += 1
                flagged += tracker.correlation_shock
    assert flagged / bars < 0.02


def test_one_asset_is_never_flagged() -> None:
    tracker = RiskTracker(1, _config())
    for row in _regime_path(1, 200, seed=1):
        tracker.update(row)
        assert not tracker.correlation_shock


OPS = st.lists(
    st.tuples(st.sampled_from(["bar", "bar", "bar", "add", "remove"]), st.integers(0, 10**6)),
    min_size=1,
    max_size=120,
)


@settings(max_examples=60, deadline=None)
@given(ops=OPS, n0=st.integers(1, 5), seed=st.integers(0, 2**16))
def test_joins_and_leaves_never_raise_and_keep_the_flag_sane(
    ops: list[tuple[str, int]], n0: int, seed: int
) -> None:
    """Random joins/leaves between bars, correlated bursts and flat assets: no exception, the flag
    never stands with fewer than two assets, and the average stays in [-1, 1] or NaN."""
    rng = np.random.default_rng(seed)
    tracker = RiskTracker(n0, _config(correlation_warmup=5))
    for op, k in ops:
        n = tracker.n_assets
        if op == "add":
            tracker.add_assets(1 + k % 3)
        elif op == "remove" and n > 1:
            count = 1 + k % (n - 1)
            tracker.remove_assets(rng.choice(n, count, replace=False))
        else:
            common = rng.normal(0.0, 0.02) if k % 4 == 0 else 0.0
            row = rng.normal(0.0, 0.01, n) + common
            row[rng.random(n) < 0.1] = 0.0  # flat quotes
            tracker.update(row)
        avg = tracker.average_correlation()
        assert math.isnan(avg) or -1.0 <= avg <= 1.0
        if tracker.n_assets < 2:
            assert not tracker.correlation_shock
