"""Issue 12, round 4, adversarial: the relative volatility target on books it was not built on.

The one invariant checked everywhere: the relative target only lowers the volatility aimed at, so bar
by bar ``0 <= leverage(relative_target=k) <= leverage(relative_target=None)`` on the same inputs
(nothing the engine keeps depends on the leverage it decided). Cases: one asset, a long-short book,
a book that changes every bar, a universe that changes, refused (NaN) bars, zero-move bars, 500
assets, the async entry point, a restart from a state file, random books (hypothesis) and bad
settings.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from advanced_risk import AdvancedRiskManager, MarketState, Portfolio, RiskConfig
from advanced_risk.config import LeverageConfig
from advanced_risk.errors import ConfigError, InvalidInputError
from advanced_risk.risk.leverage import LongRunVolatility

from .conftest import LEVERAGE_ONLY

BASE = LEVERAGE_ONLY

Step = tuple[MarketState | dict[str, object], Portfolio]


def _relative(config: RiskConfig, k: float | None, halflife: int = 250, **leverage: float) -> RiskConfig:
    lev = dataclasses.replace(config.leverage, relative_target=k, relative_halflife=halflife, **leverage)
    return dataclasses.replace(config, leverage=lev)


def _steps(names: Sequence[str], returns: np.ndarray, weights: np.ndarray | None = None) -> list[Step]:
    """One (market, portfolio) per bar: prices compound the returns; equal weight by default."""
    n, m = returns.shape
    w = np.full((n, m), 1.0 / m) if weights is None else np.broadcast_to(weights, (n, m))
    prices, out = np.full(m, 100.0), []
    for t in range(n):
        prices = prices * (1.0 + returns[t])
        market = MarketState(
            returns=dict(zip(names, returns[t].tolist(), strict=True)),
            prices=dict(zip(names, prices.tolist(), strict=True)),
        )
        out.append((market, Portfolio(weights=dict(zip(names, w[t].tolist(), strict=True)))))
    return out


def _leverages(config: RiskConfig, steps: Sequence[Step], *, use_async: bool = False) -> np.ndarray:
    """The leverage decided at each bar (NaN where the bar was refused as bad input)."""
    risk = AdvancedRiskManager(config)
    out: list[float] = []

    async def run_async() -> None:
        try:
            for market, portfolio in steps:
                out.append((await risk.manage_risk(market, portfolio)).leverage)
        finally:
            await risk.close()

    if use_async:
        asyncio.run(run_async())
        return np.array(out)
    try:
        for market, portfolio in steps:
            try:
                out.append(risk.manage_risk_sync(market, portfolio).leverage)
            except InvalidInputError:
                out.append(math.nan)
    finally:
        risk.close_sync()
    return np.array(out)


def _both(
    steps: Sequence[Step], k: float = 0.6, halflife: int = 100, config: RiskConfig = BASE
) -> tuple[np.ndarray, np.ndarray]:
    """(absolute, relative) leverage of the same bars, asserting the invariant bar by bar."""
    absolute = _leverages(_relative(config, None), steps)
    relative = _leverages(_relative(config, k, halflife), steps)
    _assert_never_above(relative, absolute)
    return absolute, relative


def _assert_never_above(relative: np.ndarray, absolute: np.ndarray) -> None:
    assert relative.shape == absolute.shape
    ok = ~np.isnan(absolute)
    np.testing.assert_array_equal(np.isnan(relative), ~ok)  # the same bars refused
    assert np.all(np.isfinite(relative[ok]))
    assert np.all(relative[ok] >= 0.0)
    bad = np.flatnonzero(relative[ok] > absolute[ok] * (1 + 1e-12))
    assert bad.size == 0, (
        f"relative above absolute at bars {bad[:10]}: {relative[ok][bad[:10]]} > {absolute[ok][bad[:10]]}"
    )


def _calm(n: int, m: int, daily_vol: float = 0.004, seed: int = 0, rho: float = 0.9) -> np.ndarray:
    """``m`` assets sharing one factor (correlation ~rho), each with this daily volatility."""
    rng = np.random.default_rng(seed)
    factor = rng.normal(0.0, daily_vol, (n, 1))
    return math.sqrt(rho) * factor + rng.normal(0.0, daily_vol * math.sqrt(1 - rho), (n, m))


# -- books -------------------------------------------------------------------------------------------


def test_one_asset() -> None:
    """A single calm asset: held at about k of its own risk, never above the absolute target."""
    absolute, relative = _both(_steps(["A"], _calm(600, 1, seed=3)), k=0.5)
    assert np.all(absolute[100:] == 1.0)
    assert np.mean(relative[200:]) == pytest.approx(0.5, rel=0.15)


def test_a_long_short_book() -> None:
    """130/-70 on two correlated assets: the book's residual risk is what the target is relative to."""
    returns = _calm(600, 2, seed=4)
    _, relative = _both(_steps(["L", "S"], returns, np.array([1.3, -0.7])), k=0.5)
    assert np.mean(relative[200:]) == pytest.approx(0.5, rel=0.15)
    # a pure spread of two near-identical assets: tiny risk, still a finite leverage in [0, 1]
    spread = _calm(300, 2, seed=5, rho=0.9999)
    _, rel = _both(_steps(["L", "S"], spread, np.array([0.5, -0.5])), k=0.5)
    assert np.all((rel >= 0.0) & (rel <= 1.0))


