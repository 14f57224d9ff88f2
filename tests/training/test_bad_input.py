"""Bad input: one clear line on stderr, exit code 2, no traceback, no model or checkpoint left."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import TINY_TOML, run_cli


def _missing_csv(tmp: Path) -> list[str]:
    return ["--data-csv", str(tmp / "nope.csv")]


def _corrupt_csv(tmp: Path) -> list[str]:
    path = tmp / "corrupt.csv.gz"
    path.write_bytes(b"\x1f\x8b\x08\x00garbage that is not gzip" * 10)
    return ["--data-csv", str(path)]


def _invalid_prices(tmp: Path) -> list[str]:
    path = tmp / "prices.csv"
    rows = ["Date,A,B"] + [f"2020-01-{d:02d},{100 + d},{-5 if d == 9 else 50 + d}" for d in range(1, 29)]
    path.write_text("\n".join(rows) + "\n")
    return ["--data-csv", str(path)]


def _cash_column(tmp: Path) -> list[str]:
    path = tmp / "with_cash.csv"
    rows = ["Date,A,cash"] + [f"2020-01-{d:02d},{100 + d},{50 + d}" for d in range(1, 29)]
    path.write_text("\n".join(rows) + "\n")
    return ["--data-csv", str(path), "--asset-count", "2"]


def _invalid_ohlcv(tmp: Path) -> list[str]:
    path = tmp / "ohlcv.csv"
    rows = ["Date,Open,High,Low,Close,Volume"] + [
        f"2020-01-{d:02d},10,{9 if d == 5 else 11},9.5,10.5,100" for d in range(1, 29)
    ]
    path.write_text("\n".join(rows) + "\n")
    return ["--data-csv", str(path)]


def _corrupt_model(tmp: Path) -> list[str]:
    path = tmp / "model.pt"
    path.write_bytes(b"ARMODEL\n" + b"0" * 200)
    return ["--evaluate", "--model-path", str(path)]


def _not_a_model(tmp: Path) -> list[str]:
    path = tmp / "model.pt"
    path.write_text("hello")
    return ["--evaluate", "--model-path", str(path)]


def _mismatched_model(tmp: Path) -> list[str]:
    from advanced_risk.config import PPOConfig
    from advanced_risk.rl.ppo import PPOAgent

    path = tmp / "other.pt"
    PPOAgent(10, 4, PPOConfig(device="cpu", hidden_sizes=(8,))).save(path)
    return ["--evaluate", "--model-path", str(path), "--asset-count", "3"]


def _unwritable_out(tmp: Path) -> list[str]:
    blocker = tmp / "a_file"
    blocker.write_text("x")
    return ["--out", str(blocker / "run")]


def _unknown_toml_key(tmp: Path) -> list[str]:
    path = tmp / "bad.toml"
    path.write_text("learning_rate = 0.1\n")
    return ["--config", str(path)]


def _unknown_ppo_field(tmp: Path) -> list[str]:
    path = tmp / "bad_ppo.toml"
    path.write_text(TINY_TOML + "lerning_rate = 0.1\n")
    return ["--config", str(path)]


def _cuda_without_gpu(tmp: Path) -> list[str]:
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    return ["--device", "cuda", "--total-steps", "64"]


def _resume_without_run(tmp: Path) -> list[str]:
    return ["--resume"]


CASES: dict[str, Callable[[Path], list[str]]] = {
    "missing_csv": _missing_csv,
    "corrupt_csv": _corrupt_csv,
    "invalid_prices": _invalid_prices,
    "cash_column": _cash_column,
    "invalid_ohlcv": _invalid_ohlcv,
    "corrupt_model": _corrupt_model,
    "not_a_model": _not_a_model,
    "mismatched_model": _mismatched_model,
    "unwritable_out": _unwritable_out,
    "unknown_toml_key": _unknown_toml_key,
    "unknown_ppo_field": _unknown_ppo_field,
    "cuda_without_gpu": _cuda_without_gpu,
    "resume_without_run": _resume_without_run,
}

EXPECTED = {
    "missing_csv": "not found",
    "corrupt_csv": "corrupt.csv.gz",
    "invalid_prices": "non-positive price",
    "cash_column": "may not contain 'cash'",
    "invalid_ohlcv": "High below",
    "corrupt_model": "model",
    "not_a_model": "not an advanced_risk model file",
    "mismatched_model": "obs_dim",
    "unwritable_out": "not a writable directory",
    "unknown_toml_key": "unknown key",
    "unknown_ppo_field": "lerning_rate",
    "cuda_without_gpu": "CUDA is not available",
    "resume_without_run": "config.toml not found",
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_exits_2_with_one_clear_line_and_leaves_nothing(case: str, tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = CASES[case](tmp_path)
    if "--out" not in args:
        args += ["--out", str(out)]
    result = run_cli(*args)
    assert result.returncode == 2, result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert lines[0].startswith("error:")
    assert EXPECTED[case] in lines[0]
    assert not (out / "model.pt").exists()
    assert not list(out.glob("checkpoints/*.ckpt"))
