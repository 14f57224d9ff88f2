"""The HTML risk report of a decision journal: one self-contained page (``risk_report.html``).

Inline CSS, figures as embedded base64 PNG (matplotlib Agg, extra ``[report]``), no external URL and
no JavaScript: the file can be mailed or archived and opens the same anywhere. Sections: equity and
drawdown; VaR and CVaR against the realised book returns, breaches marked; leverage and hedge ratio;
the trading-state timeline; alerts (counts, last 50); the operator's controls; each model's input
drift score; decision latency (histogram, p50/p99/max); Kupiec and Christoffersen tests of the
recorded VaR.

Definitions (the page states them too):

- rows are taken in journal order (row id), one per decision;
- the realised book return after decision t is ``equity_{t+1} / equity_t - 1``, with equity as the
  bot reported it with the next bar (``portfolio.equity``, recorded in the row's ``equity``): it
  includes the bot's costs and flows, and whatever it did with the decision;
- a breach is that return below ``-VaR_t`` (the VaR recorded with decision t, at ``alpha``);
- a pair (t, t+1) whose ``VaR_t``, ``equity_t`` or ``equity_{t+1}`` is null is skipped in the
  backtest (the page says how many); the last row has no next bar;
- a row the bot never received is left out before pairing: when a decision's row was not durable
  within the deadline the manager returned a replacement, journaled after it with the alert
  ``replaces <decision_id>: ...`` (both rows describe the same bar).

NaN policy: nulls are never filled; a journal without any recorded equity (rows written before the
``equity`` field existed) gets "no equity recorded" in the sections that need it.

One module because the backtest's definitions and the page's sentences that state them are one
definition: split, the page could describe a count computed another way. The figures, which only
draw arrays, are their own module (``report_figures``).
"""

from __future__ import annotations

import html
import math
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from advanced_risk.errors import InvalidInputError
from advanced_risk.logs import get_logger
from advanced_risk.measures import backtest
from advanced_risk.measures.validation import check_alpha
from advanced_risk.monitoring import report_figures as figures
from advanced_risk.monitoring.journal import is_state_file, read_events, read_journal

__all__ = [
    "REPORT_NAME",
    "VaRBacktest",
    "book_returns",
    "realised_returns",
    "render_report",
    "replaced_rows",
    "var_backtest",
    "write_journal_report",
]

log = get_logger(__name__)

REPORT_NAME = "risk_report.html"
"""File name of the page :func:`write_journal_report` writes into its folder."""

FloatArray = NDArray[np.float64]
NO_EQUITY = "no equity recorded"


@dataclass(frozen=True, slots=True)
class VaRBacktest:
    """The backtest of the VaR a journal recorded (see the module docstring for the definitions).

    Attributes
    ----------
    alpha : the VaR confidence level.
    pairs : received decisions that have a next received one (see :func:`realised_returns`).
    skipped : pairs skipped because ``VaR_t``, ``equity_t`` or ``equity_{t+1}`` is null.
    replaced : rows left out because a later row replaced them (the bot never received them).
    tested, breaches : pairs tested, and those with a breach.
    kupiec, christoffersen : the tests' results (None with too few tested pairs: 1 and 2).
    """

    alpha: float
    pairs: int
    skipped: int
    replaced: int
    tested: int
    breaches: int
    kupiec: backtest.TestResult | None
    christoffersen: backtest.TestResult | None

    @property
    def expected(self) -> float:
        """Breaches expected at ``alpha``: ``tested * (1 - alpha)``."""
        return self.tested * (1.0 - self.alpha)


def book_returns(equity: FloatArray) -> FloatArray:
    """``r_t = equity_{t+1} / equity_t - 1`` per row; NaN for the last row and where either is NaN.

    Examples
    --------
    >>> book_returns(np.array([100.0, 110.0, np.nan, 99.0])).round(3).tolist()
    [0.1, nan, nan, nan]
    """
    e = np.asarray(equity, dtype=np.float64)
    out = np.full(e.shape, np.nan)
    if e.size > 1:
        with np.errstate(invalid="ignore", divide="ignore"):
            out[:-1] = e[1:] / e[:-1] - 1.0
    return out


