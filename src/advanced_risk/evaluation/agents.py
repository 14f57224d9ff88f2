"""The risk agents against the rule-based components, on common random numbers and the real test period.

Four policies drive the same :class:`~advanced_risk.rl.agents.env.RiskAgentsEnv`:

- ``agents_gated``: the trained agents as deployed: the MC-dropout mean action of each agent, replaced
  by its rule (below) when its normalised uncertainty exceeds the model's threshold
  (:func:`~advanced_risk.rl.agents.policy.gate`);
- ``agents``: the same MC-dropout mean actions, never overridden;
- ``rules``: the rule-based components of :func:`rule_actions`;
- ``no_risk``: no risk layer: scale 1, the widest stop (5 ATR, no trailing), monitor none.

The MC-dropout masks are drawn from a generator reseeded at the start of every path, so the two agent
policies see the same masks and a rerun gives the same numbers.

**Simulated paths** (:func:`evaluate_on_paths`): every policy trades the same held-out seeds (common
random numbers: seed ``s`` draws the same path whatever the actions). Per policy and metric the
report holds the mean over paths with a Student-t interval; per agent policy the paired difference
from ``rules`` on each metric, with its t interval and a sign-flip permutation p-value
(:mod:`advanced_risk.evaluation.stats`).

**One path** (:func:`evaluate_on_path`, the real test period): point estimates, a moving-block
bootstrap interval of each Sharpe ratio and paired block-bootstrap Sharpe differences from ``rules``.

Metrics (:mod:`advanced_risk.measures.performance`, daily returns of the book's value, costs
included): Sharpe, maximum drawdown, Calmar, annualised return and volatility, and the mean
exposure (held asset weight).

One module because the four policies, the common random numbers they share and the comparisons
between them must stay in step: a policy added in one place and not the other would be compared
on different paths.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from advanced_risk.config import EnvConfig, HedgeConfig, KellyConfig, RiskConfig
from advanced_risk.errors import InvalidInputError
from advanced_risk.evaluation import stats
from advanced_risk.measures import performance
from advanced_risk.measures.kelly import fractional_kelly, kelly_continuous
from advanced_risk.measures.validation import FloatArray
from advanced_risk.rl.agents.env import STOP_RANGE, MonitorAction, RiskAgentsEnv
from advanced_risk.rl.agents.policy import RiskAgents, gate
from advanced_risk.rl.portfolio.accounting import history_length
from advanced_risk.rl.portfolio.market import FixedPath, MarketModel

__all__ = [
    "KELLY_LOOKBACK",
    "REFERENCE",
    "AgentsMetric",
    "FixedPath",
    "NamedPolicy",
    "PathEvaluation",
    "PathsEvaluation",
    "agents_policies",
    "calibrate_threshold",
    "default_policies",
    "evaluate_on_path",
    "evaluate_on_paths",
    "format_path",
    "format_paths",
    "monitor_rule",
    "no_risk_actions",
    "rule_actions",
    "rules_policy",
    "run_episode",
    "sizer_rule",
]

Actions = dict[str, Any]
ActFn = Callable[[RiskAgentsEnv, Mapping[str, NDArray[np.float32]]], tuple[Actions, dict[str, str]]]

KELLY_LOOKBACK: Final = 60
"""Trailing days of the base portfolio's returns behind the half-Kelly sizer rule."""
REFERENCE: Final = "rules"
"""The policy every other one is compared with."""


class AgentsMetric(StrEnum):
    """Per-episode metrics of the evaluation."""

    SHARPE = "sharpe"
    MAX_DRAWDOWN = "max_drawdown"
    CALMAR = "calmar"
    ANNUAL_RETURN = "annual_return"
    ANNUAL_VOL = "annual_vol"
    EXPOSURE = "mean_exposure"


