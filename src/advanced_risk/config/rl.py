"""Settings of the RL allocator: the portfolio environment and PPO.

Frozen, keyword-only dataclasses validated once in ``__post_init__`` (see :mod:`._base`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from advanced_risk.config._base import _as_enum, _collect, _ConfigMixin, _one_of, _require

__all__ = ["EnvConfig", "MarketKind", "PPOConfig", "RewardKind"]


class MarketKind(StrEnum):
    """Where the environment's returns come from (see ``advanced_risk.rl.portfolio.market``)."""

    GBM = "gbm"
    """Correlated geometric Brownian motion with fixed drifts and volatilities."""
    REGIME = "regime"
    """Markov regime switching between bull, bear and crisis (own drift, vol and correlation)."""
    HISTORICAL = "historical"
    """Replay of the bundled 20 S&P 500 stocks from random start dates inside a date split."""


class RewardKind(StrEnum):
    """How a step's reward is computed from the portfolio's move."""

    SHAPED = "shaped"
    """Shaped: ``r - vol_penalty*vol - drawdown_penalty*max(DD - free, 0) - cost_penalty*c``."""
    LOG_RETURN = "log_return"
    """``log(V_t / V_(t-1))`` net of costs: maximising its sum maximises terminal wealth."""


_FLAGS = ("clip_vloss", "anneal_lr", "norm_obs", "norm_adv", "analytic_gradients", "torch_compile", "amp")
"""PPOConfig's switches: each must be a bool (a TOML 0 or "yes" is refused, not read as a truth value)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class EnvConfig(_ConfigMixin):
    """Settings of the portfolio environment (``TradingEnvironment`` and ``VectorTradingEnv``)."""

    asset_count: int = 10
    """Number of risky assets; the action adds one cash slot (weights over assets + cash)."""
    initial_balance: float = 10_000.0
    """Starting portfolio value in currency."""
    transaction_cost: float = 0.001
    """Proportional cost per unit of traded value (0.001 = 10 bp)."""
    window: int = 20
    """Look-back in bars of the return features in the observation."""
    max_steps: int = 252
    """Steps per episode before truncation."""
    reward: RewardKind = RewardKind.SHAPED
    """Reward definition."""
    vol_penalty: float = 0.1
    """Shaped reward: weight of the portfolio's recent volatility."""
    drawdown_penalty: float = 2.0
    """Shaped reward: weight of the drawdown beyond ``drawdown_free``."""
    drawdown_free: float = 0.05
    """Shaped reward: drawdown tolerated without penalty."""
    cost_penalty: float = 10.0
    """Shaped reward: weight of the step's transaction cost (as a fraction of value)."""
    ruin_fraction: float = 0.5
    """An episode terminates when value falls below this fraction of ``initial_balance``."""
    no_trade_band: float = 0.0
    """Skip rebalancing while the L1 distance between target and held weights is below this."""
    rebalance_rate: float = 1.0
    """Partial rebalancing: trade this fraction of the way from held to target weights (1: all the way)."""
    market: MarketKind = MarketKind.GBM
    """Return generator."""
    train_end: str = "2012-12-31"
    """Historical market: last date of the training split (inclusive)."""
    test_start: str = "2013-01-01"
    """Historical market: first date of the test split (must be after ``train_end``)."""
    split: str = "train"
    """Historical market: which split episodes are drawn from, "train" or "test"."""

    def __post_init__(self) -> None:
        _as_enum(self, "reward", RewardKind)
        _as_enum(self, "market", MarketKind)
        _collect(
            [
                lambda: _require(
                    isinstance(self.asset_count, int) and self.asset_count >= 1,
                    f"asset_count must be an integer >= 1, got {self.asset_count!r}",
                ),
                lambda: _require(
                    self.initial_balance > 0, f"initial_balance must be > 0, got {self.initial_balance}"
                ),
                lambda: _require(
                    0 <= self.transaction_cost < 0.1,
                    f"transaction_cost must be in [0, 0.1), got {self.transaction_cost}",
                ),
                lambda: _require(
                    isinstance(self.window, int) and self.window >= 2,
                    f"window must be an integer >= 2, got {self.window!r}",
                ),
                lambda: _require(
                    isinstance(self.max_steps, int) and self.max_steps >= 1,
                    f"max_steps must be an integer >= 1, got {self.max_steps!r}",
                ),
                lambda: _one_of(self.reward, "reward", RewardKind),
                lambda: _one_of(self.market, "market", MarketKind),
                lambda: _require(
                    min(self.vol_penalty, self.drawdown_penalty, self.cost_penalty) >= 0,
                    "reward penalties must be >= 0, got "
                    f"{self.vol_penalty}, {self.drawdown_penalty}, {self.cost_penalty}",
                ),
                lambda: _require(
                    0 <= self.drawdown_free < 1, f"drawdown_free must be in [0, 1), got {self.drawdown_free}"
                ),
                lambda: _require(
                    0 < self.ruin_fraction < 1, f"ruin_fraction must be in (0, 1), got {self.ruin_fraction}"
                ),
                lambda: _require(
                    0 <= self.no_trade_band < 2, f"no_trade_band must be in [0, 2), got {self.no_trade_band}"
                ),
                lambda: _require(
                    0 < self.rebalance_rate <= 1,
                    f"rebalance_rate must be in (0, 1], got {self.rebalance_rate}",
                ),
                lambda: _require(
                    self.split in ("train", "test"), f"split must be 'train' or 'test', got {self.split!r}"
                ),
                lambda: _require(
                    str(self.train_end) < str(self.test_start),
                    f"train_end ({self.train_end}) must be before test_start ({self.test_start})",
                ),
            ],
            "EnvConfig",
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class PPOConfig(_ConfigMixin):
    """PPO hyperparameters (CleanRL's names; one line each, shown by ``train_ppo_agent.py --help``)."""

    learning_rate: float = 3e-4
    """Adam learning rate (annealed linearly to 0 when ``anneal_lr``)."""
    num_envs: int = 8
    """Parallel environments in the vector env."""
    num_steps: int = 256
    """Steps per environment per rollout (batch = num_envs * num_steps)."""
    total_timesteps: int = 200_000
    """Environment steps of a training run."""
    gamma: float = 0.99
    """Discount factor."""
    gae_lambda: float = 0.95
    """GAE lambda."""
    update_epochs: int = 10
    """Passes over each rollout."""
    num_minibatches: int = 8
    """Minibatches per epoch."""
    clip_coef: float = 0.2
    """Surrogate clipping epsilon."""
    clip_vloss: bool = True
    """Clip the value loss around the old values."""
    ent_coef: float = 0.0
    """Entropy bonus weight."""
    vf_coef: float = 0.5
    """Value loss weight."""
    max_grad_norm: float = 0.5
    """Global gradient-norm clip."""
    target_kl: float | None = 0.02
    """Stop the epoch loop early when the approximate KL exceeds this (None: never)."""
    anneal_lr: bool = True
    """Linear learning-rate decay over the run."""
    norm_obs: bool = True
    """Running mean/std observation normalisation (saved with the model)."""
    obs_clip: float = 10.0
    """Normalised observations are clipped to [-obs_clip, obs_clip]."""
    norm_adv: bool = True
    """Normalise advantages to zero mean, unit std within each minibatch."""
    hidden_sizes: tuple[int, ...] = (64, 64)
    """Hidden layer widths of actor and critic."""
    init_log_std: float = -0.5
    """Initial state-independent log standard deviation of the Gaussian policy."""
    dropout: float = 0.1
    """Dropout probability in the actor (used for MC-dropout uncertainty at inference)."""
    grad_accum_steps: int = 1
    """Micro-batches per minibatch; their gradients add up to one optimizer step (less memory, same step)."""
    analytic_gradients: bool = True
    """Compute each minibatch's gradient with the hand-derived formulas of ``rl/ppo/gradients.py``
    (the same loss, ~1.5x faster on CPU than autograd); False: autograd through ``ppo_loss``.
    Mixed precision (``amp`` on CUDA) always uses autograd."""
    torch_compile: bool = False
    """``torch.compile`` the minibatch step: the analytic gradient, or the loss's forward and
    backward with ``analytic_gradients=False`` (2-20 s to compile once). On CPU the eager analytic
    step, whose elementwise work runs in NumPy and numba kernels, is as fast (docs/performance.md,
    "Trainer"); with autograd, updates ~25 % faster. Not measured on CUDA."""
    device: str = "auto"
    """"auto" (CUDA if available), "cpu" or "cuda"."""
    amp: bool = False
    """Mixed precision (autocast + GradScaler); only takes effect on CUDA."""
    seed: int = 0
    """Seed of torch, numpy and the environments."""

    def __post_init__(self) -> None:
        sizes: object = self.hidden_sizes
        if isinstance(sizes, list):  # a TOML/JSON list becomes a tuple
            object.__setattr__(self, "hidden_sizes", tuple(sizes))
        positive_ints = ("num_envs", "num_steps", "total_timesteps", "update_epochs", "num_minibatches")
        _collect(
            [
                *[
                    (
                        lambda n=n: _require(
                            isinstance(getattr(self, n), int) and getattr(self, n) >= 1,
                            f"{n} must be an integer >= 1, got {getattr(self, n)!r}",
                        )
                    )
                    for n in positive_ints
                ],
                lambda: _require(
                    self.learning_rate > 0, f"learning_rate must be > 0, got {self.learning_rate}"
                ),
                lambda: _require(0 < self.gamma <= 1, f"gamma must be in (0, 1], got {self.gamma}"),
                lambda: _require(
                    0 <= self.gae_lambda <= 1, f"gae_lambda must be in [0, 1], got {self.gae_lambda}"
                ),
                lambda: _require(
                    0 < self.clip_coef < 1, f"clip_coef must be in (0, 1), got {self.clip_coef}"
                ),
                lambda: _require(
                    min(self.ent_coef, self.vf_coef) >= 0,
                    f"ent_coef and vf_coef must be >= 0, got {self.ent_coef}, {self.vf_coef}",
                ),
                lambda: _require(
                    self.max_grad_norm > 0, f"max_grad_norm must be > 0, got {self.max_grad_norm}"
                ),
                lambda: _require(
                    self.target_kl is None or self.target_kl > 0,
                    f"target_kl must be > 0 or None, got {self.target_kl}",
                ),
                lambda: _require(
                    len(self.hidden_sizes) >= 1
                    and all(isinstance(h, int) and h >= 1 for h in self.hidden_sizes),
                    f"hidden_sizes must be positive integers, got {self.hidden_sizes!r}",
                ),
                lambda: _require(0 <= self.dropout < 1, f"dropout must be in [0, 1), got {self.dropout}"),
                lambda: _require(
                    isinstance(self.grad_accum_steps, int) and self.grad_accum_steps >= 1,
                    f"grad_accum_steps must be an integer >= 1, got {self.grad_accum_steps!r}",
                ),
                lambda: _require(self.obs_clip > 0, f"obs_clip must be > 0, got {self.obs_clip}"),
                *[
                    (
                        lambda n=n: _require(
                            isinstance(getattr(self, n), bool),
                            f"{n} must be True or False, got {getattr(self, n)!r}",
                        )
                    )
                    for n in _FLAGS
                ],
                lambda: _require(
                    self.device in ("auto", "cpu", "cuda") or str(self.device).startswith("cuda:"),
                    f"device must be 'auto', 'cpu' or 'cuda[:N]', got {self.device!r}",
                ),
                lambda: _require(
                    (self.num_envs * self.num_steps) % self.num_minibatches == 0,
                    f"num_envs * num_steps ({self.num_envs * self.num_steps}) must be divisible by "
                    f"num_minibatches ({self.num_minibatches})",
                ),
            ],
            "PPOConfig",
        )

    @property
    def batch_size(self) -> int:
        """Transitions per rollout: ``num_envs * num_steps``."""
        return self.num_envs * self.num_steps

    @property
    def minibatch_size(self) -> int:
        """Transitions per minibatch: ``batch_size // num_minibatches``."""
        return self.batch_size // self.num_minibatches
