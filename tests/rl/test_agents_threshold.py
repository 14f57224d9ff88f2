"""The risk agents' gate threshold is a finite number >= 0 (per agent or for all), wherever it
comes from: the constructor, a model file, or the advisor's override. A negative or NaN one sent
every decision to the rules, or none, without a word."""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import pytest

from advanced_risk.config import EnvConfig, SizingConfig
from advanced_risk.errors import InvalidInputError, ModelLoadError
from advanced_risk.rl.agents.advisor import RiskAgentsAdvisor
from advanced_risk.rl.agents.interface import AGENTS
from advanced_risk.rl.agents.policy import RiskAgents, as_threshold
from advanced_risk.rl.ppo.model_file import read_model_file, write_model_file

BAD = [-0.1, math.nan, math.inf, "high", None, True]


@pytest.mark.parametrize("value", BAD)
def test_a_threshold_that_is_not_a_finite_number_at_least_zero_is_refused(value: Any) -> None:
    with pytest.raises(InvalidInputError, match="uncertainty_threshold"):
        as_threshold(value)
    per_agent = dict.fromkeys(AGENTS, 0.1) | {AGENTS[-1]: value}
    with pytest.raises(InvalidInputError, match=rf"uncertainty_threshold\['{AGENTS[-1]}'\]"):
        as_threshold(per_agent)


def test_valid_thresholds_are_kept() -> None:
    assert as_threshold(0) == 0.0
    assert as_threshold(0.25) == 0.25
    assert as_threshold(dict.fromkeys(AGENTS, 1)) == dict.fromkeys(AGENTS, 1.0)


@pytest.mark.parametrize("value", [-1.0, math.nan])
def test_the_constructor_and_the_advisor_refuse_it(value: float) -> None:
    untrained = RiskAgents.untrained(EnvConfig(asset_count=2))
    with pytest.raises(InvalidInputError, match="uncertainty_threshold"):
        RiskAgents(untrained.policies, untrained.obs_rms, untrained.env_config, uncertainty_threshold=value)
    with pytest.raises(InvalidInputError, match="uncertainty_threshold"):
        RiskAgentsAdvisor(untrained, SizingConfig(), threshold=value)


@pytest.mark.parametrize("value", [-1.0, {a: -1.0 for a in AGENTS}])
def test_a_model_file_holding_one_is_refused_at_load(value: Any, tmp_path: Path) -> None:
    good = tmp_path / "agents.armodel"
    RiskAgents.untrained(EnvConfig(asset_count=2)).save(good)
    header, arrays = read_model_file(good)
    meta = copy.deepcopy(header["metadata"])
    meta["risk_agents"]["uncertainty_threshold"] = value
    bad = tmp_path / "bad.armodel"
    write_model_file(bad, arrays, meta, kind=header["kind"])
    with pytest.raises(ModelLoadError, match="uncertainty_threshold"):
        RiskAgents.load(bad)
    assert RiskAgents.load(good).uncertainty_threshold >= 0.0
