"""Adversarial round 2: paths and data shapes a user's world hands the training CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from advanced_risk.training.cli import main
from advanced_risk.training.data import load_data
from advanced_risk.training.settings import TrainingSettings

from .conftest import TINY_TOML


@pytest.mark.parametrize("agents", ["allocator", "risk"])
def test_a_model_path_that_is_a_directory_is_refused_before_training(
    tmp_path: Path, agents: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Found: training ran to the end, then the atomic write failed with
    # "error: <dir>/.<name>.xxxx.tmp: Is a directory" and config.toml was already written.
    config = tmp_path / "tiny.toml"
    config.write_text(TINY_TOML)
    model_dir = tmp_path / "models"
    model_dir.mkdir()
    out = tmp_path / "run"
    code = main(
        ["--config", str(config), "--agents", agents, "--total-steps", "64", "--out", str(out),
         "--model-path", str(model_dir)]
    )  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert "\n" not in err
    assert err.startswith("error: --model-path")
    assert "is a directory" in err
    assert not (out / "config.toml").exists()
    assert not (out / "checkpoints").exists()
    assert list(model_dir.iterdir()) == []


def test_an_empty_out_is_refused_instead_of_writing_into_the_current_directory(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Found: --out "" ran and wrote config.toml, model.pt and the report into the cwd.
    assert main(["--out", "", "--total-steps", "64"]) == 2
    assert capsys.readouterr().err.strip() == "error: out must name a run directory, got an empty path"


def test_minute_bars_keep_their_time_of_day_in_the_split_description(tmp_path: Path) -> None:
    # Found: both splits of a day of minute bars read "2015-01-01 .. 2015-01-01" in the report.
    index = pd.date_range("2015-01-01 09:30", periods=200, freq="min", name="Date")
    prices = 100 * np.exp(np.cumsum(np.random.default_rng(0).normal(0, 1e-3, (200, 2)), axis=0))
    path = tmp_path / "minute.csv"
    pd.DataFrame(prices, index=index, columns=["A", "B"]).to_csv(path)
    data = load_data(TrainingSettings(data_csv=str(path), asset_count=2, max_steps=20))
    assert data.description["train"] == "2015-01-01T09:31:00 .. 2015-01-01T11:49:00 (139 returns)"
    assert data.description["test"] == "2015-01-01T11:50:00 .. 2015-01-01T12:49:00 (60 returns)"


def test_daily_bars_still_describe_their_split_by_date(tmp_path: Path) -> None:
    index = pd.bdate_range("2015-01-01", periods=120, name="Date")
    prices = 100 * np.exp(np.cumsum(np.random.default_rng(1).normal(0, 1e-2, (120, 1)), axis=0))
    path = tmp_path / "daily.csv"
    pd.DataFrame(prices, index=index, columns=["A"]).to_csv(path)
    data = load_data(TrainingSettings(data_csv=str(path), asset_count=1, max_steps=20))
    assert data.description["train"].startswith("2015-01-02 .. ")
    assert "T" not in data.description["train"] + data.description["test"]


def _jumping_book(
    tmp_path: Path, *, column: int, before: float, after: float, seed: int
) -> tuple[pd.DatetimeIndex, Path, Path]:
    """A 2-asset CSV of 200 daily closes whose ``column`` is ``before`` then, from row 120, ``after``;
    its dates, its path and a run folder."""
    index = pd.bdate_range("2015-01-01", periods=200, name="Date")
    prices = 100 * np.exp(np.cumsum(np.random.default_rng(seed).normal(0, 1e-2, (200, 2)), axis=0))
    prices[:120, column], prices[120:, column] = before, after
    path = tmp_path / "prices.csv"
    pd.DataFrame(prices, index=index, columns=["A", "B"]).to_csv(path)
    return index, path, tmp_path / "run"


@pytest.mark.parametrize(
    ("before", "after", "shown"),
    [(1e300, 1e-300, "-1.0"), (1e-300, 1e300, "inf")],
    ids=["rounds-to-total-loss", "overflows"],
)
def test_a_price_move_the_environment_cannot_hold_is_refused_naming_column_and_date(
    tmp_path: Path, before: float, after: float, shown: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Found: valid (positive, finite) prices whose ratio is exactly -1 or inf: a ZeroDivisionError
    # traceback from the feature kernel (exit 1), or "actions must not contain NaN" after training.
    index, path, out = _jumping_book(tmp_path, column=1, before=before, after=after, seed=2)
    code = main(["--data-csv", str(path), "--asset-count", "2", "--total-steps", "64", "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err == (
        f"error: {path}: the price move into {index[120].date()} in column 'B' is a return of {shown}; "
        "a price must change by a finite factor and never round to zero"
    )
    assert not (out / "config.toml").exists()


def test_a_finite_move_that_overflows_the_float32_observation_is_refused_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Found: a 1e60-fold move is a finite return, but the float32 momentum/volatility features
    # overflowed: "error: actions must not contain NaN" only after the whole training run.
    index, path, out = _jumping_book(tmp_path, column=0, before=1e-30, after=1e30, seed=3)
    code = main(["--data-csv", str(path), "--asset-count", "2", "--total-steps", "64", "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith(f"error: {path}: column 'A' moves too far for the policy's observation")
    assert f"a return of 1e+60 into {index[120].date()}" in err
    assert not (out / "config.toml").exists()


def test_resume_names_the_flags_it_ignores(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Found: --resume --total-steps N silently continued the stored run to its stored length.
    from advanced_risk.training.cli import resolve_settings
    from advanced_risk.training.settings import settings_to_toml

    out = tmp_path / "run"
    out.mkdir()
    (out / "config.toml").write_text(settings_to_toml(TrainingSettings(out=str(out), total_steps=2048)))
    flags = ["--total-steps", "5000", "--seed", "0", "--plot", "--torch-threads", "2"]
    settings = resolve_settings(["--resume", "--out", str(out), *flags])
    assert (settings.total_steps, settings.plot, settings.torch_threads) == (2048, True, 2)
    err = capsys.readouterr().err.strip()
    assert err == (
        f"warning: --resume continues the run as stored in {out / 'config.toml'}; ignored: --total-steps 5000"
    )
    resolve_settings(["--resume", "--out", str(out), "--seed", "0"])  # the stored value: nothing to say
    assert capsys.readouterr().err == ""


def test_an_env_table_asset_count_or_max_steps_that_the_top_level_overrides_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Found: [env] asset_count = 7 / max_steps = 15 trained 5 assets and 252-day episodes without a
    # word (the top-level defaults won), and config.toml recorded both values.
    config = tmp_path / "c.toml"
    config.write_text("total_steps = 64\n[env]\nasset_count = 7\n")
    out = tmp_path / "run"
    assert main(["--config", str(config), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: [env] asset_count = 7 disagrees with asset_count = 5, which wins")
    assert not out.exists()
    same = TrainingSettings(asset_count=7, env={"asset_count": 7, "max_steps": 252})  # agreeing: fine
    assert same.env["asset_count"] == same.asset_count


def test_evaluating_a_model_on_a_table_with_fewer_columns_names_both_asset_counts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Found: "model file M has obs_dim=7202, expected 74" for a 300-asset model on a 3-column CSV.
    index = pd.bdate_range("2015-01-01", periods=200, name="Date")
    prices = 100 * np.exp(np.cumsum(np.random.default_rng(4).normal(0, 1e-2, (200, 3)), axis=0))
    wide, narrow = tmp_path / "wide.csv", tmp_path / "narrow.csv"
    pd.DataFrame(prices, index=index, columns=["A", "B", "C"]).to_csv(wide)
    pd.DataFrame(prices[:, :2], index=index, columns=["A", "B"]).to_csv(narrow)
    config = tmp_path / "tiny.toml"
    config.write_text(
        TINY_TOML.replace('data = "synthetic"\n', "").replace("max_steps = 30", "max_steps = 20")
    )
    model = tmp_path / "m.pt"
    trained = [
        "--config",
        str(config),
        "--data-csv",
        str(wide),
        "--total-steps",
        "64",
        "--checkpoint-every",
        "0",
    ]
    assert main([*trained, "--out", str(tmp_path / "train"), "--model-path", str(model)]) == 0
    capsys.readouterr()
    code = main(
        ["--evaluate", "--model-path", str(model), "--data-csv", str(narrow), "--out", str(tmp_path / "e")]
    )
    assert code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]  # after the data's asset_count_reduced warning
    assert last == f"error: model {model} was trained on 3 assets, the data has 2"
