"""GJR-GARCH(1,1) volatility: fitted with the ``arch`` library, filtered per bar with a numba kernel.

The fit (``arch``, ~20-50 ms) is the expensive part, so it happens rarely: :class:`GarchFilter`
refits every ``refit_every`` bars on the trailing data and, between fits, advances the variance
with the recursion kernel of ``measures.volatility`` (microseconds). ``arch`` is imported inside
the functions that need it, so ``import advanced_risk`` stays fast.

Parameters are fitted on rescaled returns ``s * r`` (the scale ``arch``'s optimiser is tuned for;
``arch`` warns with ``DataScaleWarning`` when the variance of what it fits lies outside
[0.1, 10000)) and returned in return units: ``mu / s``, ``omega / s**2``; alpha, gamma and beta are
unit-free. ``s`` is 100 (percent returns) unless their std falls outside [0.5, 50); then ``s`` moves
by factors of 10 until it is inside (see :func:`_fit_scale`). No warning of ``arch``, scipy or numpy
raised during a fit reaches the caller: each is logged (``garch_fit_warning``) instead.

One module because the fit, the check of what it returns (:func:`check_garch_params`, also applied
to parameters a worker process sends back) and the filter that refits are one model's life cycle:
split, each would import the others' private scaling and starting-value rules.
"""

from __future__ import annotations

import math
import threading
import warnings
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from advanced_risk.errors import InvalidInputError
from advanced_risk.logs import get_logger
from advanced_risk.measures.kernels import gjr_garch_variance_kernel
from advanced_risk.measures.validation import FloatArray, as_returns, check_finite_scalar, check_positive_int
from advanced_risk.measures.var import filtered_historical_cvar, filtered_historical_var

__all__ = [
    "GarchBlock",
    "GarchDist",
    "GarchFilter",
    "GarchParams",
    "check_garch_params",
    "fit_gjr_garch",
    "garch_variance_blocks",
]

log = get_logger(__name__)

_SCALE = 100.0  # fit on percent returns unless their std is outside [_SCALED_STD_LO, _SCALED_STD_HI)
_SCALED_STD_LO = 0.5  # arch's own band is std in [0.316, 100) (variance in [0.1, 1e4)): keep a margin
_SCALED_STD_HI = 50.0
_FIT_LOCK = threading.Lock()  # warnings.catch_warnings swaps process-wide state: one fit at a time


class GarchDist(StrEnum):
    """Innovation likelihood of the fit (filtered historical simulation uses only the variance path)."""

    NORMAL = "normal"
    STUDENT_T = "t"


@dataclass(frozen=True, slots=True)
class GarchParams:
    """GJR-GARCH(1,1) parameters in return units.

    ``e_t = r_t - mu``; ``s2_(t+1) = omega + (alpha + gamma * 1[e_t < 0]) * e_t^2 + beta * s2_t``.
    ``nu`` is the Student-t degrees of freedom (None for a Gaussian fit).
    """

    mu: float
    omega: float
    alpha: float
    gamma: float
    beta: float
    nu: float | None = None

    @property
    def persistence(self) -> float:
        """``alpha + gamma / 2 + beta`` (below 1 for a stationary, symmetric-innovation model)."""
        return self.alpha + 0.5 * self.gamma + self.beta

    def book_scale(self, mean_square: float) -> float:
        """A book's scale relative to this model: ``sqrt(mean_square / (omega / (1 - persistence) + mu**2))``.

        ``mean_square`` is the book's mean squared return; the denominator is the model's
        unconditional second moment, so the fitted book has scale 1 and k times it scale k. Returns 1
        when the model has no finite unconditional variance (persistence >= 1, or omega <= 0).
        """
        persistence = self.persistence
        if not (persistence < 1.0 and self.omega > 0.0):
            return 1.0
        moment = self.omega / (1.0 - persistence) + self.mu * self.mu
        return math.sqrt(mean_square / moment)

    def to_array(self) -> FloatArray:
        """``[mu, omega, alpha, gamma, beta, nu]`` (nu NaN for a Gaussian fit): a saved state's form."""
        nu = math.nan if self.nu is None else self.nu
        return np.array([self.mu, self.omega, self.alpha, self.gamma, self.beta, nu], dtype=np.float64)

    @classmethod
    def from_array(cls, values: ArrayLike) -> GarchParams:
        """The parameters :meth:`to_array` gave (``ValueError`` unless 6 values)."""
        mu, omega, alpha, gamma, beta, nu = (float(v) for v in np.asarray(values, dtype=np.float64))
        return cls(mu, omega, alpha, gamma, beta, None if math.isnan(nu) else nu)

    def variance(self, returns: ArrayLike, init: float | None = None) -> FloatArray:
        """One-step-ahead variance forecasts, length ``len(returns) + 1`` (``out[-1]``: the next bar).

        ``init`` (the forecast for bar 0) defaults to the mean of ``(r - mu)**2``; it must be finite
        and >= 0 (a negative start made every forecast negative). NaN/inf returns, or a NaN/inf or
        negative ``init``, raise ``InvalidInputError`` naming the field.
        """
        r = as_returns(returns, min_len=1)
        s0 = float(np.mean((r - self.mu) ** 2)) if init is None else check_finite_scalar(init, "init")
        if s0 < 0.0:
            raise InvalidInputError(f"init must be >= 0 (a variance), got {s0}")
        return gjr_garch_variance_kernel(r, self.mu, self.omega, self.alpha, self.gamma, self.beta, s0)


