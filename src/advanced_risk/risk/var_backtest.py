"""Walk-forward VaR and ES backtests: forecasts with no lookahead, breaches, Kupiec, Christoffersen, Z2.

The VaR for day t uses only returns before t: the first ``window`` returns are history only and
every later day gets one forecast. A breach (hit) is ``r_t < -VaR_t``. Each (method, alpha) gives
one :class:`BacktestRow`. Beside the VaR tests, each method's expected shortfall (CVaR) forecast at
``BacktestSettings.es_alpha`` (97.5 %, the Basel FRTB level) is tested with Acerbi and Szekely's
Z2 (``measures.backtest.z2_test``: ``E[Z2] = 0`` under a correct forecast, negative when ES is
underestimated; one-sided Monte Carlo p-value under a normal location-scale null); the row's
``passed`` stays the VaR verdict. :func:`format_table` prints a list of rows for reports::

    rows = backtest_table(returns, methods=list(VaRMethod), alphas=(0.95, 0.99))
    print(format_table(rows))

Methods: historical, Gaussian and Cornish-Fisher use the last ``window`` returns; the FHS methods
standardise returns by a variance filter (EWMA, or GJR-GARCH refitted every ``refit_every`` bars on
all data before the block) and take the quantile of the last ``fhs_window`` residuals (fewer at the
start, never fewer than ``window``). See docs/var_calibration.md for the S&P 500 results.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from advanced_risk.errors import InvalidInputError
from advanced_risk.measures.backtest import (
    acerbi_szekely_z2,
    christoffersen_independence,
    conditional_coverage,
    kupiec_pof,
    z2_test,
)
from advanced_risk.measures.kernels import var_cvar_kernel
from advanced_risk.measures.validation import FloatArray, as_returns, check_alpha, check_positive_int
from advanced_risk.measures.var import rolling_fhs_var_cvar, rolling_historical_var_cvar
from advanced_risk.measures.var_kernels import FHS_SIGMA_FLOOR
from advanced_risk.measures.var_method import VaRMethod, as_var_method
from advanced_risk.measures.volatility import ewma_variance
from advanced_risk.risk.garch import GarchDist, garch_variance_blocks

__all__ = [
    "BacktestRow",
    "BacktestSettings",
    "VaRBacktest",
    "backtest_table",
    "backtest_var",
    "forecast_var",
    "forecast_var_cvar",
    "format_table",
    "z2_of",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class BacktestSettings:
    """Model settings of the backtest (defaults: the calibrated ones, docs/var_calibration.md)."""

    fhs_window: int = 500
    """Residual window of filtered historical simulation (expanding up to this)."""
    refit_every: int = 250
    """Bars between GJR-GARCH refits; each fit uses all returns before its block."""
    ewma_lambda: float = 0.94
    """RiskMetrics decay of the EWMA variance filter."""
    garch_dist: GarchDist = GarchDist.STUDENT_T
    """Likelihood of the GJR-GARCH fit."""
    garch_zero_mean: bool = False
    """Fit GJR-GARCH with mu = 0 instead of a constant mean."""
    significance: float = 0.05
    """A row passes when both the Kupiec and the Christoffersen p-values are at least this."""
    es_alpha: float | None = 0.975
    """Level of the expected-shortfall backtest (Acerbi-Szekely Z2); None: no ES backtest."""
    z2_sims: int = 2000
    """Simulated paths behind the Z2 p-value (normal location-scale null, seed 0)."""


@dataclass(frozen=True, slots=True)
class BacktestRow:
    """Summary of one (method, alpha) backtest."""

    method: VaRMethod
    alpha: float
    n_forecasts: int
    breaches: int
    expected: float
    kupiec_lr: float
    kupiec_p: float
    christoffersen_lr: float
    christoffersen_p: float
    coverage_p: float
    passed: bool
    es_alpha: float = math.nan
    """Level of the ES backtest of this method (NaN: none)."""
    z2: float = math.nan
    """Acerbi-Szekely Z2 of the method's ES (CVaR) forecasts at ``es_alpha`` (0 expected; < 0:
    ES underestimated); NaN where some ES forecast is <= 0 (a window with no loss in its tail, e.g.
    flat or only rising returns: Z2 divides by ES and is undefined there)."""
    z2_p: float = math.nan
    """One-sided Monte Carlo p-value of ``z2`` (normal null); NaN where some ES forecast equals its
    VaR (a degenerate tail, for which the location-scale null is undefined) or ``z2`` is NaN."""


@dataclass(frozen=True, slots=True)
class VaRBacktest:
    """Per-day forecasts (``var[i]`` is for day ``window + i``), hits, and the summary row."""

    var: FloatArray
    hits: NDArray[np.bool_]
    row: BacktestRow


def _checked_window(r: FloatArray, window: int, min_forecasts: int) -> int:
    """``window`` (>= 20), checked to leave at least ``min_forecasts`` days after it in ``r``."""
    w = check_positive_int(window, "window", minimum=20)
    if r.shape[0] < w + min_forecasts:
        raise InvalidInputError(
            f"returns needs at least window + {min_forecasts} = {w + min_forecasts} values "
            f"({min_forecasts} forecast(s) after the {w} days of history), got {r.shape[0]}"
        )
    return w


def forecast_var_cvar(
    returns: ArrayLike,
    method: VaRMethod | str,
    alphas: Sequence[float],
    window: int = 250,
    settings: BacktestSettings | None = None,
) -> tuple[FloatArray, FloatArray]:
    """VaR and CVaR (ES) forecasts for days ``window .. T-1``, one row per alpha, from returns before
    each day. Each method's filter is fitted once for all levels.

    ``returns`` must hold more than ``window`` values (at least one forecast); fewer, or NaN/inf
    anywhere, raises ``InvalidInputError``."""
    r = as_returns(returns)
    m = as_var_method(method)
    levels = [check_alpha(a) for a in alphas]
    w = _checked_window(r, window, 1)
    s = settings or BacktestSettings()
    n = r.shape[0]
    var = np.empty((len(levels), n - w))
    cvar = np.empty((len(levels), n - w))
    if m is VaRMethod.HISTORICAL:
        for i, a in enumerate(levels):
            v, c = rolling_historical_var_cvar(r, w, a)
            var[i], cvar[i] = v[w:], c[w:]
    elif m in (VaRMethod.GAUSSIAN, VaRMethod.CORNISH_FISHER):
        for t in range(w, n):
            for i, a in enumerate(levels):
                var[i, t - w], cvar[i, t - w] = var_cvar_kernel(r[t - w : t], a, m)
    elif m is VaRMethod.FHS_EWMA:
        variance = _floored(ewma_variance(r, s.ewma_lambda, init=float(np.mean(r[:w] ** 2))), r, w)
        for i, a in enumerate(levels):
            v, c = rolling_fhs_var_cvar(r, variance, s.fhs_window, a, 0.0, w)
            var[i], cvar[i] = v[w:], c[w:]
    else:
        blocks = garch_variance_blocks(
            r, start=w, refit_every=s.refit_every, dist=s.garch_dist, zero_mean=s.garch_zero_mean
        )
        for blk in blocks:
            for i, a in enumerate(levels):
                v, c = rolling_fhs_var_cvar(
                    r[: blk.stop], blk.variance, s.fhs_window, a, blk.params.mu, blk.start
                )
                var[i, blk.start - w : blk.stop - w] = v[blk.start :]
                cvar[i, blk.start - w : blk.stop - w] = c[blk.start :]
    return var, cvar


def _floored(variance: FloatArray, r: FloatArray, window: int) -> FloatArray:
    """The EWMA variance floored as the risk tracker floors it, causally: ``variance[t]`` (the
    forecast of bar ``t``) is at least ``FHS_SIGMA_FLOOR**2`` times the mean square of the ``window``
    returns before bar ``t`` (of the first window, for ``t < window``), and at least the smallest
    positive float: a window of unchanged prices forecasts a VaR of 0, not a standardised
    return of 0/0 or thousands of sigmas at the first small move."""
    squares = np.concatenate(([0.0], np.cumsum(r * r)))
    t = np.maximum(np.arange(variance.shape[0]), window)
    mean_square = (squares[t] - squares[t - window]) / window
    floored: FloatArray = np.maximum(variance, np.maximum(FHS_SIGMA_FLOOR**2 * mean_square, _TINY))
    return floored


_TINY = float(np.finfo(float).tiny)


def forecast_var(
    returns: ArrayLike,
    method: VaRMethod | str,
    alphas: Sequence[float],
    window: int = 250,
    settings: BacktestSettings | None = None,
) -> FloatArray:
    """VaR forecasts for days ``window .. T-1``, one row per alpha, each from returns before its day."""
    return forecast_var_cvar(returns, method, alphas, window, settings)[0]


def z2_of(
    realised: FloatArray, var: FloatArray, es: FloatArray, es_alpha: float, n_sims: int
) -> tuple[float, float]:
    """(Z2, p-value) of ES forecasts.

    Both are NaN where some ES forecast is <= 0 (Z2 divides by ES: a window with no loss in its
    tail has no ES to test); the p-value alone is NaN where some ES equals its VaR.
    """
    if not (es > 0.0).all():
        return math.nan, math.nan
    if not (es > var).all():
        return acerbi_szekely_z2(realised, var, es, es_alpha), math.nan
    res = z2_test(realised, var, es, es_alpha, n_sims=n_sims, seed=0)
    return res.statistic, res.p_value


def _evaluate(
    method: VaRMethod,
    alpha: float,
    realised: FloatArray,
    var: FloatArray,
    significance: float,
    es_test: tuple[float, float, float] = (math.nan, math.nan, math.nan),
) -> VaRBacktest:
    hits = realised < -var
    pof = kupiec_pof(hits, alpha)
    ind = christoffersen_independence(hits)
    row = BacktestRow(
        method=method,
        alpha=alpha,
        n_forecasts=int(hits.shape[0]),
        breaches=int(hits.sum()),
        expected=float(hits.shape[0] * (1.0 - alpha)),
        kupiec_lr=pof.statistic,
        kupiec_p=pof.p_value,
        christoffersen_lr=ind.statistic,
        christoffersen_p=ind.p_value,
        coverage_p=conditional_coverage(hits, alpha).p_value,
        passed=pof.p_value >= significance and ind.p_value >= significance,
        es_alpha=es_test[0],
        z2=es_test[1],
        z2_p=es_test[2],
    )
    return VaRBacktest(var, hits, row)


def _with_es(
    r: FloatArray,
    m: VaRMethod,
    alphas: Sequence[float],
    window: int,
    s: BacktestSettings,
) -> tuple[FloatArray, tuple[float, float, float]]:
    """VaR forecasts at ``alphas`` and the method's (es_alpha, Z2, p) from one fit of its filter."""
    if s.es_alpha is None:
        return forecast_var(r, m, alphas, window, s), (math.nan, math.nan, math.nan)
    es_alpha = check_alpha(s.es_alpha, "es_alpha")
    var, cvar = forecast_var_cvar(r, m, [*alphas, es_alpha], window, s)
    z2, p = z2_of(r[window:], var[-1], cvar[-1], es_alpha, s.z2_sims)
    return var[:-1], (es_alpha, z2, p)


