"""The forecasts of examples/var_calibration_demo.py against RiskTracker, on a small synthetic book path.

The example scores VaR forecasts of the demo's held books offline; its ``garch_raw`` forecast must be
what the manager's tracker computes (FHS-GJR-GARCH of the pre-hedge book, times 1 - hedge ratio),
its ``ewma`` forecast the tracker's fhs_ewma, and ``garch_scaled`` must scale with the book while
``garch_raw`` does not (the diagnosed cause of the demo's excess breaches).
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

import numpy as np
import pytest

from advanced_risk.config import TrackerConfig
from advanced_risk.measures import VaRMethod
from advanced_risk.risk.garch import GarchParams
from advanced_risk.risk.tracker import RiskTracker

PARAMS = GarchParams(mu=0.0004, omega=2e-6, alpha=0.03, gamma=0.12, beta=0.88)


@pytest.fixture(scope="module")
def demo(load_example: Callable[[str], ModuleType]) -> ModuleType:
    return load_example("var_calibration_demo")


def _path(demo: ModuleType, scale: float = 1.0) -> object:
    rng = np.random.default_rng(8)
    vol = 0.01 * np.exp(0.6 * np.sin(np.arange(700) / 60.0))[:, None]
    returns = vol * rng.standard_t(5, (700, 3))
    path = demo.BookPath(returns, np.arange(700))
    for t in range(600, 700):
        path.t.append(t)
        path.book.append(scale * rng.uniform(0.0, 0.6, 3))
        path.unhedged.append(float(rng.choice([1.0, 0.5])))
        path.params.append(PARAMS)
        path.gross.append(float(returns[t] @ path.book[-1] * path.unhedged[-1]))
    return path


def _tracker_var(path: object, method: VaRMethod) -> np.ndarray:
    tracker = RiskTracker(3, TrackerConfig(method=method, fhs_window=500), auto_refit=False)
    tracker.install_garch(PARAMS)
    out = []
    fed = 0
    for i, t in enumerate(path.t):  # type: ignore[attr-defined]
        while fed < t:
            tracker.update(path.returns[fed])  # type: ignore[attr-defined]
            fed += 1
        out.append(tracker.var(path.book[i], alpha=0.99) * path.unhedged[i])  # type: ignore[attr-defined]
    return np.array(out)


def test_garch_engine_is_the_trackers_fhs_garch_of_the_pre_hedge_book(demo: ModuleType) -> None:
    path = _path(demo)
    var, cvar = demo.forecasts(path, demo.Variant("garch_engine", 500, 250), 0.99)
    np.testing.assert_allclose(var, _tracker_var(path, VaRMethod.FHS_GARCH), rtol=1e-12)
    assert (cvar >= var).all()


def test_ewma_is_the_trackers_fhs_ewma(demo: ModuleType) -> None:
    path = _path(demo)
    var, _ = demo.forecasts(path, demo.Variant("ewma", 500), 0.99)
    np.testing.assert_allclose(var, _tracker_var(path, VaRMethod.FHS_EWMA), rtol=1e-12)


def test_garch_scaled_scales_with_the_book_and_garch_raw_does_not(demo: ModuleType) -> None:
    small, unit = _path(demo, 0.1), _path(demo, 1.0)
    for name, homogeneous in (("garch_scaled", True), ("garch_engine", True), ("garch_raw", False)):
        variant = demo.Variant(name, 500, 250)
        ratio = demo.forecasts(small, variant, 0.99)[0] / demo.forecasts(unit, variant, 0.99)[0]
        assert np.allclose(ratio, 0.1, rtol=1e-9) is homogeneous, name


def test_score_counts_breaches_strictly_below_minus_var(demo: ModuleType) -> None:
    path = _path(demo)
    var, _ = demo.forecasts(path, demo.Variant("ewma", 500), 0.99)
    es_var, es = demo.forecasts(path, demo.Variant("ewma", 500), 0.975)
    s = demo.score(path, var, es_var, es)
    assert s.breaches == int((np.asarray(path.gross) < -var).sum())  # type: ignore[attr-defined]
    assert s.n == 100
