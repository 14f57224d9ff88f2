"""Walk-forward VaR backtests: forecasts with no lookahead, breaches, Kupiec and Christoffersen tests.

The VaR for day t uses only returns before t: the first ``window`` returns are history only and
every later day gets one forecast. A breach (hit) is ``r_t < -VaR_t``. Each (method, alpha) gives
one :class:`BacktestRow`; :func:`format_table` prints a list of rows for reports::

    rows = backtest_table(returns, methods=list(VaRMethod), alphas=(0.95, 0.99))
    print(format_table(rows))

Methods: historical, Gaussian and Cornish-Fisher use the last ``window`` returns; the FHS methods
standardise returns by a variance filter (EWMA, or GJR-GARCH refitted every ``refit_every`` bars on
all data before the block) and take the quantile of the last ``fhs_window`` residuals (fewer at the
start, never fewer than ``window``). See docs/var_calibration.md for the S&P 500 results.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from advanced_risk.measures._validation import FloatArray, as_returns, check_alpha, check_positive_int
from advanced_risk.measures.backtest import christoffersen_independence, conditional_coverage, kupiec_pof
from advanced_risk.measures.var import (
    VaRMethod,
    _as_method,
    cornish_fisher_var,
    gaussian_var,
    rolling_fhs_var,
    rolling_historical_var,
)
from advanced_risk.measures.volatility import ewma_variance
from advanced_risk.risk.garch import GarchDist, garch_variance_blocks

__all__ = ["BacktestRow", "BacktestSettings", "VaRBacktest", "backtest_table", "backtest_var", "format_table"]


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


@dataclass(frozen=True, slots=True)
class VaRBacktest:
    """Per-day forecasts (``var[i]`` is for day ``window + i``), hits, and the summary row."""

    var: FloatArray
    hits: NDArray[np.bool_]
    row: BacktestRow


def forecast_var(
    returns: ArrayLike,
    method: VaRMethod | str,
    alphas: Sequence[float],
    window: int = 250,
    settings: BacktestSettings | None = None,
) -> FloatArray:
    """VaR forecasts for days ``window .. T-1``, one row per alpha, each from returns before its day."""
    r = as_returns(returns)
    m = _as_method(method)
    levels = [check_alpha(a) for a in alphas]
    w = check_positive_int(window, "window", minimum=20)
    s = settings or BacktestSettings()
    n = r.shape[0]
    out = np.empty((len(levels), n - w))
    if m is VaRMethod.HISTORICAL:
        for i, a in enumerate(levels):
            out[i] = rolling_historical_var(r, w, a)[w:]
    elif m in (VaRMethod.GAUSSIAN, VaRMethod.CORNISH_FISHER):
        fn = gaussian_var if m is VaRMethod.GAUSSIAN else cornish_fisher_var
        for t in range(w, n):
            out[:, t - w] = [fn(r[t - w : t], a) for a in levels]
    elif m is VaRMethod.FHS_EWMA:
        variance = ewma_variance(r, s.ewma_lambda, init=float(np.mean(r[:w] ** 2)))
        for i, a in enumerate(levels):
            out[i] = rolling_fhs_var(r, variance, s.fhs_window, a, 0.0, start=w)[w:]
    else:
        blocks = garch_variance_blocks(
            r, start=w, refit_every=s.refit_every, dist=s.garch_dist, zero_mean=s.garch_zero_mean
        )
        for blk in blocks:
            for i, a in enumerate(levels):
                fhs = rolling_fhs_var(
                    r[: blk.stop], blk.variance, s.fhs_window, a, blk.params.mu, start=blk.start
                )
                out[i, blk.start - w : blk.stop - w] = fhs[blk.start :]
    return out


def _evaluate(
    method: VaRMethod, alpha: float, realised: FloatArray, var: FloatArray, significance: float
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
    )
    return VaRBacktest(var, hits, row)


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
    returns : 1-D simple returns, oldest first, more than ``window`` values.
    method : a :class:`VaRMethod`.
    alpha : confidence level in (0, 1).
    window : returns before the first forecast, and the rolling window of the unfiltered methods.
    settings : FHS and GARCH settings (:class:`BacktestSettings`).

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> bt = backtest_var(0.01 * rng.standard_normal(400), "historical", 0.95, window=100)
    >>> bt.row.n_forecasts, bt.var.shape, round(bt.row.expected, 6)
    (300, (300,), 15.0)
    """
    r = as_returns(returns)
    m = _as_method(method)
    s = settings or BacktestSettings()
    var = forecast_var(r, m, [alpha], window, s)[0]
    return _evaluate(m, check_alpha(alpha), r[window:], var, s.significance)


def backtest_table(
    returns: ArrayLike,
    methods: Sequence[VaRMethod | str] = tuple(VaRMethod),
    alphas: Sequence[float] = (0.95, 0.99),
    window: int = 250,
    settings: BacktestSettings | None = None,
) -> list[BacktestRow]:
    """One :class:`BacktestRow` per (method, alpha); each method's filter is fitted once for all alphas."""
    r = as_returns(returns)
    s = settings or BacktestSettings()
    rows = []
    for method in methods:
        m = _as_method(method)
        var = forecast_var(r, m, alphas, window, s)
        rows += [_evaluate(m, a, r[window:], var[i], s.significance).row for i, a in enumerate(alphas)]
    return rows


def format_table(rows: Sequence[BacktestRow]) -> str:
    """The rows as a fixed-width text table (one line per row, header first)."""
    head = (
        f"{'method':<15} {'alpha':>5} {'n':>5} {'breaches':>8} {'expected':>8} "
        f"{'Kupiec LR':>9} {'p':>6} {'Chr. LR':>8} {'p':>6} {'CC p':>6}  result"
    )
    lines = [head, "-" * len(head)]
    for x in rows:
        lines.append(
            f"{x.method.value:<15} {x.alpha:>5.2f} {x.n_forecasts:>5d} {x.breaches:>8d} {x.expected:>8.1f} "
            f"{x.kupiec_lr:>9.3f} {x.kupiec_p:>6.3f} {x.christoffersen_lr:>8.3f} {x.christoffersen_p:>6.3f} "
            f"{x.coverage_p:>6.3f}  {'pass' if x.passed else 'FAIL'}"
        )
    return "\n".join(lines)
