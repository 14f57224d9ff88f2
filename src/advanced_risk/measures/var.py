"""Value at Risk and CVaR: historical, Gaussian, Cornish-Fisher, filtered historical simulation.

VaR and CVaR are positive loss fractions (0.023 = a 2.3% loss) at confidence level ``alpha``.
Each estimator is one numba kernel (``var_kernels.py``) that returns the (VaR, CVaR) pair, so
a VaR and its CVaR share one body; the public functions validate once and pick their half of the
pair. Rolling estimators keep only the sorted tail of each window, not a full re-sort per bar.

NaN policy: inputs holding NaN or inf raise :class:`~advanced_risk.errors.InvalidInputError`;
rolling outputs are NaN where a window is not yet available, and only there.

Overflow policy: a return above ``MAX_ABS_RETURN`` (1e6) in magnitude raises ``InvalidInputError``
(a return is a fraction; ``+-1e300`` is a feed error), so the moments behind the Gaussian and
Cornish-Fisher estimates stay finite and every VaR/CVaR of accepted input is finite.

One module because every public estimator is a thin validating wrapper over one (VaR, CVaR) kernel,
and the VaR and CVaR of each method are read side by side.
"""

from __future__ import annotations

from collections.abc import Callable
from statistics import NormalDist

import numpy as np
from numpy.typing import ArrayLike

from advanced_risk.errors import InvalidInputError
from advanced_risk.measures.validation import (
    MAX_ABS_RETURN,
    FloatArray,
    as_array,
    as_matrix,
    as_positive,
    as_returns,
    as_weights,
    check_alpha,
    check_finite_scalar,
    check_positive_int,
)
from advanced_risk.measures.var_kernels import (
    cornish_fisher_kernel,
    fhs_kernel,
    gaussian_kernel,
    historical_kernel,
    rolling_fhs_kernel,
    rolling_tail_kernel,
)
from advanced_risk.measures.var_method import VaRMethod, as_var_method
from advanced_risk.measures.volatility import ewma_variance_kernel

__all__ = [
    "VaRMethod",
    "cornish_fisher_cvar",
    "cornish_fisher_var",
    "filtered_historical_cvar",
    "filtered_historical_var",
    "gaussian_cvar",
    "gaussian_var",
    "historical_cvar",
    "historical_var",
    "portfolio_cvar",
    "portfolio_var",
    "rolling_fhs_cvar",
    "rolling_fhs_var",
    "rolling_fhs_var_cvar",
    "rolling_historical_cvar",
    "rolling_historical_var",
    "rolling_historical_var_cvar",
]


_NORMAL = NormalDist()


def var_cvar_kernel(r: FloatArray, a: float, method: VaRMethod) -> tuple[float, float]:
    """(VaR, CVaR) of ``r`` at level ``a`` by ``method``, trusting its inputs (no validation).

    The dispatch behind every single-window estimate here: callers that validate once and then
    estimate many windows (``risk.tracker``, ``risk.var_backtest``) call it per window.

    Parameters
    ----------
    r : 1-D float64 array of finite returns, at least 2 values, ``|r| <= MAX_ABS_RETURN``.
    a : confidence level in (0, 1), already checked.
    method : historical, gaussian, cornish_fisher or fhs_ewma (RiskMetrics filter, lam 0.94,
        started at the sample mean square).

    Raises
    ------
    InvalidInputError
        ``method`` is fhs_garch, which needs fitted parameters (``advanced_risk.risk.garch``).
    """
    if method is VaRMethod.HISTORICAL:
        return historical_kernel(r, a)
    if method is VaRMethod.FHS_EWMA:  # RiskMetrics filter (lam 0.94) started at the sample mean square
        return fhs_kernel(r, ewma_variance_kernel(r, 0.94, float(np.mean(r * r))), 0.0, a)
    q = _NORMAL.inv_cdf(1.0 - a)
    kernels: dict[VaRMethod, Callable[[FloatArray, float, float, float], tuple[float, float]]] = {
        VaRMethod.GAUSSIAN: gaussian_kernel,
        VaRMethod.CORNISH_FISHER: cornish_fisher_kernel,
    }
    if method not in kernels:
        raise InvalidInputError(
            f"method {method.value!r} needs fitted GARCH parameters: use advanced_risk.risk.garch"
        )
    return kernels[method](r, a, q, _NORMAL.pdf(q))


