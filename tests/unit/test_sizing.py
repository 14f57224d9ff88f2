"""PositionSizer and KellySizer on hand-computed numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from advanced_risk.config import KellyConfig, RiskConfig, SizingConfig
from advanced_risk.errors import ConfigError, InvalidInputError
from advanced_risk.measures.volatility import wilder_atr
from advanced_risk.risk.sizing import KellySizer, PositionSizer, Side


def test_calculate_size_risks_the_budget_over_an_atr_stop() -> None:
    # 2 % of 10,000 = 200 at risk; stop 2 x 2.5 = 5 points -> 40 units (notional 4,000 < cap 10,000)
    assert PositionSizer().calculate_size(10_000, 2.5, 100.0) == pytest.approx(40.0, rel=1e-12)


def test_calculate_size_positional_call_matches_the_seed_signature() -> None:
    # risk 1 % of 50,000 = 500 over an explicit 4-point stop -> 125 units (ATR ignored)
    sizer = PositionSizer(risk_per_trade=0.01, atr_multiplier=3.0)
    assert sizer.calculate_size(50_000, 7.0, 250.0, 4.0) == pytest.approx(125.0, rel=1e-12)


def test_calculate_size_is_capped_by_position_fraction_times_leverage() -> None:
    sizer = PositionSizer(risk_per_trade=0.02, atr_multiplier=2.0, max_position_fraction=0.2)
    # by risk: 200 / (2 x 0.5) = 200 units; cap: 10,000 x 0.2 x 1 / 50 = 40 units
    assert sizer.calculate_size(10_000, 0.5, 50.0) == pytest.approx(40.0, rel=1e-12)
    # leverage 2.5 lifts the cap to 100 units, still below the risk size
    assert sizer.calculate_size(10_000, 0.5, 50.0, leverage=2.5) == pytest.approx(100.0, rel=1e-12)
    # leverage 10 lifts the cap past the risk size: the risk budget decides again
    assert sizer.calculate_size(10_000, 0.5, 50.0, leverage=10.0) == pytest.approx(200.0, rel=1e-12)


@pytest.mark.parametrize(
    ("balance", "leverage"), [(0.0, 1.0), (10_000.0, 0.0)], ids=["zero-balance", "zero-leverage"]
)
def test_calculate_size_is_zero_without_balance_or_leverage(balance: float, leverage: float) -> None:
    assert PositionSizer().calculate_size(balance, 2.5, 100.0, leverage=leverage) == 0.0


def test_plan_reports_units_stop_risk_and_whether_the_cap_bound() -> None:
    sizer = PositionSizer(risk_per_trade=0.02, atr_multiplier=2.0, max_position_fraction=0.2)
    plan = sizer.plan(10_000, 0.5, 50.0, side=Side.SHORT)
    assert plan.units == pytest.approx(40.0)
    assert plan.notional == pytest.approx(2_000.0)
    assert plan.stop_price == pytest.approx(51.0)
    assert plan.stop_distance == pytest.approx(1.0)
    assert plan.risk_amount == pytest.approx(40.0)  # below the 200 budget because the cap bound
    assert plan.capped is True
    assert plan.side is Side.SHORT
    assert PositionSizer().plan(10_000, 2.5, 100.0).capped is False


def test_stop_levels_sit_one_stop_distance_below_a_long_and_above_a_short() -> None:
    sizer = PositionSizer(atr_multiplier=2.0)
    assert sizer.stop_level(100.0, 2.5) == pytest.approx(95.0)
    assert sizer.stop_level(100.0, 2.5, side="short") == pytest.approx(105.0)
    assert sizer.stop_level(100.0, 2.5, Side.LONG, stop_points=3.0) == pytest.approx(97.0)


def test_long_stop_is_clipped_at_zero_when_the_distance_exceeds_the_price() -> None:
    assert PositionSizer().stop_level(3.0, 0.0, stop_points=5.0) == 0.0


def test_long_trailing_stop_follows_rises_and_never_loosens() -> None:
    sizer = PositionSizer(atr_multiplier=2.0)
    stop = sizer.stop_level(100.0, 2.5)  # 95
    path = []
    for price in (104.0, 110.0, 101.0, 112.0, 90.0):
        stop = sizer.update_trailing_stop(stop, price, 2.5)
        path.append(stop)
    assert path == pytest.approx([99.0, 105.0, 105.0, 107.0, 107.0])


def test_short_trailing_stop_follows_falls_and_never_loosens() -> None:
    sizer = PositionSizer(atr_multiplier=2.0)
    stop = sizer.stop_level(100.0, 2.5, side="short")  # 105
    path = []
    for price in (96.0, 90.0, 98.0, 85.0, 120.0):
        stop = sizer.update_trailing_stop(stop, price, 2.5, side="short")
        path.append(stop)
    assert path == pytest.approx([101.0, 95.0, 95.0, 90.0, 90.0])


def test_stop_hit_compares_on_the_losing_side() -> None:
    assert PositionSizer.stop_hit(95.0, 95.0) is True
    assert PositionSizer.stop_hit(95.0, 95.5) is False
    assert PositionSizer.stop_hit(105.0, 105.0, "short") is True
    assert PositionSizer.stop_hit(105.0, 104.0, Side.SHORT) is False


def test_latest_atr_is_the_last_wilder_atr_value() -> None:
    rng = np.random.default_rng(0)
    close = 100.0 + np.cumsum(rng.normal(0, 1, 40))
    high, low = close + 1.0, close - 1.0
    sizer = PositionSizer(atr_period=14)
    assert sizer.latest_atr(high, low, close) == pytest.approx(wilder_atr(high, low, close, 14)[-1])
    with pytest.raises(InvalidInputError, match="at least 15 bars"):
        sizer.latest_atr(high[:14], low[:14], close[:14])


def test_config_object_and_keywords_build_the_same_sizer() -> None:
    cfg = SizingConfig(risk_per_trade=0.01, atr_multiplier=3.0, max_position_fraction=0.5)
    a = PositionSizer.from_config(cfg)
    b = PositionSizer(risk_per_trade=0.01, atr_multiplier=3.0, max_position_fraction=0.5)
    assert a.config == b.config == cfg
    assert a.calculate_size(20_000, 1.5, 40.0) == b.calculate_size(20_000, 1.5, 40.0)
    assert RiskConfig().sizing == SizingConfig()


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"risk_per_trade": 0.0}, "risk_per_trade"),
        ({"risk_per_trade": 1.5}, "risk_per_trade"),
        ({"risk_per_trade": math.nan}, "risk_per_trade"),
        ({"atr_multiplier": -1.0}, "atr_multiplier"),
        ({"atr_multiplier": math.inf}, "atr_multiplier"),
        ({"max_position_fraction": 0.0}, "max_position_fraction"),
        ({"atr_period": 0}, "atr_period"),
        ({"atr_period": 2.5}, "atr_period"),
    ],
    ids=[
        "risk-zero",
        "risk-above-one",
        "risk-nan",
        "mult-negative",
        "mult-inf",
        "cap-zero",
        "period-0",
        "period-float",
    ],
)
def test_bad_sizer_settings_raise_naming_the_field(kwargs: dict[str, float], field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        PositionSizer(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("args", "kwargs", "field"),
    [
        ((-1.0, 2.5, 100.0), {}, "balance"),
        ((math.nan, 2.5, 100.0), {}, "balance"),
        ((10_000.0, -0.1, 100.0), {}, "atr"),
        ((10_000.0, math.inf, 100.0), {}, "atr"),
        ((10_000.0, 0.0, 100.0), {}, "atr must be > 0 when stop_points"),
        ((10_000.0, 2.5, 0.0), {}, "entry_price"),
        ((10_000.0, 2.5, -5.0), {}, "entry_price"),
        ((10_000.0, 2.5, 100.0, 0.0), {}, "stop_points"),
        ((10_000.0, 2.5, 100.0, math.nan), {}, "stop_points"),
        ((10_000.0, 2.5, 100.0), {"leverage": -1.0}, "leverage"),
        (("10000", 2.5, 100.0), {}, "balance"),
    ],
    ids=[
        "balance-neg",
        "balance-nan",
        "atr-neg",
        "atr-inf",
        "atr-zero-no-stop",
        "price-zero",
        "price-neg",
        "stop-zero",
        "stop-nan",
        "leverage-neg",
        "balance-str",
    ],
)
def test_bad_calculate_size_input_raises_naming_the_field(
    args: tuple[float, ...], kwargs: dict[str, float], field: str
) -> None:
    with pytest.raises(InvalidInputError, match=field):
        PositionSizer().calculate_size(*args, **kwargs)


def test_bad_side_raises_naming_the_field() -> None:
    with pytest.raises(InvalidInputError, match="side must be 'long' or 'short', got 'up'"):
        PositionSizer().stop_level(100.0, 2.5, side="up")


def test_kelly_size_is_half_kelly_of_the_discrete_bet() -> None:
    # p = 0.6, b = 1: full Kelly 0.6 - 0.4 = 0.2; half-Kelly 0.1
    assert KellySizer().size(0.6, 1.0, 1.0) == pytest.approx(0.1, rel=1e-12)
    # p = 0.55, b = 2: full 0.55 - 0.45 / 2 = 0.325; half 0.1625 (below the 0.25 cap)
    assert KellySizer().size(0.55, 2.0, 1.0) == pytest.approx(0.1625, rel=1e-12)


def test_kelly_size_is_capped() -> None:
    # full Kelly 0.325 at fraction 1.0 exceeds the 0.25 cap
    assert KellySizer(fraction=1.0, cap=0.25).size(0.55, 2.0, 1.0) == 0.25


def test_kelly_size_is_zero_on_a_negative_edge() -> None:
    assert KellySizer().size(0.4, 1.0, 1.0) == 0.0
    assert KellySizer().size(0.3, 2.0, 1.0) == 0.0  # 0.3 - 0.7 / 2 = -0.05


def test_kelly_size_continuous_uses_mu_over_sigma_squared() -> None:
    # 0.05 / 0.2^2 = 1.25; half 0.625
    assert KellySizer(cap=1.0).size_continuous(0.05, 0.2) == pytest.approx(0.625, rel=1e-12)
    assert KellySizer().size_continuous(0.05, 0.2) == 0.25
    assert KellySizer().size_continuous(-0.05, 0.2) == 0.0


def test_kelly_size_from_trades_estimates_win_rate_and_payoff() -> None:
    # wins 2, 3, 1 (mean 2), losses 1, 1 (mean 1): p = 0.6, b = 2 -> full 0.4, half 0.2
    assert KellySizer().size_from_trades([2.0, -1.0, 3.0, -1.0, 1.0, 0.0]) == pytest.approx(0.2, rel=1e-12)
    assert KellySizer().size_from_trades([1.0, 2.0]) == 0.25  # no losses: min(fraction, cap)
    assert KellySizer().size_from_trades([-1.0, -2.0]) == 0.0


def test_kelly_config_round_trip() -> None:
    assert KellySizer.from_config(KellyConfig(fraction=0.25, cap=0.1)).size(0.6, 1.0, 1.0) == pytest.approx(
        0.05, rel=1e-12
    )


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda k: k.size(1.2, 1.0, 1.0), "win_rate"),
        (lambda k: k.size(math.nan, 1.0, 1.0), "win_rate"),
        (lambda k: k.size(0.5, 0.0, 1.0), "avg_win"),
        (lambda k: k.size(0.5, 1.0, -1.0), "avg_loss"),
        (lambda k: k.size(0.5, 1.0, math.inf), "avg_loss"),
        (lambda k: k.size_continuous(0.1, 0.0), "sigma"),
        (lambda k: k.size_from_trades([1.0, math.nan]), "pnls"),
        (lambda k: KellySizer(fraction=0.0), "fraction"),
        (lambda k: KellySizer(cap=-0.1), "cap"),
    ],
    ids=[
        "p-above-1",
        "p-nan",
        "win-zero",
        "loss-neg",
        "loss-inf",
        "sigma-zero",
        "pnl-nan",
        "fraction-0",
        "cap-neg",
    ],
)
def test_bad_kelly_input_raises_naming_the_field(call: object, field: str) -> None:
    with pytest.raises(InvalidInputError, match=field):
        call(KellySizer())  # type: ignore[operator]


def test_plan_many_matches_plan_per_asset() -> None:
    sizer = PositionSizer(risk_per_trade=0.02, atr_multiplier=2.0, max_position_fraction=0.2)
    atr, price, short = [0.5, 2.5, 1.0], [50.0, 100.0, 10.0], [False, True, False]
    units, stops = sizer.plan_many(10_000, atr, price, short=short, leverage=1.5)
    for i in range(3):
        side = Side.SHORT if short[i] else Side.LONG
        one = sizer.plan(10_000, atr[i], price[i], side=side, leverage=1.5)
        assert units[i] == pytest.approx(one.units, rel=1e-12)
        assert stops[i] == pytest.approx(one.stop_price, rel=1e-12)
    # 10,000 x 0.2 x 1.5 / 50 = 60 (capped); 200 / 5 = 40; cap 300 vs 200 / 2 = 100
    assert units.tolist() == pytest.approx([60.0, 30.0, 100.0])
    assert stops.tolist() == pytest.approx([49.0, 105.0, 8.0])


@pytest.mark.parametrize(
    ("atr", "price", "short", "field"),
    [
        ([1.0, 0.0], [10.0, 10.0], None, "atr"),
        ([1.0, 1.0], [10.0, math.nan], None, "entry_price"),
        ([1.0], [10.0, 11.0], None, "same length"),
        ([1.0, 1.0], [10.0, 11.0], [True], "short must have shape"),
    ],
    ids=["atr-zero", "price-nan", "length-mismatch", "mask-shape"],
)
def test_plan_many_rejects_bad_arrays(
    atr: list[float], price: list[float], short: list[bool] | None, field: str
) -> None:
    with pytest.raises(InvalidInputError, match=field):
        PositionSizer().plan_many(10_000, atr, price, short=short)
