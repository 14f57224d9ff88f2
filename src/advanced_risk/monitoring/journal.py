"""Reading a decision journal: a flat pandas frame, filters, one line of text per row, exports.

The journal is the ``journal`` table of a :class:`~advanced_risk.engine.state.StateStore` file, one
row per decision (``RiskDecision.to_json``). It is opened read-only (WAL readers never block the
running manager's writer), so these tools may read the file of a live bot.

Columns of :func:`journal_frame` (one row per decision, in journal order, i.e. by row id):

``id``, ``decision_id``, ``ts`` (UTC datetime of the journal write), ``trading_state``,
``risk_level``, ``leverage``, ``hedge_active``, ``hedge_ratio``, ``var``, ``cvar``, ``equity``,
``drawdown``, ``degraded``, ``latency_ms``, ``alerts`` (list of str), ``correlation_average``,
``correlation_shock``, ``uncertainty`` and ``payload`` (the row's JSON object, as a dict).

Beside the decisions the journal holds the operator's controls as rows of their own, ``{"event":
...}``: ``kill_switch`` (reason, the state before), ``resume`` (reason) and ``reset_peak`` (previous
and new peak, reason). :func:`read_events` reads those; :func:`journal_frame` leaves them out.

One module because the frame's columns above are its one contract: reading, filtering, the text
line, the JSON line and the exports each read or write exactly those columns, and splitting them
would spread one definition of a journal row over several files.

NaN policy: a value the row holds as null (VaR before enough history, the correlation of one asset,
no uncertainty without a policy) and a field an older journal lacks (``equity``, ``drawdown``) are
NaN in the frame; nothing is dropped or filled.
"""

from __future__ import annotations

import importlib.util
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from advanced_risk.engine.state import JournalEntry, StateStore
from advanced_risk.errors import InvalidInputError, StateStoreError
from advanced_risk.logs import get_logger
from advanced_risk.types import TradingState

__all__ = [
    "COLUMNS",
    "check_time_range",
    "export_journal",
    "filter_journal",
    "flat_records",
    "format_event",
    "format_row",
    "is_decision",
    "is_state_file",
    "journal_frame",
    "json_line",
    "parse_time",
    "read_events",
    "read_journal",
]

log = get_logger(__name__)

COLUMNS: tuple[str, ...] = (
    "id",
    "decision_id",
    "ts",
    "trading_state",
    "risk_level",
    "leverage",
    "hedge_active",
    "hedge_ratio",
    "var",
    "cvar",
    "equity",
    "drawdown",
    "degraded",
    "latency_ms",
    "alerts",
    "correlation_average",
    "correlation_shock",
    "uncertainty",
    "payload",
)
"""The columns of :func:`journal_frame`, in order."""