def _pair(returns: ArrayLike, alpha: float, method: VaRMethod) -> tuple[float, float]:
    a = check_alpha(alpha)
    r = as_returns(returns)
    var, cvar = var_cvar_kernel(r, a, method)
    return float(var), float(cvar)


def _portfolio_pair(
    weights: ArrayLike, returns: ArrayLike, alpha: float, method: VaRMethod | str
) -> tuple[float, float]:
    a = check_alpha(alpha)
    m = as_var_method(method)
    r = as_matrix(returns)
    w = as_weights(weights, r.shape[1])
    var, cvar = var_cvar_kernel(np.ascontiguousarray(r @ w), a, m)
    return float(var), float(cvar)


def _fhs_inputs(returns: ArrayLike, variance: ArrayLike, mu: float) -> tuple[FloatArray, FloatArray, float]:
    r = as_returns(returns)
    v = as_positive(variance, "variance")
    if v.shape[0] != r.shape[0] + 1:
        raise InvalidInputError(
            f"variance must have len(returns) + 1 = {r.shape[0] + 1} entries (the last one forecasts "
            f"the next bar), got {v.shape[0]}"
        )
    return r, v, check_finite_scalar(mu, "mu")


def _fhs_pair(returns: ArrayLike, variance: ArrayLike, alpha: float, mu: float) -> tuple[float, float]:
    a = check_alpha(alpha)
    r, v, m = _fhs_inputs(returns, variance, mu)
    var, cvar = fhs_kernel(r, v, m, a)
    return float(var), float(cvar)


def rolling_historical_var_cvar(
    returns: ArrayLike, window: int = 250, alpha: float = 0.99
) -> tuple[FloatArray, FloatArray]:
    """Rolling historical (VaR, CVaR) in one pass: the pair `rolling_historical_var` and
    `rolling_historical_cvar` return one half of (same arguments, layout and NaN prefix).

    Examples
    --------
    >>> var, cvar = rolling_historical_var_cvar([-0.02, 0.01, -0.01, 0.03], window=2, alpha=0.75)
    >>> var.round(4).tolist(), cvar.round(4).tolist()
    ([nan, nan, 0.0125, 0.005], [nan, nan, 0.02, 0.01])
    """
    a = check_alpha(alpha)
    w = check_positive_int(window, "window", minimum=2)
    r = as_array(returns, "returns", ndim=(1, 2), min_len=w, max_abs=MAX_ABS_RETURN)
    cols = r.reshape(r.shape[0], -1)
    out_var = np.full(cols.shape, np.nan)
    out_cvar = np.full(cols.shape, np.nan)
    for j in range(cols.shape[1]):
        out_var[w:, j], out_cvar[w:, j] = rolling_tail_kernel(np.ascontiguousarray(cols[:, j]), w, a, w)
    return out_var.reshape(r.shape), out_cvar.reshape(r.shape)