def test_a_book_that_changes_every_bar() -> None:
    """Random signed weights each bar (sign flips, gross 0..2): never above the absolute leverage."""
    rng = np.random.default_rng(6)
    returns = _calm(400, 3, seed=6, rho=0.5)
    weights = rng.uniform(-1.0, 1.0, (400, 3)) * rng.uniform(0.0, 0.7, (400, 1))
    weights[rng.random(400) < 0.1] = 0.0  # some flat bars
    _both(_steps(["A", "B", "C"], returns, weights), k=0.7, halflife=20)


def test_assets_that_join_and_leave() -> None:
    """C joins at bar 150 (and is bought at 160); A is sold at 280 and leaves at 300."""
    returns = _calm(450, 3, seed=7)
    steps: list[Step] = []
    prices = np.full(3, 100.0)
    names = ("A", "B", "C")
    for t in range(450):
        prices = prices * (1.0 + returns[t])
        present = [i for i in range(3) if (t >= 150 or i != 2) and (t < 300 or i != 0)]
        w = {names[i]: 0.0 for i in present}
        held = [i for i in present if (i != 2 or t >= 160) and (i != 0 or t < 280)]
        w.update({names[i]: 1.0 / len(held) for i in held})
        market = MarketState(
            returns={names[i]: float(returns[t, i]) for i in present},
            prices={names[i]: float(prices[i]) for i in present},
        )
        steps.append((market, Portfolio(weights=w)))
    absolute, relative = _both(steps, k=0.5)
    assert not np.isnan(absolute).any()
    assert np.all(relative[100:] < 1.0)  # the long-run risk follows the book across both changes


def test_a_refused_nan_bar_changes_nothing() -> None:
    """A bar with a NaN return is refused (InvalidInputError) and leaves no trace: the long-run
    volatility included, the leverage after it is the one of a run that never saw it."""
    steps = _steps(["A", "B"], _calm(300, 2, seed=8))
    nan_bar = ({"returns": {"A": math.nan, "B": 0.001}, "prices": {"A": 100.0, "B": 100.0}}, steps[0][1])
    bad_at = (120, 121, 200, 250)
    with_nan = list(steps)
    for i in sorted(bad_at, reverse=True):
        with_nan.insert(i, nan_bar)
    for k in (None, 0.5):
        config = _relative(BASE, k, 50)
        clean = _leverages(config, steps)
        dirty = _leverages(config, with_nan)
        assert np.isnan(dirty).sum() == len(bad_at)
        np.testing.assert_array_equal(dirty[~np.isnan(dirty)], clean)
    _both(with_nan, k=0.5, halflife=50)


def test_bars_with_no_price_move() -> None:
    """Zero returns for every asset: from the start (no risk yet: the absolute target, nothing entered),
    as single bars and as a run of 40 in the middle."""
    returns = _calm(400, 2, seed=9)
    returns[:30] = 0.0
    returns[::37] = 0.0
    returns[200:240] = 0.0
    absolute, relative = _both(_steps(["A", "B"], returns), k=0.5, halflife=50)
    # before any move the book has no volatility: the long-run one is unknown, the target absolute
    np.testing.assert_array_equal(relative[:30], absolute[:30])
    assert relative[30] == pytest.approx(0.5)  # the first risk seen is the long-run risk: k exactly
    assert np.all(relative[60:200] < 1.0)
    assert np.all(relative[260:] < 1.0)  # the quiet stretch in between lowers sigma_t, not sigma_long