def backtest_var(
    returns: ArrayLike,
    method: VaRMethod | str = VaRMethod.FHS_GARCH,
    alpha: float = 0.99,
    window: int = 250,
    settings: BacktestSettings | None = None,
) -> VaRBacktest:
    """Walk-forward backtest of one VaR method at one level.

    Parameters
    ----------
    returns : 1-D simple returns, oldest first, at least ``window + 2`` values (the independence
        test needs two forecasts); fewer, or NaN/inf anywhere, raises ``InvalidInputError``.
    method : a :class:`VaRMethod`.
    alpha : confidence level in (0, 1).
    window : returns before the first forecast, and the rolling window of the unfiltered methods.
    settings : FHS and GARCH settings, and the ES backtest's level (:class:`BacktestSettings`).

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> bt = backtest_var(0.01 * rng.standard_normal(400), "historical", 0.95, window=100)
    >>> bt.row.n_forecasts, bt.var.shape, round(bt.row.expected, 6)
    (300, (300,), 15.0)
    """
    r = as_returns(returns)
    _checked_window(r, window, 2)
    m = as_var_method(method)
    s = settings or BacktestSettings()
    var, es_test = _with_es(r, m, [alpha], window, s)
    return _evaluate(m, check_alpha(alpha), r[window:], var[0], s.significance, es_test)


