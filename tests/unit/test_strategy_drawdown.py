"""StrategyDrawdown: the reference book's drawdown, checked against hand computations."""

from __future__ import annotations

import numpy as np
import pytest

from advanced_risk.errors import InvalidInputError
from advanced_risk.risk.strategy_drawdown import StrategyDrawdown


def test_the_reference_book_earns_the_weights_set_at_the_previous_bar() -> None:
    dd = StrategyDrawdown(window=None)
    assert dd.update(np.array([0.1, 0.1])) == 0.0  # no weights yet: earns nothing
    dd.set_weights(np.array([0.5, 0.5]))
    assert dd.update(np.array([0.10, -0.10])) == 0.0  # 0.5 * 0.1 - 0.5 * 0.1 = 0
    dd.set_weights(np.array([1.0, 0.0]))
    assert dd.update(np.array([-0.20, 0.5])) == pytest.approx(0.20)  # equity 1 -> 0.8
    dd.set_weights(np.array([2.0, 0.0]))
    # 0.8 * (1 + 2 * 0.1) = 0.96: drawdown 4 %
    assert dd.update(np.array([0.10, 0.0])) == pytest.approx(0.04)


def test_the_high_water_mark_rolls_with_the_window() -> None:
    dd = StrategyDrawdown(window=3)
    dd.set_weights(np.array([1.0]))
    for r in (0.0, -0.5, 0.0, 0.0):  # the peak (1.0) leaves the 3-bar window after 3 more bars
        dd.update(np.array([r]))
    assert dd.drawdown == 0.0


def test_a_restart_is_seeded_with_the_accounts_drawdown_and_a_ruin_floors_at_one() -> None:
    dd = StrategyDrawdown(window=252, initial_drawdown=0.3)
    assert dd.drawdown == pytest.approx(0.3)
    dd.set_weights(np.array([3.0]))
    assert dd.update(np.array([-0.5])) == pytest.approx(1.0)  # a -150 % bar: equity floored


def test_a_universe_change_keeps_the_weights_of_the_assets_that_stay() -> None:
    dd = StrategyDrawdown()
    dd.set_weights(np.array([0.1, 0.2, 0.3]))
    dd.reshape([1], 2)
    np.testing.assert_array_equal(dd.weights, [0.1, 0.3, 0.0, 0.0])


def test_nan_weights_and_returns_count_as_zero_and_bad_settings_are_refused() -> None:
    dd = StrategyDrawdown(window=None)
    dd.set_weights(np.array([np.nan, 1.0]))
    assert dd.update(np.array([0.5, np.nan])) == 0.0
    with pytest.raises(InvalidInputError, match="initial_drawdown"):
        StrategyDrawdown(initial_drawdown=1.5)
    with pytest.raises(InvalidInputError, match="window"):
        StrategyDrawdown(window=0)
