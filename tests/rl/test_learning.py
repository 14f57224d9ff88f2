"""It learns: a PPO policy beats equal weight on a synthetic market with a known edge (slow).

The set-up is ``examples/evaluate_synthetic.py`` (a 5-asset correlated GBM with drifts -10..30 % a
year, LOG_RETURN reward, 10 bp costs, 2M steps): train for at most 5 minutes on 2 CPU cores, then
compare with equal weight on 100 common-random-number test paths whose seeds are disjoint from
training. "Beats" was fixed up front: higher mean per-episode log wealth, paired sign-flip
permutation test p < 0.05.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest
import torch

from advanced_risk.rl.evaluation import Metric

pytestmark = pytest.mark.slow

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "evaluate_synthetic.py"


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("evaluate_synthetic", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_ppo_beats_equal_weight_on_log_wealth_with_paired_p_below_005() -> None:
    example = load_example()
    torch.set_num_threads(2)
    t0 = time.perf_counter()
    agent = example.train()
    training_s = time.perf_counter() - t0
    report = example.evaluate_policy(agent)
    vs_equal = next(
        c for c in report.comparisons if c.baseline == "equal_weight" and c.metric is Metric.LOG_WEALTH
    )
    assert training_s < 300
    assert len(report.seeds) == 100
    assert min(report.seeds) >= 10_000
    assert vs_equal.mean_difference > 0
    assert vs_equal.p_value < 0.05
