"""Figures of an evaluation: per-strategy measures, paired bootstrap tests, acceptance, outputs.

Every figure is computed on the evaluated bars' net returns (warm-up excluded), annualised with the
config's ``periods_per_year``, using :mod:`advanced_risk.measures` for the definitions (Sharpe:
``sharpe_ratio``, CAGR: ``annualised_return``, max drawdown: ``max_drawdown``, CVaR 95 %:
``historical_cvar(alpha=0.95)``).

Bootstrap: a stationary block bootstrap (``arch.bootstrap.StationaryBootstrap``, expected block
length 20 bars, 1,000 replicates, seeded per book) resamples the *same* blocks of the three
strategies' return series at once, so each replicate keeps the bars aligned:

- the Sharpe interval is the 2.5 / 97.5 % percentiles of the replicates' Sharpe ratios;
- the paired difference ``d = S_managed - S_baseline`` has the percentile interval of the
  replicates' ``d*`` and the two-sided p-value ``(1 + #{|d* - d| >= |d|}) / (1 + B)`` (the centred
  replicates stand for the null ``d = 0``): identical series give ``d = 0`` and ``p = 1``.

NaN policy: no figure is NaN for a valid path (a flat series has Sharpe 0, drawdown 0, CVaR 0);
``recovery_bars`` is None (JSON null) when the managed book never re-risks within the period.

One module because each figure, the acceptance check that reads it and the Markdown/JSON columns
that print it are one definition: split, a column could name a figure computed another way.
"""

from __future__ import annotations

import json
import math
import tempfile
import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from advanced_risk.errors import InvalidInputError
from advanced_risk.evaluation.stats import bootstrap_sharpes, centred_p_value, percentile_interval
from advanced_risk.measures.validation import FloatArray

if TYPE_CHECKING:
    from advanced_risk.evaluation.rules.harness import BookResult, StrategyPath

__all__ = [
    "BLOCK",
    "CVAR_ALPHA",
    "DRAWDOWN_RATIO",
    "RECOVERY_SHARE",
    "REPS",
    "SHARPE_TOLERANCE",
    "BookMetrics",
    "PairedTest",
    "RulesEvaluation",
    "StrategyMetrics",
    "acceptance_passed",
    "book_metrics",
    "bootstrap_sharpes",
    "check_out",
    "markdown_report",
    "paired_sharpe_test",
    "paired_test",
    "plot_book",
    "recovery_bars",
    "strategy_metrics",
    "summary_lines",
    "write_report",
]


BLOCK: Final = 20
"""Expected block length (bars) of the stationary bootstrap."""

REPS: Final = 1000
"""Bootstrap replicates."""

CVAR_ALPHA: Final = 0.95
"""Confidence level of the reported CVaR of daily returns."""

SHARPE_TOLERANCE: Final = 0.05
"""Acceptance: the managed Sharpe may trail the vol target's by at most this."""

DRAWDOWN_RATIO: Final = 0.7
"""Acceptance: the managed max drawdown is at most this times the unmanaged one."""

RECOVERY_SHARE: Final = 0.9
"""Recovery: the managed exposure is back once it is at least this share of the vol target's."""


@dataclass(frozen=True, slots=True)
class StrategyMetrics:
    """One strategy's figures over the evaluated bars.

    Attributes
    ----------
    sharpe, sharpe_low, sharpe_high : annualised Sharpe ratio (risk-free 0) and its 95 % stationary
        block-bootstrap percentile interval.
    cagr : annualised (geometric) return.
    max_drawdown : largest drawdown of the equity, a fraction of the running peak.
    cvar95 : historical CVaR at 95 % of the daily net returns (a positive loss fraction).
    turnover : mean traded value per bar, ``mean_t sum |target - held|`` (buy-in included).
    exposure : mean gross exposure ``sum |held|`` after each close.
    hedged, reducing, halted : share of bars whose decision had a hedge on / was REDUCING / HALTED
        (0 for the baselines).
    degraded : number of degraded decisions.
    """

    sharpe: float
    sharpe_low: float
    sharpe_high: float
    cagr: float
    max_drawdown: float
    cvar95: float
    turnover: float
    exposure: float
    hedged: float
    reducing: float
    halted: float
    degraded: int


@dataclass(frozen=True, slots=True)
class PairedTest:
    """Paired bootstrap comparison of two Sharpe ratios on the same bars.

    Attributes
    ----------
    difference : ``S_a - S_b``.
    low, high : 95 % percentile interval of the bootstrap differences.
    p_value : two-sided p-value of ``difference = 0`` (see the module docstring), in (0, 1].
    """

    difference: float
    low: float
    high: float
    p_value: float