_REPLACES = re.compile(r"\breplaces (\S+):")


def replaced_rows(frame: pd.DataFrame) -> NDArray[np.bool_]:
    """Rows whose decision a later row replaced (alert ``replaces <decision_id>: ...``)."""
    ids = {m.group(1) for alerts in frame["alerts"] for a in alerts if (m := _REPLACES.search(a))}
    return frame["decision_id"].isin(ids).to_numpy(bool)


def realised_returns(frame: pd.DataFrame) -> FloatArray:
    """The realised book return after each row's decision, over the rows the bot received.

    :func:`book_returns` of the equity of the rows not replaced (:func:`replaced_rows`), placed at
    those rows; NaN at replaced rows, at the last received row and wherever an equity is null.
    """
    received = np.flatnonzero(~replaced_rows(frame))
    out = np.full(len(frame), np.nan)
    out[received] = book_returns(frame["equity"].to_numpy(np.float64)[received])
    return out


def var_backtest(frame: pd.DataFrame, alpha: float = 0.99) -> VaRBacktest:
    """Kupiec (coverage) and Christoffersen (independence) tests of the frame's recorded VaR.

    ``frame`` is a :func:`~advanced_risk.monitoring.journal.journal_frame`; breaches and skipped
    pairs as in the module docstring.
    """
    a = check_alpha(alpha)
    r = realised_returns(frame)
    var = frame["var"].to_numpy(np.float64)
    usable = np.isfinite(r) & np.isfinite(var)
    hits = (r[usable] < -var[usable]).astype(np.float64)
    replaced = int(replaced_rows(frame).sum())
    pairs = max(len(frame) - replaced - 1, 0)
    return VaRBacktest(
        alpha=a,
        pairs=pairs,
        skipped=pairs - int(usable.sum()),
        replaced=replaced,
        tested=int(usable.sum()),
        breaches=int(hits.sum()),
        kupiec=backtest.kupiec_pof(hits, a) if hits.size >= 1 else None,
        christoffersen=backtest.christoffersen_independence(hits) if hits.size >= 2 else None,
    )