def _number(value: Any) -> float:
    """A JSON number as float; null, a missing field or anything else non-numeric as NaN."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return math.nan
    return float(value)


def _mapping(payload: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    """The nested object ``payload[key]``; empty when it is missing or not an object."""
    value = payload.get(key)
    return value if isinstance(value, Mapping) else {}


def _flat(entry: JournalEntry) -> dict[str, Any]:
    """One journal entry as the flat record of :data:`COLUMNS`."""
    p = entry.payload
    hedge, corr = _mapping(p, "hedge"), _mapping(p, "correlation")
    alerts = p.get("alerts")
    return {
        "id": entry.id,
        "decision_id": entry.decision_id,
        "ts": entry.ts,
        "trading_state": str(p.get("trading_state", "")),
        "risk_level": str(p.get("risk_level", "")),
        "leverage": _number(p.get("leverage")),
        "hedge_active": bool(hedge.get("active", False)),
        "hedge_ratio": _number(hedge.get("ratio")),
        "var": _number(p.get("var")),
        "cvar": _number(p.get("cvar")),
        "equity": _number(p.get("equity")),
        "drawdown": _number(p.get("drawdown")),
        "degraded": bool(p.get("degraded", False)),
        "latency_ms": _number(p.get("latency_ms")),
        "alerts": [str(a) for a in alerts] if isinstance(alerts, list) else [],
        "correlation_average": _number(corr.get("average")),
        "correlation_shock": bool(corr.get("shock", False)),
        "uncertainty": _number(p.get("uncertainty")),
        "payload": p,
    }


def is_decision(entry: JournalEntry) -> bool:
    """Whether a journal entry is a decision: a JSON object that is not an operator event.

    The journal also holds rows that are not decisions: ``reset_peak`` writes
    ``{"event": "reset_peak", ...}``. Those (and a row whose payload is not a JSON object) are not
    decisions: they have no state, leverage or VaR, and counted as decisions they would add a row of
    NaN, two false state changes in the report and break the pairs of the VaR backtest.
    """
    return isinstance(entry.payload, Mapping) and "event" not in entry.payload


def journal_frame(entries: Sequence[JournalEntry]) -> pd.DataFrame:
    """The decisions among the entries as a flat frame with the columns :data:`COLUMNS` (see the
    module docstring); entries that are not decisions (:func:`is_decision`) are left out.

    ``ts`` becomes a UTC datetime (``datetime64[ns, UTC]``) from the stored Unix seconds; numeric
    fields that are null or missing in a row are NaN. The frame's index is 0..n-1 in the order of
    ``entries``.

    Examples
    --------
    >>> e = JournalEntry(1, "d-1", 0.0, {"trading_state": "active", "leverage": 0.5, "var": None})
    >>> row = journal_frame([e]).iloc[0]
    >>> row["ts"].isoformat(), float(row["leverage"]), bool(pd.isna(row["var"])), bool(pd.isna(row["equity"]))
    ('1970-01-01T00:00:00+00:00', 0.5, True, True)
    """
    frame = pd.DataFrame([_flat(e) for e in entries if is_decision(e)], columns=list(COLUMNS))
    frame["ts"] = pd.to_datetime(frame["ts"].astype("float64"), unit="s", utc=True)
    for name in ("hedge_active", "degraded", "correlation_shock"):
        frame[name] = frame[name].astype(bool)
    frame["id"] = frame["id"].astype("int64")
    return frame


def read_journal(
    path: str | Path,
    *,
    last: int | None = None,
    since: str | float | pd.Timestamp | None = None,
    until: str | float | pd.Timestamp | None = None,
) -> pd.DataFrame:
    """The decisions of the journal in the state file ``path``, opened read-only, as :func:`journal_frame`.

    Parameters
    ----------
    path : a ``StateStore`` database file (e.g. ``RiskConfig.state_path``).
    last : only the newest ``last`` decisions (None: all of them, read into memory at once); rows
        that are not decisions (``reset_peak`` events) do not count.
    since, until : only the rows written in this time range, inclusive (:func:`parse_time`: ISO
        8601, Unix seconds, ``now``, ``today``); the range is selected in SQLite, so a day of a
        journal of millions of rows is read without decoding the rest. ``last`` then counts within
        the range.

    Raises
    ------
    StateStoreError
        The file is missing, not a database, of another schema version, or holds a row that is not
        JSON (a corrupt file).
    InvalidInputError
        ``last`` is not an integer >= 0.
    """
    if last is not None and (isinstance(last, bool) or not isinstance(last, int) or last < 0):
        raise InvalidInputError(f"last must be an integer >= 0, got {last!r}")
    if since is not None or until is not None:
        return _read_range(path, last, *check_time_range(since, until))
    try:
        with StateStore(path, read_only=True) as store:
            total = store.count()
            want = total if last is None else min(last, total)
            entries = store.journal(want)
            # event rows do not count towards ``last``: read further back until enough decisions
            while len(entries) < total and sum(map(is_decision, entries)) < want:
                entries = store.journal(min(2 * len(entries) + 1, total))
    except json.JSONDecodeError as exc:  # a row's payload is not JSON: a corrupt file
        raise StateStoreError(f"journal of {path} holds a row that is not JSON: {exc}") from exc
    log.debug("journal_read", path=str(path), rows=len(entries))
    _check_times(entries, path)
    frame = journal_frame(entries)
    return frame if last is None else frame.iloc[len(frame) - min(last, len(frame)) :].reset_index(drop=True)


_BOUND_SLACK_S = 1e-3
"""How much wider than asked the SQL range is: the exact cut is :func:`filter_journal`'s, on the same
datetimes as without a range, so float rounding at a bound never drops a row."""


def _read_range(
    path: str | Path, last: int | None, start: pd.Timestamp | None, end: pd.Timestamp | None
) -> pd.DataFrame:
    """:func:`read_journal` of the rows written between ``start`` and ``end`` (UTC, inclusive)."""
    low = None if start is None else start.timestamp() - _BOUND_SLACK_S
    high = None if end is None else end.timestamp() + _BOUND_SLACK_S
    try:
        with StateStore(path, read_only=True) as store:
            entries = store.journal_between(low, high, valid=_TS_RANGE)
    except json.JSONDecodeError as exc:  # a row's payload is not JSON: a corrupt file
        raise StateStoreError(f"journal of {path} holds a row that is not JSON: {exc}") from exc
    log.debug("journal_read", path=str(path), rows=len(entries), since=str(start), until=str(end))
    _check_times(entries, path)
    frame = filter_journal(journal_frame(entries), since=start, until=end).reset_index(drop=True)
    return frame if last is None else frame.iloc[len(frame) - min(last, len(frame)) :].reset_index(drop=True)


_TS_RANGE = (pd.Timestamp.min.timestamp(), pd.Timestamp.max.timestamp())  # years 1677 to 2262


def _check_times(entries: Sequence[JournalEntry], path: str | Path) -> None:
    """Every row's time is Unix seconds a UTC datetime can hold (the store writes ``time.time()``);
    anything else (text, a time beyond 2262) is a corrupt file, not a traceback of the frame's build."""
    lo, hi = _TS_RANGE
    for e in entries:
        ts = e.ts
        if isinstance(ts, bool) or not isinstance(ts, int | float) or not lo < ts < hi:
            raise StateStoreError(
                f"journal of {path}: row {e.id} has a time that is not Unix seconds: {ts!r}"
            )


