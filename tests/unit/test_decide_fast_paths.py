"""The fused kernels of the decision (issue 14) against the NumPy formulation they replaced, kept
here verbatim as the reference: every output bit for bit (``==`` / ``np.array_equal``, never a
tolerance).

- the FHS VaR/CVaR (``measures/fhs_fused.py``, used by ``RiskTracker._fhs_pair``): random portfolio
  returns of every length class of NumPy's pairwise summation, random GJR-GARCH parameters and
  levels, and through the tracker's own queries;
- the stops and sizes (``measures/stop_kernels.py``, used by ``DecisionEngine._sizes_and_stops``):
  random targets, held books, prices, ATRs (NaN while not ready), previous stops (NaN or not, either
  side, through the price or not) and sizing scalars."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from advanced_risk.errors import InvalidInputError
from advanced_risk.measures.fhs_fused import fhs_garch_kernel, mean_square_kernel, pairwise_mean_kernel
from advanced_risk.measures.kernels import ewma_variance_kernel, fhs_kernel
from advanced_risk.measures.stop_kernels import position_sizes_kernel, trail_stops_kernel
from advanced_risk.measures.var_kernels import FHS_SIGMA_FLOOR
from advanced_risk.risk.garch import GarchParams
from advanced_risk.risk.tracker import RiskTracker


# -- the NumPy formulation before the kernels (tracker.py at 1a5b1c6), verbatim but for `self`, with
# the variance floor added since (measures.var_kernels.FHS_SIGMA_FLOOR) ----------------------------------
def _floored(variance: np.ndarray, mean_square: float) -> np.ndarray:
    return np.maximum(variance, FHS_SIGMA_FLOOR * FHS_SIGMA_FLOOR * mean_square)


def reference_fhs_pair(
    p: np.ndarray, garch: GarchParams | None, lam: float, alpha: float
) -> tuple[float, float]:
    mean_square = float(np.mean(p * p))
    if mean_square == 0.0:
        return 0.0, 0.0
    if garch is None:
        return fhs_kernel(p, _floored(ewma_variance_kernel(p, lam, mean_square), mean_square), 0.0, alpha)
    scale = garch.book_scale(mean_square)
    q = p / scale
    floor = float(np.mean((q - garch.mu) ** 2))
    var, cvar = fhs_kernel(q, _floored(garch.variance(q), floor), garch.mu, alpha)
    return var * scale, cvar * scale


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


LENGTHS = st.sampled_from(
    [1, 2, 7, 8, 9, 15, 16, 17, 100, 127, 128, 129, 135, 250, 255, 256, 257, 500, 503, 1000]
)
SCALES = st.sampled_from([1e-4, 1e-2, 1.0])


@st.composite
def returns(draw: st.DrawFn, min_len: int = 1) -> np.ndarray:
    n = draw(LENGTHS.filter(lambda k: k >= min_len))
    scale = draw(SCALES)
    x = draw(arrays(np.float64, n, elements=st.floats(-1.0, 1.0, allow_nan=False, width=64)))
    seed = draw(st.integers(0, 2**32 - 1))
    noise = np.random.default_rng(seed).standard_t(4, size=n)
    return np.ascontiguousarray((x + noise) * scale)


@st.composite
def garch_params(draw: st.DrawFn) -> GarchParams:
    alpha = draw(st.floats(0.0, 0.2))
    gamma = draw(st.floats(0.0, 0.2))
    beta = draw(st.floats(0.5, 0.98))
    omega = draw(st.sampled_from([0.0, 1e-7, 1e-5, 1e-3]))
    mu = draw(st.floats(-1e-3, 1e-3))
    return GarchParams(mu=mu, omega=omega, alpha=alpha, gamma=gamma, beta=beta, nu=8.0)


@settings(max_examples=300, deadline=None)
@given(x=returns())
def test_pairwise_mean_is_numpys_mean(x: np.ndarray) -> None:
    assert pairwise_mean_kernel(x) == float(np.mean(x))
    assert mean_square_kernel(x) == float(np.mean(x * x))


@settings(max_examples=300, deadline=None)
@given(p=returns(min_len=2), params=garch_params(), level=st.sampled_from([0.9, 0.95, 0.975, 0.99, 0.999]))
def test_fhs_garch_kernel_is_the_numpy_formulation(p: np.ndarray, params: GarchParams, level: float) -> None:
    mean_square = float(np.mean(p * p))
    if mean_square == 0.0:
        return
    scale = params.book_scale(mean_square)
    q = p / scale
    expected = fhs_kernel(
        q, _floored(params.variance(q), float(np.mean((q - params.mu) ** 2))), params.mu, level
    )
    var, cvar, ok = fhs_garch_kernel(
        p, scale, params.mu, params.omega, params.alpha, params.gamma, params.beta, level
    )
    assert ok
    assert _same(var, expected[0])
    assert _same(cvar, expected[1])


def test_fhs_garch_kernel_refuses_what_as_returns_refuses() -> None:
    params = GarchParams(mu=0.0, omega=1e-6, alpha=0.05, gamma=0.05, beta=0.9)
    for bad in (np.nan, np.inf, 2e6):
        p = np.full(10, 0.01)
        p[3] = bad
        _, _, ok = fhs_garch_kernel(p, 1.0, 0.0, 1e-6, 0.05, 0.05, 0.9, 0.99)
        assert not ok
        with pytest.raises(InvalidInputError):
            params.variance(p)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_assets=st.integers(2, 25),
    bars=st.integers(30, 600),
    params=st.none() | garch_params(),
    level=st.sampled_from([0.95, 0.99]),
    zero=st.booleans(),
)
def test_tracker_fhs_pair_is_the_numpy_formulation(
    seed: int, n_assets: int, bars: int, params: GarchParams | None, level: float, zero: bool
) -> None:
    from advanced_risk.config import TrackerConfig

    rng = np.random.default_rng(seed)
    cfg = TrackerConfig(window=25, fhs_window=500)
    tracker = RiskTracker(n_assets, cfg, auto_refit=False)
    for row in rng.standard_t(4, size=(bars, n_assets)) * 0.01:
        tracker.update(row)
    weights = np.zeros(n_assets) if zero else rng.normal(0.0, 0.3, n_assets)
    p = tracker.fhs_returns(weights)
    if params is not None:
        tracker.install_garch(params)
        got = tracker.snapshot(weights, "fhs_garch", level)
    else:
        got = tracker.snapshot(weights, "fhs_ewma", level)
    expected = reference_fhs_pair(p, params, cfg.ewma_lambda, level)
    assert _same(got.var, float(expected[0]))
    assert _same(got.cvar, float(expected[1]))


# -- the NumPy formulation before the kernels (engine/core.py at 1a5b1c6), verbatim but for `self` ----
def reference_trail_stops(
    target: np.ndarray,
    held: np.ndarray,
    prices: np.ndarray,
    atr: np.ndarray,
    multiple: float,
    ready: np.ndarray,
    stop: np.ndarray,
    stop_short: np.ndarray,
    trailing: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    distance = multiple * atr
    short = np.where(target != 0.0, target < 0.0, held < 0.0)
    candidate = np.where(short, prices + distance, np.maximum(prices - distance, 0.0))
    previous = stop
    live = (
        (held != 0.0)
        & ~np.isnan(previous)
        & (short == stop_short)
        & np.where(short, prices < previous, prices > previous)
    )
    if trailing:
        kept = np.where(short, np.fmin(previous, candidate), np.fmax(previous, candidate))
    else:
        kept = previous
    new_stop = np.where(ready, np.where(live, kept, candidate), previous)
    new_short = np.where(ready, short, stop_short)
    return distance, short, new_stop, new_short


def reference_sizes(
    equity: float,
    risk_per_trade: float,
    fraction: float,
    leverage: float,
    prices: np.ndarray,
    distance: np.ndarray,
) -> np.ndarray:
    by_risk = equity * risk_per_trade / np.maximum(distance, 1e-12)
    by_cap = equity * fraction * leverage / prices
    out: np.ndarray = np.minimum(by_risk, by_cap)
    return out


@st.composite
def books(draw: st.DrawFn) -> dict[str, Any]:
    n = draw(st.integers(0, 40))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    prices = np.exp(rng.normal(3.0, 2.0, n))
    atr = prices * rng.uniform(0.0, 0.6, n)
    ready = rng.random(n) < draw(st.sampled_from([0.0, 0.5, 0.9, 1.0]))
    atr[~ready & (rng.random(n) < 0.8)] = np.nan
    atr[rng.random(n) < 0.05] = 0.0
    atr[rng.random(n) < 0.05] = np.nan  # also where ready: the NaN branches of max / fmin / fmax

    def signed(p_zero: float) -> np.ndarray:
        x = rng.normal(0.0, 0.1, n)
        x[rng.random(n) < p_zero] = 0.0
        return x

    # previous stops around the price (either side of it, so some are through), some NaN
    stop = prices * rng.uniform(0.3, 1.7, n)
    stop[rng.random(n) < 0.3] = np.nan
    stop[rng.random(n) < 0.05] = 0.0
    return {
        "target": signed(draw(st.sampled_from([0.0, 0.3, 1.0]))),
        "held": signed(draw(st.sampled_from([0.0, 0.3, 1.0]))),
        "prices": prices,
        "atr": atr,
        "multiple": draw(st.sampled_from([0.5, 1.0, 2.0, 3.0, 4.7])),
        "ready": ready,
        "stop": stop,
        "stop_short": rng.random(n) < 0.5,
    }


@settings(max_examples=500, deadline=None)
@given(book=books(), trailing=st.booleans(), numpy_bool=st.booleans())
def test_trail_stops_kernel_is_the_numpy_formulation(
    book: dict[str, Any], trailing: bool, numpy_bool: bool
) -> None:
    args = (*book.values(), np.bool_(trailing) if numpy_bool else trailing)
    expected = reference_trail_stops(*args)
    got = trail_stops_kernel(*args)
    for g, e in zip(got, expected, strict=True):
        assert g.dtype == e.dtype
        assert np.array_equal(g, e, equal_nan=True)
        assert np.array_equal(np.signbit(g), np.signbit(e))


@settings(max_examples=500, deadline=None)
@given(
    book=books(),
    equity=st.floats(1.0, 1e9),
    risk_per_trade=st.floats(0.0, 0.05),
    fraction=st.floats(0.0, 1.0),
    leverage=st.floats(0.0, 5.0),
)
def test_position_sizes_kernel_is_the_numpy_formulation(
    book: dict[str, Any], equity: float, risk_per_trade: float, fraction: float, leverage: float
) -> None:
    prices = book["prices"]
    distance = book["multiple"] * book["atr"]
    expected = reference_sizes(equity, risk_per_trade, fraction, leverage, prices, distance)
    got = position_sizes_kernel(distance, prices, equity * risk_per_trade, equity * fraction * leverage)
    assert np.array_equal(got, expected, equal_nan=True)
    assert np.array_equal(np.signbit(got), np.signbit(expected))
