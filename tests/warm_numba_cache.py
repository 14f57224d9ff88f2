"""Fill numba's on-disk cache with the kernels of the decision path before the tests start.

``make test`` runs this in the background while ``make lint`` (mypy, one core) runs: in a fresh
clone no kernel is cached yet, and without it each pytest worker compiles the kernels it meets
first (~17 s for these alone on the 2-core host) while the other core idles during lint. It
compiles nothing the tests would not: a scratch engine per VaR method, the shipped policy and the
shipped risk agents, each through its own ``warm_up`` (what ``AdvancedRiskManager.open`` calls).
It also imports the package with bytecode writing on, so the workers load it from ``__pycache__``.

Best effort: a step that fails is reported on stderr and skipped (the tests then compile that
kernel themselves); the exit status is always 0. Not a test module: pytest only imports it.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

MODELS = Path(__file__).resolve().parents[1] / "models"


def _step(name: str, action: Callable[[], object]) -> None:
    start = time.perf_counter()
    try:
        action()
    except Exception as exc:  # best effort: the tests compile what this did not
        print(f"warm_numba_cache: {name} skipped: {exc!r}", file=sys.stderr)
    else:
        print(f"warm_numba_cache: {name} {time.perf_counter() - start:.1f} s", file=sys.stderr)


def _engine(method: str) -> None:
    from advanced_risk import RiskConfig
    from advanced_risk.engine.core import warm_up

    config = RiskConfig()
    warm_up(dataclasses.replace(config, tracker=dataclasses.replace(config.tracker, method=method)))


def _policy() -> None:
    from advanced_risk.rl.portfolio.allocator import load_allocator

    allocator = load_allocator(str(MODELS / "ppo_sp500_2012.armodel"))
    allocator.warm_up()  # type: ignore[union-attr]  # a path gives an allocator


def _agents() -> None:
    from advanced_risk import RiskConfig
    from advanced_risk.rl.agents.advisor import load_risk_agents

    config = RiskConfig()
    advisor = load_risk_agents(
        str(MODELS / "risk_agents_sp500.armodel"),
        config.sizing,
        config.mc_samples,
        config.agents_uncertainty_threshold,
    )
    advisor.warm_up()  # type: ignore[union-attr]  # a path gives an advisor


def main() -> int:
    start = time.perf_counter()
    try:
        from advanced_risk.measures.var_method import VaRMethod

        methods = [method.value for method in VaRMethod]
    except Exception as exc:
        print(f"warm_numba_cache: skipped: {exc!r}", file=sys.stderr)
        return 0
    for method in methods:
        _step(f"engine ({method})", partial(_engine, method))
    _step("policy", _policy)
    _step("risk agents", _agents)
    print(f"warm_numba_cache: done in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