@dataclass(frozen=True, slots=True)
class BookMetrics:
    """Every figure of one book over one period.

    Attributes
    ----------
    book, key, period, bars : the book's name and family, the period and the evaluated bars.
    start, end : first and last evaluated date (None for synthetic paths).
    managed, unmanaged, voltarget : the three strategies' figures.
    vs_unmanaged, vs_voltarget : paired Sharpe difference managed minus baseline.
    recovery_bars : bars from the managed book's max-drawdown trough until its gross exposure is
        back to at least 90 % of the vol target's on the same bar (:func:`recovery_bars`); 0 when it
        never fell below, None when it is not back by the period's end.
    passed : the issue's acceptance check (:func:`acceptance_passed`).
    seconds : wall time of the book's replay.
    """

    book: str
    key: str
    period: str
    bars: int
    start: str | None
    end: str | None
    managed: StrategyMetrics
    unmanaged: StrategyMetrics
    voltarget: StrategyMetrics
    vs_unmanaged: PairedTest
    vs_voltarget: PairedTest
    recovery_bars: int | None
    passed: bool
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values."""
        return asdict(self)


def paired_test(sharpe_a: float, sharpe_b: float, boot_a: FloatArray, boot_b: FloatArray) -> PairedTest:
    """:class:`PairedTest` of ``S_a - S_b`` from paired bootstrap replicates (same blocks).

    Examples
    --------
    >>> paired_test(1.0, 1.0, np.array([0.9, 1.1]), np.array([0.9, 1.1]))
    PairedTest(difference=0.0, low=0.0, high=0.0, p_value=1.0)
    """
    d = float(sharpe_a - sharpe_b)
    star = np.asarray(boot_a, dtype=np.float64) - np.asarray(boot_b, dtype=np.float64)
    low, high = percentile_interval(star, 0.95)
    return PairedTest(d, low, high, centred_p_value(star, d))


def paired_sharpe_test(
    a: FloatArray,
    b: FloatArray,
    *,
    reps: int = REPS,
    block: int = BLOCK,
    seed: int | Sequence[int] = 0,
    periods_per_year: int = 252,
) -> PairedTest:
    """Paired stationary-block-bootstrap test of ``Sharpe(a) - Sharpe(b)`` on aligned return series.

    Both series are resampled with the same blocks (:func:`bootstrap_sharpes`).
    """
    from advanced_risk.measures import sharpe_ratio

    boot = bootstrap_sharpes([a, b], reps=reps, block=block, seed=seed, periods_per_year=periods_per_year)
    sa = sharpe_ratio(a, periods_per_year=periods_per_year)
    sb = sharpe_ratio(b, periods_per_year=periods_per_year)
    return paired_test(sa, sb, boot[:, 0], boot[:, 1])


def recovery_bars(
    returns: FloatArray, exposure: FloatArray, reference: FloatArray, *, share: float = RECOVERY_SHARE
) -> int | None:
    """Bars from the max-drawdown trough until the exposure is back to ``share`` of the reference.

    The trough is the first bar where the drawdown of ``returns``'s equity is largest. Recovery is
    ``s - trough`` for the first bar ``s >= trough`` with ``exposure[s] >= share * reference[s]``
    (gross exposures held after each close; for the managed book the reference is the vol target's
    exposure on the same bar): 0 when there is no drawdown or the exposure never fell below; None
    when it is not back by the last bar.

    Examples
    --------
    >>> recovery_bars(np.array([0.1, -0.2, 0.05, 0.05]), np.array([1.0, 0.2, 0.5, 1.0]), np.ones(4))
    2
    """
    from advanced_risk.measures import drawdown_series

    r = np.asarray(returns, dtype=np.float64)
    x = np.asarray(exposure, dtype=np.float64)
    ref = np.asarray(reference, dtype=np.float64)
    if not r.shape == x.shape == ref.shape or r.ndim != 1:
        raise InvalidInputError("returns, exposure and reference must be 1-D arrays of one length")
    drawdown = drawdown_series(r)
    if drawdown.max() <= 0.0:
        return 0
    trough = int(np.argmax(drawdown))
    back = np.flatnonzero(x[trough:] >= share * ref[trough:])
    return int(back[0]) if back.size else None


def acceptance_passed(
    managed: StrategyMetrics, unmanaged: StrategyMetrics, voltarget: StrategyMetrics
) -> bool:
    """The issue's acceptance check for one book.

    ``S_managed >= S_unmanaged`` and ``S_managed >= S_voltarget - 0.05`` and
    ``maxDD_managed <= 0.7 * maxDD_unmanaged``.
    """
    return (
        managed.sharpe >= unmanaged.sharpe
        and managed.sharpe >= voltarget.sharpe - SHARPE_TOLERANCE
        and managed.max_drawdown <= DRAWDOWN_RATIO * unmanaged.max_drawdown
    )


def strategy_metrics(
    path: StrategyPath, sharpe_replicates: FloatArray, *, periods_per_year: int = 252
) -> StrategyMetrics:
    """:class:`StrategyMetrics` of one path, its Sharpe interval from ``sharpe_replicates``."""
    from advanced_risk import measures

    r = path.returns
    low, high = percentile_interval(sharpe_replicates, 0.95)
    return StrategyMetrics(
        sharpe=measures.sharpe_ratio(r, periods_per_year=periods_per_year),
        sharpe_low=float(low),
        sharpe_high=float(high),
        cagr=measures.annualised_return(r, periods_per_year=periods_per_year),
        max_drawdown=measures.max_drawdown(r),
        cvar95=measures.historical_cvar(r, alpha=CVAR_ALPHA),
        turnover=float(path.turnover.mean()),
        exposure=float(path.gross_exposure.mean()),
        hedged=float(path.hedged.mean()),
        reducing=float(np.mean(path.states == "reducing")),
        halted=float(np.mean(path.states == "halted")),
        degraded=int(path.degraded.sum()),
    )


def book_seed(seed: int, period: str, book: str) -> list[int]:
    """The bootstrap seed of one book: ``[seed, crc32(period/book)]`` (independent of the other books)."""
    return [int(seed), zlib.crc32(f"{period}/{book}".encode())]


def book_metrics(result: BookResult, *, reps: int = REPS, block: int = BLOCK, seed: int = 0) -> BookMetrics:
    """Every figure of one :class:`~advanced_risk.evaluation.rules.harness.BookResult`."""
    ppy = result.periods_per_year
    paths = (result.managed, result.unmanaged, result.voltarget)
    boot = bootstrap_sharpes(
        [p.returns for p in paths],
        reps=reps,
        block=block,
        seed=book_seed(seed, result.period, result.book),
        periods_per_year=ppy,
    )
    managed, unmanaged, voltarget = (
        strategy_metrics(p, boot[:, i], periods_per_year=ppy) for i, p in enumerate(paths)
    )
    dates = result.dates
    return BookMetrics(
        book=result.book,
        key=result.key,
        period=result.period,
        bars=result.bars,
        start=None if dates is None else str(dates[0].date()),
        end=None if dates is None else str(dates[-1].date()),
        managed=managed,
        unmanaged=unmanaged,
        voltarget=voltarget,
        vs_unmanaged=paired_test(managed.sharpe, unmanaged.sharpe, boot[:, 0], boot[:, 1]),
        vs_voltarget=paired_test(managed.sharpe, voltarget.sharpe, boot[:, 0], boot[:, 2]),
        recovery_bars=recovery_bars(
            result.managed.returns, result.managed.gross_exposure, result.voltarget.gross_exposure
        ),
        passed=acceptance_passed(managed, unmanaged, voltarget),
        seconds=result.seconds,
    )


# -- rendering -----------------------------------------------------------------------------------------


def _pct(x: float) -> str:
    return "n/a" if not math.isfinite(x) else f"{100.0 * x:.1f} %"


def _three(m: BookMetrics, field: str, fmt: str = "pct") -> str:
    values = [getattr(s, field) for s in (m.managed, m.unmanaged, m.voltarget)]
    return " / ".join(_pct(v) if fmt == "pct" else f"{v:.3f}" for v in values)


def _cell(text: str) -> str:
    """``text`` as one Markdown table cell: a ``|`` escaped, line breaks as spaces."""
    return " ".join(text.replace("|", "\\|").split())


def _recovery(value: int | None) -> str:
    return "not back" if value is None else str(value)


def _paired(p: PairedTest) -> str:
    return f"{p.difference:+.2f} [{p.low:+.2f}, {p.high:+.2f}] p={p.p_value:.3f}"


def _summary_row(m: BookMetrics) -> str:
    s = m.managed
    return (
        f"| {_cell(m.book)} | {m.bars} | {s.sharpe:.2f} [{s.sharpe_low:.2f}, {s.sharpe_high:.2f}] | "
        f"{m.unmanaged.sharpe:.2f} | {m.voltarget.sharpe:.2f} | {_three(m, 'max_drawdown')} | "
        f"{_pct(s.hedged)} | {_recovery(m.recovery_bars)} | {'pass' if m.passed else 'FAIL'} |"
    )


def _median(values: Sequence[float]) -> float:
    return float(np.median(np.asarray(values, dtype=np.float64))) if values else math.nan


def _synthetic_row(rows: Sequence[BookMetrics]) -> str:
    def med(strategy: str, field: str) -> float:
        return _median([getattr(getattr(m, strategy), field) for m in rows])

    back = [float(m.recovery_bars) for m in rows if m.recovery_bars is not None]
    drawdowns = " / ".join(_pct(med(s, "max_drawdown")) for s in ("managed", "unmanaged", "voltarget"))
    return (
        f"| synthetic x{len(rows)} (median) | {rows[0].bars} | {med('managed', 'sharpe'):.2f} | "
        f"{med('unmanaged', 'sharpe'):.2f} | {med('voltarget', 'sharpe'):.2f} | {drawdowns} | "
        f"{_pct(med('managed', 'hedged'))} | {_median(back):.0f} ({len(rows) - len(back)} not back) | "
        f"{sum(m.passed for m in rows)}/{len(rows)} pass |"
    )


SUMMARY_HEADER: Final = (
    "| book | bars | Sharpe managed [95 % CI] | Sharpe unmanaged | Sharpe vol target | "
    "max DD managed / unmanaged / vol target | hedged | recovery (bars) | acceptance |\n"
    "|---|---:|---:|---:|---:|---:|---:|---:|---|"
)
DETAIL_HEADER: Final = (
    "| book | CAGR m / u / vt | CVaR 95 % m / u / vt | turnover m / u / vt | exposure m / u / vt | "
    "REDUCING | HALTED | degraded | dSharpe vs unmanaged [CI] | dSharpe vs vol target [CI] | seconds |\n"
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
)


def _detail_row(m: BookMetrics) -> str:
    s = m.managed
    return (
        f"| {_cell(m.book)} | {_three(m, 'cagr')} | {_three(m, 'cvar95')} | {_three(m, 'turnover', 'num')} | "
        f"{_three(m, 'exposure', 'num')} | {_pct(s.reducing)} | {_pct(s.halted)} | {s.degraded} | "
        f"{_paired(m.vs_unmanaged)} | {_paired(m.vs_voltarget)} | {m.seconds:.1f} |"
    )


@dataclass(frozen=True, eq=False)
class RulesEvaluation:
    """The answer of :func:`~advanced_risk.evaluation.rules.evaluate.evaluate_rules`.

    Attributes
    ----------
    periods : the periods evaluated (``train``, ``test`` or both), in report order.
    results : every book's :class:`BookResult` (paths of the three strategies), in task order.
    metrics : the matching :class:`BookMetrics`.
    settings : how it was run (books, seeds, warm-up, cost, bootstrap ...).
    config : the ``RiskConfig`` the manager ran with (after
        :func:`~advanced_risk.evaluation.rules.harness.harness_config`), as a dict.
    elapsed_s : wall time of the whole evaluation.
    """

    periods: tuple[str, ...]
    results: tuple[BookResult, ...]
    metrics: tuple[BookMetrics, ...]
    settings: dict[str, Any]
    config: dict[str, Any]
    elapsed_s: float

    def passes(self, period: str) -> tuple[int, int]:
        """``(books passing the acceptance check, books)`` of one period."""
        rows = [m for m in self.metrics if m.period == period]
        return sum(m.passed for m in rows), len(rows)

    def summary(self) -> list[str]:
        """One line per period counting passes (real books and synthetic paths)."""
        return summary_lines(self)

    def to_markdown(self) -> str:
        """The Markdown report (:func:`markdown_report`)."""
        return markdown_report(self)

    def to_json(self) -> str:
        """The JSON report (:func:`json_report`)."""
        return json_report(self)

    def write(self, out: str | Path, *, plot: str | None = None) -> dict[str, Path]:
        """Write Markdown, JSON and the PNG into ``out`` (see :func:`write_report`)."""
        return write_report(self, out, plot=plot)


def _period_rows(evaluation: RulesEvaluation, period: str) -> tuple[list[BookMetrics], list[BookMetrics]]:
    rows = [m for m in evaluation.metrics if m.period == period]
    return [m for m in rows if m.key != "synthetic"], [m for m in rows if m.key == "synthetic"]


def _skipped(evaluation: RulesEvaluation, period: str) -> list[dict[str, Any]]:
    """The books ``period="all"`` skipped in ``period`` for lack of bars (``settings["skipped"]``)."""
    return [s for s in evaluation.settings.get("skipped", []) if s["period"] == period]


def _skipped_names(rows: Sequence[dict[str, Any]]) -> str:
    return ", ".join(f"{s['book']} ({s['bars']} bars)" for s in rows)


def summary_lines(evaluation: RulesEvaluation) -> list[str]:
    """One line per period counting the books that pass the acceptance check (only the books
    evaluated there; a book skipped for lack of bars is named after the counts), then a line per
    period nothing was evaluated in."""
    lines = []
    for period in evaluation.periods:
        real, synthetic = _period_rows(evaluation, period)
        parts = [f"{sum(m.passed for m in real)}/{len(real)} real books"]
        if synthetic:
            parts.append(f"{sum(m.passed for m in synthetic)}/{len(synthetic)} synthetic paths")
        line = f"{period}: acceptance passed on {' and '.join(parts)}"
        if skipped := _skipped(evaluation, period):
            line += f"; not evaluated: {_skipped_names(skipped)}"
        lines.append(line)
    unevaluated = dict.fromkeys(
        s["period"] for s in evaluation.settings.get("skipped", []) if s["period"] not in evaluation.periods
    )
    for period in unevaluated:
        skipped = _skipped(evaluation, period)
        lines.append(
            f"{period}: not evaluated, no book has bars in it (split date {skipped[0]['split_date']}): "
            f"{_skipped_names(skipped)}"
        )
    return lines


def summary_table(evaluation: RulesEvaluation, period: str) -> str:
    """The summary table of one period (real books, then the synthetic median row)."""
    real, synthetic = _period_rows(evaluation, period)
    lines = [SUMMARY_HEADER, *(_summary_row(m) for m in real)]
    if synthetic:
        lines.append(_synthetic_row(synthetic))
    return "\n".join(lines)


def markdown_report(evaluation: RulesEvaluation) -> str:
    """The whole report in Markdown: settings, then per period the summary, details and synthetic paths."""
    s = evaluation.settings
    out = [
        "# Risk rules evaluation",
        "",
        f"Config: {s['config_label']}. Warm-up {s['warmup']} bars, cost {s['cost'] * 1e4:.0f} bp of traded "
        f"value, vol target {VOL_TARGET_LABEL}, stationary bootstrap (block {s['block']}, {s['reps']} "
        f"replicates, seed {s['seed']}); {evaluation.elapsed_s:.0f} s.",
        "",
        "Acceptance: managed Sharpe >= unmanaged Sharpe, >= vol target Sharpe - 0.05, and managed max "
        "drawdown <= 0.7 x unmanaged. Three figures `a / b / c` are managed / unmanaged / vol target.",
        "",
        *(f"- {line}" for line in summary_lines(evaluation)),
    ]
    for period in evaluation.periods:
        real, synthetic = _period_rows(evaluation, period)
        spans = sorted({f"{m.start} to {m.end}" for m in real if m.start})
        out += ["", f"## {period}", ""]
        if spans:
            out += [f"Real books: {'; '.join(spans)}.", ""]
        if skipped := _skipped(evaluation, period):
            out += [f"Not evaluated in this period (too few bars): {_cell(_skipped_names(skipped))}.", ""]
        out += [summary_table(evaluation, period), "", "### Details", "", DETAIL_HEADER]
        out += [_detail_row(m) for m in (*real, *synthetic)]
        if synthetic:
            out += ["", "### Synthetic paths", "", SUMMARY_HEADER, *(_summary_row(m) for m in synthetic)]
    return "\n".join(out) + "\n"


VOL_TARGET_LABEL: Final = "15 % (EWMA lambda 0.94)"


def _json_ready(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(v) for v in value]
    if isinstance(value, np.generic):
        return _json_ready(value.item())
    return value


def json_report(evaluation: RulesEvaluation) -> str:
    """The report as JSON (non-finite floats as null): settings, config, summary and every book's figures."""
    data = {
        "settings": evaluation.settings,
        "config": evaluation.config,
        "elapsed_s": evaluation.elapsed_s,
        "summary": summary_lines(evaluation),
        "books": [m.to_dict() for m in evaluation.metrics],
    }
    return json.dumps(_json_ready(data), indent=1)


