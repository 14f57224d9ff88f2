"""The environment's arithmetic: action -> weights, market features and the observation layout.

Everything here works on a batch of ``N`` portfolios (``TradingEnvironment`` is a batch of one),
so the single and the vector environment share one implementation.

Timeline of one episode (``H = history_length(config)``, ``T = max_steps``): a market path holds
``H + T`` rows of simple returns. Before step ``t`` (``t = 0..T-1``) the agent has seen rows
``< H + t``; step ``t`` trades to the target weights, pays costs, then earns row ``H + t``.

Observation at time ``t`` (float32, length :func:`observation_dim`), ``n`` assets, ``w`` window::

    [0, n*w)            log returns, asset-major: index i*w + k = log(1 + r[H+t-w+k, i]),
                        k = w-1 the most recent
    [n*w, n*w+n)        RSI(14) / 100 - 0.5 of each asset's price (Wilder, TA-Lib's convention)
    [n*w+n, n*w+2n)     10-bar momentum relative to price: P[now] / P[now-10] - 1
    [n*w+2n, n*w+3n)    realised volatility of the last w returns (ddof=1), annualised (x sqrt(252))
    [n*w+3n, n*w+4n+1)  current (drifted) weights: n assets, then cash
    [n*w+4n+1]          drawdown 1 - V / peak(V)

so ``observation_dim = n * (w + 4) + 2``.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from advanced_risk.config import EnvConfig
from advanced_risk.errors import InvalidInputError
from advanced_risk.measures.jit import jit
from advanced_risk.measures.kernels import rolling_mean_std_into_kernel, rsi_into_kernel
from advanced_risk.measures.pairwise import pairwise_sum_kernel
from advanced_risk.measures.validation import PERIODS_PER_YEAR, FloatArray

__all__ = [
    "ACTION_BOUND",
    "MOMENTUM_PERIOD",
    "RSI_PERIOD",
    "action_to_weights",
    "check_history",
    "history_length",
    "indicators_kernel",
    "market_dim",
    "market_features",
    "observation_dim",
    "observation_layout",
    "trade_kernel",
]


ACTION_BOUND: Final = 10.0
"""Actions are clipped to ``[-10, 10]`` (the action space) before the softmax."""
RSI_PERIOD: Final = 14
MOMENTUM_PERIOD: Final = 10


def history_length(config: EnvConfig) -> int:
    """Warm-up rows before an episode's first step: ``max(window, 2 * RSI_PERIOD)``."""
    return max(config.window, 2 * RSI_PERIOD)


def check_history(returns: Any, history: int, asset_count: int) -> None:
    """Refuse ``returns`` that are not a ``(T >= history, asset_count)`` array, naming ``returns``.

    The shape guard of the public inference entry points (``PolicyAllocator.allocate``,
    ``PortfolioPolicy.rebalance_trusted``, ``RiskAgentsAdvisor.request``): the numba feature kernels
    do not bounds-check, and fewer rows than the RSI or volatility window made them write past their
    buffers (heap corruption, an aborted process); fewer than ``history`` rows gave features the
    policy never saw in training. A few attribute reads, nothing on the values (checked downstream).

    Raises
    ------
    InvalidInputError
        ``returns`` is not a 2-D NumPy array with ``asset_count`` columns and ``>= history`` rows.
    """
    if not isinstance(returns, np.ndarray) or returns.ndim != 2:
        raise InvalidInputError(
            f"returns must be a 2-D array (rows: bars, oldest first; columns: {asset_count} assets), "
            f"got {type(returns).__name__} of shape {getattr(returns, 'shape', None)}"
        )
    shape = returns.shape
    if shape[0] < history or shape[1] != asset_count:
        raise InvalidInputError(
            f"returns must have at least {history} rows and {asset_count} columns "
            f"(history_length x asset_count), got shape {shape}"
        )


