"""Bad input: one clear line on stderr, exit code 2, no traceback, no model or checkpoint left."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import REPO, TINY_TOML, run_cli


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
    from advanced_risk.rl.ppo.agent import PPOAgent

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


def _negative_seed(tmp: Path) -> list[str]:
    return ["--seed", "-1"]


def _seed_beyond_range(tmp: Path) -> list[str]:
    return ["--seed", str(2**32)]


def _seed_of_wrong_type_in_toml(tmp: Path) -> list[str]:
    path = tmp / "seed.toml"
    path.write_text(TINY_TOML.replace("asset_count = 3", 'asset_count = 3\nseed = "abc"'))
    return ["--config", str(path)]


def _ohlcv_without_close(tmp: Path) -> list[str]:
    path = tmp / "no_close.csv"
    rows = ["Date,Open,High,Low,Adj Close,Volume"] + [
        f"2020-{m:02d}-{d:02d},10,11,9.5,10.5,100" for m in range(1, 13) for d in range(1, 29)
    ]
    path.write_text("\n".join(rows) + "\n")
    return ["--data-csv", str(path)]


def _truncated_csv_gz(tmp: Path) -> list[str]:
    import gzip

    path = tmp / "truncated.csv.gz"
    rows = ["Date,A,B"] + [
        f"2020-{m:02d}-{d:02d},{100 + d},{50 + m}" for m in range(1, 13) for d in range(1, 29)
    ]
    whole = gzip.compress(("\n".join(rows) + "\n").encode())
    path.write_bytes(whole[: len(whole) // 2])
    return ["--data-csv", str(path)]


def _train_end_not_a_date(tmp: Path) -> list[str]:
    return ["--data", "sp500", "--train-end", "notadate"]


def _test_start_not_a_date(tmp: Path) -> list[str]:
    return ["--train-end", "2012-12-31", "--test-start", "2013-13-45"]


def _split_out_of_order(tmp: Path) -> list[str]:
    return ["--data", "sp500", "--train-end", "2015-01-01", "--test-start", "2014-01-01"]


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
    "negative_seed": _negative_seed,
    "seed_beyond_range": _seed_beyond_range,
    "seed_of_wrong_type_in_toml": _seed_of_wrong_type_in_toml,
    "ohlcv_without_close": _ohlcv_without_close,
    "truncated_csv_gz": _truncated_csv_gz,
    "train_end_not_a_date": _train_end_not_a_date,
    "test_start_not_a_date": _test_start_not_a_date,
    "split_out_of_order": _split_out_of_order,
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
    "negative_seed": "--seed must be in [0, 4294967295], got -1",
    "seed_beyond_range": "--seed must be in [0, 4294967295], got 4294967296",
    "seed_of_wrong_type_in_toml": "seed must be an integer, got 'abc'",
    "ohlcv_without_close": "missing column(s) ['Close']",
    "truncated_csv_gz": "truncated.csv.gz cannot be read as CSV: EOFError",
    "train_end_not_a_date": "--train-end must be a date such as 2012-12-31, got 'notadate'",
    "test_start_not_a_date": "--test-start must be a date such as 2012-12-31, got '2013-13-45'",
    "split_out_of_order": "--test-start (2014-01-01) must come after --train-end (2015-01-01)",
}


# One interpreter runs every case through the CLI's ``main`` (one torch import instead of one per case,
# ~2 s each); each case gets its own stderr. The script as a process is checked by the test after.
_DRIVER = """
import contextlib, io, json, sys, traceback
from advanced_risk.training.cli import main
results = {}
for case, args in json.loads(sys.stdin.read()).items():
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(args)
        except SystemExit as exc:
            code = exc.code
        except BaseException:
            traceback.print_exc()
            code = 1
    results[case] = [code, err.getvalue()]
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def cli_results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[int, str, Path]]:
    """Each case's (exit code, stderr, --out directory), or no entry where the case skips here."""
    runs: dict[str, tuple[list[str], Path]] = {}
    for case, build in CASES.items():
        tmp = tmp_path_factory.mktemp(case)
        try:
            args = build(tmp)
        except pytest.skip.Exception:
            continue
        out = tmp / "run"
        runs[case] = (args if "--out" in args else [*args, "--out", str(out)], out)
    completed = subprocess.run(
        [sys.executable, "-c", _DRIVER],
        input=json.dumps({case: args for case, (args, _) in runs.items()}),
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert not completed.stderr, completed.stderr[-2000:]  # every case's stderr was its own
    results = json.loads(completed.stdout)
    return {case: (code, stderr, runs[case][1]) for case, (code, stderr) in results.items()}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_exits_2_with_one_clear_line_and_leaves_nothing(
    case: str, cli_results: dict[str, tuple[int, str, Path]]
) -> None:
    if case not in cli_results:
        pytest.skip("this machine cannot show the case (e.g. CUDA is available)")
    code, stderr, out = cli_results[case]
    assert code == 2, stderr[-2000:]
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    assert lines[0].startswith("error:")
    assert EXPECTED[case] in lines[0]
    assert not (out / "model.pt").exists()
    assert not list(out.glob("checkpoints/*.ckpt"))


def test_the_script_as_a_process_exits_2_with_one_line(tmp_path: Path) -> None:
    result = run_cli(*_missing_csv(tmp_path), "--out", str(tmp_path / "run"))
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert EXPECTED["missing_csv"] in lines[0]


def test_a_usage_error_is_one_line_with_exit_code_2() -> None:
    result = run_cli("--seed", "abc")
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "error: argument --seed: invalid int value: 'abc'" in lines[0]


# ------------------------------------------------------------------ the same checks, in process
@pytest.mark.parametrize(
    ("train_end", "test_start", "expected"),
    [
        (None, None, {}),
        ("2015-06-30", None, {"train_end": "2015-06-30", "test_start": "2015-07-01"}),
        (None, "2013-01-01", {"train_end": "2012-12-31", "test_start": "2013-01-01"}),
        ("Dec 31 2012", "2013/01/02", {"train_end": "2012-12-31", "test_start": "2013-01-02"}),
    ],
)
def test_split_overrides_fill_the_missing_flag_like_the_table_split(
    train_end: str | None, test_start: str | None, expected: dict[str, str]
) -> None:
    from advanced_risk.training.data import split_overrides

    assert split_overrides(train_end, test_start) == expected


@pytest.mark.parametrize(
    ("train_end", "test_start", "message"),
    [
        ("notadate", None, "--train-end must be a date"),
        ("notadate", "2013-01-01", "--train-end must be a date"),
        ("2012-12-31", "notadate", "--test-start must be a date"),
        ("now", None, "relative date"),
        ("NaT", None, "--train-end must be a date"),
        ("2012-12-31T00:00+01:00", None, "without a timezone"),
        ("2013-01-01", "2013-01-01", "must come after"),
    ],
)
def test_split_overrides_name_the_bad_flag(train_end: str, test_start: str | None, message: str) -> None:
    from advanced_risk.errors import InvalidInputError
    from advanced_risk.training.data import split_overrides

    with pytest.raises(InvalidInputError, match=message):
        split_overrides(train_end, test_start)


def test_train_end_alone_on_sp500_splits_the_day_after(tmp_path: Path) -> None:
    from advanced_risk.training.data import load_data
    from advanced_risk.training.settings import TrainingSettings

    # before: EnvConfig kept its default test_start 2013-01-01 and blamed it for a later --train-end
    bundle = load_data(TrainingSettings(data="sp500", asset_count=2, train_end="2015-06-30"))
    assert (bundle.env_config.train_end, bundle.env_config.test_start) == ("2015-06-30", "2015-07-01")
    assert bundle.description["train"].split(" .. ")[1].startswith("2015-06-30")
    assert bundle.description["test"].startswith("2015-07-01")


@pytest.mark.parametrize(
    ("columns", "expected"),
    [
        (["Date", "Open", "High", "Low", "Close", "Volume"], True),
        (["Date", "Open", "High", "Low", "Adj Close", "Volume"], True),  # no Close: still OHLCV
        (["Date", "open", "high", "low", "close"], True),
        (["Date", "Close", "Volume"], True),
        (["Date", "AAPL", "MSFT"], False),
        (["Date", "Close"], False),  # a one-asset price table
    ],
)
def test_looks_like_ohlcv(columns: list[str], expected: bool) -> None:
    from advanced_risk.training.data import looks_like_ohlcv

    assert looks_like_ohlcv(columns) is expected


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"seed": -1}, r"--seed must be in \[0, 4294967295\], got -1"),
        ({"seed": 2**32}, "got 4294967296"),
        ({"seed": True}, "seed must be an integer, got True"),
        ({"seed": 1.5}, "seed must be an integer, got 1.5"),
        ({"num_envs": "8"}, "num_envs must be an integer, got '8'"),
        ({"amp": 1}, "amp must be true or false, got 1"),
        ({"out": 3}, "out must be a string, got 3"),
        ({"asset_count": None}, "asset_count must not be empty"),
        ({"ppo": []}, "ppo must be a table"),
        ({"train_end": "notadate"}, "--train-end must be a date"),
    ],
)
def test_check_values_refuses_what_training_would_trip_over(values: dict[str, object], message: str) -> None:
    from advanced_risk.errors import AdvancedRiskError
    from advanced_risk.training.cli import check_values

    with pytest.raises(AdvancedRiskError, match=message):
        check_values(dict(values))


