"""The state of ``N`` portfolios (:class:`Book`) and its two compiled passes: one trading step and
the observations.

The timeline of an episode and the observation layout are :mod:`advanced_risk.rl.portfolio.accounting`'s
(its module docstring); the step kernel trades every portfolio to its target, pays costs and earns one
row of the episode's market path, and the observation kernel writes that layout from the book's
arrays. ``TradingEnvironment`` is a book of one, ``VectorTradingEnv`` a book of ``num_envs``, so both
environments share one implementation.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from advanced_risk.config import EnvConfig, RewardKind
from advanced_risk.errors import InvalidInputError
from advanced_risk.measures.jit import jit
from advanced_risk.measures.validation import FloatArray
from advanced_risk.rl.portfolio.accounting import history_length, market_dim, market_features

__all__ = ["Book"]

IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]


def _step_python(
    target: FloatArray,
    weights: FloatArray,
    value: FloatArray,
    peak: FloatArray,
    t: IntArray,
    paths: FloatArray,
    port_returns: FloatArray,
    history: int,
    band: float,
    rate: float,
    tc: float,
    log_reward: bool,
    vol_penalty: float,
    drawdown_penalty: float,
    drawdown_free: float,
    cost_penalty: float,
    ruin_value: float,
    max_steps: int,
    reward: FloatArray,
    cost: FloatArray,
    turnover: FloatArray,
    terminated: BoolArray,
    truncated: BoolArray,
) -> None:
    """Advance every portfolio by one step in place (state arrays) and fill the output arrays."""
    n_envs, m = weights.shape
    n = m - 1
    w = port_returns.shape[1]
    for e in range(n_envs):
        held = weights[e]
        tgt = target[e]
        distance = 0.0
        traded = 0.0
        for j in range(m):
            d = abs(tgt[j] - held[j])
            distance += d
            if j < n:
                traded += d
        # Rebalance (unless inside the no-trade band): pay tc on the traded asset value.
        if distance < band:
            traded = 0.0
        elif rate == 1.0:
            for j in range(m):
                held[j] = tgt[j]
        else:  # partial rebalancing: move the fraction ``rate`` of the way to the target
            for j in range(m):
                held[j] += rate * (tgt[j] - held[j])
            traded *= rate
        c = tc * traded
        v0 = value[e]
        r = paths[e, history + t[e]]
        growth = held[n]
        for j in range(n):
            held[j] *= 1.0 + r[j]
            growth += held[j]
        for j in range(m):
            held[j] /= growth
        v1 = v0 * (1.0 - c) * growth
        value[e] = v1
        if v1 > peak[e]:
            peak[e] = v1
        dd = 1.0 - v1 / peak[e]
        step_return = v1 / v0 - 1.0
        k = t[e]
        port_returns[e, k % w] = step_return
        t[e] = k + 1
        if log_reward:
            reward[e] = np.log(v1 / v0)
        else:
            count = min(k + 1, w)  # returns of this episode in the window, the current included
            mean = 0.0
            for i in range(count):
                mean += port_returns[e, i]
            mean /= count
            ss = 0.0
            for i in range(count):
                d = port_returns[e, i] - mean
                ss += d * d
            vol = np.sqrt(ss / count)
            reward[e] = (
                step_return
                - vol_penalty * vol
                - drawdown_penalty * max(dd - drawdown_free, 0.0)
                - cost_penalty * c
            )
        cost[e] = c * v0
        turnover[e] = traded
        terminated[e] = v1 < ruin_value
        truncated[e] = (k + 1 >= max_steps) and not terminated[e]


_step = jit(_step_python)


def _observe_python(
    features: NDArray[np.float32],
    t: IntArray,
    weights: FloatArray,
    value: FloatArray,
    peak: FloatArray,
    rows: IntArray,
    out: NDArray[np.float32],
) -> None:
    """Row ``k`` of ``out``: environment ``rows[k]``'s market features at its step, its weights and
    its drawdown ``1 - V / peak`` (computed in float64, rounded to float32 once): the observation
    layout of :mod:`~advanced_risk.rl.portfolio.accounting`. A step past the episode's features
    raises ``IndexError``."""
    md, m = features.shape[2], weights.shape[1]
    for k in range(rows.shape[0]):
        e = rows[k]
        step = t[e]
        if step < 0 or step >= features.shape[1]:
            raise IndexError("step past the end of the episode's features")
        for j in range(md):
            out[k, j] = features[e, step, j]
        for j in range(m):
            out[k, md + j] = np.float32(weights[e, j])
        out[k, md + m] = np.float32(1.0 - value[e] / peak[e])


_observe = jit(_observe_python, ieee_division=True)


class Book:
    """State of ``N`` portfolios and their episodes' market data (one row per environment)."""

    def __init__(self, config: EnvConfig, num_envs: int) -> None:
        self.config = config
        n, m = config.asset_count, config.asset_count + 1
        self.history = history_length(config)
        self.paths = np.zeros((num_envs, self.history + config.max_steps, n))
        self.features = np.zeros((num_envs, config.max_steps + 1, market_dim(config)), dtype=np.float32)
        self.weights = np.zeros((num_envs, m))
        self.value = np.zeros(num_envs)
        self.peak = np.zeros(num_envs)
        self.t = np.zeros(num_envs, dtype=np.int64)
        self.port_returns = np.zeros((num_envs, config.window))
        self.episode_return = np.zeros(num_envs)
        self.reward = np.zeros(num_envs)
        self.cost = np.zeros(num_envs)
        self.turnover = np.zeros(num_envs)
        self.terminated = np.zeros(num_envs, dtype=np.bool_)
        self.truncated = np.zeros(num_envs, dtype=np.bool_)
        self._rows = np.arange(num_envs)

    def start(self, e: int, path: FloatArray) -> None:
        """Begin a new episode of environment ``e`` on ``path``: all cash, value = initial balance."""
        self.paths[e] = path
        self.features[e] = market_features(path, self.config)
        self.weights[e] = 0.0
        self.weights[e, -1] = 1.0
        self.value[e] = self.peak[e] = self.config.initial_balance
        self.t[e] = 0
        self.port_returns[e] = 0.0
        self.episode_return[e] = 0.0
        self.reward[e] = self.cost[e] = self.turnover[e] = 0.0
        self.terminated[e] = self.truncated[e] = False

    def step(self, target: FloatArray) -> None:
        """Trade every portfolio to ``target`` ``(N, n + 1)`` and earn one row of returns."""
        c = self.config
        _step(
            target,
            self.weights,
            self.value,
            self.peak,
            self.t,
            self.paths,
            self.port_returns,
            self.history,
            c.no_trade_band,
            c.rebalance_rate,
            c.transaction_cost,
            c.reward is RewardKind.LOG_RETURN,
            c.vol_penalty,
            c.drawdown_penalty,
            c.drawdown_free,
            c.cost_penalty,
            c.ruin_fraction * c.initial_balance,
            c.max_steps,
            self.reward,
            self.cost,
            self.turnover,
            self.terminated,
            self.truncated,
        )
        self.episode_return += self.reward

    def drawdown(self) -> FloatArray:
        """``1 - V / peak`` of every portfolio."""
        out: FloatArray = 1.0 - self.value / self.peak
        return out

    def state_arrays(self) -> dict[str, NDArray[Any]]:
        """Copies of every array of the book (its whole state), for checkpoints."""
        return {k: v.copy() for k, v in vars(self).items() if isinstance(v, np.ndarray)}

    def load_arrays(self, arrays: dict[str, Any]) -> None:
        """Restore :meth:`state_arrays` in place; every array must keep its shape."""

        for name, value in arrays.items():
            current = getattr(self, name)
            if current.shape != np.shape(value):
                raise InvalidInputError(
                    f"state field {name} has shape {np.shape(value)}, need {current.shape}"
                )
            current[...] = value

    def info(self, row: int = 0) -> dict[str, Any]:
        """The step info of one portfolio: value, weights, cost, drawdown, turnover, step."""
        return {
            "portfolio_value": float(self.value[row]),
            "weights": self.weights[row].copy(),
            "cost": float(self.cost[row]),
            "drawdown": float(1.0 - self.value[row] / self.peak[row]),
            "turnover": float(self.turnover[row]),
            "step": int(self.t[row]),
        }

    def observe(self, out: NDArray[np.float32], rows: IntArray | None = None) -> None:
        """Write the observations of environments ``rows`` (all by default) into ``out``
        (one compiled pass: ~1 us for 8 environments against ~7 us of NumPy indexing).

        ``rows`` indexes as NumPy would: integers in ``[-N, N)`` (negative ones count from the end)
        or a boolean mask of length ``N``; anything else raises ``IndexError`` before the kernel runs,
        since the compiled loop reads unchecked (an index past ``N`` would read out of bounds).
        ``out`` must be a writeable float32 array of shape ``(len(rows), width)``."""
        r = self._rows if rows is None else self._checked_rows(rows)
        width = self.features.shape[2] + self.weights.shape[1] + 1
        if out.shape != (r.shape[0], width) or out.dtype != np.float32 or not out.flags.writeable:
            raise InvalidInputError(  # the kernel does not check
                f"out must be float32 of shape {(r.shape[0], width)}, writeable; got {out.dtype} {out.shape}"
            )
        _observe(self.features, self.t, self.weights, self.value, self.peak, r, out)

    def _checked_rows(self, rows: ArrayLike) -> IntArray:
        """``rows`` as int64 indices in ``[0, N)``: NumPy's rules for an index array (integers, wrapped
        from the end when negative, or a boolean mask of length ``N``), ``IndexError`` otherwise."""
        n = self.t.shape[0]
        r = np.asarray(rows)
        if r.dtype == np.bool_:
            if r.shape != (n,):
                raise IndexError(f"a boolean rows mask must have shape ({n},), got {r.shape}")
            return np.flatnonzero(r)
        if r.ndim != 1 or (r.size and r.dtype.kind not in "iu"):
            raise IndexError(f"rows must be a 1-D array of integer indices, got {r.dtype} {r.shape}")
        if r.size and (r.min() < -n or r.max() >= n):
            raise IndexError(f"rows must lie in [-{n}, {n}), got {r.min()}..{r.max()}")
        r = r.astype(np.int64)
        return np.where(r < 0, r + n, r)
