"""A saved portfolio policy for trading: the allocator's NumPy inference, without torch.

:class:`PortfolioPolicy` reads a policy file saved by ``RLPortfolioManager.save`` (format:
:mod:`advanced_risk.rl.ppo.io`) with NumPy and safetensors only and answers
:meth:`~PortfolioPolicy.rebalance_trusted` exactly as ``RLPortfolioManager.load(path)`` does: the same
observation (:func:`policy_observation`), the same actor snapshot
(:class:`~advanced_risk.rl.ppo.inference.NumpyPolicy`, built from the same arrays), the same MC-dropout
generator (``default_rng(config.seed + 1)``, a loaded ``PPOAgent``'s inference generator) and the
same trading rule (:func:`execute`). It is what the manager runs for ``policy="model.armodel"``.

The manager's settings stored beside the weights (``metadata.user.rl_portfolio_manager``) are read by
:func:`manager_settings`, for this class and for ``RLPortfolioManager.load`` alike.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from advanced_risk.config import EnvConfig, KellyConfig, LeverageConfig
from advanced_risk.errors import ConfigError, InvalidInputError, ModelLoadError
from advanced_risk.logs import get_logger
from advanced_risk.measures.validation import FloatArray
from advanced_risk.monitoring.drift import FeatureReference
from advanced_risk.rl.portfolio.accounting import (
    ACTION_BOUND,
    action_to_weights,
    check_history,
    history_length,
    market_dim,
    market_features_kernel,
    observation_dim,
    trade_kernel,
)
from advanced_risk.rl.portfolio.asset_names import AssetNames, stored_asset_names
from advanced_risk.rl.portfolio.drift import stored_reference
from advanced_risk.rl.portfolio.observation_kernel import observation_kernel
from advanced_risk.rl.ppo.dropout_kernels import RunnerCache
from advanced_risk.rl.ppo.inference import DropoutGenerator, NumpyPolicy, check_obs
from advanced_risk.rl.ppo.io import PolicyFile, check_dims, read_policy_file

__all__ = ["ManagerSettings", "PortfolioPolicy", "execute", "manager_settings", "policy_observation", "trade"]

log = get_logger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class ManagerSettings:
    """What an ``RLPortfolioManager`` saves beside its policy (see ``RLPortfolioManager.save``)."""

    env_config: EnvConfig
    leverage_range: tuple[float, float]
    target_volatility: float
    kelly_fraction: float
    kelly_cap: float
    uncertainty_threshold: float | None
    asset_names: AssetNames | None


def manager_settings(stored: PolicyFile, path: str | os.PathLike[str]) -> ManagerSettings:
    """The manager settings of a policy file, checked against its dims.

    Raises
    ------
    ModelLoadError
        No (or malformed) ``rl_portfolio_manager`` settings, settings ``RLPortfolioManager`` would
        refuse (leverage range, target volatility, Kelly fraction and cap; a negative or
        non-finite ``uncertainty_threshold``), invalid stored asset names, or a network whose dims
        do not fit the stored env config.
    """
    try:
        settings: Mapping[str, Any] = stored.user["rl_portfolio_manager"]
        env_config = EnvConfig.from_dict(settings["env_config"])
        low, high = (float(x) for x in settings["leverage_range"])
        target_vol, fraction, cap = (
            float(settings[k]) for k in ("target_volatility", "kelly_fraction", "kelly_cap")
        )
        threshold = settings.get("uncertainty_threshold")
        threshold = None if threshold is None else float(threshold)
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelLoadError(f"model file {path} holds no RLPortfolioManager settings ({exc!r})") from exc
    try:  # the checks RLPortfolioManager's constructor makes, so both loaders refuse the same files
        LeverageConfig(target_volatility=target_vol, min_leverage=low, max_leverage=high)
        KellyConfig(fraction=fraction, cap=cap)
    except ConfigError as exc:
        raise ModelLoadError(f"model file {path} stores invalid manager settings: {exc}") from exc
    if threshold is not None and not (math.isfinite(threshold) and threshold >= 0):
        raise ModelLoadError(
            f"model file {path} stores invalid manager settings: uncertainty_threshold must be a "
            f"finite number >= 0, got {threshold!r}"
        )
    names = stored_asset_names(settings.get("asset_names"), env_config.asset_count, path)
    check_dims(stored, observation_dim(env_config), env_config.asset_count + 1, path)
    return ManagerSettings(
        env_config=env_config,
        leverage_range=(low, high),
        target_volatility=target_vol,
        kelly_fraction=fraction,
        kelly_cap=cap,
        uncertainty_threshold=threshold,
        asset_names=names,
    )


def policy_observation(
    returns: FloatArray, weights: FloatArray, drawdown: float, config: EnvConfig
) -> NDArray[np.float32]:
    """The environment's observation: market features of ``returns``, then ``weights`` and ``drawdown``.

    Inputs are trusted (validated by the caller): ``returns`` ``(T >= history_length, n)`` simple
    returns, ``weights`` ``(n + 1,)`` over the assets then cash, ``drawdown`` in ``[0, 1)``.
    """
    market = market_features_kernel(returns, returns.shape[0], config.window, 0)[0]
    return _observation(market, weights, drawdown)


def _observation(market: FloatArray, weights: FloatArray, drawdown: float) -> NDArray[np.float32]:
    return np.concatenate([market, weights, [drawdown]]).astype(np.float32)


def execute(held: FloatArray, target: FloatArray, config: EnvConfig) -> FloatArray:
    """Weights after trading from ``held`` to ``target`` as the env trades (band, partial rate).

    Unchanged ``held`` when ``sum |target - held| < no_trade_band``; else
    ``held + rebalance_rate * (target - held)`` (the target itself at rate 1).
    """
    if np.abs(target - held).sum() < config.no_trade_band:
        return held
    if config.rebalance_rate == 1.0:
        return target
    out: FloatArray = held + config.rebalance_rate * (target - held)
    return out


def trade(held: FloatArray, action: NDArray[np.float32], config: EnvConfig) -> FloatArray:
    """``execute(held, action_to_weights(action), config)``: the weights after trading towards the
    policy's action. One kernel (``accounting.trade_kernel``, bit for bit the same) for one action
    and a float64 ndarray book, the NumPy formulation otherwise."""
    if type(held) is not np.ndarray or held.dtype != np.float64 or action.ndim != 1:
        return execute(held, action_to_weights(action), config)
    out = np.empty(held.shape[0])
    trade_kernel(action, held, ACTION_BOUND, config.no_trade_band, config.rebalance_rate, out)
    return out


class PortfolioPolicy(DropoutGenerator):
    """A trained allocator's policy and settings for trading (see the module docstring).

    Parameters
    ----------
    policy : the actor's NumPy snapshot (with the observation normaliser it was trained with).
    settings : the manager settings saved with it.
    seed : the agent's ``PPOConfig.seed``; MC-dropout masks are drawn from ``default_rng(seed + 1)``.

    Attributes
    ----------
    observation_reference : the training statistics of the policy's market features (its model
        file's ``metadata.user.observation_reference``; None when the file has none).
    last_market : the market features of the last :meth:`rebalance_trusted` (float64; None before).
    """

    def __init__(self, policy: NumpyPolicy, settings: ManagerSettings, seed: int) -> None:
        self.policy = policy
        self.settings = settings
        self.env_config = settings.env_config
        self.uncertainty_threshold = settings.uncertainty_threshold
        self.obs_dim = observation_dim(self.env_config)
        if policy.obs_dim != self.obs_dim or policy.action_dim != self.asset_count + 1:
            raise InvalidInputError(
                f"policy has obs_dim={policy.obs_dim}, action_dim={policy.action_dim}; the env config "
                f"needs {self.obs_dim}, {self.asset_count + 1}"
            )
        self._rng = np.random.default_rng(seed + 1)
        self._dropout = RunnerCache()  # the buffered MC dropout of self.policy
        self.observation_reference: FeatureReference | None = None
        self.last_market: FloatArray | None = None

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> PortfolioPolicy:
        """Read a policy file saved by ``RLPortfolioManager.save`` (NumPy only).

        Raises
        ------
        ModelLoadError
            Missing, truncated or corrupt file, another kind or format version, no manager
            settings, invalid stored asset names, or weights that do not fit the stored config.
        """
        stored = read_policy_file(path)
        settings = manager_settings(stored, path)
        try:
            policy = cls(stored.numpy_policy(), settings, stored.config.seed)
        except (KeyError, ValueError) as exc:  # InvalidInputError is a ValueError
            raise ModelLoadError(f"model file {path} does not hold a valid policy: {exc!r}") from exc
        policy.observation_reference = stored_reference(stored.user, market_dim(settings.env_config), path)
        log.info("portfolio_policy_loaded", path=str(path), asset_count=settings.env_config.asset_count)
        return policy

    @property
    def asset_count(self) -> int:
        """Number of risky assets (weights have one more entry: cash)."""
        return self.env_config.asset_count

    @property
    def asset_names(self) -> AssetNames | None:
        """The assets the policy was trained on, in order (None: unnamed)."""
        return self.settings.asset_names

    def rebalance_trusted(
        self, returns: FloatArray, weights: FloatArray, drawdown: float, n_samples: int = 10
    ) -> tuple[FloatArray, FloatArray]:
        """Weights to hold and the action's MC-dropout std, for inputs the caller guarantees valid.

        ``returns`` ``(T >= history_length, asset_count)`` float64, ``weights`` ``(asset_count + 1,)``
        ``>= 0`` summing to 1, ``drawdown`` in ``[0, 1)``; the same result as
        ``RLPortfolioManager.rebalance_trusted`` on the same file.
        """
        if n_samples < 1:
            raise InvalidInputError(f"n_samples must be >= 1, got {n_samples}")
        check_history(returns, history_length(self.env_config), self.asset_count)
        market = market_features_kernel(returns, returns.shape[0], self.env_config.window, 0)[0]
        self.last_market = market
        # check_obs(_observation(...)) in one kernel (observation_kernel.py: the same casts, bit for
        # bit); a non-finite entry or a wrong length takes their path, which raises as before
        ok, obs = observation_kernel(market, weights, float(drawdown))
        if not ok or obs.shape[0] != self.obs_dim:
            obs = check_obs(_observation(market, weights, drawdown), self.obs_dim)
        # the same maths and draws as policy.mc_dropout in fewer NumPy calls (rl/ppo/dropout_kernels.py);
        # the runner's buffers are read here at once (trade and the cast copy), so no copy of them
        runner = self._dropout.runner_for(self.policy, n_samples)
        if runner is None:
            action, std = self.policy.mc_dropout(obs, n_samples, self._rng)
        else:
            action, std = runner.run(obs, self._rng)
        return trade(weights, action, self.env_config), std.astype(np.float64)
