"""VaR and ES backtests: Kupiec, Christoffersen, conditional coverage; Acerbi-Szekely Z2.

A *hit* (breach) on day t is ``r_t < -VaR_t`` with the VaR forecast made before t. Each test
returns a :class:`TestResult` (statistic, p-value); a p-value below the chosen significance (e.g.
0.05) rejects the model. The VaR tests are likelihood ratios; their chi-square survival functions
are closed forms (``chi2(1)``: ``erfc(sqrt(x / 2))``; ``chi2(2)``: ``exp(-x / 2)``), so no scipy
is needed. The expected-shortfall test (:func:`acerbi_szekely_z2`, :func:`z2_test`) has a one-sided
Monte Carlo p-value under a stated null (Student-t quantiles by a continued fraction, no scipy).

NaN policy: every input must be finite; NaN or inf raises
:class:`~advanced_risk.errors.InvalidInputError` naming the field (nothing is dropped).

One module because the VaR and ES backtests share the hit series, the result type and the
closed-form distributions (chi-square, Student-t) that exist here only to give them p-values without
scipy.
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Final, Literal, NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from advanced_risk.errors import InvalidInputError
from advanced_risk.measures.validation import (
    FloatArray,
    as_array,
    as_matrix,
    as_positive,
    as_returns,
    check_alpha,
    check_finite_scalar,
    check_positive_int,
)

__all__ = [
    "Z2_CRITICAL_VALUES",
    "TestResult",
    "acerbi_szekely_z2",
    "christoffersen_independence",
    "conditional_coverage",
    "kupiec_pof",
    "z2_test",
    "z2_traffic_light",
]


class TestResult(NamedTuple):
    """A test's statistic and its p-value (asymptotic chi-square for the likelihood-ratio tests,
    Monte Carlo for :func:`z2_test`)."""

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


# ------------------------------------------------------------------ expected shortfall: Z2

Z2_CRITICAL_VALUES: Final[dict[float, float]] = {0.05: -0.70, 0.0001: -1.80}
"""Acerbi & Szekely (2014), "Backtesting expected shortfall", Risk: critical values of Z2 at the
97.5 % level for T = 250 days, by significance (5 %: -0.70, 0.01 %: -1.80), nearly the same for
normal and Student-t (df >= 5) forecasts. Valid for T near 250 only: the spread of Z2 shrinks
like 1/sqrt(T), so for a long backtest use the p-value of :func:`z2_test`."""

_NORMAL = NormalDist()


def _es_inputs(
    returns: ArrayLike, var: ArrayLike, es: ArrayLike, alpha: float
) -> tuple[FloatArray, FloatArray, FloatArray, float]:
    r = as_returns(returns, min_len=1)
    v = as_array(var, "var", ndim=1)
    e = as_positive(es, "es")
    for name, arr in (("var", v), ("es", e)):
        if arr.shape[0] != r.shape[0]:
            raise InvalidInputError(
                f"{name} must have one forecast per return ({r.shape[0]}), got {arr.shape[0]}"
            )
    return r, v, e, check_alpha(alpha)


def _z2(r: FloatArray, v: FloatArray, e: FloatArray, p: float) -> FloatArray:
    """Z2 of each row of ``r`` (1-D or 2-D, paths in rows) against validated forecasts."""
    hits = r < -v
    total = np.where(hits, r / e, 0.0).sum(axis=-1)
    out: FloatArray = total / (r.shape[-1] * p) + 1.0
    return out


def acerbi_szekely_z2(returns: ArrayLike, var: ArrayLike, es: ArrayLike, alpha: float = 0.975) -> float:
    """Acerbi & Szekely's (2014) unconditional expected-shortfall test statistic Z2.

    With returns ``X_t`` (a loss is negative), forecasts ``VaR_t`` and ``ES_t`` at level ``alpha``
    as positive loss fractions (the convention of ``measures.var``), tail probability
    ``p = 1 - alpha`` and hit ``I_t = 1{X_t < -VaR_t}``::

        Z2 = sum_t X_t I_t / (T p ES_t) + 1  =  1 - (1 / (T p)) sum_t I_t L_t / ES_t,   L_t = -X_t.

    If ``X_t`` has the forecast distribution, ``E[X_t I_t] = -p ES_t``, so ``E[Z2] = 0``. A
    negative Z2 means the tail losses are larger (or more frequent) than forecast: ES is
    underestimated; a positive one, overestimated. Z2 tests ES and VaR jointly (the hit uses the
    VaR forecast). With no breach Z2 = 1.

    Parameters
    ----------
    returns : 1-D realised returns ``X_t``, one per forecast.
    var : 1-D VaR forecasts for the same days, at ``alpha`` (positive = a loss).
    es : 1-D ES (CVaR) forecasts for the same days, at ``alpha``; each must be > 0.
    alpha : the confidence level in (0, 1); 0.975 is the Basel FRTB level.

    Raises
    ------
    InvalidInputError
        NaN or inf anywhere, lengths that differ, an ES <= 0, or alpha outside (0, 1).

    Examples
    --------
    >>> acerbi_szekely_z2([0.01, -0.03, -0.05, 0.02], [0.02] * 4, [0.03, 0.03, 0.04, 0.04], alpha=0.5)
    -0.125
    """
    r, v, e, a = _es_inputs(returns, var, es, alpha)
    return float(_z2(r, v, e, 1.0 - a))


def z2_traffic_light(z2: float) -> Literal["green", "yellow", "red"]:
    """The Z2 zone against :data:`Z2_CRITICAL_VALUES` (alpha 97.5 %, T = 250 days).

    ``green``: Z2 > -0.70 (not rejected at 5 %); ``yellow``: -1.80 < Z2 <= -0.70 (rejected at
    5 %); ``red``: Z2 <= -1.80 (rejected at 0.01 %). Meant for a one-year (250-day) window.

    Examples
    --------
    >>> z2_traffic_light(-0.2), z2_traffic_light(-1.0), z2_traffic_light(-2.5)
    ('green', 'yellow', 'red')
    """
    z = check_finite_scalar(z2, "z2")
    if z > Z2_CRITICAL_VALUES[0.05]:
        return "green"
    return "yellow" if z > Z2_CRITICAL_VALUES[0.0001] else "red"


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the regularised incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        m2 = 2 * m
        for num in (
            m * (b - m) * x / ((a + m2 - 1.0) * (a + m2)),
            -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1.0)),
        ):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function ``I_x(a, b)`` for ``0 <= x <= 1``."""
    if x <= 0.0 or x >= 1.0:
        return 0.0 if x <= 0.0 else 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _betacf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _betacf(b, a, 1.0 - x) / b


