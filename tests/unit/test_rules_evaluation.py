"""The rules-evaluation harness: execution semantics by hand, the vol-target baseline by hand, the
paired bootstrap, the recovery definition, book windows, a smoke run and the CLI's errors."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from advanced_risk.__main__ import main
from advanced_risk.errors import InvalidInputError
from advanced_risk.evaluation.rules import (
    BarDecision,
    Book,
    evaluate_rules,
    paired_sharpe_test,
    simulate,
    stock_books,
    vol_target_exposure,
)
from advanced_risk.evaluation.rules.books import book_window, index_book, synthetic_books
from advanced_risk.evaluation.rules.csv_book import csv_book
from advanced_risk.evaluation.rules.harness import ManagerDecider, book_returns
from advanced_risk.evaluation.rules.report import (
    StrategyMetrics,
    acceptance_passed,
    recovery_bars,
)


def test_simulate_matches_a_hand_computed_three_bar_book() -> None:
    # two assets, one warm-up row, then three traded bars; 10 bp on traded value
    returns = np.array([[0.01, -0.02], [0.10, -0.05], [-0.20, 0.10], [0.05, 0.05]])
    targets = {0: [9.0, 9.0], 1: [0.5, 0.5], 2: [1.0, -0.5], 3: [0.0, 0.0]}  # the warm-up one is not traded
    calls: list[tuple[int, list[float], float]] = []

    def decide(t: int, held: np.ndarray, equity: float) -> BarDecision:
        calls.append((t, held.tolist(), equity))
        return BarDecision(np.array(targets[t]), hedged=t == 2, state="reducing" if t == 3 else "active")

    path = simulate(returns, decide, warmup=1, cost=0.001)

    # bar 1: nothing held (cash), equity 1; buy [0.5, 0.5]: turnover 1, cost 0.1 %
    e1 = 1.0 * (1.0 - 0.001 * 1.0)
    # bar 2: earns 0.5 * -0.20 + 0.5 * 0.10 = -0.05; drifted weights [0.40, 0.55] / 0.95;
    # trade to [1, -0.5]: turnover (1 - 0.40/0.95) + (0.5 + 0.55/0.95) = 1.575 / 0.95
    u2 = 1.575 / 0.95
    e2 = e1 * 0.95 * (1.0 - 0.001 * u2)
    # bar 3: earns 1 * 0.05 - 0.5 * 0.05 = 0.025; drifted [1.05, -0.525] / 1.025; sell all
    u3 = 1.575 / 1.025
    e3 = e2 * 1.025 * (1.0 - 0.001 * u3)

    np.testing.assert_allclose(path.equity, [e1, e2, e3], rtol=1e-14)
    np.testing.assert_allclose(path.returns, [e1 - 1.0, e2 / e1 - 1.0, e3 / e2 - 1.0], rtol=1e-12)
    np.testing.assert_allclose(path.turnover, [1.0, u2, u3], rtol=1e-14)
    np.testing.assert_allclose(path.holdings, [[0.5, 0.5], [1.0, -0.5], [0.0, 0.0]])
    np.testing.assert_allclose(path.gross_exposure, [1.0, 1.5, 0.0])
    assert path.hedged.tolist() == [False, True, False]
    assert path.states.tolist() == ["active", "active", "reducing"]
    # the decider sees the weights after the bar's drift and the equity before trading
    assert [c[0] for c in calls] == [0, 1, 2, 3]
    assert calls[0][1:] == ([0.0, 0.0], 1.0)
    np.testing.assert_allclose(calls[2][1], [0.40 / 0.95, 0.55 / 0.95], rtol=1e-14)
    assert calls[2][2] == pytest.approx(e1 * 0.95, rel=1e-14)
    np.testing.assert_allclose(calls[3][1], [1.05 / 1.025, -0.525 / 1.025], rtol=1e-14)


def test_simulate_ruin_and_bad_input() -> None:
    path = simulate(
        np.array([[0.0], [0.0], [-0.6], [0.5]]), lambda t, h, e: BarDecision(np.array([2.0])), warmup=1
    )
    assert path.returns[1] == -1.0  # 200 % long through a -60 % bar
    assert path.returns[2] == 0.0
    assert path.states[2] == "ruined"
    with pytest.raises(InvalidInputError, match="warmup"):
        simulate(np.zeros((3, 1)), lambda t, h, e: BarDecision(np.zeros(1)), warmup=3)
    with pytest.raises(InvalidInputError, match="target"):
        simulate(np.zeros((3, 1)), lambda t, h, e: BarDecision(np.zeros(2)), warmup=0)


def test_vol_target_matches_a_hand_computation() -> None:
    desired = np.array([[0.5, 0.5], [0.5, 0.5], [0.5, 0.5]])
    returns = np.array([[0.02, 0.0], [-0.02, -0.02], [0.04, 0.02]])
    b = book_returns(desired, returns)
    np.testing.assert_allclose(b, [0.01, -0.02, 0.03], rtol=1e-14)
    # EWMA started at the warm-up's mean square (one warm-up bar: 0.01**2), lambda 0.94
    s1 = 0.94 * 1e-4 + 0.06 * 0.01**2
    s2 = 0.94 * s1 + 0.06 * 0.02**2
    s3 = 0.94 * s2 + 0.06 * 0.03**2
    expected = [min(1.0, 0.15 / math.sqrt(252 * s)) for s in (s1, s2, s3)]
    np.testing.assert_allclose(vol_target_exposure(b, warmup=1), expected, rtol=1e-12)
    assert expected[0] == pytest.approx(0.15 / math.sqrt(252e-4))
    # a calm book is capped at 1, a flat one is fully exposed
    np.testing.assert_array_equal(vol_target_exposure(np.full(5, 1e-4), warmup=2), np.ones(5))
    np.testing.assert_array_equal(vol_target_exposure(np.zeros(4), warmup=2), np.ones(4))


def test_paired_bootstrap_identical_series_and_a_clear_winner() -> None:
    a = np.random.default_rng(3).normal(0.0003, 0.01, 750)
    same = paired_sharpe_test(a, a.copy(), reps=200, seed=1)
    assert same.difference == 0.0
    assert same.p_value == 1.0
    assert same.low == same.high == 0.0
    better = paired_sharpe_test(a + 0.002, a, reps=200, seed=1)  # +50 % a year at the same volatility
    assert better.difference > 2.0
    assert better.p_value < 0.05
    assert better.low > 0.0
    again = paired_sharpe_test(a + 0.002, a, reps=200, seed=1)
    assert again == better  # seeded


def test_recovery_and_acceptance_definitions() -> None:
    returns = np.array([0.05, -0.10, -0.10, 0.02, 0.02, 0.02])  # trough at bar 2
    exposure = np.array([1.0, 0.5, 0.2, 0.3, 0.85, 1.0])
    reference = np.array([1.0, 1.0, 0.9, 0.9, 0.9, 0.9])
    assert recovery_bars(returns, exposure, reference) == 2  # 0.85 >= 0.9 * 0.9 two bars after the trough
    assert recovery_bars(returns, np.full(6, 0.1), reference) is None
    assert recovery_bars(np.full(6, 0.01), exposure, reference) == 0

    def m(sharpe: float, dd: float) -> StrategyMetrics:
        return StrategyMetrics(sharpe, 0, 0, 0, dd, 0, 0, 1, 0, 0, 0, 0)

    assert acceptance_passed(m(0.81, 0.13), m(0.70, 0.20), m(0.85, 0.15))
    assert not acceptance_passed(m(0.79, 0.13), m(0.70, 0.20), m(0.85, 0.15))  # > 0.05 below vol target
    assert not acceptance_passed(m(0.80, 0.15), m(0.70, 0.20), m(0.85, 0.15))  # DD above 0.7 x 20 %
    assert not acceptance_passed(m(0.69, 0.10), m(0.70, 0.20), m(0.60, 0.15))  # below unmanaged


def test_manager_decider_passes_desired_weights_and_applies_leverage_and_hedge() -> None:
    seen: list[Any] = []

    def manage_risk_sync(market: Any, portfolio: Any) -> Any:
        seen.append((dict(market.returns), dict(portfolio.weights), portfolio.equity))
        return SimpleNamespace(
            rebalance_weights={"A": 0.6, "B": 0.4, "cash": 0.0},
            leverage=1.5,
            hedge=SimpleNamespace(active=True, ratio=0.2),
            trading_state=SimpleNamespace(value="reducing"),
            degraded=False,
        )

    window = book_window(_tiny_book(rows=40), "test", warmup=10)
    fake: Any = SimpleNamespace(manage_risk_sync=manage_risk_sync)
    decider = ManagerDecider(fake, ("A", "B"), window, pass_held=False)
    d = decider(3, np.array([0.9, 0.3]), 1.07)
    assert seen[0][1] == {"A": 0.5, "B": 0.5}
    assert seen[0][2] == 1.07
    assert seen[0][0] == pytest.approx(dict(zip("AB", window.returns[3], strict=True)))
    np.testing.assert_allclose(d.target, [0.6 * 1.5 * 0.8, 0.4 * 1.5 * 0.8])
    assert d.hedged
    assert d.state == "reducing"
    held = ManagerDecider(fake, ("A", "B"), window, pass_held=True)
    held(3, np.array([0.9, 0.3]), 1.0)
    assert seen[1][1] == {"A": 0.9, "B": 0.3}


def test_real_book_windows_split_at_2013() -> None:
    book = index_book()
    assert book.dates is not None
    train = book_window(book, "train", warmup=300)
    test = book_window(book, "test", warmup=300)
    assert train.dates is not None
    assert test.dates is not None
    assert str(train.dates[-1].date()) < "2013-01-01" <= str(test.dates[0].date())
    assert test.returns.shape[0] == test.bars + 300
    np.testing.assert_array_equal(test.returns[299], book.returns[book.dates.searchsorted(test.dates[0]) - 1])
    quick = book_window(book, "test", warmup=300, max_bars=100)
    assert quick.bars == 100
    assert quick.dates is not None
    assert quick.dates[-1] == book.dates[-1]
    names = [b.name for b in stock_books(seed=0)]
    assert names == [b.name for b in stock_books(seed=0)]
    assert names[0] == "20 stocks EW"
    long_short = stock_books(seed=0)[-1]
    assert long_short.weights.sum() == pytest.approx(1.0)
    assert np.abs(long_short.weights).sum() == pytest.approx(2.0)
    train_seeds = {b.name for b in synthetic_books(3, "train", bars=10)}
    test_seeds = {b.name for b in synthetic_books(3, "test", bars=10)}
    assert not train_seeds & test_seeds
    with pytest.raises(InvalidInputError, match="period"):
        book_window(synthetic_books(1, "train", bars=10)[0], "test")
    fresh = synthetic_books(2, "test", bars=10, first_seed=2000)
    assert [b.name for b in fresh] == ["synthetic seed 2000", "synthetic seed 2001"]
    for split, first in (("test", 999), ("train", 999), ("train", -1), ("test", True)):
        with pytest.raises(InvalidInputError, match="synthetic_seed"):
            synthetic_books(2, split, bars=10, first_seed=first)  # type: ignore[arg-type]


def _tiny_book(rows: int = 90) -> Book:
    rng = np.random.default_rng(5)
    returns = rng.normal(0.0004, 0.012, (rows, 2))
    returns[rows // 2 : rows // 2 + 8] -= 0.03  # a small crash, so the rules have something to do
    prices = np.asarray(50.0 * np.cumprod(1.0 + returns, axis=0), dtype=np.float64)
    return Book("tiny", "tiny book", ("A", "B"), returns, prices, np.array([0.5, 0.5]), split="test")


def test_evaluate_rules_smoke_run_writes_the_report(tmp_path: Path) -> None:
    evaluation = evaluate_rules(books=[_tiny_book()], synthetic_paths=0, warmup=30, reps=50)
    (metrics,) = evaluation.metrics
    (result,) = evaluation.results
    assert metrics.bars == result.bars == 60
    assert metrics.period == "test"
    assert metrics.managed.degraded == 0
    assert evaluation.settings["synthetic_seeds"] == {}  # no synthetic paths: no seed range
    for s in (metrics.managed, metrics.unmanaged, metrics.voltarget):
        assert s.sharpe_low <= s.sharpe <= s.sharpe_high or s.sharpe_low == s.sharpe_high
        assert all(math.isfinite(v) for v in (s.sharpe, s.cagr, s.max_drawdown, s.cvar95, s.turnover))
    # the baselines: the unmanaged book holds the desired weights, the vol target x_t times them
    np.testing.assert_allclose(result.unmanaged.holdings, 0.5)
    window = book_window(_tiny_book(), "test", warmup=30)
    exposure = vol_target_exposure(book_returns(window.desired, window.returns), warmup=30)
    np.testing.assert_allclose(result.voltarget.holdings, 0.5 * exposure[30:, None].repeat(2, axis=1))
    written = evaluation.write(tmp_path / "out")
    assert (tmp_path / "out" / ".gitignore").read_text().strip().endswith("*")
    report = json.loads(written["json"].read_text())
    assert report["books"][0]["book"] == "tiny book"
    assert report["config"]["deterministic_refits"] is True
    assert "tiny book" in written["markdown"].read_text()
    assert written["png"].stat().st_size > 10_000
    assert evaluation.summary() == [f"test: acceptance passed on {int(metrics.passed)}/1 real books"]


def test_fresh_synthetic_test_seeds() -> None:
    evaluation = evaluate_rules(
        books=[], synthetic_paths=1, synthetic_bars=40, warmup=30, reps=20, synthetic_test_seed=2000
    )
    assert [m.book for m in evaluation.metrics] == ["synthetic seed 2000"]
    assert evaluation.settings["synthetic_seeds"] == {"test": [2000, 2000]}
    with pytest.raises(InvalidInputError, match="synthetic_seed"):
        evaluate_rules(books=[], synthetic_paths=1, synthetic_bars=40, warmup=30, synthetic_test_seed=5)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--period", "later"], "invalid choice"),
        (["--books", "none", "--synthetic", "-1"], "synthetic_paths"),
        (["--books", "stocks21", "--synthetic", "0"], "books"),
        (["--books", "none", "--synthetic", "0"], "nothing to evaluate"),
        (["--synthetic", "1", "--risk-agents", "no/such.armodel"], "risk_agents: model file not found"),
        (["--prices", "no/such.csv"], "prices: cannot read"),
        (["--weights", "1,2"], "weights: --weights needs --prices"),
        (["--synthetic", "1", "--risk-agents", "GARBAGE"], "risk_agents: "),
    ],
)
def test_cli_bad_input_exits_2_with_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    garbage = tmp_path / "garbage.armodel"
    garbage.write_bytes(b"not a model")
    argv = [str(garbage) if a == "GARBAGE" else a for a in argv]
    try:
        code = main(["evaluate-rules", "--out", str(tmp_path / "x"), *argv])
    except SystemExit as exc:
        code = int(exc.code or 0)
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert message in err
    assert "\n" not in err
    assert not (tmp_path / "x").exists()


def _closes_csv(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_a_csv_book_drops_rows_before_every_asset_has_a_close_and_carries_gaps(tmp_path: Path) -> None:
    """Asset B lists on the second date; C misses a print on the fourth: the book starts on the
    second date and C's missing close earns 0 (pandas' own pct_change of the filled frame)."""
    text = "date,A,B,C\n2020-01-01,10,,5\n2020-01-02,11,20,5.5\n2020-01-03,12,21,6\n2020-01-06,12.5,22,\n"
    text += "2020-01-07,12,23,6.6\n"
    book = csv_book(_closes_csv(tmp_path / "own.csv", text), [1.0, 0.5, -0.5])
    assert (book.assets, book.key, book.name) == (("A", "B", "C"), "csv", "own")
    closes = np.array([[11, 20, 5.5], [12, 21, 6], [12.5, 22, 6], [12, 23, 6.6]])
    np.testing.assert_allclose(book.returns, closes[1:] / closes[:-1] - 1.0, rtol=1e-15)
    np.testing.assert_array_equal(book.prices, closes[1:])
    assert [str(d.date()) for d in book.dates] == ["2020-01-03", "2020-01-06", "2020-01-07"]
    np.testing.assert_array_equal(book.weights, [1.0, 0.5, -0.5])
    assert csv_book(tmp_path / "own.csv").weights.tolist() == [1 / 3] * 3  # equal weight by default


@pytest.mark.parametrize(
    ("text", "weights", "field"),
    [
        ("date,A\n2020-01-01,10\n2020-01-02,0\n2020-01-03,12\n2020-01-04,12\n", None, "prices"),
        ("date,A\n2020-01-01,10\n2020-01-02,abc\n2020-01-03,12\n2020-01-04,12\n", None, "prices"),
        ("date,A\n2020-01-01,10\n2020-01-02,11\n", None, "prices"),  # too few rows
        ("date,A,B\n2020-01-01,10,1\n2020-01-02,11,1\n2020-01-03,12,1\n", [1.0], "weights"),
        ("date,A,B\n2020-01-01,10,1\n2020-01-02,11,1\n2020-01-03,12,1\n", [1.0, float("nan")], "weights"),
        ("date,A,B\n2020-01-01,10,1\n2020-01-02,11,1\n2020-01-03,12,1\n", [0.0, 0.0], "weights"),
        ("date,A\n2020-01-01,10\n2020-01-02,11\n2020-01-02,12\n2020-01-03,12\n", None, "prices"),
        ("date,A\n2020-01-01,10\n2020-01-02,1e-300\n2020-01-03,12\n2020-01-06,12\n", None, "prices"),
    ],
    ids=[
        "zero-close",
        "text-close",
        "too-short",
        "weights-length",
        "weights-nan",
        "weights-zero",
        "duplicate-date",
        "tiny-close",
    ],
)
def test_a_bad_csv_book_raises_naming_the_field(
    tmp_path: Path, text: str, weights: list[float] | None, field: str
) -> None:
    with pytest.raises(InvalidInputError, match=f"^{field}:"):
        csv_book(_closes_csv(tmp_path / "bad.csv", text), weights)


def test_a_csv_book_names_the_column_and_date_of_an_impossible_move(tmp_path: Path) -> None:
    text = "date,A,B\n2020-01-01,10,1\n2020-01-02,11,1\n2020-01-03,11,1e-300\n2020-01-06,12,1\n"
    with pytest.raises(InvalidInputError, match="column B moves from 1 to 1e-300 on 2020-01-03"):
        csv_book(_closes_csv(tmp_path / "bad.csv", text))
    with pytest.raises(InvalidInputError, match="duplicate date 2020-01-02"):
        csv_book(_closes_csv(tmp_path / "dup.csv", "date,A\n2020-01-01,1\n2020-01-02,2\n2020-01-02,3\n"))


def test_the_command_line_refuses_an_unknown_command_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["bogus"])
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2
    assert "invalid choice: 'bogus'" in err
    assert "\n" not in err


def test_the_cli_evaluates_a_bots_own_csv_of_closes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--prices alone: only that book, no synthetic path, every bar after the warm-up a test bar."""
    closes = np.exp(np.cumsum(np.random.default_rng(3).normal(0.0003, 0.01, (420, 2)), axis=0)) * 100
    dates = np.datetime64("2001-01-01") + np.arange(420)
    lines = ["date,X,Y", *(f"{d},{a:.6f},{b:.6f}" for d, (a, b) in zip(dates, closes, strict=True))]
    csv = _closes_csv(tmp_path / "mine.csv", "\n".join(lines) + "\n")
    out = tmp_path / "out"
    code = main(
        ["evaluate-rules", "--prices", str(csv), "--weights", "1.2,-0.2", "--out", str(out), "--jobs", "1"]
    )
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    assert [(b["book"], b["key"], b["period"]) for b in report["books"]] == [("mine", "csv", "test")]
    assert report["books"][0]["bars"] == 419 - 300  # 420 closes, 419 returns, 300 warm-up bars
    assert "mine" in capsys.readouterr().out


@pytest.mark.parametrize("where", ["under_a_file", "a_file"])
def test_cli_an_unwritable_out_fails_before_any_evaluation(
    where: str, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import advanced_risk.evaluation.rules as rules

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("evaluate_rules ran before --out was checked")

    monkeypatch.setattr(rules, "evaluate_rules", never)
    (tmp_path / "f").write_text("a file")
    out = tmp_path / "f" / "x" if where == "under_a_file" else tmp_path / "f"
    code = main(["evaluate-rules", "--out", str(out), "--books", "stocks20"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert "out: cannot create directory" in err
    assert "\n" not in err
    assert (tmp_path / "f").read_text() == "a file"


def test_the_policy_book_finds_the_shipped_policy_of_a_source_checkout() -> None:
    """The default path is the checkout's models/ folder (it pointed into src/ after a move)."""
    from advanced_risk.evaluation.rules.books import DEFAULT_POLICY, policy_book

    assert Path(__file__).resolve().parents[2] / "models" / "ppo_sp500_2012.armodel" == DEFAULT_POLICY
    book = policy_book()
    assert book.key == "policy"
    assert Path(book.policy or "").is_file()
