"""RiskTracker: streaming portfolio VaR/CVaR, EWMA correlation and correlation-shock detection.

The tracker is fed one return vector per bar and answers per bar, without recomputing history:

- a ring buffer of the last ``max(window, fhs_window)`` rows feeds the VaR/CVaR kernels of
  ``measures.var`` (historical, Gaussian, Cornish-Fisher on the last ``window`` rows; filtered
  historical simulation on up to ``fhs_window`` rows, with an EWMA or a GJR-GARCH variance
  filter; the GARCH fit imports ``arch`` lazily, on the first ``fhs_garch`` query);
- a RiskMetrics EWMA covariance state (``measures.covariance``) gives the fast correlation matrix
  and its average pairwise correlation in O(n^2) per bar;
- a slow EWMA of that average is the baseline; the ``correlation_shock`` flag rises when the fast
  average exceeds the baseline by ``shock_margin`` and clears by itself once the excess falls below
  ``clear_margin`` (hysteresis, so it does not flap at the boundary); with
  ``shock_noise_multiple`` both margins rise to that many standard deviations of the average's
  sampling noise, which is large for few pairs (``shock_noise_floor``). When the pairs averaged change
  (an asset removed, a late joiner counted after its warm-up), the baseline moves with the average
  so that the excess of the pairs counted before is kept (diluted by their share of the pairs
  counted now): a shock is a rise of the correlations, not a change of the pair set.

The ring buffer stores every row twice (at ``i`` and ``i + capacity``), so the last ``m`` rows are
always one contiguous, chronologically ordered slice: no copy, no wrap-around logic per query.

One module because the tracker's ring buffer, EWMA state and shock flag are updated together by one
``update`` per bar and read by every query.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

from advanced_risk.config import TrackerConfig
from advanced_risk.errors import InvalidInputError
from advanced_risk.measures.covariance import average_pairwise_correlation
from advanced_risk.measures.fhs_fused import fhs_garch_kernel, mean_square_kernel
from advanced_risk.measures.kernels import (
    covariance_to_correlation_kernel,
    ewma_variance_kernel,
    fhs_kernel,
    floored_variance_kernel,
    historical_kernel,
    var_cvar_kernel,
)
from advanced_risk.measures.observe_kernels import tracker_step_kernel
from advanced_risk.measures.validation import (
    BoolArray,
    FloatArray,
    IntArray,
    as_weights,
    asset_indices,
    check_alpha,
    check_positive_int,
)
from advanced_risk.measures.var_method import VaRMethod, as_var_method

if TYPE_CHECKING:
    from advanced_risk.risk.garch import GarchParams

__all__ = ["RiskSnapshot", "RiskTracker", "next_shock_state", "shock_noise_floor"]

_DEFAULT_CONFIG = TrackerConfig()  # frozen, so one shared default instance is safe


def _check_state(state: Mapping[str, np.ndarray], buffer: np.ndarray, capacity: int) -> None:
    """Refuse a saved tracker state whose arrays do not fit each other or the capacity."""
    n = buffer.shape[1] if buffer.ndim == 2 else 0
    shapes = {
        "buffer": ((2 * capacity, n), buffer.shape),
        "ewma_state": ((n, n), np.shape(state["ewma_state"])),
        "age": ((n,), np.shape(state["age"])),
        "ints": ((4,), np.shape(state["ints"])),
        "floats": ((5,), np.shape(state["floats"])),
        "flags": ((3,), np.shape(state["flags"])),
        "garch": ((6,), np.shape(state["garch"])),
    }
    for name, (want, got) in shapes.items():
        if n < 1 or want != got:
            raise ValueError(f"{name} has shape {got}, expected {want} (saved with other settings?)")
    if not 0 <= int(state["ints"][0]) < capacity:
        raise ValueError(f"ring position {int(state['ints'][0])} outside [0, {capacity})")
    for name in ("buffer", "ewma_state"):  # the tracker never holds a non-finite return or moment
        if not np.isfinite(np.asarray(state[name], dtype=np.float64)).all():
            raise ValueError(f"{name} holds a value that is not finite")
    if (np.asarray(state["age"]) < 0).any() or int(state["ints"][1]) < 0:
        raise ValueError("age and the bar count must be >= 0")


_GARCH_MIN_OBS = 100  # fit_gjr_garch's minimum: fewer bars cannot pin down four parameters


@dataclass(frozen=True, slots=True)
class RiskSnapshot:
    """What the tracker knows about one portfolio after the latest bar."""

    var: float
    """Value at Risk, a positive loss fraction."""
    cvar: float
    """Conditional VaR (expected shortfall), a positive loss fraction, >= var for coherent methods."""
    method: VaRMethod
    """The estimator that produced var and cvar."""
    alpha: float
    """Confidence level of var and cvar."""
    average_correlation: float
    """Average pairwise EWMA correlation (NaN while undefined)."""
    correlation_shock: bool
    """Whether the correlation-shock flag is up."""
    n_observations: int
    """Bars seen so far."""


def next_shock_state(shock: bool, excess: float, shock_margin: float, clear_margin: float) -> bool:
    """The hysteresis rule of the correlation-shock flag.

    Rises when ``excess > shock_margin``; once up, stays up until ``excess < clear_margin``. Between
    the two margins the flag keeps its state, so noise around either margin cannot make it flap.

    Examples
    --------
    >>> next_shock_state(False, 0.10, 0.15, 0.075), next_shock_state(True, 0.10, 0.15, 0.075)
    (False, True)
    """
    return excess >= clear_margin if shock else excess > shock_margin


def shock_noise_floor(ewma_lambda: float, pairs: int) -> float:
    """Sampling standard deviation of the average of ``pairs`` EWMA correlations of independent
    series: ``sqrt((1 - lambda) / ((1 + lambda) * pairs))`` (inf without a pair).

    One EWMA correlation of independent series varies with the root of the sum of its squared
    weights, ``sqrt((1 - lambda) / (1 + lambda))`` (0.176 at lambda 0.94); the pairs' sample
    correlations are uncorrelated when the true ones are 0, so their average divides it by
    ``sqrt(pairs)``.

    Examples
    --------
    >>> round(shock_noise_floor(0.94, 3), 3), round(shock_noise_floor(0.94, 190), 3)
    (0.102, 0.013)
    """
    if pairs < 1:
        return math.inf
    return math.sqrt((1.0 - ewma_lambda) / ((1.0 + ewma_lambda) * pairs))


class RiskTracker:
    """Streaming risk of an ``n_assets`` universe: VaR/CVaR, EWMA correlation, correlation shocks.

    Parameters
    ----------
    n_assets : number of assets (length of every return vector and weight vector), >= 1 (with one
        asset there are no pairs: the average correlation is NaN).
    config : window lengths, default method and level, decays and shock margins.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> tracker = RiskTracker(3, TrackerConfig(window=50, method=VaRMethod.HISTORICAL))
    >>> for row in rng.normal(0.0, 0.01, size=(60, 3)):
    ...     tracker.update(row)
    >>> tracker.ready, tracker.n_observations
    (True, 60)
    >>> 0.0 < tracker.var([0.5, 0.3, 0.2]) < tracker.cvar([0.5, 0.3, 0.2])
    True
    """

    def __init__(
        self, n_assets: int, config: TrackerConfig = _DEFAULT_CONFIG, *, auto_refit: bool = True
    ) -> None:
        if not isinstance(config, TrackerConfig):
            raise InvalidInputError(f"config must be a TrackerConfig, got {type(config).__name__}")
        self._n = check_positive_int(n_assets, "n_assets", minimum=1)
        self._config = config
        self._method = VaRMethod(config.method)
        self._capacity = max(config.window, config.fhs_window)
        self._buffer = np.zeros((2 * self._capacity, self._n))
        self._pos = 0  # next slot to write, in [0, capacity)
        self._n_obs = 0
        self._ewma_state = np.zeros((self._n, self._n))  # unnormalised S_t; the normaliser below
        self._ewma_weight = 0.0  # c_t = 1 - lam^t
        self._age = np.zeros(self._n, dtype=np.int64)  # bars seen per asset (since it joined)
        self._late_joiners = False  # an asset joined after the first bar: per-pair normalisers
        self._counted_from: set[int] = set()  # bars at which a late joiner's pairs start to count
        self._fast_correlation = math.nan
        self._baseline = math.nan
        self._shock = False
        self._noise_pairs = -1  # the pairs the shock margins were last scaled for (-1: none yet)
        self._noise_margins = (config.shock_margin, config.clear_margin)  # scaled for _noise_pairs
        self._garch: GarchParams | None = None  # fitted lazily, on the first fhs_garch query
        self._garch_fit_bar: int | None = None
        self._auto_refit = bool(auto_refit)  # False: fits are installed from outside (off the hot path)

    # ----------------------------------------------------------------------------------- feeding
    def update(self, returns_row: ArrayLike) -> None:
        """Add one bar: a vector of simple returns, one per asset. O(n^2).

        Each return must be finite with ``|r| <= MAX_ABS_RETURN`` (1e6; ``measures.validation``):
        a larger one is a feed error whose square would swamp (above ~1.3e154: overflow to inf) the
        EWMA covariance for hundreds of bars. A refused row raises ``InvalidInputError`` naming the
        index and leaves the tracker unchanged.
        """
        from advanced_risk.measures.validation import MAX_ABS_RETURN  # a cached-module lookup, ~0.1 us

        try:
            row = np.asarray(returns_row, dtype=np.float64)
        except OverflowError as exc:  # a Python int beyond the float range
            raise InvalidInputError("returns_row must be finite, got a number too large for a float") from exc
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(f"returns_row must be numeric, got {returns_row!r:.60}") from exc
        if row.shape != (self._n,):
            raise InvalidInputError(f"returns_row must have shape ({self._n},), got {row.shape}")
        cfg = self._config
        lam = cfg.ewma_lambda
        # the check, the two ring-buffer writes, the ages, the warm-up mask and the EWMA step in one
        # kernel (measures.observe_kernels: the same arithmetic, bit for bit); nothing is written
        # when a return is refused. A late joiner's correlations count once it has
        # correlation_warmup bars of its own (before, a handful of bars make them noise that would
        # flag a correlation shock).
        bad, fast = tracker_step_kernel(
            row, self._buffer, self._pos, self._capacity, self._ewma_state, lam, self._age,
            self._n_obs + 1, cfg.correlation_warmup, MAX_ABS_RETURN,
        )  # fmt: skip
        if bad >= 0:
            if not math.isfinite(row[bad]):
                raise InvalidInputError(f"returns_row must be finite, got {row[bad]} at index {bad}")
            raise InvalidInputError(
                f"returns_row must be within [-{MAX_ABS_RETURN:g}, {MAX_ABS_RETURN:g}] (a return is "
                f"a fraction; a larger one is a feed error), got {row[bad]:g} at index {bad}"
            )
        self._pos = (self._pos + 1) % self._capacity
        self._n_obs += 1
        self._fast_correlation = float(fast)
        self._ewma_weight = lam * self._ewma_weight + (1.0 - lam)
        self._count_new_pairs()
        self._update_shock(self._fast_correlation)

    def _count_new_pairs(self) -> None:
        """At the bar a late joiner's pairs start to count in the average correlation (its age
        reaches ``correlation_warmup``), move the baseline by the jump they alone make."""
        if not self._counted_from or self._n_obs not in self._counted_from:
            return
        self._counted_from.discard(self._n_obs)
        new = (self._age == self._config.correlation_warmup) & (self._age != self._n_obs)
        if new.any():  # still there (not removed meanwhile)
            before = self._counted() & ~new
            share = _pairs(self._with_variance(before)) / max(_pairs(self._with_variance(self._counted())), 1)
            self._rebase(self._fast_correlation, self._masked_correlation(before), share)

    def _counted(self) -> BoolArray:
        """The assets whose pairs the average correlation counts (``tracker_step_kernel``'s rule)."""
        counted: BoolArray = (self._age >= self._config.correlation_warmup) | (self._age == self._n_obs)
        return counted

    def _with_variance(self, mask: BoolArray) -> int:
        """How many assets of ``mask`` have a positive EWMA variance (those the average counts)."""
        return int((mask & (np.diagonal(self._ewma_state) > 0.0)).sum())

    def _masked_correlation(self, mask: BoolArray) -> float:
        """The average pairwise correlation of the EWMA state over the assets in ``mask`` (NaN with
        fewer than two); the kernel's definition, recomputed only when the universe changes."""
        if int(mask.sum()) < 2:
            return math.nan
        corr = covariance_to_correlation_kernel(self._ewma_state[np.ix_(mask, mask)])
        return float(np.clip(average_pairwise_correlation(corr), -1.0, 1.0))

    def _rebase(self, new: float, old: float, share: float = 1.0) -> None:
        """Move the baseline when the pairs averaged change: ``old`` is the average correlation of the
        pairs counted before, ``new`` of those counted now, on the same state. The excess of the
        pairs counted before (``old - baseline``) is kept, diluted by ``share``, their share of the
        pairs counted now (1 after a removal: the excess is taken as spread over every pair; below 1
        when a joiner's pairs start to count, at no excess of their own). Without pairs on either
        side the baseline restarts (where the next warm-up ends) and the flag is lowered: no pairs,
        no correlation shock."""
        if math.isnan(self._baseline):
            return
        if math.isnan(new) or math.isnan(old):
            self._baseline, self._shock = math.nan, False
        else:
            self._baseline = new - (old - self._baseline) * share

    def _update_shock(self, fast: float) -> None:
        cfg = self._config
        if self._n_obs < cfg.correlation_warmup or math.isnan(fast):
            return
        if math.isnan(self._baseline):
            self._baseline = fast  # the baseline starts where the warm-up ends
            return
        shock_margin, clear_margin = self._shock_margins()
        self._shock = next_shock_state(self._shock, fast - self._baseline, shock_margin, clear_margin)
        self._baseline = cfg.baseline_lambda * self._baseline + (1.0 - cfg.baseline_lambda) * fast

    def _shock_margins(self) -> tuple[float, float]:
        """``(shock_margin, clear_margin)`` raised to ``shock_noise_multiple`` x the noise floor of the
        pairs the average counts (:func:`shock_noise_floor`), in proportion."""
        cfg = self._config
        if cfg.shock_noise_multiple == 0.0:
            return cfg.shock_margin, cfg.clear_margin
        if self._noise_pairs == self._n * (self._n - 1) // 2:  # every pair counts: the margins stand
            return self._noise_margins
        self._noise_pairs = _pairs(self._with_variance(self._counted()))
        floor = cfg.shock_noise_multiple * shock_noise_floor(cfg.ewma_lambda, self._noise_pairs)
        scale = max(1.0, floor / cfg.shock_margin)
        self._noise_margins = (cfg.shock_margin * scale, cfg.clear_margin * scale)
        return self._noise_margins

    # ---------------------------------------------------------------------------------- state
    @property
    def n_assets(self) -> int:
        """Number of assets tracked."""
        return self._n

    @property
    def config(self) -> TrackerConfig:
        """The tracker's settings."""
        return self._config

    @property
    def n_observations(self) -> int:
        """Bars fed so far."""
        return self._n_obs

    @property
    def ready(self) -> bool:
        """Whether VaR/CVaR can be answered: at least ``config.window`` bars seen."""
        return self._n_obs >= self._config.window

    @property
    def correlation_shock(self) -> bool:
        """Fast average correlation above its slow baseline (with hysteresis); False during warm-up."""
        return self._shock

    @property
    def correlation_baseline(self) -> float:
        """Slow EWMA of the average pairwise correlation (NaN during warm-up)."""
        return self._baseline

    @property
    def garch_params(self) -> GarchParams | None:
        """GJR-GARCH parameters of the last fhs_garch fit (None before the first fhs_garch query)."""
        return self._garch

    @property
    def garch_refit_due(self) -> bool:
        """Whether an fhs_garch query would (re)fit now: no fit yet, or ``garch_refit_every`` bars passed."""
        if self._n_obs < _GARCH_MIN_OBS:
            return False
        return (
            self._garch_fit_bar is None or self._n_obs - self._garch_fit_bar >= self._config.garch_refit_every
        )

    def fhs_returns(self, weights: ArrayLike) -> FloatArray:
        """Portfolio returns over the FHS residual window (a copy): the data an fhs_garch fit uses."""
        w = self._as_weights(weights)
        end = self._pos + self._capacity
        out: FloatArray = self._buffer[end - min(self._n_obs, self._config.fhs_window) : end] @ w
        return out

    def install_garch(self, params: GarchParams, fit_bar: int | None = None) -> None:
        """Use GJR-GARCH parameters fitted elsewhere (e.g. on a worker thread) from now on.

        With ``auto_refit=False`` this is how a latency-critical owner (the manager) keeps the ~25 ms
        fit and the one-off ~1 s ``arch`` import off its hot path: it fits ``fhs_returns`` in the
        background when :attr:`garch_refit_due` and installs the result; queries in between use the
        previous parameters.
        """
        self._garch = params
        self._garch_fit_bar = self._n_obs if fit_bar is None else int(fit_bar)

    def average_correlation(self) -> float:
        """Average pairwise EWMA correlation; undefined pairs skipped; NaN before any is defined."""
        return self._fast_correlation

    def correlation(self) -> FloatArray:
        """EWMA correlation matrix (n, n); zero-variance assets have NaN rows and columns."""
        return covariance_to_correlation_kernel(self._ewma_state)

    def covariance(self) -> FloatArray:
        """EWMA covariance matrix (n, n) (RiskMetrics, zero mean; zeros before the first bar).

        An asset that joined later (:meth:`add_assets`) contributes only the bars it was seen: the
        entry (i, j) is normalised by ``1 - lam**min(age_i, age_j)``, the weight of the bars both
        assets were seen, so its variance is unbiased from its first bar on.
        """
        if self._n_obs == 0:
            return np.zeros((self._n, self._n))
        return self._ewma_state / self._normaliser()

    def portfolio_variance(self, weights: ArrayLike) -> float:
        """``w' Sigma w`` with the EWMA covariance of :meth:`covariance` (no (n, n) temporary when no
        asset joined late)."""
        w = self._as_weights(weights)
        if self._n_obs == 0:
            return 0.0
        if self._late_joiners:
            return float(w @ self.covariance() @ w)
        return float(w @ (self._ewma_state @ w)) / self._ewma_weight

    def _normaliser(self) -> FloatArray | float:
        if not self._late_joiners:
            return self._ewma_weight
        lam = self._config.ewma_lambda
        youngest = np.minimum.outer(self._age, self._age)
        if lam ** int(self._age.min()) < 1e-15:  # every joiner's weight has converged: one scalar
            self._late_joiners = False
            return self._ewma_weight
        return np.where(youngest > 0, 1.0 - lam**youngest, 1.0)

    @property
    def asset_observations(self) -> IntArray:
        """Bars seen per asset since it joined (read-only view, int64)."""
        view = self._age.view()
        view.flags.writeable = False
        return view

    # ------------------------------------------------------------------------------ the universe
    def add_assets(self, count: int) -> None:
        """Append ``count`` assets (last columns). Their history before now reads as zero returns.

        Before they have ``window`` bars of their own, VaR/CVaR of a book that holds them see zero
        returns for the bars before they joined (the caller says so; the engine reports it); the
        EWMA covariance is normalised per pair (see :meth:`covariance`).
        """
        k = check_positive_int(count, "count")
        self._buffer = np.hstack([self._buffer, np.zeros((self._buffer.shape[0], k))])
        state = np.zeros((self._n + k, self._n + k))
        state[: self._n, : self._n] = self._ewma_state
        self._ewma_state = state
        self._age = np.append(self._age, np.zeros(k, dtype=np.int64))
        self._n += k
        self._late_joiners = self._late_joiners or self._n_obs > 0
        self._noise_pairs = -1
        if self._n_obs > 0:
            self._counted_from.add(self._n_obs + self._config.correlation_warmup)

    def remove_assets(self, indices: ArrayLike) -> None:
        """Drop the assets at ``indices`` (their columns, covariance rows and columns).

        ``indices`` are integer positions in ``[0, n_assets)``, each at most once, naming some but
        not all of the assets; an empty sequence removes nothing. Anything else (a float such as
        0.7, which would be truncated to asset 0, a bool, text, a repeated or out-of-range index)
        raises ``InvalidInputError`` naming ``indices``, before anything is changed.
        """
        idx = _asset_indices(indices, self._n)
        keep = np.setdiff1d(np.arange(self._n), idx)
        self._buffer = np.ascontiguousarray(self._buffer[:, keep])
        self._ewma_state = np.ascontiguousarray(self._ewma_state[np.ix_(keep, keep)])
        self._age = self._age[keep]
        self._n = int(keep.size)
        self._noise_pairs = -1
        if self._n_obs > 0 and idx.size:
            old, self._fast_correlation = self._fast_correlation, self._masked_correlation(self._counted())
            self._rebase(self._fast_correlation, old)

    # ---------------------------------------------------------------------------------- saving
    def state(self) -> dict[str, FloatArray | IntArray]:
        """Everything the tracker has learnt, as named NumPy arrays (copies; scalars as 0-d arrays):
        what :meth:`from_state` restores exactly, with the same settings. A restart that keeps it
        (the manager's snapshot at ``close``) answers the next bar as the running tracker would."""
        garch = self._garch
        params = np.full(6, np.nan) if garch is None else garch.to_array()
        return {
            "buffer": self._buffer.copy(),
            "ewma_state": self._ewma_state.copy(),
            "age": self._age.copy(),
            "counted_from": np.array(sorted(self._counted_from), dtype=np.int64),
            "ints": np.array(
                [
                    self._pos,
                    self._n_obs,
                    self._noise_pairs,
                    -1 if self._garch_fit_bar is None else self._garch_fit_bar,
                ],
                dtype=np.int64,
            ),
            "floats": np.array(
                [self._ewma_weight, self._fast_correlation, self._baseline, *self._noise_margins],
                dtype=np.float64,
            ),
            "flags": np.array([self._late_joiners, self._shock, garch is not None], dtype=np.int64),
            "garch": params,
        }

    @classmethod
    def from_state(
        cls,
        state: Mapping[str, np.ndarray],
        config: TrackerConfig = _DEFAULT_CONFIG,
        *,
        auto_refit: bool = True,
    ) -> RiskTracker:
        """The tracker :meth:`state` saved, with ``config`` (the settings it was saved with).

        Raises
        ------
        InvalidInputError
            ``state`` lacks an array, or its arrays do not fit each other or ``config`` (another
            ``window`` / ``fhs_window``): the message names the array.
        """
        try:
            buffer = np.array(state["buffer"], dtype=np.float64)
            n = buffer.shape[1] if buffer.ndim == 2 else 0
            tracker = cls(max(n, 1), config, auto_refit=auto_refit)
            _check_state(state, buffer, tracker._capacity)
            pos, n_obs, noise_pairs, fit_bar = (int(v) for v in state["ints"])
            weight, fast, baseline, shock_margin, clear_margin = (float(v) for v in state["floats"])
            late, shock, fitted = (bool(v) for v in state["flags"])
            garch = [float(v) for v in state["garch"]]
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise InvalidInputError(f"tracker state is not one RiskTracker.state() gives: {exc!r}") from None
        tracker._buffer, tracker._pos, tracker._n_obs = buffer, pos, n_obs
        tracker._ewma_state = np.array(state["ewma_state"], dtype=np.float64)
        tracker._ewma_weight, tracker._age = weight, np.array(state["age"], dtype=np.int64)
        tracker._late_joiners, tracker._counted_from = late, {int(v) for v in state["counted_from"]}
        tracker._fast_correlation, tracker._baseline, tracker._shock = fast, baseline, shock
        tracker._noise_pairs, tracker._noise_margins = noise_pairs, (shock_margin, clear_margin)
        if fitted:
            from advanced_risk.risk.garch import GarchParams  # as the module's TYPE_CHECKING import

            tracker.install_garch(GarchParams.from_array(garch), None if fit_bar < 0 else fit_bar)
        return tracker

    def recent_returns(self, n_rows: int | None = None) -> FloatArray:
        """The last ``n_rows`` bars (default ``window``, capped at what was seen), oldest first; a view.

        ``n_rows`` is None or an integer >= 0 (0 gives an empty ``(0, n_assets)`` array: the last
        zero bars); a negative number, a float, a bool or text raises ``InvalidInputError`` naming
        ``n_rows``.
        """
        if n_rows is None:
            rows = self._config.window
        elif type(n_rows) is int and n_rows >= 0:  # the engine's call, without the ABC checks
            rows = n_rows
        else:
            rows = check_positive_int(n_rows, "n_rows", minimum=0)
        m = min(rows, self._n_obs, self._capacity)
        end = self._pos + self._capacity
        return self._buffer[end - m : end]

    # ---------------------------------------------------------------------------------- queries
    def var(
        self, weights: ArrayLike, method: VaRMethod | str | None = None, alpha: float | None = None
    ) -> float:
        """Portfolio VaR of the next bar, a positive loss fraction.

        Parameters
        ----------
        weights : one weight per asset (cash, if any, is implied and returns 0).
        method : historical, gaussian, cornish_fisher (last ``window`` bars), fhs_ewma or fhs_garch
            (last ``min(n_observations, fhs_window)`` bars); default ``config.method``. fhs_ewma
            filters with ``config.ewma_lambda``; fhs_garch with GJR-GARCH(1,1) parameters fitted
            (``risk.garch``, Student-t) on the queried portfolio's returns at the first query and
            again once ``config.garch_refit_every`` bars have passed; queries in between, for any
            weights, reuse those parameters (filtered historical simulation is unchanged by a
            constant rescaling of the variance path, so mainly the dynamics carry over).
        alpha : confidence level in (0, 1); default ``config.alpha`` (0.99 when that is None).
        """
        return self._pair(weights, method, alpha)[0]

    def cvar(
        self, weights: ArrayLike, method: VaRMethod | str | None = None, alpha: float | None = None
    ) -> float:
        """Portfolio CVaR of the next bar, a positive loss fraction; arguments as :meth:`var`."""
        return self._pair(weights, method, alpha)[1]

    def var_cvar(
        self, weights: ArrayLike, method: VaRMethod | str | None = None, alpha: float | None = None
    ) -> tuple[float, float]:
        """Portfolio ``(VaR, CVaR)`` of the next bar from one pass; arguments as :meth:`var`."""
        var, cvar, _, _ = self._pair(weights, method, alpha)
        return var, cvar

    def snapshot(
        self, weights: ArrayLike, method: VaRMethod | str | None = None, alpha: float | None = None
    ) -> RiskSnapshot:
        """VaR, CVaR, average correlation and the shock flag in one frozen record."""
        var, cvar, m, a = self._pair(weights, method, alpha)
        return RiskSnapshot(
            var=var,
            cvar=cvar,
            method=m,
            alpha=a,
            average_correlation=self._fast_correlation,
            correlation_shock=self._shock,
            n_observations=self._n_obs,
        )

    def _pair(
        self, weights: ArrayLike, method: VaRMethod | str | None, alpha: float | None
    ) -> tuple[float, float, VaRMethod, float]:
        cfg = self._config
        m = self._method if method is None else as_var_method(method)
        a = check_alpha(alpha) if alpha is not None else 0.99 if cfg.alpha is None else cfg.alpha
        w = self._as_weights(weights)
        if self._n_obs < cfg.window:
            raise InvalidInputError(
                f"RiskTracker needs {cfg.window} bars before VaR/CVaR, has {self._n_obs} (check .ready first)"
            )
        end = self._pos + self._capacity  # the newest row sits at end - 1
        if m is VaRMethod.FHS_EWMA or m is VaRMethod.FHS_GARCH:
            p = self._buffer[end - min(self._n_obs, cfg.fhs_window) : end] @ w
            var, cvar = self._fhs_pair(p, m, a)
        elif m is VaRMethod.HISTORICAL:
            var, cvar = historical_kernel(self._buffer[end - cfg.window : end] @ w, a)
        else:
            var, cvar = var_cvar_kernel(self._buffer[end - cfg.window : end] @ w, a, m)
        return float(var), float(cvar), m, a

    def _as_weights(self, weights: ArrayLike) -> FloatArray:
        """``as_weights`` with a fast path for the common case (a finite float vector of the right size)."""
        if (
            isinstance(weights, np.ndarray)
            and weights.dtype == np.float64
            and weights.shape == (self._n,)
            and math.isfinite(float(weights @ weights))
        ):
            return weights
        return as_weights(weights, self._n)

    def _fhs_pair(self, p: FloatArray, method: VaRMethod, alpha: float) -> tuple[float, float]:
        # np.mean(p * p) and, for fhs_garch, GarchParams.variance's filter in fused kernels with the
        # same arithmetic and summation order (measures.fhs_fused; tests/unit/test_decide_fast_paths.py)
        mean_square = float(mean_square_kernel(p))
        if mean_square == 0.0:  # all-zero portfolio returns (e.g. all cash): nothing to lose
            return 0.0, 0.0
        if method is VaRMethod.FHS_EWMA:
            variance = ewma_variance_kernel(p, self._config.ewma_lambda, mean_square)
            return fhs_kernel(p, floored_variance_kernel(variance, mean_square), 0.0, alpha)
        params = self._garch_params_for(p)
        # the fit is of one book (equal weight); filtering another book's returns with its constant
        # omega would make VaR(k * book) != k * VaR(book): a book a tenth the size read as a tenth
        # as volatile plus omega (measured: 49 breaches against 20 expected for the demo's small
        # books). So the book is rescaled to the fit's unconditional scale, filtered, scaled back.
        scale = params.book_scale(mean_square)
        var, cvar, ok = fhs_garch_kernel(
            p, scale, params.mu, params.omega, params.alpha, params.gamma, params.beta, alpha
        )
        if not ok:  # a rescaled return as_returns refuses: the validating path raises as before
            q = p / scale
            var, cvar = fhs_kernel(q, params.variance(q), params.mu, alpha)
        return var * scale, cvar * scale

    def _garch_params_for(self, p: FloatArray) -> GarchParams:
        """GJR-GARCH parameters, refitted on ``p`` when ``garch_refit_every`` bars have passed."""
        due = (
            self._garch_fit_bar is None or self._n_obs - self._garch_fit_bar >= self._config.garch_refit_every
        )
        if self._garch is not None and not self._auto_refit:
            return self._garch
        if due or self._garch is None:
            if not self._auto_refit:
                raise InvalidInputError(
                    "fhs_garch has no installed fit yet (auto_refit=False: see install_garch)"
                )
            if p.shape[0] < _GARCH_MIN_OBS:
                raise InvalidInputError(
                    f"method fhs_garch needs {_GARCH_MIN_OBS} bars for its fit, has {p.shape[0]}"
                )
            from advanced_risk.risk.garch import fit_gjr_garch  # lazy: the fit imports arch (~1 s)

            self._garch = fit_gjr_garch(p)
            self._garch_fit_bar = self._n_obs
        return self._garch


def _pairs(m: int) -> int:
    """Pairs among ``m`` assets."""
    return m * (m - 1) // 2


def _asset_indices(indices: ArrayLike, n_assets: int) -> IntArray:
    """``indices`` as :func:`~advanced_risk.measures.validation.asset_indices`, naming some but not
    all of the assets (a tracker keeps at least one)."""
    idx = asset_indices(indices, n_assets)
    if idx.size >= n_assets:
        raise InvalidInputError(
            f"indices must name some but not all of the {n_assets} assets, got {idx.tolist()!r:.60}"
        )
    return idx
