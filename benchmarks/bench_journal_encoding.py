"""The journal row's encoding on the deciding thread: stdlib json, orjson and msgspec on one decision.

Every decision is encoded once, on the thread that decided it, into the JSON text its journal row
stores (``RiskDecision.to_json``). This script times that encoding for a decision of 20 and of 500
assets (weights, sizes and stops for every asset, the hedge, VaR/CVaR, state and alerts) with three
encoders over the same data, plus the building of the dict they encode:

- ``json``: ``json.dumps(data, separators=(",", ":"))`` (the stdlib: the reference);
- ``orjson``: ``orjson.dumps(data).decode()`` (what ``to_json`` uses);
- ``msgspec``: ``msgspec.json.encode(data).decode()`` with a reused ``Encoder``.

Non-finite floats: orjson and msgspec write NaN as ``null``; the stdlib needs them replaced first,
which the reference row does not do (its time is a lower bound for a correct stdlib encoding).

Run:  python benchmarks/bench_journal_encoding.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import orjson

sys.path.insert(0, str(Path(__file__).parent))
from _harness import median_seconds
from advanced_risk.types import (
    CorrelationState,
    HedgeInstruction,
    RiskDecision,
    RiskLevel,
    TradingState,
)


def decision(n_assets: int) -> RiskDecision:
    """A decision of ``n_assets`` assets with every field filled, as the engine returns it."""
    rng = np.random.default_rng(0)
    names = [f"ASSET{i:04d}" for i in range(n_assets)]
    weights = dict(zip(names, (rng.dirichlet(np.ones(n_assets)) * 0.9).tolist(), strict=True))
    weights["cash"] = 0.1
    return RiskDecision(
        rebalance_weights=weights,
        leverage=0.83,
        hedge=HedgeInstruction(active=False, ratio=0.0, reason=""),
        position_sizes=dict(zip(names, rng.uniform(10, 500, n_assets).tolist(), strict=True)),
        stop_levels=dict(zip(names, rng.uniform(50, 150, n_assets).tolist(), strict=True)),
        var=0.0213,
        cvar=0.0287,
        correlation=CorrelationState(average=0.31, shock=False),
        risk_level=RiskLevel.LOW,
        trading_state=TradingState.ACTIVE,
        uncertainty=0.04,
        alerts=(),
        latency_ms=0.41,
        decision_id="0123456789ab-42",
    )


def payload(d: RiskDecision) -> dict[str, Any]:
    """The dict ``to_json`` encodes (the journal row's fields)."""
    return orjson.loads(d.to_json())  # type: ignore[no-any-return]


def main() -> None:
    import msgspec

    encoder = msgspec.json.Encoder()
    print(f"{'assets':>6} {'build dict + orjson (to_json)':>30} {'json':>10} {'orjson':>10} {'msgspec':>10}")
    for n in (20, 500):
        d = decision(n)
        data = payload(d)
        assert encoder.encode(data) == orjson.dumps(data)  # the same bytes for this data
        full = median_seconds(d.to_json)
        t_json = median_seconds(lambda data=data: json.dumps(data, separators=(",", ":")))
        t_orjson = median_seconds(lambda data=data: orjson.dumps(data).decode())
        t_msgspec = median_seconds(lambda data=data: encoder.encode(data).decode())
        print(
            f"{n:>6} {full * 1e6:>27.1f} us {t_json * 1e6:>7.1f} us {t_orjson * 1e6:>7.1f} us "
            f"{t_msgspec * 1e6:>7.1f} us"
        )
    print("(median of 7 repeats; the stdlib row skips the NaN -> null pass a correct encoding needs)")


if __name__ == "__main__":
    main()
