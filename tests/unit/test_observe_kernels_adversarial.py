"""Adversarial inputs for the per-bar ``observe`` kernels (issue 14), which numba does not bounds-check.

``measures/observe_kernels.py`` (``StreamingATR.update``, ``RiskTracker.update``),
``rl/agents/bookkeeping_kernel.py`` (``RiskAgentsAdvisor.observe``) and
``rl/portfolio/observation_kernel.py`` (``PortfolioPolicy.rebalance_trusted``), driven through their
entry points and through the manager: one asset and 1,000, assets joining and leaving, rows of the
wrong length, 2-D rows, strided and reversed views, float32 / int / bool / read-only arrays, a row
that is a view of the tracker's own ring buffer, NaN / inf / negative / zero prices and high < low.
Each must give the NumPy formulation's result (``tests/unit/test_observe_fast_paths.py``, loaded
from there) or a clean ``ValueError`` / ``InvalidInputError``: never a crash, a silent wrong answer or
a write outside the arrays (the kernels check their shapes on entry; a wrong one used to read and
write past the end).

Found here and fixed: a zero previous close made ``bookkeeping_kernel`` raise ``ZeroDivisionError``
(numba's division, not NumPy's inf/NaN) on every later bar, so the advisor stayed faulted for good;
``StreamingATR(n, 0)`` divided by zero in the kernel after half the state was written.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from advanced_risk import AdvancedRiskManager, MarketState, Portfolio, RiskConfig
from advanced_risk.config import SizingConfig, TrackerConfig
from advanced_risk.errors import InvalidInputError
from advanced_risk.measures.observe_kernels import atr_step_kernel, tracker_step_kernel
from advanced_risk.measures.validation import MAX_ABS_RETURN
from advanced_risk.measures.var_method import VaRMethod
from advanced_risk.risk.atr import StreamingATR
from advanced_risk.risk.tracker import RiskTracker
from advanced_risk.rl.agents.advisor import RiskAgentsAdvisor, load_risk_agents
from advanced_risk.rl.agents.bookkeeping_kernel import bookkeeping_kernel
from advanced_risk.rl.agents.interface import POSITION_HORIZON
from advanced_risk.rl.portfolio.observation_kernel import observation_kernel
from advanced_risk.rl.portfolio.policy import PortfolioPolicy, _observation
from advanced_risk.rl.ppo.inference import check_obs

ROOT = Path(__file__).resolve().parents[2]
AGENTS_MODEL = ROOT / "models" / "risk_agents_sp500.armodel"
POLICY_MODEL = ROOT / "models" / "ppo_sp500_2012.armodel"


def _load_reference() -> ModuleType:
    """The NumPy formulations kept in test_observe_fast_paths.py (tests are not a package)."""
    path = Path(__file__).with_name("test_observe_fast_paths.py")
    spec = importlib.util.spec_from_file_location("_observe_reference", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


REF = _load_reference()
_identical = REF._identical


def _same(a: Any, b: Any) -> bool:
    """``_identical`` but for the sign of a NaN: where two NaNs meet (``total + tr``, both NaN after an
    inf - inf), IEEE 754 leaves open which one comes out and LLVM may swap the operands of ``+``."""
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype.kind != "f" or a.shape != b.shape or a.dtype != b.dtype:
        return bool(_identical(a, b))
    numbers = ~np.isnan(a)
    return bool(
        np.array_equal(a, b, equal_nan=True)
        and np.array_equal(np.signbit(a[numbers]), np.signbit(b[numbers]))
    )


def _same_atr(a: Any, b: Any) -> bool:
    return all(_same(getattr(a, k), getattr(b, k)) for k in ("counts", "total", "value", "prev_close"))


def _same_bookkeeping(a: Any, b: Any) -> bool:
    keys = ("close", "entry", "high", "in_position", "age")
    return _same_atr(a.atr, b.atr) and all(_same(getattr(a, k), getattr(b, k)) for k in keys)


def _layouts(x: np.ndarray) -> list[np.ndarray]:
    """The same values as a strided view, a reversed view and a read-only array."""
    padded = np.empty(2 * x.size, dtype=x.dtype)
    padded[::2] = x
    reversed_ = x[::-1].copy()[::-1]
    frozen = x.copy()
    frozen.flags.writeable = False
    return [padded[::2], reversed_, frozen]


# -- StreamingATR --------------------------------------------------------------------------------------
def _atr_pair(n: int, period: int) -> tuple[StreamingATR, SimpleNamespace]:
    return StreamingATR(n, period), REF._atr_state(n, period)


def _ref_atr_update(ref: SimpleNamespace, high: Any, low: Any, close: Any) -> None:
    with np.errstate(all="ignore"):  # inf - inf in a true range: NumPy warns, the kernel does not
        REF.reference_atr_update(ref, high, low, close)
    ref.prev_close = ref.prev_close.astype(np.float64)  # the state stays float64 (closes of any dtype)


def test_atr_refuses_wrong_shapes_and_keeps_its_state() -> None:
    atr, _ = _atr_pair(3, 2)
    ok = np.array([1.0, 2.0, 3.0])
    atr.update(ok + 1.0, ok - 0.5, ok)
    before = {k: getattr(atr, k).copy() for k in ("counts", "total", "value", "prev_close")}
    bad = [
        (np.ones(2), ok, ok),
        (ok, np.ones(4), ok),
        (ok, ok, np.ones(2)),
        (ok[None, :], ok[None, :], ok[None, :]),  # 2-D
        (ok[:, None], ok[:, None], ok[:, None]),
        (np.float64(1.0), np.float64(1.0), np.float64(1.0)),  # 0-d
    ]
    for high, low, close in bad:
        with pytest.raises(ValueError, match="shape"):
            atr.update(high, low, close)  # type: ignore[arg-type]
    assert all(_identical(getattr(atr, k), v) for k, v in before.items())


@pytest.mark.parametrize("period", [0, -1, -14])
def test_atr_refuses_a_period_below_one(period: int) -> None:
    with pytest.raises(ValueError, match="period"):
        StreamingATR(3, period)


def test_atr_kernel_refuses_state_of_another_length_before_writing() -> None:
    """Called directly (as bookkeeping_kernel does) with arrays that do not fit: an error, no write."""
    n = 4
    kernel: Any = atr_step_kernel
    good = [np.full(n, 2.0), np.full(n, 1.0), np.full(n, 1.5), np.full(n, 1.4)]
    for which in range(7):
        arrays = [*(a.copy() for a in good), np.zeros(n, np.int64), np.zeros(n), np.full(n, np.nan)]
        arrays[which] = arrays[which][:-1].copy()  # one array one short
        snapshot = [a.copy() for a in arrays]
        with pytest.raises(ValueError, match="one length"):
            kernel(*arrays, 3)
        assert all(_identical(a, b) for a, b in zip(arrays, snapshot, strict=True))
    arrays = [*(a.copy() for a in good), np.zeros(n, np.int64), np.zeros(n), np.full(n, np.nan)]
    with pytest.raises(ValueError, match="period"):
        kernel(*arrays, 0)
    assert (arrays[4] == 0).all()  # no count was taken before the error


PRICE = st.one_of(
    st.floats(-1e6, 1e6, allow_nan=False),
    st.sampled_from([0.0, -0.0, np.nan, np.inf, -np.inf, 1e300, -1e300, 5e-324]),
)


@settings(max_examples=60, deadline=None)
@given(
    n=st.sampled_from([1, 2, 7]),
    period=st.integers(1, 4),
    bars=st.lists(st.lists(st.tuples(PRICE, PRICE, PRICE), min_size=7, max_size=7), min_size=1, max_size=8),
    dtype=st.sampled_from([np.float64, np.float32, np.int64]),
    layout=st.integers(0, 3),
)
def test_atr_odd_prices_dtypes_and_layouts_are_the_numpy_formulation(
    n: int, period: int, bars: list[list[tuple[float, float, float]]], dtype: type, layout: int
) -> None:
    """NaN, inf, negative, zero, subnormal prices, high < low; float32, int, strided, reversed, read-only."""
    atr, ref = _atr_pair(n, period)
    for bar in bars:
        h: np.ndarray
        lo: np.ndarray
        c: np.ndarray
        h, lo, c = (np.array([b[k] for b in bar[:n]]) for k in range(3))
        if dtype is np.int64:
            h, lo, c = (np.clip(np.nan_to_num(x), -1e6, 1e6).astype(np.int64) for x in (h, lo, c))
        else:
            with np.errstate(over="ignore"):
                h, lo, c = (x.astype(dtype) for x in (h, lo, c))
        if layout:
            h, lo, c = (_layouts(x)[layout - 1] for x in (h, lo, c))
        with np.errstate(all="ignore"):  # ADVANCED_RISK_DISABLE_NUMBA=1: NumPy scalars warn
            atr.update(h, lo, c)
        _ref_atr_update(ref, h, lo, c)
        assert _same_atr(atr, ref)


def test_atr_after_assets_join_and_leave_and_with_one_or_a_thousand_assets() -> None:
    rng = np.random.default_rng(5)
    for n in (1, 1000):
        atr, ref = _atr_pair(n, 3)
        for t in range(12):
            if t == 4:  # two join
                atr.add_assets(2)
                ref.counts = np.append(ref.counts, np.zeros(2, np.int64))
                ref.total, ref.value = np.append(ref.total, np.zeros(2)), np.append(ref.value, [np.nan] * 2)
                ref.prev_close = np.append(ref.prev_close, [np.nan] * 2)
            if t == 8:  # the first and the last leave
                gone = [0, atr.counts.size - 1]
                atr.remove_assets(gone)
                keep = np.setdiff1d(np.arange(ref.counts.size), gone)
                for k in ("counts", "total", "value", "prev_close"):
                    setattr(ref, k, getattr(ref, k)[keep])
                with pytest.raises(ValueError, match="shape"):  # the old length is refused
                    atr.update(*(np.ones(atr.counts.size + 2),) * 3)
            m = atr.counts.size
            c = 50.0 + rng.random(m)
            atr.update(c + 1.0, c - 1.0, c)
            _ref_atr_update(ref, c + 1.0, c - 1.0, c)
            assert _same_atr(atr, ref)


# -- RiskTracker ----------------------------------------------------------------------------------------
CFG = TrackerConfig(window=20, fhs_window=100, correlation_warmup=3)


def _tracker_pair(n: int) -> tuple[RiskTracker, RiskTracker]:
    return RiskTracker(n, CFG), RiskTracker(n, CFG)


def test_tracker_refuses_wrong_shapes_and_non_numbers_and_keeps_its_state() -> None:
    got, ref = _tracker_pair(3)
    row = np.array([0.01, -0.02, 0.003])
    got.update(row)
    REF.reference_tracker_update(ref, row)
    bad: list[Any] = [
        row[:2],
        np.append(row, 0.0),
        row[None, :],
        row[:, None],
        np.float64(0.01),
        [],
        ["a", "b", "c"],
        [[0.01, 0.02], [0.0, 0.0]],
        None,
        {"a": 1.0},
        [10**400, 0.0, 0.0],  # a Python int beyond the float range
    ]
    for value in bad:
        with pytest.raises(InvalidInputError, match="returns_row"):
            got.update(value)
    for value in ([0.0, np.nan, 0.0], [np.inf, 0.0, 0.0], [0.0, 0.0, -2.0 * MAX_ABS_RETURN]):
        with pytest.raises(InvalidInputError, match="index"):
            got.update(value)
    assert REF._same_tracker(got, ref)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    kind=st.sampled_from(["list", "float32", "int", "bool", "strided", "reversed", "readonly"]),
)
def test_tracker_rows_of_other_types_and_layouts_are_the_numpy_formulation(seed: int, kind: str) -> None:
    rng = np.random.default_rng(seed)
    n = 5
    got, ref = _tracker_pair(n)
    for _ in range(25):
        raw = rng.normal(0.0, 0.02, n)
        row: Any = {
            "list": raw.tolist(),
            "float32": raw.astype(np.float32),
            "int": rng.integers(-1, 2, n),
            "bool": rng.random(n) < 0.5,
            "strided": _layouts(raw)[0],
            "reversed": _layouts(raw)[1],
            "readonly": _layouts(raw)[2],
        }[kind]
        got.update(row)
        REF.reference_tracker_update(ref, np.asarray(row, dtype=np.float64))
        assert REF._same_tracker(got, ref)


def test_tracker_row_that_is_a_view_of_its_own_ring_buffer() -> None:
    """``update(recent_returns(1)[0])`` hands the kernel a view of the buffer it writes."""
    got, ref = _tracker_pair(4)
    rng = np.random.default_rng(2)
    for t in range(70):
        row = rng.normal(0.0, 0.01, 4) if t % 3 else got.recent_returns(1)[0] if t else np.zeros(4)
        copy = np.array(row)
        got.update(row)
        REF.reference_tracker_update(ref, copy)
        assert REF._same_tracker(got, ref)


def test_tracker_with_one_asset_a_thousand_and_a_changing_universe() -> None:
    rng = np.random.default_rng(4)
    for n in (1, 1000):
        got, ref = _tracker_pair(n)
        for t in range(8 if n > 1 else 40):
            if t == 3:
                got.add_assets(2)
                ref.add_assets(2)
            if t == 5 and got.n_assets > 2:
                got.remove_assets([0, got.n_assets - 1])
                ref.remove_assets([0, ref.n_assets - 1])
            row = rng.normal(0.0, 0.01, got.n_assets)
            got.update(row)
            REF.reference_tracker_update(ref, row)
            assert REF._same_tracker(got, ref)
        with pytest.raises(InvalidInputError, match="shape"):
            got.update(np.zeros(got.n_assets + 2))  # the length before the universe changed
    one = RiskTracker(2, CFG)
    for indices in ([-1], [2], [0, 1], [0, 1, 5]):  # out of range, or every asset
        with pytest.raises(InvalidInputError, match="indices"):
            one.remove_assets(indices)
    assert one.n_assets == 2


def test_tracker_kernel_refuses_arrays_that_do_not_fit_before_writing() -> None:
    n, cap = 3, 5
    row = np.array([0.01, 0.02, -0.01])
    kernel: Any = tracker_step_kernel

    def args() -> list[Any]:
        return [row, np.zeros((2 * cap, n)), 0, cap, np.zeros((n, n)), 0.94, np.zeros(n, np.int64)]

    spoilers = [
        (1, np.zeros((2 * cap, n + 1))),
        (1, np.zeros((2 * cap - 1, n))),
        (1, np.zeros((2 * cap, n - 1))),
        (2, cap),
        (2, -1),
        (4, np.zeros((n - 1, n - 1))),
        (4, np.zeros((n, n - 1))),
        (6, np.zeros(n - 1, np.int64)),
    ]
    for index, value in spoilers:
        a = args()
        a[index] = value
        with pytest.raises(ValueError, match="do not fit"):
            kernel(*a, 1, 2, MAX_ABS_RETURN)
        assert not a[1].any()
        assert not a[4].any()
        assert not np.asarray(a[6]).any()
    a = args()
    bad, _ = kernel(*a, 1, 2, MAX_ABS_RETURN)  # the right shapes: written
    assert bad == -1
    assert _identical(a[1][0], row)
    assert _identical(a[1][cap], row)


# -- RiskAgentsAdvisor.observe (bookkeeping_kernel) ------------------------------------------------------
@pytest.fixture(scope="module")
def advisor_factory() -> Any:
    from advanced_risk.rl.agents.policy import RiskAgents

    agents = RiskAgents.load(AGENTS_MODEL)
    return lambda: RiskAgentsAdvisor(agents, SizingConfig())


def _advisor_state(advisor: RiskAgentsAdvisor) -> SimpleNamespace:
    return SimpleNamespace(
        atr=advisor._atr, close=advisor._close, entry=advisor._entry, high=advisor._high,
        in_position=advisor._in_position, age=advisor._age,
    )  # fmt: skip


def _ref_observe(ref: SimpleNamespace, close: Any, held: Any, stops: Any) -> None:
    close, held = np.asarray(close, np.float64), np.asarray(held, np.float64)
    stops = None if stops is None else np.asarray(stops, np.float64)
    with np.errstate(all="ignore"):  # x / 0 and inf - inf: NumPy warns
        REF.reference_observe(ref, close, held, stops, POSITION_HORIZON)


def test_advisor_refuses_wrong_shapes_and_keeps_its_state(advisor_factory: Any) -> None:
    advisor = advisor_factory()
    n = advisor.asset_count
    ref = REF._bookkeeping_state(n)
    close, held = np.full(n, 10.0), np.full(n, 1.0 / n)
    advisor.observe(close, held, 0.0)
    _ref_observe(ref, close, held, None)
    bad = [
        (close[:-1], held, None),
        (close, np.append(held, 0.0), None),
        (close, held, close[:-1]),
        (close[None, :], held, None),
        (close, held[:, None], None),
        (close, held, close[:, None]),
        (np.float64(10.0), held, None),
        (close, held, 5.0),
    ]
    for c, h, s in bad:
        with pytest.raises(InvalidInputError, match="shape"):
            advisor.observe(c, h, 0.0, s)
    assert _same_bookkeeping(_advisor_state(advisor), ref)


def test_a_zero_close_is_refused_and_changes_nothing(advisor_factory: Any) -> None:
    """A zero, negative or NaN close is refused before anything is updated (it once raised
    ZeroDivisionError every bar after, then left that asset's ATR NaN for good); the bookkeeping
    stays the NumPy formulation's over the bars that were accepted."""
    advisor = advisor_factory()
    n = advisor.asset_count
    ref = REF._bookkeeping_state(n)
    rng = np.random.default_rng(9)
    close = 20.0 + rng.random(n)
    for t in range(40):
        close = close * (1.0 + rng.normal(0.0, 0.02, n))
        held = np.where(rng.random(n) < 0.7, 1.0 / n, 0.0)
        stops = close * rng.choice([0.9, 1.1], size=n)
        if t in (3, 4, 10, 11):
            bad = close.copy()
            bad[t % 2] = (0.0, -0.0, np.nan, -1.0)[(3, 4, 10, 11).index(t)]
            with pytest.raises(InvalidInputError, match=rf"close\[{t % 2}\]"):
                advisor.observe(bad, held, 0.001, stops)
            assert _same_bookkeeping(_advisor_state(advisor), ref)
        advisor.observe(close, held, 0.001, stops)
        _ref_observe(ref, close, held, stops)
        assert _same_bookkeeping(_advisor_state(advisor), ref)
    assert advisor.ready


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    special=st.sampled_from([np.nan, np.inf, -np.inf, -5.0, 0.0, -0.0, 1e300, 5e-324]),
    kind=st.sampled_from(["float32", "int", "list", "strided", "reversed", "readonly"]),
    with_stops=st.booleans(),
)
def test_advisor_odd_closes_dtypes_and_layouts_are_the_numpy_formulation(
    advisor_factory: Any, seed: int, special: float, kind: str, with_stops: bool
) -> None:
    advisor = advisor_factory()
    n = advisor.asset_count
    ref = REF._bookkeeping_state(n)
    rng = np.random.default_rng(seed)
    close = 30.0 + rng.random(n)
    for _ in range(6):
        close = close * (1.0 + rng.normal(0.0, 0.02, n))
        raw = close.copy()
        raw[rng.integers(0, n, 2)] = special
        held_raw = rng.choice([0.0, 1.0 / n, -1.0 / n], size=n)
        stops_raw = raw * 0.95 if with_stops else None
        c: Any
        h: Any
        if kind == "float32":
            with np.errstate(over="ignore"):
                c, h = raw.astype(np.float32), held_raw.astype(np.float32)
        elif kind == "int":
            c = np.clip(np.nan_to_num(raw), -1e6, 1e6).astype(np.int64)
            h = (held_raw > 0).astype(np.int64)
        elif kind == "list":
            c, h = raw.tolist(), held_raw.tolist()
        else:
            i = ["strided", "reversed", "readonly"].index(kind)
            c, h = _layouts(raw)[i], _layouts(held_raw)[i]
        as_float = np.asarray(c, dtype=np.float64)
        if not ((as_float > 0.0) & (as_float < np.inf)).all():  # refused, nothing updated
            with pytest.raises(InvalidInputError, match="must be a finite price > 0"):
                advisor.observe(c, h, None, stops_raw)
            assert _same_bookkeeping(_advisor_state(advisor), ref)
            continue
        with np.errstate(all="ignore"):  # ADVANCED_RISK_DISABLE_NUMBA=1: NumPy scalars warn
            advisor.observe(c, h, None, stops_raw)
        _ref_observe(ref, c, h, stops_raw)
        assert _same_bookkeeping(_advisor_state(advisor), ref)


