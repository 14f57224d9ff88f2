"""What the risk agents see and do: agent names, action boxes, monitor actions, observation blocks.

The vocabulary shared by the training environment (:class:`~advanced_risk.rl.agents.env.RiskAgentsEnv`,
whose module docstring describes every block and action) and the trading path (the manager's
:class:`~advanced_risk.rl.agents.advisor.RiskAgentsAdvisor` and the agents' NumPy actors in
:mod:`advanced_risk.rl.agents.policy`). NumPy only: the shipped agents act without gymnasium,
pettingzoo or torch.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Final

import numpy as np
from numpy.typing import NDArray

from advanced_risk.measures.validation import FloatArray

__all__ = [
    "ACTION_BOUNDS",
    "AGENTS",
    "ATR_FLOOR",
    "ATR_PERIOD",
    "DRAWDOWN_WINDOW",
    "MONITOR_CUTS",
    "OBS_BLOCKS",
    "POSITION_HORIZON",
    "RULE_ACTIONS",
    "STOP_RANGE",
    "MonitorAction",
    "agent_observations",
    "obs_dim",
    "observation_blocks",
    "shared_actor_rows",
    "synthetic_bars",
]

ObsArray = NDArray[np.float32]

AGENTS: Final = ("sizer", "stop", "monitor")
ATR_PERIOD: Final = 14
ATR_FLOOR: Final = 1e-4
"""ATR as a fraction of close is floored at 1 bp (a flat history would otherwise give a zero ATR)."""
STOP_RANGE: Final = (0.5, 5.0)
"""Stop distance in ATR multiples: the ``stop`` agent's first action entry is clipped to this."""


ACTION_BOUNDS: Final = {"sizer": ((0.0,), (1.0,)), "stop": ((STOP_RANGE[0], 0.0), (STOP_RANGE[1], 1.0))}
"""``(low, high)`` of the continuous agents' action boxes."""


POSITION_HORIZON: Final = 252
"""A position held this many steps restarts (entry = highest = the close), as at an episode start.

Training episodes are 252 steps, so this never fires in training; on a longer walk (the test
period, or the manager over years) it keeps ``from_entry`` / ``from_high`` in the range the agents
were trained on."""


DRAWDOWN_WINDOW: Final = 252
"""The observed drawdown is measured from the highest value of the last 252 steps (the manager's
``RiskConfig.drawdown_window``); within a 252-step training episode that is the episode's peak."""


class MonitorAction(IntEnum):
    """The monitor's discrete de-risking actions."""

    NONE = 0
    REDUCE = 1
    HEDGE = 2
    HALT = 3


RULE_ACTIONS: Final = {"sizer": (1.0,), "stop": (2.0, 0.25), "monitor": MonitorAction.NONE}
"""The rules' usual joint action: the full risk budget, a fixed 2-ATR stop (trailing < 0.5: off) and
no de-risking (the monitor's rule acts only past a drawdown). Training starts the actors here
(``MAPPOTrainer(initial_actions=RULE_ACTIONS)``), so the agents learn deviations from the rules."""


MONITOR_CUTS: Final = (0.0, 0.25, 0.5, 1.0)
"""Exposure cut of each :class:`MonitorAction`, in order."""

OBS_BLOCKS: Final = {
    "sizer": ("volatility", "momentum", "drawdown", "exposure", "in_position_fraction"),
    "stop": ("atr", "from_high", "from_entry", "in_position", "drawdown"),
    "monitor": ("rsi", "momentum", "volatility", "drawdown", "exposure", "last_return"),
    "state": ("rsi", "momentum", "volatility", "atr", "from_high", "from_entry", "in_position",
              "drawdown", "exposure", "last_return", "in_position_fraction", "time"),
}  # fmt: skip
"""Named blocks of each agent's observation and of the joint ``state()``, in order."""
_PER_ASSET: Final = frozenset(
    {"rsi", "momentum", "volatility", "atr", "from_high", "from_entry", "in_position"}
)