def market_dim(config: EnvConfig) -> int:
    """Length of the market part of the observation: ``n * (window + 3)``."""
    return config.asset_count * (config.window + 3)


def observation_dim(config: EnvConfig) -> int:
    """Length of the observation: ``n * (window + 4) + 2`` (see the module docstring for the layout)."""
    return market_dim(config) + config.asset_count + 2


def _softmax_rows_python(actions: FloatArray, bound: float) -> FloatArray:
    out = np.empty_like(actions)
    for e in range(actions.shape[0]):
        top = -np.inf
        for j in range(actions.shape[1]):
            top = max(top, min(max(actions[e, j], -bound), bound))
        total = 0.0
        for j in range(actions.shape[1]):
            x = np.exp(min(max(actions[e, j], -bound), bound) - top)
            out[e, j] = x
            total += x
        for j in range(actions.shape[1]):
            out[e, j] /= total
    return out


_softmax_rows = jit(_softmax_rows_python)


def observation_layout(config: EnvConfig) -> dict[str, slice]:
    """Name -> slice of each observation block (see the module docstring).

    Examples
    --------
    >>> observation_layout(EnvConfig(asset_count=2, window=3))["weights"]
    slice(12, 15, None)
    """
    n, w = config.asset_count, config.window
    return {
        "log_returns": slice(0, n * w),
        "rsi": slice(n * w, n * w + n),
        "momentum": slice(n * w + n, n * w + 2 * n),
        "volatility": slice(n * w + 2 * n, n * w + 3 * n),
        "weights": slice(n * w + 3 * n, n * w + 4 * n + 1),
        "drawdown": slice(n * w + 4 * n + 1, n * w + 4 * n + 2),
    }


def action_to_weights(action: NDArray[np.floating]) -> FloatArray:
    """Long-only weights over assets plus cash: ``softmax(clip(action, -10, 10))`` along the last axis.

    Works on one action ``(n + 1,)`` or a batch ``(N, n + 1)``. Every weight is >= 0 and each row
    sums to 1, so cash is never negative and nothing is leveraged.

    Examples
    --------
    >>> action_to_weights(np.array([0.0, 0.0, np.log(2.0)])).round(6).tolist()
    [0.25, 0.25, 0.5]
    """
    a = np.asarray(action, dtype=np.float64)
    out: FloatArray = _softmax_rows(np.ascontiguousarray(a.reshape(-1, a.shape[-1])), ACTION_BOUND)
    return out.reshape(a.shape)


def _trade_python(
    action: NDArray[np.float32], held: FloatArray, bound: float, band: float, rate: float, out: FloatArray
) -> None:
    """``out = execute(held, action_to_weights(action))`` for one float32 action, in one kernel.

    The same float64 arithmetic in the same order (bit for bit, ``tests/rl/test_policy_fast_paths.py``):
    the action cast to float64 (exact), :func:`action_to_weights`'s softmax kernel, the band test
    ``np.abs(target - held).sum() < band`` with NumPy's pairwise sum (``measures.pairwise``), then
    ``held`` (a copy), ``target`` (rate 1) or ``held + rate * (target - held)``. NaN: a NaN action
    gives NaN weights as there (the band test is False). ``action``, ``held`` and ``out`` of different
    lengths: ``ValueError`` (``execute`` broadcasts or raises; the kernel would read out of bounds).
    """
    m = action.shape[0]
    # numba does not bounds-check: another length would read past held or write past out
    if held.shape[0] != m or out.shape[0] != m:
        raise ValueError("trade_kernel: action, held and out must have one length")
    a = np.empty((1, m))
    for j in range(m):
        a[0, j] = np.float64(action[j])
    target = _softmax_rows(a, bound)[0]
    gap = np.empty(m)
    for j in range(m):
        gap[j] = abs(target[j] - held[j])
    if pairwise_sum_kernel(gap) < band:
        out[:] = held
    elif rate == 1.0:
        out[:] = target
    else:
        for j in range(m):
            out[j] = held[j] + rate * (target[j] - held[j])


