"""Cornish-Fisher where the expansion folds over (found by an adversarial review, 2026-12-01).

A flat history followed by a few losses has skewness ~-16 and excess kurtosis ~255; the expansion
then decreases at the quantile, and gave a long book that had just lost 1 % a bar a negative VaR and
a CVaR below its VaR. There the pair is the Gaussian one; within the expansion's range (a fat left
tail of market-like data, a small platykurtic sample) nothing changes.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from advanced_risk import AdvancedRiskManager, RiskConfig
from advanced_risk.config import TrackerConfig
from advanced_risk.measures.var import cornish_fisher_cvar, cornish_fisher_var, gaussian_cvar, gaussian_var


def _expansion(r: np.ndarray, alpha: float) -> float:
    """The textbook Cornish-Fisher VaR (scipy moments), the reference where it applies."""
    s, k = stats.skew(r), stats.kurtosis(r)
    q = stats.norm.ppf(1 - alpha)
    q_cf = q + (q * q - 1) * s / 6 + (q**3 - 3 * q) * k / 24 - (2 * q**3 - 5 * q) * s * s / 36
    return float(-(r.mean() + q_cf * r.std(ddof=1)))


def test_a_folded_expansion_gives_the_gaussian_pair() -> None:
    r = np.zeros(262)
    r[-2:] = -0.01
    assert _expansion(r, 0.99) < 0  # the textbook expansion reads the losses as a gain
    assert cornish_fisher_var(r, 0.99) == gaussian_var(r, 0.99) > 0
    assert cornish_fisher_cvar(r, 0.99) == gaussian_cvar(r, 0.99) >= cornish_fisher_var(r, 0.99)


def test_within_its_range_the_expansion_is_unchanged() -> None:
    rng = np.random.default_rng(0)
    fat = rng.standard_t(4, 500) * 0.01
    fat[:5] = -0.08
    small = np.array([-0.02, 0.0, 0.02])
    for r, alpha in ((fat, 0.99), (small, 0.95)):
        assert cornish_fisher_var(r, alpha) == pytest.approx(_expansion(r, alpha), abs=1e-12)


def test_the_manager_never_reports_a_gain_for_a_losing_long_book() -> None:
    risk = AdvancedRiskManager(RiskConfig(tracker=TrackerConfig(method="cornish_fisher")))
    for t in range(265):
        d = risk.manage_risk_sync(
            {"returns": {"A": 0.0 if t < 260 else -0.02, "B": 0.0}}, {"weights": {"A": 0.5, "B": 0.3}}
        )
        if t >= 260:
            assert 0 < d.var <= d.cvar
    risk.close_sync()