# -- the rule-based components ---------------------------------------------------------------------
def sizer_rule(base_returns: FloatArray, fraction: float = 0.5) -> float:
    """Fractional-Kelly scale from trailing returns: ``clip(fraction * mu / sigma**2, 0, 1)``.

    ``mu`` and ``sigma`` are the mean and sample std of ``base_returns`` (daily; the ratio is the
    same annualised). With fewer than two returns or no variation there is no estimate and the
    scale is ``fraction``.

    Examples
    --------
    >>> r = np.array([0.01, -0.005, 0.002, 0.0])  # mu 0.00175, sigma 0.00625: Kelly 44.8
    >>> sizer_rule(r), sizer_rule(-r), sizer_rule(r[:1])
    (1.0, 0.0, 0.5)
    """
    r = np.asarray(base_returns, dtype=np.float64)
    r = r[np.isfinite(r)]
    sigma = float(r.std(ddof=1)) if r.size >= 2 else 0.0
    if sigma <= 0.0:
        return float(fraction)
    return fractional_kelly(kelly_continuous(float(r.mean()), sigma), fraction, cap=1.0)


AGENT_RULES = RiskConfig(
    reduce_drawdown=0.08,
    halt_drawdown=0.15,
    hedge=HedgeConfig(max_drawdown_threshold=0.05),
    drawdown_basis="equity",
)
"""The rule ladder the shipped risk agents were trained and evaluated against (the manager's
defaults are another, docs/risk_rules.md): the agents' rule baseline and their gating fallback keep it, so
their figures stay comparable. The manager's own defaults use no drawdown hedge."""


def monitor_rule(drawdown: float, config: RiskConfig | None = None) -> MonitorAction:
    """The drawdown rules as a monitor action, cuts growing with the drawdown.

    ``DD >= halt_drawdown`` (0.15): HALT (cut 1); ``>= reduce_drawdown`` (0.08): HEDGE (cut 0.5, the
    manager's ``reduce_exposure``); ``>= hedge.max_drawdown_threshold`` (0.05): REDUCE (cut 0.25, the
    partial de-risking where the manager starts hedging; none with ``hedge=None``); below: NONE.
    The levels are ``config``'s, :data:`AGENT_RULES` by default.

    Examples
    --------
    >>> [monitor_rule(d).name for d in (0.0, 0.05, 0.08, 0.15)]
    ['NONE', 'REDUCE', 'HEDGE', 'HALT']
    """
    cfg = config if config is not None else AGENT_RULES
    if not math.isfinite(drawdown) or drawdown < 0:
        raise InvalidInputError(f"drawdown must be a finite value >= 0, got {drawdown}")
    if drawdown >= cfg.halt_drawdown:
        return MonitorAction.HALT
    if drawdown >= cfg.reduce_drawdown:
        return MonitorAction.HEDGE
    if cfg.hedge is not None and drawdown >= cfg.hedge.max_drawdown_threshold:
        return MonitorAction.REDUCE
    return MonitorAction.NONE


def rule_actions(env: RiskAgentsEnv, config: RiskConfig | None = None) -> Actions:
    """The rule-based components as a joint env action, from the env's current state only.

    - ``sizer``: half-Kelly (:func:`sizer_rule` with ``config.kelly.fraction``, ``KellyConfig``'s
      0.5 when ``config.kelly`` is None) of the base allocation's last :data:`KELLY_LOOKBACK` daily
      returns (days already seen);
    - ``stop``: a fixed ``config.sizing.atr_multiplier`` (2) ATR stop, no trailing;
    - ``monitor``: :func:`monitor_rule` of the book's drawdown.
    """
    cfg = config if config is not None else AGENT_RULES
    kelly = cfg.kelly if cfg.kelly is not None else KellyConfig()  # None: the engine's cap is off
    scale = sizer_rule(env.past_base_returns(KELLY_LOOKBACK), kelly.fraction)
    k = float(np.clip(cfg.sizing.atr_multiplier, *STOP_RANGE))
    return {
        "sizer": np.array([scale], np.float32),
        "stop": np.array([k, 0.0], np.float32),
        "monitor": int(monitor_rule(max(env.drawdown, 0.0), cfg)),
    }


def no_risk_actions() -> Actions:
    """No risk layer: full scale, the widest stop (5 ATR, fixed), monitor none."""
    return {
        "sizer": np.array([1.0], np.float32),
        "stop": np.array([STOP_RANGE[1], 0.0], np.float32),
        "monitor": 0,
    }


