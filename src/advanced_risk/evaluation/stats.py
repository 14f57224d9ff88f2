"""Small, dependency-free statistics for evaluating strategies: intervals, paired tests, bootstrap.

Pure NumPy (scipy is a test-only dependency). Used by :mod:`advanced_risk.evaluation.policy`:

- :func:`student_t_quantile`: quantile of Student's t, for ``mean ± t * sd / sqrt(n)`` intervals.
- :func:`mean_interval`: that interval over per-episode values.
- :func:`paired_sign_flip_test`: two-sided permutation test of "mean paired difference = 0".
- :func:`block_bootstrap_indices` and :func:`block_bootstrap_sharpe`: moving-block bootstrap of one
  long return series (keeps the serial dependence within blocks), for a Sharpe-ratio interval.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
from numpy.typing import ArrayLike, NDArray

from advanced_risk.errors import InvalidInputError
from advanced_risk.measures.validation import FloatArray

__all__ = [
    "block_bootstrap_indices",
    "block_bootstrap_sharpe",
    "mean_interval",
    "normal_quantile",
    "paired_sign_flip_test",
    "student_t_quantile",
]

PERIODS_PER_YEAR: Final = 252


def normal_quantile(p: float) -> float:
    """Standard normal quantile ``Phi^-1(p)`` (Acklam's rational approximation, |error| < 1.2e-9).

    Examples
    --------
    >>> round(normal_quantile(0.975), 6)
    1.959964
    """
    if not 0.0 < p < 1.0:
        raise InvalidInputError(f"p must be in (0, 1), got {p}")
    a = (
        -39.69683028665376,
        220.9460984245205,
        -275.9285104469687,
        138.3577518672690,
        -30.66479806614716,
        2.506628277459239,
    )
    b = (-54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572)
    c = (
        -7.784894002430293e-03,
        -0.3223964580411365,
        -2.400758277161838,
        -2.549732539343734,
        4.374664141464968,
        2.938163982698783,
    )
    d = (7.784695709041462e-03, 0.3224671290700398, 2.445134137142996, 3.754408661907416)
    if p < 0.02425 or p > 1 - 0.02425:
        q = math.sqrt(-2.0 * math.log(min(p, 1.0 - p)))
        x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / (
            (((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1.0
        )
        return x if p < 0.5 else -x
    q = p - 0.5
    r = q * q
    return (
        (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5])
        * q
        / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1.0)
    )


def _t_pdf(x: FloatArray | float, dof: float) -> FloatArray | float:
    log_c = math.lgamma((dof + 1) / 2) - math.lgamma(dof / 2) - 0.5 * math.log(dof * math.pi)
    out: FloatArray | float = np.exp(log_c - (dof + 1) / 2 * np.log1p(np.square(x) / dof))
    return out


def student_t_quantile(p: float, dof: int) -> float:
    """Quantile of Student's t with ``dof`` degrees of freedom, to about 1e-9.

    Starts from Hill's expansion around the normal quantile and polishes it with Newton steps on
    the CDF ``1/2 + integral_0^t pdf`` (Simpson's rule on 2,001 points).

    Examples
    --------
    >>> round(student_t_quantile(0.975, 99), 4)
    1.9842
    """
    if dof < 1:
        raise InvalidInputError(f"dof must be >= 1, got {dof}")
    if dof == 1:
        return math.tan(math.pi * (p - 0.5))
    if dof == 2:
        return (2.0 * p - 1.0) / math.sqrt(2.0 * p * (1.0 - p))
    z, v = normal_quantile(p), float(dof)
    t = z + (z**3 + z) / (4 * v) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * v**2)
    weights = np.ones(2001)
    weights[1:-1:2], weights[2:-1:2] = 4.0, 2.0
    for _ in range(6):
        grid = np.linspace(0.0, t, 2001)
        cdf = 0.5 + float(weights @ _t_pdf(grid, v)) * t / 6000.0
        step = (cdf - p) / float(_t_pdf(t, v))
        t -= step
        if abs(step) < 1e-12:
            break
    return t


def mean_interval(values: ArrayLike, confidence: float = 0.95) -> tuple[float, float, float]:
    """``(mean, low, high)``: the Student-t interval ``mean ± t * sd / sqrt(n)`` over finite values.

    Non-finite values (e.g. an infinite Sortino ratio) are left out; with fewer than two finite
    values the interval is ``(mean, nan, nan)``.
    """
    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return math.nan, math.nan, math.nan
    mean = float(x.mean())
    if x.size < 2:
        return mean, math.nan, math.nan
    half = student_t_quantile(0.5 + confidence / 2.0, x.size - 1) * float(x.std(ddof=1)) / math.sqrt(x.size)
    return mean, mean - half, mean + half


def paired_sign_flip_test(differences: ArrayLike, n_permutations: int = 20_000, seed: int = 0) -> float:
    """Two-sided p-value of "the paired differences are symmetric around 0" by random sign flips.

    Under the null hypothesis each episode's difference ``d_i`` (strategy minus baseline on the
    same path) is as likely to be ``-d_i``; the statistic is ``|mean(d)|``. The p-value is
    ``(1 + #{|mean(s * d)| >= |mean(d)|}) / (1 + n_permutations)`` over random sign vectors ``s``,
    so it is never 0 and identical strategies (all ``d_i = 0``) give exactly 1.

    Examples
    --------
    >>> paired_sign_flip_test([0.0, 0.0, 0.0])
    1.0
    >>> paired_sign_flip_test(np.full(30, 0.01)) < 0.001
    True
    """
    d = np.asarray(differences, dtype=np.float64)
    if d.ndim != 1 or d.size < 1 or not np.all(np.isfinite(d)):
        raise InvalidInputError("differences must be a non-empty 1-D array of finite values")
    observed = abs(float(d.mean()))
    rng = np.random.default_rng(seed)
    hits = 0
    tolerance = 1e-12 * max(1.0, observed)
    for start in range(0, n_permutations, 2048):  # chunks keep memory flat
        k = min(2048, n_permutations - start)
        signs = rng.integers(0, 2, size=(k, d.size)) * 2 - 1
        hits += int(np.count_nonzero(np.abs(signs @ d) / d.size >= observed - tolerance))
    return (1.0 + hits) / (1.0 + n_permutations)


def block_bootstrap_indices(
    length: int, block: int, n_boot: int, rng: np.random.Generator
) -> NDArray[np.int64]:
    """``(n_boot, length)`` row indices of moving-block bootstrap resamples (blocks wrap circularly)."""
    if block < 1 or length < 1:
        raise InvalidInputError(f"block and length must be >= 1, got {block} and {length}")
    n_blocks = -(-length // block)
    starts = rng.integers(0, length, size=(n_boot, n_blocks))
    idx = (starts[:, :, None] + np.arange(block)[None, None, :]) % length
    out: NDArray[np.int64] = idx.reshape(n_boot, -1)[:, :length]
    return out


def _sharpe_rows(r: FloatArray) -> FloatArray:
    sd = r.std(axis=-1, ddof=1)
    out: FloatArray = np.where(
        sd > 0, math.sqrt(PERIODS_PER_YEAR) * r.mean(axis=-1) / np.where(sd > 0, sd, 1), 0
    )
    return out


def block_bootstrap_sharpe(
    returns: ArrayLike,
    reference: ArrayLike | None = None,
    *,
    block: int = 20,
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float, float, float]:
    """Moving-block bootstrap of the annualised Sharpe ratio of one daily return series.

    With ``reference`` (a second series on the same days) the statistic is the Sharpe *difference*
    ``SR(returns) - SR(reference)``, resampled on the same blocks (a paired bootstrap).

    Returns
    -------
    ``(estimate, low, high, p_value)``: the point estimate on the original series, the percentile
    interval, and a two-sided bootstrap p-value of "the statistic is 0",
    ``2 * (1 + min(#{stat* <= 0}, #{stat* >= 0})) / (1 + n_boot)`` capped at 1 (never 0).
    """
    r = np.asarray(returns, dtype=np.float64)
    ref = None if reference is None else np.asarray(reference, dtype=np.float64)
    if r.ndim != 1 or r.size < 3 or (ref is not None and ref.shape != r.shape):
        raise InvalidInputError("returns (and reference) must be 1-D series of the same length >= 3")
    rng = np.random.default_rng(seed)
    idx = block_bootstrap_indices(r.size, block, n_boot, rng)
    stats = _sharpe_rows(r[idx])
    estimate = float(_sharpe_rows(r[None, :])[0])
    if ref is not None:
        stats = stats - _sharpe_rows(ref[idx])
        estimate -= float(_sharpe_rows(ref[None, :])[0])
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(stats, [tail, 1.0 - tail])
    tail_count = min(int(np.count_nonzero(stats <= 0)), int(np.count_nonzero(stats >= 0)))
    p = min(1.0, 2.0 * (1.0 + tail_count) / (1.0 + n_boot))
    return estimate, float(low), float(high), p
