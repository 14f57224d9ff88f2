"""The learned risk agents inside manage_risk (issue 7): advice applied, gating, faults, bad models.

The agents are untrained :class:`RiskAgents` on the 4 assets of :class:`BarFeed` (initialised with a
fixed seed, near mid-range actions): what is tested is the plumbing, not what the agents learned.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from advanced_risk.config import EnvConfig, RiskConfig
from advanced_risk.errors import InvalidInputError, ModelLoadError
from advanced_risk.manager import AdvancedRiskManager
from advanced_risk.rl.agents.policy import AgentsAction, RiskAgents
from advanced_risk.types import MarketState, Portfolio, RiskDecision

from .conftest import ASSETS, BarFeed, FakeAllocator, assert_conservative, assert_sane, fast_config

WARM_BARS = 40  # past the agents' 28-bar history and the 14-bar ATR


@pytest.fixture(scope="module")
def agents() -> RiskAgents:
    return RiskAgents.untrained(EnvConfig(asset_count=len(ASSETS)), seed=3)


def _run(risk: AdvancedRiskManager, bars: int, seed: int = 1) -> list[RiskDecision]:
    feed = BarFeed(seed=seed)
    return [risk.manage_risk_sync(*feed.next()) for _ in range(bars)]


def test_without_agents_a_decision_carries_no_advice() -> None:
    decisions = _run(AdvancedRiskManager(fast_config()), WARM_BARS)
    assert all(d.risk_agents is None for d in decisions)
    assert json.loads(decisions[-1].to_json())["risk_agents"] is None


def test_the_agents_advise_once_they_have_history_and_the_advice_is_journalled(agents: RiskAgents) -> None:
    decisions = _run(AdvancedRiskManager(fast_config(), risk_agents=agents), WARM_BARS)
    assert decisions[0].risk_agents is None  # no history yet: the rules alone
    last = decisions[-1]
    advice = last.risk_agents
    assert advice is not None
    assert not last.degraded
    assert 0.0 <= advice.scale <= 1.0
    assert 0.5 <= advice.stop_multiple <= 5.0
    assert advice.monitor in ("none", "reduce", "hedge", "halt")
    assert set(advice.uncertainty) == {"sizer", "stop", "monitor"}
    assert advice.overridden == {}
    row = json.loads(last.to_json())["risk_agents"]
    assert row["monitor"] == advice.monitor
    assert row["scale"] == pytest.approx(advice.scale)
    assert_sane(last)


def test_the_advice_scales_sizes_cuts_exposure_and_sets_the_stop_distance(agents: RiskAgents) -> None:
    """Same bars with and without agents: stops at k ATRs, so the risk budget buys 2/k as many units,
    times scale x (1 - cut); the assets' weights are cut by the monitor's cut."""
    config = fast_config(sizing={"max_position_fraction": 1e6})  # the ATR risk budget binds, not the cap
    plain = _run(AdvancedRiskManager(config), WARM_BARS)
    advised = _run(AdvancedRiskManager(config, risk_agents=agents), WARM_BARS)
    a, b = plain[-1], advised[-1]
    advice = b.risk_agents
    assert advice is not None
    factor = 2.0 / advice.stop_multiple * advice.scale * (1.0 - advice.cut)
    for asset in ASSETS:
        assert b.position_sizes[asset] == pytest.approx(a.position_sizes[asset] * factor, rel=1e-9)
    # The first advised bar sets fresh stops at k ATRs below the close; the rules used 2 ATRs.
    first = next(i for i, d in enumerate(advised) if d.risk_agents is not None)
    prices = BarFeed(seed=1)
    for _ in range(first + 1):
        market, _ = prices.next()
    k = advised[first].risk_agents.stop_multiple  # type: ignore[union-attr]
    for asset in ASSETS:
        price = market["prices"][asset]
        atr_rule = (price - plain[first].stop_levels[asset]) / 2.0
        if advised[first - 1].stop_levels.get(asset, math.inf) >= price - k * atr_rule:
            continue  # a trailing stop above the fresh level is kept
        assert advised[first].stop_levels[asset] == pytest.approx(price - k * atr_rule, rel=1e-9)
    held_assets = sum(w for name, w in b.rebalance_weights.items() if name != "cash")
    plain_assets = sum(w for name, w in a.rebalance_weights.items() if name != "cash")
    assert held_assets == pytest.approx(plain_assets * (1.0 - advice.cut), abs=1e-12)


def test_agents_above_the_threshold_are_replaced_by_the_rules_and_the_decision_says_why(
    agents: RiskAgents,
) -> None:
    """Forced high uncertainty (threshold 0): each agent falls back to its rule, as the rules decide."""
    config = fast_config(agents_uncertainty_threshold=0.0)
    plain = _run(AdvancedRiskManager(fast_config()), WARM_BARS)
    gated = _run(AdvancedRiskManager(config, risk_agents=agents), WARM_BARS)
    advice = gated[-1].risk_agents
    assert advice is not None
    assert set(advice.overridden) == {"sizer", "stop", "monitor"}
    assert all(reason.startswith("uncertainty ") and "> 0" in reason for reason in advice.overridden.values())
    assert (advice.scale, advice.stop_multiple, advice.monitor, advice.cut) == (1.0, 2.0, "none", 0.0)
    assert any("risk agents overridden by the rules" in alert for alert in gated[-1].alerts)
    for p, g in zip(plain, gated, strict=True):
        assert g.position_sizes == pytest.approx(p.position_sizes)
        assert g.stop_levels == pytest.approx(p.stop_levels)
        assert g.rebalance_weights == pytest.approx(p.rebalance_weights)


def _crash(market: dict[str, Any], size: float) -> dict[str, Any]:
    out = {k: dict(v) for k, v in market.items()}
    for asset in ASSETS:
        out["returns"][asset] = -size
        for key in ("prices", "high", "low"):
            out[key][asset] = market[key][asset] * (1.0 - size)
    return out


class _Exploding:
    """An advisor stand-in whose advise raises or sleeps."""

    def __init__(self, inner: Any, fail: bool = False, sleep_s: float = 0.0) -> None:
        self.inner, self.fail, self.sleep_s = inner, fail, sleep_s

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def advise(self, observations: Any) -> Any:
        if self.sleep_s:
            time.sleep(self.sleep_s)
        if self.fail:
            raise RuntimeError("agents exploded")
        return self.inner.advise(observations)


@pytest.mark.asyncio
async def test_agents_that_raise_or_are_late_degrade_the_decision_and_the_next_call_recovers(
    agents: RiskAgents,
) -> None:
    config = fast_config(deadline_ms=40.0)
    async with AdvancedRiskManager(config, risk_agents=agents) as risk:
        feed = BarFeed(seed=2)
        for _ in range(WARM_BARS):
            await risk.manage_risk(*feed.next())
        wrapper = _Exploding(risk._advisor, fail=True)
        risk._require_engine().advisor = wrapper  # the engine's component
        risk._advisor = wrapper  # the worker's component
        failed = await risk.manage_risk(*feed.next())
        assert_conservative(failed, "risk agents failed: RuntimeError: agents exploded")
        wrapper.fail, wrapper.sleep_s = False, 0.1
        late = await risk.manage_risk(*feed.next())
        assert_conservative(late, "risk agents missed the deadline")
        wrapper.sleep_s = 0.0
        await asyncio.sleep(0.15)  # the late job finishes in the worker
        healthy = await risk.manage_risk(*feed.next())
        assert not healthy.degraded
        assert healthy.risk_agents is not None


def test_agents_for_another_asset_count_are_refused_clearly(agents: RiskAgents) -> None:
    other = RiskAgents.untrained(EnvConfig(asset_count=3))
    with pytest.raises(InvalidInputError, match="4 assets but the risk agents were trained on 3"):
        AdvancedRiskManager(fast_config(), policy=FakeAllocator(), risk_agents=other)
    risk = AdvancedRiskManager(fast_config(), risk_agents=other)
    with pytest.raises(InvalidInputError, match="3"):
        risk.manage_risk_sync(*BarFeed().next())


def test_a_bad_agents_model_is_refused_at_construction(tmp_path: Path, agents: RiskAgents) -> None:
    with pytest.raises(ModelLoadError, match="not found"):
        AdvancedRiskManager(RiskConfig(risk_agents_path=str(tmp_path / "missing.armodel")))
    path = tmp_path / "agents.armodel"
    agents.save(path)
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelLoadError, match="corrupt"):
        AdvancedRiskManager(RiskConfig(risk_agents_path=str(path)))
    with pytest.raises(InvalidInputError, match="risk_agents must be"):
        AdvancedRiskManager(risk_agents=42)


def test_agents_saved_and_loaded_by_path_advise_the_same(tmp_path: Path, agents: RiskAgents) -> None:
    path = tmp_path / "agents.armodel"
    agents.save(path, metadata={"note": "test"})
    loaded = RiskAgents.load(path)
    feed = BarFeed(seed=4)
    from advanced_risk.rl.agents.env import RiskAgentsEnv

    obs, _ = RiskAgentsEnv(EnvConfig(asset_count=len(ASSETS))).reset(seed=0)
    one, two = agents.act(obs, n_samples=1), loaded.act(obs, n_samples=1)
    assert one.actions["monitor"] == two.actions["monitor"]
    for name in ("sizer", "stop"):
        np.testing.assert_allclose(one.actions[name], two.actions[name], rtol=1e-6)
    risk = AdvancedRiskManager(fast_config(risk_agents_path=str(path)))
    decision = [risk.manage_risk_sync(*feed.next()) for _ in range(WARM_BARS)][-1]
    assert decision.risk_agents is not None


def test_a_replay_with_agents_loaded_from_a_file_gives_the_same_decisions(
    tmp_path: Path, agents: RiskAgents
) -> None:
    path = tmp_path / "agents.armodel"
    agents.save(path)

    def replay() -> list[str]:
        risk = AdvancedRiskManager(fast_config(risk_agents_path=str(path)))
        try:  # the MC-dropout masks come from a generator seeded at load
            rows = [json.loads(d.to_json()) for d in _run(risk, WARM_BARS + 5)]
        finally:
            risk.close_sync()
        keep = ("risk_agents", "rebalance_weights", "position_sizes", "stop_levels")
        return [json.dumps({k: row[k] for k in keep}) for row in rows]

    assert replay() == replay()


def test_gate_keeps_confident_agents_and_names_the_replaced_ones() -> None:
    from advanced_risk.rl.agents.policy import gate

    proposed = AgentsAction(
        {"sizer": 0.3, "stop": (3.0, 1.0), "monitor": 2}, {"sizer": 0.05, "stop": math.nan, "monitor": 0.2}
    )
    actions, overridden = gate(proposed, {"sizer": 1.0, "stop": (2.0, 1.0), "monitor": 0}, 0.1)
    assert actions == {"sizer": 0.3, "stop": (2.0, 1.0), "monitor": 0}
    assert overridden == {"stop": "uncertainty nan > 0.1", "monitor": "uncertainty 0.2 > 0.1"}


def test_a_config_threshold_outside_0_1_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="agents_uncertainty_threshold"):
        RiskConfig(agents_uncertainty_threshold=1.5)
    assert (
        dataclasses.replace(RiskConfig(), agents_uncertainty_threshold=0.2).agents_uncertainty_threshold
        == 0.2
    )


SHIPPED = Path(__file__).resolve().parents[2] / "models" / "risk_agents_sp500.armodel"


def _stock_bar(assets: tuple[str, ...], prev: np.ndarray, now: np.ndarray) -> tuple[MarketState, Portfolio]:
    market = MarketState(
        prices=dict(zip(assets, now.tolist(), strict=True)),
        returns=dict(zip(assets, (now / prev - 1.0).tolist(), strict=True)),
    )
    return market, Portfolio(weights=dict.fromkeys(assets, 1.0 / (len(assets) + 1)), equity=100_000.0)


def test_out_of_distribution_input_falls_back_to_the_rules_and_the_decision_says_so(
    stock_prices: tuple[tuple[str, ...], np.ndarray],
) -> None:
    """The shipped agents on real closes, then a bar where every stock falls 35 %.

    On ordinary bars the agents act (no agent replaced for novelty); the crash bar puts the sizer's
    and the monitor's observations (returns, volatility, momentum) far outside the training data, so
    both are replaced by their rules, and the decision's advice and alerts say which and why. (The
    stop agent sees ATRs and distances from a fresh entry: the price fell through the stop, so the
    position restarts there, which is within its training range.)
    """
    assets, closes = stock_prices
    risk = AdvancedRiskManager(fast_config(deadline_ms=200.0), risk_agents=str(SHIPPED))
    for t in range(1, 80):
        calm = risk.manage_risk_sync(*_stock_bar(assets, closes[t - 1], closes[t]))
    assert calm.risk_agents is not None
    assert not any("observation" in why for why in calm.risk_agents.overridden.values())
    crash = risk.manage_risk_sync(*_stock_bar(assets, closes[79], closes[79] * 0.65))
    advice = crash.risk_agents
    assert advice is not None
    assert {"sizer", "monitor"} <= set(advice.overridden), advice.overridden
    for agent in ("sizer", "monitor"):
        assert "std from training data > 10" in advice.overridden[agent], advice.overridden
    assert (advice.scale, advice.monitor, advice.cut) == (1.0, "none", 0.0)  # the rules
    assert any("risk agents overridden by the rules" in alert for alert in crash.alerts)
    assert not crash.degraded


def test_gate_replaces_an_agent_whose_observation_is_far_from_its_training_data() -> None:
    from advanced_risk.rl.agents.policy import gate

    proposed = AgentsAction({"sizer": 0.3, "monitor": 2}, {"sizer": 0.01, "monitor": 0.01}, {"sizer": 12.5})
    actions, overridden = gate(proposed, {"sizer": 1.0, "monitor": 0}, 0.1)
    assert actions == {"sizer": 1.0, "monitor": 2}
    assert overridden == {"sizer": "observation 12.5 std from training data > 10"}
    assert gate(proposed, {"sizer": 1.0, "monitor": 0}, 0.1, novelty_limit=None)[1] == {}


def test_positions_restart_on_entry_through_the_stop_and_every_episode_length(agents: RiskAgents) -> None:
    """The advisor's entry/high bookkeeping, as the training environment keeps it."""
    from advanced_risk.config import SizingConfig
    from advanced_risk.rl.agents.advisor import RiskAgentsAdvisor
    from advanced_risk.rl.agents.env import POSITION_HORIZON

    advisor = RiskAgentsAdvisor(agents, SizingConfig())
    n, held = len(ASSETS), np.full(len(ASSETS), 0.2)
    no_stops = np.full(n, np.nan)
    advisor.observe(np.full(n, 100.0), held, None, no_stops)
    advisor.observe(np.full(n, 110.0), held, 0.02, no_stops)
    assert advisor._entry.tolist() == [100.0] * n
    assert advisor._high.tolist() == [110.0] * n
    stops = np.array([105.0, 90.0, np.nan, 90.0])
    advisor.observe(np.full(n, 104.0), held, -0.01, stops)  # asset 0 closed through its stop
    assert advisor._entry.tolist() == [104.0, 100.0, 100.0, 100.0]
    assert advisor._high.tolist() == [104.0, 110.0, 110.0, 110.0]
    flat = held.copy()
    flat[1] = 0.0
    advisor.observe(np.full(n, 104.0), flat, 0.0, no_stops)
    advisor.observe(np.full(n, 106.0), held, 0.0, no_stops)  # asset 1 re-entered
    assert advisor._entry[1] == 106.0
    for _ in range(POSITION_HORIZON):
        advisor.observe(np.full(n, 107.0), held, 0.0, no_stops)
    assert advisor._entry.tolist() == [107.0] * n  # a training episode's length later