# -- policies --------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class NamedPolicy:
    """A named joint policy: ``act(env, obs) -> (actions, overridden)``; ``reset(path_index)`` per path."""

    name: str
    act: ActFn
    reset: Callable[[int], None] = lambda _k: None


def rules_policy(config: RiskConfig | None = None) -> NamedPolicy:
    """The rule-based components as a policy named ``rules``."""
    return NamedPolicy(REFERENCE, lambda env, _obs: (rule_actions(env, config), {}))


def _no_risk_policy() -> NamedPolicy:
    return NamedPolicy("no_risk", lambda _env, _obs: (no_risk_actions(), {}))


def agents_policies(
    agents: RiskAgents, config: RiskConfig | None = None, *, n_samples: int = 10, seed: int = 0
) -> list[NamedPolicy]:
    """``agents_gated`` (as deployed: :func:`gate` with the rule fallback) and ``agents`` (ungated)."""

    def gated(env: RiskAgentsEnv, obs: Mapping[str, NDArray[np.float32]]) -> tuple[Actions, dict[str, str]]:
        return gate(agents.act(obs, n_samples), rule_actions(env, config), agents.uncertainty_threshold)

    def ungated(env: RiskAgentsEnv, obs: Mapping[str, NDArray[np.float32]]) -> tuple[Actions, dict[str, str]]:
        return agents.act(obs, n_samples).actions, {}

    def reset(k: int) -> None:
        agents.reseed(seed + k)  # the MC-dropout masks: every path reproducible

    return [NamedPolicy("agents_gated", gated, reset), NamedPolicy("agents", ungated, reset)]


def default_policies(
    agents: RiskAgents, config: RiskConfig | None = None, seed: int = 0
) -> list[NamedPolicy]:
    """The four policies of the report, in order: agents_gated, agents, rules, no_risk."""
    return [*agents_policies(agents, config, seed=seed), rules_policy(config), _no_risk_policy()]


def calibrate_threshold(
    agents: RiskAgents,
    env_config: EnvConfig,
    seeds: Sequence[int],
    *,
    market: MarketModel | None = None,
    quantile: float = 0.99,
    n_samples: int = 10,
    seed: int = 0,
) -> dict[str, float]:
    """Per-agent gate thresholds: the ``quantile`` of each agent's own uncertainty on ``seeds``' paths.

    Runs the ungated agents over the paths (use training data, never the test set) and returns, for
    each agent, the ``quantile`` of its per-step normalised uncertainty, so the gate replaces each
    agent on about ``1 - quantile`` of such steps (the agents' uncertainty scales differ).
    """
    if not 0.0 < quantile < 1.0:
        raise InvalidInputError(f"quantile must be in (0, 1), got {quantile}")
    env = RiskAgentsEnv(env_config, market=market)
    seen: dict[str, list[float]] = {}
    for k, s in enumerate(seeds):
        agents.reseed(seed + k)  # the MC-dropout masks: every path reproducible
        obs, _ = env.reset(seed=int(s))
        while env.agents:
            proposed = agents.act(obs, n_samples)
            for agent, u in proposed.uncertainty.items():
                seen.setdefault(agent, []).append(u)
            obs, _, _, _, _ = env.step(proposed.actions)
    if not seen:
        raise InvalidInputError("seeds must hold at least one path")
    return {agent: float(np.quantile(np.asarray(u), quantile)) for agent, u in seen.items()}


# -- running ---------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Episode:
    """One policy's walk over one path: daily net returns, exposure and override counts per agent."""

    returns: FloatArray
    exposure: FloatArray
    overrides: dict[str, int]