# ---------------------------------------------------------------------------------- HTML pieces

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2em auto;max-width:1040px;
color:#212121;background:#fff;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.25em;border-bottom:1px solid #ddd;padding-bottom:.2em}
section{margin-bottom:2em}img{max-width:100%;height:auto;display:block}
table{border-collapse:collapse;font-size:.9em;margin:.5em 0}
th,td{border:1px solid #ddd;padding:.25em .6em;text-align:left}th{background:#f5f5f5}
td.num{text-align:right;font-variant-numeric:tabular-nums}.muted{color:#757575}
.swatch{display:inline-block;width:.9em;height:.9em;margin:0 .3em 0 .8em;vertical-align:middle}
.pass{color:#2e7d32;font-weight:600}.fail{color:#c62828;font-weight:600}
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _table(headers: list[str], rows: list[list[str]], numeric: frozenset[int] = frozenset()) -> str:
    """An HTML table; cells are escaped here, columns in ``numeric`` right-aligned."""
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="num">{_e(c)}</td>' if i in numeric else f"<td>{_e(c)}</td>" for i, c in enumerate(r)
        )
        + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _img(png: str, alt: str) -> str:
    return f'<img src="data:image/png;base64,{png}" alt="{_e(alt)}">'


def _section(key: str, title: str, body: str) -> str:
    return f'<section id="{key}"><h2>{_e(title)}</h2>{body}</section>'


def _p(text: str, cls: str = "") -> str:
    return f'<p class="{cls}">{_e(text)}</p>' if cls else f"<p>{_e(text)}</p>"


def _ts(stamp: pd.Timestamp) -> str:
    """A UTC time to the millisecond: ``2024-05-01 12:00:00.123``."""
    return stamp.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _has_equity(frame: pd.DataFrame) -> bool:
    return bool(frame["equity"].notna().any())


def _x(frame: pd.DataFrame) -> FloatArray:
    return np.arange(len(frame), dtype=np.float64)


# ---------------------------------------------------------------------------------- sections


def _equity_section(frame: pd.DataFrame) -> str:
    if not _has_equity(frame):
        return _section("equity", "Equity and drawdown", _p(NO_EQUITY + " in this journal.", "muted"))
    eq = frame["equity"].to_numpy(np.float64)
    dd = frame["drawdown"].to_numpy(np.float64)
    png = figures.equity_figure(_x(frame), eq, dd)
    first, last = eq[np.isfinite(eq)][[0, -1]]
    text = (
        f"Equity as the bot reported it with each bar: first {first:,.2f}, last {last:,.2f} "
        f"({last / first - 1.0:+.2%}); largest drawdown the rules used: "
        f"{np.nanmax(dd) if np.isfinite(dd).any() else math.nan:.2%}."
    )
    return _section("equity", "Equity and drawdown", _p(text) + _img(png, "equity and drawdown"))


def _var_section(frame: pd.DataFrame, bt: VaRBacktest) -> str:
    title = "VaR and CVaR against realised book returns"
    if not _has_equity(frame):
        return _section("var", title, _p(NO_EQUITY + ": no realised book returns to compare.", "muted"))
    r = realised_returns(frame)
    png = figures.var_figure(
        _x(frame), r, frame["var"].to_numpy(np.float64), frame["cvar"].to_numpy(np.float64)
    )
    text = (
        f"Bars: realised book return after each decision (equity_t+1 / equity_t - 1). Lines: -VaR and "
        f"-CVaR at {bt.alpha:.1%} as recorded with the decision. Red: breaches ({bt.breaches} of "
        f"{bt.tested} tested, {bt.expected:.1f} expected)."
    )
    return _section("var", title, _p(text) + _img(png, "VaR, CVaR and realised returns"))


def _exposure_section(frame: pd.DataFrame) -> str:
    ratio = np.where(frame["hedge_active"], frame["hedge_ratio"].to_numpy(np.float64), 0.0)
    png = figures.exposure_figure(_x(frame), frame["leverage"].to_numpy(np.float64), ratio)
    text = (
        f"Leverage: mean {frame['leverage'].mean():.2f}, min {frame['leverage'].min():.2f}, max "
        f"{frame['leverage'].max():.2f}. Hedge on for {int(frame['hedge_active'].sum())} of "
        f"{len(frame)} decisions (ratio drawn as 0 while off)."
    )
    return _section("exposure", "Leverage and hedge ratio", _p(text) + _img(png, "leverage and hedge ratio"))


def _state_section(frame: pd.DataFrame) -> str:
    states = frame["trading_state"].astype(str).tolist()
    png = figures.states_figure(_x(frame), states, frame["degraded"].to_numpy(bool))
    counts = Counter(states)
    legend = " ".join(
        f'<span class="swatch" style="background:{figures.STATE_COLOURS.get(s, "#9e9e9e")}"></span>{_e(s)}'
        for s in counts
    )
    changes = [
        [str(i), _ts(frame["ts"].iloc[i]), f"{states[i - 1]} -> {states[i]}"]
        for i in range(1, len(states))
        if states[i] != states[i - 1]
    ]
    body = (
        _img(png, "trading state timeline")
        + f"<p>{legend}. Degraded decisions: {int(frame['degraded'].sum())}.</p>"
        + _table(["state", "decisions"], [[s, str(n)] for s, n in counts.most_common()], frozenset({1}))
        + _p(
            f"{len(changes)} state changes"
            + (" (last 20):" if len(changes) > 20 else ":" if changes else ".")
        )
        + (_table(["decision", "time (UTC)", "change"], changes[-20:]) if changes else "")
    )
    return _section("states", "Trading state timeline", body)


def _alerts_section(frame: pd.DataFrame) -> str:
    flat = [(i, a) for i, alerts in enumerate(frame["alerts"]) for a in alerts]
    if not flat:
        return _section("alerts", "Alerts", _p("No alerts in this journal.", "muted"))
    counts = Counter(a for _, a in flat).most_common()
    last = [[str(i), _ts(frame["ts"].iloc[i]), str(frame["decision_id"].iloc[i]), a] for i, a in flat[-50:]]
    body = (
        _p(f"{len(flat)} alerts on {sum(1 for a in frame['alerts'] if len(a))} decisions.")
        + _table(["alert", "count"], [[a, str(n)] for a, n in counts], frozenset({1}))
        + "<h3>Last 50</h3>"
        + _table(["decision", "time (UTC)", "decision id", "alert"], last)
    )
    return _section("alerts", "Alerts", body)


def _events_section(events: pd.DataFrame | None) -> str:
    """The operator's controls (kill switch, resume, peak reset) journalled beside the decisions."""
    title = "Operator controls"
    if events is None or events.empty:
        return _section("events", title, _p("No kill switch, resume or peak reset in this journal.", "muted"))
    rows = [
        [
            _ts(r["ts"]),
            str(r["decision_id"]),
            str(r["event"]),
            ", ".join(f"{k}: {v}" for k, v in r["payload"].items() if k != "event"),
        ]
        for _, r in events.iterrows()
    ]
    return _section("events", title, _table(["time (UTC)", "id", "control", "details"], rows))


def _drift_section(frame: pd.DataFrame) -> str:
    """Each model's input drift score over the decisions, and the decisions it was replaced on."""
    rows = [p.get("drift") if isinstance(p, dict) else None for p in frame["payload"]]
    models = sorted({m for r in rows if isinstance(r, dict) for m in r})
    if not models:
        return _section("drift", "Input drift", _p("No model tracked input drift in this journal.", "muted"))
    scores = {m: np.array([_score(r, m) for r in rows]) for m in models}
    replaced = {m: _replaced_by_drift(frame, m.replace("_", " ")) for m in models}
    counts = ", ".join(f"{m} on {int(replaced[m].sum())}" for m in models)
    text = (
        f"Drift score per model (docs/drift.md; NaN until its window is full). Decisions whose advice "
        f"the rules replaced because the model had drifted: {counts}."
    )
    return _section(
        "drift", "Input drift", _p(text) + _img(figures.drift_figure(_x(frame), scores, replaced), "drift")
    )


def _score(row: object, model: str) -> float:
    value = row.get(model) if isinstance(row, dict) else None
    return float(value) if isinstance(value, int | float) else math.nan


def _replaced_by_drift(frame: pd.DataFrame, model: str) -> NDArray[np.bool_]:
    prefix = f"input drift: {model} "
    return np.array([any(a.startswith(prefix) for a in alerts) for alerts in frame["alerts"]], dtype=bool)


def _latency_section(frame: pd.DataFrame) -> str:
    lat = frame["latency_ms"].to_numpy(np.float64)
    finite = lat[np.isfinite(lat)]
    if finite.size == 0:
        return _section("latency", "Decision latency", _p("No latency recorded.", "muted"))
    p50, p99 = np.percentile(finite, [50, 99])
    stats = _table(
        ["decisions", "p50 (ms)", "p99 (ms)", "max (ms)"],
        [[str(finite.size), f"{p50:.3f}", f"{p99:.3f}", f"{finite.max():.3f}"]],
        frozenset({0, 1, 2, 3}),
    )
    note = _p("Time from the call's start until the decision was final (RiskDecision.latency_ms).")
    return _section(
        "latency", "Decision latency", stats + note + _img(figures.latency_figure(lat), "latency")
    )


def _verdict(result: backtest.TestResult | None) -> list[str]:
    if result is None:
        return ["-", "-", "too few observations"]
    ok = result.p_value >= 0.05
    return [f"{result.statistic:.3f}", f"{result.p_value:.4f}", "pass" if ok else "reject"]


def _backtest_section(frame: pd.DataFrame, bt: VaRBacktest) -> str:
    title = "VaR backtest: Kupiec and Christoffersen"
    if not _has_equity(frame):
        return _section(
            "backtest", title, _p(NO_EQUITY + ": the recorded VaR cannot be backtested.", "muted")
        )
    counts = _p(
        f"{bt.pairs} decisions have a next row; {bt.skipped} skipped (VaR or equity null); "
        f"{bt.replaced} replaced rows left out; {bt.tested} tested at alpha {bt.alpha:.2%}: "
        f"{bt.breaches} breaches, {bt.expected:.1f} expected."
    )
    rows = [
        ["Kupiec (coverage)", *_verdict(bt.kupiec)],
        ["Christoffersen (independence)", *_verdict(bt.christoffersen)],
    ]
    note = _p("A test passes when its p-value is >= 0.05 (chi-square(1) likelihood ratios).", "muted")
    return _section("backtest", title, counts + _table(["test", "LR", "p-value", "verdict"], rows) + note)


def _definitions(alpha: float) -> str:
    items = [
        "Rows are taken in journal order (row id), one per decision; the x axes count decisions.",
        "Realised book return after decision t: equity_t+1 / equity_t - 1, with equity as the bot "
        "reported it with the next bar (so it includes costs and flows).",
        f"Breach: that return < -VaR_t, the VaR recorded with decision t at alpha {alpha:.2%}.",
        "Pairs whose VaR_t, equity_t or equity_t+1 is null are skipped in the backtest.",
        "Rows the bot never received are left out before pairing: a decision whose journal row was "
        "not durable within the deadline was replaced by a later row with the alert 'replaces <id>'.",
    ]
    return _section(
        "definitions", "Definitions", "<ul>" + "".join(f"<li>{_e(i)}</li>" for i in items) + "</ul>"
    )


def render_report(
    frame: pd.DataFrame, *, alpha: float = 0.99, source: str = "", events: pd.DataFrame | None = None
) -> str:
    """The report page of a :func:`~advanced_risk.monitoring.journal.journal_frame` as HTML text;
    ``events`` (:func:`~advanced_risk.monitoring.journal.read_events`) fills the operator's controls.

    Raises
    ------
    InvalidInputError
        An empty frame, or ``alpha`` outside (0, 1).
    """
    if frame.empty:
        where = f" {source}" if source else ""
        raise InvalidInputError(f"journal{where} has no decisions to report on")
    bt = var_backtest(frame, alpha)
    span = f"{_ts(frame['ts'].iloc[0])} to {_ts(frame['ts'].iloc[-1])}"
    header = _p(f"{len(frame)} decisions, {span} (UTC). Journal: {source or 'in memory'}.")
    sections = [
        _definitions(bt.alpha),
        _equity_section(frame),
        _var_section(frame, bt),
        _exposure_section(frame),
        _state_section(frame),
        _alerts_section(frame),
        _events_section(events),
        _drift_section(frame),
        _latency_section(frame),
        _backtest_section(frame, bt),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>Risk report</title>'
        f"<style>{CSS}</style></head><body><h1>Risk report</h1>{header}{''.join(sections)}</body></html>\n"
    )


def write_journal_report(path: str | Path, out_dir: str | Path, *, alpha: float = 0.99) -> Path:
    """Write the HTML report of the journal in the state file ``path`` to ``out_dir/risk_report.html``.

    Parameters
    ----------
    path : a ``StateStore`` file, opened read-only.
    out_dir : the folder of the page (created if missing).
    alpha : the confidence level the journal's VaR was recorded at (``RiskConfig.alpha``).

    Returns
    -------
    The path of the page written.

    Raises
    ------
    StateStoreError
        The journal file is missing, corrupt or of another schema.
    InvalidInputError
        An empty journal, ``alpha`` outside (0, 1), or a page that would overwrite the journal
        (a state file named ``risk_report.html`` in ``out_dir``).
    """
    target = Path(out_dir) / REPORT_NAME
    if is_state_file(target, path):
        raise InvalidInputError(
            f"the report {target} would overwrite the journal {path}: choose another folder"
        )
    frame = read_journal(path)
    page = render_report(frame, alpha=alpha, source=str(path), events=read_events(path))
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    target.write_text(page, encoding="utf-8")
    log.info("journal_report_written", path=str(target), rows=len(frame))
    return target