def test_check_values_accepts_the_seed_range_ends_and_toml_dates() -> None:
    import datetime

    from advanced_risk.training.cli import MAX_SEED, check_values

    check_values({"seed": 0})
    check_values({"seed": MAX_SEED})
    values: dict[str, object] = {"train_end": datetime.date(2012, 12, 31), "test_start": None}
    check_values(values)
    assert values["train_end"] == "2012-12-31"


@pytest.mark.parametrize("episodes", [0, 1])
def test_fewer_than_two_eval_episodes_are_refused_not_silently_raised(episodes: int) -> None:
    from advanced_risk.errors import InvalidInputError
    from advanced_risk.training.settings import TrainingSettings

    with pytest.raises(InvalidInputError, match=f"eval_episodes must be >= 2 .* got {episodes}"):
        TrainingSettings(eval_episodes=episodes)


def test_an_intraday_split_flag_given_alone_drops_no_bar_of_its_day() -> None:
    import dataclasses

    import pandas as pd

    from advanced_risk.config import EnvConfig
    from advanced_risk.training.data import _split, split_overrides

    dates = split_overrides("2015-01-01 05:00", None)
    assert dates == {"train_end": "2015-01-01T05:00:00", "test_start": "2015-01-01T05:00:00.000001"}
    assert split_overrides(None, "2015-01-01 05:00")["train_end"] == "2015-01-01T04:59:59.999999"
    assert split_overrides("2012-12-31", None) == {"train_end": "2012-12-31", "test_start": "2013-01-01"}
    dataclasses.replace(EnvConfig(), **dates)  # the environment accepts the pair
    index = pd.date_range("2015-01-01 04:58", periods=5, freq="min")
    returns = pd.DataFrame({"A": range(5)}, index=index, dtype=float)
    train, test = _split(returns, "2015-01-01 05:00", None)
    assert (len(train), len(test)) == (3, 2)