def run_episode(policy: NamedPolicy, env: RiskAgentsEnv, seed: int, path_index: int = 0) -> Episode:
    """Trade ``policy`` over the path of ``env.reset(seed=seed)`` until the episode ends."""
    obs, infos = env.reset(seed=seed)
    policy.reset(path_index)
    values = [infos["sizer"]["portfolio_value"]]
    exposure: list[float] = []
    overrides: dict[str, int] = {}
    while env.agents:
        actions, overridden = policy.act(env, obs)
        for agent in overridden:
            overrides[agent] = overrides.get(agent, 0) + 1
        obs, _, _, _, infos = env.step(actions)
        info = infos["sizer"]
        values.append(info["portfolio_value"])
        exposure.append(float(np.sum(info["weights"][:-1])))
    v = np.asarray(values)
    return Episode(v[1:] / v[:-1] - 1.0, np.asarray(exposure), overrides)


def episode_metrics(episode: Episode) -> dict[AgentsMetric, float]:
    """The metrics of one episode (see the module docstring)."""
    r = episode.returns
    if r.size < 2:
        raise InvalidInputError(f"an episode needs >= 2 steps for its metrics, got {r.size}")
    return {
        AgentsMetric.SHARPE: performance.sharpe_ratio(r),
        AgentsMetric.MAX_DRAWDOWN: performance.max_drawdown(r),
        AgentsMetric.CALMAR: performance.calmar_ratio(r),
        AgentsMetric.ANNUAL_RETURN: performance.annualised_return(r),
        AgentsMetric.ANNUAL_VOL: float(r.std(ddof=1)) * math.sqrt(252.0),
        AgentsMetric.EXPOSURE: float(episode.exposure.mean()),
    }


def _check_names(policies: Sequence[NamedPolicy]) -> None:
    names = [p.name for p in policies]
    if not names or len(set(names)) != len(names) or REFERENCE not in names:
        raise InvalidInputError(f"policies need distinct names including {REFERENCE!r}, got {names}")


# -- simulated paths -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PathsEvaluation:
    """Every policy on the same seeds: per-path metrics, summaries and paired differences from rules.

    ``summaries[policy][metric]`` and ``differences[policy][metric]`` are ``(mean, low, high)``;
    ``p_values[policy][metric]`` the sign-flip p-value of the paired difference;
    ``override_rate[policy][agent]`` the fraction of steps the gate replaced that agent.
    """

    seeds: tuple[int, ...]
    metrics: dict[str, dict[AgentsMetric, FloatArray]]
    summaries: dict[str, dict[AgentsMetric, tuple[float, float, float]]]
    differences: dict[str, dict[AgentsMetric, tuple[float, float, float]]]
    p_values: dict[str, dict[AgentsMetric, float]]
    override_rate: dict[str, dict[str, float]]
    confidence: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values."""
        return {
            "kind": "paths",
            "seeds": list(self.seeds),
            "confidence": self.confidence,
            "summaries": _nested(self.summaries),
            "differences_vs_rules": _nested(self.differences),
            "p_values_vs_rules": _nested(self.p_values),
            "override_rate": self.override_rate,
            "per_path": {p: {str(m): v.tolist() for m, v in ms.items()} for p, ms in self.metrics.items()},
        }


def evaluate_on_paths(
    policies: Sequence[NamedPolicy],
    env_config: EnvConfig,
    seeds: Sequence[int],
    *,
    market: MarketModel | None = None,
    confidence: float = 0.95,
    n_permutations: int = 5000,
) -> PathsEvaluation:
    """Run every policy on the path of each seed (common random numbers) and compare with ``rules``."""
    _check_names(policies)
    if len(seeds) < 2:
        raise InvalidInputError(f"seeds must hold >= 2 paths for intervals, got {len(seeds)}")
    metrics: dict[str, dict[AgentsMetric, FloatArray]] = {}
    override_rate: dict[str, dict[str, float]] = {}
    for policy in policies:
        env = RiskAgentsEnv(env_config, market=market)
        episodes = [run_episode(policy, env, int(s), k) for k, s in enumerate(seeds)]
        per_path = [episode_metrics(e) for e in episodes]
        metrics[policy.name] = {m: np.array([p[m] for p in per_path]) for m in AgentsMetric}
        steps = sum(e.returns.size for e in episodes)
        agents = sorted({a for e in episodes for a in e.overrides})
        override_rate[policy.name] = {a: sum(e.overrides.get(a, 0) for e in episodes) / steps for a in agents}
    summaries = {
        name: {m: stats.mean_interval(v, confidence) for m, v in ms.items()} for name, ms in metrics.items()
    }
    differences: dict[str, dict[AgentsMetric, tuple[float, float, float]]] = {}
    p_values: dict[str, dict[AgentsMetric, float]] = {}
    for name, ms in metrics.items():
        if name == REFERENCE:
            continue
        paired = {
            m: stats.paired_difference(
                v, metrics[REFERENCE][m], confidence=confidence, n_permutations=n_permutations
            )
            for m, v in ms.items()
        }
        differences[name] = {m: (d.estimate, d.low, d.high) for m, d in paired.items()}
        p_values[name] = {m: d.p_value for m, d in paired.items()}
    return PathsEvaluation(
        tuple(int(s) for s in seeds), metrics, summaries, differences, p_values, override_rate, confidence
    )


# -- one path (the real test period) ---------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PathEvaluation:
    """Every policy over one path: metrics, block-bootstrap Sharpe intervals, paired Sharpe differences.

    ``sharpe_interval[policy]`` is ``(estimate, low, high)``; ``sharpe_vs_rules[policy]`` is
    ``(difference, low, high, p_value)``.
    """

    values: dict[str, dict[AgentsMetric, float]]
    sharpe_interval: dict[str, tuple[float, float, float]]
    sharpe_vs_rules: dict[str, tuple[float, float, float, float]]
    override_rate: dict[str, dict[str, float]]
    daily_returns: dict[str, FloatArray]
    confidence: float
    days: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values (daily returns left out)."""
        return {
            "kind": "path",
            "days": self.days,
            "confidence": self.confidence,
            "values": _nested(self.values),
            "sharpe_interval": {k: list(v) for k, v in self.sharpe_interval.items()},
            "sharpe_vs_rules": {k: list(v) for k, v in self.sharpe_vs_rules.items()},
            "override_rate": self.override_rate,
        }


