"""AdvancedRiskManager end to end (issue 5): the seed example verbatim, a real replay, sync twin, metrics."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np
import pytest
from structlog.testing import capture_logs

from advanced_risk.config import PPOConfig, RiskConfig
from advanced_risk.engine.core import Allocation
from advanced_risk.manager import AdvancedRiskManager
from advanced_risk.types import RiskDecision, TradingState

from .conftest import BarFeed, FakeAllocator, assert_sane, comparable, fast_config


@pytest.mark.asyncio
async def test_the_seed_integration_example_works_verbatim_and_says_state_is_in_memory() -> None:
    with capture_logs() as events:
        risk_manager = AdvancedRiskManager()
        decisions = await risk_manager.manage_risk(
            {"volatility": 0.3, "trend": 0.05}, {"btc": 0.5, "eth": 0.3, "current_drawdown": 0.02}
        )
    weights = decisions["rebalance_weights"]
    leverage = decisions["leverage"]
    hedge = decisions["hedge"]
    assert set(weights) == {"btc", "eth", "cash"}
    assert math.fsum(weights.values()) == pytest.approx(1.0)
    assert all(w >= 0.0 for w in weights.values())
    assert math.isfinite(leverage)
    assert leverage >= 0.0
    assert hedge.active is False  # 2 % drawdown is below the 5 % hedge threshold
    assert not decisions["degraded"]
    assert decisions["trading_state"] is TradingState.ACTIVE
    assert math.isfinite(decisions["var"])
    assert decisions["cvar"] >= decisions["var"] > 0.0
    assert "state_in_memory" in [e["event"] for e in events]
    await risk_manager.close()


@pytest.mark.asyncio
async def test_the_in_memory_event_reaches_stdlib_logging(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="advanced_risk"):
        async with AdvancedRiskManager() as risk:
            await risk.manage_risk({"volatility": 0.2}, {"btc": 0.5})
    assert any("state_in_memory" in r.getMessage() for r in caplog.records)


@pytest.mark.asyncio
async def test_a_replay_of_the_20_bundled_stocks_with_a_policy_gives_sane_decisions_every_bar(
    stock_prices: tuple[tuple[str, ...], np.ndarray],
) -> None:
    from advanced_risk.rl.portfolio.manager import RLPortfolioManager

    assets, prices = stock_prices
    policy = RLPortfolioManager(asset_count=len(assets), ppo_config=PPOConfig(device="cpu"))
    config = RiskConfig(deadline_ms=250.0)  # the default GARCH tracker; CI machines are noisy
    equity, held = 100_000.0, np.zeros(len(assets))
    peak, answered = equity, 0
    async with AdvancedRiskManager(config, policy=policy) as risk:
        for t in range(1, prices.shape[0]):
            returns = prices[t] / prices[t - 1] - 1.0
            equity *= 1.0 + float(held @ returns)
            peak = max(peak, equity)
            market = {
                "returns": dict(zip(assets, returns.tolist(), strict=True)),
                "prices": dict(zip(assets, prices[t].tolist(), strict=True)),
            }
            book = {"weights": dict(zip(assets, held.tolist(), strict=True)), "equity": equity}
            decision = await risk.manage_risk(market, book)
            assert not decision.degraded, (t, decision.alerts)
            assert_sane(decision, market["prices"])
            if t >= config.tracker.window:
                assert math.isfinite(decision.var), t
                assert math.isfinite(decision.cvar), t
                assert decision.cvar >= decision.var - 1e-12, t
            if decision.trading_state is TradingState.ACTIVE and t > config.sizing.atr_period + 1:
                assert set(decision.position_sizes) == set(assets)
                assert all(s >= 0.0 and math.isfinite(s) for s in decision.position_sizes.values())
            if decision.uncertainty is not None:
                assert decision.uncertainty >= 0.0
            held = np.array([decision.rebalance_weights[a] for a in assets]) * decision.leverage
            answered += decision.uncertainty is not None
        metrics = risk.metrics()
        assert risk._engine is not None
        assert risk._engine.peak_equity == pytest.approx(peak)
    assert answered > 300  # the policy decided once its 20-bar history had filled
    assert metrics["calls"] == prices.shape[0] - 1
    assert metrics["degraded"] == 0


def _drive_sync(risk: AdvancedRiskManager, n: int) -> list[RiskDecision]:
    feed = BarFeed(seed=7)
    return [risk.manage_risk_sync(*feed.next()) for _ in range(n)]


async def _drive_async(risk: AdvancedRiskManager, n: int) -> list[RiskDecision]:
    feed = BarFeed(seed=7)
    return [await risk.manage_risk(*feed.next()) for _ in range(n)]


@dataclass
class SoftmaxAllocator(FakeAllocator):
    """An allocator whose answer is a deterministic function of every input it is given.

    Asset weights: ``(1 - cash) * softmax(20 * sum of the return history + held asset weights)``;
    cash: ``0.1 + 2 * drawdown + 0.1 * held cash`` (at most 0.9); uncertainty: the std of the
    history. It records what it was asked (``seen``), so two runs can be compared input by input.
    """

    seen: list[tuple[float, ...]] = field(default_factory=list)

    def allocate(self, returns: np.ndarray, weights: np.ndarray, drawdown: float) -> Allocation:
        self.calls += 1
        self.seen.append((*returns.ravel().tolist(), *weights.tolist(), drawdown))
        score = 20.0 * returns.sum(axis=0) + weights[:-1]
        tilt = np.exp(score - score.max())
        cash = min(0.9, 0.1 + 2.0 * drawdown + 0.1 * float(weights[-1]))
        w = np.append((1.0 - cash) * tilt / tilt.sum(), cash)
        return Allocation(weights=w, uncertainty=float(returns.std()))


@pytest.mark.asyncio
async def test_manage_risk_sync_gives_the_same_decisions_as_manage_risk() -> None:
    n = 300  # past the tracker's 250-bar window: VaR/CVaR from the tracker too
    config = fast_config(deadline_ms=250.0)
    async_policy, sync_policy = SoftmaxAllocator(), SoftmaxAllocator()
    async with AdvancedRiskManager(config, policy=async_policy) as risk:
        via_async = await _drive_async(risk, n)
    twin = AdvancedRiskManager(config, policy=sync_policy)
    try:
        via_sync = _drive_sync(twin, n)
    finally:
        twin.close_sync()
    assert not any(d.degraded for d in via_async + via_sync)
    assert math.isfinite(via_sync[-1].var)
    # the policy took part and its answer moved with its inputs: a twin that fed it other
    # returns, weights or drawdown would show up in the decisions, not only in the inputs
    assert async_policy.calls == sync_policy.calls > n - 10
    assert async_policy.seen == sync_policy.seen
    uncertainties = {d.uncertainty for d in via_sync if d.uncertainty is not None}
    assert len(uncertainties) > n - 10
    assert len({tuple(d.rebalance_weights.values()) for d in via_sync}) > n // 2
    for i, (a, s) in enumerate(zip(via_async, via_sync, strict=True)):
        assert comparable(a) == comparable(s), i


@pytest.mark.asyncio
async def test_metrics_count_calls_degraded_decisions_deadline_violations_and_latency() -> None:
    policy = FakeAllocator(history_length=2)
    feed = BarFeed(seed=3)
    async with AdvancedRiskManager(fast_config(deadline_ms=30.0, journal_sync=False), policy=policy) as risk:
        empty = risk.metrics()
        assert empty["calls"] == 0
        assert math.isnan(empty["latency_p50_ms"])
        healthy = [await risk.manage_risk(*feed.next()) for _ in range(10)]
        policy.sleep_s = 0.08  # late: degraded and past the deadline
        late = [await risk.manage_risk(*feed.next()) for _ in range(2)]
        policy.sleep_s, policy.fail = 0.0, True  # raises: degraded, in time
        await __import__("asyncio").sleep(0.1)  # let the late policy thread finish
        failed = [await risk.manage_risk(*feed.next()) for _ in range(3)]
        policy.fail = False
        metrics = risk.metrics()
    decisions = healthy + late + failed
    assert metrics["calls"] == 15
    assert metrics["degraded"] == sum(d.degraded for d in decisions) == 5
    assert metrics["deadline_violations"] == sum(d.latency_ms > 30.0 for d in decisions)
    latencies = np.array([d.latency_ms for d in decisions])
    # a decision's latency_ms ends at the journal hand-off (it is in the row); the metrics time the
    # whole call, encoding the row and returning included: a little more, never less
    for key, expected in (("p50", np.percentile(latencies, 50)), ("p99", np.percentile(latencies, 99))):
        assert expected <= metrics[f"latency_{key}_ms"] == pytest.approx(expected, abs=5.0)
    assert latencies.max() <= metrics["latency_max_ms"] == pytest.approx(latencies.max(), abs=5.0)
    assert metrics["latency_p50_ms"] <= metrics["latency_p99_ms"] <= metrics["latency_max_ms"]
    assert metrics["journal_healthy"] is True


@pytest.mark.asyncio
async def test_decision_reads_as_a_mapping_and_carries_a_unique_id() -> None:
    feed = BarFeed(seed=1)
    async with AdvancedRiskManager(fast_config()) as risk:
        decisions = [await risk.manage_risk(*feed.next()) for _ in range(20)]
        assert risk.trading_state == "active"
    assert risk.trading_state == "closed"
    ids = [d["decision_id"] for d in decisions]
    assert len(set(ids)) == len(ids)
    assert all(ids)
    assert dict(decisions[-1])["leverage"] == decisions[-1].leverage


@pytest.mark.asyncio
async def test_a_closed_manager_can_be_opened_again_and_keeps_deciding() -> None:
    risk = AdvancedRiskManager(fast_config(), policy=FakeAllocator(history_length=2))
    feed = BarFeed(seed=4)
    for _ in range(2):
        async with risk:
            decisions = [await risk.manage_risk(*feed.next()) for _ in range(5)]
        assert not any(d.degraded for d in decisions), [d.alerts for d in decisions]
        assert decisions[-1].uncertainty is not None  # the policy (on its re-created thread) answered
    decision = await risk.manage_risk(*feed.next())  # and lazily after close()
    assert not decision.degraded
    await risk.close()
