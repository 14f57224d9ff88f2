"""The statistics of every evaluation pipeline: intervals, paired tests and block bootstraps.

One implementation, shared by the policy evaluation (:mod:`advanced_risk.evaluation.policy`), the
risk-agents evaluation (:mod:`advanced_risk.evaluation.agents`) and the rules report
(:mod:`advanced_risk.evaluation.rules.report`). The numerical work is the ecosystem's:

- quantiles: :class:`statistics.NormalDist` and ``scipy.stats.t`` (scipy comes with ``arch``);
- the sign-flip test: ``scipy.stats.permutation_test`` (one sample, ``permutation_type="samples"``);
- block resampling: ``arch.bootstrap.CircularBlockBootstrap`` (moving blocks that wrap around the
  end of the series) and ``arch.bootstrap.StationaryBootstrap`` (geometric block lengths).

What is left here is the definitions: which statistic, which interval, which p-value.

Many paths (one value per episode and strategy):

- :func:`mean_interval`: ``mean ± t * sd / sqrt(n)`` over the finite values;
- :func:`paired_sign_flip_test` and :func:`paired_difference`: "the paired differences are symmetric
  around 0", by random sign flips.

One path (a daily return series per strategy, the same days):

- :func:`bootstrap_sharpes`: Sharpe ratios of replicates that resample the same blocks of every
  series (a paired bootstrap);
- :func:`block_bootstrap_sharpe` and :func:`paired_bootstrap_sharpe`: a Sharpe ratio (or a Sharpe
  difference) with its percentile interval and :func:`percentile_p_value`;
- :func:`centred_p_value`: the p-value of the rules report (replicates centred on the estimate).

Scipy and arch are imported inside the functions that need them, so importing this module is cheap.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from statistics import NormalDist
from typing import Final

import numpy as np
from numpy.typing import ArrayLike

from advanced_risk.errors import InvalidInputError
from advanced_risk.measures.performance import sharpe_ratio
from advanced_risk.measures.validation import PERIODS_PER_YEAR, FloatArray, as_returns, float_array

__all__ = [
    "BootstrapKind",
    "PairedDifference",
    "block_bootstrap_sharpe",
    "bootstrap_sharpes",
    "centred_p_value",
    "mean_interval",
    "normal_quantile",
    "paired_bootstrap_sharpe",
    "paired_difference",
    "paired_sign_flip_test",
    "percentile_interval",
    "percentile_p_value",
    "student_t_quantile",
]

_PERMUTATION_BATCH: Final = 2048  # sign vectors per vectorised batch: keeps memory flat
_PERMUTATION_CELLS: Final = 1 << 21  # most (sign vector, value) cells per batch: ~32 MiB per array


def _check_probability(p: float, name: str = "p") -> float:
    if not 0.0 < p < 1.0:
        raise InvalidInputError(f"{name} must be in (0, 1), got {p}")
    return float(p)


def normal_quantile(p: float) -> float:
    """Standard normal quantile ``Phi^-1(p)`` (:meth:`statistics.NormalDist.inv_cdf`).

    Examples
    --------
    >>> round(normal_quantile(0.975), 6)
    1.959964
    """
    return NormalDist().inv_cdf(_check_probability(p))


def student_t_quantile(p: float, dof: float) -> float:
    """Quantile of Student's t with ``dof`` degrees of freedom (``scipy.stats.t.ppf``).

    Examples
    --------
    >>> round(student_t_quantile(0.975, 99), 4)
    1.9842
    """
    from scipy.stats import t

    if not dof >= 1:
        raise InvalidInputError(f"dof must be >= 1, got {dof}")
    return float(t.ppf(_check_probability(p), dof))


def mean_interval(values: ArrayLike, confidence: float = 0.95) -> tuple[float, float, float]:
    """``(mean, low, high)``: the Student-t interval ``mean ± t * sd / sqrt(n)`` over finite values.

    ``sd`` is the sample standard deviation (``ddof=1``) and ``t`` the ``(1 + confidence) / 2``
    quantile with ``n - 1`` degrees of freedom. Non-finite values (e.g. an infinite Sortino ratio)
    are left out; with no finite value the result is all NaN, with one it is ``(mean, nan, nan)``.
    ``values`` not 1-D or not numeric raises ``InvalidInputError`` naming it.

    Examples
    --------
    >>> [round(x, 4) for x in mean_interval([1.0, 2.0, 3.0, np.inf])]
    [2.0, -0.4841, 4.4841]
    """
    x = float_array(values, "values")
    if x.ndim != 1:
        raise InvalidInputError(f"values must be 1-D, got shape {x.shape}")
    x = x[np.isfinite(x)]
    if x.size == 0:
        return math.nan, math.nan, math.nan
    mean = float(x.mean())
    if x.size < 2:
        return mean, math.nan, math.nan
    t = student_t_quantile(0.5 + _check_probability(confidence, "confidence") / 2.0, x.size - 1)
    half = t * float(x.std(ddof=1)) / math.sqrt(x.size)
    return mean, mean - half, mean + half


def _abs_mean(x: FloatArray, axis: int) -> FloatArray:
    out: FloatArray = np.abs(np.mean(x, axis=axis))
    return out


def paired_sign_flip_test(differences: ArrayLike, n_permutations: int = 20_000, seed: int = 0) -> float:
    """Two-sided p-value of "the paired differences are symmetric around 0" by sign flips.

    Under the null hypothesis each episode's difference ``d_i`` (strategy minus baseline on the
    same path) is as likely to be ``-d_i``; the statistic is ``|mean(d)|``. With ``2**n`` at most
    ``n_permutations`` every sign vector is enumerated and the p-value is exact,
    ``#{s : |mean(s * d)| >= |mean(d)|} / 2**n``; otherwise ``n_permutations`` random sign vectors
    give ``(1 + #{|mean(s * d)| >= |mean(d)|}) / (1 + n_permutations)``. Either way the p-value is
    never 0, and identical strategies (all ``d_i = 0``) give exactly 1. ``scipy.stats.
    permutation_test`` does the work (its relative tolerance treats rounding-level ties as ties),
    in batches of at most ``2**21 / n`` sign vectors, so memory stays bounded for a long series
    (time grows like ``n * n_permutations``). NaN or inf raises ``InvalidInputError``.

    Examples
    --------
    >>> paired_sign_flip_test([0.0, 0.0, 0.0])
    1.0
    >>> paired_sign_flip_test(np.full(30, 0.01)) < 0.001
    True
    """
    from scipy.stats import permutation_test

    d = np.asarray(differences, dtype=np.float64)
    if d.ndim != 1 or d.size < 1 or not np.all(np.isfinite(d)):
        raise InvalidInputError("differences must be a non-empty 1-D array of finite values")
    if not isinstance(n_permutations, int) or n_permutations < 1:
        raise InvalidInputError(f"n_permutations must be an integer >= 1, got {n_permutations!r}")
    result = permutation_test(
        (d,),
        _abs_mean,
        permutation_type="samples",  # one sample: the permutations are sign flips
        vectorized=True,
        n_resamples=n_permutations,
        batch=max(1, min(_PERMUTATION_BATCH, _PERMUTATION_CELLS // d.size)),
        alternative="greater",  # of |mean|: the two-sided test of the mean
        rng=np.random.default_rng(seed),
    )
    return float(result.pvalue)


@dataclass(frozen=True, slots=True)
class PairedDifference:
    """A strategy against a reference on the same paths (or days).

    Attributes
    ----------
    estimate : the difference ``strategy - reference`` (a mean over paths, or a Sharpe difference).
    low, high : its confidence interval.
    win_rate : share of paths (or days) where the strategy's value is higher.
    p_value : two-sided p-value of "no difference", in (0, 1]; NaN with no finite difference.
    """

    estimate: float
    low: float
    high: float
    win_rate: float
    p_value: float


def paired_difference(
    values: ArrayLike,
    reference: ArrayLike,
    *,
    confidence: float = 0.95,
    n_permutations: int = 20_000,
    seed: int = 0,
) -> PairedDifference:
    """Per-path differences ``values - reference``: t interval of their mean and a sign-flip test.

    Non-finite differences (e.g. between two infinite Sortino ratios) are left out first. The
    interval is :func:`mean_interval`'s, the p-value :func:`paired_sign_flip_test`'s, the win rate
    the share of the kept differences above 0; with no finite difference every field is NaN.

    Examples
    --------
    >>> paired_difference([1.0, 2.0, 3.0], [0.0, 2.5, 1.0]).win_rate
    0.6666666666666666
    """
    a = np.asarray(values, dtype=np.float64)
    b = np.asarray(reference, dtype=np.float64)
    if a.ndim != 1 or a.shape != b.shape:
        raise InvalidInputError(f"values and reference must be 1-D of one length, got {a.shape}, {b.shape}")
    d = a - b
    d = d[np.isfinite(d)]
    if d.size == 0:
        return PairedDifference(math.nan, math.nan, math.nan, math.nan, math.nan)
    mean, low, high = mean_interval(d, confidence)
    p = paired_sign_flip_test(d, n_permutations, seed)
    return PairedDifference(mean, low, high, float(np.mean(d > 0)), p)


class BootstrapKind(StrEnum):
    """How :func:`bootstrap_sharpes` draws its blocks (the ``arch.bootstrap`` class used)."""

    CIRCULAR = "circular"
    """Moving blocks of a fixed length, wrapping around the end (``CircularBlockBootstrap``)."""
    STATIONARY = "stationary"
    """Blocks of geometric length with the given mean (``StationaryBootstrap``)."""


def _aligned(series: Sequence[ArrayLike]) -> list[FloatArray]:
    arrays = [float_array(s, f"series[{i}]") for i, s in enumerate(series)]
    if not arrays or any(a.ndim != 1 or a.shape != arrays[0].shape for a in arrays) or arrays[0].shape[0] < 2:
        raise InvalidInputError("series must be 1-D return series of one common length >= 2")
    return [as_returns(a, f"series[{i}]") for i, a in enumerate(arrays)]


def bootstrap_sharpes(
    series: Sequence[ArrayLike],
    *,
    reps: int = 1000,
    block: int = 20,
    seed: int | Sequence[int] = 0,
    periods_per_year: int = PERIODS_PER_YEAR,
    kind: BootstrapKind | str = BootstrapKind.STATIONARY,
) -> FloatArray:
    """``(reps, k)`` Sharpe ratios of ``k`` aligned series resampled with the same blocks.

    Every replicate draws one set of block positions for all the series, so the days stay
    aligned across them (a paired bootstrap). The statistic is
    :func:`~advanced_risk.measures.sharpe_ratio` (0 for a flat replicate). NaN or inf in a series
    (or a return beyond ``MAX_ABS_RETURN``) raises ``InvalidInputError`` naming ``series[i]``.

    Parameters
    ----------
    series : ``k`` return series of the same length (>= 2).
    reps : bootstrap replicates (>= 1).
    block : block length (circular) or expected block length (stationary), >= 1.
    seed : seeds ``numpy.random.default_rng(seed)``, the generator ``arch`` draws from.
    periods_per_year : annualisation of the Sharpe ratio.
    kind : :class:`BootstrapKind`.
    """
    from arch.bootstrap import CircularBlockBootstrap, StationaryBootstrap

    arrays = _aligned(series)
    if not isinstance(reps, int) or reps < 1:
        raise InvalidInputError(f"reps must be an integer >= 1, got {reps!r}")
    if not isinstance(block, int) or block < 1:
        raise InvalidInputError(f"block must be an integer >= 1, got {block!r}")
    try:
        method = BootstrapKind(kind)
    except ValueError:
        raise InvalidInputError(
            f"kind must be one of {[k.value for k in BootstrapKind]}, got {kind!r}"
        ) from None
    make = CircularBlockBootstrap if method is BootstrapKind.CIRCULAR else StationaryBootstrap
    bootstrap = make(block, *arrays, seed=np.random.default_rng(seed))

    def sharpes(*xs: FloatArray) -> FloatArray:
        return np.array([sharpe_ratio(x, periods_per_year=periods_per_year) for x in xs])

    out: FloatArray = np.asarray(bootstrap.apply(sharpes, reps), dtype=np.float64).reshape(reps, len(arrays))
    return out


def percentile_interval(replicates: ArrayLike, confidence: float = 0.95) -> tuple[float, float]:
    """``(low, high)``: the ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` quantiles of the
    replicates (numpy's linear interpolation).

    Examples
    --------
    >>> percentile_interval(np.arange(11.0), 0.5)
    (2.5, 7.5)
    """
    tail = (1.0 - _check_probability(confidence, "confidence")) / 2.0
    x = np.asarray(replicates, dtype=np.float64)
    if x.size == 0:
        raise InvalidInputError("replicates must hold at least one value, got none")
    low, high = np.quantile(x, [tail, 1.0 - tail])
    return float(low), float(high)


def percentile_p_value(replicates: ArrayLike) -> float:
    """Two-sided bootstrap p-value of "the statistic is 0" from the replicates' position of 0.

    ``min(1, 2 * (1 + min(#{x* <= 0}, #{x* >= 0})) / (1 + B))`` over ``B`` replicates ``x*``: about
    the smallest ``1 - confidence`` whose percentile interval leaves 0 out; never 0. A NaN
    replicate gives NaN (its position is unknown), as does an empty ``replicates``.

    Examples
    --------
    >>> percentile_p_value(np.zeros(9))
    1.0
    >>> percentile_p_value(np.arange(1.0, 100.0))
    0.02
    """
    x = np.asarray(replicates, dtype=np.float64)
    if x.size == 0 or np.isnan(x).any():
        return math.nan
    tail = min(int(np.count_nonzero(x <= 0)), int(np.count_nonzero(x >= 0)))
    return min(1.0, 2.0 * (1.0 + tail) / (1.0 + x.size))


def centred_p_value(replicates: ArrayLike, estimate: float) -> float:
    """Two-sided bootstrap p-value of "the statistic is 0" from replicates centred on the estimate.

    ``(1 + #{|x* - x| >= |x|}) / (1 + B)``: the centred replicates ``x* - x`` stand for the
    statistic's distribution under the null; ``x = 0`` gives 1. A non-finite estimate, a NaN
    replicate or no replicate gives NaN (never a small, significant-looking p-value).

    Examples
    --------
    >>> centred_p_value(np.array([0.9, 1.1]), 0.0)
    1.0
    """
    x = np.asarray(replicates, dtype=np.float64)
    if x.size == 0 or not math.isfinite(estimate) or np.isnan(x).any():
        return math.nan
    extreme = int(np.count_nonzero(np.abs(x - estimate) >= abs(estimate)))
    return (1 + extreme) / (1 + x.size)


def block_bootstrap_sharpe(
    returns: ArrayLike,
    reference: ArrayLike | None = None,
    *,
    block: int = 20,
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float, float, float]:
    """Circular moving-block bootstrap of the annualised Sharpe ratio of one daily return series.

    With ``reference`` (a second series on the same days) the statistic is the Sharpe *difference*
    ``SR(returns) - SR(reference)``, both resampled on the same blocks (a paired bootstrap).
    NaN or inf in either series raises ``InvalidInputError`` naming it.

    Returns
    -------
    ``(estimate, low, high, p_value)``: the point estimate on the original series, the percentile
    interval (:func:`percentile_interval`) and :func:`percentile_p_value` of the replicates.
    """
    r = float_array(returns, "returns")
    ref = None if reference is None else float_array(reference, "reference")
    if r.ndim != 1 or r.size < 3 or (ref is not None and ref.shape != r.shape):
        raise InvalidInputError("returns (and reference) must be 1-D series of the same length >= 3")
    r = as_returns(r)
    ref = None if ref is None else as_returns(ref, "reference")
    series = [r] if ref is None else [r, ref]
    weights = np.array([1.0, -1.0])[: len(series)]  # SR(returns), or SR(returns) - SR(reference)
    boot = bootstrap_sharpes(series, reps=n_boot, block=block, seed=seed, kind=BootstrapKind.CIRCULAR)
    stats = boot @ weights
    estimate = float(np.array([sharpe_ratio(x) for x in series]) @ weights)
    low, high = percentile_interval(stats, confidence)
    return estimate, low, high, percentile_p_value(stats)


def paired_bootstrap_sharpe(
    returns: ArrayLike,
    reference: ArrayLike,
    *,
    block: int = 20,
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> PairedDifference:
    """Sharpe difference of two daily return series over their common first days.

    Both are cut to the shorter length (a ruined strategy's series ends early), then
    :func:`block_bootstrap_sharpe` gives the estimate, interval and p-value; the win rate is the
    share of those days on which ``returns`` beat ``reference``.
    """
    r = np.asarray(returns, dtype=np.float64)
    ref = np.asarray(reference, dtype=np.float64)
    n = min(r.size, ref.size)
    estimate, low, high, p = block_bootstrap_sharpe(
        r[:n], ref[:n], block=block, n_boot=n_boot, confidence=confidence, seed=seed
    )
    return PairedDifference(estimate, low, high, float(np.mean(r[:n] > ref[:n])), p)
