"""Seeded return generators for the portfolio environment: one interface, three markets.

Every market answers ``sample_path(rng, n_steps) -> (n_steps, n_assets)`` daily *simple* returns
(each ``> -1``), drawn only from the ``numpy.random.Generator`` it is given. The same generator
state therefore gives the same path (common random numbers for evaluation), and the environment
owns the generator, so seeding the environment seeds the market.

The environment asks for ``history_length + max_steps`` rows per episode: the first rows are the
warm-up history its observation window looks back on, the rest are the returns the episode earns.

- :class:`CorrelatedGBM`: geometric Brownian motion with constant annualised drifts, volatilities
  and a correlation matrix.
- :class:`RegimeSwitchingMarket`: a Markov chain over bull / bear / crisis, each regime with its own
  drift, volatility and (equicorrelated) correlation.
- :class:`HistoricalReplay`: windows of the bundled 20 S&P 500 stocks from random start dates,
  restricted to a train or a test date split.

:func:`make_market` builds the one an :class:`~advanced_risk.config.EnvConfig` names.
"""

from __future__ import annotations

from typing import Final, Protocol, runtime_checkable

import numpy as np
from numpy.typing import ArrayLike, NDArray

from advanced_risk.config import EnvConfig, MarketKind
from advanced_risk.errors import InvalidInputError
from advanced_risk.measures.validation import PERIODS_PER_YEAR, FloatArray

__all__ = [
    "DEFAULT_TRANSITIONS",
    "REGIMES",
    "CorrelatedGBM",
    "FixedPath",
    "HistoricalReplay",
    "MarketModel",
    "RegimeSwitchingMarket",
    "checked_path",
    "make_market",
]


REGIMES: Final = ("bull", "bear", "crisis")
"""Regime names of :class:`RegimeSwitchingMarket`, in the order of the transition matrix."""

DEFAULT_TRANSITIONS: Final = np.array(
    [
        [0.990, 0.008, 0.002],  # bull: expected stay 100 days
        [0.020, 0.970, 0.010],  # bear: expected stay ~33 days
        [0.030, 0.070, 0.900],  # crisis: expected stay 10 days
    ]
)
"""Daily regime transition probabilities, row = today's regime, column = tomorrow's (bull, bear,
crisis). The stationary distribution is about 64 % bull, 30 % bear, 6 % crisis."""


@runtime_checkable
class MarketModel(Protocol):
    """What the environment needs from a market: a width and a seeded path sampler."""

    @property
    def n_assets(self) -> int:
        """Number of assets (columns of every sampled path)."""
        ...

    def sample_path(self, rng: np.random.Generator, n_steps: int) -> FloatArray:
        """``(n_steps, n_assets)`` simple returns drawn from ``rng`` only (same state, same path)."""
        ...


