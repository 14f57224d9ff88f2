"""Evaluation harness of the risk layer: does a book run through ``manage_risk`` end up better off?

:func:`evaluate_rules` replays a set of books (bundled real data and seeded regime-switching paths,
:mod:`~advanced_risk.evaluation.rules.books`) bar by bar through the manager with the execution
semantics of ``examples/trading_loop.py`` (:mod:`~advanced_risk.evaluation.rules.harness`), beside
two baselines on the same returns and costs (the unmanaged book and a textbook 15 % EWMA vol
target), and reports per book Sharpe with a block-bootstrap interval, CAGR, max drawdown, CVaR 95 %,
turnover, hedged / REDUCING / HALTED shares, recovery after the worst drawdown, paired Sharpe
differences with p-values and the issue's acceptance check
(:mod:`~advanced_risk.evaluation.rules.report`). :func:`run_book` replays one book under any
``RiskConfig``. The command line: ``python -m advanced_risk evaluate-rules`` (docs/rules_evaluation.md).

>>> from advanced_risk.evaluation.rules import BOOK_KEYS
>>> BOOK_KEYS[:3]
('stocks20', 'subset1', 'subset5')
"""

from __future__ import annotations

from advanced_risk.evaluation.rules.books import (
    BOOK_KEYS,
    DEFAULT_BOOK_KEYS,
    SPLIT_DATE,
    Book,
    build_books,
    index_book,
    policy_book,
    stock_books,
    synthetic_books,
)
from advanced_risk.evaluation.rules.csv_book import csv_book
from advanced_risk.evaluation.rules.evaluate import evaluate_rules
from advanced_risk.evaluation.rules.harness import (
    BarDecision,
    BookResult,
    StrategyPath,
    harness_config,
    run_book,
    simulate,
    vol_target_exposure,
)
from advanced_risk.evaluation.rules.report import (
    BookMetrics,
    PairedTest,
    RulesEvaluation,
    book_metrics,
    paired_sharpe_test,
)

__all__ = [
    "BOOK_KEYS",
    "DEFAULT_BOOK_KEYS",
    "SPLIT_DATE",
    "BarDecision",
    "Book",
    "BookMetrics",
    "BookResult",
    "PairedTest",
    "RulesEvaluation",
    "StrategyPath",
    "book_metrics",
    "build_books",
    "csv_book",
    "evaluate_rules",
    "harness_config",
    "index_book",
    "paired_sharpe_test",
    "policy_book",
    "run_book",
    "simulate",
    "stock_books",
    "synthetic_books",
    "vol_target_exposure",
]