def _t_pdf(x: float, df: float) -> float:
    log_c = math.lgamma((df + 1.0) / 2.0) - math.lgamma(df / 2.0) - 0.5 * math.log(df * math.pi)
    return math.exp(log_c - (df + 1.0) / 2.0 * math.log1p(x * x / df))


def _t_cdf_lower(x: float, df: float) -> float:
    """``P(T <= x)`` of Student's t with ``df`` degrees of freedom, for ``x <= 0``."""
    return 0.5 * _betainc(df / 2.0, 0.5, df / (df + x * x))


def _t_quantile_lower(p: float, df: float) -> float:
    """The ``p`` quantile (``p < 0.5``) of Student's t: bisection on the CDF."""
    lo, hi = -1.0, 0.0
    while _t_cdf_lower(lo, df) > p:
        lo *= 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if _t_cdf_lower(mid, df) > p:
            hi = mid
        else:
            lo = mid
        if hi - lo <= 1e-13 * max(1.0, abs(lo)):
            break
    return 0.5 * (lo + hi)


def _standard_tail(p: float, null: str, df: float) -> tuple[float, float]:
    """``(q, m)``: the ``p`` quantile of the standard null variable and its tail mean ``E[Z | Z <= q]``.

    Normal: ``m = -phi(q) / p``. Student-t (unit scale): ``m = -(df + q^2) / (df - 1) f(q) / p``.
    """
    if null == "normal":
        q = _NORMAL.inv_cdf(p)
        return q, -_NORMAL.pdf(q) / p
    q = _t_quantile_lower(p, df)
    return q, -(df + q * q) / (df - 1.0) * _t_pdf(q, df) / p


def _location_scale(v: FloatArray, e: FloatArray, q: float, m: float) -> tuple[FloatArray, FloatArray]:
    """``(mu_t, sigma_t)`` with VaR and ES of ``mu + sigma Z`` equal to the forecasts.

    ``VaR = -(mu + sigma q)`` and ``ES = -(mu + sigma m)``, so ``sigma = (ES - VaR) / (q - m)``.
    """
    sigma = (e - v) / (q - m)
    return -v - sigma * q, sigma