def obs_dim(name: str, asset_count: int) -> int:
    """Length of observation ``name`` (an agent or ``"state"``) for ``asset_count`` assets."""
    return sum(asset_count if b in _PER_ASSET else 1 for b in OBS_BLOCKS[name])


LOW_FLOOR: Final = 1e-6
"""The smallest low factor of a synthetic bar: ``1 - wick * |r|`` is <= 0 for a move of ``|r| >= 1 /
wick`` (a tripling at wick 0.5), a low <= 0 that the ATR refused (``low must be > 0``: a CSV with one
+200 % day stopped ``--agents risk``). Such a bar's low is ``LOW_FLOOR * min(C_prev, C)`` instead; a
factor > 0 (every move below that size) is unchanged, bit for bit, and NaN stays NaN."""


def synthetic_bars(close: FloatArray, wick: float) -> tuple[FloatArray, FloatArray]:
    """Approximate highs and lows from closes: ``min/max(C_prev, C) * (1 -/+ wick * |r|)``.

    Bar 0 has high = low = close. Works on 1-D ``(T,)`` or 2-D ``(T, n)`` closes. The low factor is
    at least :data:`LOW_FLOOR` (a move of ``|r| >= 1 / wick`` would give a low <= 0).
    """
    prev = np.concatenate([close[:1], close[:-1]])
    r = np.abs(close / prev - 1.0)
    high = np.maximum(prev, close) * (1.0 + wick * r)
    down = 1.0 - wick * r
    low = np.minimum(prev, close) * np.where(down <= 0.0, LOW_FLOOR, down)
    return high, low


def observation_blocks(
    *,
    rsi: FloatArray,
    momentum: FloatArray,
    volatility: FloatArray,
    close: FloatArray,
    atr_frac: FloatArray,
    high: FloatArray,
    entry: FloatArray,
    in_position: NDArray[np.bool_],
    drawdown: float,
    exposure: float,
    last_return: float,
    time: float = 0.0,
) -> dict[str, FloatArray]:
    """Every named observation block (see :mod:`advanced_risk.rl.agents.env`) from the book's current state.

    ``rsi``, ``momentum``, ``volatility`` are the allocator's features; ``close``, ``high`` (highest
    close since entry), ``entry`` per asset; ``atr_frac`` = ATR / close (floored); ``last_return``
    the previous step's net portfolio return (a fraction). The environment and the manager's
    :class:`~advanced_risk.risk.agent_inputs.AgentInputs` both build observations through here.
    """
    pos = np.asarray(in_position, dtype=bool)
    # out of position, high and entry are 0: divide by the close there instead (the block is 0)
    high_ref, entry_ref = np.where(pos, high, close), np.where(pos, entry, close)
    return {
        "rsi": rsi,
        "momentum": momentum,
        "volatility": volatility,
        "atr": 100.0 * atr_frac,
        "from_high": (close / high_ref - 1.0) / atr_frac,
        "from_entry": (close / entry_ref - 1.0) / atr_frac,
        "in_position": pos.astype(np.float64),
        "drawdown": np.array([drawdown]),
        "exposure": np.array([exposure]),
        "last_return": np.array([100.0 * last_return]),
        "in_position_fraction": np.array([pos.mean()]),
        "time": np.array([time]),
    }


def agent_observations(blocks: dict[str, FloatArray]) -> dict[str, ObsArray]:
    """Each agent's float32 observation: its blocks of ``blocks`` concatenated in :data:`OBS_BLOCKS` order."""
    return {a: np.concatenate([blocks[k] for k in OBS_BLOCKS[a]]).astype(np.float32) for a in AGENTS}


def shared_actor_rows(x: NDArray[np.float32], k: int, n_agents: int, pad: int) -> NDArray[np.float32]:
    """Agent ``k``'s rows for a shared actor: observations zero-padded to ``pad``, then a one-hot id."""
    one_hot = np.zeros((x.shape[0], n_agents), np.float32)
    one_hot[:, k] = 1.0
    return np.concatenate([np.pad(x, ((0, 0), (0, pad - x.shape[1]))), one_hot], axis=1)
