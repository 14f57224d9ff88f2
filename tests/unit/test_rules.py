"""Trading-state rules and machine: transitions, N confirmations, kill switch, resume, idempotence."""

from __future__ import annotations

import dataclasses
import math

import pytest
from structlog.testing import capture_logs

from advanced_risk.config import RiskConfig
from advanced_risk.errors import InvalidInputError
from advanced_risk.risk.rules import (
    HALT_RULES,
    REDUCE_RULES,
    RiskObservation,
    Streak,
    TradingStateMachine,
    check_rules,
    classify_risk_level,
    correlation_shock_rule,
    drawdown_halt_rule,
    drawdown_reduce_rule,
    loss_streak_rule,
    var_breach_streak_rule,
)
from advanced_risk.types import RiskLevel, TradingState

CFG = RiskConfig(
    reduce_drawdown=0.08, halt_drawdown=0.15, halt_confirmations=3, var_breach_streak=3, loss_streak=5
)
A, R, H = TradingState.ACTIVE, TradingState.REDUCING, TradingState.HALTED


def obs(dd: float = 0.0, shock: bool = False, breaches: int = 0, losses: int = 0) -> RiskObservation:
    return RiskObservation(
        drawdown=dd, correlation_shock=shock, var_breach_streak=breaches, loss_streak=losses
    )


def run(machine: TradingStateMachine, observations: list[RiskObservation]) -> list[TradingState]:
    return [machine.evaluate(o).state for o in observations]


# -- rules -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "quiet", "firing", "text"),
    [
        (drawdown_reduce_rule, obs(0.079), obs(0.08), "drawdown 0.08 >= reduce_drawdown 0.08"),
        (correlation_shock_rule, obs(), obs(shock=True), "correlation shock"),
        (var_breach_streak_rule, obs(breaches=2), obs(breaches=3), "3 VaR breaches in a row"),
        (drawdown_halt_rule, obs(0.149), obs(0.15), "drawdown 0.15 >= halt_drawdown 0.15"),
        (loss_streak_rule, obs(losses=4), obs(losses=5), "5 losing bars in a row >= loss_streak 5"),
    ],
    ids=["drawdown-reduce", "shock", "var-streak", "drawdown-halt", "loss-streak"],
)
def test_each_rule_returns_a_reason_only_when_it_fires(
    rule: object, quiet: RiskObservation, firing: RiskObservation, text: str
) -> None:
    assert rule(quiet, CFG) is None  # type: ignore[operator]
    assert text in rule(firing, CFG)  # type: ignore[operator]


def test_the_shock_and_var_streak_triggers_can_be_turned_off() -> None:
    quiet = dataclasses.replace(CFG, reduce_on_correlation_shock=False, var_breach_streak=None)
    assert correlation_shock_rule(obs(shock=True), quiet) is None
    assert var_breach_streak_rule(obs(breaches=10_000), quiet) is None
    machine = TradingStateMachine(quiet)
    assert run(machine, [obs(shock=True, breaches=50)] * 3) == [A, A, A]
    assert drawdown_reduce_rule(obs(0.08), quiet) is not None  # the drawdown rule is untouched


def test_check_rules_collects_every_reason_in_order() -> None:
    reasons = check_rules(REDUCE_RULES, obs(0.1, shock=True, breaches=4), CFG)
    assert len(reasons) == 3
    assert reasons[1] == "correlation shock"
    assert check_rules(HALT_RULES, obs(0.1), CFG) == ()


def test_streak_counts_consecutive_hits() -> None:
    s = Streak()
    assert [s.update(h) for h in (True, True, True, False, True)] == [1, 2, 3, 0, 1]
    s.reset()
    assert s.count == 0


# -- transitions -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cause",
    [obs(0.09), obs(shock=True), obs(breaches=3)],
    ids=["drawdown", "correlation-shock", "var-breach-streak"],
)
def test_each_reduce_cause_moves_active_to_reducing_and_clearing_returns_to_active(
    cause: RiskObservation,
) -> None:
    m = TradingStateMachine(CFG)
    assert run(m, [obs(0.01), cause, cause, obs(0.01)]) == [A, R, R, A]
    assert m.reason == "risk causes cleared"


