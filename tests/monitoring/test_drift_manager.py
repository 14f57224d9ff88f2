"""Input drift end to end (issue 15): the shipped policy through the manager on a volatility shift.

Real bars before 2013 (training data of the shipped policy, 2009-2012), every log return x2.5 from
bar 500 on. Drift needs a full window (``drift_min_bars`` = 250 bars after the policy's 28-bar
history) before it scores, so nothing can be raised before bar ~278; docs/drift.md documents a
detection delay of 172 bars (median) to 218 (longest) on synthetic x2.5 shifts, so the test allows
300. Until the shift the policy is not replaced; after detection it is, with the features named.
"""

from __future__ import annotations

import numpy as np

from advanced_risk import AdvancedRiskManager, RiskConfig
from advanced_risk.data import load_sp500_stocks

SHIFT = 500
ALLOWED_DELAY = 300


def test_a_volatility_shift_replaces_the_shipped_policy_by_the_rules() -> None:
    closes = load_sp500_stocks().loc["2009-01-01":"2012-12-31"]
    returns = closes.pct_change().iloc[1:].to_numpy()
    returns[SHIFT:] = np.expm1(np.log1p(returns[SHIFT:]) * 2.5)
    prices = closes.iloc[0].to_numpy() * np.cumprod(1.0 + returns, axis=0)
    assets = tuple(closes.columns)
    risk = AdvancedRiskManager(RiskConfig(deadline_ms=1_000.0), policy="models/ppo_sp500_2012.armodel")
    held, equity = np.zeros(len(assets)), 1e5
    raised, scored = None, []
    for i in range(SHIFT + ALLOWED_DELAY):
        equity *= 1.0 + float(held @ returns[i])
        portfolio = {"weights": dict(zip(assets, held.tolist(), strict=True)), "equity": equity}
        decision = risk.manage_risk_arrays_sync(assets, portfolio, returns=returns[i], prices=prices[i])
        drift = [a for a in decision.alerts if a.startswith("input drift: policy")]
        if drift and raised is None:
            raised = i
            assert "features: " in drift[0]
            assert decision.uncertainty is None  # the policy's allocation was not used
        scored.append(np.nan if decision.drift is None else decision.drift["policy"])
        held = np.array([decision.rebalance_weights[a] for a in assets]) * decision.leverage
    risk.close_sync()
    assert raised is not None, f"no drift within {ALLOWED_DELAY} bars of the shift"
    assert SHIFT < raised <= SHIFT + ALLOWED_DELAY
    assert np.isnan(scored[:250]).all()  # no score before the window holds min_bars observations
    assert np.isfinite(scored[300:]).all()
