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


_ACTIVE_SET_KKT_RTOL = 1e-9
"""Largest spread of the gradient over the support, relative to its size ``mu`` and on top of the
absolute ``tol`` (``1e-12 max C_ii``), that :func:`_active_set_long_only` accepts as the KKT
condition holding. A backward-stable solve leaves a spread of order ``n eps max|C|``, whatever
``mu`` is (``mu`` can be far below ``max|C|`` when assets hedge each other); a larger spread means
the support's block was too ill-conditioned to trust."""


def _active_set_long_only_python(
    cov: FloatArray, w0: FloatArray, max_steps: int, tol: float
) -> tuple[FloatArray, bool]:
    """Primal active-set method for ``min w' C w`` over the simplex, from the feasible point ``w0``.

    The free set ``F`` starts as the support of ``w0``. Each step solves the equality-constrained
    problem on ``F`` (``C_FF x = mu 1``, ``sum x = 1``). If ``x >= 0`` the iterate moves to ``x``;
    an asset outside ``F`` whose gradient ``2 (C w)_j`` is below the support's mean gradient ``mu``
    by more than ``tol`` joins ``F``, and when none does the KKT conditions hold and ``w`` is
    optimal. If some ``x_i < 0`` the iterate moves towards ``x`` only as far as stays feasible
    (ratio test) and the blocking asset leaves ``F``, so the variance never increases and the
    iterate never leaves the simplex.

    Returns ``(w, True)`` at a KKT point whose gradient on the support is constant to
    ``_ACTIVE_SET_KKT_RTOL |mu| + tol``; ``(w, False)`` when a block ``C_FF`` is singular
    (a rank-deficient ``cov`` without a ridge, whose support can outgrow its rank), when
    ``max_steps`` changes do not reach a KKT point (degenerate cycling), or when that final check
    fails. A ``True`` result is certified by the KKT conditions checked on it (``w >= 0``,
    ``sum w = 1``, gradient constant on the support and no smaller outside), which for this convex
    problem make it a minimiser however the steps went.
    """
    n = cov.shape[0]
    w = w0.copy()
    free = w > 0.0
    for _ in range(max_steps):
        idx = np.flatnonzero(free)
        k = idx.size
        if k == 0:
            return w, False
        sub = np.empty((k, k))
        for a in range(k):
            for b in range(k):
                sub[a, b] = cov[idx[a], idx[b]]
        try:
            x = np.linalg.solve(sub, np.ones(k))
        except Exception:  # numba catches only Exception (here LinAlgError: a singular block)
            return w, False
        total = x.sum()
        if not np.isfinite(x).all() or total <= 0.0:
            return w, False
        x = x / total
        # the segment from w_F to x leaves the simplex where x < 0: stop at the first weight to
        # reach 0 (ratio test) and drop that asset
        block = -1
        alpha = np.inf
        for a in range(k):
            if x[a] < 0.0:
                ratio = w[idx[a]] / (w[idx[a]] - x[a])
                if ratio < alpha:
                    alpha = ratio
                    block = a
        if block >= 0:
            for a in range(k):
                w[idx[a]] = max(w[idx[a]] + alpha * (x[a] - w[idx[a]]), 0.0)
            w[idx[block]] = 0.0
            free[idx[block]] = False
            continue
        w = np.zeros(n)
        for a in range(k):
            w[idx[a]] = x[a]
        grad = np.zeros(n)
        for a in range(k):
            grad += (2.0 * x[a]) * cov[idx[a]]  # row = column: cov is symmetric
        mu = 0.0
        for a in range(k):
            mu += grad[idx[a]]
        mu /= k
        j = -1
        lowest = mu - tol
        for i in range(n):
            if not free[i] and grad[i] < lowest:
                lowest = grad[i]
                j = i
        if j >= 0:
            free[j] = True
            continue
        spread = 0.0
        for a in range(k):
            spread = max(spread, abs(grad[idx[a]] - mu))
        return w, spread <= _ACTIVE_SET_KKT_RTOL * abs(mu) + tol
    return w, False


_active_set_long_only = jit(_active_set_long_only_python)


_ACTIVE_SET_MAX_STEPS = 400
"""Most support changes one active-set run makes before the first-order path decides instead. Each
step solves a system the size of the support, so past a few hundred steps projected gradient is
cheaper: 1,000 independent assets on 120 days (a covariance of fewer rows than assets) hold ~990 at
the optimum, 9.8 s by active set against 4.5 s by the first-order path, which the cap now takes
(4.3 s). 300 such assets finish in 0.12 s (225 held), and 300 or 500 correlated assets on 120 days
needed 67 steps from a cold start."""


def _feasible_start(cov: FloatArray, init: FloatArray | None) -> FloatArray:
    """The active set's starting point on the simplex.

    ``init`` with its negative entries set to 0, rescaled to sum 1: this keeps the support of a
    previous solution as it is (a Euclidean projection would shift every weight by the round-off in
    its sum and could fill the whole support). Without ``init``, or when nothing positive is left,
    the vertex of the least-variance asset: one asset in the support, so no block is larger than
    the path to the optimum's support needs.
    """
    if init is not None:
        clipped = np.maximum(init, 0.0)
        total = float(clipped.sum())
        if total > 0.0 and np.isfinite(total):
            start: FloatArray = clipped / total
            return start
    w = np.zeros(cov.shape[0])
    w[int(np.argmin(np.diag(cov)))] = 1.0
    return w


