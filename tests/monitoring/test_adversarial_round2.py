"""Adversarial tests of the journal tools, round 2: odd times, readers that stop early, null numbers.

Found by breaking ``python -m advanced_risk journal`` as a user would: ``--events`` piped into
``head`` ended with ``error: [Errno 32] Broken pipe`` and exit status 2 (the decision lines already
handled it); ``--until`` before ``--since`` printed nothing with exit status 0, as if the journal were
empty; ``--since now`` (pandas' word for the local wall-clock time, then taken as UTC) was off by the
machine's UTC offset; a null leverage or latency printed ``lev nan`` / ``nan ms`` where the
documented form of a null number is ``-``.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd
import pytest
from tests.async_.conftest import BarFeed

from advanced_risk import AdvancedRiskManager, RiskConfig
from advanced_risk.__main__ import main
from advanced_risk.engine.state import JournalEntry
from advanced_risk.errors import InvalidInputError
from advanced_risk.monitoring.drift import MAX_EDGES, DriftMonitor, FeatureReference, reference_from_samples
from advanced_risk.monitoring.journal import (
    filter_journal,
    format_event,
    format_row,
    journal_frame,
    parse_time,
    read_journal,
)

ROOT = Path(__file__).resolve().parents[2]


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str], str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


@pytest.fixture(scope="module")
def control_journal(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 decisions, a kill switch, 2 decisions, a resume, 2 decisions (8 decisions, 2 events)."""
    path = tmp_path_factory.mktemp("controls") / "s.db"

    async def run() -> None:
        feed = BarFeed()
        async with AdvancedRiskManager(RiskConfig(state_path=str(path), deadline_ms=2_000.0)) as risk:
            for market, portfolio in feed.bars(4):
                await risk.manage_risk(market, portfolio)
            await risk.engage_kill_switch("fat finger")
            for market, portfolio in feed.bars(2):
                await risk.manage_risk(market, portfolio)
            await risk.resume("checked")
            for market, portfolio in feed.bars(2):
                await risk.manage_risk(market, portfolio)

    asyncio.run(run())
    return path


