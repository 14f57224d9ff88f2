"""The portfolio environment: ``TradingEnvironment`` (gymnasium) and the batched ``VectorTradingEnv``.

An episode starts all in cash with ``initial_balance``. Each step the agent names target weights
over the ``n`` assets plus cash, through an unconstrained action ``a`` of length ``n + 1`` mapped by
``softmax(clip(a, -10, 10))`` (:func:`action_to_weights`) or directly with ``step_weights``:

1. Rebalance from the held (drifted) weights ``h`` to the target ``g``, unless
   ``sum |g - h|`` (assets and cash) is below ``no_trade_band``. With ``rebalance_rate`` ``k < 1``
   (partial rebalancing) the book moves only to ``h + k (g - h)``; the weights then used below
   are those, and ``u`` is scaled by ``k``. Turnover is the traded asset
   value as a fraction of the portfolio, ``u = sum_assets |g_i - h_i|``; the cost fraction is
   ``c = transaction_cost * u``, and the cost is ``c * V_t`` in currency.
2. Earn the day's simple returns ``r``: ``growth = g_cash + sum_i g_i (1 + r_i)``,
   ``V_(t+1) = V_t (1 - c) growth``; the weights drift to ``g_i (1 + r_i) / growth``.
3. Reward, with the step return ``R = V_(t+1) / V_t - 1`` (net of costs) and drawdown
   ``DD = 1 - V_(t+1) / max(V_0..V_(t+1))``:

   - SHAPED (default): ``R - vol_penalty * vol - drawdown_penalty * max(DD - drawdown_free, 0)
     - cost_penalty * c``, where ``vol`` is the population standard deviation (ddof=0) of this
     episode's last ``min(t + 1, window)`` step returns ``R``, the current one included (0 on the
     first step).
   - LOG_RETURN: ``log(V_(t+1) / V_t)``.
4. ``terminated`` when ``V_(t+1) < ruin_fraction * initial_balance`` (ruin); ``truncated`` after
   ``max_steps`` steps (never both).

Observations are described in :mod:`advanced_risk.rl.portfolio.accounting` (``observation_dim(config)``).

Seeding: ``TradingEnvironment.reset(seed=s)`` seeds gymnasium's ``np_random`` (PCG64 from
``SeedSequence(s)``) and each episode's market path is drawn from it, so later ``reset()`` calls
continue that generator. Environment ``i`` of ``VectorTradingEnv(config, N, seed=s)`` (or after
``reset(seed=s)``) behaves exactly like a ``TradingEnvironment`` reset with seed ``s + i``, its
later episodes drawing from its own generator.
"""

from __future__ import annotations

from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium.utils import seeding
from numpy.typing import ArrayLike, NDArray

from advanced_risk.config import EnvConfig
from advanced_risk.errors import InvalidInputError
from advanced_risk.measures.validation import FloatArray
from advanced_risk.rl.portfolio.accounting import (
    ACTION_BOUND,
    action_to_weights,
    history_length,
    observation_dim,
)
from advanced_risk.rl.portfolio.book import Book
from advanced_risk.rl.portfolio.market import MarketModel, checked_path, make_market

__all__ = ["TradingEnvironment", "VectorTradingEnv", "action_to_weights", "observation_dim"]

ObsArray = NDArray[np.float32]


def resolve_env_config(config: EnvConfig | None, overrides: dict[str, Any]) -> EnvConfig:
    """``config`` (default ``EnvConfig()``) with keyword overrides applied.

    Raises
    ------
    InvalidInputError
        ``config`` is not an EnvConfig.
    ConfigError
        An unknown or bad override.
    """
    if config is not None and not isinstance(config, EnvConfig):
        raise InvalidInputError(f"config must be an EnvConfig, got {type(config).__name__}")
    if not overrides:
        return config if config is not None else EnvConfig()
    base = config.to_dict() if config is not None else {}
    return EnvConfig.from_dict({**base, **overrides})


