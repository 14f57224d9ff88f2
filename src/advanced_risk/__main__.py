"""``python -m advanced_risk``: the command-line entry points of the package.

- ``python -m advanced_risk report``: VaR backtests of the S&P 500 index and a risk snapshot of
  20 S&P 500 stocks (the foundation's report). With ``--journal PATH [--out DIR] [--alpha A]``:
  the HTML risk report of a decision journal instead, ``DIR/risk_report.html``
  (docs/journal_and_report.md).
- ``python -m advanced_risk journal PATH [--last N] [--since T] [--until T] [--state S]
  [--degraded] [--json] [--csv FILE] [--parquet FILE]``: the journal's rows, one a line, or
  exported; ``--archive-before T --archive-to FILE [--vacuum]`` moves the older rows into an
  archive file (docs/journal_and_report.md).
- ``python -m advanced_risk evaluate-rules [--period train|test|all] [--books KEY,...]
  [--synthetic N] [--out DIR] [--quick] [--prices CSV [--weights W,...]]``: the risk layer against
  the unmanaged book and a textbook vol target on the bundled books and synthetic paths, or on the
  bot's own CSV of closes (docs/rules_evaluation.md); writes Markdown, JSON and a PNG into
  ``--out``. Exit 2 with a one-line error on bad input.

One module because it is one argparse tree and its checks of the arguments (each refused before
any work starts); the work of each command lives in its own module.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from typing import TYPE_CHECKING, NoReturn

if TYPE_CHECKING:
    from collections.abc import Iterable

    from advanced_risk.config import RiskConfig
    from advanced_risk.evaluation.rules import Book


class _OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line on stderr (exit 2), without the usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def _add_evaluate_rules(sub: argparse._SubParsersAction[_OneLineParser]) -> None:
    from advanced_risk.evaluation.rules.books import BOOK_KEYS, DEFAULT_BOOK_KEYS

    cmd = sub.add_parser(
        "evaluate-rules",
        help="the risk layer against the unmanaged book and a 15 %% vol target (Markdown, JSON, PNG)",
        description="Replay books through manage_risk beside the unmanaged book and a textbook vol "
        "target; see docs/rules_evaluation.md.",
    )
    cmd.add_argument(
        "--period",
        choices=("train", "test", "all"),
        default="test",
        help="train: before 2013 and training seeds; test: 2013 on and test seeds; all: both",
    )
    cmd.add_argument(
        "--books",
        default=None,
        metavar="KEY,...",
        help=f"comma-separated real books, of {','.join(BOOK_KEYS)}; 'all' for every one, "
        f"'none' for synthetic paths only (default {','.join(DEFAULT_BOOK_KEYS)}; none with --prices)",
    )
    cmd.add_argument(
        "--prices",
        default=None,
        metavar="CSV",
        help="your own book: a CSV of closes (dates in the first column, one column per asset)",
    )
    cmd.add_argument(
        "--weights",
        default=None,
        metavar="W,...",
        help="--prices: the desired weights, one per column, signed (default equal weight)",
    )
    cmd.add_argument(
        "--split-date",
        default=None,
        metavar="DATE",
        help="first date of the test period of real books (default 2013-01-01; with --prices, the "
        "first date of the file: every bar is a test bar)",
    )
    cmd.add_argument(
        "--synthetic",
        type=int,
        default=None,
        metavar="N",
        help="synthetic paths per period (default 64, 8 with --quick, 0 with --prices)",
    )
    cmd.add_argument(
        "--synthetic-test-seed",
        type=int,
        default=None,
        metavar="SEED",
        help="first seed of the test period's synthetic paths (default 1000; fresh seeds, e.g. 2000, "
        "judge a later round of choices)",
    )
    cmd.add_argument(
        "--out",
        default="rules_evaluation",
        metavar="DIR",
        help="output folder for report.md, report.json, equity_drawdown.png",
    )
    cmd.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run: last 504 bars of each period, 8 synthetic paths of 504 bars, 200 replicates",
    )
    cmd.add_argument(
        "--config", metavar="TOML", help="RiskConfig fields (a TOML table); default RiskConfig()"
    )
    cmd.add_argument("--seed", type=int, default=0, help="subsets, long/short split, bootstrap (default 0)")
    cmd.add_argument("--jobs", type=int, default=None, metavar="N", help="worker processes (default: CPUs)")
    cmd.add_argument("--plot", default=None, metavar="BOOK", help="book (name or key) to plot")
    cmd.add_argument(
        "--risk-agents",
        default=None,
        metavar="FILE",
        help="a risk-agents model file the managed books run with (e.g. models/risk_agents_sp500.armodel)",
    )


def _add_report(sub: argparse._SubParsersAction[_OneLineParser]) -> None:
    cmd = sub.add_parser(
        "report",
        help="VaR backtest table (S&P 500 index) and a 20-stock risk snapshot; with --journal, the "
        "HTML report of a decision journal",
    )
    cmd.add_argument("--journal", metavar="PATH", help="a state file (RiskConfig.state_path) to report on")
    cmd.add_argument("--out", metavar="DIR", help="folder of risk_report.html (with --journal; default .)")
    cmd.add_argument(
        "--alpha", type=float, default=None, help="the VaR confidence the journal recorded (default 0.99)"
    )


def _add_journal(sub: argparse._SubParsersAction[_OneLineParser]) -> None:
    from advanced_risk.types import TradingState

    cmd = sub.add_parser("journal", help="the rows of a decision journal, one a line, or exported")
    cmd.add_argument("path", metavar="PATH", help="a state file (RiskConfig.state_path)")
    cmd.add_argument(
        "--last", type=int, default=None, metavar="N", help="the newest N rows that pass (default 20 printed)"
    )
    cmd.add_argument("--since", metavar="TIME", help="rows at or after TIME (ISO 8601 or Unix seconds; UTC)")
    cmd.add_argument("--until", metavar="TIME", help="rows at or before TIME (ISO 8601 or Unix seconds)")
    cmd.add_argument("--state", choices=[s.value for s in TradingState], help="rows in this trading state")
    cmd.add_argument("--degraded", action="store_true", help="degraded decisions only")
    cmd.add_argument("--json", action="store_true", help="JSON lines (the payload with id and ts)")
    cmd.add_argument(
        "--events",
        action="store_true",
        help="the operator's controls instead (kill switch, resume, peak reset; with --since/--until/--last)",
    )
    cmd.add_argument("--csv", metavar="FILE", help="write the rows that pass to FILE as CSV")
    cmd.add_argument("--parquet", metavar="FILE", help="write them as Parquet (extra [report])")
    cmd.add_argument(
        "--archive-before",
        metavar="TIME",
        help="move the rows written before TIME into --archive-to, then delete them here (safe "
        "next to a running bot; the safety state stays)",
    )
    cmd.add_argument("--archive-to", metavar="FILE", help="the archive: a state file, created if missing")
    cmd.add_argument("--batch-rows", type=int, default=5000, metavar="N", help="rows per archive batch")
    cmd.add_argument(
        "--vacuum", action="store_true", help="--archive-before: then shrink PATH (blocks the bot's writes)"
    )


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen command; returns the exit code."""
    parser = _OneLineParser(prog="python -m advanced_risk", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_OneLineParser)
    _add_report(sub)
    _add_evaluate_rules(sub)
    _add_journal(sub)
    args = parser.parse_args(argv)
    if args.command == "report":
        if args.journal is not None:
            return _journal_report(args)
        if args.out is not None or args.alpha is not None:
            print("python -m advanced_risk report: error: --out and --alpha need --journal", file=sys.stderr)
            return 2
        from advanced_risk.reports import risk_report

        risk_report()
    elif args.command == "evaluate-rules":
        return _evaluate_rules(args)
    elif args.command == "journal":
        return _journal(args)
    return 0


