"""The agents' three observations of one bar in one kernel (``RiskAgentsAdvisor.request``, issue 14).

:func:`observations_kernel` computes what
:func:`~advanced_risk.rl.agents.interface.observation_blocks` followed by
:func:`~advanced_risk.rl.agents.interface.agent_observations` compute, with the same float64
operations (elementwise, so bit for bit; ``in_position_fraction``, a sum of 0s and 1s divided by the
count, is exact in any order) and the same float32 casts, instead of ~25 small NumPy calls. Those two
functions stay the definition (the training environment uses them);
``tests/rl/test_agents_fast_decode.py`` compares the kernel with them. The kernel returns ``ok =
False`` at a zero divisor (where NumPy would give inf and warn): the caller then uses them.

The blocks sit in one float64 vector in :data:`BLOCK_ORDER`, ``n`` values per asset block and one per
scalar block; :func:`block_index` says where each agent's observation takes its values.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from advanced_risk.measures.jit import jit
from advanced_risk.rl.agents.interface import AGENTS, ATR_FLOOR, OBS_BLOCKS
from advanced_risk.rl.portfolio.accounting import indicators_kernel

__all__ = ["BLOCK_ORDER", "agent_inputs_kernel", "block_index", "observations_kernel"]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

BLOCK_ORDER = (
    "rsi", "momentum", "volatility", "atr", "from_high", "from_entry", "in_position",
    "drawdown", "exposure", "last_return", "in_position_fraction", "time",
)  # fmt: skip
"""The blocks in the kernel's vector: the seven per-asset blocks, then the five scalars."""
_PER_ASSET = 7


def block_index(asset_count: int) -> tuple[IntArray, IntArray, IntArray]:
    """Per agent (in :data:`AGENTS` order), the kernel vector's entries of its observation."""
    n = asset_count
    start = {
        b: (k * n if k < _PER_ASSET else _PER_ASSET * n + k - _PER_ASSET) for k, b in enumerate(BLOCK_ORDER)
    }
    width = {b: (n if k < _PER_ASSET else 1) for k, b in enumerate(BLOCK_ORDER)}
    sizer, stop, monitor = (
        np.concatenate([np.arange(start[b], start[b] + width[b]) for b in OBS_BLOCKS[a]]).astype(np.int64)
        for a in AGENTS
    )
    return sizer, stop, monitor


def _gather_python(v: FloatArray, index: IntArray) -> NDArray[np.float32]:
    """``v[index].astype(np.float32)``."""
    out = np.empty(index.shape[0], np.float32)
    for j in range(index.shape[0]):
        out[j] = np.float32(v[index[j]])
    return out


def _observations_python(
    market: FloatArray, rsi: int, momentum: int, volatility: int, close: FloatArray,
    atr_frac: FloatArray, high: FloatArray, entry: FloatArray, in_position: NDArray[np.bool_],
    drawdown: float, exposure: float, last_return: float, index: tuple[IntArray, IntArray, IntArray],
) -> tuple[bool, NDArray[np.float32], NDArray[np.float32], NDArray[np.float32]]:  # fmt: skip
    """``(ok, sizer, stop, monitor)``: each agent's float32 observation (module docstring).

    ``market`` holds the allocator's features, the RSI, momentum and volatility blocks from the
    given offsets; the other arguments are ``observation_blocks``' (``time`` is 0).
    """
    n = close.shape[0]
    v = np.zeros(_PER_ASSET * n + 5)
    held = 0.0
    for i in range(n):
        pos = in_position[i]
        high_ref = high[i] if pos else close[i]
        entry_ref = entry[i] if pos else close[i]
        if high_ref == 0.0 or entry_ref == 0.0 or atr_frac[i] == 0.0:
            empty = np.zeros(0, np.float32)
            return False, empty, empty, empty
        v[i] = market[rsi + i]
        v[n + i] = market[momentum + i]
        v[2 * n + i] = market[volatility + i]
        v[3 * n + i] = 100.0 * atr_frac[i]
        v[4 * n + i] = (close[i] / high_ref - 1.0) / atr_frac[i]
        v[5 * n + i] = (close[i] / entry_ref - 1.0) / atr_frac[i]
        v[6 * n + i] = 1.0 if pos else 0.0
        held += v[6 * n + i]
    base = _PER_ASSET * n
    v[base], v[base + 1], v[base + 2] = drawdown, exposure, 100.0 * last_return
    v[base + 3] = held / n
    a, b, c = index
    return True, _gather_kernel(v, a), _gather_kernel(v, b), _gather_kernel(v, c)


def _agent_inputs_python(
    returns: FloatArray, window: int, atr: FloatArray, close: FloatArray, high: FloatArray,
    entry: FloatArray, in_position: NDArray[np.bool_], drawdown: float, exposure: float,
    last_return: float, index: tuple[IntArray, IntArray, IntArray], drift: FloatArray,
) -> tuple[bool, NDArray[np.float32], NDArray[np.float32], NDArray[np.float32]]:  # fmt: skip
    """``RiskAgentsAdvisor.request``'s arithmetic in one kernel: :func:`observations_kernel` of the
    bar, from the returns and the ATR.

    The RSI, momentum and volatility blocks are ``accounting.indicators_kernel``'s (the policy's
    market features, bit for bit), ``atr_frac = np.maximum(atr / close, ATR_FLOOR)`` (NaN stays NaN).
    ``drift`` of length ``4n`` receives the drift monitor's input, the three blocks then ``100 *
    atr_frac`` (another length: left alone). ``ok`` is :func:`observations_kernel`'s.
    """
    n = close.shape[0]
    market = np.empty(3 * n)
    indicators_kernel(returns, window, market)
    atr_frac = np.empty(n)
    for i in range(n):
        v = atr[i] / close[i]
        atr_frac[i] = v if v >= ATR_FLOOR or v != v else ATR_FLOOR
    if drift.shape[0] == 4 * n:
        for j in range(3 * n):
            drift[j] = market[j]
        for i in range(n):
            drift[3 * n + i] = 100.0 * atr_frac[i]
    return _observations_kernel(
        market, 0, n, 2 * n, close, atr_frac, high, entry, in_position, drawdown, exposure, last_return, index
    )


_gather_kernel = jit(_gather_python)
_observations_kernel = jit(_observations_python)
observations_kernel = _observations_kernel
agent_inputs_kernel = jit(_agent_inputs_python, ieee_division=True)