def test_bookkeeping_kernel_refuses_arrays_that_do_not_fit_before_writing() -> None:
    n = 4

    def args() -> list[Any]:
        return [
            np.full(n, 10.0), np.full(n, 11.0), np.ones(n), np.full(n, 9.0), True, 0.5, 252,
            np.full(n, np.nan), np.zeros(n, np.int64), np.zeros(n), np.full(n, np.nan), 14,
            np.zeros(n), np.zeros(n), np.zeros(n, bool), np.zeros(n, np.int64),
        ]  # fmt: skip

    for index in (0, 2, 3, 7, 8, 9, 10, 12, 13, 14, 15):
        a = args()
        a[index] = a[index][:-1].copy()
        before = [np.array(x, copy=True) for x in a]
        with pytest.raises(ValueError, match="one length"):
            bookkeeping_kernel(*a)
        assert all(_identical(np.asarray(x), y) for x, y in zip(a, before, strict=True))
    a = args()
    a[3], a[4] = np.ones(1), False  # no stops: their array is never read
    bookkeeping_kernel(*a)
    assert (a[0] == 11.0).all()


# -- PortfolioPolicy.rebalance_trusted (observation_kernel) ---------------------------------------------
@pytest.fixture(scope="module")
def policy() -> PortfolioPolicy:
    return PortfolioPolicy.load(POLICY_MODEL)