def _spaces(config: EnvConfig) -> tuple[gym.spaces.Box, gym.spaces.Box]:
    """Observation space (unbounded float32) and action space (the ``[-10, 10]`` box)."""
    m = config.asset_count + 1
    obs = gym.spaces.Box(-np.inf, np.inf, shape=(observation_dim(config),), dtype=np.float32)
    act = gym.spaces.Box(-ACTION_BOUND, ACTION_BOUND, shape=(m,), dtype=np.float32)
    return obs, act


def _check_market(market: MarketModel, config: EnvConfig) -> MarketModel:
    if not isinstance(market, MarketModel):
        raise InvalidInputError(f"market must implement MarketModel, got {type(market).__name__}")
    if market.n_assets != config.asset_count:
        raise InvalidInputError(
            f"market has {market.n_assets} assets but asset_count is {config.asset_count}"
        )
    return market


def _as_actions(actions: ArrayLike, shape: tuple[int, ...], name: str = "action") -> FloatArray:
    a = np.asarray(actions, dtype=np.float64)
    if a.shape != shape:
        raise InvalidInputError(f"{name} must have shape {shape}, got {a.shape}")
    if np.isnan(a).any():
        raise InvalidInputError(f"{name} must not contain NaN, got {a.tolist()}")
    return a


def as_target_weights(weights: ArrayLike, shape: tuple[int, ...]) -> FloatArray:
    """Validated target weights of ``shape``: finite, >= 0 (tiny negatives from solvers clipped), each
    row summing to 1 (within 1e-6; renormalised when off by more than 1e-12).

    Raises
    ------
    InvalidInputError
        A wrong shape, a NaN, inf or negative weight, or a row not summing to 1.
    """
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != shape:
        raise InvalidInputError(f"target_weights must have shape {shape}, got {w.shape}")
    if not np.all(np.isfinite(w)) or np.any(w < -1e-9):
        raise InvalidInputError(f"target_weights must be finite and >= 0, got {w.tolist()}")
    total = w.sum(axis=-1, keepdims=True)
    if np.any(np.abs(total - 1.0) > 1e-6):
        raise InvalidInputError(
            f"target_weights (assets + cash) must sum to 1, got sums {np.ravel(total).tolist()}"
        )
    w = np.maximum(w, 0.0)
    total = w.sum(axis=-1, keepdims=True)
    # Rows already summing to 1 (to 1e-12) pass unchanged, so buy-and-hold trades exactly nothing.
    out: FloatArray = np.where(np.abs(total - 1.0) > 1e-12, w / total, w)
    return out