def rolling_fhs_var_cvar(
    returns: ArrayLike,
    variance: ArrayLike,
    window: int = 500,
    alpha: float = 0.99,
    mu: float = 0.0,
    start: int | None = None,
) -> tuple[FloatArray, FloatArray]:
    """Rolling filtered historical simulation (VaR, CVaR) in one pass: the pair `rolling_fhs_var`
    and `rolling_fhs_cvar` return one half of (same arguments, layout and NaN prefix).

    Examples
    --------
    >>> var, cvar = rolling_fhs_var_cvar([-0.02, 0.01, -0.01, 0.03], [1e-4] * 5, window=2, alpha=0.75)
    >>> var.round(4).tolist(), cvar.round(4).tolist()
    ([nan, nan, 0.0125, 0.005], [nan, nan, 0.02, 0.01])
    """
    a = check_alpha(alpha)
    w = check_positive_int(window, "window", minimum=2)
    r, v, m = _fhs_inputs(returns, variance, mu)
    first = w if start is None else check_positive_int(start, "start", minimum=2)
    if first > r.shape[0]:
        raise InvalidInputError(f"start must be <= len(returns) = {r.shape[0]}, got {first}")
    out_var = np.full(r.shape[0], np.nan)
    out_cvar = np.full(r.shape[0], np.nan)
    out_var[first:], out_cvar[first:] = rolling_fhs_kernel(r, v, m, w, a, first)
    return out_var, out_cvar


def historical_var(returns: ArrayLike, alpha: float = 0.99) -> float:
    """Historical VaR: ``-quantile(r, 1 - alpha)``, numpy's linear interpolation.

    Parameters
    ----------
    returns : 1-D array of simple returns, finite, at least 2 values.
    alpha : confidence level in (0, 1), e.g. 0.99.

    Examples
    --------
    >>> round(historical_var([-0.05, -0.01, 0.0, 0.01, 0.02], alpha=0.8), 4)
    0.018
    """
    return _pair(returns, alpha, VaRMethod.HISTORICAL)[0]


def historical_cvar(returns: ArrayLike, alpha: float = 0.99) -> float:
    """Historical CVaR (expected shortfall): ``-mean(r[r <= -VaR])`` with VaR as in `historical_var`.

    Examples
    --------
    >>> round(historical_cvar([-0.05, -0.01, 0.0, 0.01, 0.02], alpha=0.8), 4)
    0.05
    """
    return _pair(returns, alpha, VaRMethod.HISTORICAL)[1]


def gaussian_var(returns: ArrayLike, alpha: float = 0.99) -> float:
    """Gaussian VaR: ``-(mu + q * sigma)``, ``q = Phi^-1(1 - alpha)``, ``sigma`` with ddof=1.

    Examples
    --------
    >>> round(gaussian_var([-0.02, 0.0, 0.02], alpha=0.95), 4)
    0.0329
    """
    return _pair(returns, alpha, VaRMethod.GAUSSIAN)[0]


def gaussian_cvar(returns: ArrayLike, alpha: float = 0.99) -> float:
    """Gaussian CVaR: ``-mu + sigma * phi(q) / (1 - alpha)``, ``q = Phi^-1(1 - alpha)``, ddof=1.

    Examples
    --------
    >>> round(gaussian_cvar([-0.02, 0.0, 0.02], alpha=0.95), 4)
    0.0413
    """
    return _pair(returns, alpha, VaRMethod.GAUSSIAN)[1]


def cornish_fisher_var(returns: ArrayLike, alpha: float = 0.99) -> float:
    """Cornish-Fisher VaR: ``-(mu + q_cf * sigma)`` with the skew/kurtosis-corrected quantile

    ``q_cf = q + (q^2-1) S/6 + (q^3-3q) K/24 - (2q^3-5q) S^2/36``, ``q = Phi^-1(1 - alpha)``,
    S the skewness and K the excess kurtosis (population moments, scipy.stats' defaults), sigma
    with ddof=1. A constant series has no shape: S = K = 0. Where the expansion folds over (it
    decreases at ``q``, or its tail mean is above its quantile: extreme S and K, e.g. a flat history
    and a few losses), it is no quantile, and the pair is the Gaussian one.

    Examples
    --------
    >>> round(cornish_fisher_var([-0.02, 0.0, 0.02], alpha=0.95), 4)
    0.0335
    """
    return _pair(returns, alpha, VaRMethod.CORNISH_FISHER)[0]