@pytest.mark.parametrize("kind", ["float32", "int", "strided", "reversed", "readonly", "short", "long"])
def test_policy_observation_of_other_weights_is_check_obs_or_refused(
    policy: PortfolioPolicy, kind: str
) -> None:
    n = policy.asset_count
    market = np.random.default_rng(1).normal(0.0, 1.0, 3 * n)
    base = np.full(n + 1, 1.0 / (n + 1))
    weights = {
        "float32": base.astype(np.float32),
        "int": np.eye(1, n + 1, n, dtype=np.int64)[0],
        "strided": _layouts(base)[0],
        "reversed": _layouts(base)[1],
        "readonly": _layouts(base)[2],
        "short": base[:-1],
        "long": np.append(base, 0.0),
    }[kind]
    ok, got = observation_kernel(market, weights, 0.05)
    assert ok
    assert _identical(got, check_obs(_observation(market, weights, 0.05), got.shape[0]))
    returns = np.random.default_rng(2).normal(0.0, 0.01, (60, n))
    if kind in ("short", "long"):  # the wrong length takes check_obs's path, which refuses it
        with pytest.raises(InvalidInputError):
            policy.rebalance_trusted(returns, weights, 0.05)
    else:
        target, std = policy.rebalance_trusted(returns, weights, 0.05)
        assert target.shape == (n + 1,)
        assert np.isfinite(target).all()
        assert np.isfinite(std).all()


