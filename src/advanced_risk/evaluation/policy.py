"""Evaluate a policy against baselines on the *same* market paths (common random numbers).

Every strategy trades in its own :class:`~advanced_risk.rl.portfolio.env.TradingEnvironment` built with the
same :class:`~advanced_risk.config.EnvConfig` (so the same costs and no-trade band) on the same
pre-drawn path: path ``k`` is ``market.sample_path(np_random(seeds[k]), H + max_steps)``, exactly the
path ``TradingEnvironment.reset(seed=seeds[k])`` would draw. Differences between strategies on a path
are therefore caused by the strategies alone, which is what makes a *paired* test powerful.

Strategies (:class:`Strategy`) see the observation, the env's ``info`` and the returns of the path up
to (not including) the day they are about to earn:

- :class:`PolicyStrategy`: ``env.step(agent.select_action(obs))``, the deterministic policy mean.
- :class:`EqualWeight`: ``1/n`` in every asset, no cash, rebalanced every step.
- :class:`MinimumVariance`: long-only minimum variance (:func:`~advanced_risk.measures.allocation.
  min_variance_weights`) of the sample covariance of the trailing ``lookback`` days, every step.
- :class:`BuyAndHold`: equal weight on the first step, then the drifted weights (never trades).

:func:`evaluate` runs many paths and reports per-metric means with Student-t intervals across
episodes and paired sign-flip tests of a strategy against each baseline; :func:`evaluate_path` runs
one long (historical) path and reports point estimates with block-bootstrap Sharpe intervals.
:func:`format_report` turns either report into a markdown table.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, Protocol, SupportsFloat

import numpy as np
from gymnasium.utils import seeding
from numpy.typing import NDArray

from advanced_risk.config import EnvConfig
from advanced_risk.errors import InvalidInputError
from advanced_risk.evaluation.report import (
    Comparison,
    EvaluationReport,
    Metric,
    PathReport,
    StrategyRun,
    Summary,
    format_report,
)
from advanced_risk.evaluation.stats import (
    PairedDifference,
    block_bootstrap_sharpe,
    mean_interval,
    paired_bootstrap_sharpe,
    paired_difference,
)
from advanced_risk.measures import performance
from advanced_risk.measures.allocation import min_variance_weights
from advanced_risk.measures.validation import PERIODS_PER_YEAR, FloatArray
from advanced_risk.rl.portfolio.accounting import history_length
from advanced_risk.rl.portfolio.env import TradingEnvironment
from advanced_risk.rl.portfolio.market import FixedPath, MarketModel, make_market

__all__ = [
    "ActionPolicy",
    "BuyAndHold",
    "Comparison",
    "EqualWeight",
    "EvaluationReport",
    "Metric",
    "MinimumVariance",
    "PathReport",
    "PolicyStrategy",
    "Strategy",
    "StrategyRun",
    "Summary",
    "baselines",
    "evaluate",
    "evaluate_path",
    "format_report",
    "run_strategy",
    "sample_paths",
]

StepResult = tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]


class Strategy(Protocol):
    """Something that trades one step: it calls ``env.step`` or ``env.step_weights`` and returns that."""

    name: str

    def reset(self) -> None:
        """Forget any state from a previous episode."""

    def step(
        self, env: TradingEnvironment, obs: NDArray[np.float32], info: Mapping[str, Any], past: FloatArray
    ) -> StepResult:
        """Trade one step; ``past`` holds the path's simple returns before the day to be earned."""
        ...


class ActionPolicy(Protocol):
    """What :class:`PolicyStrategy` needs from an agent (``PPOAgent`` satisfies it)."""

    def select_action(self, obs: NDArray[np.floating], deterministic: bool = True) -> NDArray[np.float32]:
        """The action for one observation."""
        ...


class PolicyStrategy:
    """A trained agent acting deterministically (the policy mean): ``env.step(select_action(obs))``.

    Takes any :class:`ActionPolicy`, so this module never imports torch.
    """

    def __init__(self, agent: ActionPolicy, name: str = "ppo") -> None:
        self.agent, self.name = agent, name

    def reset(self) -> None:
        """Stateless."""

    def step(
        self, env: TradingEnvironment, obs: NDArray[np.float32], info: Mapping[str, Any], past: FloatArray
    ) -> StepResult:
        """Act on the observation only (``info`` and ``past`` are unused)."""
        return env.step(self.agent.select_action(obs, deterministic=True))


def _equal(n: int) -> FloatArray:
    w = np.full(n + 1, 1.0 / n)
    w[-1] = 0.0
    return w


class EqualWeight:
    """``1/n`` in each asset and no cash, rebalanced back to it every step."""

    name = "equal_weight"

    def reset(self) -> None:
        """Stateless."""

    def step(
        self, env: TradingEnvironment, obs: NDArray[np.float32], info: Mapping[str, Any], past: FloatArray
    ) -> StepResult:
        """Trade to equal weight."""
        return env.step_weights(_equal(env.config.asset_count))