def test_only_a_summary_volatility() -> None:
    """Bars with ``volatility`` and no returns: the long-run vol is that summary; a constant one holds
    the book at exactly k; zero volatility enters nothing (the absolute answer, max_leverage)."""
    steps: list[Step] = [
        (MarketState(volatility=v), Portfolio(weights={"A": 1.0})) for v in [0.0] * 3 + [0.05] * 20
    ]
    absolute, relative = _both(steps, k=0.6, halflife=10)
    np.testing.assert_array_equal(relative[:3], absolute[:3])
    np.testing.assert_allclose(relative[3:], 0.6, rtol=1e-12)


def test_a_k_above_the_ratio_changes_nothing() -> None:
    """k = 100 (the upper bound): k * long-run vol is far above 15 %, the leverage identical."""
    steps = _steps(["A", "B"], _calm(300, 2, seed=10))
    absolute = _leverages(_relative(BASE, None), steps)
    relative = _leverages(_relative(BASE, 100.0, 1), steps)
    np.testing.assert_array_equal(relative, absolute)


def test_a_cut_book_takes_the_long_run_risk_of_the_book_asked_for() -> None:
    """A drawdown that reduces the book (reference != target): the invariant holds through it."""
    returns = _calm(300, 2, seed=11, daily_vol=0.01)
    steps = _steps(["A", "B"], returns)
    equity = 1e6 * np.cumprod(1.0 + returns.mean(axis=1))
    equity[150:200] *= 0.75  # a 25 % drawdown for 50 bars
    steps = [
        (m, Portfolio(weights=dict(p.weights), equity=float(e)))
        for (m, p), e in zip(steps, equity, strict=True)
    ]
    config = dataclasses.replace(BASE, reduce_drawdown=0.1, halt_drawdown=0.95)
    _both(steps, k=0.5, config=config)


def test_five_hundred_assets() -> None:
    """500 assets, 300 bars, long-short: the invariant holds, the leverage is below 1 once warm."""
    rng = np.random.default_rng(12)
    returns = _calm(300, 500, seed=12, daily_vol=0.002, rho=0.3)
    weights = rng.normal(0.0, 1.0, 500)
    weights /= np.abs(weights).sum()
    _, relative = _both(_steps([f"X{i}" for i in range(500)], returns, weights), k=0.5, halflife=50)
    assert np.all(relative[150:] < 1.0)


def test_a_nearly_flat_book_drags_the_long_run_risk_down() -> None:
    """Found here, kept as documented behaviour: a flat book (weights 0) enters nothing, but a nearly
    flat one (weights 1e-3) enters its tiny risk, so on its return it is held well below the bot
    that went fully flat (a discontinuity at zero). Never above the absolute leverage: conservative."""
    returns = _calm(600, 2, seed=2)
    config = _relative(BASE, 0.6, 50)
    desired = np.tile([0.5, 0.5], (600, 1))
    flat, nearly = desired.copy(), desired.copy()
    flat[300:450], nearly[300:450] = 0.0, 5e-4
    left = _leverages(config, _steps(["A", "B"], returns, flat))
    almost = _leverages(config, _steps(["A", "B"], returns, nearly))
    _assert_never_above(almost, _leverages(_relative(BASE, None), _steps(["A", "B"], returns, nearly)))
    assert np.all(almost[450:470] < 0.7 * left[450:470])  # 150 bars = 3 half-lives at ~0 risk
    assert np.all(almost[450:470] > 0.0)


def test_a_half_life_too_large_for_a_float_is_an_equal_weight_mean() -> None:
    """Regression: ``relative_halflife=10**400`` passes the config (a positive int) and the first
    decision raised OverflowError (0.5 ** (1 / 10**400)). It is now a plain mean of the bars seen."""
    long_run = LongRunVolatility(10**400)
    assert long_run.update(0.1) == pytest.approx(0.1)
    assert long_run.update(0.3) == pytest.approx(math.sqrt((0.01 + 0.09) / 2))
    steps = [(MarketState(volatility=v), Portfolio(weights={"A": 1.0})) for v in (0.05, 0.2, 0.05)]
    relative = _leverages(_relative(BASE, 0.6, 10**400), steps)
    expected = [
        0.6,
        0.6 * math.sqrt((0.05**2 + 0.2**2) / 2) / 0.2,
        0.6 * math.sqrt((2 * 0.05**2 + 0.2**2) / 3) / 0.05,
    ]
    np.testing.assert_allclose(relative, np.minimum(expected, 1.0), rtol=1e-12)


