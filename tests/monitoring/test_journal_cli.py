"""The journal tools on a real manager's journal: the flat frame, the filters, the CLI, its exports."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tests.conftest import require

from advanced_risk.__main__ import main
from advanced_risk.monitoring.journal import COLUMNS, read_journal

from .conftest import BARS


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str], str]:
    """Run ``python -m advanced_risk`` in-process: exit code, stdout lines, stderr."""
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's errors exit
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


@pytest.fixture(scope="module")
def frame(manager_journal: Path) -> pd.DataFrame:
    return read_journal(manager_journal)


def test_the_frame_has_one_flat_row_per_decision_in_journal_order_with_utc_times(frame: pd.DataFrame) -> None:
    assert list(frame.columns) == list(COLUMNS)
    assert len(frame) == BARS
    assert frame["id"].tolist() == list(range(1, BARS + 1))
    assert str(frame["ts"].dt.tz) == "UTC"
    assert frame["ts"].is_monotonic_increasing
    assert set(frame["trading_state"]) == {"active", "reducing", "halted"}
    assert frame["equity"].notna().all()
    assert frame["var"].isna().any()  # before the tracker's 60-bar window: null in the row, NaN here
    assert frame["var"].notna().sum() > 200
    assert frame["degraded"].sum() == 3  # the three policy failures
    row = frame.iloc[-1]
    assert row["leverage"] == row["payload"]["leverage"]
    assert row["hedge_ratio"] == row["payload"]["hedge"]["ratio"]
    assert row["drawdown"] == row["payload"]["drawdown"]


def test_journal_prints_the_last_20_rows_one_a_line(
    manager_journal: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines, err = _cli(["journal", str(manager_journal)], capsys)
    assert (code, err) == (0, "")
    assert len(lines) == 20
    assert [line.split()[1] for line in lines] == [f"#{i}" for i in range(BARS - 19, BARS + 1)]


def test_last_n_prints_the_newest_n_rows(manager_journal: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, lines, _ = _cli(["journal", str(manager_journal), "--last", "3"], capsys)
    assert code == 0
    assert [line.split()[1] for line in lines] == ["#298", "#299", "#300"]


@pytest.mark.parametrize("state", ["active", "reducing", "halted"])
def test_state_keeps_only_rows_in_that_state(
    manager_journal: Path, frame: pd.DataFrame, state: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines, _ = _cli(["journal", str(manager_journal), "--state", state, "--last", "1000"], capsys)
    assert code == 0
    assert len(lines) == int((frame["trading_state"] == state).sum())
    assert all(line.split()[3] == state for line in lines)


def test_degraded_keeps_only_degraded_rows(manager_journal: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, lines, _ = _cli(["journal", str(manager_journal), "--degraded"], capsys)
    assert code == 0
    assert len(lines) == 3
    assert all("DEGRADED" in line and "policy failed" in line for line in lines)


@pytest.mark.parametrize("form", ["iso", "unix"])
def test_since_and_until_keep_the_rows_between_them(
    manager_journal: Path, frame: pd.DataFrame, form: str, capsys: pytest.CaptureFixture[str]
) -> None:
    ts = frame["ts"]
    lo, hi = ts.iloc[99] + (ts.iloc[100] - ts.iloc[99]) / 2, ts.iloc[109] + (ts.iloc[110] - ts.iloc[109]) / 2
    bounds = [t.isoformat() if form == "iso" else repr(t.timestamp()) for t in (lo, hi)]
    argv = ["journal", str(manager_journal), "--since", bounds[0], "--until", bounds[1]]
    code, lines, _ = _cli(argv, capsys)
    assert code == 0
    assert [line.split()[1] for line in lines] == [f"#{i}" for i in range(101, 111)]


def test_json_lines_are_the_row_payloads_with_id_and_ts(
    manager_journal: Path, frame: pd.DataFrame, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines, _ = _cli(["journal", str(manager_journal), "--json", "--last", "5"], capsys)
    assert code == 0
    rows = [json.loads(line) for line in lines]
    for row, (_, expected) in zip(rows, frame.tail(5).iterrows(), strict=True):
        assert row.pop("id") == expected["id"]
        assert pd.Timestamp(row.pop("ts")) == expected["ts"]
        assert row == expected["payload"]


def test_csv_export_reads_back_with_pandas(
    manager_journal: Path, frame: pd.DataFrame, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "j.csv"
    code, lines, _ = _cli(["journal", str(manager_journal), "--csv", str(target)], capsys)
    assert code == 0
    assert lines == [f"wrote {BARS} rows to {target}"]  # an export writes every row that passes
    back = pd.read_csv(target)
    assert list(back.columns) == list(COLUMNS)
    assert back["id"].tolist() == frame["id"].tolist()
    assert (pd.to_datetime(back["ts"], utc=True) == frame["ts"]).all()
    for name in ("leverage", "var", "cvar", "equity", "drawdown", "latency_ms"):
        np.testing.assert_allclose(back[name], frame[name], rtol=1e-15, err_msg=name)
    assert back["trading_state"].tolist() == frame["trading_state"].tolist()
    assert back["degraded"].tolist() == frame["degraded"].tolist()
    assert [json.loads(a) for a in back["alerts"]] == frame["alerts"].tolist()
    assert [json.loads(p) for p in back["payload"]] == frame["payload"].tolist()


def test_parquet_export_reads_back_with_pandas(
    manager_journal: Path, frame: pd.DataFrame, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    require("pyarrow")
    target = tmp_path / "j.parquet"
    code, _, _ = _cli(
        ["journal", str(manager_journal), "--state", "halted", "--parquet", str(target)], capsys
    )
    assert code == 0
    back = pd.read_parquet(target)
    halted = frame[frame["trading_state"] == "halted"].reset_index(drop=True)
    pd.testing.assert_frame_equal(
        back.drop(columns=["alerts", "payload"]), halted.drop(columns=["alerts", "payload"])
    )
    assert [json.loads(p) for p in back["payload"]] == halted["payload"].tolist()


def test_parquet_without_pyarrow_names_the_extra_and_exits_2(
    manager_journal: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "pyarrow" else real(name, *a)
    )
    code, lines, err = _cli(["journal", str(manager_journal), "--parquet", str(tmp_path / "j.pq")], capsys)
    assert (code, lines) == (2, [])
    assert "advanced_risk[report]" in err
    assert not (tmp_path / "j.pq").exists()


def _corrupt(tmp_path: Path) -> str:
    path = tmp_path / "corrupt.db"
    path.write_bytes(b"not a database, " * 256)
    return str(path)


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        pytest.param(lambda p, t: ["journal", str(t / "missing.db")], "missing.db", id="missing-file"),
        pytest.param(lambda p, t: ["journal", _corrupt(t)], "not a database", id="corrupt-file"),
        pytest.param(lambda p, t: ["journal", p, "--since", "soon"], "since", id="bad-since"),
        pytest.param(lambda p, t: ["journal", p, "--until", "2024-13-45"], "until", id="bad-until"),
        pytest.param(lambda p, t: ["journal", p, "--state", "paused"], "--state", id="bad-state"),
        pytest.param(lambda p, t: ["journal", p, "--last", "-1"], "--last", id="negative-last"),
        pytest.param(lambda p, t: ["journal", p, "--last", "x"], "--last", id="non-integer-last"),
        pytest.param(
            lambda p, t: ["journal", p, "--csv", str(t / "no" / "j.csv")], "non-existent", id="bad-csv"
        ),
        pytest.param(lambda p, t: ["report", "--out", str(t)], "--journal", id="report-out-alone"),
        pytest.param(
            lambda p, t: ["report", "--journal", _corrupt(t)], "not a database", id="report-corrupt"
        ),
        pytest.param(
            lambda p, t: ["report", "--journal", p, "--alpha", "1.5"], "alpha", id="report-bad-alpha"
        ),
    ],
)
def test_a_bad_file_or_option_exits_2_with_a_one_line_error(
    manager_journal: Path, tmp_path: Path, argv: object, says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines, err = _cli(argv(str(manager_journal), tmp_path), capsys)  # type: ignore[operator]
    assert (code, lines) == (2, [])
    assert len(err.strip().splitlines()) == 1, err
    assert "error" in err
    assert says in err


def test_the_module_entry_point_runs_the_journal_command(manager_journal: Path) -> None:
    argv = [sys.executable, "-m", "advanced_risk", "journal", str(manager_journal), "--last", "2"]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert [line.split()[1] for line in done.stdout.splitlines()] == ["#299", "#300"]
