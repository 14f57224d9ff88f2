"""The out-of-sample report of a run: ``report.md``, ``report.json`` and (``--plot``) PNGs.

The numbers come from :mod:`advanced_risk.evaluation.policy` (no second evaluator here): the policy
next to equal weight, minimum variance and buy-and-hold on the *same* paths. Simulated data: the
held-out seeds of :mod:`advanced_risk.training.data`, means with Student-t intervals across paths
and paired sign-flip tests. Table data: the whole test period once, point estimates with
block-bootstrap Sharpe intervals. Added here: VaR breaches, counted per strategy as the days whose
return fell below minus the historical 95 % VaR of that strategy's previous ``VAR_WINDOW`` returns
(expected rate 5 %).

One module because the Markdown, the JSON and the plots render the same tables, built here once.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import numpy as np

from advanced_risk.config import EnvConfig
from advanced_risk.errors import ModelLoadError
from advanced_risk.evaluation.policy import (
    EvaluationReport,
    Metric,
    PathReport,
    PolicyStrategy,
    Strategy,
    baselines,
    evaluate,
    evaluate_path,
    format_report,
    run_strategy,
    sample_paths,
)
from advanced_risk.evaluation.stats import mean_interval
from advanced_risk.files import atomic_write_bytes
from advanced_risk.logs import get_logger
from advanced_risk.measures.validation import FloatArray
from advanced_risk.rl.portfolio.accounting import history_length, observation_dim
from advanced_risk.rl.portfolio.asset_names import stored_asset_names
from advanced_risk.rl.ppo.agent import PPOAgent
from advanced_risk.rl.ppo.model_file import read_model_header
from advanced_risk.training.data import EVAL_SEED_BASE, DataBundle, align_to_model, load_data
from advanced_risk.training.settings import TrainingSettings

__all__ = [
    "VAR_ALPHA",
    "VAR_WINDOW",
    "evaluate_agent",
    "evaluate_model_file",
    "model_asset_count",
    "var_breaches",
    "write_report",
]

log = get_logger(__name__)
VAR_ALPHA: Final = 0.95
VAR_WINDOW: Final = 60
_MIN_HISTORY: Final = 20


def var_breaches(returns: FloatArray, alpha: float = VAR_ALPHA, window: int = VAR_WINDOW) -> tuple[int, int]:
    """``(breaches, days tested)``: days with ``r_t < -VaR_alpha(r_(t-window) .. r_(t-1))``.

    Historical VaR as in DESIGN.md (``-quantile(r, 1 - alpha)``, linear); a day is tested once at
    least 20 earlier returns exist.

    Examples
    --------
    >>> var_breaches(np.r_[np.zeros(30), -0.5])
    (1, 11)
    """
    breaches = tested = 0
    for t in range(_MIN_HISTORY, returns.size):
        past = returns[max(0, t - window) : t]
        tested += 1
        breaches += int(returns[t] < np.quantile(past, 1.0 - alpha))
    return breaches, tested


def _breach_table(report: EvaluationReport | PathReport, confidence: float) -> dict[str, dict[str, float]]:
    out = {}
    for name, run in report.runs.items():
        counts = [var_breaches(r) for r in run.daily_returns]
        rates = np.array([b / t for b, t in counts if t > 0])
        total_b, total_t = sum(b for b, _ in counts), sum(t for _, t in counts)
        mean, low, high = mean_interval(rates, confidence) if rates.size > 1 else (math.nan,) * 3
        out[name] = {
            "breaches": float(total_b),
            "days": float(total_t),
            "rate": total_b / total_t if total_t else math.nan,
            "rate_low": low,
            "rate_high": high,
            "expected_rate": 1.0 - VAR_ALPHA,
            "mean_episode_rate": mean,
        }
    return out


class _Ticking:
    """A :class:`Strategy` that advances a progress bar by one per trading step, naming itself.

    Parameters
    ----------
    inner : the strategy that trades.
    bar : a ``tqdm`` bar shared by all the strategies of one evaluation.
    """

    def __init__(self, inner: Strategy, bar: Any) -> None:
        self.inner, self.bar, self.name = inner, bar, inner.name

    def reset(self) -> None:
        """Forget the inner strategy's state from a previous episode."""
        self.inner.reset()

    def step(self, env: Any, obs: Any, info: Mapping[str, Any], past: FloatArray) -> Any:
        """Trade one step with the inner strategy and tick the bar."""
        if self.bar.postfix != self.name:
            self.bar.set_postfix_str(self.name)
        result = self.inner.step(env, obs, info, past)
        self.bar.update(1)
        return result