# -- entry points and restarts ---------------------------------------------------------------------


def test_the_async_entry_point_gives_the_same_leverage() -> None:
    steps = _steps(["A", "B"], _calm(250, 2, seed=13), np.array([0.9, -0.3]))
    config = _relative(BASE, 0.5, 30)
    sync = _leverages(config, steps)
    np.testing.assert_array_equal(_leverages(config, steps, use_async=True), sync)
    assert np.all(sync[100:] < 1.0)


def test_a_restart_never_raises_the_leverage_above_the_absolute_one(tmp_path: Path) -> None:
    """Close after 250 bars, reopen on the same state file, continue: never above the absolute run
    that restarted at the same bar, nor above the one that did not restart once it is warm."""
    steps = _steps(["A", "B"], _calm(500, 2, seed=14), np.array([0.7, 0.2]))

    def restarted(k: float | None, name: str) -> np.ndarray:
        # journal_sync=False: a row late for the deadline degrades that decision (leverage halved) in
        # one run and not the other, which is timing, not the relative target
        config = dataclasses.replace(
            _relative(BASE, k, 100), state_path=str(tmp_path / name), journal_sync=False
        )
        return np.concatenate([_leverages(config, steps[:250]), _leverages(config, steps[250:])])

    absolute, relative = restarted(None, "abs.db"), restarted(0.5, "rel.db")
    _assert_never_above(relative, absolute)
    straight_abs = _leverages(_relative(BASE, None), steps)
    _assert_never_above(relative[300:], straight_abs[300:])
    assert np.all(relative[300:] < 1.0)


# -- random books ----------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**31 - 1),
    m=st.integers(1, 4),
    n=st.integers(5, 80),
    daily_vol=st.sampled_from([0.0005, 0.004, 0.02, 0.06]),
    k=st.floats(0.01, 5.0),
    halflife=st.integers(1, 200),
    max_leverage=st.sampled_from([0.5, 1.0, 3.0]),
    min_leverage=st.sampled_from([0.0, 0.2]),
    flat_bars=st.booleans(),
)
def test_random_books_never_exceed_the_absolute_leverage(
    seed: int,
    m: int,
    n: int,
    daily_vol: float,
    k: float,
    halflife: int,
    max_leverage: float,
    min_leverage: float,
    flat_bars: bool,
) -> None:
    rng = np.random.default_rng(seed)
    returns = np.clip(_calm(n, m, daily_vol, seed, rho=float(rng.uniform(0, 0.99))), -0.5, 0.5)
    weights = rng.uniform(-1.0, 1.0, (n, m)) if rng.random() < 0.5 else rng.uniform(-1.0, 1.0, m)
    if flat_bars:
        returns[rng.random(n) < 0.2] = 0.0
        weights = np.array(np.broadcast_to(weights, (n, m)))
        weights[rng.random(n) < 0.2] = 0.0
    names = [f"A{i}" for i in range(m)]
    lev = {"max_leverage": max_leverage, "min_leverage": min_leverage}
    config = _relative(BASE, None, **lev)
    absolute = _leverages(config, _steps(names, returns, weights))
    relative = _leverages(_relative(BASE, k, halflife, **lev), _steps(names, returns, weights))
    _assert_never_above(relative, absolute)
    assert np.all(relative >= min_leverage - 1e-12)


# -- settings --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("relative_target", -1.0),
        ("relative_target", 0.0),
        ("relative_target", math.nan),
        ("relative_target", math.inf),
        ("relative_target", "0.5"),
        ("relative_target", True),
        ("relative_halflife", 0),
        ("relative_halflife", -5),
        ("relative_halflife", 1.5),
        ("relative_halflife", True),
        ("relative_halflife", None),
    ],
)
def test_bad_settings_are_refused_naming_the_field(field: str, value: object) -> None:
    with pytest.raises(ConfigError, match=field):
        LeverageConfig(**{field: value})  # type: ignore[arg-type]


def test_bad_settings_are_refused_from_a_dict() -> None:
    with pytest.raises(ConfigError, match="relative_halflife"):
        RiskConfig.from_dict({"leverage": {"relative_target": 0.5, "relative_halflife": 0}})
