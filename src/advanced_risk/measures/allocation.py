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


_MAX_POLISH_STEPS = 25
"""Most active-set changes :func:`_polish_long_only` tries (one linear solve each) before it keeps
the first-order solution: a good support needs one or two; a rank-deficient ``cov`` (fewer rows than
assets behind it) would otherwise drop assets one solve at a time."""


def _polish_long_only(cov: FloatArray, w: FloatArray) -> FloatArray:
    """Solve the KKT system exactly on the support of the first-order solution ``w`` (active set).

    First-order methods stop on small moves, which on an ill-conditioned ``cov`` (condition number
    1e4 and up) happens far from the optimum: steps of ``1 / L`` barely move along low-curvature
    directions. With the support ``S`` the optimum solves ``C_SS x = mu 1``, ``sum x = 1``; a
    primal active-set loop drops the most negative ``x`` or adds the asset whose gradient is most
    below ``mu``. The refined weights are returned only if they satisfy the KKT conditions and
    their variance is no larger than that of ``w``; otherwise ``w`` is returned unchanged.
    """
    n = cov.shape[0]
    support = w > 1e-9
    best_var = float(w @ cov @ w)
    scale = max(float(np.abs(np.diag(cov)).max()), 1e-300)
    for _ in range(min(2 * n + 10, _MAX_POLISH_STEPS)):
        idx = np.flatnonzero(support)
        if idx.size == 0:
            return w
        try:
            x = np.linalg.solve(cov[np.ix_(idx, idx)], np.ones(idx.size))
        except np.linalg.LinAlgError:
            return w
        total = x.sum()
        if not np.isfinite(x).all() or total == 0.0:
            return w
        x = x / total
        if x.min() < 0.0:
            support[idx[int(np.argmin(x))]] = False
            continue
        full = np.zeros(n)
        full[idx] = x
        grad = 2.0 * (cov @ full)
        mu = float(grad[idx].mean())
        outside = np.where(support, np.inf, grad)
        j = int(np.argmin(outside))
        if outside[j] < mu - 1e-12 * scale:
            support[j] = True
            continue
        var = float(full @ cov @ full)
        return full if var <= best_var * (1.0 + 1e-12) + 1e-300 else w
    return w


def min_variance_weights(cov: ArrayLike, *, long_only: bool = True) -> FloatArray:
    """Minimum-variance weights: ``argmin w' C w`` subject to ``sum w = 1`` (and ``w >= 0``).

    Unconstrained in sign, the closed form is ``C^-1 1 / (1' C^-1 1)``, which needs ``C`` positive
    definite (checked by a Cholesky factorisation: an indefinite or negative-definite ``C`` has no
    minimum, only a saddle point or a maximum, so it is refused). Long-only (the default) is solved
    by accelerated projected gradient onto the simplex, then refined by solving the KKT system
    exactly on the support found (kept only if it satisfies the KKT conditions and does not raise
    the variance), so ill-conditioned covariances are solved to round-off, not to where the
    gradient steps stall.

    Parameters
    ----------
    cov : (n, n) symmetric positive semi-definite covariance (positive definite if not long-only),
        finite. Symmetry is checked relative to the largest entry (``rtol=1e-10``, ``atol=1e-14 *
        max|C|``), so the check does not depend on the units of ``C``; so is positive
        semi-definiteness (smallest eigenvalue ``>= -1e-10 max|C|``), and the weights are computed
        from ``C / max|C|``.
    long_only : forbid negative weights.

    Returns
    -------
    (n,) weights summing to 1 (non-negative when ``long_only``).

    Raises
    ------
    InvalidInputError
        If ``cov`` is not a finite square matrix, is not symmetric, is not positive semi-definite
        (long-only) or not positive definite (unconstrained).

    Examples
    --------
    >>> min_variance_weights([[0.04, 0.0], [0.0, 0.01]]).round(6).tolist()
    [0.2, 0.8]
    """
    c = as_array(cov, "cov", ndim=2)
    n = c.shape[0]
    if c.shape != (n, n):
        raise InvalidInputError(f"cov must be square, got shape {c.shape}")
    scale = float(np.abs(c).max())
    if not np.allclose(c, c.T, rtol=1e-10, atol=1e-14 * scale):
        raise InvalidInputError("cov must be symmetric")
    if scale > 0.0:
        # weights are scale-free: work on C / max|C|, so a tiny (subnormal) covariance neither
        # overflows the 1 / L step nor the solve (1 asset with variance 1e-313 gave NaN weights)
        c = c / scale
    if long_only:
        if np.linalg.eigvalsh(c)[0] < -1e-10:
            raise InvalidInputError("cov must be positive semi-definite")
        return _polish_long_only(c, _min_variance_long_only(c, 20_000, 1e-13))
    try:
        np.linalg.cholesky(c)
        x = np.linalg.solve(c, np.ones(n))
    except np.linalg.LinAlgError as exc:
        raise InvalidInputError("cov must be positive definite for unconstrained minimum variance") from exc
    total = x.sum()
    if not np.isfinite(x).all() or total <= 0.0:  # 1' C^-1 1 > 0 for any positive definite C
        raise InvalidInputError("cov must be positive definite for unconstrained minimum variance")
    out: FloatArray = x / total
    return out
