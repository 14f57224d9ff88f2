"""Adversarial checks of ``MarketState.from_arrays`` (``ArrayMapping``) against the dict form.

A market state built from arrays must read exactly as the one built from the same values as dicts
(the views ``keys()``/``values()``/``items()`` included: reversible, as ``dict_keys`` & co.), ``|``
must refuse what the dict form's mappingproxy refuses, a ragged array must be refused with
``InvalidInputError``, and ``manage_risk_arrays(_sync)`` must decide bit-identically to
``manage_risk(_sync)`` through universe changes, partial bars, refilled buffers, restarts and
value containers of every kind a bot may pass.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from advanced_risk import AdvancedRiskManager, RiskConfig
from advanced_risk.errors import InvalidInputError
from advanced_risk.types import MarketState, Portfolio, RiskDecision

NAMES = ("AAA", "BBB", "CCC")
FIELDS = ("returns", "prices", "high", "low")
Bar = tuple[Any, Portfolio, dict[str, Any]]


def _pair() -> tuple[MarketState, MarketState]:
    r, p = np.array([0.01, -0.02, 0.0]), np.array([10.0, 20.0, 30.0])
    a = MarketState.from_arrays(NAMES, returns=r, prices=p, high=p * 1.1, low=p * 0.9)
    d = MarketState(
        returns=dict(zip(NAMES, r.tolist(), strict=True)),
        prices=dict(zip(NAMES, p.tolist(), strict=True)),
        high=dict(zip(NAMES, (p * 1.1).tolist(), strict=True)),
        low=dict(zip(NAMES, (p * 0.9).tolist(), strict=True)),
    )
    return a, d


@pytest.mark.parametrize("field", FIELDS)
def test_the_views_read_as_the_dict_forms(field: str) -> None:
    a, d = (getattr(s, field) for s in _pair())
    for view in ("keys", "values", "items"):
        got, want = getattr(a, view)(), getattr(d, view)()
        assert repr(got) == repr(want)
        assert list(reversed(got)) == list(reversed(want))  # dict views are reversible
        assert list(got) == list(want)
    assert a.keys() == d.keys()
    assert a.items() == d.items()
    assert a.keys() & {"BBB", "ZZZ"} == {"BBB"}
    assert dict(a.keys().mapping) == dict(d.keys().mapping)
    assert a == d
    assert d == a
    assert str(a) == str(d)
    assert a.get("ZZZ", 5.0) == d.get("ZZZ", 5.0) == 5.0
    assert [k in a for k in (*NAMES, "ZZZ", "")] == [k in d for k in (*NAMES, "ZZZ", "")]
    assert {**a} == {**d}
    assert dict(a) == dict(d)
    assert list(dict(a)) == list(dict(d))


def test_the_states_are_equal_both_ways() -> None:
    a, d = _pair()
    assert a == d
    assert d == a
    assert not a != d  # noqa: SIM202
    assert str(a.returns) == str(d.returns)


@pytest.mark.parametrize("other", [[("DDD", 1.0)], (("DDD", 1.0),), 3, "x"])
def test_or_refuses_what_the_dict_form_refuses(other: Any) -> None:
    a, d = (s.returns for s in _pair())
    for m in (a, d):
        with pytest.raises(TypeError):
            _ = m | other
        with pytest.raises(TypeError):
            _ = other | m


def test_or_with_mappings_as_the_dict_form() -> None:
    a, d = (s.returns for s in _pair())
    for other in ({"DDD": 1.0, "AAA": 2.0}, d, a):
        assert a | other == d | other
        assert list(a | other) == list(d | other)
        assert other | a == other | d
        assert list(other | a) == list(other | d)


def test_in_place_or_is_refused_as_by_the_dict_form() -> None:
    a, d = (s.returns for s in _pair())
    for m in (a, d):
        x = m
        with pytest.raises(TypeError):
            x |= {"DDD": 1.0}
        assert x is m


@pytest.mark.parametrize("field", FIELDS)
@pytest.mark.parametrize("ragged", [[0.01, [0.1], 0.01], [0.01, (0.1, 0.2), 0.01], [[1.0], [2.0, 3.0], 4.0]])
def test_a_ragged_sequence_is_refused_as_invalid_input(field: str, ragged: list[Any]) -> None:
    with pytest.raises(InvalidInputError, match=f"market_state.{field}"):
        MarketState.from_arrays(NAMES, **{field: ragged})


_BAD = [("returns", x) for x in (np.nan, np.inf, -np.inf, -1.0, -2.0)] + [
    (f, x) for f in ("prices", "high", "low") for x in (np.nan, np.inf, -np.inf, -1.0, 0.0, 1e300)
]


@pytest.mark.parametrize(("field", "bad"), _BAD)
def test_a_bad_value_is_refused_with_the_dict_forms_message(field: str, bad: float) -> None:
    good = 0.01 if field == "returns" else 10.0
    vals = [good, bad, good]
    with pytest.raises(InvalidInputError) as as_dict:
        MarketState(**{field: dict(zip(NAMES, vals, strict=True))})
    containers: list[Any] = [np.array(vals), vals, tuple(vals), pd.Series(vals, index=NAMES)]
    if bad != 1e300:  # float32 would make it inf
        containers.append(np.array(vals, dtype=np.float32))
    for container in containers:
        with pytest.raises(InvalidInputError) as as_arrays:
            MarketState.from_arrays(NAMES, **{field: container})
        assert str(as_arrays.value) == str(as_dict.value)
        assert f"market_state.{field}['BBB']" in str(as_arrays.value)


# -- decisions ---------------------------------------------------------------------------------------
def _config(**kw: Any) -> RiskConfig:
    return RiskConfig(deadline_ms=5_000.0, rate_limit_per_s=None, deterministic_refits=True, **kw)


def _row(decision: RiskDecision) -> dict[str, Any]:
    row: dict[str, Any] = json.loads(decision.to_json())
    del row["decision_id"], row["latency_ms"]
    return row


def _as_dicts(names: Any, kw: dict[str, Any]) -> MarketState:
    fields = {
        k: dict(zip(tuple(names), np.asarray(v, dtype=np.float64).tolist(), strict=True))
        if k in FIELDS
        else v
        for k, v in kw.items()
    }
    return MarketState(**fields)


def _run(bars: list[Bar], mode: str, config: RiskConfig | None = None) -> list[Any]:
    risk = AdvancedRiskManager(config or _config())
    out: list[Any] = []

    def one(decide: Any) -> None:
        try:
            out.append(_row(decide()))
        except InvalidInputError as exc:
            out.append(("refused", str(exc)))

    if mode.endswith("async"):

        async def go() -> None:
            for names, book, kw in bars:
                try:
                    if mode == "arrays_async":
                        d = await risk.manage_risk_arrays(names, book, **kw)
                    else:
                        d = await risk.manage_risk(_as_dicts(names, kw), book)
                    out.append(_row(d))
                except InvalidInputError as exc:
                    out.append(("refused", str(exc)))
            await risk.close()

        asyncio.run(go())
        return out
    for names, book, kw in bars:
        if mode == "arrays_sync":
            one(lambda n=names, b=book, k=kw: risk.manage_risk_arrays_sync(n, b, **k))
        else:
            one(lambda n=names, b=book, k=kw: risk.manage_risk_sync(_as_dicts(n, k), b))
    risk.close_sync()
    return out


def _scenario(seed: int, bars: int = 60, pool_n: int = 8) -> list[Bar]:
    """Assets joining, leaving (closed the bar before) and reordering; bars with prices only,
    returns only, and high/low."""
    rng = np.random.default_rng(seed)
    pool = [f"A{i}" for i in range(pool_n)]
    names: tuple[str, ...] = tuple(pool[:4])
    px = dict.fromkeys(pool, 100.0)
    seq = []
    for t in range(bars + 1):
        if t % 17 == 16:
            names = tuple(str(x) for x in rng.permutation(pool)[: int(rng.integers(1, pool_n))])
        elif t % 11 == 10:
            names = tuple(str(x) for x in rng.permutation(names))
        seq.append(names)
    out: list[Bar] = []
    for t in range(bars):
        names, nxt = seq[t], set(seq[t + 1])
        r = rng.normal(0, 0.02, len(names))
        for a, x in zip(names, r, strict=True):
            px[a] *= 1 + x
        p = np.array([px[a] for a in names])
        book = Portfolio(
            weights={a: (0.8 / len(names) if a in nxt else 0.0) for a in names}, equity=1e6 * (1 + 0.001 * t)
        )
        kw: dict[str, Any] = {
            3: {"prices": p},
            4: {"returns": r},
            5: {"returns": r, "prices": p, "high": p * 1.01, "low": p * 0.99},
        }.get(t % 7, {"returns": r, "prices": p})
        if t % 13 == 12:  # a bad value: refused by both, naming the field and asset
            kw = {**kw, "prices": np.where(np.arange(len(names)) == 0, np.nan, p)}
        out.append((names, book, kw))
    return out


@pytest.fixture(scope="module")
def scenario() -> list[Bar]:
    return _scenario(3)


@pytest.fixture(scope="module")
def reference(scenario: list[Bar]) -> list[Any]:
    rows = _run(scenario, "dict_sync")
    assert sum(isinstance(r, tuple) for r in rows) >= 2  # the NaN bars were refused
    assert sum(isinstance(r, dict) for r in rows) > 40
    return rows


@pytest.mark.parametrize("mode", ["arrays_sync", "arrays_async", "dict_async"])
def test_entry_points_decide_alike_through_universe_changes(
    scenario: list[Bar], reference: list[Any], mode: str
) -> None:
    assert _run(scenario, mode) == reference


_CONTAINERS = {
    "list": lambda v: v.tolist(),
    "tuple": lambda v: tuple(v.tolist()),
    "series": lambda v: pd.Series(v),
    "non_contiguous": lambda v: np.repeat(v, 2)[::2],
    "negative_stride": lambda v: v[::-1].copy()[::-1],
    "fortran_column": lambda v: np.asfortranarray(np.stack([v, v], 1))[:, 0],
}


@pytest.mark.parametrize("container", sorted(_CONTAINERS))
def test_any_container_decides_as_the_array(
    scenario: list[Bar], reference: list[Any], container: str
) -> None:
    f = _CONTAINERS[container]
    bars = [
        (n, b, {k: f(v) if isinstance(v, np.ndarray) else v for k, v in kw.items()}) for n, b, kw in scenario
    ]
    assert _run(bars, "arrays_sync") == reference


def test_names_as_a_new_tuple_or_a_list_each_bar(scenario: list[Bar], reference: list[Any]) -> None:
    assert _run([(tuple(list(n)), b, kw) for n, b, kw in scenario], "arrays_sync") == reference
    assert _run([(list(n), b, kw) for n, b, kw in scenario], "arrays_sync") == reference


def test_float32_and_int_arrays_decide_as_their_values_as_dicts() -> None:
    bars = _scenario(11, bars=30)
    f32 = [
        (n, b, {k: v.astype(np.float32) if isinstance(v, np.ndarray) else v for k, v in kw.items()})
        for n, b, kw in bars
    ]
    assert _run(f32, "arrays_sync") == _run(f32, "dict_sync")
    ints = [
        (n, b, {k: np.rint(v).astype(np.int64) for k, v in kw.items() if k != "returns"})
        for n, b, kw in bars
        if "prices" in kw and np.isfinite(kw["prices"]).all()
    ]
    assert _run(ints, "arrays_sync") == _run(ints, "dict_sync")


def test_a_refilled_buffer_does_not_change_the_state(scenario: list[Bar], reference: list[Any]) -> None:
    risk = AdvancedRiskManager(_config())
    buffers: dict[tuple[str, int], np.ndarray] = {}
    rows: list[Any] = []
    try:
        for names, book, kw in scenario:
            own = {}
            for k, v in kw.items():
                buf = buffers.setdefault((k, len(v)), np.empty(len(v)))
                buf[:] = v
                own[k] = buf
            try:
                rows.append(_row(risk.manage_risk_arrays_sync(names, book, **own)))
            except InvalidInputError as exc:
                rows.append(("refused", str(exc)))
            for buf in buffers.values():
                buf[:] = 7.0  # the bot reuses its buffers before the next bar
    finally:
        risk.close_sync()
    assert rows == reference


def test_a_state_built_from_a_buffer_keeps_its_values() -> None:
    buf = np.array([0.01, -0.02, 0.0])
    m = MarketState.from_arrays(NAMES, returns=buf)
    before = (dict(m.returns), list(m.returns.values()), list(m.returns.items()), repr(m))
    buf[:] = 0.5
    assert (dict(m.returns), list(m.returns.values()), list(m.returns.items()), repr(m)) == before


def _restarting(bars: list[Bar], arrays: bool, path: Path) -> list[Any]:
    rows: list[Any] = []
    risk = None
    try:
        for i, (names, book, kw) in enumerate(bars):
            if i % 10 == 0:
                if risk is not None:
                    risk.close_sync()
                risk = AdvancedRiskManager(_config(state_path=str(path)))
            try:
                d = (
                    risk.manage_risk_arrays_sync(names, book, **kw)
                    if arrays
                    else risk.manage_risk_sync(_as_dicts(names, kw), book)
                )
                rows.append(_row(d))
            except InvalidInputError as exc:
                rows.append(("refused", str(exc)))
    finally:
        if risk is not None:
            risk.close_sync()
    return rows


def test_restarts_on_a_state_file_decide_alike(tmp_path: Path) -> None:
    bars = _scenario(7, bars=40)
    assert _restarting(bars, True, tmp_path / "a.db") == _restarting(bars, False, tmp_path / "d.db")


@pytest.mark.parametrize("n_assets", [1, 1000])
def test_one_and_a_thousand_assets(n_assets: int) -> None:
    rng = np.random.default_rng(n_assets)
    names = tuple(f"S{i}" for i in range(n_assets))
    px = np.full(n_assets, 50.0)
    book = Portfolio(
        weights=dict(zip(names, np.full(n_assets, 0.5 / n_assets).tolist(), strict=True)), equity=1e6
    )
    bars: list[Bar] = []
    for t in range(12):
        r = rng.normal(0, 0.01, n_assets)
        px = px * (1 + r)
        kw = {"returns": r, "prices": px.copy()}
        if t % 3 == 0:
            kw |= {"high": px * 1.02, "low": px * 0.97}
        bars.append((names, book, kw))
    want = _run(bars, "dict_sync")
    assert all(isinstance(r, dict) for r in want)
    assert _run(bars, "arrays_sync") == want
    assert _run(bars, "arrays_async") == want
