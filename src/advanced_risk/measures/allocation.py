"""Reference allocations: equal weight and (long-only) minimum variance.

These are the baselines a learned allocator must beat, and simple allocators in their own right.
Weights are over the given assets and sum to 1 (no cash).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from advanced_risk.errors import InvalidInputError
from advanced_risk.measures.jit import jit
from advanced_risk.measures.validation import FloatArray, as_array, check_positive_int

__all__ = ["equal_weights", "min_variance_weights"]


MAX_EQUAL_WEIGHT_ASSETS = 10_000_000
"""Most assets :func:`equal_weights` builds weights for: 80 MB of float64, four orders of magnitude
above any investable universe (``RiskConfig.max_assets`` defaults to 1,000). A larger count is a
caller's error (an id or a price passed as the count), refused before NumPy tries to allocate it."""


def equal_weights(n_assets: int) -> FloatArray:
    """``1 / n`` in every asset.

    Raises
    ------
    InvalidInputError
        If ``n_assets`` is not an integer in ``[1, MAX_EQUAL_WEIGHT_ASSETS]`` (bools refused).

    Examples
    --------
    >>> equal_weights(4).tolist()
    [0.25, 0.25, 0.25, 0.25]
    """
    n = check_positive_int(n_assets, "n_assets")
    if n > MAX_EQUAL_WEIGHT_ASSETS:
        raise InvalidInputError(f"n_assets must be <= {MAX_EQUAL_WEIGHT_ASSETS:,}, got {_describe_count(n)}")
    return np.full(n, 1.0 / n)


def _describe_count(n: int) -> str:
    """``n`` for an error message; a huge count by its order of magnitude (its repr may be slow)."""
    return str(n) if n.bit_length() <= 64 else f"an integer of about 10**{int(n.bit_length() * 0.30103)}"


def _project_simplex_python(v: FloatArray) -> FloatArray:
    """Euclidean projection onto {w >= 0, sum w = 1} (Duchi et al., 2008), O(n log n)."""
    n = v.shape[0]
    u = np.sort(v)[::-1]
    css = 0.0
    theta = 0.0
    for i in range(n):
        css += u[i]
        t = (css - 1.0) / (i + 1)
        if u[i] - t > 0.0:
            theta = t
    out = np.empty(n)
    for i in range(n):
        out[i] = max(v[i] - theta, 0.0)
    return out


_project_simplex = jit(_project_simplex_python)


def _min_variance_long_only_python(cov: FloatArray, max_iter: int, tol: float) -> FloatArray:
    """Accelerated projected gradient (FISTA) on ``w' C w`` over the simplex, step ``1 / L``."""
    n = cov.shape[0]
    lipschitz = 2.0 * np.linalg.eigvalsh(cov)[-1]
    step = 1.0 / lipschitz if lipschitz > 0.0 else 1.0
    w = np.full(n, 1.0 / n)
    y = w.copy()
    t = 1.0
    for _ in range(max_iter):
        w_next = _project_simplex(y - step * 2.0 * (cov @ y))
        t_next = 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * t * t))
        y = w_next + ((t - 1.0) / t_next) * (w_next - w)
        moved = np.abs(w_next - w).max()
        w = w_next
        t = t_next
        if moved < tol:
            break
    return w


_min_variance_long_only = jit(_min_variance_long_only_python)


def min_variance_weights(cov: ArrayLike, *, long_only: bool = True) -> FloatArray:
    """Minimum-variance weights: ``argmin w' C w`` subject to ``sum w = 1`` (and ``w >= 0``).

    Unconstrained in sign, the closed form is ``C^-1 1 / (1' C^-1 1)``. Long-only (the default)
    is solved by accelerated projected gradient onto the simplex to 1e-12 in the weights.

    Parameters
    ----------
    cov : (n, n) symmetric positive semi-definite covariance (positive definite if not long-only).
    long_only : forbid negative weights.

    Examples
    --------
    >>> min_variance_weights([[0.04, 0.0], [0.0, 0.01]]).round(6).tolist()
    [0.2, 0.8]
    """
    c = as_array(cov, "cov", ndim=2)
    n = c.shape[0]
    if c.shape != (n, n):
        raise InvalidInputError(f"cov must be square, got shape {c.shape}")
    if not np.allclose(c, c.T, rtol=1e-10, atol=1e-14):
        raise InvalidInputError("cov must be symmetric")
    if long_only:
        if np.linalg.eigvalsh(c)[0] < -1e-10 * max(1.0, float(np.abs(c).max())):
            raise InvalidInputError("cov must be positive semi-definite")
        return _min_variance_long_only(c, 20_000, 1e-13)
    try:
        x = np.linalg.solve(c, np.ones(n))
    except np.linalg.LinAlgError as exc:
        raise InvalidInputError("cov must be positive definite for unconstrained minimum variance") from exc
    out: FloatArray = x / x.sum()
    return out
