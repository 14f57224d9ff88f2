"""Many books: :func:`evaluate_rules` replays a set of books over one or both periods and reports.

Each (book, period) is one task: :func:`~advanced_risk.evaluation.rules.harness.run_book` replays it
(the bar loop and its execution semantics live in :mod:`~advanced_risk.evaluation.rules.harness`)
and :func:`~advanced_risk.evaluation.rules.report.book_metrics` computes its figures, in this
process or in ``jobs`` worker processes (spawned, results in task order). Every argument is checked
here, before any worker starts, and a bad one raises ``InvalidInputError`` naming it.
"""

from __future__ import annotations

import multiprocessing
import sys
import time
import warnings
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from advanced_risk.config import RiskConfig
from advanced_risk.errors import InvalidInputError, ModelLoadError
from advanced_risk.evaluation.rules.books import (
    DEFAULT_BOOK_KEYS,
    DEFAULT_POLICY,
    PERIODS,
    SPLIT_DATE,
    SYNTHETIC_SEEDS,
    Book,
    Period,
    bar_frequency_warning,
    book_window,
    build_books,
    date_span,
    period_bars,
    period_side,
    synthetic_books,
)
from advanced_risk.evaluation.rules.harness import (
    COST,
    EWMA_LAMBDA,
    VOL_TARGET,
    WARMUP,
    BookResult,
    harness_config,
    run_book,
)
from advanced_risk.evaluation.rules.report import BLOCK, REPS, BookMetrics, RulesEvaluation, book_metrics
from advanced_risk.logs import get_logger
from advanced_risk.rl.agents.policy import RiskAgents

__all__ = ["evaluate_rules"]

log = get_logger(__name__)


def _periods(period: str) -> tuple[Period, ...]:
    if period == "all":
        return PERIODS
    if period in PERIODS:
        return (period,)  # type: ignore[return-value]
    raise InvalidInputError(f"period must be one of {(*PERIODS, 'all')}, got {period!r}")


def _evaluate_one(
    book: Book, period: Period, config: RiskConfig | None, options: dict[str, Any]
) -> tuple[BookResult, BookMetrics]:
    """Replay one book over one period and compute its figures (run in a worker process)."""
    result = run_book(
        book,
        config,
        period=period,
        warmup=options["warmup"],
        cost=options["cost"],
        split_date=options["split_date"],
        max_bars=options["max_bars"],
        risk_agents=options["risk_agents"],
    )
    return result, book_metrics(result, reps=options["reps"], block=options["block"], seed=options["seed"])