trade_kernel = jit(_trade_python)


def _features_python(returns: FloatArray, history: int, window: int, steps: int) -> FloatArray:
    """The market features of :func:`market_features` (float64) for ``t = 0..steps`` of a path whose
    first ``history`` returns are the warm-up; trusts its inputs (finite returns, ``window >= 2``).

    The per-asset series (closes, RSI, rolling std, log returns) go to buffers allocated once for
    all assets, and only the log returns the rows read are computed (``window`` of them at a single
    step, the policy's per-bar case).
    """
    size, n = returns.shape
    w = window
    out = np.empty((steps + 1, n * (w + 3)))
    annualise = np.sqrt(PERIODS_PER_YEAR)
    by_asset = np.ascontiguousarray(returns.T)  # each asset's returns contiguous
    close = np.empty(size + 1)
    rsi = np.empty(size + 1)
    mean = np.empty(size)
    vol = np.empty(size)
    lo, hi = history - w, history + steps  # the log returns the rows read
    log_r = np.empty(size)
    for i in range(n):
        r = by_asset[i]
        close[0] = 1.0
        for k in range(size):
            close[k + 1] = close[k] * (1.0 + r[k])
        rsi_into_kernel(close, RSI_PERIOD, rsi)
        rolling_mean_std_into_kernel(r, w, 1, mean, vol)
        log_r[lo:hi] = np.log1p(r[lo:hi])
        for t in range(steps + 1):
            now = history + t  # price index of "now": after history + t returns
            for k in range(w):
                out[t, i * w + k] = log_r[now - w + k]
            out[t, n * w + i] = rsi[now] / 100.0 - 0.5
            out[t, n * w + n + i] = close[now] / close[now - MOMENTUM_PERIOD] - 1.0
            out[t, n * w + 2 * n + i] = vol[now - 1] * annualise
    return out


market_features_kernel = jit(_features_python)


def _indicators_python(returns: FloatArray, window: int, out: FloatArray) -> None:
    """The RSI, momentum and volatility blocks of :func:`market_features_kernel`'s last row for
    ``steps = 0`` (``history`` = the rows of ``returns``), side by side in ``out`` ``(3n,)``: the same
    per-asset arithmetic, without the log returns (the risk agents' observation reads only these)."""
    size, n = returns.shape
    annualise = np.sqrt(PERIODS_PER_YEAR)
    close = np.empty(size + 1)
    rsi = np.empty(size + 1)
    mean = np.empty(size)
    vol = np.empty(size)
    r = np.empty(size)
    for i in range(n):
        for k in range(size):
            r[k] = returns[k, i]
        close[0] = 1.0
        for k in range(size):
            close[k + 1] = close[k] * (1.0 + r[k])
        rsi_into_kernel(close, RSI_PERIOD, rsi)
        rolling_mean_std_into_kernel(r, window, 1, mean, vol)
        out[i] = rsi[size] / 100.0 - 0.5
        out[n + i] = close[size] / close[size - MOMENTUM_PERIOD] - 1.0
        out[2 * n + i] = vol[size - 1] * annualise


indicators_kernel = jit(_indicators_python)


def market_features(returns: FloatArray, config: EnvConfig) -> NDArray[np.float32]:
    """Market part of the observation for every time ``t = 0..max_steps`` of one path.

    Parameters
    ----------
    returns : ``(history_length + max_steps, n)`` simple returns of one episode's path.
    config : the environment's settings.

    Returns
    -------
    ``(max_steps + 1, market_dim)`` float32; row ``t`` uses only ``returns[: H + t]``. RSI and
    realised volatility come from the ``measures`` kernels (Wilder RSI as TA-Lib, rolling std).
    """
    out = market_features_kernel(returns, history_length(config), config.window, config.max_steps)
    return out.astype(np.float32)
