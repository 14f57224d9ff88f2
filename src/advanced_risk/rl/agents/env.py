"""RiskAgentsEnv: three cooperating risk agents on one portfolio (PettingZoo parallel API).

The agents share one long-only book over ``n = asset_count`` assets plus cash, kept by the same
accounting as :class:`~advanced_risk.rl.portfolio.env.TradingEnvironment`
(:class:`~advanced_risk.rl.portfolio.book.Book`:
rebalancing, transaction costs, drift, drawdown, ruin, shaped reward) on the same market generators
(:func:`~advanced_risk.rl.portfolio.market.make_market`). Each step ``t``:

1. ``sizer`` (Box ``[0, 1]``, shape ``(1,)``) picks the scale ``s`` of the risk budget;
   ``stop`` (Box ``[[0.5, 0], [5, 1]]``, shape ``(2,)``) picks the stop distance ``k`` in ATR
   multiples and trailing (on when the second entry is ``>= 0.5``); ``monitor`` (Discrete(4))
   picks a de-risking action with exposure cut ``cut``: none 0, reduce 0.25, hedge 0.5 (modelled
   as a cut of the spot book: a long-only book cannot short), halt-request 1 (all cash).
2. Target weights: ``g_i = s * (1 - cut) * b_i`` for assets in position, 0 for assets stopped out
   (cash takes the rest); ``b`` is the base allocation (equal weight by default, or given weights).
3. Stops: an asset in position with ``g_i > 0`` has stop price ``ref_i * (1 - k * atr_i)``, where
   ``atr_i`` is Wilder's ATR(14) as a fraction of close (floored at 1e-4), and ``ref_i`` the entry close,
   or with trailing the highest close since entry. Only closes exist, so the day's low is
   approximated from the close-to-close return ``r`` as ``low = min(C_prev, C) * (1 - wick * |r|)``
   (and the high symmetrically; the same bars feed the ATR), ``wick = 0.5``. When ``low <= stop``
   the asset earns ``min(stop / C_prev, 1) - 1`` that day (exit at the stop, or at the open
   ``C_prev`` when the stop is above it) instead of ``r``; it is then flat (sold at the next
   rebalance, paying its cost there) for ``reentry_delay`` days and re-enters at that close.
4. The book trades to ``g`` and earns the day (``Book.step``); every agent receives the same reward,
   the environment's shaped reward (see :mod:`advanced_risk.rl.portfolio.env`)::

       reward = R - vol_penalty * vol - drawdown_penalty * max(DD - drawdown_free, 0) - cost_penalty * c

   with ``R`` the step's net return, ``vol`` the std of the episode's recent step returns, ``DD``
   the drawdown and ``c`` the cost fraction (``EnvConfig`` holds the weights).
5. All agents terminate together on ruin and are truncated together after ``max_steps``.

Observations (float32, dims for ``n`` assets; blocks in this order, see :data:`OBS_BLOCKS`):

- ``sizer`` ``(2n + 3)``: volatility(n), momentum(n), drawdown, exposure, in_position_fraction
- ``stop`` ``(4n + 1)``: atr(n), from_high(n), from_entry(n), in_position(n), drawdown
- ``monitor`` ``(3n + 3)``: rsi(n), momentum(n), volatility(n), drawdown, exposure, last_return
- ``state()`` ``(7n + 5)``: rsi, momentum, volatility, atr, from_high, from_entry, in_position (n
  each), drawdown, exposure, last_return, in_position_fraction, time (t / max_steps)

``rsi``, ``momentum`` and ``volatility`` are the allocator's features
(:mod:`~advanced_risk.rl.portfolio.accounting`);
``atr`` is ``100 * ATR / close``; ``from_high`` / ``from_entry`` are ``(C / high - 1) / atr_frac``
and ``(C / entry - 1) / atr_frac`` (distance in ATRs, 0 when flat); ``exposure`` is the held asset
weight; ``last_return`` is ``100 * R`` of the previous step; ``drawdown`` is ``1 - V / peak`` with
the peak of the last :data:`DRAWDOWN_WINDOW` (252) values. A position held
:data:`POSITION_HORIZON` (252) steps restarts at the close (entry = high = close). Both only matter
on walks longer than the 252-step training episodes (a test period, the manager over years).

Seeding: ``reset(seed=s)`` seeds a PCG64 generator (gymnasium's ``np_random``) that draws each
episode's path; the same seed and actions give the same episode.
"""