def cornish_fisher_cvar(returns: ArrayLike, alpha: float = 0.99) -> float:
    """Cornish-Fisher CVaR: the mean of the Cornish-Fisher quantile function over the tail,

    ``CVaR = -(mu + sigma * (1/p) * integral_0^p q_cf(Phi^-1(u)) du)``, ``p = 1 - alpha``,
    in closed form through the Gaussian partial moments ``E[Z^k; Z < q]``. With S = K = 0 this is
    the Gaussian CVaR. Where the expansion is not monotone (large |S| with small K), the tail
    mean of q_cf can lie above q_cf itself and CVaR < VaR: the expansion is then outside its
    valid domain (Maillard, 2012) and neither number should be trusted.

    Examples
    --------
    >>> round(cornish_fisher_cvar([-0.02, 0.0, 0.02], alpha=0.95), 4)
    0.0369
    """
    return _pair(returns, alpha, VaRMethod.CORNISH_FISHER)[1]


def portfolio_var(
    weights: ArrayLike,
    returns: ArrayLike,
    alpha: float = 0.99,
    method: VaRMethod | str = VaRMethod.HISTORICAL,
) -> float:
    """VaR of the portfolio return series ``returns @ weights`` (cash, if any, returns 0).

    Parameters
    ----------
    weights : 1-D array, one weight per asset (column of ``returns``).
    returns : (T, n) matrix of simple returns, at least 2 rows.
    alpha : confidence level in (0, 1).
    method : historical, gaussian, cornish_fisher or fhs_ewma (RiskMetrics filter, lam 0.94,
        over the whole sample). fhs_garch needs fitted parameters: see ``advanced_risk.risk.garch``.

    Examples
    --------
    >>> r = [[-0.04, 0.0], [0.0, -0.02], [0.02, 0.02], [0.01, 0.0], [0.0, 0.01]]
    >>> round(portfolio_var([0.5, 0.5], r, alpha=0.8), 4)
    0.012
    """
    return _portfolio_pair(weights, returns, alpha, method)[0]


def portfolio_cvar(
    weights: ArrayLike,
    returns: ArrayLike,
    alpha: float = 0.99,
    method: VaRMethod | str = VaRMethod.HISTORICAL,
) -> float:
    """CVaR of the portfolio return series ``returns @ weights``; arguments as `portfolio_var`.

    Examples
    --------
    >>> r = [[-0.04, 0.0], [0.0, -0.02], [0.02, 0.02], [0.01, 0.0], [0.0, 0.01]]
    >>> round(portfolio_cvar([0.5, 0.5], r, alpha=0.8), 4)
    0.02
    """
    return _portfolio_pair(weights, returns, alpha, method)[1]


def filtered_historical_var(
    returns: ArrayLike, variance: ArrayLike, alpha: float = 0.99, mu: float = 0.0
) -> float:
    """Filtered historical simulation VaR for the next bar.

    ``z_t = (r_t - mu) / sqrt(variance[t])``; ``VaR = -(mu + sqrt(variance[-1]) * quantile(z, 1 - alpha))``
    with the linear quantile, i.e. the historical VaR of the standardised residuals rescaled by the
    next-bar volatility forecast.

    Parameters
    ----------
    returns : 1-D array, the residual window (e.g. the last 500 bars).
    variance : 1-D array of ``len(returns) + 1`` positive variance forecasts, as returned by the
        filters in ``volatility.py`` (``variance[t]`` forecasts bar t, ``variance[-1]`` the next one).
    alpha : confidence level in (0, 1).
    mu : the conditional mean the filter was fitted with (0 for RiskMetrics).

    Examples
    --------
    >>> r = [-0.04, 0.01, -0.02, 0.02, 0.0]
    >>> round(filtered_historical_var(r, [4e-4, 4e-4, 1e-4, 1e-4, 1e-4, 1e-4], alpha=0.8), 4)
    0.02
    """
    return _fhs_pair(returns, variance, alpha, mu)[0]


