"""Shared helpers of the adversarial restart tests (rounds e and f): synthetic bars, the config
of a tracker that is ready within a few dozen bars, and the exposure a decision trades."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from advanced_risk.config import RiskConfig
from advanced_risk.types import RiskDecision, TradingState

ENTRIES = ("sync", "async")

SEVERITY = {TradingState.ACTIVE: 0, TradingState.REDUCING: 1, TradingState.HALTED: 2}

MODELS = Path(__file__).resolve().parents[2] / "models"

POLICY = str(MODELS / "ppo_sp500_2012.armodel")

AGENTS = str(MODELS / "risk_agents_sp500.armodel")

# a tracker that is ready (VaR, correlation) within a few dozen bars, so that short scripts exercise
# the whole decision; everything else the defaults
BASE: dict[str, Any] = {
    "deadline_ms": 10_000.0,
    "rate_limit_per_s": None,
    "deterministic_refits": True,
    "tracker": {"method": "fhs_ewma", "window": 30, "correlation_warmup": 20},
}


@dataclass(frozen=True)
class Bar:
    market: dict[str, Any]
    weights: dict[str, float]
    equity: float
    drawdown: float = 0.0


def synth(
    n: int,
    assets: Sequence[str] = ("aaa", "bbb", "ccc", "ddd"),
    *,
    seed: int = 0,
    book: dict[str, float] | None = None,
    prices: bool = True,
    returns: bool = True,
    hl: bool = True,
    shift: Callable[[int], float] = lambda i: 0.0,
    vol: float = 0.01,
) -> list[Bar]:
    """``n`` bars of the ``assets`` (returns N(3e-4 + shift(i), vol)), a fixed book (default: long
    the first ones, short the last), equity earning the book's return."""
    rng = np.random.default_rng(seed)
    m = len(assets)
    if book is None:
        w = [0.9 / m] * m if m < 3 else [0.5 / (m - 1)] * (m - 1) + [-0.2]
        book = dict(zip(assets, w, strict=True))
    px = np.full(m, 100.0)
    equity = 100_000.0
    out = []
    for i in range(n):
        r = rng.normal(3e-4 + shift(i), vol, m)
        px = px * (1.0 + r)
        equity *= 1.0 + sum(book[a] * float(x) for a, x in zip(assets, r, strict=True))
        market: dict[str, Any] = {}
        if returns:
            market["returns"] = dict(zip(assets, r.tolist(), strict=True))
        if prices:
            market["prices"] = dict(zip(assets, px.tolist(), strict=True))
            if hl:
                market["high"] = dict(zip(assets, (px * 1.004).tolist(), strict=True))
                market["low"] = dict(zip(assets, (px * 0.996).tolist(), strict=True))
        out.append(Bar(market, dict(book), equity))
    return out


def cut(bar: Bar, keep: Sequence[str]) -> Bar:
    """The bar restricted to ``keep`` (a universe change)."""
    market = {k: {a: v[a] for a in keep} for k, v in bar.market.items()}
    return Bar(market, {a: w for a, w in bar.weights.items() if a in keep}, bar.equity, bar.drawdown)


def config_at(path: Path | None, **overrides: Any) -> RiskConfig:
    values = {**BASE, **overrides}
    if path is not None:
        values["state_path"] = str(path)
    return RiskConfig(**values)


def exposure(d: RiskDecision) -> float:
    return sum(abs(w) for a, w in d.rebalance_weights.items() if a != "cash") * d.leverage