_PARAM_TOL = 1e-8  # SLSQP may leave a bound or constraint violated by rounding (alpha = -1e-15)


def check_garch_params(params: object, source: str = "params") -> GarchParams:
    """``params`` if it is a usable GJR-GARCH(1,1) model, else ``InvalidInputError`` naming the field.

    Usable: a :class:`GarchParams` whose fields are all finite, with ``omega > 0`` (a zero or
    negative intercept lets the variance reach 0 and FHS divide by it), ``alpha >= 0``,
    ``alpha + gamma >= 0`` (the news impact of a negative return), ``beta >= 0``, ``persistence <=
    1`` and, for a Student-t fit, ``nu > 2`` (a finite variance). Each inequality allows
    ``_PARAM_TOL`` of rounding, the slack ``arch``'s optimiser leaves at a bound. Used on what a
    fit returns, and on what a worker process or another thread sends back before it is installed.
    """
    if not isinstance(params, GarchParams):
        raise InvalidInputError(f"{source} must be GarchParams, got {type(params).__name__}")
    fields = {"mu": params.mu, "omega": params.omega, "alpha": params.alpha, "gamma": params.gamma}
    fields["beta"] = params.beta
    if params.nu is not None:
        fields["nu"] = params.nu
    for name, value in fields.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise InvalidInputError(f"{source}.{name} must be a finite number, got {value!r}")
    checks = (
        ("omega", params.omega > 0.0, "> 0"),
        ("alpha", params.alpha >= -_PARAM_TOL, ">= 0"),
        ("gamma", params.alpha + params.gamma >= -_PARAM_TOL, ">= -alpha"),
        ("beta", params.beta >= -_PARAM_TOL, ">= 0"),
        ("persistence", params.persistence <= 1.0 + _PARAM_TOL, "<= 1"),
        ("nu", params.nu is None or params.nu > 2.0, "> 2"),
    )
    for name, ok, rule in checks:
        if not ok:
            raise InvalidInputError(f"{source}.{name} must be {rule}, got {getattr(params, name)!r}")
    return params


def _as_dist(dist: GarchDist | str) -> GarchDist:
    try:
        return GarchDist(dist)
    except ValueError:
        raise InvalidInputError(f"dist must be one of {[m.value for m in GarchDist]}, got {dist!r}") from None


def _fit_scale(r: FloatArray) -> float:
    """The factor ``s`` the fit multiplies returns by: 100, or a power of ten that puts ``std(s * r)``
    in [0.5, 50) (e.g. 1000 for a daily std of 0.1 %, 10 for 10 %); 100 for constant returns."""
    std = float(np.std(r))
    if not std > 0.0:
        return _SCALE
    scale = _SCALE
    while scale * std < _SCALED_STD_LO:
        scale *= 10.0
    while scale * std >= _SCALED_STD_HI:
        scale /= 10.0
    return scale