def z2_test(
    returns: ArrayLike,
    var: ArrayLike,
    es: ArrayLike,
    alpha: float = 0.975,
    *,
    null: Literal["normal", "student_t"] = "normal",
    df: float = 5.0,
    n_sims: int = 10_000,
    seed: int | None = 0,
    null_returns: ArrayLike | None = None,
) -> TestResult:
    """Acerbi-Szekely Z2 with a one-sided Monte Carlo p-value (small p: ES underestimated).

    The statistic is :func:`acerbi_szekely_z2`. The p-value is ``(1 + #{Z2_i <= Z2}) / (M + 1)``
    over ``M`` paths simulated under the null hypothesis that each ``X_t`` has the forecast
    distribution; each simulated path is scored against the same ``var`` and ``es``.

    The null distribution of day t is, by ``null``:

    - ``"normal"`` or ``"student_t"`` (default normal): the location-scale member ``mu_t + sigma_t Z``
      (``Z`` standard normal, or Student-t with ``df`` degrees of freedom at unit scale) whose
      VaR and ES at ``alpha`` are exactly ``var[t]`` and ``es[t]``:
      ``sigma_t = (ES_t - VaR_t) / (q - m)``, ``mu_t = -VaR_t - sigma_t q``, with ``q`` the
      ``1 - alpha`` quantile of ``Z`` and ``m = E[Z | Z <= q]``. Needs ``es > var`` everywhere.
    - ``null_returns`` given (an ``(M, T)`` array, one simulated path per row, e.g. bootstrapped
      from the forecasting model): those paths, and ``null``, ``df``, ``n_sims``, ``seed`` are
      ignored.

    Acerbi & Szekely report that Z2's critical values barely depend on the distribution (normal
    to Student-t with 5 degrees of freedom); heavier tails (df = 3) widen them, so a Student-t null
    with small ``df`` is the conservative choice. At alpha 97.5 % and T = 250 the normal null gives
    the published :data:`Z2_CRITICAL_VALUES`.

    Parameters
    ----------
    returns, var, es, alpha : as :func:`acerbi_szekely_z2`.
    null : ``"normal"`` or ``"student_t"``, the family of the simulated null.
    df : Student-t degrees of freedom, > 2 (finite variance); used with ``null="student_t"``.
    n_sims : number of simulated paths M, >= 1.
    seed : seed of ``numpy.random.default_rng`` (None: fresh entropy, not reproducible).
    null_returns : optional ``(M, T)`` user-supplied null paths.

    Examples
    --------
    >>> rng = np.random.default_rng(7)
    >>> x = rng.standard_normal(1000)
    >>> res = z2_test(x, np.full(1000, 1.959964), np.full(1000, 2.337803), n_sims=2000)
    >>> bool(abs(res.statistic) < 0.3), bool(res.p_value > 0.05)
    (True, True)
    """
    r, v, e, a = _es_inputs(returns, var, es, alpha)
    p = 1.0 - a
    z2 = float(_z2(r, v, e, p))
    if null_returns is not None:
        paths = as_matrix(null_returns, "null_returns", min_rows=1)
        if paths.shape[1] != r.shape[0]:
            raise InvalidInputError(
                f"null_returns must have one column per return ({r.shape[0]}), got shape {paths.shape}"
            )
        sims = _z2(paths, v, e, p)
        return TestResult(z2, float((1 + np.sum(sims <= z2)) / (sims.shape[0] + 1)))
    if null not in ("normal", "student_t"):
        raise InvalidInputError(f"null must be 'normal' or 'student_t', got {null!r}")
    nu = check_finite_scalar(df, "df")
    if null == "student_t" and not nu > 2.0:
        raise InvalidInputError(f"df must be > 2 for a Student-t null, got {nu}")
    m_sims = check_positive_int(n_sims, "n_sims")
    if not (e > v).all():
        i = int(np.flatnonzero(~(e > v))[0])
        raise InvalidInputError(
            f"es must exceed var for a parametric null, got es {e[i]} <= var {v[i]} at index {i}"
        )
    q, m = _standard_tail(p, null, nu)
    mu, sigma = _location_scale(v, e, q, m)
    rng = np.random.default_rng(seed)
    chunk = max(1, 2_000_000 // r.shape[0])
    below = 0
    for start in range(0, m_sims, chunk):
        k = min(chunk, m_sims - start)
        shape = (k, r.shape[0])
        z = rng.standard_normal(shape) if null == "normal" else rng.standard_t(nu, shape)
        below += int(np.sum(_z2(mu + sigma * z, v, e, p) <= z2))
    return TestResult(z2, (1 + below) / (m_sims + 1))