def parse_time(value: str | float | pd.Timestamp, name: str = "time") -> pd.Timestamp:
    """A UTC timestamp from Unix seconds (a number or numeric text) or ISO 8601 text.

    ISO text without a zone is taken as UTC; ``"now"`` is the current UTC time and ``"today"`` the
    start (00:00 UTC) of the current UTC day.

    Raises
    ------
    InvalidInputError
        ``value`` is neither (the message names ``name``).

    Examples
    --------
    >>> parse_time("1700000000").isoformat(), parse_time("2023-11-14T22:13:20").isoformat()
    ('2023-11-14T22:13:20+00:00', '2023-11-14T22:13:20+00:00')
    """
    if isinstance(value, pd.Timestamp):
        return value.tz_localize("UTC") if value.tzinfo is None else value.tz_convert("UTC")
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = math.nan
    if math.isfinite(seconds):
        try:
            return pd.Timestamp(seconds, unit="s", tz="UTC")
        except (OverflowError, ValueError) as exc:  # pandas' OutOfBoundsDatetime is a ValueError
            raise InvalidInputError(
                f"{name} {value!r} is out of range as Unix seconds (years 1677 to 2262)"
            ) from exc
    text = str(value)
    if text in ("now", "today"):
        # pandas reads these two words as the local wall-clock time without a zone, which taken as
        # UTC below would be off by the machine's offset: now is the current UTC time, today its day
        now = pd.Timestamp.now(tz="UTC")
        return now if text == "now" else now.normalize()
    try:
        stamp = pd.Timestamp(text)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(
            f"{name} must be ISO 8601 (e.g. 2024-05-01T12:00:00Z) or Unix seconds, got {value!r}"
        ) from exc
    if pd.isna(stamp):
        raise InvalidInputError(f"{name} must be a time, got {value!r}")
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def check_time_range(
    since: str | float | pd.Timestamp | None, until: str | float | pd.Timestamp | None
) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    """``since`` and ``until`` as UTC times (:func:`parse_time`; None stays None).

    Raises
    ------
    InvalidInputError
        A time that does not parse, or ``until`` before ``since`` (a range no row can be in: a typo
        or swapped bounds, which would otherwise print nothing and look like an empty journal).
    """
    start = None if since is None else parse_time(since, "since")
    end = None if until is None else parse_time(until, "until")
    if start is not None and end is not None and end < start:
        raise InvalidInputError(
            f"until {until!r} ({end.isoformat()}) is before since {since!r} ({start.isoformat()})"
        )
    return start, end


