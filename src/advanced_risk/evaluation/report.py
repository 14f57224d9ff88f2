"""Results of :mod:`advanced_risk.evaluation.policy` (frozen dataclasses) and their markdown tables."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from advanced_risk.measures.validation import FloatArray

__all__ = [
    "Comparison",
    "EvaluationReport",
    "Metric",
    "PathReport",
    "StrategyRun",
    "Summary",
    "format_report",
]


class Metric(StrEnum):
    """Per-episode measures of a strategy's daily returns (net of costs)."""

    LOG_WEALTH = "log_wealth"
    """``log(V_T / V_0)``: what the LOG_RETURN reward maximises."""
    TOTAL_RETURN = "total_return"
    ANNUAL_RETURN = "annual_return"
    """Geometric, ``prod(1 + r) ** (252 / T) - 1``."""
    ANNUAL_VOL = "annual_vol"
    SHARPE = "sharpe"
    """``sqrt(252) * mean(r) / std(r, ddof=1)``, risk-free rate 0."""
    SORTINO = "sortino"
    MAX_DRAWDOWN = "max_drawdown"
    CALMAR = "calmar"
    TURNOVER = "turnover"
    """Annualised one-way turnover: traded asset value / portfolio value, summed, per year."""
    COSTS = "costs"
    """Annualised cost drag: transaction costs / portfolio value, summed, per year."""


@dataclass(frozen=True, slots=True)
class StrategyRun:
    """One strategy on every path: daily returns (net of costs) and per-episode metrics."""

    name: str
    daily_returns: tuple[FloatArray, ...]
    """One array per episode (shorter than ``max_steps`` only after ruin)."""
    metrics: Mapping[Metric, FloatArray]
    """Metric -> one value per episode."""
    mean_weights: FloatArray
    """``(episodes, n + 1)`` average held weights (assets then cash) over each episode."""


@dataclass(frozen=True, slots=True)
class Summary:
    """Mean of a metric across episodes and its confidence interval (Student t)."""

    mean: float
    low: float
    high: float


@dataclass(frozen=True, slots=True)
class Comparison:
    """Paired comparison of ``strategy`` against ``baseline`` on one metric, over the same paths."""

    strategy: str
    baseline: str
    metric: Metric
    mean_difference: float
    """Mean over episodes of ``strategy - baseline``."""
    low: float
    high: float
    win_rate: float
    """Fraction of episodes where the strategy's value is higher."""
    p_value: float
    """Two-sided paired sign-flip permutation test (or block bootstrap for a single path)."""


@dataclass(frozen=True, slots=True)
class EvaluationReport:
    """Result of :func:`evaluate`: runs, per-metric summaries and paired comparisons."""

    runs: Mapping[str, StrategyRun]
    summaries: Mapping[str, Mapping[Metric, Summary]]
    comparisons: tuple[Comparison, ...]
    seeds: tuple[int, ...]
    confidence: float


@dataclass(frozen=True, slots=True)
class PathReport:
    """Result of :func:`evaluate_path`: one long path, point estimates and bootstrap Sharpe intervals."""

    runs: Mapping[str, StrategyRun]
    values: Mapping[str, Mapping[Metric, float]]
    sharpe_intervals: Mapping[str, Summary]
    comparisons: tuple[Comparison, ...]
    """Sharpe difference of the first strategy vs each other one (paired block bootstrap)."""
    confidence: float


_COLUMNS = (
    Metric.SHARPE,
    Metric.ANNUAL_RETURN,
    Metric.ANNUAL_VOL,
    Metric.MAX_DRAWDOWN,
    Metric.CALMAR,
    Metric.LOG_WEALTH,
    Metric.TURNOVER,
    Metric.COSTS,
)
_PERCENT = {Metric.ANNUAL_RETURN, Metric.ANNUAL_VOL, Metric.MAX_DRAWDOWN, Metric.TOTAL_RETURN, Metric.COSTS}


def _fmt(m: Metric, x: float) -> str:
    return f"{100 * x:.2f}%" if m in _PERCENT else f"{x:.3f}"


def _p(p: float) -> str:
    return f"{p:.1e}" if p < 1e-3 else f"{p:.4f}"


def format_report(report: EvaluationReport | PathReport) -> str:
    """A markdown table per report: strategies x metrics, then the paired comparisons."""
    level = f"{100 * report.confidence:.0f}%"
    lines = [
        "| strategy | " + " | ".join(m.value for m in _COLUMNS) + " |",
        "|---" * (len(_COLUMNS) + 1) + "|",
    ]
    if isinstance(report, EvaluationReport):
        for name, summary in report.summaries.items():
            cells = [
                f"{_fmt(m, summary[m].mean)} [{_fmt(m, summary[m].low)}, {_fmt(m, summary[m].high)}]"
                for m in _COLUMNS
            ]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines.insert(0, f"{len(report.seeds)} episodes, mean [{level} CI across episodes]\n")
        test = "paired sign-flip permutation test"
    else:
        for name, values in report.values.items():
            cells = [_fmt(m, values[m]) for m in _COLUMNS]
            ci = report.sharpe_intervals[name]
            cells[0] += f" [{ci.low:.2f}, {ci.high:.2f}]"
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines.insert(0, f"one path, point estimates (Sharpe with a {level} block-bootstrap CI)\n")
        test = "paired block bootstrap"
    lines += [
        "",
        f"| comparison | metric | mean difference [{level} CI] | win rate | p ({test}) |",
        "|---|---|---|---|---|",
    ]
    for c in report.comparisons:
        lines.append(
            f"| {c.strategy} - {c.baseline} | {c.metric.value} | "
            f"{c.mean_difference:+.4f} [{c.low:+.4f}, {c.high:+.4f}] | {c.win_rate:.2f} | {_p(c.p_value)} |"
        )
    return "\n".join(lines)
