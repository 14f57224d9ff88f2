"""Unit tests of risk/garch.py's fit: rescaled for ``arch``, parameters in return units, no warnings."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest

from advanced_risk.risk.garch import _fit_scale, fit_gjr_garch


def _returns(std: float, n: int = 1500, seed: int = 0) -> np.ndarray:
    """GJR-GARCH-like returns with unconditional std ``std`` (t(5) innovations, volatility clusters)."""
    rng = np.random.default_rng(seed)
    z = rng.standard_t(5, n) / np.sqrt(5.0 / 3.0)
    omega, alpha, gamma, beta = 0.05, 0.03, 0.1, 0.87  # persistence 0.95, unit unconditional var
    s2, out = 1.0, np.empty(n)
    for t in range(n):
        out[t] = np.sqrt(s2) * z[t]
        s2 = omega + (alpha + gamma * (out[t] < 0)) * out[t] ** 2 + beta * s2
    return std * out / out.std()


@pytest.mark.parametrize(
    ("std", "scale"), [(0.0003, 1e4), (0.001, 1e3), (0.003, 1e3), (0.01, 100.0), (0.2, 100.0), (0.8, 10.0)]
)
def test_fit_scale_puts_the_std_in_a_band_arch_does_not_warn_about(std: float, scale: float) -> None:
    r = _returns(std, n=300)
    assert _fit_scale(r) == scale
    assert 0.5 <= np.std(scale * r) < 50.0  # arch warns outside std [0.316, 100)


def test_fit_scale_of_constant_returns_is_percent() -> None:
    assert _fit_scale(np.zeros(200)) == 100.0


@pytest.mark.parametrize("std", [0.001, 0.003, 0.012, 0.3])
@pytest.mark.parametrize("dist", ["t", "normal"])
def test_fit_on_raw_daily_returns_emits_no_warning(std: float, dist: str) -> None:
    r = _returns(std)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit_gjr_garch(r, dist=dist)
    assert [f"{w.category.__name__}: {w.message}" for w in caught] == []


@pytest.mark.parametrize("std", [0.001, 0.003, 0.012])
def test_params_equal_a_fit_of_the_same_model_on_scaled_data(std: float) -> None:
    from arch import arch_model

    r = _returns(std)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = arch_model(r, mean="Constant", vol="GARCH", p=1, o=1, q=1, dist="t", rescale=True).fit(
            disp="off", show_warning=False
        )
    s = res.scale  # arch's own choice of power of ten, fitted on s * r
    assert s != 1.0
    p = fit_gjr_garch(r)
    assert p.mu == pytest.approx(res.params["mu"] / s, rel=1e-3, abs=1e-3 * std)
    assert p.omega == pytest.approx(res.params["omega"] / s**2, rel=1e-3)
    for ours, name in ((p.alpha, "alpha[1]"), (p.gamma, "gamma[1]"), (p.beta, "beta[1]")):
        assert ours == pytest.approx(res.params[name], abs=1e-4)
    assert p.nu == pytest.approx(res.params["nu"], rel=1e-3)
    sigma2 = (res.conditional_volatility / s) ** 2
    np.testing.assert_allclose(p.variance(r, init=float(sigma2[0]))[:-1], sigma2, rtol=1e-3)


def test_params_do_not_depend_on_the_units_of_the_returns() -> None:
    r = _returns(0.01)
    a, b = fit_gjr_garch(r), fit_gjr_garch(0.1 * r)  # scales 100 and 1000: the same data for arch
    assert b.omega == pytest.approx(a.omega / 100.0, rel=1e-5)  # the optimiser sees rounding only
    assert b.mu == pytest.approx(a.mu / 10.0, rel=1e-5)
    assert (b.alpha, b.gamma, b.beta, b.nu) == pytest.approx((a.alpha, a.gamma, a.beta, a.nu), rel=1e-5)


def test_worker_process_fit_prints_no_warning(capfd: pytest.CaptureFixture[str]) -> None:
    from advanced_risk.risk.garch_worker import GarchWorker

    r = _returns(0.001)  # at the old fixed scale (percent returns) arch printed DataScaleWarning
    worker = GarchWorker()
    try:
        params = worker.fit(r)
    finally:
        worker.close()
    local = fit_gjr_garch(r)  # the child runs the same fit
    assert dataclasses.astuple(params) == pytest.approx(dataclasses.astuple(local), rel=1e-9, abs=1e-15)
    assert "Warning" not in capfd.readouterr().err
