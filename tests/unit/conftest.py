"""Helpers shared by the unit tests."""

from __future__ import annotations

import numpy as np
from scipy import optimize


def slsqp_long_only_min_variance(cov: np.ndarray) -> np.ndarray:
    """The independent reference for long-only minimum variance: scipy's SLSQP on ``w' C w`` over
    the simplex (bounds [0, 1], ``sum w = 1``), from equal weights."""
    n = cov.shape[0]
    res = optimize.minimize(
        lambda w: w @ cov @ w,
        np.full(n, 1.0 / n),
        jac=lambda w: 2 * cov @ w,
        bounds=[(0.0, 1.0)] * n,
        constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1.0}],
        method="SLSQP",
        options={"ftol": 1e-16, "maxiter": 1000},
    )
    return np.asarray(res.x)