def evaluate_on_path(
    policies: Sequence[NamedPolicy],
    env_config: EnvConfig,
    path: FloatArray,
    *,
    block: int = 20,
    n_boot: int = 2000,
    confidence: float = 0.95,
) -> PathEvaluation:
    """Run every policy once over ``path`` (``H`` warm-up rows then the traded days; ``H`` =
    ``history_length(env_config)``) and compare each with ``rules`` by a paired block bootstrap."""
    _check_names(policies)
    p = np.ascontiguousarray(path, dtype=np.float64)
    days = p.shape[0] - history_length(env_config)
    if p.ndim != 2 or p.shape[1] != env_config.asset_count or days < 3:
        raise InvalidInputError(
            f"path must be (H + T, {env_config.asset_count}) with T >= 3 traded days, got {p.shape}"
        )
    cfg = dataclasses.replace(env_config, max_steps=days)
    values: dict[str, dict[AgentsMetric, float]] = {}
    returns: dict[str, FloatArray] = {}
    override_rate: dict[str, dict[str, float]] = {}
    for policy in policies:
        episode = run_episode(policy, RiskAgentsEnv(cfg, market=FixedPath(p)), 0)
        values[policy.name] = episode_metrics(episode)
        returns[policy.name] = episode.returns
        override_rate[policy.name] = {
            a: c / episode.returns.size for a, c in sorted(episode.overrides.items())
        }
    intervals = {
        name: stats.block_bootstrap_sharpe(r, block=block, n_boot=n_boot, confidence=confidence)[:3]
        for name, r in returns.items()
    }
    versus = {}
    for name, r in returns.items():
        if name == REFERENCE:
            continue
        d = stats.paired_bootstrap_sharpe(
            r, returns[REFERENCE], block=block, n_boot=n_boot, confidence=confidence
        )
        versus[name] = (d.estimate, d.low, d.high, d.p_value)
    return PathEvaluation(values, intervals, versus, override_rate, returns, confidence, days)


def _nested(table: Mapping[str, Mapping[AgentsMetric, Any]]) -> dict[str, dict[str, Any]]:
    return {
        name: {str(m): (list(v) if isinstance(v, tuple) else v) for m, v in row.items()}
        for name, row in table.items()
    }