# -- through the manager ---------------------------------------------------------------------------------
def _faults(decision: Any) -> list[str]:
    return [a for a in decision.alerts if " failed: " in a]


def _run_book(risk: AdvancedRiskManager, prices: dict[str, float], weights: dict[str, float]) -> Any:
    market = MarketState(
        prices=prices,
        high={a: p * 1.01 for a, p in prices.items()},
        low={a: p * 0.99 for a, p in prices.items()},
    )
    return risk.manage_risk_sync(market, Portfolio(weights=weights, equity=1e6))


@pytest.mark.parametrize("n", [1, 1000])
def test_manager_with_one_asset_or_a_thousand(n: int) -> None:
    rng = np.random.default_rng(n)
    names = [f"A{i}" for i in range(n)]
    px = dict(zip(names, rng.uniform(20.0, 200.0, n).tolist(), strict=True))
    risk = AdvancedRiskManager(
        RiskConfig(tracker=TrackerConfig(method=VaRMethod.FHS_EWMA), rate_limit_per_s=None)
    )
    try:
        for _ in range(25 if n == 1 else 6):
            px = {a: p * (1.0 + rng.normal(0.0, 0.01)) for a, p in px.items()}
            decision = _run_book(risk, px, dict.fromkeys(names, 0.5 / n))
            assert not _faults(decision), decision.alerts
            assert not decision.degraded, decision.alerts
    finally:
        risk.close_sync()