def fit_gjr_garch(
    returns: ArrayLike, *, dist: GarchDist | str = GarchDist.STUDENT_T, zero_mean: bool = False
) -> GarchParams:
    """Fit GJR-GARCH(1,1) (constant or zero mean) by maximum likelihood with ``arch``.

    Parameters
    ----------
    returns : 1-D simple returns, at least 100 values (fewer cannot pin down four parameters).
    dist : innovation likelihood, Student-t (default) or normal.
    zero_mean : fix ``mu = 0`` instead of fitting a constant mean.

    The fit runs on ``s * returns`` (``s`` from :func:`_fit_scale`, so ``arch`` never sees poorly
    scaled data) and the parameters come back in return units (``mu / s``, ``omega / s**2``).
    Warnings raised during the fit are logged as ``garch_fit_warning``, never shown.

    Raises
    ------
    InvalidInputError
        ``returns`` shorter than 100, holding NaN/inf (no NaN policy: nothing is skipped), or with
        no variation to fit (all equal up to rounding; all zero with ``zero_mean``): ``arch`` then stops at
        its starting values with ``omega = 0``, which used to be returned as if fitted. Also raised
        when the fitted parameters are not a usable model (:func:`check_garch_params`, e.g. an
        ``omega`` that underflows in return units).

    Notes
    -----
    A fit whose optimiser did not converge (``arch``'s ``convergence_flag != 0``) is run once more
    from a conventional starting point (persistence 0.955, the sample variance as the long-run
    variance); of the two, the usable one (:func:`check_garch_params`) with the higher likelihood is
    returned. One that still did not converge is logged as ``garch_fit_not_converged`` and returned
    when usable (SLSQP flags fits close to the optimum too, and the caller can do no better than these
    numbers); an unusable one raises.
    """
    r = as_returns(returns, min_len=100)
    d = _as_dist(dist)
    # residual spread: about the mean, or about 0 with zero_mean. A constant series has a std of
    # the mean's rounding (~eps * |r|), not 0: spreads within 64 ulps of the largest |r| are none
    spread = float(np.sqrt(np.mean(r * r))) if zero_mean else float(np.std(r))
    if not spread > 64.0 * np.finfo(np.float64).eps * float(np.max(np.abs(r))):
        raise InvalidInputError(
            "returns have no variation (all equal"
            + (", all zero with zero_mean" if zero_mean else "")
            + "; or too small to square): a GJR-GARCH variance cannot be fitted"
        )
    from arch import arch_model  # lazy: arch is heavy and only the fit needs it

    scale = _fit_scale(r)
    model = arch_model(
        scale * r,
        mean="Zero" if zero_mean else "Constant",
        vol="GARCH",
        p=1,
        o=1,
        q=1,
        dist=d.value,
        rescale=False,  # scaled here; arch would otherwise only warn
    )
    with _FIT_LOCK, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = model.fit(disp="off", show_warning=False)
        fits = [(res, _fitted(res, scale, d, zero_mean))]
        if res.convergence_flag != 0:  # once more from a conventional start; the better usable fit wins
            start = _conventional_start(scale * r, d, zero_mean)
            again = model.fit(disp="off", show_warning=False, starting_values=start)
            fits.append((again, _fitted(again, scale, d, zero_mean)))
    for w in caught:
        log.info("garch_fit_warning", category=w.category.__name__, message=str(w.message), n_obs=r.shape[0])
    usable = [fit for fit in fits if _is_usable(fit[1])] or fits[:1]
    res, params = max(usable, key=lambda fit: _likelihood(fit[0]))
    if res.convergence_flag != 0:
        log.warning("garch_fit_not_converged", n_obs=r.shape[0], flag=int(res.convergence_flag))
    return check_garch_params(params, f"fit of returns (convergence flag {int(res.convergence_flag)})")


_START_ALPHA, _START_GAMMA, _START_BETA, _START_NU = 0.05, 0.05, 0.88, 8.0
"""The retry's starting point: the textbook daily-equity GJR-GARCH (persistence 0.955)."""


def _conventional_start(scaled: FloatArray, d: GarchDist, zero_mean: bool) -> FloatArray:
    """Starting values in ``arch``'s order (mean, omega, alpha, gamma, beta, nu): the textbook
    persistence, with ``omega`` giving the sample variance as the long-run variance.

    ``arch``'s own start is a grid search that an outlier can push to a corner (a 1000-sigma print:
    ``alpha + gamma`` at 0, the optimiser stops with a persistence above 1); from here it converges.
    """
    persistence = _START_ALPHA + 0.5 * _START_GAMMA + _START_BETA
    omega = float(np.var(scaled)) * (1.0 - persistence)
    values = [] if zero_mean else [float(np.mean(scaled))]
    values += [omega, _START_ALPHA, _START_GAMMA, _START_BETA]
    if d is GarchDist.STUDENT_T:
        values.append(_START_NU)
    return np.array(values)


