"""The tracker's FHS after a long run of unchanged prices (a stale quote, a closed market).

Found by an adversarial test: one asset flat for 450 bars, then a 2 % fall, gave a CVaR of 6.8e66
(fhs_garch) or 128 (fhs_ewma) times the equity: the filtered variance had decayed towards 0, so the
move standardised to thousands of sigmas. The variance is now floored at ``FHS_SIGMA_FLOOR ** 2``
times the window's mean square (``measures.var_kernels``); on market data the floor never binds
(the shipped-model and demo fixtures are unchanged).
"""

from __future__ import annotations

import numpy as np
import pytest

from advanced_risk import AdvancedRiskManager, RiskConfig
from advanced_risk.config import TrackerConfig
from advanced_risk.data import load_sp500_stocks
from advanced_risk.measures.kernels import ewma_variance_kernel, fhs_kernel, floored_variance_kernel
from advanced_risk.measures.var_kernels import FHS_SIGMA_FLOOR


@pytest.mark.parametrize("method", ["fhs_garch", "fhs_ewma"])
@pytest.mark.parametrize(("flat", "move"), [(260, -0.02), (450, -0.0001), (450, -0.02)])
def test_a_move_after_flat_prices_gives_a_cvar_of_the_order_of_the_move(
    method: str, flat: int, move: float
) -> None:
    risk = AdvancedRiskManager(RiskConfig(deterministic_refits=True, tracker=TrackerConfig(method=method)))
    worst = 0.0
    for t in range(flat + 3):
        d = risk.manage_risk_sync({"returns": {"X": 0.0 if t < flat else move}}, {"weights": {"X": 1.0}})
        if t >= flat:
            assert np.isfinite(d.cvar)
            worst = max(worst, d.cvar)
    risk.close_sync()
    assert worst < 10 * abs(move) * 3  # three moves in the window: at most a few times their size


def test_the_floor_is_the_documented_formula() -> None:
    v = np.array([1e-30, 4e-4, 1e-6, 0.0])
    np.testing.assert_array_equal(floored_variance_kernel(v, 1e-4), np.maximum(v, FHS_SIGMA_FLOOR**2 * 1e-4))


def test_the_floor_never_binds_on_the_bundled_stocks() -> None:
    """Every 500-bar window of the equal-weight book of the bundled 20 stocks: the EWMA filter stays
    above the floor, so the tracker's FHS is the textbook one there."""
    prices = load_sp500_stocks().to_numpy()
    book = (prices[1:] / prices[:-1] - 1.0).mean(axis=1)
    for end in range(500, book.shape[0], 97):
        p = np.ascontiguousarray(book[end - 500 : end])
        mean_square = float(np.mean(p * p))
        variance = ewma_variance_kernel(p, 0.94, mean_square)
        assert variance.min() > FHS_SIGMA_FLOOR**2 * mean_square
        assert fhs_kernel(p, floored_variance_kernel(variance, mean_square), 0.0, 0.99) == fhs_kernel(
            p, variance, 0.0, 0.99
        )
