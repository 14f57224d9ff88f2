"""Model files: atomic writes, verified SHA-256, safetensors arrays + JSON header, clear ModelLoadErrors."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import numpy as np
import pytest
import safetensors.numpy
import torch

from advanced_risk import __version__
from advanced_risk.config import PPOConfig
from advanced_risk.errors import ModelLoadError
from advanced_risk.files import atomic_write_bytes, sha256_file, sha256_hex
from advanced_risk.rl.agents.policy import RiskAgents
from advanced_risk.rl.ppo.agent import PPOAgent
from advanced_risk.rl.ppo.io import read_policy_file
from advanced_risk.rl.ppo.model_file import MAGIC, read_model_file, read_model_header, write_model_file
from advanced_risk.training.checkpoint import pack, unpack

OBS, ACT = 7, 4


@pytest.fixture
def agent() -> PPOAgent:
    """An agent with non-trivial weights and observation statistics (as after training)."""
    agent = PPOAgent(OBS, ACT, PPOConfig(device="cpu", seed=3, hidden_sizes=(16, 16)))
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in agent.network.parameters():
            p.add_(0.5 * torch.randn(p.shape, generator=gen))
    agent.obs_rms.update(np.random.default_rng(0).normal(2.0, 3.0, (500, OBS)))
    return agent


@pytest.fixture
def saved(agent: PPOAgent, tmp_path: Path) -> Path:
    path = tmp_path / "policy.pt"
    agent.save(path, metadata={"note": "test", "sharpe": 1.25})
    return path


def probe() -> np.ndarray:
    return np.random.default_rng(7).normal(2.0, 3.0, (50, OBS)).astype(np.float32)


def test_save_load_round_trip_gives_identical_actions(agent: PPOAgent, saved: Path) -> None:
    loaded = PPOAgent.load(saved, expected_obs_dim=OBS, expected_action_dim=ACT)
    np.testing.assert_array_equal(loaded.select_action(probe()), agent.select_action(probe()))
    np.testing.assert_array_equal(loaded.select_action(probe()[0]), agent.select_action(probe()[0]))
    for a, b in zip(agent.network.parameters(), loaded.network.parameters(), strict=True):
        assert torch.equal(a, b)
    assert loaded.config == agent.config


def test_header_records_dims_config_versions_and_metadata(agent: PPOAgent, saved: Path) -> None:
    header = read_model_header(saved)
    meta = header["metadata"]
    assert (meta["obs_dim"], meta["action_dim"]) == (OBS, ACT)
    assert PPOConfig.from_dict(meta["config"]) == agent.config
    assert meta["user"] == {"note": "test", "sharpe": 1.25}
    assert header["advanced_risk_version"] == __version__
    assert header["numpy_version"] == np.__version__
    assert header["safetensors_version"] == safetensors.__version__
    assert header["torch_version"] == torch.__version__  # the writer had torch loaded
    assert header["format_version"] == 2
    assert header["kind"] == "ppo_agent"
    assert header["created_at"].endswith("+00:00")


def test_payload_is_a_safetensors_blob_of_the_named_arrays(agent: PPOAgent, saved: Path) -> None:
    data = saved.read_bytes()
    (header_len,) = struct.unpack("<Q", data[72:80])
    arrays = safetensors.numpy.load(data[80 + header_len :])
    state = agent.network.state_dict()
    assert set(arrays) == {f"network.{k}" for k in state} | {"obs_rms.mean", "obs_rms.var"}
    for name, tensor in state.items():
        assert arrays[f"network.{name}"].dtype == np.float32
        np.testing.assert_array_equal(arrays[f"network.{name}"], tensor.numpy())
    np.testing.assert_array_equal(arrays["obs_rms.mean"], agent.obs_rms.mean)
    assert read_model_header(saved)["metadata"]["obs_rms_count"] == agent.obs_rms.count


def test_numpy_reader_gives_the_agents_inference_snapshot(agent: PPOAgent, saved: Path) -> None:
    policy = read_policy_file(saved).numpy_policy()
    x = probe().astype(np.float64)
    np.testing.assert_array_equal(policy.mean_action(x), agent.select_action(probe()))
    snapshot = agent.network.numpy_policy(agent.obs_rms, agent.config.obs_clip)
    for a, b in zip((*policy.weights, *policy.biases), (*snapshot.weights, *snapshot.biases), strict=True):
        assert a.tobytes() == b.tobytes()
        assert a.flags.c_contiguous == b.flags.c_contiguous


ARRAYS = {
    "f32": np.arange(6, dtype=np.float32).reshape(2, 3),
    "f64": np.array([np.pi, -0.0, 1e-300]),
    "i64": np.array([-(2**62), 7], dtype=np.int64),
    "u8": np.array([0, 255], dtype=np.uint8),
    "bool": np.array([True, False]),
    "scalar": np.array(2.5, dtype=np.float32),
    "empty": np.zeros((0, 4), dtype=np.float32),
    "transposed": np.arange(6.0).reshape(2, 3).T,
}


def test_arrays_round_trip_bit_for_bit_with_dtype_and_shape(tmp_path: Path) -> None:
    path = tmp_path / "arrays.armodel"
    write_model_file(path, ARRAYS, {"note": [1, "two", None]}, kind="test")
    header, arrays = read_model_file(path, kind="test")
    assert header["metadata"] == {"note": [1, "two", None]}
    assert set(arrays) == set(ARRAYS)
    for name, a in ARRAYS.items():
        assert (arrays[name].dtype, arrays[name].shape) == (a.dtype, a.shape), name
        np.testing.assert_array_equal(arrays[name], a)
        assert arrays[name].flags.writeable


def test_metadata_that_is_not_json_is_refused_at_write(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="Out of range float"):
        write_model_file(tmp_path / "nan.armodel", {}, {"sharpe": float("nan")}, kind="test")
    assert not (tmp_path / "nan.armodel").exists()


def test_save_returns_the_sha256_stored_in_the_file(agent: PPOAgent, tmp_path: Path) -> None:
    path = tmp_path / "p.pt"
    digest = agent.save(path)
    data = path.read_bytes()
    assert data[:8] == MAGIC
    assert data[8:72].decode() == digest == sha256_hex(data[72:])


def test_missing_file_raises_model_load_error(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="not found"):
        PPOAgent.load(tmp_path / "nope.pt")


@pytest.mark.parametrize("where", ["payload", "header", "digest"])
def test_flipped_byte_is_refused_before_decoding(
    saved: Path, where: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = bytearray(saved.read_bytes())
    (header_len,) = struct.unpack("<Q", data[72:80])
    offset = {"payload": len(data) - 200, "header": 80 + header_len // 2, "digest": 20}[where]
    data[offset] ^= 0x01
    saved.write_bytes(bytes(data))

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the payload must not be decoded before it is verified")

    monkeypatch.setattr(safetensors.numpy, "load", refuse)
    monkeypatch.setattr(torch, "load", refuse)
    with pytest.raises(ModelLoadError, match="corrupt: SHA-256 mismatch"):
        PPOAgent.load(saved)
    with pytest.raises(ModelLoadError, match="corrupt: SHA-256 mismatch"):
        read_policy_file(saved)


@pytest.mark.parametrize("keep", [0.5, 0.999], ids=["half", "last_bytes_missing"])
def test_truncated_file_raises_model_load_error(saved: Path, keep: float) -> None:
    data = saved.read_bytes()
    saved.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(ModelLoadError, match="truncated"):
        PPOAgent.load(saved)
    with pytest.raises(ModelLoadError, match="truncated"):
        read_policy_file(saved)


def test_file_cut_inside_the_header_is_truncated(saved: Path) -> None:
    saved.write_bytes(saved.read_bytes()[:60])
    with pytest.raises(ModelLoadError, match="truncated"):
        PPOAgent.load(saved)


@pytest.mark.parametrize("content", [b"", b"not a model file at all", b"\x80\x04K\x01."], ids=str)
def test_foreign_file_raises_model_load_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "foreign.pt"
    path.write_bytes(content)
    with pytest.raises(ModelLoadError, match="bad magic"):
        PPOAgent.load(path)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"expected_obs_dim": OBS + 1}, "obs_dim=7, expected 8"),
        ({"expected_action_dim": 3}, "action_dim=4, expected 3"),
    ],
    ids=["obs_dim", "action_dim"],
)
def test_wrong_dims_raise_model_load_error(saved: Path, kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(ModelLoadError, match=message):
        PPOAgent.load(saved, "cpu", **kwargs)


def test_file_of_another_kind_is_refused(saved: Path, tmp_path: Path) -> None:
    path = tmp_path / "ckpt.pt"
    write_model_file(path, {"x": np.zeros(1)}, {"obs_dim": OBS, "action_dim": ACT}, kind="ppo_checkpoint")
    with pytest.raises(ModelLoadError, match="expected a 'ppo_agent'"):
        PPOAgent.load(path)
    with pytest.raises(ModelLoadError, match="holds a 'ppo_agent', expected a 'risk_agents'"):
        RiskAgents.load(saved)


def _policy_metadata(agent: PPOAgent) -> dict[str, object]:
    return {"obs_dim": OBS, "action_dim": ACT, "config": agent.config.to_dict(), "global_step": 0,
            "num_updates": 0, "obs_rms_count": 1.0, "user": {}}  # fmt: skip


def test_verified_file_with_mismatched_weights_is_refused(agent: PPOAgent, tmp_path: Path) -> None:
    path = tmp_path / "bad.pt"
    arrays = {
        "network.bogus": np.zeros(2, np.float32),
        "obs_rms.mean": np.zeros(OBS),
        "obs_rms.var": np.ones(OBS),
    }
    write_model_file(path, arrays, _policy_metadata(agent), kind="ppo_agent")
    with pytest.raises(ModelLoadError, match="does not match"):
        PPOAgent.load(path)
    with pytest.raises(KeyError, match=r"actor_layers\.0\.weight"):
        read_policy_file(path).numpy_policy()


def test_verified_file_without_normaliser_moments_is_refused(agent: PPOAgent, tmp_path: Path) -> None:
    path = tmp_path / "bad.pt"
    write_model_file(path, {"network.x": np.zeros(1, np.float32)}, _policy_metadata(agent), kind="ppo_agent")
    with pytest.raises(ModelLoadError, match="does not hold a PPO policy: KeyError"):
        read_policy_file(path)


def test_verified_file_whose_payload_is_not_safetensors_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "odd.pt"
    header = json.dumps({"format_version": 2, "kind": "ppo_agent", "payload_bytes": 5, "metadata": {}})
    tail = struct.pack("<Q", len(header)) + header.encode() + b"\x80\x04K\x01."  # a pickle, checksummed
    path.write_bytes(MAGIC + sha256_hex(tail).encode() + tail)
    with pytest.raises(ModelLoadError, match="payload cannot be loaded"):
        PPOAgent.load(path)


def test_future_format_version_is_refused(saved: Path) -> None:
    data = saved.read_bytes()
    (header_len,) = struct.unpack("<Q", data[72:80])
    header = json.loads(data[80 : 80 + header_len])
    header["format_version"] = 99
    new_header = json.dumps(header).encode()
    tail = struct.pack("<Q", len(new_header)) + new_header + data[80 + header_len :]
    saved.write_bytes(MAGIC + sha256_hex(tail).encode() + tail)
    with pytest.raises(ModelLoadError, match="format_version 99"):
        PPOAgent.load(saved)


def test_format_version_1_is_refused_with_the_converter_named(saved: Path) -> None:
    data = saved.read_bytes()
    (header_len,) = struct.unpack("<Q", data[72:80])
    header = json.loads(data[80 : 80 + header_len])
    header["format_version"] = 1
    new_header = json.dumps(header).encode()
    tail = struct.pack("<Q", len(new_header)) + new_header + data[80 + header_len :]
    saved.write_bytes(MAGIC + sha256_hex(tail).encode() + tail)
    with pytest.raises(ModelLoadError, match=r"format_version 1; .* reads 2 .*convert_model_files\.py"):
        read_policy_file(saved)


def test_atomic_write_replaces_content_and_leaves_no_temp_files(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    atomic_write_bytes(path, b"old")
    os.chmod(path, 0o600)
    atomic_write_bytes(path, b"new content")
    assert path.read_bytes() == b"new content"
    assert sha256_file(path) == sha256_hex(b"new content")
    assert os.stat(path).st_mode & 0o777 == 0o600  # a replaced file keeps its permissions
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.bin"]


def test_failed_atomic_write_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "f.bin"
    atomic_write_bytes(path, b"old")

    def crash(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_bytes(path, b"new")
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.bin"]


def test_saving_over_an_existing_model_is_atomic_and_loadable(agent: PPOAgent, saved: Path) -> None:
    with torch.no_grad():
        agent.network.actor_logstd.fill_(-1.0)
    agent.save(saved)
    loaded = PPOAgent.load(saved)
    assert torch.equal(loaded.network.actor_logstd, agent.network.actor_logstd)
    np.testing.assert_array_equal(loaded.select_action(probe()), agent.select_action(probe()))


# -- training checkpoints: a state tree split into JSON and arrays ------------------------------------
def test_checkpoint_state_round_trips_with_types_intact(tmp_path: Path) -> None:
    state = {
        "network": {"w": torch.arange(4.0).reshape(2, 2)},
        "optimizer": {"state": {0: {"step": torch.tensor(3.0)}}, "param_groups": [{"betas": (0.9, 0.999)}]},
        "rng": np.random.default_rng(1).bit_generator.state,  # 128-bit integers
        "obs": np.ones((2, 3), np.float32),
        "count": np.int64(7),
        "loss": float("nan"),
        "best": float("-inf"),
        "agents": ["sizer", "stop"],
        "done": None,
    }
    tree, arrays = pack(state)
    path = tmp_path / "ckpt.armodel"
    write_model_file(path, arrays, {"state": tree}, kind="training_checkpoint")
    header, stored = read_model_file(path, kind="training_checkpoint")
    back = unpack(header["metadata"]["state"], stored)
    assert torch.equal(back["network"]["w"], state["network"]["w"])
    assert isinstance(back["optimizer"]["state"][0]["step"], torch.Tensor)
    assert back["optimizer"]["param_groups"][0]["betas"] == (0.9, 0.999)
    assert back["rng"] == state["rng"]
    assert back["obs"].dtype == np.float32
    np.testing.assert_array_equal(back["obs"], state["obs"])
    assert back["count"] == 7
    assert back["count"].dtype == np.int64
    assert np.isnan(back["loss"])
    assert back["best"] == float("-inf")
    assert back["agents"] == ["sizer", "stop"]
    assert back["done"] is None


def test_checkpoint_state_with_an_object_is_refused() -> None:
    with pytest.raises(TypeError, match="state/env: cannot store a Generator"):
        pack({"env": np.random.default_rng(0)})


# -- the NumPy readers of the trading path -----------------------------------------------------------
def test_portfolio_policy_decides_as_the_loaded_torch_manager(tmp_path: Path) -> None:
    from advanced_risk.config import EnvConfig
    from advanced_risk.rl.portfolio.manager import RLPortfolioManager
    from advanced_risk.rl.portfolio.policy import PortfolioPolicy

    manager = RLPortfolioManager(
        EnvConfig(asset_count=3), PPOConfig(device="cpu", seed=4, hidden_sizes=(8, 8))
    )
    with torch.no_grad():
        for p in manager.agent.network.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=torch.Generator().manual_seed(1)))
    path = tmp_path / "policy.armodel"
    manager.save(path)
    loaded, numpy_only = RLPortfolioManager.load(path), PortfolioPolicy.load(path)
    rng = np.random.default_rng(3)
    weights = np.full(4, 0.25)
    for _ in range(20):
        returns = rng.normal(0.0, 0.02, (40, 3))
        a = loaded.rebalance_trusted(returns, weights, 0.05, n_samples=8)
        b = numpy_only.rebalance_trusted(returns, weights, 0.05, n_samples=8)
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
        weights = a[0]
    assert numpy_only.asset_count == 3
    assert numpy_only.uncertainty_threshold is None


@pytest.mark.parametrize("share_parameters", [False, True], ids=["separate", "shared"])
def test_risk_agents_round_trip_acts_bit_for_bit(tmp_path: Path, share_parameters: bool) -> None:
    from advanced_risk.config import EnvConfig
    from advanced_risk.rl.agents.env import RiskAgentsEnv
    from advanced_risk.rl.agents.mappo import MAPPOTrainer

    env = EnvConfig(asset_count=2, max_steps=10)
    cfg = PPOConfig(num_envs=1, num_steps=8, num_minibatches=1, device="cpu", seed=2)
    trainer = MAPPOTrainer(lambda: RiskAgentsEnv(env), cfg, share_parameters=share_parameters)
    trainer.train(8)
    agents = RiskAgents.from_trainer(trainer)
    path = tmp_path / "agents.armodel"
    agents.save(path)
    loaded = RiskAgents.load(path, seed=5)
    agents.reseed(5)
    assert loaded.share_parameters is share_parameters
    obs_rng = np.random.default_rng(0)
    for _ in range(10):
        obs = {a: obs_rng.normal(0.0, 1.0, d).astype(np.float32) for a, d in agents.obs_dims.items()}
        a, b = agents.act(obs, 6), loaded.act(obs, 6)
        assert a.uncertainty == b.uncertainty
        assert a.novelty == b.novelty
        for name in a.actions:
            np.testing.assert_array_equal(a.actions[name], b.actions[name])


def test_risk_agents_file_whose_weights_do_not_fit_its_settings_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "agents.armodel"
    RiskAgents.untrained().save(path)
    header, arrays = read_model_file(path, kind="risk_agents")
    header["metadata"]["risk_agents"]["hidden_sizes"] = [32, 32]
    write_model_file(path, arrays, header["metadata"], kind="risk_agents")
    with pytest.raises(ModelLoadError, match=r"does not hold valid risk agents: sizer: weights for"):
        RiskAgents.load(path)