def filter_journal(
    frame: pd.DataFrame,
    *,
    since: str | float | pd.Timestamp | None = None,
    until: str | float | pd.Timestamp | None = None,
    state: str | TradingState | None = None,
    degraded: bool | None = None,
) -> pd.DataFrame:
    """The rows of a :func:`journal_frame` that pass every filter given (None: no filter).

    ``since`` and ``until`` bound ``ts`` inclusively (:func:`parse_time` forms); ``state`` keeps one
    trading state; ``degraded`` keeps the degraded (True) or the normal (False) decisions.

    Raises
    ------
    InvalidInputError
        A time that does not parse, ``until`` before ``since``, or a state that is not a
        ``TradingState`` value.
    """
    keep = pd.Series(True, index=frame.index)
    start, end = check_time_range(since, until)
    if start is not None:
        keep &= frame["ts"] >= start
    if end is not None:
        keep &= frame["ts"] <= end
    if state is not None:
        allowed = [s.value for s in TradingState]
        if str(state) not in allowed:
            raise InvalidInputError(f"state must be one of {allowed}, got {state!r}")
        keep &= frame["trading_state"] == str(state)
    if degraded is not None:
        keep &= frame["degraded"] == bool(degraded)
    return frame[keep]


def _pct(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.2%}"


def _text(value: object) -> str:
    """``str(value)`` on one line: a line break or other control character (an asset named
    ``"a\\nb"`` in an alert) is written escaped, as Python writes it in a string (``\\n``)."""
    text = str(value)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _num(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.2f}"


def format_row(row: pd.Series | Mapping[str, Any]) -> str:
    """One line of text for one row of a :func:`journal_frame` (a ``Series`` or a mapping).

    ``ts id decision_id state level lev hedge var cvar [eq dd] latency [DEGRADED] | alerts``;
    null numbers print as ``-``.

    Examples
    --------
    >>> e = JournalEntry(7, "d-7", 0.0, {"trading_state": "active", "risk_level": "low",
    ...     "leverage": 0.5, "var": 0.0123, "cvar": 0.02, "latency_ms": 0.4, "alerts": ["x"]})
    >>> format_row(journal_frame([e]).iloc[0])
    '1970-01-01T00:00:00.000Z #7 d-7 active low lev 0.50 hedge off var 1.23% cvar 2.00% 0.40 ms | x'
    """
    ts = pd.Timestamp(row["ts"]).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    hedge = _num(row["hedge_ratio"]) if row["hedge_active"] else "off"
    parts = [
        ts,
        f"#{row['id']}",
        _text(row["decision_id"]),
        _text(row["trading_state"]),
        _text(row["risk_level"]),
        f"lev {_num(row['leverage'])}",
        f"hedge {hedge}",
        f"var {_pct(row['var'])}",
        f"cvar {_pct(row['cvar'])}",
    ]
    if not math.isnan(row["equity"]):
        parts.append(f"eq {row['equity']:,.2f}")
    if not math.isnan(row["drawdown"]):
        parts.append(f"dd {_pct(row['drawdown'])}")
    parts.append(f"{_num(row['latency_ms'])} ms")
    if row["degraded"]:
        parts.append("DEGRADED")
    alerts = [_text(a) for a in row["alerts"]]
    return " ".join(parts) + (" | " + "; ".join(alerts) if alerts else "")


def _json_text(value: Any) -> str:
    """Strict JSON text; a NaN or infinity (a row of another writer: this library journals null)
    becomes null instead of a ValueError ending the export."""
    try:
        return json.dumps(value, separators=(",", ":"), allow_nan=False)
    except ValueError:
        return json.dumps(_finite(value), separators=(",", ":"), allow_nan=False)


