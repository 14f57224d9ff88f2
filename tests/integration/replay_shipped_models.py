"""Replay the shipped policy and risk agents over bundled S&P 500 bars; print what they decided.

Run as a script by ``test_no_torch.py`` (in a child process that cannot import the training stack)
and by ``test_shipped_models.py``; importing it has no side effects::

    python replay_shipped_models.py decisions --bars 1000 [--no-training-stack] [--torch-objects]
    python replay_shipped_models.py components --bars 300

``decisions``: one JSON line per bar from ``AdvancedRiskManager.manage_risk_sync`` with the shipped
policy and the S&P 500 risk agents (the decision's JSON without ``latency_ms`` and ``decision_id``,
the only fields that differ between identical runs). The bot trades to the decided weights times
leverage, less the hedged share, and the held weights drift with the bar's returns.
``--torch-objects`` hands the manager ``RLPortfolioManager.load`` and ``RiskAgents.load`` objects (the
torch classes) instead of the file paths.

``components``: one JSON line per bar with what the models alone say (the allocator's weights and
uncertainty, the agents' gated advice), independent of the engine's rules: the shipped models'
regression fixture records these.

``--no-training-stack`` makes ``import torch`` (and gymnasium, pettingzoo, tensorboard, matplotlib,
tqdm) raise ``ImportError`` before anything else is imported, as in a core-only install.
"""

from __future__ import annotations

import argparse
import importlib.abc
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
POLICY = ROOT / "models" / "ppo_sp500_2012.armodel"
AGENTS = ROOT / "models" / "risk_agents_sp500.armodel"
TRAINING_STACK = ("torch", "gymnasium", "pettingzoo", "tensorboard", "matplotlib", "tqdm")
FIRST_BAR = 5000
"""Row of the bundled closes the replay starts at (2009-11: both models' training data ends 2012)."""


class BlockTrainingStack(importlib.abc.MetaPathFinder):
    """A finder that refuses the training stack: ``import torch`` raises ``ImportError``."""

    def find_spec(self, fullname: str, path: Sequence[str] | None, target: Any = None) -> None:
        if fullname.split(".")[0] in TRAINING_STACK:
            raise ImportError(f"{fullname} is blocked: the core install has no training stack")
        return None


def block_training_stack() -> None:
    """Install :class:`BlockTrainingStack` first on ``sys.meta_path`` (nothing of it imported yet)."""
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in TRAINING_STACK)
    if loaded:
        raise RuntimeError(f"already imported: {loaded}")
    sys.meta_path.insert(0, BlockTrainingStack())


def _bars(bars: int) -> tuple[list[str], Any, Any]:
    from advanced_risk.data import load_sp500_stocks

    closes = load_sp500_stocks()
    window = closes.iloc[FIRST_BAR - 1 : FIRST_BAR + bars]
    returns = window.pct_change().iloc[1:]
    return [str(c) for c in closes.columns], window.iloc[1:].to_numpy(), returns.to_numpy()


def manager_decisions(bars: int, *, torch_objects: bool = False) -> Iterator[str]:
    """The manager's decisions, one JSON text per bar (see the module docstring)."""
    import numpy as np

    from advanced_risk import AdvancedRiskManager, MarketState, Portfolio, RiskConfig

    assets, prices, returns = _bars(bars)
    policy: Any = str(POLICY)
    agents: Any = str(AGENTS)
    if torch_objects:
        from advanced_risk.rl.agents.policy import RiskAgents
        from advanced_risk.rl.portfolio.manager import RLPortfolioManager

        policy, agents = RLPortfolioManager.load(POLICY), RiskAgents.load(AGENTS)
    config = RiskConfig(deterministic_refits=True, rate_limit_per_s=None, deadline_ms=60_000.0)
    manager = AdvancedRiskManager(config, policy=policy, risk_agents=agents)
    held, equity = np.zeros(len(assets)), 1.0
    try:
        for t in range(returns.shape[0]):
            r = returns[t]
            gross = float(held @ r)
            equity *= 1.0 + gross
            held = held * (1.0 + r) / (1.0 + gross)
            decision = manager.manage_risk_sync(
                MarketState(returns=dict(zip(assets, r.tolist(), strict=True)),
                            prices=dict(zip(assets, prices[t].tolist(), strict=True))),
                Portfolio(weights=dict(zip(assets, held.tolist(), strict=True)), equity=equity),
            )  # fmt: skip
            row = json.loads(decision.to_json())
            del row["latency_ms"], row["decision_id"]
            yield json.dumps(row, sort_keys=True)
            hedged = decision.hedge.ratio if decision.hedge.active else 0.0
            target = np.array([decision.rebalance_weights[a] for a in assets])
            held = target * decision.leverage * (1.0 - hedged)
    finally:
        manager.close_sync()


def component_outputs(bars: int) -> Iterator[str]:
    """What the shipped policy and agents alone say, one JSON text per bar (module docstring)."""
    import numpy as np

    from advanced_risk.config import SizingConfig
    from advanced_risk.rl.agents.advisor import load_risk_agents
    from advanced_risk.rl.portfolio.allocator import load_allocator

    allocator = load_allocator(str(POLICY))
    advisor = load_risk_agents(str(AGENTS), SizingConfig())
    assert allocator is not None
    assert advisor is not None
    _, prices, returns = _bars(bars + advisor.history_length)
    n = prices.shape[1]
    held, equity, peak = np.append(np.zeros(n), 1.0), 1.0, 1.0
    for t in range(advisor.history_length, returns.shape[0]):
        r = returns[t]
        gross = float(held[:-1] @ r)
        equity *= 1.0 + gross
        peak = max(peak, equity)
        held = np.append(held[:-1] * (1.0 + r), held[-1]) / (1.0 + gross)
        history = returns[t + 1 - advisor.history_length : t + 1]
        drawdown = 1.0 - equity / peak
        allocation = allocator.allocate(history[-allocator.history_length :], held, drawdown)
        advisor.observe(prices[t], held[:-1], gross)
        request = advisor.request(history, drawdown, float(held[:-1].sum()))
        advice = None if request is None else advisor.advise(request).to_dict()
        if advice is not None:  # the fixture predates input drift (issue 15): compare the models' outputs
            advice.pop("drift", None)
        yield json.dumps(
            {"weights": allocation.weights.tolist(), "uncertainty": allocation.uncertainty, "advice": advice},
            sort_keys=True,
        )
        held = allocation.weights


def main(argv: Sequence[str] | None = None) -> None:
    """The command line of the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("decisions", "components"))
    parser.add_argument("--bars", type=int, default=1000)
    parser.add_argument("--no-training-stack", action="store_true")
    parser.add_argument("--torch-objects", action="store_true")
    args = parser.parse_args(argv)
    if args.no_training_stack:
        block_training_stack()
    rows = (
        manager_decisions(args.bars, torch_objects=args.torch_objects)
        if args.what == "decisions"
        else component_outputs(args.bars)
    )
    for row in rows:
        sys.stdout.write(row + "\n")
    if args.no_training_stack:
        leaked = sorted(m for m in sys.modules if m.split(".")[0] in TRAINING_STACK)
        if leaked:
            raise SystemExit(f"training stack imported: {leaked}")
        try:
            import torch  # noqa: F401  (the finder must refuse it)
        except ImportError:
            return
        raise SystemExit("import torch succeeded although the training stack is blocked")


if __name__ == "__main__":
    main()
