"""The fused kernels of the per-bar ``observe`` step (issue 14) against the NumPy formulation they
replaced, kept here verbatim as the reference: every output bit for bit (``np.array_equal`` with NaN
equal and the sign bits compared, never a tolerance).

- ``StreamingATR.update`` (``measures/observe_kernels.py``, ``atr_step_kernel``): random highs, lows
  and closes (NaN included), assets joining mid-stream (no previous close), periods 1-20;
- ``RiskTracker.update`` (``tracker_step_kernel``): random rows, late joiners, rows refused for NaN,
  inf or a magnitude above ``MAX_ABS_RETURN`` (same message, tracker unchanged);
- ``RiskAgentsAdvisor.observe`` (``rl/agents/bookkeeping_kernel.py``): random closes, held books
  (long, flat, short), stops (NaN, below and above the close), a short holding horizon so that every
  restart rule fires; and through the advisor itself against the reference advisor state.
"""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from advanced_risk.config import TrackerConfig
from advanced_risk.errors import InvalidInputError
from advanced_risk.measures.kernels import ewma_correlation_step_kernel
from advanced_risk.measures.observe_kernels import atr_step_kernel, maximum_kernel, minimum_kernel
from advanced_risk.measures.validation import MAX_ABS_RETURN
from advanced_risk.risk.atr import StreamingATR
from advanced_risk.risk.tracker import RiskTracker
from advanced_risk.rl.agents.advisor import WICK, _synthetic_bar
from advanced_risk.rl.agents.bookkeeping_kernel import bookkeeping_kernel
from advanced_risk.rl.portfolio.accounting import market_features_kernel
from advanced_risk.rl.portfolio.observation_kernel import observation_kernel
from advanced_risk.rl.portfolio.policy import _observation
from advanced_risk.rl.ppo.inference import check_obs


def _identical(a: np.ndarray, b: np.ndarray) -> bool:
    """Same shape, dtype, values (NaN equal to NaN) and sign bits."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if a.dtype.kind != "f":
        return bool(np.array_equal(a, b))
    return bool(np.array_equal(a, b, equal_nan=True) and np.array_equal(np.signbit(a), np.signbit(b)))


# -- the NumPy formulations before the kernels (atr.py, tracker.py, advisor.py at 2266ee7) ----------
def reference_atr_update(s: Any, high: np.ndarray, low: np.ndarray, close: np.ndarray) -> None:
    pc = s.prev_close
    seen = ~np.isnan(pc)
    tr = np.maximum(high - low, np.maximum(np.abs(high - pc), np.abs(low - pc)))
    counts = s.counts + seen
    n = s.period
    filling = seen & (counts < n)
    s.total = np.where(filling, s.total + tr, s.total)
    first = seen & (counts == n)
    later = seen & (counts > n)
    if first.any() or later.any():
        s.value = np.where(first, (s.total + tr) / n, np.where(later, (s.value * (n - 1) + tr) / n, s.value))
    s.counts = counts
    s.prev_close = close.copy()


def reference_tracker_update(s: Any, row: np.ndarray) -> None:
    """``RiskTracker.update`` after its shape check (``s`` a RiskTracker, driven by the old code)."""
    magnitude = np.abs(row)
    if not float(magnitude.max()) <= MAX_ABS_RETURN:
        bad = int(np.flatnonzero(~(magnitude <= MAX_ABS_RETURN))[0])
        if not math.isfinite(row[bad]):
            raise InvalidInputError(f"returns_row must be finite, got {row[bad]} at index {bad}")
        raise InvalidInputError(
            f"returns_row must be within [-{MAX_ABS_RETURN:g}, {MAX_ABS_RETURN:g}] (a return is "
            f"a fraction; a larger one is a feed error), got {row[bad]:g} at index {bad}"
        )
    cfg = s._config
    s._buffer[s._pos] = row
    s._buffer[s._pos + s._capacity] = row
    s._pos = (s._pos + 1) % s._capacity
    s._n_obs += 1
    lam = cfg.ewma_lambda
    s._age += 1
    include = (s._age >= cfg.correlation_warmup) | (s._age == s._n_obs)
    s._fast_correlation = float(ewma_correlation_step_kernel(s._ewma_state, row, lam, include))
    s._ewma_weight = lam * s._ewma_weight + (1.0 - lam)
    s._count_new_pairs()  # the baseline's move when a joiner's pairs start to count (not the kernel's)
    s._update_shock(s._fast_correlation)


def reference_observe(
    s: Any, close: np.ndarray, held: np.ndarray, stops: np.ndarray | None, horizon: int
) -> None:
    """``RiskAgentsAdvisor.observe``'s state update (``s.atr`` a reference ATR state)."""
    prev = s.close if s.close is not None else close
    high, low = _synthetic_bar(prev, close)
    reference_atr_update(s.atr, high, low, close)
    s.close = close.copy()
    held_now = held > 0.0
    s.age = np.where(held_now & s.in_position, s.age + 1, 0)
    stopped = np.zeros_like(held_now) if stops is None else close <= stops
    restart = held_now & ((~s.in_position) | (s.age >= horizon) | stopped)
    s.age[restart] = 0
    s.entry[restart] = close[restart]
    s.high[restart] = close[restart]
    s.high = np.where(held_now, np.maximum(s.high, close), s.high)
    s.in_position = held_now