def test_drawdown_halt_needs_n_consecutive_confirmations() -> None:
    m = TradingStateMachine(CFG)
    first = m.evaluate(obs(0.16))
    assert (first.state, first.halt_votes) == (R, 1)
    assert m.reason.startswith("halt pending (1/3): drawdown 0.16 >= halt_drawdown 0.15")
    updates = [m.evaluate(obs(0.16)) for _ in range(2)]
    assert [u.state for u in updates] == [R, H]
    assert [u.halt_votes for u in updates] == [2, 3]
    assert m.reason == "drawdown 0.16 >= halt_drawdown 0.15"


def test_an_interrupted_halt_streak_starts_counting_again() -> None:
    m = TradingStateMachine(CFG)
    assert run(m, [obs(0.16), obs(0.16), obs(0.10), obs(0.16), obs(0.16)]) == [R, R, R, R, R]
    assert m.halt_votes == 2
    assert m.evaluate(obs(0.16)).state is H


def test_loss_streak_halts_after_confirmations() -> None:
    m = TradingStateMachine(CFG)
    assert run(m, [obs(losses=n) for n in range(3, 9)]) == [A, A, R, R, H, H]


def test_halted_stays_halted_when_causes_clear_until_resume() -> None:
    m = TradingStateMachine(RiskConfig(halt_confirmations=1))
    assert run(m, [obs(0.35), obs(0.0), obs(0.0)]) == [H, H, H]  # past halt_drawdown (0.30)
    quiet = m.evaluate(obs(0.0))
    assert quiet.reasons == ()
    assert quiet.changed is False
    assert m.resume("drawdown reviewed") is True
    assert m.state is A
    assert m.reason == "resumed: drawdown reviewed"
    assert m.evaluate(obs(0.0)).state is A


def test_resume_with_the_cause_still_present_needs_fresh_confirmations_to_halt_again() -> None:
    m = TradingStateMachine(CFG)
    run(m, [obs(0.2)] * 3)
    assert m.resume("operator override") is True
    assert m.halt_votes == 0
    assert run(m, [obs(0.2)] * 3) == [R, R, H]


def test_resume_outside_halted_does_nothing() -> None:
    m = TradingStateMachine(CFG)
    m.evaluate(obs(0.09))
    with capture_logs() as logs:
        assert m.resume("nothing to resume") is False
    assert m.state is R
    assert logs == []


def test_kill_switch_halts_at_once_and_only_resume_releases_it() -> None:
    m = TradingStateMachine(CFG)
    assert m.engage_kill_switch("exchange outage") is True
    assert (m.state, m.kill_switch) == (H, True)
    assert m.reason == "kill switch: exchange outage"
    assert run(m, [obs(0.0)] * 5) == [H] * 5
    assert m.engage_kill_switch("again") is False  # already halted: no change
    assert m.resume("exchange back") is True
    assert (m.state, m.kill_switch) == (A, False)


def test_restored_kill_switch_forces_halted() -> None:
    m = TradingStateMachine(CFG, state="active", kill_switch=True)
    assert m.state is H
    restored = TradingStateMachine(CFG, state=TradingState.REDUCING, reason="drawdown 0.09")
    assert (restored.state, restored.reason) == (R, "drawdown 0.09")


def test_setting_the_same_state_twice_does_nothing_and_a_change_emits_one_event() -> None:
    m = TradingStateMachine(CFG)
    with capture_logs() as logs:
        updates = [m.evaluate(o) for o in (obs(0.09), obs(0.10), obs(0.09, shock=True), obs(0.0), obs(0.0))]
    assert [u.changed for u in updates] == [True, False, False, True, False]
    assert [(e["event"], e["previous"], e["state"]) for e in logs] == [
        ("trading_state_changed", "active", "reducing"),
        ("trading_state_changed", "reducing", "active"),
    ]
    assert logs[0]["reason"] == "drawdown 0.09 >= reduce_drawdown 0.08"