def filtered_historical_cvar(
    returns: ArrayLike, variance: ArrayLike, alpha: float = 0.99, mu: float = 0.0
) -> float:
    """Filtered historical simulation CVaR: ``-mu + sqrt(variance[-1]) * CVaR(z)``; see the VaR twin.

    Examples
    --------
    >>> r = [-0.04, 0.01, -0.02, 0.02, 0.0]
    >>> round(filtered_historical_cvar(r, [4e-4, 4e-4, 1e-4, 1e-4, 1e-4, 1e-4], alpha=0.8), 4)
    0.02
    """
    return _fhs_pair(returns, variance, alpha, mu)[1]


def rolling_historical_var(returns: ArrayLike, window: int = 250, alpha: float = 0.99) -> FloatArray:
    """Rolling historical VaR: ``out[t] = historical_var(returns[t - window:t], alpha)``.

    Each value uses only the ``window`` bars *before* t, so it is the forecast for bar t and can be
    compared with ``returns[t]`` (a breach is ``returns[t] < -out[t]``). The first ``window``
    entries are NaN. 2-D input (T, n) gives one column per asset.

    Examples
    --------
    >>> rolling_historical_var([-0.02, 0.01, -0.01, 0.03], window=2, alpha=0.75).round(4).tolist()
    [nan, nan, 0.0125, 0.005]
    """
    return rolling_historical_var_cvar(returns, window, alpha)[0]


def rolling_historical_cvar(returns: ArrayLike, window: int = 250, alpha: float = 0.99) -> FloatArray:
    """Rolling historical CVaR, ``out[t] = historical_cvar(returns[t - window:t], alpha)``; as VaR.

    Examples
    --------
    >>> rolling_historical_cvar([-0.02, 0.01, -0.01, 0.03], window=2, alpha=0.75).round(4).tolist()
    [nan, nan, 0.02, 0.01]
    """
    return rolling_historical_var_cvar(returns, window, alpha)[1]


def rolling_fhs_var(
    returns: ArrayLike,
    variance: ArrayLike,
    window: int = 500,
    alpha: float = 0.99,
    mu: float = 0.0,
    start: int | None = None,
) -> FloatArray:
    """Rolling filtered historical simulation VaR (the backtest kernel).

    ``out[t] = -(mu + sqrt(variance[t]) * quantile(z[max(0, t - window):t], 1 - alpha))`` with
    ``z_s = (r_s - mu) / sqrt(variance[s])``: the forecast for bar t from the residuals before t.
    Entries before ``start`` (default ``window``) are NaN; with ``start < window`` the residual
    window grows from ``start`` bars up to ``window``. ``variance`` as in `filtered_historical_var`.

    Examples
    --------
    >>> v = [1e-4] * 5
    >>> rolling_fhs_var([-0.02, 0.01, -0.01, 0.03], v, window=2, alpha=0.75).round(4).tolist()
    [nan, nan, 0.0125, 0.005]
    """
    return rolling_fhs_var_cvar(returns, variance, window, alpha, mu, start)[0]


def rolling_fhs_cvar(
    returns: ArrayLike,
    variance: ArrayLike,
    window: int = 500,
    alpha: float = 0.99,
    mu: float = 0.0,
    start: int | None = None,
) -> FloatArray:
    """Rolling filtered historical simulation CVaR; arguments and layout as `rolling_fhs_var`.

    Examples
    --------
    >>> v = [1e-4] * 5
    >>> rolling_fhs_cvar([-0.02, 0.01, -0.01, 0.03], v, window=2, alpha=0.75).round(4).tolist()
    [nan, nan, 0.02, 0.01]
    """
    return rolling_fhs_var_cvar(returns, variance, window, alpha, mu, start)[1]
