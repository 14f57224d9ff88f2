"""RLPortfolioManager: the trained PPO allocator, volatility-target leverage and Kelly sizing in one object.

Its methods: :meth:`~RLPortfolioManager.train`, :meth:`~RLPortfolioManager.rebalance`,
:meth:`~RLPortfolioManager.compute_leverage` and :meth:`~RLPortfolioManager.apply_kelly_criterion`.

``rebalance`` contract
----------------------
The policy was trained on :class:`~advanced_risk.rl.portfolio.env.TradingEnvironment` observations, so at
inference it must see exactly the same vector. ``rebalance(returns, weights, drawdown)`` takes

- ``returns``: ``(T, asset_count)`` recent **simple** returns, oldest first, one column per asset in
  training order, ``T >= history_length(env_config)`` (``max(window, 28)``, 28 by default);
- ``weights``: the portfolio's current (drifted) weights over the assets **then cash**, ``>= 0``,
  summing to 1 (default: all cash, as an episode starts);
- ``drawdown``: current drawdown ``1 - V / peak(V)`` in ``[0, 1)``;

and builds the observation with the environment's own kernel: the market block (log returns, RSI,
momentum, volatility) is what the env computes after ``T`` returns of a path that starts with these
rows, followed by ``weights`` and ``drawdown``. The env's RSI is Wilder-smoothed from the start of
its path, so for bit-identical observations pass the same history the env saw (the consistency test
does); with a longer history the RSI smoothing has converged anyway. The deterministic policy mean is
mapped to weights with the env's ``softmax(clip(a, -10, 10))`` and traded from ``weights`` the way
the env trades (``no_trade_band``, partial ``rebalance_rate``; with the defaults, the target itself),
so the result is long-only over the assets plus cash and sums to 1.

Leverage and Kelly reuse :mod:`advanced_risk.risk.leverage` and :class:`~advanced_risk.risk.sizing.
KellySizer` (itself built on :mod:`advanced_risk.measures.kelly`), so the manager and the standalone
risk layer give the same numbers for the same settings. Defaults follow ``LeverageConfig`` and
``KellyConfig``: leverage in ``[0, 2]`` aiming at 15 % annualised volatility, half-Kelly capped at 0.25.

One module because it is one class, :class:`RLPortfolioManager`, whose methods share the policy, its
environment settings and the ``rebalance`` contract above.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any, Literal, Self, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray

from advanced_risk.config import EnvConfig, KellyConfig, LeverageConfig, PPOConfig
from advanced_risk.errors import InvalidInputError
from advanced_risk.logs import get_logger
from advanced_risk.measures.validation import FloatArray, as_matrix, check_positive_int, check_range
from advanced_risk.monitoring.drift import FeatureReference
from advanced_risk.risk.leverage import VolatilityTargetLeverage
from advanced_risk.risk.sizing import KellySizer
from advanced_risk.rl.portfolio.accounting import (
    action_to_weights,
    history_length,
    market_dim,
    observation_dim,
)
from advanced_risk.rl.portfolio.asset_names import AssetNames, check_asset_names
from advanced_risk.rl.portfolio.drift import REFERENCE_KEY, stored_reference
from advanced_risk.rl.portfolio.env import VectorTradingEnv, as_target_weights, resolve_env_config
from advanced_risk.rl.portfolio.market import MarketModel
from advanced_risk.rl.portfolio.policy import execute, manager_settings, policy_observation, trade
from advanced_risk.rl.ppo.agent import PPOAgent
from advanced_risk.rl.ppo.io import read_policy_file

__all__ = ["RLPortfolioManager"]

log = get_logger(__name__)
Stats = dict[str, float]


class RLPortfolioManager:
    """PPO portfolio allocator with volatility-target leverage and fractional Kelly sizing.

    Parameters
    ----------
    env_config : the environment the policy is trained on and observes (default ``EnvConfig()``).
    ppo_config : PPO hyperparameters (default ``PPOConfig()``).
    leverage_range : ``(min_leverage, max_leverage)`` of :meth:`compute_leverage`; default
        ``(0.0, 2.0)`` (``LeverageConfig``'s): never levered beyond 2x, cut towards 0 in turmoil.
    target_volatility : annualised volatility :meth:`compute_leverage` aims at (default 0.15).
    kelly_fraction : share of full Kelly used by :meth:`apply_kelly_criterion` (default 0.5).
    kelly_cap : largest fraction of equity Kelly returns (default 0.25).
    market : return generator for training (default ``make_market(env_config)``).
    agent : an existing :class:`PPOAgent` (e.g. loaded); its dims must match ``env_config``.
    asset_names : the assets the policy is trained on, in training order (the columns of its
        returns), e.g. the tickers of the training data; saved with the model. None (default): unnamed.
    **env_overrides : ``EnvConfig`` fields as keywords, e.g.
        ``RLPortfolioManager(asset_count=5)``; they override ``env_config``.

    Raises
    ------
    InvalidInputError
        A bad setting (``ConfigError`` for config fields), an ``agent`` whose dims disagree, or bad
        ``asset_names`` (not ``asset_count`` unique non-blank strings, or one named ``"cash"``).

    Examples
    --------
    >>> manager = RLPortfolioManager(asset_count=3, ppo_config=PPOConfig(device="cpu"))
    >>> manager.compute_leverage(0.30), manager.compute_leverage(0.0)
    (0.5, 2.0)
    >>> round(manager.apply_kelly_criterion(0.6, 1.0, 1.0), 12)   # full Kelly 0.2, half of it
    0.1
    """

    def __init__(
        self,
        env_config: EnvConfig | None = None,
        ppo_config: PPOConfig | None = None,
        *,
        leverage_range: tuple[float, float] = (0.0, 2.0),
        target_volatility: float = 0.15,
        kelly_fraction: float = 0.5,
        kelly_cap: float = 0.25,
        market: MarketModel | None = None,
        agent: PPOAgent | None = None,
        asset_names: Iterable[str] | None = None,
        **env_overrides: Any,
    ) -> None:
        self.env_config = resolve_env_config(env_config, env_overrides)
        self._asset_names = check_asset_names(asset_names, self.env_config.asset_count)
        if ppo_config is not None and not isinstance(ppo_config, PPOConfig):
            raise InvalidInputError(f"ppo_config must be a PPOConfig, got {type(ppo_config).__name__}")
        self.ppo_config = ppo_config if ppo_config is not None else PPOConfig()
        try:
            low, high = leverage_range
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(f"leverage_range must be (min, max), got {leverage_range!r}") from exc
        self.leverage_rule = VolatilityTargetLeverage(
            LeverageConfig(target_volatility=target_volatility, min_leverage=low, max_leverage=high)
        )
        self.kelly = KellySizer(config=KellyConfig(fraction=kelly_fraction, cap=kelly_cap))
        self.market = market
        self.obs_dim = observation_dim(self.env_config)
        self.uncertainty_threshold: float | None = None  # set by calibrate_uncertainty, saved with the model
        self.observation_reference: FeatureReference | None = None
        """Training statistics of the policy's market features for the drift monitor
        (``metadata.user.observation_reference``; docs/drift.md): read by :meth:`load`, written by
        :meth:`save` unless its ``metadata`` has one. None: no drift tracking."""
        self.action_dim = self.env_config.asset_count + 1
        if agent is None:
            agent = PPOAgent(self.obs_dim, self.action_dim, self.ppo_config)
        elif (agent.obs_dim, agent.action_dim) != (self.obs_dim, self.action_dim):
            raise InvalidInputError(
                f"agent has obs_dim={agent.obs_dim}, action_dim={agent.action_dim}; env_config needs "
                f"{self.obs_dim}, {self.action_dim}"
            )
        else:
            self.ppo_config = agent.config
        self.agent = agent
        self._vec_env: VectorTradingEnv | None = None

    @property
    def asset_count(self) -> int:
        """Number of risky assets (weights have one more entry: cash)."""
        return self.env_config.asset_count

    @property
    def asset_names(self) -> AssetNames | None:
        """The assets the policy was trained on, in the order of its inputs and weights (None: unnamed).

        Saved with the model and restored by :meth:`load`; a file saved without names loads with None.
        Setting it validates the names (``InvalidInputError``).
        """
        return self._asset_names

    @asset_names.setter
    def asset_names(self, names: Iterable[str] | None) -> None:
        self._asset_names = check_asset_names(names, self.asset_count)

    @property
    def leverage_range(self) -> tuple[float, float]:
        """``(min_leverage, max_leverage)``."""
        cfg = self.leverage_rule.config
        return (cfg.min_leverage, cfg.max_leverage)

    @property
    def target_volatility(self) -> float:
        """Annualised volatility aimed at by :meth:`compute_leverage`."""
        return self.leverage_rule.config.target_volatility

    def __repr__(self) -> str:
        return (
            f"RLPortfolioManager(asset_count={self.asset_count}, leverage_range={self.leverage_range}, "
            f"target_volatility={self.target_volatility}, kelly={self.kelly.config!r})"
        )

    # -- training ----------------------------------------------------------------------------------
    def train(
        self,
        episodes: int | None = None,
        total_timesteps: int | None = None,
        callback: Callable[[int, Stats], bool | None] | None = None,
    ) -> list[Stats]:
        """Train the policy with PPO on a :class:`VectorTradingEnv`; return the per-update stats.

        Parameters
        ----------
        episodes : length of the run in episodes: ``episodes * max_steps``
            environment steps. Give this or ``total_timesteps``, not both.
        total_timesteps : length of the run in environment steps (default
            ``ppo_config.total_timesteps``). Rounded down to whole rollouts, at least one.
        callback : ``callback(update_idx, stats)`` after each update; a truthy return stops.

        The vector env (``ppo_config.num_envs`` portfolios, seeded ``ppo_config.seed``) is built on
        the first call and kept, so a second call continues on the same market stream.
        """
        if episodes is not None and total_timesteps is not None:
            raise InvalidInputError("give episodes or total_timesteps, not both")
        steps = None if total_timesteps is None else check_positive_int(total_timesteps, "total_timesteps")
        if episodes is not None:
            steps = check_positive_int(episodes, "episodes") * self.env_config.max_steps
        if self._vec_env is None:
            self._vec_env = VectorTradingEnv(
                self.env_config, self.ppo_config.num_envs, seed=self.ppo_config.seed, market=self.market
            )
        log.info("portfolio_training_started", total_timesteps=steps, asset_count=self.asset_count)
        history = self.agent.train(self._vec_env, steps, callback)
        last = history[-1] if history else {}
        log.info(
            "portfolio_training_finished",
            updates=len(history),
            global_step=self.agent.global_step,
            episode_return_mean=last.get("episode_return_mean", float("nan")),
        )
        return history

    # -- allocation --------------------------------------------------------------------------------
    def observation(
        self, returns: ArrayLike, weights: ArrayLike | None = None, drawdown: float = 0.0
    ) -> NDArray[np.float32]:
        """The environment's observation for this history, weights and drawdown (see the module docstring).

        Raises
        ------
        InvalidInputError
            ``returns`` not finite, not ``(T, asset_count)``, too short, or a return <= -1;
            ``weights`` of the wrong length, negative or not summing to 1; ``drawdown`` outside [0, 1).
        """
        return self._observe(returns, weights, drawdown)[0]

    def _observe(
        self, returns: ArrayLike, weights: ArrayLike | None, drawdown: float
    ) -> tuple[NDArray[np.float32], FloatArray]:
        """(observation, validated float64 current weights)."""
        cfg = self.env_config
        r = as_matrix(returns, "returns", min_rows=history_length(cfg))
        if r.shape[1] != cfg.asset_count:
            raise InvalidInputError(
                f"returns must have one column per asset ({cfg.asset_count}), got shape {r.shape}"
            )
        if (r <= -1.0).any():
            raise InvalidInputError(f"returns must be > -1 (simple returns), got {float(r.min())}")
        if weights is None:
            w = np.zeros(self.action_dim)
            w[-1] = 1.0
        else:
            w = as_target_weights(weights, (self.action_dim,))
        dd = check_range(drawdown, "drawdown", 0.0, 1.0, hi_open=True)
        return self._observation_trusted(r, w, dd), w

    def _observation_trusted(
        self, returns: FloatArray, weights: FloatArray, drawdown: float
    ) -> NDArray[np.float32]:
        """The observation from inputs already validated (the manager's hot path skips the checks)."""
        return policy_observation(returns, weights, drawdown, self.env_config)

    def rebalance_trusted(
        self, returns: FloatArray, weights: FloatArray, drawdown: float, n_samples: int = 10
    ) -> tuple[FloatArray, FloatArray]:
        """:meth:`rebalance` with uncertainty, for inputs the caller guarantees valid (no checks).

        ``returns`` (T >= history_length, asset_count) float64, ``weights`` (asset_count + 1,) >= 0
        summing to 1, ``drawdown`` in [0, 1). Used by the risk manager, whose edge already validated.
        """
        obs = self._observation_trusted(returns, weights, drawdown)
        action, std = self.agent.select_action_with_uncertainty(obs, n_samples)
        return trade(weights, action, self.env_config), std.astype(np.float64)

    @overload
    def rebalance(
        self,
        returns: ArrayLike,
        weights: ArrayLike | None = ...,
        drawdown: float = ...,
        *,
        with_uncertainty: Literal[False] = ...,
        n_samples: int = ...,
    ) -> FloatArray: ...

    @overload
    def rebalance(
        self,
        returns: ArrayLike,
        weights: ArrayLike | None = ...,
        drawdown: float = ...,
        *,
        with_uncertainty: Literal[True],
        n_samples: int = ...,
    ) -> tuple[FloatArray, FloatArray]: ...

    def rebalance(
        self,
        returns: ArrayLike,
        weights: ArrayLike | None = None,
        drawdown: float = 0.0,
        *,
        with_uncertainty: bool = False,
        n_samples: int = 10,
    ) -> FloatArray | tuple[FloatArray, FloatArray]:
        """Target weights over the assets then cash: ``softmax(clip(policy_mean(obs), -10, 10))``.

        Deterministic: the same input always gives the same weights (dropout off, no sampling).

        Parameters
        ----------
        returns, weights, drawdown : the recent history and the portfolio now (see
            :meth:`observation` and the module docstring).
        with_uncertainty : also return the MC-dropout standard deviation of the action.
        n_samples : dropout masks for the uncertainty (default 10).

        Returns
        -------
        ``(asset_count + 1,)`` float64 weights to hold after this rebalance, ``>= 0``, summing to 1:
        the policy's target, traded the way the env trades it (unchanged ``weights`` inside
        ``no_trade_band``, ``weights + rebalance_rate * (target - weights)`` with partial
        rebalancing; simply the target with the defaults). With ``with_uncertainty``,
        a pair ``(weights, action_std)`` where ``action_std`` is the per-entry standard deviation of
        the pre-softmax action over the dropout masks (0 when the policy has no dropout).

        Examples
        --------
        >>> manager = RLPortfolioManager(asset_count=2, ppo_config=PPOConfig(device="cpu"))
        >>> w = manager.rebalance(np.full((30, 2), 0.001))
        >>> w.shape, bool(abs(w.sum() - 1.0) < 1e-12), bool((w >= 0).all())
        ((3,), True, True)
        """
        obs, held = self._observe(returns, weights, drawdown)
        if not with_uncertainty:
            return self._execute(held, action_to_weights(self.agent.select_action(obs)))
        action, std = self.agent.select_action_with_uncertainty(obs, n_samples)
        return self._execute(held, action_to_weights(action)), std.astype(np.float64)

    def _execute(self, held: FloatArray, target: FloatArray) -> FloatArray:
        """Weights after trading from ``held`` to ``target`` as the env trades (band, partial rate)."""
        return execute(held, target, self.env_config)

    # -- leverage and sizing -----------------------------------------------------------------------
    def compute_leverage(self, volatility: float, *, correlation_shock: bool = False) -> float:
        """Volatility-target leverage ``clip(target_volatility / volatility, *leverage_range)``.

        Non-increasing in ``volatility``; 0 volatility gives the maximum; a correlation shock halves
        the result (floored at the minimum). See :mod:`advanced_risk.risk.leverage`.

        Parameters
        ----------
        volatility : current annualised volatility, finite and ``>= 0``.

        Raises
        ------
        InvalidInputError
            ``volatility`` NaN, infinite, negative or not a number (never a silent 10x).
        """
        vol = check_range(volatility, "volatility", 0.0, np.inf, hi_open=True)
        return self.leverage_rule.leverage(vol, correlation_shock=correlation_shock)

    def apply_kelly_criterion(self, win_rate: float, avg_win: float, avg_loss: float) -> float:
        """Fractional, capped Kelly size: ``clip(kelly_fraction * (p - (1 - p) / b), 0, kelly_cap)``.

        ``b = avg_win / avg_loss``; a negative edge gives 0 (Kelly never shorts here).

        Parameters
        ----------
        win_rate : probability of a winning trade in [0, 1].
        avg_win : average gain of a winner (> 0).
        avg_loss : average loss of a loser as a positive magnitude (> 0).
        """
        return self.kelly.size(win_rate, avg_win, avg_loss)

    # -- persistence -------------------------------------------------------------------------------
    def _settings(self) -> dict[str, Any]:
        kelly = self.kelly.config
        return {
            "env_config": self.env_config.to_dict(),
            "leverage_range": list(self.leverage_range),
            "target_volatility": self.target_volatility,
            "kelly_fraction": kelly.fraction,
            "kelly_cap": kelly.cap,
            "uncertainty_threshold": self.uncertainty_threshold,
            "asset_names": None if self._asset_names is None else list(self._asset_names),
        }

    def save(self, path: str | os.PathLike[str], metadata: dict[str, Any] | None = None) -> str:
        """Write the policy file (atomic, SHA-256) with the env config and settings; return the digest.

        The settings (``metadata.user.rl_portfolio_manager`` in the header) hold the env config,
        leverage and Kelly settings, the uncertainty threshold and :attr:`asset_names`.
        ``metadata`` (JSON values, e.g. the training data range and command) is stored beside them,
        with :attr:`observation_reference` (when set) unless ``metadata`` has one.
        """
        user = {**(metadata or {}), "rl_portfolio_manager": self._settings()}
        if self.observation_reference is not None:
            user.setdefault(REFERENCE_KEY, self.observation_reference.to_dict())
        digest = self.agent.save(path, metadata=user)
        log.info("portfolio_manager_saved", path=str(path), sha256=digest)
        return digest

    @classmethod
    def load(cls, path: str | os.PathLike[str], map_location: str = "cpu") -> Self:
        """Rebuild a manager saved by :meth:`save`: same env config (observation layout), policy, settings.

        Needs torch (the agent can train on); to trade with a saved policy without torch, use
        :class:`~advanced_risk.rl.portfolio.policy.PortfolioPolicy` (what the risk manager loads for
        a model path).

        Raises
        ------
        ModelLoadError
            Missing, truncated or corrupt file, a file without manager settings, a policy whose
            dims do not match the stored env config, or invalid stored asset names. A file saved
            without asset names loads with ``asset_names = None``.
        """
        stored = read_policy_file(path)
        settings = manager_settings(stored, path)
        agent = PPOAgent.from_policy_file(stored, map_location, path)
        low, high = settings.leverage_range
        manager = cls(
            settings.env_config,
            agent.config,
            leverage_range=(low, high),
            target_volatility=settings.target_volatility,
            kelly_fraction=settings.kelly_fraction,
            kelly_cap=settings.kelly_cap,
            agent=agent,
            asset_names=settings.asset_names,
        )
        manager.uncertainty_threshold = settings.uncertainty_threshold
        manager.observation_reference = stored_reference(stored.user, market_dim(settings.env_config), path)
        log.info("portfolio_manager_loaded", path=str(path), asset_count=settings.env_config.asset_count)
        return manager

    def calibrate_uncertainty(
        self, returns: ArrayLike, quantile: float = 0.99, stride: int = 5, n_samples: int = 10
    ) -> float:
        """Set ``uncertainty_threshold`` to a high quantile of the policy's MC-dropout uncertainty.

        The uncertainty (mean std of the pre-softmax action over dropout masks) has a scale of its
        own for every policy, so "high" is measured against what the policy shows on data like its
        training data: every ``stride``-th window of ``returns`` (equal weights, no drawdown).
        The manager cuts leverage above this threshold. Returns the threshold.
        """
        r = as_matrix(returns, "returns", min_rows=history_length(self.env_config) + 1)
        q = check_range(quantile, "quantile", 0.0, 1.0, lo_open=True, hi_open=True)
        length = history_length(self.env_config)
        held = np.append(
            np.full(self.asset_count, 1.0 / (self.asset_count + 1)), 1.0 / (self.asset_count + 1)
        )
        values = [
            float(
                np.mean(
                    self.rebalance(r[t - length : t], held, 0.0, with_uncertainty=True, n_samples=n_samples)[
                        1
                    ]
                )
            )
            for t in range(length, r.shape[0] + 1, max(int(stride), 1))
        ]
        self.uncertainty_threshold = float(np.quantile(values, q))
        return self.uncertainty_threshold