def _fitted(res: Any, scale: float, d: GarchDist, zero_mean: bool) -> GarchParams:
    """The parameters of an ``arch`` fit of ``scale * returns``, in return units, with the
    optimiser's slack at the bounds removed (:func:`_onto_bounds`)."""
    p = res.params
    alpha, gamma, beta = _onto_bounds(float(p["alpha[1]"]), float(p["gamma[1]"]), float(p["beta[1]"]))
    return GarchParams(
        mu=float(p["mu"]) / scale if not zero_mean else 0.0,
        omega=float(p["omega"]) / scale**2,
        alpha=alpha,
        gamma=gamma,
        beta=beta,
        nu=float(p["nu"]) if d is GarchDist.STUDENT_T else None,
    )


_BOUND_SLACK = 1e-5
"""How far past ``alpha >= 0``, ``alpha + gamma >= 0`` and ``beta >= 0`` a fitted value may lie and be
moved onto the bound: SLSQP's constraint tolerance lets a fit with one extreme print (a 50-sigma
return in 500 bars) end at ``alpha + gamma = -1e-6``, a model whose variance a larger print could
drive negative. Moving it onto the bound changes the likelihood by nothing measurable; a value
further out is left as it is, for :func:`check_garch_params` to refuse."""


def _onto_bounds(alpha: float, gamma: float, beta: float) -> tuple[float, float, float]:
    """``(alpha, gamma, beta)`` with violations of their bounds within :data:`_BOUND_SLACK` removed."""
    if -_BOUND_SLACK <= alpha < 0.0:
        alpha = 0.0
    if -_BOUND_SLACK <= alpha + gamma < 0.0:
        gamma = 0.0 - alpha  # not -0.0 when alpha is 0
    if -_BOUND_SLACK <= beta < 0.0:
        beta = 0.0
    return alpha, gamma, beta


def _likelihood(res: Any) -> float:
    """The fit's log-likelihood; a NaN one ranks last."""
    value = float(res.loglikelihood)
    return value if not math.isnan(value) else -math.inf


def _is_usable(params: GarchParams) -> bool:
    try:
        check_garch_params(params)
    except InvalidInputError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class GarchBlock:
    """Bars ``[start, stop)`` forecast with ``params`` fitted on ``returns[:start]``.

    ``variance`` (length ``stop + 1``) is the variance path of ``returns[:stop]`` under these
    params, started from the mean of ``(r - mu)**2`` over ``returns[:start]``: ``variance[t]`` uses
    only returns before t, so nothing in a block looks ahead.
    """

    start: int
    stop: int
    params: GarchParams
    variance: FloatArray


def garch_variance_blocks(
    returns: ArrayLike,
    *,
    start: int,
    refit_every: int = 250,
    dist: GarchDist | str = GarchDist.STUDENT_T,
    zero_mean: bool = False,
) -> Iterator[GarchBlock]:
    """Walk-forward GJR-GARCH: refit on all data before each block of ``refit_every`` bars.

    Yields one :class:`GarchBlock` per refit, covering bars ``start, start + refit_every, ...``
    up to ``len(returns)``. This is the no-lookahead variance source of the FHS-GARCH backtest.
    """
    r = as_returns(returns)
    first = check_positive_int(start, "start", minimum=100)
    every = check_positive_int(refit_every, "refit_every")
    for b in range(first, r.shape[0], every):
        e = min(r.shape[0], b + every)
        params = fit_gjr_garch(r[:b], dist=dist, zero_mean=zero_mean)
        init = float(np.mean((r[:b] - params.mu) ** 2))
        yield GarchBlock(b, e, params, params.variance(r[:e], init))


