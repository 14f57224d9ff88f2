from __future__ import annotations

import pytest

from advanced_risk.config import RiskConfig, TrackerConfig
from advanced_risk.errors import ConfigError, InvalidInputError
from advanced_risk.measures.var import VaRMethod
from advanced_risk.types import (
    CorrelationState,
    HedgeInstruction,
    MarketState,
    Portfolio,
    RiskDecision,
    RiskLevel,
    TradingState,
)


def test_config_reports_all_bad_fields_at_once() -> None:
    with pytest.raises(ConfigError) as info:
        RiskConfig(alpha=1.5, reduce_drawdown=0.2, halt_drawdown=0.1, deadline_ms=-1.0)
    text = str(info.value)
    assert "alpha must be in (0, 1), got 1.5" in text
    assert "reduce_drawdown < halt_drawdown" in text
    assert "deadline_ms must be in (0.0, inf], got -1.0" in text


def test_config_error_is_an_invalid_input_error() -> None:
    with pytest.raises(InvalidInputError):
        TrackerConfig(window=5)


def test_config_from_dict_rejects_unknown_keys() -> None:
    with pytest.raises(ConfigError, match=r"unknown field\(s\) \['windw'\]"):
        TrackerConfig.from_dict({"windw": 100})


def test_config_is_frozen() -> None:
    cfg = TrackerConfig()
    with pytest.raises(AttributeError):
        cfg.window = 10  # type: ignore[misc]


def test_config_round_trips_through_dict() -> None:
    cfg = TrackerConfig(window=100, method=VaRMethod.HISTORICAL)
    assert cfg.to_dict()["method"] == "historical"
    assert TrackerConfig.from_dict({"window": 100, "method": VaRMethod.HISTORICAL}) == cfg


def test_tracker_hysteresis_needs_clear_margin_below_shock_margin() -> None:
    with pytest.raises(ConfigError, match="clear_margin < shock_margin"):
        TrackerConfig(shock_margin=0.1, clear_margin=0.2)