def _atr_state(n: int, period: int) -> SimpleNamespace:
    return SimpleNamespace(
        period=period,
        counts=np.zeros(n, dtype=np.int64),
        total=np.zeros(n),
        value=np.full(n, np.nan),
        prev_close=np.full(n, np.nan),
    )


def _same_atr(kernel: StreamingATR | SimpleNamespace, ref: SimpleNamespace) -> bool:
    return all(
        _identical(getattr(kernel, k), getattr(ref, k)) for k in ("counts", "total", "value", "prev_close")
    )


# -- np.maximum / np.minimum of two floats ----------------------------------------------------------
FLOATS = st.floats(allow_nan=True, allow_infinity=True, width=64)


@settings(max_examples=300, deadline=None)
@given(a=FLOATS, b=FLOATS)
def test_maximum_minimum_are_numpys(a: float, b: float) -> None:
    if a == 0.0 and b == 0.0 and math.copysign(1.0, a) != math.copysign(1.0, b):
        return  # +0 against -0: NumPy's answer depends on its loop (SIMD: the second operand)
    for kernel, ufunc in ((maximum_kernel, np.maximum), (minimum_kernel, np.minimum)):
        got = np.array([kernel(a, b)] * 20)
        assert _identical(got, ufunc(np.full(20, a), np.full(20, b)))


# -- the streaming ATR -------------------------------------------------------------------------------
@st.composite
def bars(draw: st.DrawFn) -> tuple[int, int, np.ndarray, np.ndarray, np.ndarray]:
    """(n, period, highs, lows, closes), each (T, n): random walks, NaN sprinkled in."""
    n = draw(st.integers(1, 30))
    period = draw(st.integers(1, 20))
    t = draw(st.integers(1, 60))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    close = 100.0 * np.cumprod(1.0 + rng.normal(0.0, 0.02, (t, n)), axis=0)
    high = close * (1.0 + np.abs(rng.normal(0.0, 0.01, (t, n))))
    low = close * (1.0 - np.abs(rng.normal(0.0, 0.01, (t, n))))
    if draw(st.booleans()):
        high[rng.random((t, n)) < 0.05] = np.nan
        low[rng.random((t, n)) < 0.05] = np.nan
    if draw(st.booleans()):  # high == low == close: zero true ranges
        high, low = close.copy(), close.copy()
    return n, period, high, low, close


@settings(max_examples=200, deadline=None)
@given(data=bars(), join=st.integers(0, 5))
def test_atr_update_is_the_numpy_formulation(data: tuple[Any, ...], join: int) -> None:
    n, period, high, low, close = data
    atr, ref = StreamingATR(n, period), _atr_state(n, period)
    for t in range(close.shape[0]):
        if t == close.shape[0] // 2 and join:  # assets join: no previous close, no history
            atr.add_assets(join)
            ref.counts = np.append(ref.counts, np.zeros(join, dtype=np.int64))
            ref.total, ref.value = (
                np.append(ref.total, np.zeros(join)),
                np.append(ref.value, np.full(join, np.nan)),
            )
            ref.prev_close = np.append(ref.prev_close, np.full(join, np.nan))
        extra = atr.counts.size - n
        h, lo, c = (np.append(x[t], np.resize(x[t], extra)) for x in (high, low, close))
        atr.update(h, lo, c)
        reference_atr_update(ref, h, lo, c)
        assert _same_atr(atr, ref)
        assert atr.count == int(ref.counts.min())


def test_atr_update_refuses_a_wrong_shape() -> None:
    atr = StreamingATR(3, 14)
    with pytest.raises(ValueError, match="shape"):
        atr.update(np.ones(2), np.ones(3), np.ones(3))
    assert np.isnan(atr.prev_close).all()