def plot_book(result: BookResult, path: str | Path) -> Path:
    """PNG of the equity (log scale) and drawdown of the managed, unmanaged and vol-target books."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    from advanced_risk.measures import drawdown_series

    fig = Figure(figsize=(10, 6.5), layout="constrained")
    FigureCanvasAgg(fig)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(2, 1))
    x: Any = result.dates if result.dates is not None else np.arange(1, result.bars + 1)
    for label, p, color in (
        ("managed (manage_risk)", result.managed, "tab:blue"),
        ("unmanaged", result.unmanaged, "tab:gray"),
        ("vol target 15 %", result.voltarget, "tab:orange"),
    ):
        top.plot(x, p.equity, label=label, color=color, linewidth=1.0)
        bottom.plot(x, -100.0 * drawdown_series(p.returns), color=color, linewidth=1.0)
    top.set_yscale("log")
    plain = FuncFormatter(lambda value, _: f"{value:g}")
    top.yaxis.set_major_formatter(plain)
    top.yaxis.set_minor_formatter(plain)
    top.set_ylabel("equity (start 1)")
    # a book's name is text, never mathtext: "$" in it would be parsed (and can fail to parse)
    top.set_title(
        f"{result.book}, {result.period} period ({result.bars} bars), 10 bp costs", parse_math=False
    )
    top.legend(loc="upper left")
    top.grid(alpha=0.3)
    bottom.set_ylabel("drawdown (%)")
    bottom.grid(alpha=0.3)
    out = Path(path)
    fig.savefig(out, dpi=110)
    return out


def write_report(evaluation: RulesEvaluation, out: str | Path, *, plot: str | None = None) -> dict[str, Path]:
    """Write ``report.md``, ``report.json`` and ``equity_drawdown.png`` into ``out`` (created).

    A new folder also gets a ``.gitignore`` of ``*``, so a report written inside a checkout is never
    committed by accident. ``plot`` names the book to plot (its run in the last period when it has
    one); default the first real book of the last period. Returns the paths written, by kind.
    An unknown ``plot`` (checked first, nothing is written) and a folder that cannot be created or
    written raise ``InvalidInputError`` naming ``plot`` / ``out``.
    """
    chosen = _plotted(evaluation, plot)  # an unknown book is refused before anything is written
    folder = Path(out)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        ignore = folder / ".gitignore"
        if not ignore.exists():
            ignore.write_text("# written by advanced_risk evaluate-rules: outputs, not sources\n*\n")
    except OSError as exc:
        raise InvalidInputError(f"out: cannot create directory {folder}: {exc}") from exc
    written = {"markdown": folder / "report.md", "json": folder / "report.json"}
    try:
        written["markdown"].write_text(markdown_report(evaluation), encoding="utf-8")
        written["json"].write_text(json_report(evaluation), encoding="utf-8")
        if chosen is not None:
            written["png"] = plot_book(chosen, folder / "equity_drawdown.png")
    except OSError as exc:
        raise InvalidInputError(f"out: cannot write the report into {folder}: {exc}") from exc
    return written


def check_out(out: str | Path) -> None:
    """Refuse a report folder ``out`` that could never be written, creating nothing.

    The command line calls it before an evaluation of minutes, so that such a folder fails at once
    rather than after the work. ``out``, or its nearest existing parent when it does not exist
    yet, must be a folder where a file can be created (probed with a temporary file, removed at
    once). Raises ``InvalidInputError`` naming ``out``.
    """
    folder = Path(out)
    probe = next((p for p in (folder, *folder.parents) if p.exists()), Path.cwd())
    try:
        if not probe.is_dir():
            raise NotADirectoryError(f"{probe} is not a directory")
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as exc:
        raise InvalidInputError(f"out: cannot create directory {folder}: {exc}") from exc


def _plotted(evaluation: RulesEvaluation, plot: str | None) -> BookResult | None:
    results = list(evaluation.results)
    if plot is not None:
        named = [r for r in results if plot in (r.book, r.key)]
        if not named:
            raise InvalidInputError(f"plot: no evaluated book named {plot!r}")
        results = named
    if not results:
        return None
    last = evaluation.periods[-1]
    ranked = sorted(results, key=lambda r: (r.period != last, r.key == "synthetic"))
    return ranked[0]