def evaluate_agent(
    agent: PPOAgent, data: DataBundle, episodes: int, seed: int
) -> tuple[EvaluationReport | PathReport, list[Strategy]]:
    """The policy and the three baselines on the test data (see the module docstring).

    A ``tqdm`` bar on stderr counts the trading steps of every strategy and names the one trading
    (the minimum-variance baseline solves an ``n x n`` problem per step: minutes on 300 assets).
    """
    from tqdm.auto import tqdm

    strategies: list[Strategy] = [PolicyStrategy(agent), *baselines()]
    cfg = data.env_config
    per_path = cfg.max_steps if data.test_path is None else data.test_path.shape[0] - history_length(cfg)
    paths = episodes if data.test_path is None else 1
    with tqdm(
        total=len(strategies) * paths * per_path, unit="step", desc="evaluate", dynamic_ncols=True
    ) as bar:
        ticking: list[Strategy] = [_Ticking(s, bar) for s in strategies]
        if data.test_path is None:
            seeds = [EVAL_SEED_BASE + 1000 * seed + k for k in range(episodes)]
            report: EvaluationReport | PathReport = evaluate(
                ticking, cfg, seeds, market=data.train_market, n_permutations=5000
            )
        else:
            report = evaluate_path(ticking, cfg, data.test_path, n_boot=1000)
    return report, strategies


def _metrics_json(report: EvaluationReport | PathReport) -> dict[str, Any]:
    if isinstance(report, EvaluationReport):
        return {
            name: {m.value: {"mean": s.mean, "low": s.low, "high": s.high} for m, s in summary.items()}
            for name, summary in report.summaries.items()
        }
    return {
        name: {m.value: {"value": v} for m, v in values.items()}
        | {
            "sharpe_interval": {
                "low": report.sharpe_intervals[name].low,
                "high": report.sharpe_intervals[name].high,
            }
        }
        for name, values in report.values.items()
    }


def _clean(value: Any) -> Any:
    """JSON-safe: NaN/inf -> None, numpy scalars -> Python."""
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _markdown(
    settings: TrainingSettings,
    data: DataBundle,
    report: EvaluationReport | PathReport,
    breaches: dict[str, Any],
) -> str:
    kind = "held-out simulated paths" if data.simulated else "the test period (one path)"
    lines = [
        "# PPO allocator: out-of-sample report",
        "",
        f"Data: `{data.description.get('source')}`"
        + (f", test {data.description['test']}" if "test" in data.description else "")
        + f"; evaluated on {kind}; {data.env_config.asset_count} assets, "
        f"{data.env_config.transaction_cost * 1e4:.0f} bp costs.",
        f"Model: `{settings.model_file}`.",
        "",
        "## Metrics",
        "",
        format_report(report),
        "",
        f"## VaR breaches (historical {VAR_ALPHA:.0%} VaR over the previous {VAR_WINDOW} days)",
        "",
        "| strategy | breaches | days tested | rate | expected |",
        "|---|---|---|---|---|",
    ]
    for name, b in breaches.items():
        lines.append(
            f"| {name} | {b['breaches']:.0f} | {b['days']:.0f} | {100 * b['rate']:.2f}% | "
            f"{100 * b['expected_rate']:.0f}% |"
        )
    totals = _total_returns(report)
    lines += ["", "## Total return", "", "| strategy | total return |", "|---|---|"]
    lines += [f"| {name} | {100 * value:.2f}% |" for name, value in totals.items()]
    return "\n".join(lines) + "\n"


def _total_returns(report: EvaluationReport | PathReport) -> dict[str, float]:
    if isinstance(report, EvaluationReport):
        return {n: s[Metric.TOTAL_RETURN].mean for n, s in report.summaries.items()}
    return {n: v[Metric.TOTAL_RETURN] for n, v in report.values.items()}


class _Recorder:
    """Wraps a strategy and records the weights it holds after each step (for the weights plot)."""

    def __init__(self, inner: Strategy) -> None:
        self.inner, self.name, self.weights = inner, inner.name, list[FloatArray]()

    def reset(self) -> None:
        self.inner.reset()

    def step(self, env: Any, obs: Any, info: Any, past: FloatArray) -> Any:
        result = self.inner.step(env, obs, info, past)
        self.weights.append(np.asarray(result[4]["weights"], dtype=np.float64))
        return result


def _plot(out: Path, report: EvaluationReport | PathReport, policy: Strategy, data: DataBundle) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    for name, title, ylabel in (
        ("equity.png", "Equity (first evaluation path)", "growth of 1"),
        ("drawdown.png", "Drawdown (first evaluation path)", "drawdown"),
    ):
        fig, ax = plt.subplots(figsize=(9, 4))
        for strategy, run in report.runs.items():
            equity = np.cumprod(1.0 + run.daily_returns[0])
            curve = equity if name == "equity.png" else equity / np.maximum.accumulate(equity) - 1.0
            ax.plot(curve, label=strategy)
        ax.set(title=title, xlabel="trading day", ylabel=ylabel)
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / name, dpi=100)
        plt.close(fig)
        files.append(name)
    recorder = _Recorder(policy)
    path = (
        data.test_path
        if data.test_path is not None
        else sample_paths(data.env_config, [EVAL_SEED_BASE], data.train_market)[0]
    )
    cfg = data.env_config
    if data.test_path is not None:
        from dataclasses import replace

        from advanced_risk.rl.portfolio.accounting import history_length

        cfg = replace(cfg, max_steps=path.shape[0] - history_length(cfg))
    run_strategy(recorder, cfg, [path])
    w = np.array(recorder.weights)
    fig, ax = plt.subplots(figsize=(9, 4))
    labels = [*(f"asset {i}" for i in range(w.shape[1] - 1)), "cash"]
    tickers = data.description.get("tickers")
    if tickers and len(tickers) == w.shape[1] - 1:
        labels = [*tickers, "cash"]
    ax.stackplot(np.arange(w.shape[0]), w.T, labels=labels)
    ax.set(title="Policy weights over time (first evaluation path)", xlabel="trading day", ylim=(0, 1))
    ax.legend(loc="upper left", fontsize="small", ncol=4)
    fig.tight_layout()
    fig.savefig(out / "weights.png", dpi=100)
    plt.close(fig)
    return [*files, "weights.png"]


