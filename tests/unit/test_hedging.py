"""HedgingStrategy: graded ratio, hysteresis, halted override, events, bad input."""

from __future__ import annotations

import itertools
import math

import pytest
from structlog.testing import capture_logs

from advanced_risk.config import HedgeConfig, RiskConfig
from advanced_risk.errors import InvalidInputError
from advanced_risk.risk.hedging import HedgingStrategy, hedge_ratio, next_hedge_active
from advanced_risk.types import HedgeInstruction


@pytest.mark.parametrize(
    ("drawdown", "ratio"),
    [(0.0, 0.0), (0.05, 0.0), (0.075, 0.25), (0.10, 0.5), (0.125, 0.75), (0.15, 1.0), (0.3, 1.0)],
)
def test_hedge_ratio_is_linear_from_threshold_to_halt_level(drawdown: float, ratio: float) -> None:
    assert hedge_ratio(drawdown, 0.05, 0.15) == pytest.approx(ratio, abs=1e-12)


def test_execute_hedge_returns_an_explicit_instruction() -> None:
    hedge = HedgingStrategy(max_drawdown_threshold=0.05, halt_drawdown=0.15).execute_hedge(0.125)
    assert isinstance(hedge, HedgeInstruction)
    assert hedge.active is True
    assert hedge.ratio == pytest.approx(0.75)
    assert "drawdown 0.125 > threshold 0.05" in hedge.reason


def test_hedge_has_hysteresis_on_then_off_only_at_the_release_level() -> None:
    hedger = HedgingStrategy(max_drawdown_threshold=0.05, halt_drawdown=0.15, release_margin=0.01)
    path = [0.03, 0.051, 0.049, 0.052, 0.045, 0.041, 0.04, 0.046, 0.05, 0.051]
    active = [hedger.execute_hedge(dd).active for dd in path]
    assert active == [False, True, True, True, True, True, False, False, False, True]


def test_hedge_ratio_in_the_hysteresis_band_is_the_graded_zero() -> None:
    hedger = HedgingStrategy(0.05, 0.15, 0.01)
    hedger.execute_hedge(0.08)
    held = hedger.execute_hedge(0.045)
    assert held.active is True
    assert held.ratio == 0.0
    assert "held until <= 0.04" in held.reason


def test_noise_around_the_threshold_does_not_flap_the_hedge() -> None:
    hedger = HedgingStrategy(0.05, 0.15, 0.01)
    with capture_logs() as logs:
        for dd in [0.049, 0.051] * 50:
            hedger.execute_hedge(dd)
    assert [e["event"] for e in logs] == ["hedge_activated"]


def test_each_on_off_change_emits_one_event() -> None:
    hedger = HedgingStrategy(0.05, 0.15, 0.01)
    with capture_logs() as logs:
        for dd in (0.02, 0.06, 0.07, 0.03, 0.02, 0.06):
            hedger.execute_hedge(dd)
    assert [e["event"] for e in logs] == ["hedge_activated", "hedge_released", "hedge_activated"]


def test_hedge_ratio_is_monotone_in_drawdown_for_each_state() -> None:
    grid = [i / 1000 for i in range(0, 301)]
    for active in (False, True):
        ratios = []
        for dd in grid:
            hedger = HedgingStrategy(0.05, 0.15, 0.01)
            hedger.reset(active=active)
            ratios.append(hedger.compute_hedge_ratio(dd))
        assert all(b >= a for a, b in itertools.pairwise(ratios))
        assert ratios[-1] == 1.0


def test_compute_hedge_ratio_does_not_change_state() -> None:
    hedger = HedgingStrategy(0.05, 0.15, 0.01)
    assert hedger.compute_hedge_ratio(0.10) == pytest.approx(0.5)
    assert hedger.active is False
    hedger.execute_hedge(0.10)
    assert hedger.compute_hedge_ratio(0.045) == 0.0  # stays on in the band, graded ratio 0
    assert hedger.compute_hedge_ratio(0.03) == 0.0
    assert hedger.active is True


def test_halted_gives_a_full_hedge_whatever_the_drawdown() -> None:
    hedger = HedgingStrategy()
    hedge = hedger.execute_hedge(0.0, halted=True)
    assert hedge == HedgeInstruction(active=True, ratio=1.0, reason="trading halted")
    assert hedger.active is True
    assert hedger.execute_hedge(0.0).active is False  # released once no longer halted


def test_next_hedge_active_truth_table() -> None:
    assert next_hedge_active(False, 0.051, 0.05, 0.04) is True
    assert next_hedge_active(False, 0.05, 0.05, 0.04) is False
    assert next_hedge_active(True, 0.041, 0.05, 0.04) is True
    assert next_hedge_active(True, 0.04, 0.05, 0.04) is False


def test_from_config_uses_the_hedge_settings_and_halt_drawdown() -> None:
    cfg = RiskConfig(
        reduce_drawdown=0.15,
        halt_drawdown=0.2,
        hedge=HedgeConfig(max_drawdown_threshold=0.1, release_margin=0.02),
    )
    hedger = HedgingStrategy.from_config(cfg)
    assert hedger.halt_drawdown == 0.2
    assert hedger.release_level == pytest.approx(0.08)
    assert hedger.execute_hedge(0.15).ratio == pytest.approx(0.5)


def test_zero_margin_has_no_hysteresis() -> None:
    hedger = HedgingStrategy(0.05, 0.15, 0.0)
    assert [hedger.execute_hedge(dd).active for dd in (0.051, 0.05, 0.051)] == [True, False, True]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"max_drawdown_threshold": 0.15, "halt_drawdown": 0.15}, "halt_drawdown"),
        ({"max_drawdown_threshold": 0.2, "halt_drawdown": 0.15}, "halt_drawdown"),
        ({"max_drawdown_threshold": -0.01}, "max_drawdown_threshold"),
        ({"max_drawdown_threshold": math.nan}, "max_drawdown_threshold"),
        ({"halt_drawdown": 1.5}, "halt_drawdown"),
        ({"release_margin": -0.01}, "release_margin"),
        ({"release_margin": 0.06}, "release_margin"),
    ],
    ids=[
        "threshold-eq-halt",
        "threshold-gt-halt",
        "threshold-neg",
        "threshold-nan",
        "halt-above-1",
        "margin-neg",
        "margin-gt-threshold",
    ],
)
def test_bad_hedge_settings_raise_naming_the_field(kwargs: dict[str, float], field: str) -> None:
    with pytest.raises(InvalidInputError, match=field):
        HedgingStrategy(**kwargs)


@pytest.mark.parametrize("drawdown", [-0.01, 1.5, math.nan, math.inf, "0.1"])
def test_bad_drawdown_raises_and_leaves_state_unchanged(drawdown: object) -> None:
    hedger = HedgingStrategy()
    hedger.execute_hedge(0.10)
    with pytest.raises(InvalidInputError, match="drawdown"):
        hedger.execute_hedge(drawdown)  # type: ignore[arg-type]
    assert hedger.active is True
