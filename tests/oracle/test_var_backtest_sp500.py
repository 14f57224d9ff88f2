"""Oracle tests on the S&P 500 index (1999-2018): the historical-VaR breach counts and the calibrated
FHS-GARCH method (docs/var_calibration.md), plus the GJR-GARCH filter against ``arch`` itself.

VaR for day t uses the 250 returns before t; a breach is ``r_t < -VaR_t``; 4,780 forecasts.
"""

from __future__ import annotations

from importlib.resources import as_file, files

import numpy as np
import pandas as pd
import pytest

from advanced_risk.measures.var import VaRMethod
from advanced_risk.risk.garch import fit_gjr_garch
from advanced_risk.risk.var_backtest import backtest_table, backtest_var


@pytest.fixture(scope="module")
def sp500_returns() -> np.ndarray:
    """Simple returns of the bundled S&P 500 index's Adj Close (5,030 values)."""
    path = files("advanced_risk") / "datasets" / "sp500_index_ohlcv.csv.gz"
    with as_file(path) as f:
        close = pd.read_csv(f)["Adj Close"].to_numpy()
    return close[1:] / close[:-1] - 1.0


@pytest.mark.parametrize(("alpha", "breaches", "lr"), [(0.95, 267, 3.332), (0.99, 81, 19.276)])
def test_historical_var_on_sp500_has_the_known_breaches_and_kupiec_lr(
    sp500_returns: np.ndarray, alpha: float, breaches: int, lr: float
) -> None:
    row = backtest_var(sp500_returns, VaRMethod.HISTORICAL, alpha, window=250).row
    assert row.n_forecasts == 4780
    assert row.breaches == breaches
    assert row.kupiec_lr == pytest.approx(lr, abs=5e-4)


def test_historical_var_on_sp500_fails_christoffersen_independence_at_both_levels(
    sp500_returns: np.ndarray,
) -> None:
    rows = backtest_table(sp500_returns, [VaRMethod.HISTORICAL], (0.95, 0.99))
    assert all(x.christoffersen_p < 0.05 and not x.passed for x in rows)


def test_fhs_garch_passes_kupiec_and_christoffersen_at_95_and_99_on_sp500(sp500_returns: np.ndarray) -> None:
    rows = backtest_table(sp500_returns, [VaRMethod.FHS_GARCH], (0.95, 0.99))
    assert [(x.alpha, x.breaches) for x in rows] == [(0.95, 239), (0.99, 57)]
    for x in rows:
        assert x.kupiec_p >= 0.05, x
        assert x.christoffersen_p >= 0.05, x
        assert x.passed


def test_gjr_garch_params_reproduce_arch_conditional_volatility(sp500_returns: np.ndarray) -> None:
    from arch import arch_model

    r = sp500_returns[:2000]
    res = arch_model(100 * r, mean="Constant", vol="GARCH", p=1, o=1, q=1, dist="t").fit(disp="off")
    params = fit_gjr_garch(r)
    assert params.mu == pytest.approx(res.params["mu"] / 100, rel=1e-6)
    assert params.omega == pytest.approx(res.params["omega"] / 1e4, rel=1e-6)
    assert params.nu == pytest.approx(res.params["nu"], rel=1e-6)
    sigma2 = (res.conditional_volatility / 100) ** 2
    ours = params.variance(r, init=float(sigma2[0]))
    np.testing.assert_allclose(ours[:-1], sigma2, rtol=1e-9)