def test_atr_kernel_on_strided_views() -> None:
    rng = np.random.default_rng(3)
    close = 50.0 + rng.random((40, 10))
    atr, ref = _atr_state(5, 4), _atr_state(5, 4)
    for row in close:
        atr_step_kernel(
            row[::2] + 1.0, row[::2] - 1.0, row[::2], atr.prev_close, atr.counts, atr.total, atr.value, 4
        )
        reference_atr_update(ref, row[::2] + 1.0, row[::2] - 1.0, row[::2])
        assert _same_atr(atr, ref)


# -- the tracker's update ----------------------------------------------------------------------------
def _same_tracker(a: RiskTracker, b: RiskTracker) -> bool:
    arrays = all(_identical(getattr(a, k), getattr(b, k)) for k in ("_buffer", "_ewma_state", "_age"))
    scalars = ("_pos", "_n_obs", "_ewma_weight", "_fast_correlation", "_baseline", "_shock")
    return arrays and all(
        getattr(a, k) == getattr(b, k) or (getattr(a, k) != getattr(a, k) and getattr(b, k) != getattr(b, k))
        for k in scalars
    )


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_assets=st.integers(1, 25),
    bars_=st.integers(1, 250),
    warmup=st.integers(2, 30),
    join=st.integers(0, 4),
    bad=st.sampled_from([None, np.nan, np.inf, -np.inf, 2e6, -1.5e6]),
)
def test_tracker_update_is_the_numpy_formulation(
    seed: int, n_assets: int, bars_: int, warmup: int, join: int, bad: float | None
) -> None:
    rng = np.random.default_rng(seed)
    cfg = TrackerConfig(window=20, fhs_window=100, correlation_warmup=warmup)
    got, ref = RiskTracker(n_assets, cfg), RiskTracker(n_assets, cfg)
    rows = rng.standard_t(4, size=(bars_, n_assets + join)) * 0.01
    if bars_ > 3:
        rows[3, 0] = 0.0  # a zero return, and a zero row
        rows[2] = 0.0
    for t, full in enumerate(rows):
        if t == bars_ // 2 and join:
            got.add_assets(join)
            ref.add_assets(join)
        row = np.ascontiguousarray(full[: got.n_assets])
        if bad is not None and t == bars_ // 3:  # a refused row: the same message, nothing written
            spoiled = row.copy()
            spoiled[rng.integers(0, row.size)] = bad
            with pytest.raises(InvalidInputError) as expected:
                reference_tracker_update(ref, spoiled)
            with pytest.raises(InvalidInputError) as raised:
                got.update(spoiled)
            assert str(raised.value) == str(expected.value)
            assert _same_tracker(got, ref)
        got.update(row)
        reference_tracker_update(ref, row)
        assert _same_tracker(got, ref)
    assert got.average_correlation() == ref.average_correlation() or (
        math.isnan(got.average_correlation()) and math.isnan(ref.average_correlation())
    )


# -- the agents' bookkeeping -------------------------------------------------------------------------
def _bookkeeping_state(n: int) -> SimpleNamespace:
    return SimpleNamespace(
        atr=_atr_state(n, 14),
        close=None,
        entry=np.zeros(n),
        high=np.zeros(n),
        in_position=np.zeros(n, dtype=bool),
        age=np.zeros(n, dtype=np.int64),
    )


def _kernel_observe(
    s: SimpleNamespace, close: np.ndarray, held: np.ndarray, stops: np.ndarray | None, horizon: int
) -> None:
    """What ``RiskAgentsAdvisor.observe`` does with the kernel."""
    if s.close is None:
        s.close = close.copy()
    a = s.atr
    bookkeeping_kernel(
        s.close, close, held, close if stops is None else stops, stops is not None, WICK, horizon,
        a.prev_close, a.counts, a.total, a.value, a.period, s.entry, s.high, s.in_position, s.age,
    )  # fmt: skip


def _same_bookkeeping(a: SimpleNamespace, b: SimpleNamespace) -> bool:
    keys = ("close", "entry", "high", "in_position", "age")
    return _same_atr(a.atr, b.atr) and all(_identical(getattr(a, k), getattr(b, k)) for k in keys)


