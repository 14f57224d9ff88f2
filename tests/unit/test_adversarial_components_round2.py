"""Adversarial round 2 on the components a user runs alone (allocator, advisor, risk pieces)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from advanced_risk.config import SizingConfig
from advanced_risk.errors import InvalidInputError
from advanced_risk.rl.agents.advisor import load_risk_agents
from advanced_risk.rl.portfolio.allocator import load_allocator
from advanced_risk.rl.portfolio.policy import PortfolioPolicy

MODELS = Path(__file__).resolve().parents[2] / "models"
POLICY = MODELS / "ppo_sp500_2012.armodel"
AGENTS = MODELS / "risk_agents_sp500.armodel"


@pytest.mark.skipif(not POLICY.is_file(), reason="shipped policy not present")
@pytest.mark.parametrize(("rows", "cols"), [(0, 0), (1, 0), (5, 0), (20, 0), (None, -1), (None, 3)], ids=str)
def test_allocator_refuses_returns_of_the_wrong_shape(rows: int | None, cols: int) -> None:
    """Fewer rows than the RSI/volatility windows made the unchecked feature kernel write past its
    buffers; fewer than history_length gave unseen features; another asset count a garbled obs."""
    allocator = load_allocator(POLICY)
    assert allocator is not None
    n, history = allocator.asset_count, allocator.history_length
    returns = np.zeros((history if rows is None else rows, n + cols))
    weights = np.append(np.zeros(n), 1.0)
    with pytest.raises(InvalidInputError, match="returns must have at least"):
        allocator.allocate(returns, weights, 0.0)
    policy = PortfolioPolicy.load(POLICY)
    with pytest.raises(InvalidInputError, match="returns must have at least"):
        policy.rebalance_trusted(returns, weights, 0.0)


@pytest.mark.skipif(not POLICY.is_file(), reason="shipped policy not present")
def test_allocator_refuses_1d_or_list_returns_and_weights_without_cash() -> None:
    allocator = load_allocator(POLICY)
    assert allocator is not None
    n, history = allocator.asset_count, allocator.history_length
    weights = np.append(np.zeros(n), 1.0)
    with pytest.raises(InvalidInputError, match="returns must be a 2-D array"):
        allocator.allocate(np.zeros(n), weights, 0.0)
    with pytest.raises(InvalidInputError, match="returns must be a 2-D array"):
        allocator.allocate(np.zeros((history, n)).tolist(), weights, 0.0)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match=r"weights must have shape"):
        allocator.allocate(np.zeros((history, n)), weights[:-1], 0.0)
    longer = allocator.allocate(np.zeros((history + 50, n)), weights, 0.0).weights  # more is fine
    assert longer.shape == (n + 1,)


@pytest.mark.skipif(not AGENTS.is_file(), reason="shipped risk agents not present")
@pytest.mark.parametrize(("rows", "cols"), [(0, 0), (5, 0), (20, 0), (None, -1), (None, 5)], ids=str)
def test_advisor_request_refuses_returns_of_the_wrong_shape(rows: int | None, cols: int) -> None:
    """request(returns[:0]) corrupted the heap ('malloc(): unaligned tcache chunk', process abort)."""
    advisor = load_risk_agents(AGENTS, SizingConfig())
    assert advisor is not None
    n, history = advisor.asset_count, advisor.history_length
    rng = np.random.default_rng(0)
    good = rng.normal(0.0, 0.01, (history + 20, n))
    for row in 100.0 * np.cumprod(1.0 + good, axis=0):
        advisor.observe(row, np.full(n, 1.0 / n), 0.0)
    assert advisor.request(good, 0.0, 1.0) is not None
    bad = np.zeros((history if rows is None else rows, n + cols))
    with pytest.raises(InvalidInputError, match="returns must have at least"):
        advisor.request(bad, 0.0, 1.0)


def test_classify_risk_level_refuses_a_nan_or_out_of_range_drawdown() -> None:
    """A NaN drawdown compared False everywhere and graded LOW (the least cautious answer)."""
    from advanced_risk.config import RiskConfig
    from advanced_risk.risk.rules import classify_risk_level

    config = RiskConfig()
    for bad in (float("nan"), -0.5, 1.5, "0.5"):
        with pytest.raises(InvalidInputError, match="drawdown"):
            classify_risk_level(bad, config)  # type: ignore[arg-type]
    assert classify_risk_level(np.float64(1.0), config).value == "critical"


def test_hedge_reset_refuses_a_truthy_non_bool() -> None:
    from advanced_risk.risk.hedging import HedgingStrategy

    hedger = HedgingStrategy()
    with pytest.raises(InvalidInputError, match="active must be a bool"):
        hedger.reset(active="no")  # type: ignore[arg-type]
    assert hedger.active is False
    hedger.reset(active=np.bool_(True))  # type: ignore[arg-type]
    assert hedger.active is True


def test_percentile_interval_of_no_replicates_is_an_invalid_input() -> None:
    from advanced_risk.evaluation.stats import percentile_interval

    with pytest.raises(InvalidInputError, match="replicates"):
        percentile_interval([])


def test_position_sizes_that_overflow_are_refused() -> None:
    from advanced_risk.risk.sizing import PositionSizer

    sizer = PositionSizer(0.02, 2.0, 0.5)
    with pytest.raises(InvalidInputError, match="overflows"):
        sizer.plan(1e308, 1e-300, 1e-6, leverage=2.0)
    with pytest.raises(InvalidInputError, match="overflows at index 1"):
        sizer.plan_many(1e308, [1.0, 1e-300], [1.0, 1e-6], leverage=2.0)
    plan = sizer.plan(10_000, 2.5, 100.0, side="short")  # hand: 200 / 5 = 40 units, stop 105
    assert (plan.units, plan.stop_price) == (40.0, 105.0)


@pytest.mark.skipif(not AGENTS.is_file(), reason="shipped risk agents not present")
@pytest.mark.parametrize("bad", [float("nan"), 0.0, -1.0, float("inf")])
def test_advisor_observe_refuses_a_close_that_would_poison_the_atr(bad: float) -> None:
    """Found: one NaN close left that asset's ATR NaN for good (every later advice overridden by the
    rules); a zero or negative close was accepted."""
    advisor = load_risk_agents(AGENTS, SizingConfig())
    assert advisor is not None
    n = advisor.asset_count
    closes = np.full(n, 100.0)
    closes[n // 2] = bad
    with pytest.raises(InvalidInputError, match=rf"close\[{n // 2}\]"):
        advisor.observe(closes, np.zeros(n), 0.0)
    advisor.observe(np.full(n, 100.0), np.zeros(n), 0.0)  # nothing was updated: a good bar is the first


def test_flags_must_be_bools_not_truthy_values() -> None:
    """Found: ``leverage(correlation_shock="no")`` applied the cut and ``TradingStateMachine(
    kill_switch="no")`` started HALTED: a string read by its truth value."""
    from advanced_risk.risk.leverage import VolatilityTargetLeverage
    from advanced_risk.risk.rules import TradingStateMachine

    lev = VolatilityTargetLeverage()
    for flag in ("correlation_shock", "below_trend"):
        with pytest.raises(InvalidInputError, match=flag):
            lev.leverage(0.2, **{flag: "no"})
        assert lev.leverage(0.2, **{flag: np.bool_(False)}) == lev.leverage(0.2)
    with pytest.raises(InvalidInputError, match="kill_switch"):
        TradingStateMachine(kill_switch="no")  # type: ignore[arg-type]
    assert TradingStateMachine(kill_switch=True).state.value == "halted"


def test_a_short_trailing_stop_from_no_stop_is_placed_not_left_at_zero() -> None:
    """Found: update_trailing_stop(0, ..., side='short') returned 0, a stop hit at every price."""
    from advanced_risk.risk.sizing import PositionSizer

    sizer = PositionSizer(atr_multiplier=2.0)
    stop = sizer.update_trailing_stop(0.0, price=100.0, atr=2.5, side="short")
    assert stop == 105.0
    assert not sizer.stop_hit(stop, 101.0, side="short")
    assert sizer.update_trailing_stop(stop, price=90.0, atr=2.5, side="short") == 95.0  # tightens
    assert sizer.update_trailing_stop(95.0, price=99.0, atr=2.5, side="short") == 95.0  # never loosens