def test_manager_with_the_shipped_agents_on_a_changing_universe() -> None:
    """Extra assets join and leave; one of the agents' assets leaves and comes back: no component fault."""
    from advanced_risk.rl.agents.policy import RiskAgents

    names = list(RiskAgents.load(AGENTS_MODEL).asset_names or ())
    assert len(names) == 20
    rng = np.random.default_rng(0)
    cfg = RiskConfig(
        deadline_ms=500.0, tracker=TrackerConfig(method=VaRMethod.FHS_EWMA), rate_limit_per_s=None
    )
    risk = AdvancedRiskManager(cfg, risk_agents=str(AGENTS_MODEL))
    px = {a: float(p) for a, p in zip([*names, "X1", "X2"], rng.uniform(20.0, 200.0, 22), strict=True)}
    advised = 0
    try:
        for t in range(70):
            if t == 20:
                px["X3"] = 10.0
            if t == 30:
                px.pop("X1")
            if t == 45:
                px.pop(names[0])  # the agents see no bar while one of theirs is missing
            if t == 50:
                px[names[0]] = 100.0  # ... and resume with its stale last close
            px = {a: p * (1.0 + rng.normal(0.0, 0.01)) for a, p in px.items()}
            flat = {"X1"} if t >= 28 else set()
            flat |= {names[0]} if t >= 43 else set()
            weights = {a: 0.0 if a in flat else 0.5 / len(px) for a in px}
            decision = _run_book(risk, px, weights)
            assert not _faults(decision), (t, decision.alerts)
            assert not decision.degraded, (t, decision.alerts)
            advised += decision.risk_agents is not None
    finally:
        risk.close_sync()
    assert advised >= 15  # warm from bar 28; a returning asset has no history for the next 28 bars


def test_load_risk_agents_advisor_observe_after_a_universe_of_the_wrong_size(advisor_factory: Any) -> None:
    """The advisor has the model's fixed universe: any other length is refused, never read past."""
    advisor = load_risk_agents(AGENTS_MODEL, SizingConfig())
    assert advisor is not None
    n = advisor.asset_count
    for m in (1, n - 1, n + 1, 1000):
        with pytest.raises(InvalidInputError, match="shape"):
            advisor.observe(np.full(m, 10.0), np.zeros(m), None)
    assert advisor._close is None
