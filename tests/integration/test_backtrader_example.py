"""A real backtest drives ``manage_risk_sync``: examples/backtrader_one_instrument.py on the S&P 500 index.

Issue 10 acceptance: backtrader replays 5,000 daily bars of one instrument through the example's
strategy, which calls the risk manager once per bar and trades from its decisions. Every decision is
final (none degraded), entries are sized by ``position_sizes`` and protected by a stop at
``stop_levels`` on the right side of the price, stops trail and get hit, and VaR is finite once the
tracker is warm.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from types import ModuleType

import pytest

from ..conftest import require

require("backtrader")

BARS = 5_000
WARM = 260  # the tracker's 250-bar window, and a margin


@pytest.fixture(scope="module")
def example(load_example: Callable[[str], ModuleType]) -> ModuleType:
    return load_example("backtrader_one_instrument")


@pytest.fixture(scope="module")
def long_run(example: ModuleType) -> tuple[object, object]:
    """The long/flat strategy over the first 5,000 bars (one run shared by the tests below)."""
    return example.run_backtest(BARS)


def test_every_bar_gets_a_decision_and_none_is_degraded(long_run: tuple) -> None:
    stats, df = long_run
    assert len(df) == BARS
    assert len(stats.decisions) == BARS
    assert stats.degraded == 0, [d.alerts for d in stats.decisions if d.degraded][:3]
    assert len(stats.equity) == BARS


def test_var_and_cvar_are_finite_once_warm(long_run: tuple) -> None:
    stats, _ = long_run
    bad = [i for i, d in enumerate(stats.decisions) if i >= WARM and not math.isfinite(d.var)]
    assert not bad, bad[:5]
    assert all(math.isfinite(d.cvar) and d.cvar >= d.var >= 0.0 for d in stats.decisions[WARM:])


def test_entries_are_sized_by_the_decision_and_stopped_below_the_price(long_run: tuple) -> None:
    stats, _ = long_run
    assert len(stats.entries) >= 5
    for entry in stats.entries:
        assert entry.side == 1
        assert entry.size >= 1
        assert entry.decided_size > 0
        assert entry.size <= entry.decided_size  # the risk budget at the ATR stop is a cap
        assert math.isfinite(entry.stop)
        assert 0 < entry.stop < entry.close
    filled = [e for e in stats.entries if math.isfinite(e.fill)]
    assert len(filled) >= len(stats.entries) - 1  # only an order on the last bar may be unfilled
    assert all(e.stop < e.fill for e in filled)


def test_stops_are_placed_trailed_and_hit(long_run: tuple) -> None:
    stats, _ = long_run
    assert stats.stop_orders > len(stats.entries)  # each entry's stop, then trailing updates
    assert stats.stop_exits >= 1
    closed = stats.stop_exits + stats.signal_exits + stats.halt_exits
    assert len(stats.entries) - 1 <= closed <= len(stats.entries)


def test_short_variant_places_stops_above_the_price(example: ModuleType) -> None:
    """With ``short=True`` (1,500 bars, through the 2000-2002 bear market) shorts are entered too."""
    stats, _ = example.run_backtest(1_500, short=True)
    assert stats.degraded == 0
    shorts = [e for e in stats.entries if e.side == -1]
    assert len(shorts) >= 2
    for entry in shorts:
        assert entry.size >= 1
        assert entry.size <= entry.decided_size
        assert math.isfinite(entry.stop)
        assert entry.stop > entry.close
        if math.isfinite(entry.fill):
            assert entry.stop > entry.fill
    assert stats.stop_exits >= 1


def test_main_prints_the_summary(example: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    example.main(["--bars", "300"])
    out = capsys.readouterr().out
    for label in ("bars", "degraded decisions", "entries", "final value", "max drawdown", "buy-and-hold"):
        assert label in out
    assert "degraded decisions              0" in out