def _check_int(value: object, name: str, minimum: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise InvalidInputError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def _first_seed(period: Period, synthetic_test_seed: int | None) -> int:
    """The first synthetic seed of ``period``."""
    if period == "test" and synthetic_test_seed is not None:
        return synthetic_test_seed
    return SYNTHETIC_SEEDS[period]


def evaluate_rules(
    config: RiskConfig | None = None,
    *,
    books: Sequence[str | Book] | None = None,
    period: str = "test",
    synthetic_paths: int = 64,
    synthetic_bars: int = 2520,
    seed: int = 0,
    warmup: int = WARMUP,
    cost: float = COST,
    split_date: str = SPLIT_DATE,
    max_bars: int | None = None,
    reps: int = REPS,
    block: int = BLOCK,
    policy: str | Path = DEFAULT_POLICY,
    jobs: int = 1,
    progress: bool = False,
    risk_agents: str | Path | None = None,
    synthetic_test_seed: int | None = None,
) -> RulesEvaluation:
    """Evaluate the risk rules of ``config`` on a set of books against the unmanaged book and the vol target.

    Parameters
    ----------
    config : the rules (default ``RiskConfig()``), run through
        :func:`~advanced_risk.evaluation.rules.harness.harness_config`.
    books : real books by key (:data:`~advanced_risk.evaluation.rules.books.BOOK_KEYS`) or any
        :class:`~advanced_risk.evaluation.rules.books.Book`; default
        :data:`~advanced_risk.evaluation.rules.books.DEFAULT_BOOK_KEYS` (no policy book).
    period : ``train`` (bars before ``split_date`` and synthetic training seeds), ``test`` (from
        ``split_date`` on, test seeds) or ``all`` (both, reported separately; a dated book is
        evaluated in each period where it has at least 2 bars after the warm-up and skipped, with
        a warning, in the other: ``settings["skipped"]`` lists those, and ``periods`` holds only
        the periods something was evaluated in).
    synthetic_paths : regime-switching paths per period (0 for none), at most 1,000.
    synthetic_bars : evaluated bars of each synthetic path (after ``warmup`` more).
    seed : seeds the stock subsets, the long/short split and the bootstraps.
    warmup, cost, split_date, max_bars : see :func:`~advanced_risk.evaluation.rules.harness.run_book`.
    reps, block : bootstrap replicates and expected block length.
    policy : model file of the ``policy`` book.
    jobs : worker processes (1: in this process).
    progress : a tqdm progress bar on stderr.
    risk_agents : a risk-agents model file the managed books run with (see
        :func:`~advanced_risk.evaluation.rules.harness.run_book`).
    synthetic_test_seed : first seed of the test period's synthetic paths (default 1000; at least
        1000): fresh seeds judge a later round of choices on paths nobody has looked at.

    Returns
    -------
    :class:`~advanced_risk.evaluation.rules.report.RulesEvaluation`; ``.write(out)`` writes the
    Markdown, JSON and PNG.

    Raises
    ------
    InvalidInputError
        Naming the bad argument (``config``, ``books``, ``period``, ``synthetic_paths``, ...);
        ``period`` when a book has fewer than 2 bars in the period asked for (with ``all``: in
        every period).

    Warns
    -----
    UserWarning
        A dated book whose bar spacing the config's ``periods_per_year`` cannot count (minute bars
        with the default 252: :func:`~advanced_risk.evaluation.rules.books.bar_frequency_warning`),
        and, with ``risk_agents``, the books that lack an asset the agents were trained on (the
        agents never advise there: those managed books are the rules alone), and, with ``period=
        "all"``, each dated book skipped in a period it does not cover (also a structlog
        ``rules_period_skipped`` event).
    """
    started = time.perf_counter()
    cfg = harness_config(config)
    periods = _periods(period)
    jobs = _check_run_arguments(
        seed=seed, jobs=jobs, reps=reps, block=block, cost=cost, risk_agents=risk_agents
    )
    real = _chosen_books(books, seed=seed, policy=policy)
    for b in real:  # minute bars annualised as days: every figure is off, so say so
        if (message := bar_frequency_warning(b, cfg.periods_per_year)) is not None:
            warnings.warn(message, UserWarning, stacklevel=2)
    tasks = _tasks(real, periods, synthetic_paths, synthetic_bars, warmup, synthetic_test_seed)
    skipped: list[dict[str, Any]] = []
    if period == "all":  # "all" is every period the data covers: a period a book lacks is skipped
        tasks, skipped = _covered_tasks(tasks, warmup=warmup, split_date=split_date, max_bars=max_bars)
        periods = tuple(p for p in periods if any(q == p for _, q in tasks))
    if risk_agents is not None and (message := _agents_idle_warning(risk_agents, tasks)) is not None:
        warnings.warn(message, UserWarning, stacklevel=2)
    for b, p in tasks:  # refuse a bad window here, not in a worker
        book_window(b, p, warmup=warmup, split_date=split_date, max_bars=max_bars)
    options = {
        "warmup": warmup, "cost": cost, "split_date": split_date, "max_bars": max_bars,
        "reps": reps, "block": block, "seed": seed,
        "risk_agents": None if risk_agents is None else str(risk_agents),
    }  # fmt: skip
    done = _run_tasks(tasks, config, options, jobs=jobs, progress=progress)
    settings = {
        "periods": list(periods),
        "books": [b.name for b in real],
        "synthetic_paths": synthetic_paths,
        "synthetic_bars": synthetic_bars,
        "synthetic_seeds": {  # [first, last] per period; none without synthetic paths
            p: [(first := _first_seed(p, synthetic_test_seed)), first + synthetic_paths - 1]
            for p in periods
            if synthetic_paths > 0
        },
        "config_label": "RiskConfig() defaults"
        if config is None or config == RiskConfig()
        else "a custom RiskConfig",
        "vol_target": {"target": VOL_TARGET, "ewma_lambda": EWMA_LAMBDA},
        "jobs": jobs,
        "skipped": skipped,
        **options,
    }
    return RulesEvaluation(
        periods=periods,
        results=tuple(r for r, _ in done),
        metrics=tuple(m for _, m in done),
        settings=settings,
        config=cfg.to_dict(),
        elapsed_s=time.perf_counter() - started,
    )


def _check_run_arguments(
    *, seed: int, jobs: int, reps: int, block: int, cost: float, risk_agents: str | Path | None
) -> int:
    """Refuse a bad seed, job count, bootstrap setting, cost or risk-agents file; the job count."""
    _check_int(seed, "seed", 0)
    jobs = _check_int(jobs, "jobs", 1)
    _check_int(reps, "reps", 1)
    _check_int(block, "block", 1)
    if not (isinstance(cost, float | int) and 0.0 <= cost < 1.0):
        raise InvalidInputError(f"cost must be in [0, 1), got {cost!r}")
    if risk_agents is not None:
        _check_risk_agents_file(risk_agents)
    return jobs


def _check_risk_agents_file(path: str | Path) -> None:
    """Load the risk-agents file once here, so a missing or corrupt one is refused before any
    worker starts (each worker loads its own copy)."""
    if not Path(path).is_file():
        raise InvalidInputError(f"risk_agents: model file not found: {path}")
    try:
        RiskAgents.load(path)
    except ModelLoadError as exc:
        raise InvalidInputError(f"risk_agents: {exc}") from exc


def _agents_idle_warning(path: str | Path, tasks: Sequence[tuple[Book, Period]]) -> str | None:
    """The books on which the risk agents in ``path`` can never advise, as a warning (None: none).

    Named agents advise only on bars that list every asset they were trained on (the manager
    matches them by name); on a book without one of them the managed book is the rules alone.

    Parameters
    ----------
    path : the risk-agents model file (already checked to load).
    tasks : the (book, period) pairs to be replayed.

    Returns
    -------
    The warning's text naming those books and the missing assets, or None when the agents cover
    every book (or are unnamed, matched by position).
    """
    names = RiskAgents.load(path).asset_names
    if names is None:
        return None
    idle: dict[str, list[str]] = {}
    for book, _ in tasks:
        missing = [a for a in names if a not in set(book.assets)]
        if missing and book.name not in idle:
            idle[book.name] = missing
    if not idle:
        return None
    shown = ", ".join(
        f"{name!r} (missing {', '.join(m[:5])}{', ...' if len(m) > 5 else ''})"
        for name, m in list(idle.items())[:5]
    )
    more = f" and {len(idle) - 5} more" if len(idle) > 5 else ""
    return (
        f"the risk agents in {path} never advise on book(s) {shown}{more}: they were trained on "
        f"{', '.join(names[:10])}{', ...' if len(names) > 10 else ''} and advise only on bars that "
        "list all of them, so those managed books are the rules alone"
    )


def _chosen_books(books: Sequence[str | Book] | None, *, seed: int, policy: str | Path) -> list[Book]:
    """The real books asked for, in order: keys are built (seeded subsets), Books kept as given."""
    if isinstance(books, str):
        raise InvalidInputError(f"books must be a sequence of keys or Books, got the string {books!r}")
    chosen = list(DEFAULT_BOOK_KEYS if books is None else books)
    keys = [b for b in chosen if isinstance(b, str)]
    bad = [b for b in chosen if not isinstance(b, str | Book)]
    if bad:
        raise InvalidInputError(f"books: each entry must be a key or a Book, got {bad!r}")
    built = iter(build_books(keys, seed=seed, policy=policy))
    return [next(built) if isinstance(b, str) else b for b in chosen]


def _tasks(
    real: list[Book],
    periods: tuple[Period, ...],
    synthetic_paths: int,
    synthetic_bars: int,
    warmup: int,
    synthetic_test_seed: int | None,
) -> list[tuple[Book, Period]]:
    """Every (book, period) to replay: per period, the real books of that split, then its paths."""
    tasks: list[tuple[Book, Period]] = []
    for p in periods:
        tasks += [(b, p) for b in real if b.split in (None, p)]
        first = synthetic_test_seed if p == "test" else None
        paths = synthetic_books(synthetic_paths, p, bars=synthetic_bars, warmup=warmup, first_seed=first)
        tasks += [(b, p) for b in paths]
    if not tasks:
        raise InvalidInputError("books: nothing to evaluate (no book and no synthetic path in the period)")
    return tasks


def _covered_tasks(
    tasks: list[tuple[Book, Period]], *, warmup: int, split_date: str, max_bars: int | None
) -> tuple[list[tuple[Book, Period]], list[dict[str, Any]]]:
    """The tasks of ``period="all"`` whose dated book has bars in the period, and the others.

    A dated book with fewer than 2 bars in a period (after the warm-up) is skipped there, with a
    ``UserWarning`` and a ``rules_period_skipped`` log event naming the book, the period and the
    split date; synthetic paths are kept (each belongs to its period).

    Returns
    -------
    The kept tasks, in order, and one ``{"book", "period", "bars", "split_date"}`` per skipped one.

    Raises
    ------
    InvalidInputError
        Naming ``period`` when a dated book has fewer than 2 bars in every period.
    """
    bars = {
        i: period_bars(b, p, warmup=warmup, split_date=split_date, max_bars=max_bars)
        for i, (b, p) in enumerate(tasks)
        if b.dates is not None
    }
    for book in {id(b): b for b, _ in tasks if b.dates is not None}.values():
        counts = [(p, bars[i]) for i, (b, p) in enumerate(tasks) if b is book]
        if all(n < 2 for _, n in counts):
            raise InvalidInputError(_uncovered_message(book, counts, warmup=warmup, split_date=split_date))
    kept: list[tuple[Book, Period]] = []
    skipped: list[dict[str, Any]] = []
    for i, (book, p) in enumerate(tasks):
        if bars.get(i, 2) >= 2:  # a synthetic path (no count) always covers its own period
            kept.append((book, p))
            continue
        skipped.append({"book": book.name, "period": p, "bars": bars[i], "split_date": split_date})
        log.warning("rules_period_skipped", book=book.name, period=p, bars=bars[i], split_date=split_date)
        warnings.warn(
            f"book {book.name!r} has {bars[i]} bar(s) in {p!r} ({period_side(p, split_date)}) after a "
            f"warm-up of {warmup}; {date_span(book)}: it is not evaluated in {p!r} (move the split "
            "date with --split-date, split_date=)",
            UserWarning,
            stacklevel=3,
        )
    return kept, skipped


def _uncovered_message(book: Book, counts: list[tuple[Period, int]], *, warmup: int, split_date: str) -> str:
    """Why ``book`` cannot be evaluated in any period: its bars in each, the split date, its dates."""
    each = ", ".join(f"{n} in {p!r} ({period_side(p, split_date)})" for p, n in counts)
    return (
        f"period: book {book.name!r} has fewer than 2 bars in every period after a warm-up of "
        f"{warmup}: {each}; {date_span(book)}: give more rows, or move the split with --split-date "
        "(split_date=)"
    )


def _run_tasks(
    tasks: list[tuple[Book, Period]],
    config: RiskConfig | None,
    options: dict[str, Any],
    *,
    jobs: int,
    progress: bool,
) -> list[tuple[BookResult, BookMetrics]]:
    """Run every task, in worker processes when ``jobs > 1``; results in task order."""
    from tqdm import tqdm

    bar = tqdm(total=len(tasks), desc="evaluate-rules", unit="book", file=sys.stderr, disable=not progress)
    out: list[tuple[BookResult, BookMetrics] | None] = [None] * len(tasks)
    try:
        if jobs == 1 or len(tasks) == 1:
            for i, (book, p) in enumerate(tasks):
                bar.set_postfix_str(f"{p}: {book.name}"[:40])
                out[i] = _evaluate_one(book, p, config, options)
                bar.update()
        else:
            context = multiprocessing.get_context("spawn")  # no fork of a process with threads
            with ProcessPoolExecutor(max_workers=min(jobs, len(tasks)), mp_context=context) as pool:
                futures = {
                    pool.submit(_evaluate_one, b, p, config, options): i for i, (b, p) in enumerate(tasks)
                }
                for future in as_completed(futures):
                    out[futures[future]] = future.result()
                    bar.update()
    finally:
        bar.close()
    return [r for r in out if r is not None]