from __future__ import annotations

import functools
from typing import Any, Final

import gymnasium as gym
import numpy as np
from gymnasium.utils import seeding
from numpy.typing import ArrayLike, NDArray
from pettingzoo import ParallelEnv  # type: ignore[import-untyped]  # (no py.typed)

from advanced_risk.config import EnvConfig, MarketKind
from advanced_risk.errors import InvalidInputError
from advanced_risk.measures.validation import FloatArray
from advanced_risk.measures.volatility import wilder_atr
from advanced_risk.rl.agents.interface import (
    ACTION_BOUNDS,
    AGENTS,
    ATR_FLOOR,
    ATR_PERIOD,
    DRAWDOWN_WINDOW,
    MONITOR_CUTS,
    OBS_BLOCKS,
    POSITION_HORIZON,
    RULE_ACTIONS,
    STOP_RANGE,
    MonitorAction,
    agent_observations,
    obs_dim,
    observation_blocks,
    synthetic_bars,
)
from advanced_risk.rl.portfolio.accounting import history_length, observation_layout
from advanced_risk.rl.portfolio.book import Book
from advanced_risk.rl.portfolio.market import MarketModel, checked_path, make_market

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
    "RiskAgentsEnv",
    "agent_observations",
    "obs_dim",
    "observation_blocks",
    "stop_exit_return",
    "synthetic_bars",
]

ObsArray = NDArray[np.float32]


def stop_exit_return(
    r: FloatArray, stop_rel: FloatArray, wick: float
) -> tuple[FloatArray, NDArray[np.bool_]]:
    """The day's return of a position with stop at ``stop_rel`` (stop price / previous close).

    Returns ``(earned, hit)``: where ``low / C_prev = min(1, 1 + r) * (1 - wick |r|) <= stop_rel``
    the stop is hit and the position earns ``min(stop_rel, 1) - 1``; elsewhere it earns ``r``.

    Examples
    --------
    >>> earned, hit = stop_exit_return(np.array([-0.05, 0.01]), np.array([0.97, 0.97]), 0.5)
    >>> earned.round(6).tolist(), hit.tolist()
    ([-0.03, 0.01], [True, False])
    """
    low_rel = np.minimum(1.0, 1.0 + r) * (1.0 - wick * np.abs(r))
    hit = low_rel <= stop_rel
    return np.where(hit, np.minimum(stop_rel, 1.0) - 1.0, r), hit