def test_reasons_are_collected_not_raised() -> None:
    m = TradingStateMachine(CFG)
    update = m.evaluate(obs(0.2, shock=True, breaches=5, losses=9))
    assert update.state is R
    assert len(update.reasons) == 5  # two halt rules, three reduce rules
    assert "halt pending (1/3)" in m.reason


@pytest.mark.parametrize("reason", ["", "   ", None, 3], ids=repr)
def test_resume_and_kill_need_a_reason(reason: object) -> None:
    m = TradingStateMachine(CFG)
    with pytest.raises(InvalidInputError, match="reason"):
        m.engage_kill_switch(reason)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="reason"):
        m.resume(reason)  # type: ignore[arg-type]
    assert m.state is A


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"drawdown": -0.1}, "drawdown"),
        ({"drawdown": math.nan}, "drawdown"),
        ({"drawdown": 1.2}, "drawdown"),
        ({"var_breach_streak": -1}, "var_breach_streak"),
        ({"loss_streak": 1.5}, "loss_streak"),
        ({"correlation_shock": "yes"}, "correlation_shock"),
    ],
    ids=["dd-neg", "dd-nan", "dd-above-1", "breaches-neg", "losses-float", "shock-str"],
)
def test_bad_observation_raises_naming_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInputError, match=field):
        RiskObservation(**kwargs)  # type: ignore[arg-type]


def test_bad_restored_state_raises() -> None:
    with pytest.raises(InvalidInputError, match="state must be one of"):
        TradingStateMachine(CFG, state="paused")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"halt_confirmations": 0}, "halt_confirmations"),
        ({"loss_streak": 2.0}, "loss_streak"),
        ({"var_breach_streak": 0}, "var_breach_streak"),
        ({"reduce_on_correlation_shock": 1}, "reduce_on_correlation_shock"),
    ],
)
def test_bad_rule_settings_raise_naming_the_field(kwargs: dict[str, float], field: str) -> None:
    with pytest.raises(InvalidInputError, match=field):
        RiskConfig(**kwargs)  # type: ignore[arg-type]


# -- risk level ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("drawdown", "kwargs", "level"),
    [
        (0.0, {}, RiskLevel.LOW),
        (0.039, {}, RiskLevel.LOW),
        (0.04, {}, RiskLevel.ELEVATED),
        (0.08, {}, RiskLevel.HIGH),
        (0.15, {}, RiskLevel.CRITICAL),
        (0.0, {"var": 0.0374}, RiskLevel.LOW),
        (0.0, {"var": 0.038}, RiskLevel.ELEVATED),
        (0.0, {"var": 0.05}, RiskLevel.HIGH),
        (0.0, {"var": 0.10}, RiskLevel.CRITICAL),
        (0.0, {"var": math.nan}, RiskLevel.LOW),
        (0.0, {"correlation_shock": True}, RiskLevel.HIGH),
        (0.0, {"trading_state": TradingState.REDUCING}, RiskLevel.HIGH),
        (0.0, {"trading_state": TradingState.HALTED}, RiskLevel.CRITICAL),
        (0.05, {"var": 0.01, "trading_state": TradingState.ACTIVE}, RiskLevel.ELEVATED),
        (0.09, {"var": 0.2}, RiskLevel.CRITICAL),
    ],
)
def test_risk_level_is_the_worst_of_its_signals(
    drawdown: float, kwargs: dict[str, object], level: RiskLevel
) -> None:
    cfg = RiskConfig(reduce_drawdown=0.08, halt_drawdown=0.15, var_limit=0.05)
    assert classify_risk_level(drawdown, cfg, **kwargs) is level  # type: ignore[arg-type]


def test_risk_level_ignores_var_without_a_limit() -> None:
    assert classify_risk_level(0.0, RiskConfig(var_limit=None), var=0.5) is RiskLevel.LOW