def backtest_table(
    returns: ArrayLike,
    methods: Sequence[VaRMethod | str] = tuple(VaRMethod),
    alphas: Sequence[float] = (0.95, 0.99),
    window: int = 250,
    settings: BacktestSettings | None = None,
) -> list[BacktestRow]:
    """One :class:`BacktestRow` per (method, alpha); each method's filter is fitted once for all alphas.

    The rows of one method share its ES backtest (Z2 at ``settings.es_alpha``). ``returns`` must
    hold at least ``window + 2`` values, as in :func:`backtest_var`."""
    r = as_returns(returns)
    _checked_window(r, window, 2)
    s = settings or BacktestSettings()
    rows = []
    for method in methods:
        m = as_var_method(method)
        var, es_test = _with_es(r, m, alphas, window, s)
        rows += [
            _evaluate(m, a, r[window:], var[i], s.significance, es_test).row for i, a in enumerate(alphas)
        ]
    return rows


def format_table(rows: Sequence[BacktestRow]) -> str:
    """The rows as a fixed-width text table (one line per row, header first).

    ``result`` is the VaR verdict. The ES columns (Z2 at the rows' ``es_alpha`` and its p-value)
    are printed once per method, on its first row; they are left out when no row has an ES test.
    """
    levels = {x.es_alpha for x in rows if not math.isnan(x.es_alpha)}
    es_head = ""
    if levels:
        label = f"Z2@{next(iter(levels)):.1%}" if len(levels) == 1 else "Z2"
        es_head = f" {label:>9} {'p':>6}"
    head = (
        f"{'method':<15} {'alpha':>5} {'n':>5} {'breaches':>8} {'expected':>8} "
        f"{'Kupiec LR':>9} {'p':>6} {'Chr. LR':>8} {'p':>6} {'CC p':>6}  result{es_head}"
    )
    lines = [head, "-" * len(head)]
    previous: VaRMethod | None = None
    for x in rows:
        es_cells = ""
        if levels and x.method is not previous and not math.isnan(x.es_alpha):
            es_cells = f"   {x.z2:>9.3f} {x.z2_p:>6.3f}"
        previous = x.method
        lines.append(
            f"{x.method.value:<15} {x.alpha:>5.2f} {x.n_forecasts:>5d} {x.breaches:>8d} {x.expected:>8.1f} "
            f"{x.kupiec_lr:>9.3f} {x.kupiec_p:>6.3f} {x.christoffersen_lr:>8.3f} {x.christoffersen_p:>6.3f} "
            f"{x.coverage_p:>6.3f}  {'pass' if x.passed else 'FAIL'}{es_cells}"
        )
    return "\n".join(lines)