class RiskAgentsEnv(ParallelEnv):  # type: ignore[misc]  # (ParallelEnv is untyped)
    """Sizer, stop and monitor agents on one portfolio (see the module docstring).

    Parameters
    ----------
    config : the portfolio settings (assets, window, episode length, costs, reward weights, market);
        default ``EnvConfig(asset_count=3, max_steps=252, market="regime")``.
    market : a :class:`~advanced_risk.rl.portfolio.market.MarketModel`; default ``make_market(config)``.
    base_weights : base allocation over the assets (``asset_count`` values >= 0 summing to <= 1);
        default equal weight.
    reentry_delay : days an asset stays flat after its stop is hit, >= 1.
    wick : the low/high approximation's factor (see :func:`synthetic_bars`), >= 0.

    Examples
    --------
    >>> env = RiskAgentsEnv()
    >>> obs, infos = env.reset(seed=0)
    >>> {a: o.shape for a, o in obs.items()}, env.state().shape
    ({'sizer': (9,), 'stop': (13,), 'monitor': (12,)}, (26,))
    """

    metadata: dict[str, Any] = {"name": "risk_agents_v0", "render_modes": []}  # noqa: RUF012

    def __init__(
        self,
        config: EnvConfig | None = None,
        *,
        market: MarketModel | None = None,
        base_weights: ArrayLike | None = None,
        reentry_delay: int = 5,
        wick: float = 0.5,
    ) -> None:
        self.config = config if config is not None else EnvConfig(asset_count=3, market=MarketKind.REGIME)
        n = self.config.asset_count
        self.market = market if market is not None else make_market(self.config)
        if self.market.n_assets != n:
            raise InvalidInputError(f"market has {self.market.n_assets} assets but asset_count is {n}")
        base = np.full(n, 1.0 / n) if base_weights is None else np.asarray(base_weights, dtype=np.float64)
        if base.shape != (n,) or not np.all(base >= 0) or base.sum() > 1 + 1e-9:
            raise InvalidInputError(f"base_weights must be {n} values >= 0 summing to <= 1, got {base}")
        if reentry_delay < 1 or wick < 0:
            raise InvalidInputError(f"need reentry_delay >= 1 and wick >= 0, got {reentry_delay}, {wick}")
        self.base_weights, self.reentry_delay, self.wick = base, int(reentry_delay), float(wick)
        self.possible_agents = list(AGENTS)
        self.agents: list[str] = []
        self._obs_spaces = {a: gym.spaces.Box(-np.inf, np.inf, (obs_dim(a, n),), np.float32) for a in AGENTS}
        self._act_spaces: dict[str, gym.spaces.Space[Any]] = {
            a: gym.spaces.Box(np.array(low, np.float32), np.array(high, np.float32))
            for a, (low, high) in ACTION_BOUNDS.items()
        }
        self._act_spaces["monitor"] = gym.spaces.Discrete(len(MonitorAction))
        self.state_space = gym.spaces.Box(-np.inf, np.inf, (obs_dim("state", n),), np.float32)
        self._book = Book(self.config, 1)
        self._h = history_length(self.config)
        self._layout = observation_layout(self.config)
        self._rng: np.random.Generator | None = None
        self._raw = np.zeros((self._h + self.config.max_steps, n))

    # -- spaces ----------------------------------------------------------------------------------
    @functools.cache  # noqa: B019 (PettingZoo wants the same object each call; env lives as long)
    def observation_space(self, agent: str) -> gym.spaces.Space[Any]:
        """The agent's observation space (an unbounded float32 box of its documented length)."""
        return self._obs_spaces[agent]

    @functools.cache  # noqa: B019
    def action_space(self, agent: str) -> gym.spaces.Space[Any]:
        """The agent's action space (see the module docstring)."""
        return self._act_spaces[agent]

    # -- episode ---------------------------------------------------------------------------------
    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, ObsArray], dict[str, dict[str, Any]]]:
        """Start an episode on a fresh market path: all in position at the base allocation's entry."""
        if seed is not None or self._rng is None:
            self._rng = seeding.np_random(seed)[0]
        n, h = self.config.asset_count, self._h
        path = self.market.sample_path(self._rng, h + self.config.max_steps)
        self._raw = checked_path(path, h + self.config.max_steps, n)
        self._book.start(0, self._raw.copy())
        close = np.vstack([np.ones((1, n)), np.cumprod(1.0 + self._raw, axis=0)])
        high, low = synthetic_bars(close, self.wick)
        atr = np.column_stack([wilder_atr(high[:, i], low[:, i], close[:, i], ATR_PERIOD) for i in range(n)])
        self._close, self._atr_frac = close, np.maximum(atr / close, ATR_FLOOR)
        self._entry = close[h].copy()
        self._high = close[h].copy()
        self._in_position = np.ones(n, dtype=bool)
        self._age = np.zeros(n, dtype=np.int64)
        self._cooldown = np.zeros(n, dtype=np.int64)
        self._last_return = 0.0
        self._stops_hit = np.zeros(n, dtype=bool)
        self._values = np.zeros(self.config.max_steps + 1)
        self._values[0] = float(self._book.value[0])
        self.agents = list(AGENTS)
        return self._observations(), {a: self._info() for a in self.agents}

    def decode(self, actions: dict[str, Any]) -> tuple[float, float, bool, MonitorAction]:
        """``(scale, stop_multiple, trailing, monitor_action)`` of a joint action (clipped to the spaces)."""
        scale = float(np.clip(np.asarray(actions["sizer"], np.float64).reshape(-1)[0], 0.0, 1.0))
        stop = np.asarray(actions["stop"], np.float64).reshape(-1)
        k = float(np.clip(stop[0], *STOP_RANGE))
        monitor = MonitorAction(int(np.asarray(actions["monitor"]).reshape(-1)[0]))
        return scale, k, bool(stop[1] >= 0.5), monitor

    def target_weights(self, scale: float, monitor: MonitorAction) -> FloatArray:
        """Assets then cash: ``s * (1 - cut) * b_i`` for assets in position, the rest in cash."""
        g = np.where(self._in_position, scale * (1.0 - MONITOR_CUTS[monitor]) * self.base_weights, 0.0)
        return np.append(g, 1.0 - g.sum())

    def step(
        self, actions: dict[str, Any]
    ) -> tuple[
        dict[str, ObsArray],
        dict[str, float],
        dict[str, bool],
        dict[str, bool],
        dict[str, dict[str, Any]],
    ]:
        """Apply the joint action for one day; every agent gets the shared reward."""
        if not self.agents:
            raise InvalidInputError("step called before reset() or after the episode ended; call reset()")
        missing = set(AGENTS) - set(actions)
        if missing:
            raise InvalidInputError(f"actions missing for agents {sorted(missing)}")
        scale, k, trailing, monitor = self.decode(actions)
        book, now = self._book, self._h + int(self._book.t[0])
        target = self.target_weights(scale, monitor)
        # Stops: the day's earned return of a stopped asset is its exit return (Book earns paths[now]).
        ref = np.where(trailing, self._high, self._entry)
        stop_rel = ref * (1.0 - k * self._atr_frac[now]) / self._close[now]
        r = self._raw[now]
        earned, hit = stop_exit_return(r, stop_rel, self.wick)
        hit &= self._in_position & (target[:-1] > 0)
        book.paths[0, now] = np.where(hit, earned, r)
        value_before = float(book.value[0])
        book.step(target[None, :])
        self._last_return = float(book.value[0]) / value_before - 1.0
        self._values[int(book.t[0])] = float(book.value[0])
        self._update_positions(hit, self._close[now + 1])
        terminated, truncated = bool(book.terminated[0]), bool(book.truncated[0])
        reward = float(book.reward[0])
        obs = self._observations()
        info = self._info() | {"stops_hit": hit.copy(), "scale": scale, "stop_multiple": k,
                               "trailing": trailing, "monitor": monitor.name.lower()}  # fmt: skip
        agents = self.agents
        if terminated or truncated:
            self.agents = []
        return (
            obs,
            dict.fromkeys(agents, reward),
            dict.fromkeys(agents, terminated),
            dict.fromkeys(agents, truncated),
            {a: dict(info) for a in agents},
        )

    def _update_positions(self, hit: NDArray[np.bool_], close: FloatArray) -> None:
        """Stopped assets go flat for ``reentry_delay`` days, then re-enter at the close; a position
        held :data:`POSITION_HORIZON` steps restarts at the close."""
        self._stops_hit = hit
        self._in_position &= ~hit
        self._cooldown[hit] = self.reentry_delay + 1  # counted down below, this day included
        flat = ~self._in_position
        self._cooldown[flat] -= 1
        back = flat & (self._cooldown <= 0)
        self._in_position |= back
        self._age = np.where(self._in_position & ~back, self._age + 1, 0)
        restart = back | (self._age >= POSITION_HORIZON)
        self._age[restart] = 0
        self._entry[restart] = close[restart]
        self._high[restart] = close[restart]
        self._high = np.where(self._in_position, np.maximum(self._high, close), self._high)

    # -- read-only views of the current state (for rule-based components) -------------------------
    @property
    def drawdown(self) -> float:
        """The book's drawdown now, ``1 - V / peak`` with the peak of the last :data:`DRAWDOWN_WINDOW`
        values (0 at the start of an episode), as the manager's rules measure it."""
        t = int(self._book.t[0])
        return float(1.0 - self._values[t] / self._values[max(0, t + 1 - DRAWDOWN_WINDOW) : t + 1].max())

    def past_base_returns(self, lookback: int) -> FloatArray:
        """Daily returns of the base allocation over the last ``lookback`` days before now.

        ``r_t @ base_weights`` for the days already seen (warm-up history included, at most the
        ``history + t`` rows available); never the day about to be traded.
        """
        if lookback < 1:
            raise InvalidInputError(f"lookback must be >= 1, got {lookback}")
        now = self._h + int(self._book.t[0])
        out: FloatArray = self._raw[max(0, now - lookback) : now] @ self.base_weights
        return out

    # -- resume ----------------------------------------------------------------------------------
    _STATE_ARRAYS: Final = ("_raw", "_close", "_atr_frac", "_entry", "_high", "_in_position", "_cooldown",
                            "_stops_hit", "_age", "_values")  # fmt: skip

    def state_dict(self) -> dict[str, Any]:
        """The episode's full state (book, positions, path, generator) so training can resume exactly."""
        if self._rng is None:
            raise InvalidInputError("state_dict needs a reset() environment")
        return {
            "book": self._book.state_arrays(),
            "arrays": {k: getattr(self, k).copy() for k in self._STATE_ARRAYS},
            "last_return": self._last_return,
            "agents": list(self.agents),
            "rng": self._rng.bit_generator.state,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict` taken from an environment with the same config."""
        self._book.load_arrays(state["book"])
        for name in self._STATE_ARRAYS:
            setattr(self, name, np.array(state["arrays"][name], dtype=getattr(self, name).dtype))
        self._last_return = float(state["last_return"])
        self.agents = [str(a) for a in state["agents"]]
        self._rng = seeding.np_random(0)[0]
        self._rng.bit_generator.state = state["rng"]

    # -- observations ----------------------------------------------------------------------------
    def _blocks(self) -> dict[str, FloatArray]:
        b, n = self._book, self.config.asset_count
        t = int(b.t[0])
        now = self._h + t
        features = b.features[0, t].astype(np.float64)
        return observation_blocks(
            rsi=features[self._layout["rsi"]],
            momentum=features[self._layout["momentum"]],
            volatility=features[self._layout["volatility"]],
            close=self._close[now],
            atr_frac=self._atr_frac[now],
            high=self._high,
            entry=self._entry,
            in_position=self._in_position,
            drawdown=self.drawdown,
            exposure=float(b.weights[0, :n].sum()),
            last_return=self._last_return,
            time=t / self.config.max_steps,
        )

    def _observations(self) -> dict[str, ObsArray]:
        return agent_observations(self._blocks())

    def state(self) -> ObsArray:
        """The joint state for the centralised critic (``7n + 5`` floats, see the module docstring)."""
        blocks = self._blocks()
        return np.concatenate([blocks[k] for k in OBS_BLOCKS["state"]]).astype(np.float32)

    def _info(self) -> dict[str, Any]:
        return self._book.info(0)

    def render(self) -> None:
        """No rendering (``render_modes`` is empty)."""

    def close(self) -> None:
        """Nothing to release."""