class GarchFilter:
    """Streaming GJR-GARCH(1,1): refit every ``refit_every`` bars, filter every bar in between.

    Feed one return per bar with :meth:`update`; it returns the variance forecast for the next bar
    (NaN until ``min_obs`` returns have been seen and the first fit has run). On each refit the
    kept history is re-filtered under the new parameters, so the standardised residuals used by
    :meth:`var` / :meth:`cvar` (filtered historical simulation) come from one model.

    Parameters
    ----------
    refit_every : bars between fits (each fit costs ~20-50 ms with ``arch``).
    min_obs : returns needed before the first fit (>= 100).
    max_history : returns kept (the fit and the residual windows use at most this many).
    dist, zero_mean : as in :func:`fit_gjr_garch`.

    Examples
    --------
    >>> f = GarchFilter(min_obs=100)
    >>> rng = np.random.default_rng(0)
    >>> v = [f.update(x) for x in 0.01 * rng.standard_normal(150)]
    >>> bool(np.isnan(v[98])), bool(v[-1] > 0), f.var(0.99, window=120) > 0
    (True, True, True)
    """

    def __init__(
        self,
        *,
        refit_every: int = 250,
        min_obs: int = 250,
        max_history: int = 5000,
        dist: GarchDist | str = GarchDist.STUDENT_T,
        zero_mean: bool = False,
    ) -> None:
        self.refit_every = check_positive_int(refit_every, "refit_every")
        self.min_obs = check_positive_int(min_obs, "min_obs", minimum=100)
        self.max_history = check_positive_int(max_history, "max_history", minimum=self.min_obs)
        self.dist = _as_dist(dist)
        self.zero_mean = bool(zero_mean)
        self.params: GarchParams | None = None
        self._returns: deque[float] = deque(maxlen=self.max_history)
        self._variance: deque[float] = deque(maxlen=self.max_history)  # forecast made for each kept return
        self._next = float("nan")  # forecast for the next, unseen bar
        self._since_fit = 0

    @property
    def variance(self) -> float:
        """Variance forecast for the next bar (NaN before the first fit)."""
        return self._next

    @property
    def n_obs(self) -> int:
        """Number of returns kept."""
        return len(self._returns)

    def update(self, ret: float) -> float:
        """Add one return; refit when due; return the next bar's variance forecast.

        A NaN/inf ``ret`` raises ``InvalidInputError`` naming ``ret`` and changes nothing. A refit
        that fails (returns with no variation, an unusable fit) is logged (``garch_refit_failed``)
        and retried at the next bar: the previous parameters keep filtering this bar (NaN before
        the first fit), so the kept returns and their forecasts stay aligned.
        """
        x = check_finite_scalar(ret, "ret")
        self._returns.append(x)
        self._since_fit += 1
        if len(self._returns) >= self.min_obs and (
            self.params is None or self._since_fit >= self.refit_every
        ):
            try:
                self._refit()
                return self._next
            except Exception as exc:  # e.g. a flat stretch: keep the previous model, retry next bar
                log.warning("garch_refit_failed", error=repr(exc), n_obs=len(self._returns))
        if self.params is not None:
            p = self.params
            self._variance.append(self._next)
            step = gjr_garch_variance_kernel(
                np.array([x]), p.mu, p.omega, p.alpha, p.gamma, p.beta, self._next
            )
            self._next = float(step[1])
        return self._next

    def _refit(self) -> None:
        r = np.fromiter(self._returns, dtype=np.float64, count=len(self._returns))
        self.params = fit_gjr_garch(r, dist=self.dist, zero_mean=self.zero_mean)
        path = self.params.variance(r)
        self._variance = deque(path[:-1].tolist(), maxlen=self.max_history)
        self._next = float(path[-1])
        self._since_fit = 0
        log.debug("garch_refit", n_obs=r.shape[0], persistence=round(self.params.persistence, 4))

    def _window(self, window: int) -> tuple[FloatArray, FloatArray, float]:
        if self.params is None:
            raise InvalidInputError(f"GarchFilter needs {self.min_obs} returns before its first forecast")
        w = min(check_positive_int(window, "window", minimum=2), len(self._variance))
        r = np.fromiter(self._returns, dtype=np.float64)[-w:]
        v = np.append(np.fromiter(self._variance, dtype=np.float64)[-w:], self._next)
        return r, v, self.params.mu

    def var(self, alpha: float = 0.99, window: int = 500) -> float:
        """Filtered historical simulation VaR for the next bar over the last ``window`` residuals."""
        r, v, mu = self._window(window)
        return filtered_historical_var(r, v, alpha, mu)

    def cvar(self, alpha: float = 0.99, window: int = 500) -> float:
        """Filtered historical simulation CVaR for the next bar over the last ``window`` residuals."""
        r, v, mu = self._window(window)
        return filtered_historical_cvar(r, v, alpha, mu)
