"""Kelly criterion: discrete bets, continuous (Gaussian) returns, and multi-asset allocations.

These return the *full* Kelly fraction, which may be negative (a negative edge). Sizers apply a
fraction of it (half-Kelly by default) and caps through :func:`fractional_kelly`, which never goes
short: a negative edge sizes to 0.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from advanced_risk.errors import InvalidInputError
from advanced_risk.measures.validation import (
    FloatArray,
    as_array,
    check_finite_scalar,
    check_range,
)

__all__ = ["fractional_kelly", "kelly_continuous", "kelly_discrete", "kelly_multi_asset"]


def kelly_discrete(win_prob: float, win_loss_ratio: float) -> float:
    """Kelly fraction of a repeated binary bet: ``f = p - (1 - p) / b``.

    Parameters
    ----------
    win_prob : probability of a win ``p`` in [0, 1].
    win_loss_ratio : average win over average loss ``b`` (> 0).

    Raises
    ------
    InvalidInputError
        If ``win_prob`` is outside [0, 1], ``win_loss_ratio`` is not finite and > 0, or ``(1 - p) /
        b`` exceeds the float range (``b`` of 1e-310 with ``p`` 0.5): a ratio that small is not an
        estimate a bet can be sized on, and the fraction would be ``-inf``. The message names
        ``win_loss_ratio``. A sure win (``p`` 1) gives 1 for every ``b``.

    Examples
    --------
    >>> round(kelly_discrete(0.6, 1.0), 12)
    0.2
    """
    p = check_range(win_prob, "win_prob", 0.0, 1.0)
    b = check_range(win_loss_ratio, "win_loss_ratio", 0.0, np.inf, lo_open=True, hi_open=True)
    loss_term = (1.0 - p) / b  # 0 for a sure win, whatever b; overflows only for a subnormal-ish b
    if not np.isfinite(loss_term):
        raise InvalidInputError(
            f"win_loss_ratio={b:g} is too small for win_prob={p:g}: the Kelly fraction p - (1 - p) / b "
            "overflows the float range"
        )
    return p - loss_term


def kelly_continuous(mu: float, sigma: float) -> float:
    """Kelly leverage for Gaussian returns with mean ``mu`` and volatility ``sigma``: ``mu / sigma**2``.

    Computed as ``mu / sigma / sigma``, so a ``sigma**2`` that underflows (``sigma`` below ~1e-154)
    still gives the right finite value when there is one (``kelly_continuous(2e-10, 1e-155)`` is
    2e300).

    Raises
    ------
    InvalidInputError
        If ``sigma`` is not > 0 and finite, ``mu`` is not finite, or ``mu / sigma**2`` exceeds the
        float range (e.g. ``mu=0.05``, ``sigma=1e-200``): a volatility that small is not an estimate
        any leverage can be sized on. A zero ``mu`` gives 0 for every ``sigma`` (no edge, no bet).

    Examples
    --------
    >>> round(kelly_continuous(0.05, 0.2), 12)
    1.25
    """
    m = check_finite_scalar(mu, "mu")
    s = check_range(sigma, "sigma", 0.0, np.inf, lo_open=True, hi_open=True)
    if m == 0.0:
        return 0.0
    f = m / s / s
    if not np.isfinite(f):
        raise InvalidInputError(
            f"sigma={s:g} is too small for mu={m:g}: the Kelly leverage mu / sigma**2 overflows "
            "the float range"
        )
    return f


def kelly_multi_asset(mu: ArrayLike, cov: ArrayLike) -> FloatArray:
    """Multi-asset Kelly weights ``f = Sigma^-1 mu`` (solved, not inverted).

    Parameters
    ----------
    mu : 1-D expected excess returns, one per asset.
    cov : (n, n) symmetric positive-definite covariance of the same returns.

    Raises
    ------
    InvalidInputError
        If shapes disagree, ``mu`` or ``cov`` holds a NaN or inf, ``cov`` is not symmetric positive
        definite, or the weights overflow the float range (``cov`` ``[[1e-320]]``: positive
        definite for Cholesky, but ``Sigma^-1 mu`` is inf), as the scalar versions refuse.

    Examples
    --------
    >>> kelly_multi_asset([0.01, 0.02], [[0.04, 0.0], [0.0, 0.04]]).round(12).tolist()
    [0.25, 0.5]
    """
    m = as_array(mu, "mu", ndim=1)
    c = as_array(cov, "cov", ndim=2)
    if c.shape != (m.shape[0], m.shape[0]):
        raise InvalidInputError(
            f"cov must have shape ({m.shape[0]}, {m.shape[0]}) to match mu, got {c.shape}"
        )
    if not np.allclose(c, c.T, rtol=1e-10, atol=1e-14):
        raise InvalidInputError("cov must be symmetric")
    try:
        chol = np.linalg.cholesky(c)
    except np.linalg.LinAlgError as exc:
        raise InvalidInputError("cov must be positive definite (Cholesky failed)") from exc
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):  # refused just below
        y = np.linalg.solve(chol, m)
        out: FloatArray = np.linalg.solve(chol.T, y)
    if not np.isfinite(out).all():
        raise InvalidInputError(
            "cov is too close to singular for mu: the Kelly weights Sigma^-1 mu overflow the float "
            "range (a variance of 1e-320 passes Cholesky)"
        )
    return out


def fractional_kelly(full_kelly: float, fraction: float = 0.5, cap: float = 1.0) -> float:
    """The size a Kelly sizer uses: ``clip(fraction * full_kelly, 0, cap)``.

    A negative edge gives 0 (Kelly never goes short here); ``fraction`` 0.5 is half-Kelly, which
    keeps about 75 % of the growth rate at half the volatility.

    Examples
    --------
    >>> fractional_kelly(0.2), fractional_kelly(-0.1), fractional_kelly(4.0, cap=1.0)
    (0.1, 0.0, 1.0)
    """
    f = check_finite_scalar(full_kelly, "full_kelly")
    k = check_range(fraction, "fraction", 0.0, 1.0, lo_open=True)
    c = check_range(cap, "cap", 0.0, np.inf, hi_open=True)
    return float(min(max(k * f, 0.0), c))