class BuyAndHold:
    """Equal weight bought at the start and never rebalanced: the target is that portfolio, drifted.

    The target at step ``t`` is ``w_i = prod_(s<t) (1 + r_i,s) / sum_j prod_(s<t) (1 + r_j,s)`` over
    the episode's earned days. With full rebalancing (``rebalance_rate`` 1) the book holds it exactly
    from the first step and never trades again; with partial rebalancing it converges to it.
    """

    name = "buy_and_hold"

    def __init__(self) -> None:
        self._growth: FloatArray | None = None

    def reset(self) -> None:
        """Forget the drifted portfolio of the previous episode."""
        self._growth = None

    def step(
        self, env: TradingEnvironment, obs: NDArray[np.float32], info: Mapping[str, Any], past: FloatArray
    ) -> StepResult:
        """Trade to the drifted equal-weight portfolio (at once when fully rebalancing)."""
        n = env.config.asset_count
        if int(info["step"]) == 0 or self._growth is None:
            self._growth = np.ones(n)
        else:
            self._growth = self._growth * (1.0 + past[-1])
        if env.config.rebalance_rate == 1.0 and int(info["step"]) > 0:
            return env.step_weights(np.asarray(info["weights"]))  # exactly no trade
        return env.step_weights(np.append(self._growth / self._growth.sum(), 0.0))


class MinimumVariance:
    """Long-only minimum variance of the sample covariance of the last ``lookback`` daily returns.

    Refitted every ``refit_every`` steps (1: daily, the policy's frequency) and rebalanced to the
    latest fit every step; uses all available past rows while fewer than ``lookback`` exist.
    """

    name = "min_variance"

    def __init__(self, lookback: int = 120, refit_every: int = 1) -> None:
        if lookback < 2 or refit_every < 1:
            raise InvalidInputError(
                f"lookback >= 2 and refit_every >= 1 required, got {lookback}, {refit_every}"
            )
        self.lookback, self.refit_every = lookback, refit_every
        self._target: FloatArray | None = None

    def reset(self) -> None:
        """Drop the last fit."""
        self._target = None

    def step(
        self, env: TradingEnvironment, obs: NDArray[np.float32], info: Mapping[str, Any], past: FloatArray
    ) -> StepResult:
        """Refit when due, then trade to the fitted weights (no cash)."""
        if self._target is None or int(info["step"]) % self.refit_every == 0:
            window = past[-self.lookback :]
            cov = np.cov(window, rowvar=False).reshape(window.shape[1], window.shape[1])
            cov = 0.5 * (cov + cov.T) + 1e-12 * np.eye(cov.shape[0])
            # the previous fit (cash dropped) warm-starts the solver: a one-day shift of the window
            # barely moves the optimum's support, so a few active-set steps replace a cold solve
            init = None if self._target is None else self._target[:-1]
            self._target = np.append(min_variance_weights(cov, init=init), 0.0)
        return env.step_weights(self._target)


def baselines(lookback: int = 120) -> list[Strategy]:
    """The three reference strategies: equal weight, minimum variance, buy-and-hold."""
    return [EqualWeight(), MinimumVariance(lookback), BuyAndHold()]


def sample_paths(
    config: EnvConfig, seeds: Sequence[int], market: MarketModel | None = None
) -> list[FloatArray]:
    """The path ``TradingEnvironment(config, market=market).reset(seed=s)`` draws, for each seed."""
    m = market if market is not None else make_market(config)
    rows = history_length(config) + config.max_steps
    return [m.sample_path(seeding.np_random(int(s))[0], rows) for s in seeds]


def _episode_metrics(r: FloatArray, turnover: FloatArray, cost_fraction: FloatArray) -> dict[Metric, float]:
    years = r.size / PERIODS_PER_YEAR
    growth = float(np.prod(1.0 + r))
    return {
        Metric.LOG_WEALTH: math.log(growth) if growth > 0 else -math.inf,
        Metric.TOTAL_RETURN: growth - 1.0,
        Metric.ANNUAL_RETURN: performance.annualised_return(r) if r.size else 0.0,
        Metric.ANNUAL_VOL: float(r.std(ddof=1)) * math.sqrt(PERIODS_PER_YEAR) if r.size > 1 else 0.0,
        Metric.SHARPE: performance.sharpe_ratio(r) if r.size > 1 else 0.0,
        Metric.SORTINO: performance.sortino_ratio(r) if r.size > 1 else 0.0,
        Metric.MAX_DRAWDOWN: performance.max_drawdown(r) if r.size else 0.0,
        Metric.CALMAR: performance.calmar_ratio(r) if r.size else 0.0,
        Metric.TURNOVER: float(turnover.sum()) / years if r.size else 0.0,
        Metric.COSTS: float(cost_fraction.sum()) / years if r.size else 0.0,
    }