def _long_only(cov: FloatArray, init: FloatArray | None) -> FloatArray:
    """Long-only minimum variance of the scaled, validated ``cov`` (see :func:`min_variance_weights`).

    The active set runs from ``init`` (when given), then from the cold vertex start; when neither
    certifies a KKT point, the first-order solver (FISTA to ``1e-13``) plus the exact polish on its
    support decides, as it always did.
    """
    n = cov.shape[0]
    max_steps = min(4 * n + 50, _ACTIVE_SET_MAX_STEPS)
    # the tolerance _polish_long_only uses for "no asset outside the support has a lower gradient"
    tol = 1e-12 * max(float(np.abs(np.diag(cov)).max()), 1e-300)
    starts = [init, None] if init is not None else [None]
    for start in starts:
        w, ok = _active_set_long_only(cov, _feasible_start(cov, start), max_steps, tol)
        if ok:
            out: FloatArray = w
            return out
    return _polish_long_only(cov, _min_variance_long_only(cov, 20_000, 1e-13))


_PSD_TOL = 1e-10
"""Most negative eigenvalue of ``C / max|C|`` accepted as round-off of a positive semi-definite
matrix."""


def _is_psd(c: FloatArray) -> bool:
    """Whether the smallest eigenvalue of the symmetric ``c`` is ``>= -_PSD_TOL``.

    A Cholesky factorisation of ``c + (_PSD_TOL / 2) I`` (``n^3 / 3`` flops, several times cheaper
    than the eigenvalues) settles the common case: when it succeeds, the computed factor is exact
    for a perturbation ``E`` of that matrix with ``||E||_2 <= gamma_{n+1} trace`` (Higham, Accuracy
    and Stability of Numerical Algorithms, Thm 10.3, with ``|R'| |R|`` bounded entrywise by
    ``sqrt(a_ii a_jj)``), so ``lambda_min(c) >= -_PSD_TOL / 2 - ||E||_2``, which is
    ``>= -_PSD_TOL`` whenever that bound is below ``_PSD_TOL / 2``. Otherwise (the factorisation
    fails, or the bound is too loose for a large trace) the smallest eigenvalue decides.
    """
    n = c.shape[0]
    shift = 0.5 * _PSD_TOL
    trace = float(np.trace(c)) + n * shift
    gamma = (n + 1) * np.finfo(np.float64).eps
    if gamma * trace / (1.0 - gamma) <= shift:
        try:
            np.linalg.cholesky(c + shift * np.eye(n))
        except np.linalg.LinAlgError:
            pass
        else:
            return True
    return bool(np.linalg.eigvalsh(c)[0] >= -_PSD_TOL)


def min_variance_weights(
    cov: ArrayLike, *, long_only: bool = True, init: ArrayLike | None = None
) -> FloatArray:
    """Minimum-variance weights: ``argmin w' C w`` subject to ``sum w = 1`` (and ``w >= 0``).

    Unconstrained in sign, the closed form is ``C^-1 1 / (1' C^-1 1)``, which needs ``C`` positive
    definite (checked by a Cholesky factorisation: an indefinite or negative-definite ``C`` has no
    minimum, only a saddle point or a maximum, so it is refused). Long-only (the default) is solved
    exactly by a primal active-set method: each step solves the KKT system on the current support
    and adds or (by a ratio test) drops one asset, until every asset outside the support has a
    gradient ``2 (C w)_j`` no smaller than the support's (relative tolerance ``1e-12``). It starts
    from ``init`` when given, else from the single least-variance asset. Where it cannot certify a
    KKT point (a singular support block, as a rank-deficient ``C`` without a ridge can give, or
    degenerate steps that cycle), accelerated projected gradient onto the simplex plus an exact polish on the
    support it finds decides instead. Either way ill-conditioned covariances are solved to
    round-off, not to where gradient steps stall, and the result does not depend on ``init``
    beyond round-off when the minimiser is unique (``C`` positive definite).

    Parameters
    ----------
    cov : (n, n) symmetric positive semi-definite covariance (positive definite if not long-only),
        finite. Symmetry is checked relative to the largest entry (``rtol=1e-10``, ``atol=1e-14 *
        max|C|``), so the check does not depend on the units of ``C``; so is positive
        semi-definiteness (smallest eigenvalue ``>= -1e-10 max|C|``), and the weights are computed
        from ``C / max|C|``.
    long_only : forbid negative weights.
    init : (n,) optional starting weights for the long-only solver, e.g. the previous fit's when
        refitting on a rolling window; a hint only (negative entries are set to 0 and the rest
        rescaled to sum 1, so any finite vector is accepted; ignored when ``long_only`` is false).
        A start near the optimum's support saves most of the active-set steps.

    Returns
    -------
    (n,) weights summing to 1 (non-negative when ``long_only``).

    Raises
    ------
    InvalidInputError
        If ``cov`` is not a finite square matrix, is not symmetric, is not positive semi-definite
        (long-only) or not positive definite (unconstrained), or if ``init`` is not a finite vector
        of length ``n``.

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
        if not _is_psd(c):
            raise InvalidInputError("cov must be positive semi-definite")
        start = None if init is None else as_array(init, "init", ndim=1)
        if start is not None and start.shape != (n,):
            raise InvalidInputError(f"init must have shape ({n},), got {start.shape}")
        return _long_only(c, start)
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