# -- markdown --------------------------------------------------------------------------------------
_SHOWN: Final = (
    AgentsMetric.SHARPE,
    AgentsMetric.MAX_DRAWDOWN,
    AgentsMetric.CALMAR,
    AgentsMetric.ANNUAL_RETURN,
)
_PERCENT: Final = frozenset({AgentsMetric.MAX_DRAWDOWN, AgentsMetric.ANNUAL_RETURN, AgentsMetric.ANNUAL_VOL,
                             AgentsMetric.EXPOSURE})  # fmt: skip


def _f(m: AgentsMetric, x: float) -> str:
    if not math.isfinite(x):
        return str(x)
    return f"{100 * x:.2f}%" if m in _PERCENT else f"{x:.3f}"


def _ci(m: AgentsMetric, v: tuple[float, float, float]) -> str:
    return f"{_f(m, v[0])} [{_f(m, v[1])}, {_f(m, v[2])}]"


def _overrides(rates: Mapping[str, float]) -> str:
    return ", ".join(f"{a} {100 * r:.1f}%" for a, r in rates.items()) or "-"


def format_paths(ev: PathsEvaluation) -> str:
    """Markdown tables of a :class:`PathsEvaluation` (means with intervals; differences from rules)."""
    level = f"{100 * ev.confidence:g}%"
    cols = [*_SHOWN, AgentsMetric.EXPOSURE]
    lines = [
        f"{len(ev.seeds)} held-out paths (common random numbers); mean [{level} t interval] over paths.",
        "",
    ]
    lines += ["| policy | " + " | ".join(str(m) for m in cols) + " | gate overrides |",
              "|---" * (len(cols) + 2) + "|"]  # fmt: skip
    for name, row in ev.summaries.items():
        cells = " | ".join(_ci(m, row[m]) for m in cols)
        lines.append(f"| {name} | {cells} | {_overrides(ev.override_rate.get(name, {}))} |")
    lines += ["", f"Paired differences from `{REFERENCE}` (same paths): mean [{level} t interval], "
              "sign-flip p-value.", ""]  # fmt: skip
    lines += ["| policy | " + " | ".join(str(m) for m in _SHOWN) + " |", "|---" * (len(_SHOWN) + 1) + "|"]
    for name, row in ev.differences.items():
        cells = " | ".join(f"{_ci(m, row[m])} p={ev.p_values[name][m]:.3g}" for m in _SHOWN)
        lines.append(f"| {name} | {cells} |")
    return "\n".join(lines) + "\n"


def format_path(ev: PathEvaluation) -> str:
    """Markdown tables of a :class:`PathEvaluation` (one path: point values, bootstrap Sharpe intervals)."""
    level = f"{100 * ev.confidence:g}%"
    cols = [*_SHOWN[1:], AgentsMetric.ANNUAL_VOL, AgentsMetric.EXPOSURE]
    lines = [f"One walk over {ev.days} days; Sharpe with a {level} moving-block bootstrap interval.", ""]
    lines += ["| policy | sharpe | " + " | ".join(str(m) for m in cols) + " | gate overrides |",
              "|---" * (len(cols) + 3) + "|"]  # fmt: skip
    for name, row in ev.values.items():
        cells = " | ".join(_f(m, row[m]) for m in cols)
        sharpe = _ci(AgentsMetric.SHARPE, ev.sharpe_interval[name])
        lines.append(f"| {name} | {sharpe} | {cells} | {_overrides(ev.override_rate.get(name, {}))} |")
    lines += [
        "",
        f"Sharpe difference from `{REFERENCE}` (paired block bootstrap): estimate [{level}], p-value.",
        "",
    ]
    lines += ["| policy | sharpe difference | p |", "|---|---|---|"]
    for name, (d, low, high, p) in ev.sharpe_vs_rules.items():
        lines.append(f"| {name} | {d:.3f} [{low:.3f}, {high:.3f}] | {p:.3g} |")
    return "\n".join(lines) + "\n"