def run_strategy(strategy: Strategy, config: EnvConfig, paths: Sequence[FloatArray]) -> StrategyRun:
    """Trade ``strategy`` once over each path (a fresh environment per path); collect its returns."""
    h = history_length(config)
    returns: list[FloatArray] = []
    per_episode: list[dict[Metric, float]] = []
    mean_weights: list[FloatArray] = []
    for path in paths:
        env = TradingEnvironment(config, market=FixedPath(path))
        obs, info = env.reset(seed=0)
        strategy.reset()
        values, turnover, costs, held = [info["portfolio_value"]], [], [], np.zeros(config.asset_count + 1)
        done = False
        while not done:
            obs, _, terminated, truncated, info = strategy.step(env, obs, info, path[: h + int(info["step"])])
            costs.append(info["cost"] / values[-1])
            values.append(info["portfolio_value"])
            turnover.append(info["turnover"])
            held += info["weights"]
            done = terminated or truncated
        v = np.asarray(values)
        r = v[1:] / v[:-1] - 1.0
        returns.append(r)
        mean_weights.append(held / max(r.size, 1))
        per_episode.append(_episode_metrics(r, np.asarray(turnover), np.asarray(costs)))
    metrics = {m: np.array([e[m] for e in per_episode]) for m in Metric}
    return StrategyRun(strategy.name, tuple(returns), metrics, np.array(mean_weights))


def _comparison(strategy: str, baseline: str, metric: Metric, d: PairedDifference) -> Comparison:
    return Comparison(strategy, baseline, metric, d.estimate, d.low, d.high, d.win_rate, d.p_value)


def _check_names(strategies: Sequence[Strategy]) -> None:
    names = [s.name for s in strategies]
    if len(set(names)) != len(names) or not names:
        raise InvalidInputError(f"strategies need distinct names, got {names}")


def evaluate(
    strategies: Sequence[Strategy],
    config: EnvConfig,
    seeds: Sequence[int],
    *,
    market: MarketModel | None = None,
    metrics: Sequence[Metric] = (Metric.LOG_WEALTH, Metric.SHARPE),
    confidence: float = 0.95,
    n_permutations: int = 20_000,
) -> EvaluationReport:
    """Run every strategy on the paths of ``seeds`` and compare the first with each of the others.

    Parameters
    ----------
    strategies : the candidate first, then the baselines (distinct names).
    config : environment settings shared by all strategies (costs, band, episode length).
    seeds : one path per seed (common random numbers); keep them disjoint from training seeds.
    market : default ``make_market(config)``.
    metrics : metrics the paired tests are run on (every metric is summarised).
    confidence : level of the intervals.
    n_permutations : random sign flips per paired test.
    """
    _check_names(strategies)
    paths = sample_paths(config, seeds, market)
    runs = {s.name: run_strategy(s, config, paths) for s in strategies}
    summaries = {
        name: {m: Summary(*mean_interval(values, confidence)) for m, values in run.metrics.items()}
        for name, run in runs.items()
    }
    head, *others = strategies
    comparisons = [
        _comparison(
            head.name,
            base.name,
            Metric(m),
            paired_difference(
                runs[head.name].metrics[m],
                runs[base.name].metrics[m],
                confidence=confidence,
                n_permutations=n_permutations,
            ),
        )
        for base in others
        for m in metrics
    ]
    return EvaluationReport(runs, summaries, tuple(comparisons), tuple(int(s) for s in seeds), confidence)


def evaluate_path(
    strategies: Sequence[Strategy],
    config: EnvConfig,
    path: FloatArray,
    *,
    block: int = 20,
    n_boot: int = 2000,
    confidence: float = 0.95,
) -> PathReport:
    """Run every strategy over one path of ``H + T`` rows (``config.max_steps`` is set to ``T``).

    The first ``H = history_length(config)`` rows are the warm-up history; the rest are traded.
    Sharpe intervals and the paired Sharpe differences use a moving-block bootstrap (``block`` days).
    """
    _check_names(strategies)
    p = np.ascontiguousarray(path, dtype=np.float64)
    cfg = replace(config, max_steps=p.shape[0] - history_length(config))
    runs = {s.name: run_strategy(s, cfg, [p]) for s in strategies}
    values = {n: {m: float(v[0]) for m, v in run.metrics.items()} for n, run in runs.items()}
    boot = {
        n: block_bootstrap_sharpe(run.daily_returns[0], block=block, n_boot=n_boot, confidence=confidence)
        for n, run in runs.items()
    }
    intervals = {n: Summary(b[0], b[1], b[2]) for n, b in boot.items()}
    head, *others = strategies
    comparisons = [
        _comparison(
            head.name,
            base.name,
            Metric.SHARPE,
            paired_bootstrap_sharpe(
                runs[head.name].daily_returns[0],
                runs[base.name].daily_returns[0],
                block=block,
                n_boot=n_boot,
                confidence=confidence,
            ),
        )
        for base in others
    ]
    return PathReport(runs, values, intervals, tuple(comparisons), confidence)