def test_seed_dicts_build_market_state_and_portfolio() -> None:
    market = MarketState.from_mapping({"volatility": 0.3, "trend": 0.05})
    portfolio = Portfolio.from_mapping({"btc": 0.5, "eth": 0.3, "current_drawdown": 0.02})
    assert market.volatility == 0.3
    assert dict(portfolio.weights) == {"btc": 0.5, "eth": 0.3}
    assert portfolio.cash_weight == pytest.approx(0.2)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        pytest.param(
            lambda: Portfolio.from_mapping({"current_drawdown": 1.5}), r"current_drawdown", id="dd>1"
        ),
        pytest.param(
            lambda: Portfolio.from_mapping({"btc": float("nan")}), r"weights\['btc'\]", id="nan-weight"
        ),
        pytest.param(lambda: Portfolio(equity=-5.0), r"portfolio.equity", id="negative-equity"),
        pytest.param(lambda: MarketState(volatility=-0.1), r"market_state.volatility", id="negative-vol"),
        pytest.param(lambda: MarketState(prices={"A": 0.0}), r"market_state.prices\['A'\]", id="zero-price"),
        pytest.param(
            lambda: MarketState(returns={"A": -1.5}), r"market_state.returns\['A'\]", id="return<-1"
        ),
        pytest.param(lambda: MarketState.from_mapping({"volatilty": 0.2}), r"unknown field", id="typo"),
        pytest.param(lambda: MarketState(trend=True), r"market_state.trend", id="bool-trend"),
        pytest.param(lambda: MarketState(high={"A": 1.0}, low={"A": 2.0}), r"below", id="high<low"),
    ],
)
def test_bad_edge_input_names_the_field(build: object, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        build()  # type: ignore[operator]


def test_risk_decision_reads_like_a_mapping() -> None:
    decision = RiskDecision(
        rebalance_weights={"A": 1.0},
        leverage=1.5,
        hedge=HedgeInstruction(active=False, ratio=0.0, reason="none"),
        position_sizes={},
        stop_levels={},
        var=0.02,
        cvar=0.03,
        correlation=CorrelationState(average=0.3, shock=False),
        risk_level=RiskLevel.LOW,
        trading_state=TradingState.ACTIVE,
    )
    assert decision["leverage"] == 1.5
    assert "var" in decision
    assert dict(decision)["cvar"] == 0.03
    with pytest.raises(KeyError):
        decision["nope"]


# ------------------------------------------------------------------ alpha: one setting
def test_tracker_alpha_defaults_to_none_and_risk_config_fills_it_in() -> None:
    assert TrackerConfig().alpha is None
    assert RiskConfig().tracker.alpha == 0.99
    cfg = RiskConfig(alpha=0.95)
    assert cfg.tracker.alpha == 0.95
    assert RiskConfig(alpha=0.95, tracker=TrackerConfig(alpha=0.95)) == cfg
    assert RiskConfig(alpha=0.95, tracker={"window": 100}).tracker == TrackerConfig(window=100, alpha=0.95)


def test_risk_config_rejects_a_tracker_alpha_that_differs() -> None:
    with pytest.raises(ConfigError, match=r"tracker\.alpha \(0\.9\) differs from alpha \(0\.95\)"):
        RiskConfig(alpha=0.95, tracker=TrackerConfig(alpha=0.9))
    with pytest.raises(ConfigError, match=r"tracker\.alpha"):
        RiskConfig.from_dict({"tracker": {"alpha": 0.95}})  # RiskConfig.alpha is 0.99


def test_tracker_alpha_is_validated_when_set() -> None:
    with pytest.raises(ConfigError, match=r"alpha must be in"):
        TrackerConfig(alpha=1.0)
    assert TrackerConfig(alpha=0.9).alpha == 0.9


def test_risk_config_round_trips_through_dict_and_toml() -> None:
    import tomllib

    cfg = RiskConfig(alpha=0.975, tracker=TrackerConfig(window=120, method=VaRMethod.HISTORICAL))
    data = cfg.to_dict()
    assert data["alpha"] == 0.975
    assert "alpha" not in data["tracker"]  # one setting: tracker.alpha is RiskConfig.alpha
    assert RiskConfig.from_dict(data) == cfg
    assert RiskConfig.from_dict({**data, "alpha": 0.9}).tracker.alpha == 0.9  # edit one place
    toml = 'alpha = 0.975\n[tracker]\nwindow = 120\nmethod = "historical"\n'
    assert RiskConfig.from_dict(tomllib.loads(toml)) == cfg


def test_standalone_tracker_uses_0_99_or_its_own_alpha() -> None:
    import numpy as np

    from advanced_risk.measures.var import portfolio_var
    from advanced_risk.risk.tracker import RiskTracker

    r = np.random.default_rng(1).normal(0.0, 0.01, (60, 2))
    w = np.array([0.5, 0.5])
    for alpha, expected in ((None, 0.99), (0.9, 0.9)):
        tracker = RiskTracker(2, TrackerConfig(window=50, method=VaRMethod.HISTORICAL, alpha=alpha))
        for row in r:
            tracker.update(row)
        assert tracker.snapshot(w).alpha == expected
        assert tracker.var(w) == pytest.approx(portfolio_var(w, r[-50:], expected, VaRMethod.HISTORICAL))


@pytest.mark.parametrize("field", ["deadline_ms", "drawdown_window", "periods_per_year"])
def test_a_number_too_large_for_any_run_is_refused_naming_the_field(field: str) -> None:
    """An integer too large for a float or a container (10**400 is a valid int) used to reach the
    caller as ``OverflowError`` at the first decision, or degrade every decision."""
    with pytest.raises(ConfigError, match=field):
        RiskConfig.from_dict({field: 10**400})
    assert RiskConfig.from_dict({field: 1_000}).to_dict()[field] == 1_000  # a large sane value is kept


@pytest.mark.parametrize(
    "kwargs",
    [
        {"window": 10**7},
        {"fhs_window": 10**400},
        {"correlation_warmup": 10**400},
        {"garch_refit_every": 10**400},
    ],
    ids=["window", "fhs-window", "correlation-warmup", "refit"],
)
def test_a_tracker_window_past_its_memory_bound_is_refused_naming_it(kwargs: dict[str, int]) -> None:
    (name,) = kwargs
    with pytest.raises(ConfigError, match=name):
        TrackerConfig(**kwargs)  # type: ignore[arg-type]
