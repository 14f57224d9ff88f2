"""Adversarial pass (Dec 4): the rules evaluation and the manager on a user's own book and models.

Found by running ``python -m advanced_risk evaluate-rules --prices my.csv --risk-agents F`` with an
agents file trained on other assets than the book's: the agents never advised on a single bar, and
nothing said so (the report looked like an evaluation of the agents).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from advanced_risk import AdvancedRiskManager, MarketState, Portfolio, RiskConfig
from advanced_risk.evaluation.rules import evaluate_rules
from advanced_risk.evaluation.rules.books import Book

AGENTS = Path(__file__).resolve().parents[2] / "models" / "risk_agents_sp500.armodel"


def _book(assets: tuple[str, ...], bars: int = 320) -> Book:
    rng = np.random.default_rng(0)
    returns = rng.normal(0.0003, 0.01, (bars, len(assets)))
    prices = 100.0 * np.cumprod(1.0 + returns, axis=0)
    dates = pd.bdate_range("2015-01-02", periods=bars)
    weights = np.full(len(assets), 1.0 / len(assets))
    return Book("csv", "mine", assets, returns, prices, weights, dates=dates)


def _evaluate_with_agents(assets: tuple[str, ...]) -> None:
    """A 3-bar evaluation of the book of ``assets`` with the shipped risk agents."""
    evaluate_rules(
        books=[_book(assets)],
        synthetic_paths=0,
        split_date="2015-01-02",
        max_bars=3,
        reps=5,
        jobs=1,
        risk_agents=AGENTS,
    )


def test_evaluate_rules_says_when_the_risk_agents_never_advise_on_a_book() -> None:
    """Agents trained on the 20 bundled tickers cannot advise on a book of two other assets: the
    managed book is the rules alone, so the evaluation must say so, naming the book."""
    with pytest.warns(UserWarning, match=r"risk agents.*'mine'.*AAPL"):
        _evaluate_with_agents(("A", "B"))


def test_evaluate_rules_is_silent_when_the_risk_agents_cover_the_book() -> None:
    """No warning when every asset the agents know is in the book (extra assets are fine)."""
    from advanced_risk.rl.agents.policy import RiskAgents

    names = RiskAgents.load(AGENTS).asset_names
    assert names is not None
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        _evaluate_with_agents((*names, "EXTRA"))


def test_the_manager_says_when_the_risk_agents_are_idle_for_a_missing_asset() -> None:
    """A bar without one of the agents' assets: the agents cannot advise (decision.risk_agents is
    None), and, as for the policy, an alert should name the missing asset."""
    from advanced_risk.rl.agents.policy import RiskAgents

    names = RiskAgents.load(AGENTS).asset_names
    assert names is not None
    kept = names[:-1]  # the last ticker is not traded by this bot
    rng = np.random.default_rng(1)
    prices = dict.fromkeys(kept, 100.0)
    risk = AdvancedRiskManager(RiskConfig(deterministic_refits=True), risk_agents=str(AGENTS))
    try:
        for _ in range(40):  # past the agents' 28 bars of history
            returns = {a: float(r) for a, r in zip(kept, rng.normal(0.0, 0.01, len(kept)), strict=True)}
            prices = {a: prices[a] * (1.0 + returns[a]) for a in kept}
            decision = risk.manage_risk_sync(
                MarketState(returns=returns, prices=prices),
                Portfolio(weights=dict.fromkeys(kept, 0.04), equity=100_000.0),
            )
    finally:
        risk.close_sync()
    assert decision.risk_agents is None
    assert any("agents" in alert and names[-1] in alert for alert in decision.alerts), decision.alerts


def test_a_csv_column_named_cash_is_refused_naming_the_file(tmp_path: Path) -> None:
    """A column 'cash' (the manager's reserved key) passed csv_book and failed only inside the
    replay, after the warm-up had started, with a message naming neither the file nor the column."""
    from advanced_risk.errors import InvalidInputError
    from advanced_risk.evaluation.rules.csv_book import csv_book

    closes = 100.0 * np.cumprod(1.0 + np.random.default_rng(0).normal(0.0, 0.01, (10, 2)), axis=0)
    path = tmp_path / "book.csv"
    pd.DataFrame(closes, columns=["SPY", "cash"], index=pd.bdate_range("2015-01-02", periods=10)).to_csv(path)
    with pytest.raises(InvalidInputError, match=r"book\.csv.*'cash'"):
        csv_book(path)
    with pytest.raises(InvalidInputError, match=r"'mine'.*'cash'"):
        _book(("SPY", "cash"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # a header and no rows: the file has its date column and asset columns, only no data
        ("Date,A,B\n", r"no data rows"),
        # Unix times: numbers, not dates (the training data loader says the same)
        ("Date,A,B\n1420156800,10,20\n1420416000,11,21\n1420502400,12,22\n", r"numbers, not dates"),
    ],
)
def test_a_csv_book_names_what_is_wrong_with_its_dates(tmp_path: Path, text: str, message: str) -> None:
    from advanced_risk.errors import InvalidInputError
    from advanced_risk.evaluation.rules.csv_book import csv_book

    path = tmp_path / "book.csv"
    path.write_text(text)
    with pytest.raises(InvalidInputError, match=message):
        csv_book(path)


def test_an_unknown_plot_book_is_refused_before_the_evaluation_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--plot nosuch`` was refused only by ``write``, after the whole evaluation (minutes on the
    default books), and the finished evaluation was thrown away."""
    import advanced_risk.evaluation.rules as rules
    from advanced_risk.__main__ import main

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("the evaluation ran before --plot was checked")

    monkeypatch.setattr(rules, "evaluate_rules", never)
    closes = 100.0 * np.cumprod(1.0 + np.random.default_rng(0).normal(0.0, 0.01, (10, 2)), axis=0)
    path = tmp_path / "mine.csv"
    pd.DataFrame(closes, columns=["A", "B"], index=pd.bdate_range("2015-01-02", periods=10)).to_csv(path)
    out = tmp_path / "x"
    code = main(["evaluate-rules", "--prices", str(path), "--plot", "nosuch", "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert "plot" in err
    assert "nosuch" in err
    assert "\n" not in err