def _journal_report(args: argparse.Namespace) -> int:
    """``report --journal``: write the HTML page, print its path; 2 on a bad file or option."""
    from advanced_risk.errors import InvalidInputError, StateStoreError

    try:
        from advanced_risk.monitoring.report import write_journal_report

        alpha = 0.99 if args.alpha is None else args.alpha
        page = write_journal_report(args.journal, args.out or ".", alpha=alpha)
    except ImportError as exc:
        print(
            f"python -m advanced_risk report: error: {exc.name or exc} is missing; "
            "pip install 'advanced_risk[report]'",
            file=sys.stderr,
        )
        return 2
    except (InvalidInputError, StateStoreError, OSError) as exc:
        print(f"python -m advanced_risk report: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    print(page)
    return 0


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def _journal(args: argparse.Namespace) -> int:
    """``journal``: print or export the rows that pass the filters; 2 on a bad file or option."""
    from advanced_risk.errors import InvalidInputError, StateStoreError
    from advanced_risk.monitoring import journal as jr

    prog = "python -m advanced_risk journal"
    try:
        if args.last is not None and args.last < 0:
            raise InvalidInputError(f"--last must be >= 0, got {args.last}")
        if args.parquet is not None and importlib.util.find_spec("pyarrow") is None:
            raise InvalidInputError("--parquet needs pyarrow: pip install 'advanced_risk[report]'")
        if args.archive_before is not None or args.archive_to is not None or args.vacuum:
            return _journal_archive(args)
        if args.events:
            return _journal_events(args)
        filtered = any(v is not None for v in (args.since, args.until, args.state)) or args.degraded
        exporting = args.csv is not None or args.parquet is not None
        last = args.last if args.last is not None or exporting else 20
        for flag, file in (("--csv", args.csv), ("--parquet", args.parquet)):
            if file is not None and jr.is_state_file(file, args.path):
                raise InvalidInputError(
                    f"{flag} {file} would overwrite the journal {args.path}: choose another file"
                )
        frame = jr.read_journal(
            args.path, last=None if filtered else last, since=args.since, until=args.until
        )
        frame = jr.filter_journal(
            frame, since=args.since, until=args.until, state=args.state, degraded=args.degraded or None
        )
        frame = frame if last is None else frame.iloc[len(frame) - min(last, len(frame)) :]
        written = [
            jr.export_journal(frame, file, fmt)  # type: ignore[arg-type]
            for fmt, file in (("csv", args.csv), ("parquet", args.parquet))
            if file is not None
        ]
    except (InvalidInputError, StateStoreError, OSError) as exc:
        print(f"{prog}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    for file in written:
        print(f"wrote {len(frame)} rows to {file}")
    if not written:
        _print_lines(jr.json_line(row) if args.json else jr.format_row(row) for _, row in frame.iterrows())
    return 0


def _print_lines(lines: Iterable[str]) -> None:
    """Print the lines; a reader that stops early (piped into ``head``) is not an error."""
    try:
        for line in lines:
            print(line)
        sys.stdout.flush()
    except BrokenPipeError:  # the reader has what it wanted: silence the flush at exit too
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _journal_archive(args: argparse.Namespace) -> int:
    """``journal --archive-before T --archive-to FILE``: a line per batch on stderr, a summary."""
    from advanced_risk.errors import InvalidInputError
    from advanced_risk.monitoring import archive

    if args.archive_before is None or args.archive_to is None:
        raise InvalidInputError("--archive-before and --archive-to go together (--vacuum needs both)")
    others = [args.last, args.since, args.until, args.state, args.csv, args.parquet]
    if any(v is not None for v in others) or args.degraded or args.json or args.events:
        raise InvalidInputError("--archive-before takes only --archive-to, --batch-rows and --vacuum")
    result = archive.archive_journal(
        args.path,
        args.archive_before,
        args.archive_to,
        batch_rows=args.batch_rows,
        vacuum=args.vacuum,
        progress=archive.stderr_progress(),  # a closed stderr or `| head` stops the lines only
    )
    _print_lines([archive.format_result(result, args.path)])  # a reader gone: the run is done
    return 0


def _journal_events(args: argparse.Namespace) -> int:
    """``journal --events``: the operator's controls, one a line (or JSON lines)."""
    from advanced_risk.errors import InvalidInputError
    from advanced_risk.monitoring import journal as jr

    if args.state is not None or args.degraded or args.csv is not None or args.parquet is not None:
        raise InvalidInputError("--events takes only --since, --until, --last and --json")
    start, end = jr.check_time_range(args.since, args.until)
    frame = jr.read_events(args.path)
    if start is not None:
        frame = frame[frame["ts"] >= start]
    if end is not None:
        frame = frame[frame["ts"] <= end]
    if args.last is not None:
        frame = frame.iloc[len(frame) - min(args.last, len(frame)) :]
    _print_lines(jr.json_line(row) if args.json else jr.format_event(row) for _, row in frame.iterrows())
    return 0


def _read_config(path: str | None) -> RiskConfig | None:
    import tomllib

    from advanced_risk.config import RiskConfig
    from advanced_risk.errors import InvalidInputError

    if path is None:
        return None
    try:
        with open(path, "rb") as fh:
            values = tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"--config {path}: cannot read it as TOML: {exc}") from exc
    return RiskConfig.from_dict(values.get("risk", values))


def _own_book(prices: str | None, weights: str | None) -> Book | None:
    """``--prices`` / ``--weights`` as a :class:`Book` (None without ``--prices``)."""
    from advanced_risk.errors import InvalidInputError
    from advanced_risk.evaluation.rules.csv_book import csv_book

    if prices is None:
        if weights is not None:
            raise InvalidInputError("weights: --weights needs --prices (the book they weigh)")
        return None
    if weights is None:
        return csv_book(prices)
    try:
        values = [float(w) for w in weights.split(",")]
    except ValueError as exc:
        raise InvalidInputError(f"weights: comma-separated numbers expected, got {weights!r}") from exc
    return csv_book(prices, values)


def _check_plot(plot: str | None, books: list[str | Book], synthetic: int, seed: int) -> None:
    """Refuse a ``--plot`` that names no book of the run before the run, not after its minutes.

    Parameters
    ----------
    plot : the ``--plot`` value (None: the default book).
    books : the real books asked for, keys or :class:`Book` objects.
    synthetic : synthetic paths per period (their books are named ``synthetic seed N``).
    seed : the ``--seed`` the keyed books are built with (the subsets' names are their tickers).

    Raises
    ------
    InvalidInputError
        Naming ``plot`` when no book of the run has that name or key.
    """
    from advanced_risk.errors import InvalidInputError
    from advanced_risk.evaluation.rules.books import build_books

    if plot is None or (synthetic > 0 and plot.startswith("synthetic")):
        return
    keys = [b for b in books if isinstance(b, str)]
    given = [b for b in books if not isinstance(b, str)]
    known = {*keys, *(b.name for b in given), *(b.key for b in given)}
    if plot in known:
        return
    if plot not in {b.name for b in build_books(keys, seed=seed)}:  # an unknown key: refused here
        raise InvalidInputError(f"plot: no book of this run is named {plot!r}")


def _evaluate_rules(args: argparse.Namespace) -> int:
    """``evaluate-rules``: run, write the report, print the summary tables; 2 on bad input (an
    unloadable ``--risk-agents`` file and an unwritable ``--out`` included)."""
    from advanced_risk.errors import InvalidInputError, ModelLoadError
    from advanced_risk.evaluation.rules import BOOK_KEYS, DEFAULT_BOOK_KEYS, SPLIT_DATE, evaluate_rules
    from advanced_risk.evaluation.rules.report import check_out, summary_table

    prog = "python -m advanced_risk evaluate-rules"
    try:
        check_out(args.out)  # a folder it could never write fails now, not after minutes of work
        own = _own_book(args.prices, args.weights)
        default_books = "none" if own is not None else ",".join(DEFAULT_BOOK_KEYS)
        keys = [k.strip() for k in (args.books or default_books).split(",") if k.strip()]
        books: list[str | Book] = list(BOOK_KEYS) if keys == ["all"] else ([] if keys == ["none"] else keys)
        if own is not None:
            books.append(own)
        quick = args.quick
        default_synthetic = 0 if own is not None else (8 if quick else 64)
        synthetic = args.synthetic if args.synthetic is not None else default_synthetic
        first = None if own is None or own.dates is None else str(own.dates[0].date())
        split_date = args.split_date or first or SPLIT_DATE
        _check_plot(args.plot, books, synthetic, args.seed)
        evaluation = evaluate_rules(
            _read_config(args.config),
            books=books,
            period=args.period,
            split_date=split_date,
            synthetic_paths=synthetic,
            synthetic_bars=504 if quick else 2520,
            max_bars=504 if quick else None,
            reps=200 if quick else 1000,
            seed=args.seed,
            jobs=args.jobs if args.jobs is not None else (os.cpu_count() or 1),
            progress=True,
            risk_agents=args.risk_agents,
            synthetic_test_seed=args.synthetic_test_seed,
        )
        written = evaluation.write(args.out, plot=args.plot)
    except (InvalidInputError, ModelLoadError, OSError) as exc:
        print(f"{prog}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    for period in evaluation.periods:
        print(f"\n{period} period\n")
        print(summary_table(evaluation, period))
    print()
    for line in evaluation.summary():
        print(line)
    print(f"\n{evaluation.elapsed_s:.0f} s; wrote {', '.join(str(p) for p in written.values())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