def _vector(values: ArrayLike, name: str, n: int, *, positive: bool = False) -> FloatArray:
    """A finite length-``n`` float vector (a scalar is broadcast)."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim == 0:
        arr = np.full(n, float(arr))
    if arr.shape != (n,):
        raise InvalidInputError(f"{name} must be a scalar or have shape ({n},), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise InvalidInputError(f"{name} must be finite, got {arr.tolist()}")
    if positive and not np.all(arr > 0):
        raise InvalidInputError(f"{name} must be > 0, got {arr.tolist()}")
    return arr


def _cholesky(correlation: ArrayLike, n: int, name: str = "correlation") -> FloatArray:
    """Cholesky factor of a valid correlation matrix; a scalar means equicorrelation ``rho``."""
    corr = np.asarray(correlation, dtype=np.float64)
    if corr.ndim == 0:
        rho = float(corr)
        if not -1.0 / max(n - 1, 1) < rho < 1.0 and n > 1:
            raise InvalidInputError(f"{name} (equicorrelation) must be in (-1/(n-1), 1), got {rho}")
        corr = np.full((n, n), rho)
        np.fill_diagonal(corr, 1.0)
    if corr.shape != (n, n):
        raise InvalidInputError(f"{name} must be a scalar or have shape ({n}, {n}), got {corr.shape}")
    if not (np.all(np.isfinite(corr)) and np.allclose(corr, corr.T) and np.allclose(np.diag(corr), 1.0)):
        raise InvalidInputError(f"{name} must be a finite symmetric matrix with a unit diagonal")
    try:
        chol = np.asarray(np.linalg.cholesky(corr), dtype=np.float64)
    except np.linalg.LinAlgError as exc:
        raise InvalidInputError(f"{name} must be positive definite") from exc
    return chol


def _check_steps(n_steps: int) -> int:
    if not isinstance(n_steps, int | np.integer) or n_steps < 1:
        raise InvalidInputError(f"n_steps must be an integer >= 1, got {n_steps!r}")
    return int(n_steps)


class CorrelatedGBM:
    """Correlated geometric Brownian motion with annualised parameters and daily steps.

    Per step ``log(1 + r) = (mu - sigma^2 / 2) dt + sigma sqrt(dt) L z`` with ``dt = 1/252``,
    ``z ~ N(0, I)`` and ``L`` the Cholesky factor of ``correlation``.

    Parameters
    ----------
    drifts : annualised drift ``mu`` per asset (scalar broadcasts).
    vols : annualised volatility ``sigma`` per asset, > 0 (scalar broadcasts).
    correlation : ``(n, n)`` correlation matrix, or a scalar pairwise correlation.
    n_assets : number of assets; needed only when ``drifts`` and ``vols`` are both scalars.
    """

    def __init__(
        self,
        drifts: ArrayLike,
        vols: ArrayLike,
        correlation: ArrayLike = 0.0,
        *,
        n_assets: int | None = None,
    ) -> None:
        n = n_assets if n_assets is not None else max(np.size(drifts), np.size(vols))
        if not isinstance(n, int | np.integer) or n < 1:
            raise InvalidInputError(f"n_assets must be an integer >= 1, got {n!r}")
        self._n = int(n)
        self.drifts = _vector(drifts, "drifts", self._n)
        self.vols = _vector(vols, "vols", self._n, positive=True)
        self._chol = _cholesky(correlation, self._n)
        dt = 1.0 / PERIODS_PER_YEAR  # daily steps: drift mu / 252, volatility sigma / sqrt(252)
        self._mean = (self.drifts - 0.5 * self.vols**2) * dt
        self._scale = self._chol * (self.vols * np.sqrt(dt))[:, None]  # rows scaled: diag(s) L

    @classmethod
    def default(cls, n_assets: int) -> CorrelatedGBM:
        """The market :func:`make_market` uses: a known, monotone edge across assets.

        Drifts rise linearly from 2 % to 14 % a year while volatilities fall from 30 % to 15 %,
        pairwise correlation 0.2, so the last asset has the best Sharpe ratio and the first the worst.
        """
        return cls(np.linspace(0.02, 0.14, n_assets), np.linspace(0.30, 0.15, n_assets), 0.2)

    @property
    def n_assets(self) -> int:
        """Number of assets."""
        return self._n

    def sample_path(self, rng: np.random.Generator, n_steps: int) -> FloatArray:
        """``(n_steps, n_assets)`` simple returns, drawn from ``rng`` only."""
        z = rng.standard_normal((_check_steps(n_steps), self._n))
        out: FloatArray = np.expm1(self._mean + z @ self._scale.T)
        return out


class RegimeSwitchingMarket:
    """Markov regime switching between bull, bear and crisis (the order of :data:`REGIMES`).

    The regime follows a Markov chain with the daily ``transitions`` matrix (default
    :data:`DEFAULT_TRANSITIONS`), starting from its stationary distribution. Inside regime ``k``,
    returns are a GBM step with that regime's annualised drift, volatility and equicorrelation
    (see :class:`CorrelatedGBM`).

    Parameters
    ----------
    n_assets : number of assets, >= 1.
    drifts : annualised drift per regime (bull, bear, crisis); each entry a scalar or per asset.
    vols : annualised volatility per regime, > 0; each a scalar or per asset.
    correlations : pairwise correlation per regime (scalars).
    transitions : ``(3, 3)`` row-stochastic matrix of daily regime transition probabilities.
    """

    def __init__(
        self,
        n_assets: int,
        *,
        drifts: tuple[ArrayLike, ArrayLike, ArrayLike] = (0.15, -0.10, -0.50),
        vols: tuple[ArrayLike, ArrayLike, ArrayLike] = (0.12, 0.25, 0.50),
        correlations: tuple[float, float, float] = (0.3, 0.5, 0.8),
        transitions: ArrayLike = DEFAULT_TRANSITIONS,
    ) -> None:
        if not isinstance(n_assets, int | np.integer) or n_assets < 1:
            raise InvalidInputError(f"n_assets must be an integer >= 1, got {n_assets!r}")
        k = len(REGIMES)
        if not len(drifts) == len(vols) == len(correlations) == k:
            raise InvalidInputError(f"drifts, vols and correlations need one entry per regime {REGIMES}")
        p = np.asarray(transitions, dtype=np.float64)
        if (
            p.shape != (k, k)
            or not np.all(np.isfinite(p))
            or np.any(p < 0)
            or not np.allclose(p.sum(axis=1), 1.0)
        ):
            raise InvalidInputError(
                f"transitions must be a ({k}, {k}) row-stochastic matrix, got {p.tolist()}"
            )
        self._n = int(n_assets)
        self.transitions = p
        self.regimes = [
            CorrelatedGBM(d, v, c, n_assets=self._n)
            for d, v, c in zip(drifts, vols, correlations, strict=True)
        ]
        self._cum = np.cumsum(p, axis=1)
        self._cum[:, -1] = 1.0
        eigvals, eigvecs = np.linalg.eig(p.T)
        pi = np.real(eigvecs[:, np.argmin(np.abs(eigvals - 1.0))])
        self.stationary = pi / pi.sum()
        """Stationary distribution of the chain (the law of the first regime)."""

    @property
    def n_assets(self) -> int:
        """Number of assets."""
        return self._n

    def sample_regimes(self, rng: np.random.Generator, n_steps: int) -> NDArray[np.int64]:
        """The regime index (0 bull, 1 bear, 2 crisis) of each of ``n_steps`` days."""
        u = rng.random(_check_steps(n_steps))
        out = np.empty(n_steps, dtype=np.int64)
        state = int(np.searchsorted(np.cumsum(self.stationary), u[0], side="right"))
        state = min(state, len(REGIMES) - 1)
        out[0] = state
        for t in range(1, n_steps):
            state = int(np.searchsorted(self._cum[state], u[t], side="right"))
            out[t] = state
        return out

    def sample_path_and_regimes(
        self, rng: np.random.Generator, n_steps: int
    ) -> tuple[FloatArray, NDArray[np.int64]]:
        """``(returns, regimes)``: the path of :meth:`sample_path` and the regime of each day."""
        regimes = self.sample_regimes(rng, n_steps)
        z = rng.standard_normal((n_steps, self._n))
        log_r = np.empty((n_steps, self._n))
        for k, gbm in enumerate(self.regimes):
            rows = regimes == k
            log_r[rows] = gbm._mean + z[rows] @ gbm._scale.T
        return np.expm1(log_r), regimes

    def sample_path(self, rng: np.random.Generator, n_steps: int) -> FloatArray:
        """``(n_steps, n_assets)`` simple returns, drawn from ``rng`` only."""
        return self.sample_path_and_regimes(rng, n_steps)[0]


class HistoricalReplay:
    """Windows of the bundled 20 S&P 500 stocks' daily simple returns, inside one date split.

    The return dated ``d`` is ``close[d] / close[d_prev] - 1``. The ``"train"`` split keeps returns
    dated on or before ``train_end``, the ``"test"`` split those on or after ``test_start``, so a
    policy trained on one never sees the other. Each path is a contiguous window of the split that
    starts at a uniformly drawn row.

    Parameters
    ----------
    n_assets : how many stocks, 1..20; the first ``n_assets`` columns of
        :func:`~advanced_risk.data.load_sp500_stocks` (the bundled file's column order).
    split : ``"train"`` or ``"test"``.
    train_end, test_start : split dates (ISO strings), ``train_end < test_start``.
    """

    MAX_ASSETS: Final = 20

    def __init__(
        self,
        n_assets: int,
        *,
        split: str = "train",
        train_end: str = "2012-12-31",
        test_start: str = "2013-01-01",
    ) -> None:
        from advanced_risk.data import load_sp500_stocks  # pandas only when replaying real data

        if not isinstance(n_assets, int | np.integer) or not 1 <= n_assets <= self.MAX_ASSETS:
            raise InvalidInputError(
                f"asset_count must be in 1..{self.MAX_ASSETS} for the historical market, got {n_assets!r}"
            )
        if split not in ("train", "test"):
            raise InvalidInputError(f"split must be 'train' or 'test', got {split!r}")
        prices = load_sp500_stocks().iloc[:, : int(n_assets)]
        returns = prices.pct_change().iloc[1:]
        try:
            keep = returns.index <= train_end if split == "train" else returns.index >= test_start
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(
                f"train_end / test_start must be dates, got {train_end!r}, {test_start!r}"
            ) from exc
        chosen = returns.loc[keep]
        if len(chosen) < 2:
            raise InvalidInputError(f"the {split} split between the given dates holds {len(chosen)} returns")
        self._n = int(n_assets)
        self.split = split
        self.tickers: list[str] = [str(c) for c in prices.columns]
        self.dates: NDArray[np.datetime64] = chosen.index.to_numpy()
        self.returns: FloatArray = np.ascontiguousarray(chosen.to_numpy(dtype=np.float64))
        """``(days, n_assets)`` simple returns of the split, oldest first."""

    @classmethod
    def from_config(cls, config: EnvConfig) -> HistoricalReplay:
        """The replay an :class:`EnvConfig` describes (its asset_count, split and split dates)."""
        return cls(
            config.asset_count, split=config.split, train_end=config.train_end, test_start=config.test_start
        )

    @property
    def n_assets(self) -> int:
        """Number of stocks."""
        return self._n

    def sample_path(self, rng: np.random.Generator, n_steps: int) -> FloatArray:
        """``n_steps`` consecutive days of the split from a start row drawn uniformly from ``rng``."""
        steps = _check_steps(n_steps)
        available = self.returns.shape[0]
        if steps > available:
            raise InvalidInputError(
                f"a path of {steps} days does not fit in the {self.split} split ({available} days); "
                "lower max_steps or window"
            )
        start = int(rng.integers(0, available - steps + 1))
        return self.returns[start : start + steps].copy()


class FixedPath:
    """A market that always returns one given ``(rows, assets)`` path (a test period, replayed exactly).

    Raises
    ------
    InvalidInputError
        ``path`` is not a 2-D table of finite simple returns, each ``> -1``.
    """

    def __init__(self, path: ArrayLike) -> None:
        arr = np.asarray(path, dtype=np.float64)
        if arr.ndim != 2 or arr.shape[1] < 1:
            raise InvalidInputError(f"path must have shape (rows, assets), got {arr.shape}")
        self.path = checked_path(arr, arr.shape[0], arr.shape[1], what="path")

    @property
    def n_assets(self) -> int:
        """Number of assets (columns)."""
        return int(self.path.shape[1])

    def sample_path(self, rng: np.random.Generator, n_steps: int) -> FloatArray:
        """The path itself (a copy; ``n_steps`` must be its length)."""
        if n_steps != self.path.shape[0]:
            raise InvalidInputError(f"the fixed path has {self.path.shape[0]} rows, {n_steps} requested")
        return self.path.copy()


def checked_path(path: ArrayLike, n_rows: int, n_assets: int, what: str = "market path") -> FloatArray:
    """A market's ``sample_path`` answer as contiguous float64, checked against the interface.

    An environment calls this on every path it is given, so a custom :class:`MarketModel` that
    returns a path of another shape, NaN or a return ``<= -1`` (a price at or below zero) is told
    so at ``reset`` instead of failing deep in the book's kernel or training on NaN rewards.

    Raises
    ------
    InvalidInputError
        Not ``(n_rows, n_assets)`` real numbers, a non-finite entry, or an entry ``<= -1``.
    """
    try:
        arr = np.ascontiguousarray(path, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{what} must be real numbers: {exc}") from exc
    if arr.shape != (n_rows, n_assets):
        raise InvalidInputError(f"{what} must have shape ({n_rows}, {n_assets}), got {arr.shape}")
    if not np.isfinite(arr).all():
        row, col = np.argwhere(~np.isfinite(arr))[0]
        raise InvalidInputError(f"{what} holds {arr[row, col]} at row {row}, asset {col}")
    if not (arr > -1.0).all():
        row, col = np.argwhere(arr <= -1.0)[0]
        raise InvalidInputError(
            f"{what} holds the simple return {arr[row, col]} at row {row}, asset {col}; returns must be > -1"
        )
    return arr


def make_market(config: EnvConfig) -> MarketModel:
    """The market ``config.market`` names, sized to ``config.asset_count``.

    GBM: :meth:`CorrelatedGBM.default`; REGIME: :class:`RegimeSwitchingMarket` with its defaults;
    HISTORICAL: :meth:`HistoricalReplay.from_config`.
    """
    if config.market is MarketKind.GBM:
        return CorrelatedGBM.default(config.asset_count)
    if config.market is MarketKind.REGIME:
        return RegimeSwitchingMarket(config.asset_count)
    return HistoricalReplay.from_config(config)
