"""A time range is read in SQLite: the same rows as filtering the whole journal, without decoding
the rest (a day of a journal of millions of rows)."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from advanced_risk.engine.state import StateStore
from advanced_risk.errors import StateStoreError
from advanced_risk.monitoring.journal import filter_journal, read_journal


def test_a_range_read_in_sql_equals_filtering_the_whole_journal(manager_journal: Path) -> None:
    whole = read_journal(manager_journal)
    ts = whole["ts"]
    cases = [
        (ts.iloc[40], ts.iloc[120]),  # bounds exactly on rows: inclusive
        (ts.iloc[40] + pd.Timedelta(microseconds=1), None),
        (None, ts.iloc[10]),
        (ts.iloc[-1] + pd.Timedelta(days=1), None),  # nothing after the last row
    ]
    for since, until in cases:
        expected = filter_journal(whole, since=since, until=until).reset_index(drop=True)
        got = read_journal(manager_journal, since=since, until=until)
        # an empty frame's text columns are object, not str: journal_frame of no rows has no values
        pd.testing.assert_frame_equal(got, expected, check_dtype=len(expected) > 0)
    in_range = read_journal(manager_journal, since=ts.iloc[40], until=ts.iloc[120], last=5)
    assert in_range["id"].tolist() == whole["id"].iloc[116:121].tolist()


def test_only_the_rows_in_range_are_decoded(manager_journal: Path) -> None:
    with StateStore(manager_journal, read_only=True) as store:
        every = store.journal(store.count())
        since, until = every[50].ts, every[59].ts  # the stored floats: exact bounds
        entries = store.journal_between(since, until)
    assert [e.id for e in entries] == [e.id for e in every if since <= e.ts <= until]
    assert 10 <= len(entries) < len(every) // 2


def test_a_corrupt_time_outside_the_range_is_still_reported(manager_journal: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy.db"
    shutil.copy(manager_journal, copy)
    with sqlite3.connect(copy) as conn:
        conn.execute("UPDATE journal SET ts = 'abc' WHERE id = 3")
    with pytest.raises(StateStoreError):
        read_journal(copy, since="2000-01-01", until="2000-01-02")