def test_events_piped_into_a_reader_that_stops_early_is_not_an_error(control_journal: Path) -> None:
    """Bug (fixed in __main__._journal_events): ``journal --events | head -1`` printed
    ``error: [Errno 32] Broken pipe`` and exited 2; the decision lines already exited 0 quietly."""
    for extra in (["--events"], ["--events", "--json"], []):
        proc = subprocess.Popen(
            [sys.executable, "-m", "advanced_risk", "journal", str(control_journal), *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
        )
        assert proc.stdout is not None
        assert proc.stderr is not None
        proc.stdout.close()  # the reader is gone before the first line: every write is EPIPE
        err = proc.stderr.read().decode()
        assert proc.wait(timeout=120) == 0, err
        assert "Broken pipe" not in err, err
        assert "Traceback" not in err, err


@pytest.mark.parametrize("events", [False, True])
def test_until_before_since_exits_2_naming_both(
    control_journal: Path, events: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    """Bug (fixed in filter_journal and --events): swapped bounds printed nothing, exit 0."""
    argv = ["journal", str(control_journal), "--since", "2099-01-01", "--until", "2000-01-01"]
    code, lines, err = _cli([*argv, "--events"] if events else argv, capsys)
    assert (code, lines) == (2, [])
    assert len(err.strip().splitlines()) == 1
    assert "until '2000-01-01'" in err
    assert "before since '2099-01-01'" in err
    with pytest.raises(InvalidInputError, match="before since"):
        filter_journal(read_journal(control_journal), since="2099-01-01", until="2000-01-01")


def test_equal_since_and_until_is_a_valid_one_instant_range(
    control_journal: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frame = read_journal(control_journal)
    stamp = frame["ts"].iloc[3].isoformat()
    assert len(filter_journal(frame, since=stamp, until=stamp)) >= 1
    code, lines, _ = _cli(["journal", str(control_journal), "--since", stamp, "--until", stamp], capsys)
    assert code == 0
    assert len(lines) >= 1
    code, lines, _ = _cli(["journal", str(control_journal), "--since", "2099-01-01"], capsys)
    assert (code, lines) == (0, [])  # a future start is a valid range with nothing in it yet


def test_now_and_today_are_utc_whatever_the_machine_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bug (fixed in parse_time): pandas reads ``now`` as the local wall-clock time without a zone;
    taken as UTC it was off by the machine's offset (``--since now`` in Tokyo: 9 h in the future)."""
    if not hasattr(time, "tzset"):
        pytest.skip("time.tzset is POSIX only")
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    try:
        before = pd.Timestamp.now(tz="UTC")
        now = parse_time("now", "since")
        after = pd.Timestamp.now(tz="UTC")
        assert before <= now <= after
        today = parse_time("today", "since")
        assert today == after.normalize() or today == before.normalize()
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_until_now_keeps_every_row_already_written(
    control_journal: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines, _ = _cli(["journal", str(control_journal), "--until", "now"], capsys)
    assert code == 0
    assert len(lines) == 8


def test_null_leverage_hedge_ratio_and_latency_print_as_a_dash() -> None:
    """Bug (fixed in format_row): a null leverage or latency printed ``lev nan`` and ``nan ms``; the
    documented form of a null number is ``-`` (as VaR and CVaR already were)."""
    payload: dict[str, Any] = {
        "trading_state": "active",
        "risk_level": "low",
        "leverage": None,
        "hedge": {"active": True, "ratio": None},
        "var": None,
    }
    line = format_row(journal_frame([JournalEntry(1, "d-1", 0.0, payload)]).iloc[0])
    assert "nan" not in line
    assert "lev - hedge - var - cvar - - ms" in line


@pytest.mark.parametrize("bars", ["0", "-5", "199"])
def test_the_backtrader_example_refuses_fewer_bars_than_its_sma_in_one_line(
    load_example: Callable[[str], ModuleType], bars: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Bug (fixed in examples/backtrader_one_instrument.py): ``--bars 199`` (or 0, 1, 30) ended in an
    IndexError traceback inside backtrader's SMA; ``--bars -5`` silently ran all but the last 5."""
    pytest.importorskip("backtrader")
    example = load_example("backtrader_one_instrument")
    with pytest.raises(SystemExit) as exit_info:
        example.main(["--bars", bars])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].endswith(f"--bars must be >= 200 (the SMA period), got {bars}")
    with pytest.raises(ValueError, match="SMA period"):
        example.run_backtest(int(bars))


@pytest.mark.parametrize("start", ["2030-01-01", "1990-06-01", "garbage", "2022-12-28"])
def test_the_trading_loop_refuses_a_start_without_its_history_or_bars_in_one_line(
    load_example: Callable[[str], ModuleType],
    start: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Bug (fixed in examples/trading_loop.py): ``--start 2030-01-01`` (or the last days of the data)
    ended in an IndexError traceback, ``--start garbage`` in numpy's ValueError, and a start within
    the first 300 bars sliced from the end of the data (a negative index) instead of refusing."""
    example = load_example("trading_loop")
    monkeypatch.setattr(sys, "argv", ["trading_loop.py", "--start", start, "--risk-agents", "none"])
    with pytest.raises(SystemExit) as exit_info:
        example.main()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert f"--start {start}" in err[-1] or f"--start {start!r}" in err[-1]
    prices = example.load_sp500_stocks()
    with pytest.raises(ValueError, match="--start"):
        example.first_bar(prices, start)
    first = example.first_bar(prices, "2013-01-01")  # the default start
    assert prices.index[first] >= pd.Timestamp("2013-01-01") > prices.index[first - 1]


@pytest.mark.parametrize("bars", ["0", "-3"])
def test_the_embedding_example_refuses_no_bars_in_one_line(
    load_example: Callable[[str], ModuleType], bars: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Bug (fixed in examples/embedding.py): ``--bars 0`` ended in a ZeroDivisionError traceback,
    ``--bars -3`` printed a table of ``-0 us``."""
    example = load_example("embedding")
    with pytest.raises(SystemExit) as exit_info:
        example.main(["--bars", bars])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].endswith(f"--bars must be >= 1, got {bars}")


def test_the_plain_report_piped_into_a_reader_that_stops_early_is_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Bug (fixed in reports.risk_report): ``python -m advanced_risk report | head -2`` ended in a
    BrokenPipeError traceback (the journal command already handled it)."""
    from advanced_risk import reports

    def many_lines() -> None:
        for i in range(10_000):
            print(f"line {i} " + "x" * 60)

    monkeypatch.setattr(reports, "var_backtest_section", many_lines)
    monkeypatch.setattr(reports, "snapshot_section", many_lines)
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone: every write is EPIPE
    with os.fdopen(write_end, "w") as pipe:
        monkeypatch.setattr(sys, "stdout", pipe)
        reports.risk_report()  # no BrokenPipeError
        monkeypatch.undo()


def test_a_reference_with_more_bins_than_the_int16_ring_holds_is_refused() -> None:
    """Bug (fixed in monitoring/drift.py): ``reference_from_samples(..., bins=40_000)`` built a
    reference the monitor stored as int16 bin indices: they wrapped, and its counts went negative."""
    samples = np.random.default_rng(0).normal(size=(80_000, 1))
    with pytest.raises(InvalidInputError, match=f"at most {MAX_EDGES}"):
        reference_from_samples(samples, ["f"], bins=40_000)
    edges = np.arange(MAX_EDGES, dtype=np.float64)  # the most edges allowed: every bin index fits
    reference = FeatureReference(("f",), (edges,), (np.full(MAX_EDGES + 1, 1.0 / (MAX_EDGES + 1)),), 1)
    monitor = DriftMonitor(reference, window=4, threshold=0.5, min_bars=2)
    for value in (-1.0, float(MAX_EDGES), math.nan, 5.5, 1e9):  # lowest, highest, missing bins
        monitor.update(np.array([value]))
    assert int(monitor._counts.min()) >= 0
    assert int(monitor._counts.sum()) == 4


@pytest.mark.parametrize("ts", ["abc", 1e20, -1e20])
@pytest.mark.parametrize("event", [False, True])
def test_a_row_whose_time_is_not_unix_seconds_exits_2_with_one_line(
    control_journal: Path, tmp_path: Path, ts: object, event: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    """Bug (fixed in monitoring/journal.py): a row time of text (``ValueError: could not convert
    string to float``) or beyond 2262 (``OutOfBoundsDatetime``) ended the journal and report commands
    in a traceback instead of the documented one line and exit status 2 for a corrupt file."""
    path = tmp_path / "bad_ts.db"
    path.write_bytes(control_journal.read_bytes())
    with sqlite3.connect(path) as conn:
        where = "payload LIKE '%\"event\"%'" if event else "payload NOT LIKE '%\"event\"%'"
        conn.execute(
            f"UPDATE journal SET ts = ? WHERE id = (SELECT MIN(id) FROM journal WHERE {where})", (ts,)
        )
    argvs = [
        ["journal", str(path), "--events" if event else "--since=0"],
        ["report", "--journal", str(path), "--out", str(tmp_path)],
    ]
    for argv in argvs:
        code, lines, err = _cli(argv, capsys)
        assert (code, lines) == (2, [])
        assert len(err.strip().splitlines()) == 1
        assert "has a time that is not Unix seconds" in err


def test_a_nan_or_infinity_in_a_row_exports_as_null(
    control_journal: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Bug (fixed in monitoring/journal.py): a row holding ``NaN`` / ``Infinity`` (JSON that Python's
    reader accepts, written by another writer) ended ``--json`` and ``--csv`` in ``ValueError: Out of
    range float values are not JSON compliant``; this library journals such values as null."""
    path = tmp_path / "nan.db"
    path.write_bytes(control_journal.read_bytes())
    with sqlite3.connect(path) as conn:
        (rid, text) = conn.execute(
            "SELECT id, payload FROM journal WHERE payload NOT LIKE '%\"event\"%' ORDER BY id DESC LIMIT 1"
        ).fetchone()
        payload = json.loads(text)
        payload.update(var=math.nan, cvar=math.inf, alerts=["x", -math.inf])
        conn.execute("UPDATE journal SET payload = ? WHERE id = ?", (json.dumps(payload), rid))
    code, lines, _ = _cli(["journal", str(path), "--last", "1", "--json"], capsys)
    assert code == 0
    row = json.loads(lines[0])
    assert (row["var"], row["cvar"]) == (None, None)
    csv = tmp_path / "nan.csv"
    code, lines, _ = _cli(["journal", str(path), "--last", "1", "--csv", str(csv)], capsys)
    assert (code, lines) == (0, [f"wrote 1 rows to {csv}"])
    exported = pd.read_csv(csv)
    assert json.loads(exported["payload"][0])["var"] is None
    assert json.loads(exported["alerts"][0]) == ["x", "-inf"]  # alerts are text in the frame


@pytest.mark.parametrize("flag", ["--csv", "--parquet"])
@pytest.mark.parametrize("name", ["s.db", "s.db-wal", "s.db-shm", "link.db"])
def test_an_export_onto_the_journal_itself_is_refused_and_the_journal_survives(
    control_journal: Path, tmp_path: Path, flag: str, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Bug (fixed in __main__._journal): ``journal s.db --csv s.db`` wrote the CSV over the bot's
    state file (exit 0, journal and state gone); ``--csv s.db-wal`` over its write-ahead log."""
    path = tmp_path / "s.db"
    path.write_bytes(control_journal.read_bytes())
    os.link(path, tmp_path / "link.db")  # another name of the same file
    before = path.read_bytes()
    code, lines, err = _cli(["journal", str(path), flag, str(tmp_path / name)], capsys)
    assert (code, lines) == (2, [])
    assert len(err.strip().splitlines()) == 1
    assert "would overwrite the journal" in err
    assert path.read_bytes() == before
    assert len(read_journal(path)) == 8


def test_a_report_onto_the_journal_itself_is_refused(
    control_journal: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Bug (fixed in write_journal_report): a state file named ``risk_report.html`` reported into its
    own folder was overwritten by the page."""
    path = tmp_path / "risk_report.html"
    path.write_bytes(control_journal.read_bytes())
    code, lines, err = _cli(["report", "--journal", str(path), "--out", str(tmp_path)], capsys)
    assert (code, lines) == (2, [])
    assert "would overwrite the journal" in err
    assert len(read_journal(path)) == 8


def test_a_line_break_in_an_alert_or_id_keeps_the_row_on_one_line() -> None:
    """Bug (fixed in format_row/format_event): the manager accepts an asset named ``"a\\nb"``, and an
    alert naming it (``closing a\\nb, c``) split the row over two lines of ``journal`` output."""
    payload: dict[str, Any] = {"trading_state": "halted", "risk_level": "critical", "leverage": 0.0}
    payload["alerts"] = ["closing a\nb, c (trading state halted)", "ünïcødé ✓"]
    line = format_row(journal_frame([JournalEntry(1, "d\r-1", 0.0, payload)]).iloc[0])
    assert len(line.splitlines()) == 1
    assert "d\\r-1" in line
    assert line.endswith("| closing a\\nb, c (trading state halted); ünïcødé ✓")
    event = {
        "ts": pd.Timestamp(0, unit="s", tz="UTC"),
        "id": 2,
        "decision_id": "r-kill\n-2",
        "event": "kill_switch",
    }
    text = format_event({**event, "payload": {"event": "kill_switch", "reason": "fat\nfinger"}})
    assert len(text.splitlines()) == 1