class TradingEnvironment(gym.Env[ObsArray, NDArray[np.float32]]):
    """Long-only portfolio over ``asset_count`` assets plus cash (see the module docstring).

    Parameters
    ----------
    config : the settings; default ``EnvConfig()``.
    market : a :class:`~advanced_risk.rl.portfolio.market.MarketModel`; default ``make_market(config)``.
    **overrides : ``EnvConfig`` fields, e.g. ``TradingEnvironment(asset_count=5,
        transaction_cost=0.001)``; they override ``config``. Unknown names raise ``ConfigError``.

    Examples
    --------
    >>> env = TradingEnvironment(asset_count=3, max_steps=5)
    >>> obs, info = env.reset(seed=0)
    >>> obs.shape, env.action_space.shape
    ((74,), (4,))
    >>> obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    >>> round(float(info["weights"].sum()), 12)
    1.0
    """

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012 (gymnasium's class attribute)

    def __init__(
        self, config: EnvConfig | None = None, *, market: MarketModel | None = None, **overrides: Any
    ) -> None:
        super().__init__()
        self.config = resolve_env_config(config, overrides)
        self.market = _check_market(market if market is not None else make_market(self.config), self.config)
        self.observation_space, self.action_space = _spaces(self.config)  # type: ignore[assignment]
        self._book = Book(self.config, 1)
        self._obs = np.zeros((1, observation_dim(self.config)), dtype=np.float32)
        self._live = False

    @property
    def observation_dim(self) -> int:
        """Length of an observation."""
        return observation_dim(self.config)

    @property
    def action_dim(self) -> int:
        """Length of an action: ``asset_count + 1`` (assets then cash)."""
        return self.config.asset_count + 1

    def action_to_weights(self, action: ArrayLike) -> FloatArray:
        """The target weights (assets then cash) an action maps to: ``softmax(clip(a, -10, 10))``."""
        return action_to_weights(_as_actions(action, (self.action_dim,)))

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[ObsArray, dict[str, Any]]:
        """Start an episode on a fresh market path (see the module docstring for seeding)."""
        super().reset(seed=seed)
        n_rows = history_length(self.config) + self.config.max_steps
        path = self.market.sample_path(self.np_random, n_rows)
        self._book.start(0, checked_path(path, n_rows, self.config.asset_count))
        self._live = True
        return self._observation(), self._info()

    def step(
        self, action: NDArray[np.float32] | ArrayLike
    ) -> tuple[ObsArray, SupportsFloat, bool, bool, dict[str, Any]]:
        """Trade to ``action_to_weights(action)``, earn one day; returns gymnasium's 5-tuple."""
        target = action_to_weights(_as_actions(action, (self.action_dim,)))
        return self._advance(target)

    def step_weights(
        self, target_weights: ArrayLike
    ) -> tuple[ObsArray, SupportsFloat, bool, bool, dict[str, Any]]:
        """:meth:`step` with the target weights given directly (``asset_count + 1``, sum 1, >= 0).

        Baselines use it: equal weight, minimum variance, and buy-and-hold (target
        ``info["weights"]``, the drifted weights, which trades nothing).
        """
        return self._advance(as_target_weights(target_weights, (self.action_dim,)))

    def _advance(self, target: FloatArray) -> tuple[ObsArray, SupportsFloat, bool, bool, dict[str, Any]]:
        if not self._live:
            raise InvalidInputError("step called before reset() or after the episode ended; call reset()")
        book = self._book
        book.step(target[None, :])
        terminated, truncated = bool(book.terminated[0]), bool(book.truncated[0])
        self._live = not (terminated or truncated)
        return self._observation(), float(book.reward[0]), terminated, truncated, self._info()

    def _observation(self) -> ObsArray:
        self._book.observe(self._obs)
        obs: ObsArray = self._obs[0].copy()
        return obs

    def _info(self) -> dict[str, Any]:
        return self._book.info(0)


class VectorTradingEnv:
    """``num_envs`` portfolios stepped at once, with same-step autoreset (the trainer's env).

    Identical to ``num_envs`` :class:`TradingEnvironment` instances (env ``i`` seeded ``seed + i``,
    see the module docstring), but one compiled kernel call advances them all.

    Parameters
    ----------
    config : the settings shared by every environment.
    num_envs : number of portfolios, >= 1.
    seed : env ``i`` gets generator ``np_random(seed + i)``; None draws fresh entropy.
    market : a :class:`~advanced_risk.rl.portfolio.market.MarketModel`; default ``make_market(config)``.
    """

    def __init__(
        self,
        config: EnvConfig | None = None,
        num_envs: int = 8,
        seed: int | None = None,
        *,
        market: MarketModel | None = None,
    ) -> None:
        if not isinstance(num_envs, int | np.integer) or num_envs < 1:
            raise InvalidInputError(f"num_envs must be an integer >= 1, got {num_envs!r}")
        self.config = resolve_env_config(config, {})
        self.market = _check_market(market if market is not None else make_market(self.config), self.config)
        self.num_envs = int(num_envs)
        self.observation_dim = observation_dim(self.config)
        self.action_dim = self.config.asset_count + 1
        self.single_observation_space, self.single_action_space = _spaces(self.config)
        self._rows_needed = history_length(self.config) + self.config.max_steps
        self._book = Book(self.config, self.num_envs)
        self._obs = np.zeros((self.num_envs, self.observation_dim), dtype=np.float32)
        self._rngs = self._generators(seed)
        self._started = False

    def _generators(self, seed: int | None) -> list[np.random.Generator]:
        if seed is None:
            return [seeding.np_random(None)[0] for _ in range(self.num_envs)]
        return [seeding.np_random(int(seed) + i)[0] for i in range(self.num_envs)]

    def _start(self, e: int) -> None:
        path = self.market.sample_path(self._rngs[e], self._rows_needed)
        self._book.start(e, checked_path(path, self._rows_needed, self.config.asset_count))

    def reset(self, seed: int | None = None) -> tuple[ObsArray, dict[str, Any]]:
        """Start a new episode in every environment; ``seed`` reseeds env ``i`` with ``seed + i``."""
        if seed is not None:
            self._rngs = self._generators(seed)
        for e in range(self.num_envs):
            self._start(e)
        self._started = True
        self._book.observe(self._obs)
        return self._obs.copy(), self._info()

    def step(
        self, actions: ArrayLike
    ) -> tuple[ObsArray, FloatArray, NDArray[np.bool_], NDArray[np.bool_], dict[str, Any]]:
        """Trade env ``i`` to ``action_to_weights(actions[i])`` and earn one day, autoresetting.

        Returns ``(obs, rewards, terminated, truncated, info)``; finished environments are already
        reset in ``obs``, their last observation is in ``info["final_obs"]``, and
        ``info["episode_return"]`` / ``info["episode_length"]`` hold the finished episodes' sum of
        rewards and step count (NaN / 0 elsewhere). ``portfolio_value``, ``weights``, ``cost``,
        ``drawdown`` and ``turnover`` describe the step just taken (before any reset).
        """
        a = _as_actions(actions, (self.num_envs, self.action_dim), "actions")
        return self._advance(action_to_weights(a))

    def step_weights(
        self, target_weights: ArrayLike
    ) -> tuple[ObsArray, FloatArray, NDArray[np.bool_], NDArray[np.bool_], dict[str, Any]]:
        """:meth:`step` with target weights ``(num_envs, asset_count + 1)`` given directly."""
        return self._advance(as_target_weights(target_weights, (self.num_envs, self.action_dim)))

    def _advance(
        self, target: FloatArray
    ) -> tuple[ObsArray, FloatArray, NDArray[np.bool_], NDArray[np.bool_], dict[str, Any]]:
        if not self._started:
            raise InvalidInputError("step called before reset(); call reset() first")
        book = self._book
        book.step(target)
        book.observe(self._obs)
        info = self._info()
        rewards = book.reward.copy()
        terminated = book.terminated.copy()
        truncated = book.truncated.copy()
        done = np.flatnonzero(terminated | truncated)
        info["final_obs"] = self._obs.copy()
        info["episode_return"] = np.full(self.num_envs, np.nan)
        info["episode_length"] = np.zeros(self.num_envs, dtype=np.int64)
        if done.size:
            info["episode_return"][done] = book.episode_return[done]
            info["episode_length"][done] = book.t[done]
            for e in done:
                self._start(int(e))
            sub = np.empty((done.size, self.observation_dim), dtype=np.float32)
            book.observe(sub, done)
            self._obs[done] = sub
        return self._obs.copy(), rewards, terminated, truncated, info

    def _info(self) -> dict[str, Any]:
        b = self._book
        return {
            "portfolio_value": b.value.copy(),
            "weights": b.weights.copy(),
            "cost": b.cost.copy(),
            "drawdown": b.drawdown(),
            "turnover": b.turnover.copy(),
        }

    def state_dict(self) -> dict[str, Any]:
        """The environments' full state (books, pending observations, generator states) for resume.

        Plain arrays and dicts only; with :meth:`PPOAgent.state_dict` restored alongside, training
        continues bit for bit.
        """
        book = self._book.state_arrays()
        return {
            "num_envs": self.num_envs,
            "book": book,
            "obs": self._obs.copy(),
            "rngs": [rng.bit_generator.state for rng in self._rngs],
            "started": self._started,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict` taken from an env with the same config and ``num_envs``."""
        if int(state["num_envs"]) != self.num_envs:
            raise InvalidInputError(f"state has num_envs={state['num_envs']}, this env has {self.num_envs}")
        self._book.load_arrays(state["book"])
        self._obs[...] = state["obs"]
        for rng, rng_state in zip(self._rngs, state["rngs"], strict=True):
            rng.bit_generator.state = rng_state
        self._started = bool(state["started"])

    def close(self) -> None:
        """Nothing to release (kept for the gymnasium vector-env interface)."""