def _finite(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None, through dicts and lists."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def flat_records(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with ``alerts`` and ``payload`` as JSON text: the form the exports write.

    CSV and Parquet readers give the other columns back as they were (``ts`` as text in CSV);
    ``json.loads`` gives back the two JSON columns.
    """
    out = frame.copy()
    out["alerts"] = [_json_text(list(a)) for a in frame["alerts"]]
    out["payload"] = [_json_text(p) for p in frame["payload"]]
    return out


def is_state_file(target: str | Path, state_path: str | Path) -> bool:
    """Whether writing ``target`` would overwrite the state file ``state_path`` or one of SQLite's
    files beside it (``-wal``, ``-shm``, ``-journal``): the same path, or another name (a link) of
    the same file. An export or a report written there would destroy the bot's journal and state.
    """
    source = Path(state_path).expanduser().resolve()
    path = Path(target).expanduser().resolve()
    guarded = [source, *(source.with_name(source.name + s) for s in ("-wal", "-shm", "-journal"))]
    if path in guarded:
        return True
    try:
        return any(g.exists() and path.exists() and path.samefile(g) for g in guarded)
    except OSError:
        return False


def export_journal(frame: pd.DataFrame, path: str | Path, fmt: Literal["csv", "parquet"]) -> Path:
    """Write the frame (as :func:`flat_records`) to ``path`` as CSV or Parquet; returns the path.

    Raises
    ------
    InvalidInputError
        ``fmt`` is neither; Parquet without ``pyarrow`` (the message names the extra to install).
    """
    target = Path(path)
    flat = flat_records(frame)
    if fmt == "csv":
        flat.to_csv(target, index=False)
    elif fmt == "parquet":
        if importlib.util.find_spec("pyarrow") is None:
            raise InvalidInputError("parquet export needs pyarrow: pip install 'advanced_risk[report]'")
        flat.to_parquet(target, index=False)
    else:
        raise InvalidInputError(f"fmt must be 'csv' or 'parquet', got {fmt!r}")
    return target


def json_line(row: pd.Series | Mapping[str, Any]) -> str:
    """One row of a :func:`journal_frame` as one line of JSON: the payload plus ``id`` and ``ts``.

    ``ts`` is ISO 8601 UTC; the payload's fields are kept as the journal holds them (nulls included).
    """
    ts = pd.Timestamp(row["ts"]).isoformat()
    return _json_text({"id": int(row["id"]), "ts": ts, **dict(row["payload"])})


EVENT_COLUMNS: tuple[str, ...] = ("id", "decision_id", "ts", "event", "payload")
"""The columns of :func:`read_events`, in order."""


def read_events(path: str | Path) -> pd.DataFrame:
    """The operator's controls journalled in the state file ``path`` (kill switch, resume, peak
    reset), oldest first, as a frame with the columns :data:`EVENT_COLUMNS` (``ts`` UTC datetime,
    ``payload`` the row as a dict). Opened read-only; decisions are not read.

    Raises
    ------
    StateStoreError
        The file is missing, not a database, of another schema version, or corrupt.
    """
    try:
        with StateStore(path, read_only=True) as store:
            entries = store.operator_events()
    except json.JSONDecodeError as exc:
        raise StateStoreError(f"journal of {path} holds a row that is not JSON: {exc}") from exc
    _check_times(entries, path)
    rows = [(e.id, e.decision_id, e.ts, str(e.payload["event"]), e.payload) for e in entries]
    frame = pd.DataFrame(rows, columns=list(EVENT_COLUMNS))
    frame["ts"] = pd.to_datetime(frame["ts"].astype("float64"), unit="s", utc=True)
    frame["id"] = frame["id"].astype("int64")
    return frame


def format_event(row: pd.Series | Mapping[str, Any]) -> str:
    """One line for one operator event: ``ts id decision_id EVENT key=value ...``.

    Examples
    --------
    >>> format_event({"ts": pd.Timestamp(0, unit="s", tz="UTC"), "id": 3, "decision_id": "r-kill-switch-3",
    ...     "event": "kill_switch", "payload": {"event": "kill_switch", "reason": "fat finger"}})
    "1970-01-01T00:00:00.000Z #3 r-kill-switch-3 KILL_SWITCH reason='fat finger'"
    """
    ts = pd.Timestamp(row["ts"]).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    fields = " ".join(f"{_text(k)}={v!r}" for k, v in dict(row["payload"]).items() if k != "event")
    return f"{ts} #{row['id']} {_text(row['decision_id'])} {_text(row['event']).upper()} {fields}".rstrip()