@settings(max_examples=150, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 25),
    t=st.integers(1, 80),
    horizon=st.sampled_from([1, 2, 5, 252]),
    with_stops=st.booleans(),
)
def test_bookkeeping_kernel_is_the_numpy_formulation(
    seed: int, n: int, t: int, horizon: int, with_stops: bool
) -> None:
    rng = np.random.default_rng(seed)
    closes = 20.0 * np.cumprod(1.0 + rng.normal(0.0, 0.03, (t, n)), axis=0)
    for k in range(1, t):  # unchanged closes: r == 0, a tie of the synthetic bar's max and min
        same = rng.random(n) < 0.1
        closes[k, same] = closes[k - 1, same]
    got, ref = _bookkeeping_state(n), _bookkeeping_state(n)
    for close in closes:
        held = rng.choice([0.0, 0.0, 0.05, 0.1, -0.05], size=n)  # flat, long, short
        stops = None
        if with_stops:
            stops = close * rng.choice([0.9, 1.0, 1.1], size=n)  # below, at and above the close
            stops[rng.random(n) < 0.3] = np.nan  # no stop
        _kernel_observe(got, close, held, stops, horizon)
        reference_observe(ref, close, held, stops, horizon)
        assert _same_bookkeeping(got, ref)


def test_advisor_observe_is_the_numpy_formulation() -> None:
    """Through ``RiskAgentsAdvisor.observe`` (the shipped agents' advisor) against the reference."""
    from pathlib import Path

    from advanced_risk.config import SizingConfig
    from advanced_risk.rl.agents.advisor import load_risk_agents
    from advanced_risk.rl.agents.interface import POSITION_HORIZON

    path = Path(__file__).resolve().parents[2] / "models" / "risk_agents_sp500.armodel"
    advisor = load_risk_agents(path, SizingConfig())
    assert advisor is not None
    n = advisor.asset_count
    rng = np.random.default_rng(7)
    ref = _bookkeeping_state(n)
    closes = 50.0 * np.cumprod(1.0 + rng.normal(0.0, 0.02, (300, n)), axis=0)
    for t, close in enumerate(closes):
        held = np.where(rng.random(n) < 0.8, 1.0 / n, 0.0)
        stops = None if t % 3 == 0 else close * rng.choice([0.95, 1.05], size=n)
        advisor.observe(close, held, 0.001 * t, stops)
        reference_observe(ref, close, held, stops, POSITION_HORIZON)
        mine = SimpleNamespace(
            atr=advisor._atr, close=advisor._close, entry=advisor._entry, high=advisor._high,
            in_position=advisor._in_position, age=advisor._age,
        )  # fmt: skip
        assert _same_bookkeeping(mine, ref)
    assert advisor._last_return == 0.001 * 299
    with pytest.raises(InvalidInputError, match="shape"):
        advisor.observe(closes[0][:-1], np.zeros(n - 1), None)


# -- the policy's observation ------------------------------------------------------------------------
@settings(max_examples=300, deadline=None)
@given(
    market=arrays(np.float64, st.integers(0, 40), elements=FLOATS),
    weights=arrays(np.float64, st.integers(1, 25), elements=st.floats(-1e40, 1e40, width=64)),
    drawdown=FLOATS,
)
def test_policy_observation_kernel_is_check_obs_of_the_observation(
    market: np.ndarray, weights: np.ndarray, drawdown: float
) -> None:
    ok, got = observation_kernel(market, weights, drawdown)
    dim = market.size + weights.size + 1
    try:
        with np.errstate(over="ignore"):  # beyond float32: inf, and a warning NumPy raises here
            expected = check_obs(_observation(market, weights, drawdown), dim)
    except InvalidInputError:
        assert not ok
        return
    assert ok
    assert _identical(got, expected)


def test_policy_observation_kernel_on_the_shipped_policy_and_its_refusal() -> None:
    from pathlib import Path

    from advanced_risk.rl.portfolio.policy import PortfolioPolicy, policy_observation

    path = Path(__file__).resolve().parents[2] / "models" / "ppo_sp500_2012.armodel"
    policy = PortfolioPolicy.load(path)
    n, t = policy.asset_count, 60
    returns = np.random.default_rng(1).normal(0.0, 0.01, (t, n))
    weights = np.full(n + 1, 1.0 / (n + 1))
    obs = policy_observation(returns, weights, 0.05, policy.env_config).astype(np.float64)
    ok, fused = observation_kernel(
        market_features_kernel(returns, t, policy.env_config.window, 0)[0], weights, 0.05
    )
    assert ok
    assert _identical(fused, obs)
    with pytest.raises(InvalidInputError, match="NaN or inf"):
        policy.rebalance_trusted(returns, np.append(weights[:-1], np.nan), 0.05)
