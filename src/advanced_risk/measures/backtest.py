"""VaR backtests: Kupiec's proportion of failures, Christoffersen's independence, conditional coverage.

A *hit* (breach) on day t is ``r_t < -VaR_t`` with the VaR forecast made before t. Each test
returns a :class:`TestResult` (likelihood-ratio statistic, p-value); a p-value below the chosen
significance (e.g. 0.05) rejects the model. The chi-square survival functions are closed forms
(``chi2(1)``: ``erfc(sqrt(x / 2))``; ``chi2(2)``: ``exp(-x / 2)``), so no scipy is needed.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from advanced_risk.errors import InvalidInputError
from advanced_risk.measures._validation import FloatArray, as_array, check_alpha, check_positive_int

__all__ = ["TestResult", "christoffersen_independence", "conditional_coverage", "kupiec_pof"]


class TestResult(NamedTuple):
    """A likelihood-ratio test's statistic and its asymptotic chi-square p-value."""

    statistic: float
    p_value: float


def _xlogy(x: float, y: float) -> float:
    """``x * log(y)`` with the limit ``0 * log(0) = 0``."""
    return 0.0 if x == 0 else x * math.log(y)


def _chi2_1_sf(x: float) -> float:
    return math.erfc(math.sqrt(max(x, 0.0) / 2.0))


def _chi2_2_sf(x: float) -> float:
    return math.exp(-max(x, 0.0) / 2.0)


def _as_hits(hits: ArrayLike, min_len: int) -> FloatArray:
    h = as_array(hits, "hits", ndim=1, min_len=min_len)
    if ((h != 0.0) & (h != 1.0)).any():
        bad = h[(h != 0.0) & (h != 1.0)][0]
        raise InvalidInputError(f"hits must hold only 0/1 (or booleans), got {bad}")
    return h


def _pof_lr(n_obs: int, n_hits: int, p: float) -> float:
    x, t = n_hits, n_obs
    log_null = _xlogy(t - x, 1.0 - p) + _xlogy(x, p)
    log_alt = _xlogy(t - x, 1.0 - x / t) + _xlogy(x, x / t)
    return max(0.0, -2.0 * (log_null - log_alt))  # LR >= 0; rounding can give -1e-16


def kupiec_pof(
    hits: ArrayLike | None = None,
    alpha: float = 0.99,
    *,
    n_obs: int | None = None,
    n_hits: int | None = None,
) -> TestResult:
    """Kupiec's proportion-of-failures (unconditional coverage) test.

    ``LR = -2 ln[(1-p)^(T-x) p^x] + 2 ln[(1-x/T)^(T-x) (x/T)^x]``, ``p = 1 - alpha``, asymptotically
    chi2(1); x = 0 and x = T use the limit ``0 * ln 0 = 0``.

    Parameters
    ----------
    hits : 1-D array of 0/1 (or booleans), one per forecast; or give ``n_obs`` and ``n_hits``.
    alpha : the VaR confidence level in (0, 1).
    n_obs, n_hits : number of forecasts T and of breaches x, instead of ``hits``.

    Examples
    --------
    >>> res = kupiec_pof(alpha=0.95, n_obs=1043, n_hits=57)
    >>> round(res.statistic, 5), round(res.p_value, 4)
    (0.46147, 0.4969)
    """
    p = 1.0 - check_alpha(alpha)
    if hits is not None:
        if n_obs is not None or n_hits is not None:
            raise InvalidInputError("give either hits or n_obs and n_hits, not both")
        h = _as_hits(hits, 1)
        t, x = h.shape[0], int(h.sum())
    else:
        if n_obs is None or n_hits is None:
            raise InvalidInputError("give hits, or both n_obs and n_hits")
        t = check_positive_int(n_obs, "n_obs")
        x = check_positive_int(n_hits, "n_hits", minimum=0)
        if x > t:
            raise InvalidInputError(f"n_hits must be <= n_obs = {t}, got {x}")
    lr = _pof_lr(t, x, p)
    return TestResult(lr, _chi2_1_sf(lr))


def _independence_lr(h: FloatArray) -> float:
    prev, cur = h[:-1], h[1:]
    n01 = int(np.sum((prev == 0) & (cur == 1)))
    n11 = int(np.sum((prev == 1) & (cur == 1)))
    n00 = int(np.sum((prev == 0) & (cur == 0)))
    n10 = int(np.sum((prev == 1) & (cur == 0)))
    pi = (n01 + n11) / (n00 + n01 + n10 + n11)
    pi0 = n01 / (n00 + n01) if n00 + n01 else 0.0
    pi1 = n11 / (n10 + n11) if n10 + n11 else 0.0
    log_null = _xlogy(n00 + n10, 1.0 - pi) + _xlogy(n01 + n11, pi)
    log_alt = _xlogy(n00, 1.0 - pi0) + _xlogy(n01, pi0) + _xlogy(n10, 1.0 - pi1) + _xlogy(n11, pi1)
    return max(0.0, -2.0 * (log_null - log_alt))


def christoffersen_independence(hits: ArrayLike) -> TestResult:
    """Christoffersen's (1998) test that breaches do not cluster (first-order Markov alternative).

    With ``n_ij`` the number of days in state j after a day in state i (1 = breach),
    ``pi0 = n01 / (n00 + n01)``, ``pi1 = n11 / (n10 + n11)``, ``pi = (n01 + n11) / (T - 1)``:
    ``LR = -2 ln[(1-pi)^(n00+n10) pi^(n01+n11)] + 2 ln[(1-pi0)^n00 pi0^n01 (1-pi1)^n10 pi1^n11]``,
    asymptotically chi2(1); ``0 * ln 0 = 0``.

    Examples
    --------
    >>> res = christoffersen_independence([0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0, 1, 1, 0])
    >>> round(res.statistic, 4), round(res.p_value, 4)
    (1.5958, 0.2065)
    """
    lr = _independence_lr(_as_hits(hits, 2))
    return TestResult(lr, _chi2_1_sf(lr))


def conditional_coverage(hits: ArrayLike, alpha: float = 0.99) -> TestResult:
    """Christoffersen's conditional coverage: ``LR_cc = LR_pof + LR_ind``, asymptotically chi2(2).

    Examples
    --------
    >>> res = conditional_coverage([0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0, 1, 1, 0], alpha=0.9)
    >>> round(res.statistic, 4), round(res.p_value, 4)
    (8.2689, 0.016)
    """
    p = 1.0 - check_alpha(alpha)
    h = _as_hits(hits, 2)
    lr = _pof_lr(h.shape[0], int(h.sum()), p) + _independence_lr(h)
    return TestResult(lr, _chi2_2_sf(lr))
