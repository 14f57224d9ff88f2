"""It learns: a PPO policy beats equal weight on a synthetic market with a known edge (slow).

The set-up is ``examples/evaluate_synthetic.py`` (a 5-asset correlated GBM with drifts -10..30 % a
year, LOG_RETURN reward, 10 bp costs, 2M steps): train for at most 5 minutes on 2 CPU cores, then
compare with equal weight on 100 common-random-number test paths whose seeds are disjoint from
training. "Beats" was fixed up front: higher mean per-episode log wealth, paired sign-flip
permutation test p < 0.05.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from types import ModuleType

import pytest
import torch

from advanced_risk.evaluation.policy import Metric

pytestmark = [pytest.mark.slow, pytest.mark.timing]  # a training-time bound: run alone


def test_ppo_beats_equal_weight_on_log_wealth_with_paired_p_below_005(
    load_example: Callable[[str], ModuleType],
) -> None:
    example = load_example("evaluate_synthetic")
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
