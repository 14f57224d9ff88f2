"""``MarketState.from_arrays`` keeps the arrays (``ArrayMapping``): read as dicts, parsed without one.

The fields must read exactly as the dicts they stand for (the public contract of ``MarketState``),
must not follow later writes to the bot's own arrays, and the engine must parse a bar given as
arrays to the same ``Bar`` as the same bar given as dicts, in the universe's order or another.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from advanced_risk.engine.inputs import parse_inputs
from advanced_risk.errors import InvalidInputError
from advanced_risk.types import ArrayMapping, MarketState, Portfolio

NAMES = ("AAA", "BBB", "CCC")


def test_a_field_reads_as_the_dict_it_stands_for() -> None:
    r = np.array([0.01, -0.02, 0.0])
    m = MarketState.from_arrays(NAMES, returns=r)
    d = dict(zip(NAMES, r.tolist(), strict=True))
    assert isinstance(m.returns, ArrayMapping)
    assert m.returns == d
    assert d == m.returns
    assert list(m.returns) == list(NAMES)
    assert list(m.returns.items()) == list(d.items())
    assert list(m.returns.values()) == list(d.values())
    assert m.returns.keys() == d.keys()
    assert len(m.returns) == 3
    assert "BBB" in m.returns
    assert "ZZZ" not in m.returns
    assert type(m.returns["BBB"]) is float
    assert m.returns.get("ZZZ") is None
    with pytest.raises(KeyError):
        _ = m.returns["ZZZ"]
    assert repr(m.returns) == repr(d)
    assert m == MarketState(returns=d)
    assert MarketState(returns=d) == m


def test_the_state_does_not_follow_later_writes_to_the_bots_array() -> None:
    r = np.array([0.01, -0.02, 0.0])
    m = MarketState.from_arrays(NAMES, returns=r)
    r[:] = 0.5  # the bot refills its buffer for the next bar
    assert m.returns["AAA"] == 0.01
    with pytest.raises(ValueError, match="read-only"):
        m.returns.array[0] = 0.3


def test_names_and_values_of_other_lengths_are_refused() -> None:
    with pytest.raises(InvalidInputError):
        ArrayMapping(NAMES, np.zeros(2))


def _book(names: tuple[str, ...]) -> Portfolio:
    return Portfolio(weights=dict.fromkeys(names, 1.0 / len(names)))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(-0.5, 0.5), min_size=3, max_size=3),
    st.lists(st.floats(1.0, 500.0), min_size=3, max_size=3),
    st.permutations(range(3)),
)
def test_a_bar_as_arrays_parses_to_the_bar_as_dicts_in_any_order(
    returns: list[float], prices: list[float], order: list[int]
) -> None:
    names = tuple(NAMES[i] for i in order)  # the bar's order; the universe stays NAMES
    r, p = np.array([returns[i] for i in order]), np.array([prices[i] for i in order])
    as_arrays = MarketState.from_arrays(names, returns=r, prices=p)
    as_dicts = MarketState(
        returns=dict(zip(names, r.tolist(), strict=True)), prices=dict(zip(names, p.tolist(), strict=True))
    )
    a = parse_inputs(as_arrays, _book(NAMES), NAMES)
    d = parse_inputs(as_dicts, _book(NAMES), NAMES)
    assert a.assets == d.assets == NAMES
    for field in ("returns", "prices", "held"):
        got, want = getattr(a, field), getattr(d, field)
        assert np.array_equal(got, want)
        assert got.flags.writeable  # the engine may work in place on its own copy
    assert a.returns is not as_arrays.returns.array


def test_a_bar_whose_returns_and_prices_name_other_assets_is_refused() -> None:
    market = MarketState.from_arrays(NAMES, returns=np.zeros(3))
    other = MarketState.from_arrays(("AAA", "BBB", "DDD"), prices=np.ones(3))
    mixed = MarketState(returns=market.returns, prices=other.prices)
    with pytest.raises(InvalidInputError, match="same assets"):
        parse_inputs(mixed, _book(NAMES), NAMES)


def test_the_rest_of_the_mappingproxy_surface_gives_dicts() -> None:
    r = np.array([0.01, -0.02, 0.0])
    m = MarketState.from_arrays(NAMES, returns=r).returns
    d = MarketState(returns=dict(zip(NAMES, r.tolist(), strict=True))).returns  # the dict form
    assert m.copy() == d.copy()
    assert type(m.copy()) is dict
    assert m | {"DDD": 1.0} == d | {"DDD": 1.0}
    assert {"DDD": 1.0} | m == {"DDD": 1.0} | d
    assert list(reversed(m)) == list(reversed(d))
    assert {**m} == dict(d)


def test_a_copied_or_unpickled_mapping_is_equal_and_read_only() -> None:
    import copy
    import pickle

    m = MarketState.from_arrays(NAMES, returns=np.array([0.01, -0.02, 0.0])).returns
    for other in (copy.deepcopy(m), copy.copy(m), pickle.loads(pickle.dumps(m))):
        assert other == m
        assert not other.array.flags.writeable


def test_numpy_string_names_become_plain_str_on_both_entry_points() -> None:
    from advanced_risk import AdvancedRiskManager, RiskConfig

    names = np.array(["AAA", "BBB"])  # np.str_ elements, as rng.permutation of names gives
    risk = AdvancedRiskManager(RiskConfig(rate_limit_per_s=None))
    try:
        as_dicts = risk.manage_risk_sync(
            MarketState(returns={names[0]: 0.01, names[1]: -0.01}, prices={names[0]: 10.0, names[1]: 20.0}),
            Portfolio(weights={names[0]: 0.5, names[1]: 0.5}),
        )  # used to decide, then fail to encode its journal row (orjson takes plain str keys only)
        as_arrays = risk.manage_risk_arrays_sync(
            names,
            Portfolio(weights=dict.fromkeys(names, 0.5)),
            returns=np.array([0.02, 0.0]),
            prices=np.array([10.2, 20.0]),
        )  # used to be refused: np.str_ is not str
    finally:
        risk.close_sync()
    for decision in (as_dicts, as_arrays):
        assert not decision.degraded
        assert all(type(name) is str for name in decision.rebalance_weights)
        assert decision.to_json()


def test_a_portfolio_from_arrays_equals_the_dict_form_and_refuses_alike() -> None:
    w = np.array([0.5, -0.25, 0.0])
    book = Portfolio.from_arrays(NAMES, w, current_drawdown=0.1, equity=2e6, peak_equity=2.5e6)
    same = Portfolio(
        weights=dict(zip(NAMES, w.tolist(), strict=True)), current_drawdown=0.1, equity=2e6, peak_equity=2.5e6
    )
    assert book == same
    assert same == book
    assert book.cash_weight == same.cash_weight
    assert isinstance(book.weights, ArrayMapping)
    for bad in (np.nan, np.inf, 1e9):
        values = w.copy()
        values[1] = bad
        with pytest.raises(InvalidInputError) as from_arrays:
            Portfolio.from_arrays(NAMES, values)
        with pytest.raises(InvalidInputError) as from_dict:
            Portfolio(weights=dict(zip(NAMES, values.tolist(), strict=True)))
        assert str(from_arrays.value) == str(from_dict.value)
    with pytest.raises(InvalidInputError, match=r"portfolio.weights must have shape \(3,\)"):
        Portfolio.from_arrays(NAMES, np.zeros(2))
    with pytest.raises(InvalidInputError, match="portfolio assets must be unique"):
        Portfolio.from_arrays(("A", "A"), np.zeros(2))
    with pytest.raises(InvalidInputError, match="peak_equity"):
        Portfolio.from_arrays(NAMES, w, equity=2.0, peak_equity=1.0)


def test_books_as_arrays_decide_as_books_as_dicts_through_a_run() -> None:
    from advanced_risk import AdvancedRiskManager, RiskConfig
    from advanced_risk.data import load_sp500_stocks

    closes = load_sp500_stocks().iloc[:120, :6]
    assets = tuple(closes.columns)
    px = closes.to_numpy()
    rets = px[1:] / px[:-1] - 1.0
    config = RiskConfig(deadline_ms=5_000.0, rate_limit_per_s=None, deterministic_refits=True)
    arrays, dicts = AdvancedRiskManager(config), AdvancedRiskManager(config)
    held = np.full(len(assets), 1.0 / len(assets))
    try:
        for t in range(rets.shape[0]):
            held[t % len(assets)] = -0.1  # a short that moves around the book
            a = arrays.manage_risk_arrays_sync(
                assets, Portfolio.from_arrays(assets, held, equity=1e6), returns=rets[t], prices=px[t + 1]
            )
            d = dicts.manage_risk_sync(
                MarketState(
                    returns=dict(zip(assets, rets[t].tolist(), strict=True)),
                    prices=dict(zip(assets, px[t + 1].tolist(), strict=True)),
                ),
                Portfolio(weights=dict(zip(assets, held.tolist(), strict=True)), equity=1e6),
            )
            ja, jd = json.loads(a.to_json()), json.loads(d.to_json())
            for row in (ja, jd):
                del row["decision_id"], row["latency_ms"]
            assert ja == jd, t
    finally:
        arrays.close_sync()
        dicts.close_sync()


def test_a_book_as_arrays_follows_a_changing_universe_as_the_dict_form() -> None:
    from advanced_risk import AdvancedRiskManager, RiskConfig

    config = RiskConfig(deadline_ms=5_000.0, rate_limit_per_s=None)
    rng = np.random.default_rng(7)
    steps = [  # (the bar's assets, the book's assets in its own order, its weights)
        (("A", "B", "C"), ("A", "B", "C"), [0.3, 0.3, 0.3]),
        (("A", "B", "C", "D"), ("D", "C", "B", "A"), [0.1, 0.2, 0.3, 0.3]),  # D joins; another order
        (("A", "B", "C", "D"), ("A", "B"), [0.5, 0.4]),  # a book smaller than the bar
        (("B", "C", "D"), ("B", "C", "D", "A"), [0.3, 0.3, 0.3, 0.0]),  # A leaves, flat
    ]
    arrays, dicts = AdvancedRiskManager(config), AdvancedRiskManager(config)
    try:
        for assets, book_assets, weights in steps:
            r = rng.normal(0.0, 0.01, len(assets))
            w = np.array(weights)
            a = arrays.manage_risk_arrays_sync(
                assets, Portfolio.from_arrays(book_assets, w, equity=1e6), returns=r, prices=100 * (1 + r)
            )
            d = dicts.manage_risk_sync(
                MarketState(
                    returns=dict(zip(assets, r.tolist(), strict=True)),
                    prices=dict(zip(assets, (100 * (1 + r)).tolist(), strict=True)),
                ),
                Portfolio(weights=dict(zip(book_assets, w.tolist(), strict=True)), equity=1e6),
            )
            ja, jd = json.loads(a.to_json()), json.loads(d.to_json())
            for row in (ja, jd):
                del row["decision_id"], row["latency_ms"]
            assert ja == jd, assets
        r = np.zeros(2)  # C leaves while held: both forms refuse it with the same message
        with pytest.raises(InvalidInputError) as from_arrays:
            arrays.manage_risk_arrays_sync(
                ("B", "D"), Portfolio.from_arrays(("B", "C", "D"), np.array([0.3, 0.3, 0.3])), returns=r
            )
        with pytest.raises(InvalidInputError) as from_dicts:
            dicts.manage_risk_sync(
                MarketState(returns={"B": 0.0, "D": 0.0}), Portfolio(weights={"B": 0.3, "C": 0.3, "D": 0.3})
            )
        assert str(from_arrays.value) == str(from_dicts.value)
    finally:
        arrays.close_sync()
        dicts.close_sync()


@pytest.mark.parametrize("bad", [True, None, "x", 1 + 2j])
def test_a_sequence_with_a_non_number_is_refused_as_the_dict_form_refuses_it(bad: object) -> None:
    import pandas as pd

    values = [0.01, bad, 0.02]
    with pytest.raises(InvalidInputError) as from_dict:
        MarketState(returns=dict(zip(NAMES, values, strict=True)))
    for container in (list, tuple, lambda v: pd.Series(v, dtype=object)):
        with pytest.raises(InvalidInputError) as from_arrays:
            MarketState.from_arrays(NAMES, returns=container(values))  # True used to read as 1.0
        assert str(from_arrays.value) == str(from_dict.value)
    with pytest.raises(InvalidInputError, match=r"portfolio.weights\['BBB'\] must be a real number"):
        Portfolio.from_arrays(NAMES, values)
