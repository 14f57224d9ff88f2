"""Property tests of the risk agents' inference: any finite observation gives actions inside the
action spaces, a valid monitor choice, uncertainties in [0, 1] and a finite novelty."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from advanced_risk.config import EnvConfig
from advanced_risk.rl.agents.env import ACTION_BOUNDS, AGENTS, obs_dim
from advanced_risk.rl.agents.policy import RiskAgents, gate
from advanced_risk.rl.ppo.normalize import RunningMeanStd

N_ASSETS = 2


@pytest.fixture(scope="module")
def agents() -> RiskAgents:
    base = RiskAgents.untrained(EnvConfig(asset_count=N_ASSETS), seed=1)
    rms = {}
    for a in AGENTS:
        rms[a] = RunningMeanStd((obs_dim(a, N_ASSETS),))
        rms[a].update(np.random.default_rng(0).normal(0.0, 2.0, (64, obs_dim(a, N_ASSETS))))
    return RiskAgents(base.policies, rms, base.env_config, seed=0)


def _observations() -> st.SearchStrategy[dict[str, np.ndarray]]:
    finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False, width=32)
    return st.fixed_dictionaries(
        {a: arrays(np.float32, (obs_dim(a, N_ASSETS),), elements=finite) for a in AGENTS}
    )


@settings(deadline=None, max_examples=60)
@given(obs=_observations(), n_samples=st.integers(1, 12))
def test_any_finite_observation_gives_valid_actions_and_bounded_uncertainty(
    agents: RiskAgents, obs: dict[str, np.ndarray], n_samples: int
) -> None:
    proposed = agents.act(obs, n_samples)
    for name, (low, high) in ACTION_BOUNDS.items():
        action = np.asarray(proposed.actions[name], dtype=np.float64)
        assert np.all(np.isfinite(action))
        assert np.all(action >= np.array(low) - 1e-6)
        assert np.all(action <= np.array(high) + 1e-6)
    assert proposed.actions["monitor"] in (0, 1, 2, 3)
    for u in proposed.uncertainty.values():
        assert 0.0 <= u <= 1.0
    assert all(np.isfinite(z) and z >= 0.0 for z in proposed.novelty.values())
    actions, overridden = gate(proposed, {"sizer": [1.0], "stop": [2.0, 1.0], "monitor": 0}, 0.1)
    assert set(actions) == set(AGENTS)
    assert set(overridden) <= set(AGENTS)
