"""A real manager's metrics over HTTP (issue 15): what is scraped is what the decisions said.

The endpoint is started by the test on 127.0.0.1 (a free port), scraped with urllib, parsed with
prometheus_client's own parser, and closed.
"""

from __future__ import annotations

import itertools
import math
import urllib.request

import pytest
from tests.async_.conftest import BarFeed, FakeAllocator
from tests.conftest import require

from advanced_risk import AdvancedRiskManager, RiskConfig


def _scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    parser = require("prometheus_client.parser")
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    out = {}
    for family in parser.text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def test_a_managed_run_scraped_over_http() -> None:
    allocator = FakeAllocator()
    risk = AdvancedRiskManager(RiskConfig(deadline_ms=2_000.0), policy=allocator)
    feed = BarFeed(seed=1)
    decisions = []
    for i, (market, portfolio) in enumerate(feed.bars(60)):
        allocator.fail = 30 <= i < 32
        decisions.append(risk.manage_risk_sync(market, portfolio))
    server = risk.serve_metrics(0)
    try:
        got = _scrape(server.port)
    finally:
        server.close()
    degraded = sum(d.degraded for d in decisions)
    assert degraded == 2
    assert got[("advanced_risk_decisions_total", (("outcome", "degraded"),))] == degraded
    assert got[("advanced_risk_decisions_total", (("outcome", "ok"),))] == 60 - degraded
    assert got[("advanced_risk_decision_latency_seconds_count", ())] == 60
    last = decisions[-1]
    assert got[("advanced_risk_leverage", ())] == pytest.approx(last.leverage)
    assert got[("advanced_risk_var", ())] == pytest.approx(last.var, nan_ok=True)
    assert got[("advanced_risk_equity", ())] == pytest.approx(feed.equity)
    state = last.trading_state.value
    assert got[("advanced_risk_trading_state", (("state", state),))] == 1.0
    assert got[("advanced_risk_kill_switch", ())] == 0.0
    assert got[("advanced_risk_alerts_total", (("kind", "degraded"),))] == 2
    breaches = sum(
        1
        for a, b in itertools.pairwise(decisions)
        if math.isfinite(a.var)
        and b.equity is not None
        and a.equity is not None
        and b.equity / a.equity - 1.0 < -a.var
    )
    assert got[("advanced_risk_var_breaches_total", ())] == breaches
    risk.close_sync()


def test_the_live_state_after_the_kill_switch_and_the_collector_on_a_bots_registry() -> None:
    prometheus_client = require("prometheus_client")
    risk = AdvancedRiskManager(RiskConfig(deadline_ms=2_000.0))
    feed = BarFeed()
    for market, portfolio in feed.bars(3):
        risk.manage_risk_sync(market, portfolio)

    import asyncio

    asyncio.run(risk.engage_kill_switch("test"))
    registry = prometheus_client.CollectorRegistry()
    registry.register(risk.metrics_collector())
    text = prometheus_client.generate_latest(registry).decode()
    assert 'advanced_risk_trading_state{state="halted"} 1.0' in text
    assert "advanced_risk_kill_switch 1.0" in text
    assert risk.metrics()["calls"] == 3
    risk.close_sync()
