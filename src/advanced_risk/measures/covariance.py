"""Covariance and correlation kernels: EWMA (batch and streaming), rolling windows, averages.

Conventions shared by every function here:

- ``returns`` is a (T, n) matrix of simple returns, one column per asset, oldest row first.
- A correlation that is undefined because an asset has zero variance (a flat price stretch, or an
  asset whose returns so far are all zero) is NaN, on that asset's whole row and column including
  the diagonal. This is what pandas returns for the same data; nothing here divides by zero. So an
  all-zero covariance (every asset flat) has an all-NaN correlation matrix, and its average
  pairwise correlation is NaN: there is no pair whose correlation is defined.
- Returns are bounded: ``|r| <= MAX_ABS_RETURN`` (1e6), else ``InvalidInputError``; a larger value
  is a feed error whose products would overflow the covariance.
- The EWMA estimator is RiskMetrics' zero-mean one. Its streaming form keeps the normaliser in
  the state, so feeding rows one at a time gives exactly the batch result.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from advanced_risk.errors import InvalidInputError
from advanced_risk.measures.jit import jit
from advanced_risk.measures.validation import (
    MAX_ABS_RETURN,
    FloatArray,
    as_array,
    as_matrix,
    check_positive_int,
    check_range,
)

__all__ = [
    "average_pairwise_correlation",
    "covariance_to_correlation",
    "ewma_correlation",
    "ewma_covariance",
    "ewma_covariance_update",
    "rolling_correlation",
]


# --------------------------------------------------------------------------------------------- kernels
def _ewma_covariance_update_python(state: FloatArray, row: FloatArray, lam: float) -> None:
    """In place: ``S <- lam * S + (1 - lam) * r r^T``.

    Every entry is computed, row by row: contiguous, vectorisable, and exactly symmetric (the
    (j, k) and (k, j) terms are the same products), where mirroring an upper triangle writes down
    columns, one cache line per entry (3x slower at 500 assets).
    """
    n = row.shape[0]
    w = 1.0 - lam
    for j in range(n):
        rj = row[j]
        for k in range(n):
            state[j, k] = lam * state[j, k] + w * (rj * row[k])


_ewma_covariance_update = jit(_ewma_covariance_update_python)


def _ewma_covariance_python(returns: FloatArray, lam: float) -> FloatArray:
    n = returns.shape[1]
    state = np.zeros((n, n))
    weight = 0.0
    for t in range(returns.shape[0]):
        _ewma_covariance_update(state, returns[t], lam)
        weight = lam * weight + (1.0 - lam)
    return state / weight


_ewma_covariance = jit(_ewma_covariance_python)


def _covariance_to_correlation_python(cov: FloatArray) -> FloatArray:
    """Correlation of a square covariance matrix, NaN rows/columns for zero variances, clipped to [-1, 1]."""
    n = cov.shape[0]
    scale = np.empty(n)
    for j in range(n):
        scale[j] = np.sqrt(cov[j, j]) if cov[j, j] > 0.0 else np.nan
    out = np.empty((n, n))
    for j in range(n):
        for k in range(j, n):
            c = cov[j, k] / (scale[j] * scale[k])  # NaN when either variance is zero
            c = min(1.0, max(-1.0, c)) if c == c else c
            out[j, k] = c
            out[k, j] = c
        out[j, j] = 1.0 if scale[j] == scale[j] else np.nan
    return out


covariance_to_correlation_kernel = jit(_covariance_to_correlation_python)


def _average_pairwise_correlation_python(corr: FloatArray) -> float:
    """Mean over the strict upper triangle, skipping undefined (NaN) pairs; NaN if none is defined."""
    n = corr.shape[0]
    total = 0.0
    count = 0
    for j in range(n):
        for k in range(j + 1, n):
            c = corr[j, k]
            if c == c:
                total += c
                count += 1
    return total / count if count > 0 else np.nan


_average_pairwise_correlation = jit(_average_pairwise_correlation_python)


def _ewma_step_python(state: FloatArray, row: FloatArray, lam: float, include: np.ndarray) -> float:
    """One streaming EWMA update in place; returns the average pairwise correlation of the new state.

    Correlation is scale-free, so the unnormalised state gives it directly (no division by c_t).
    Zero-variance assets, and those not in ``include`` (e.g. assets that joined a few bars ago, whose
    correlations are still noise), get ``1 / sd = 0`` and are left out of the pair count, which skips
    their pairs exactly as :func:`average_pairwise_correlation` skips undefined ones, without a
    branch per pair. The result is clipped to [-1, 1] (round-off on perfectly correlated assets
    can otherwise exceed 1 by a few ulps); NaN when fewer than two assets are included with
    positive variance.
    """
    n = row.shape[0]
    w = 1.0 - lam
    inv_sd = np.empty(n)
    m = 0
    for j in range(n):  # the new diagonal first: the pass below needs every 1 / sd
        v = lam * state[j, j] + w * (row[j] * row[j])
        if include[j] and v > 0.0:
            inv_sd[j] = 1.0 / np.sqrt(v)
            m += 1
        else:
            inv_sd[j] = 0.0
    # one pass over the matrix: update each row (as _ewma_covariance_update) and sum its upper part
    total = 0.0
    for j in range(n):
        rj = row[j]
        for k in range(j + 1):
            state[j, k] = lam * state[j, k] + w * (rj * row[k])
        partial = 0.0
        for k in range(j + 1, n):
            v = lam * state[j, k] + w * (rj * row[k])
            state[j, k] = v
            partial += v * inv_sd[k]
        total += partial * inv_sd[j]
    if m < 2:
        return np.nan
    # each term is unclipped, so round-off (perfectly correlated assets) can push the mean past
    # +-1 by a few ulps; clip as covariance_to_correlation clips each pair
    return min(1.0, max(-1.0, total / (m * (m - 1) / 2)))


ewma_correlation_step_kernel = jit(_ewma_step_python)


def _window_moments_python(
    returns: FloatArray, start: int, stop: int, mean: FloatArray, com: FloatArray
) -> None:
    """Two-pass, from scratch: means and co-moments ``sum (x - m)(x - m)^T`` of rows start..stop-1."""
    n = returns.shape[1]
    w = stop - start
    for j in range(n):
        s = 0.0
        for t in range(start, stop):
            s += returns[t, j]
        mean[j] = s / w
    for j in range(n):
        for k in range(j, n):
            s = 0.0
            for t in range(start, stop):
                s += (returns[t, j] - mean[j]) * (returns[t, k] - mean[k])
            com[j, k] = s
            com[k, j] = s


_window_moments = jit(_window_moments_python)


def _slide_moments_python(
    old: FloatArray, new: FloatArray, window: int, mean: FloatArray, com: FloatArray, scratch: FloatArray
) -> None:
    """Replace row ``old`` by row ``new`` in a window of fixed length (centred, Welford-style).

    With d = new - old, m the old and m' the new means: ``m' = m + d / w`` and
    ``C'_jk = C_jk + d_j (new_k - m'_k) + (old_j - m_j) d_k``.
    """
    n = new.shape[0]
    delta = scratch[0]
    old_dev = scratch[1]
    new_dev = scratch[2]
    for j in range(n):
        delta[j] = new[j] - old[j]
        old_dev[j] = old[j] - mean[j]
        mean[j] += delta[j] / window
        new_dev[j] = new[j] - mean[j]
    for j in range(n):
        for k in range(j, n):
            v = com[j, k] + delta[j] * new_dev[k] + old_dev[j] * delta[k]
            com[j, k] = v
            com[k, j] = v


_slide_moments = jit(_slide_moments_python)


def _rolling_correlation_python(returns: FloatArray, window: int) -> FloatArray:
    n_rows, n = returns.shape
    out = np.empty((n_rows, n, n))
    out[: window - 1] = np.nan
    mean = np.zeros(n)
    com = np.zeros((n, n))
    scratch = np.empty((3, n))
    scale = np.empty(n)
    run = np.zeros(n, dtype=np.int64)  # length of the current run of identical values per column
    for t in range(n_rows):
        for j in range(n):
            run[j] = run[j] + 1 if t > 0 and returns[t, j] == returns[t - 1, j] else 1
        if t < window - 1:
            continue
        if (t - window + 1) % window == 0:  # restart from scratch once per window: no drift
            _window_moments(returns, t - window + 1, t + 1, mean, com)
        else:
            _slide_moments(returns[t - window], returns[t], window, mean, com, scratch)
        for j in range(n):
            # an exactly flat window has zero variance even if round-off says otherwise
            flat = run[j] >= window or com[j, j] <= 0.0
            scale[j] = np.nan if flat else 1.0 / np.sqrt(com[j, j])
        for j in range(n):
            out[t, j, j] = 1.0 if scale[j] == scale[j] else np.nan
            for k in range(j + 1, n):
                c = com[j, k] * scale[j] * scale[k]
                c = min(1.0, max(-1.0, c)) if c == c else c
                out[t, j, k] = c
                out[t, k, j] = c
    return out


_rolling_correlation = jit(_rolling_correlation_python)


# --------------------------------------------------------------------------------------------- public
def _check_lam(lam: float) -> float:
    return check_range(lam, "lam", 0.0, 1.0, lo_open=True, hi_open=True)


def _as_square(values: ArrayLike, name: str) -> FloatArray:
    arr = as_array(values, name, ndim=2)
    if arr.shape[0] != arr.shape[1]:
        raise InvalidInputError(f"{name} must be square (n, n), got shape {arr.shape}")
    return arr


def ewma_covariance(returns: ArrayLike, lam: float = 0.94) -> FloatArray:
    """RiskMetrics EWMA covariance matrix (zero mean).

    ``Sigma = sum_i w_i r_i r_i^T`` with ``w_i = (1 - lam) lam^(T-1-i) / (1 - lam^T)``, so the
    weights sum to 1 and the newest row weighs most.

    Parameters
    ----------
    returns : (T, n) matrix of simple returns, finite, at least 1 row.
    lam : decay in (0, 1); RiskMetrics uses 0.94 for daily data.

    Returns
    -------
    (n, n) symmetric positive semi-definite matrix.

    Examples
    --------
    >>> ewma_covariance([[0.01, 0.02]], lam=0.9).round(6).tolist()
    [[0.0001, 0.0002], [0.0002, 0.0004]]
    """
    r = as_matrix(returns, min_rows=1)
    return _ewma_covariance(r, _check_lam(lam))


def ewma_covariance_update(
    state: ArrayLike, weight: float, returns_row: ArrayLike, lam: float = 0.94
) -> tuple[FloatArray, float]:
    """One streaming step of :func:`ewma_covariance`; returns the new ``(state, weight)``.

    ``S_t = lam * S_(t-1) + (1 - lam) * r_t r_t^T`` and ``c_t = lam * c_(t-1) + (1 - lam)``
    (``c_t = 1 - lam^t``), starting from ``S_0 = 0``, ``c_0 = 0``. The covariance after ``t`` rows
    is ``S_t / c_t``, which equals ``ewma_covariance`` of those rows exactly.

    Parameters
    ----------
    state : (n, n) unnormalised EWMA sum ``S_(t-1)`` (zeros to start).
    weight : normaliser ``c_(t-1)`` in [0, 1) (0.0 to start).
    returns_row : the new (n,) return vector.
    lam : decay in (0, 1).

    Examples
    --------
    >>> s, c = ewma_covariance_update([[0.0]], 0.0, [0.02], lam=0.9)
    >>> round(float(s[0, 0] / c), 6)
    0.0004
    """
    s = _as_square(state, "state").copy()
    c = check_range(weight, "weight", 0.0, 1.0, hi_open=True)
    row = as_array(returns_row, "returns_row", ndim=1, max_abs=MAX_ABS_RETURN)
    if row.shape[0] != s.shape[0]:
        raise InvalidInputError(
            f"returns_row must have one entry per asset ({s.shape[0]}), got {row.shape[0]}"
        )
    lam_ = _check_lam(lam)
    _ewma_covariance_update(s, row, lam_)
    return s, lam_ * c + (1.0 - lam_)


def covariance_to_correlation(cov: ArrayLike) -> FloatArray:
    """Correlation matrix ``C_jk = Sigma_jk / sqrt(Sigma_jj Sigma_kk)``, clipped to [-1, 1].

    Assets with zero variance get NaN on their row and column (diagonal included), as pandas'
    ``DataFrame.corr`` gives for a constant column; an all-zero ``cov`` gives an all-NaN matrix.

    Examples
    --------
    >>> covariance_to_correlation([[4.0, 2.0], [2.0, 9.0]]).round(4).tolist()
    [[1.0, 0.3333], [0.3333, 1.0]]
    """
    c = _as_square(cov, "cov")
    if (np.diag(c) < 0).any():
        raise InvalidInputError(f"cov must have a non-negative diagonal, got {np.diag(c).min()}")
    return covariance_to_correlation_kernel(c)


def ewma_correlation(returns: ArrayLike, lam: float = 0.94) -> FloatArray:
    """Correlation matrix of :func:`ewma_covariance` (NaN rows/columns for zero-variance assets)."""
    return covariance_to_correlation_kernel(ewma_covariance(returns, lam))


def rolling_correlation(returns: ArrayLike, window: int) -> FloatArray:
    """Rolling-window Pearson correlation matrices, one per row, via running moments.

    Entry ``t`` is the sample correlation of rows ``t - window + 1 .. t`` (pandas'
    ``df.rolling(window).corr()`` convention); entries before the window is full are NaN. Each step
    slides centred co-moments in O(n^2) (old row out, new row in) and restarts them from scratch once
    per window, so round-off does not drift over long series.

    Notes
    -----
    NaN policy: a column whose window is exactly flat (all values identical, e.g. a stale price)
    has zero variance, so its row and column of that entry are NaN, as pandas gives.

    Parameters
    ----------
    returns : (T, n) matrix of simple returns, finite.
    window : window length in rows, 2 <= window <= T.

    Returns
    -------
    (T, n, n) array; ``out[t]`` is symmetric with a unit diagonal where defined.

    Examples
    --------
    >>> r = [[0.01, 0.02], [0.02, 0.03], [0.0, 0.05]]
    >>> rolling_correlation(r, window=2)[1].round(4).tolist()
    [[1.0, 1.0], [1.0, 1.0]]
    """
    r = as_matrix(returns)
    w = check_positive_int(window, "window", minimum=2)
    if w > r.shape[0]:
        raise InvalidInputError(f"window must be <= the number of rows ({r.shape[0]}), got {w}")
    return _rolling_correlation(r, w)


def average_pairwise_correlation(corr: ArrayLike) -> float:
    """Mean of the off-diagonal upper triangle: ``2 / (n (n - 1)) * sum_(j<k) C_jk``.

    Pairs whose correlation is undefined (NaN: an asset with zero variance) are skipped; the
    result is NaN only when no pair is defined.

    Parameters
    ----------
    corr : (n, n) correlation matrix, n >= 2; NaN entries allowed, inf not.

    Examples
    --------
    >>> round(average_pairwise_correlation([[1.0, 0.2, 0.4], [0.2, 1.0, 0.6], [0.4, 0.6, 1.0]]), 12)
    0.4
    """
    try:
        c = np.ascontiguousarray(corr, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"corr must be numeric, got {corr!r:.60}") from exc
    if c.ndim != 2 or c.shape[0] != c.shape[1] or c.shape[0] < 2:
        raise InvalidInputError(f"corr must be a square (n, n) matrix with n >= 2, got shape {c.shape}")
    if np.isinf(c).any():
        raise InvalidInputError("corr must not hold inf")
    return float(_average_pairwise_correlation(c))
