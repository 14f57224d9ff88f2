"""Shared helpers of the manager's acceptance tests (issue 5): allocators, bars and a replay driver."""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pytest

from advanced_risk.config import RiskConfig, TrackerConfig
from advanced_risk.engine.protocols import Allocation
from advanced_risk.types import RiskDecision

ASSETS = ("aaa", "bbb", "ccc", "ddd")


@dataclass
class FakeAllocator:
    """A tiny Allocator whose faults the tests switch on and off (``fail``, ``sleep_s``)."""

    asset_count: int = len(ASSETS)
    history_length: int = 5
    fail: bool = False
    sleep_s: float = 0.0
    calls: int = 0
    uncertainty: float = 0.01

    def allocate(self, returns: np.ndarray, weights: np.ndarray, drawdown: float) -> Allocation:
        self.calls += 1
        if self.sleep_s:
            time.sleep(self.sleep_s)
        if self.fail:
            raise RuntimeError("policy exploded")
        n = self.asset_count
        w = np.full(n + 1, 0.8 / n)
        w[-1] = 0.2
        return Allocation(weights=w, uncertainty=self.uncertainty)


@dataclass
class BarFeed:
    """Synthetic but well-behaved bars over ``ASSETS``: returns, prices, high/low and equity."""

    seed: int = 0
    assets: tuple[str, ...] = ASSETS
    prices: np.ndarray = field(init=False)
    equity: float = 100_000.0

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed)
        self.prices = np.full(len(self.assets), 100.0)

    def next(self, weights: dict[str, float] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
        r = self.rng.normal(0.0003, 0.01, len(self.assets))
        self.prices = self.prices * (1.0 + r)
        held = {a: 1.0 / (len(self.assets) + 1) for a in self.assets} if weights is None else weights
        self.equity *= 1.0 + sum(held[a] * float(x) for a, x in zip(self.assets, r, strict=True))
        market = {
            "returns": dict(zip(self.assets, r.tolist(), strict=True)),
            "prices": dict(zip(self.assets, self.prices.tolist(), strict=True)),
            "high": dict(zip(self.assets, (self.prices * 1.005).tolist(), strict=True)),
            "low": dict(zip(self.assets, (self.prices * 0.995).tolist(), strict=True)),
        }
        return market, {"weights": held, "equity": self.equity}

    def bars(self, n: int) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
        for _ in range(n):
            yield self.next()


def comparable(decision: RiskDecision) -> dict[str, Any]:
    """A decision without the fields that differ between two identical runs (timing, id)."""
    out = {k: decision[k] for k in decision if k not in ("latency_ms", "decision_id")}
    for key in ("var", "cvar"):
        if isinstance(out[key], float) and math.isnan(out[key]):
            out[key] = "nan"
    corr = out["correlation"]
    out["correlation"] = ("nan" if math.isnan(corr.average) else corr.average, corr.shock)
    return out


def assert_sane(decision: RiskDecision, prices: dict[str, float] | None = None) -> None:
    """Weights >= 0 summing to 1 with cash, finite leverage >= 0, hedge ratio in [0, 1], stops < prices."""
    weights = decision["rebalance_weights"]
    assert "cash" in weights
    assert all(math.isfinite(w) and w >= -1e-12 for w in weights.values()), weights
    assert math.fsum(weights.values()) == pytest.approx(1.0, abs=1e-9)
    assert math.isfinite(decision["leverage"])
    assert decision["leverage"] >= 0.0
    hedge = decision["hedge"]
    assert 0.0 <= hedge.ratio <= 1.0
    assert isinstance(hedge.active, bool)
    if prices is not None:
        for asset, stop in decision.stop_levels.items():
            assert 0.0 <= stop < prices[asset], (asset, stop, prices[asset])


def assert_conservative(decision: RiskDecision, fault: str) -> None:
    """The fail-safe decision: degraded, an alert naming ``fault``, leverage cut, hedge on, no new size."""
    assert decision.degraded, decision.alerts
    assert any(fault in alert for alert in decision.alerts), (fault, decision.alerts)
    assert decision.leverage <= 0.5 + 1e-12
    assert decision.hedge.active
    assert decision.hedge.ratio >= 0.5
    assert all(size == 0.0 for size in decision.position_sizes.values())
    assert_sane(decision)


LEVERAGE_ONLY = RiskConfig(
    halt_drawdown=0.95,
    loss_streak=1000,
    reduce_drawdown=0.9,
    var_breach_streak=None,
    reduce_on_correlation_shock=False,
    deterministic_refits=True,
    rate_limit_per_s=None,
    tracker=TrackerConfig(method="fhs_ewma"),
)
"""Only the leverage rule decides: no drawdown cut, halt, streak or shock state in the way (for tests
of the volatility target, the trend cut and the relative target against the same rule without them)."""


def fast_config(**overrides: Any) -> RiskConfig:
    """A config for tests: a deadline generous enough for CI noise, EWMA FHS (no GARCH thread)."""
    values: dict[str, Any] = {"deadline_ms": 50.0, "tracker": {"method": "fhs_ewma"}}
    values.update(overrides)
    return RiskConfig(**values)


@pytest.fixture(scope="session")
def stock_prices(sp500_stocks: pd.DataFrame) -> tuple[tuple[str, ...], np.ndarray]:
    """The bundled 20 stocks' last 401 closes (asset names, prices [401, 20])."""
    frame = sp500_stocks.iloc[-401:]
    return tuple(str(c) for c in frame.columns), frame.to_numpy(dtype=np.float64)


@pytest.fixture(autouse=True)
def no_gc_pauses() -> Iterator[None]:
    """Keep CPython's cyclic GC out of the timed calls of these tests.

    A full (generation 2) collection in the test process, which by this point holds the objects of
    every earlier test, pauses all threads for 100-450 ms (measured with ``gc.callbacks`` over the
    whole suite). That is a pause of the test process, not of the manager, and it broke the
    ``deadline + 10 ms`` checks on CI. Collect the young generations (the earlier test's garbage; a
    full collection here cost 0.1-0.45 s a test, a minute and more over the suite), move the
    survivors to the permanent generation (``gc.freeze``) and keep the collector off until the test
    ends, as a latency-sensitive bot would after start-up (docs/embedding.md).
    """
    gc.collect(1)
    gc.freeze()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
        gc.unfreeze()