def write_report(
    settings: TrainingSettings,
    data: DataBundle,
    agent: PPOAgent,
    history: list[dict[str, float]],
    *,
    sweep: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Evaluate ``agent`` and write ``report.md`` / ``report.json`` (and PNGs) into the run dir."""
    out = Path(settings.out)
    report, strategies = evaluate_agent(agent, data, settings.eval_episodes, settings.seed)
    breaches = _breach_table(report, report.confidence)
    comparisons = [
        {
            "strategy": c.strategy,
            "baseline": c.baseline,
            "metric": c.metric.value,
            "mean_difference": c.mean_difference,
            "low": c.low,
            "high": c.high,
            "win_rate": c.win_rate,
            "p_value": c.p_value,
        }
        for c in report.comparisons
    ]
    last = history[-1] if history else {}
    body: dict[str, Any] = {
        "kind": "episodes" if isinstance(report, EvaluationReport) else "path",
        "confidence": report.confidence,
        "data": data.description,
        "env_config": data.env_config.to_dict(),
        "model": str(settings.model_file),
        "training": {
            "updates": len(history),
            "global_step": agent.global_step,
            "last_episode_return_mean": last.get("episode_return_mean"),
        },
        "metrics": _metrics_json(report),
        "comparisons": comparisons,
        "var_breaches": breaches,
        "sweep": sweep,
    }
    if isinstance(report, EvaluationReport):
        body["seeds"] = list(report.seeds)
    markdown = _markdown(settings, data, report, breaches)
    if sweep is not None:
        markdown += "\n## Sweep\n\n" + sweep.get("markdown", "") + "\n"
    files = ["report.md", "report.json"]
    if settings.plot:
        files += _plot(out, report, strategies[0], data)
    atomic_write_bytes(out / "report.json", json.dumps(_clean(body), indent=2).encode())
    atomic_write_bytes(out / "report.md", markdown.encode())
    log.info("report_written", out=str(out), files=files)
    policy_sharpe = _sharpe(report, "ppo")
    return {
        "out": str(out),
        "files": files,
        "policy_sharpe": policy_sharpe,
        "model": str(settings.model_file),
    }


def _sharpe(report: EvaluationReport | PathReport, name: str) -> float:
    if isinstance(report, EvaluationReport):
        return float(report.summaries[name][Metric.SHARPE].mean)
    return float(report.values[name][Metric.SHARPE])


def model_asset_count(path: Path) -> int | None:
    """The asset count stored in a policy file's header (None when it does not record one).

    Raises
    ------
    ModelLoadError
        Missing, corrupt or not a policy file.
    """
    header = read_model_header(path, kind="ppo_agent")
    stored = header.get("metadata", {}).get("user", {}).get("env_config")
    return None if stored is None else int(stored["asset_count"])


def evaluate_model_file(settings: TrainingSettings) -> dict[str, Any]:
    """``--evaluate --model-path M``: load ``M`` (verified) and report on the settings' test data.

    The model's stored ``env_config`` (when present) fixes the window, costs and asset count;
    an ``--asset-count`` that disagrees with the model's is a ``ModelLoadError``.
    """
    import dataclasses

    path = settings.model_file
    header = read_model_header(path, kind="ppo_agent")
    stored = header.get("metadata", {}).get("user", {}).get("env_config")
    if stored is not None:
        env = {k: v for k, v in stored.items() if k not in ("asset_count", "max_steps", "market", "split")}
        model_assets = int(stored["asset_count"])
        if model_assets != settings.asset_count:
            raise ModelLoadError(
                f"model {path} was trained on {model_assets} assets, --asset-count is {settings.asset_count}"
            )
        settings = dataclasses.replace(settings, env={**env, **settings.env})
    data = load_data(settings)
    cfg: EnvConfig = data.env_config
    if stored is not None and cfg.asset_count != int(stored["asset_count"]):  # a table with fewer columns
        raise ModelLoadError(
            f"model {path} was trained on {stored['asset_count']} assets, the data has {cfg.asset_count}"
        )
    agent = PPOAgent.load(
        path, "cpu", expected_obs_dim=observation_dim(cfg), expected_action_dim=cfg.asset_count + 1
    )
    manager_settings = header.get("metadata", {}).get("user", {}).get("rl_portfolio_manager") or {}
    names = stored_asset_names(manager_settings.get("asset_names"), cfg.asset_count, path)
    data = align_to_model(names, data, str(path))
    return write_report(settings, data, agent, [])
