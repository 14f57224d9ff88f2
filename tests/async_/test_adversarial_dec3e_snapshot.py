"""Adversarial checks of the graceful-restart snapshot and the journalled streaks (2026-12-03, round e).

What is attacked (b76f429, e41a463; docs/embedding.md, "Restarts" and the bullets after it):

1. "A graceful restart goes on where it stopped": after ``close()`` / ``close_sync()`` and a new
   manager on the same ``state_path``, "every later decision is then the one a manager that never
   stopped would have made, field for field" when the first bar names the same assets in the same
   order and the settings are unchanged. Attacked with: restarts twice in a row, right after the
   first bar, before any bar, early (the tracker younger than ``correlation_warmup``), on a bar
   that adds or removes an asset, after a degraded, HALTED, kill-switched, resumed or reset-peak
   decision, with returns-only / prices-only bars, one asset, 300 assets, a short book,
   ``journal_sync=False``, both drawdown bases, a relative volatility target, fhs_garch across a
   refit's install bar, the shipped policy and the shipped risk agents.
2. The snapshot row itself: damaged, of an older or newer layout, the wrong type, the file deleted
   or the save failing while closing, two managers on one file, the in-memory store.
3. ``RiskDecision.streaks`` resumed from the journal, and the first bar's VaR-breach check against
   the book the last decision priced, including when that last decision was degraded.
4. Hypothesis: bars with restarts at drawn bars: exact where the docs say so, never less cautious
   (state severity, gross exposure sum|w| x leverage, stops) where they allow a difference.

Each scenario runs on both entry points (``manage_risk_sync`` / ``await manage_risk``). Tests that
expose a defect are strict xfails whose reason gives the numbers.
"""

from __future__ import annotations

import asyncio
import io
import math
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from advanced_risk.config import RiskConfig
from advanced_risk.engine.snapshot import decode, encode
from advanced_risk.engine.state import StateStore
from advanced_risk.manager import AdvancedRiskManager
from advanced_risk.types import MarketState, Portfolio, RiskDecision, TradingState

from .conftest import FakeAllocator
from .restart_harness import AGENTS, BASE, ENTRIES, POLICY, SEVERITY, Bar, config_at, cut, exposure, synth

# -- replay -------------------------------------------------------------------------------------------

Op = tuple[str, tuple[Any, ...]]


@dataclass
class Script:
    bars: list[Bar]
    restarts: Sequence[int] = ()  # a restart before each listed bar (listed twice: twice in a row)
    fail_at: frozenset[int] = frozenset()  # bars whose (fake) allocator raises
    ops: dict[int, list[Op]] = field(default_factory=dict)
    crash: bool = False  # the restart finds no snapshot
    policy: str | None = None  # "fake": FakeAllocator; else a path or None
    agents: str | None = None


def _policy(script: Script, n_assets: int) -> Any:
    if script.policy == "fake":
        return FakeAllocator(asset_count=n_assets, history_length=1)
    return script.policy


def _forget_snapshot(path: str) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("DELETE FROM snapshot")
    conn.close()


def _inputs(bar: Bar) -> tuple[MarketState, Portfolio]:
    return MarketState(**bar.market), Portfolio(
        weights=bar.weights, equity=bar.equity, current_drawdown=bar.drawdown
    )


def _open(config: RiskConfig, script: Script) -> AdvancedRiskManager:
    return AdvancedRiskManager(
        config, policy=_policy(script, len(script.bars[0].weights)), risk_agents=script.agents
    )


def _set_fault(risk: AdvancedRiskManager, script: Script, i: int) -> None:
    alloc = risk._allocator
    if isinstance(alloc, FakeAllocator):
        alloc.fail = i in script.fail_at


def replay_sync(config: RiskConfig, script: Script) -> list[RiskDecision]:
    risk = _open(config, script)
    out: list[RiskDecision] = []
    try:
        for i, bar in enumerate(script.bars):
            for _ in range(list(script.restarts).count(i)):
                risk.close_sync()
                if script.crash and config.state_path is not None:
                    _forget_snapshot(config.state_path)
                risk = _open(config, script)
            for name, args in script.ops.get(i, []):
                asyncio.run(getattr(risk, name)(*args))
            _set_fault(risk, script, i)
            out.append(risk.manage_risk_sync(*_inputs(bar)))
    finally:
        risk.close_sync()
    return out


async def replay_async(config: RiskConfig, script: Script) -> list[RiskDecision]:
    risk = _open(config, script)
    out: list[RiskDecision] = []
    try:
        for i, bar in enumerate(script.bars):
            for _ in range(list(script.restarts).count(i)):
                await risk.close()
                if script.crash and config.state_path is not None:
                    _forget_snapshot(config.state_path)
                risk = _open(config, script)
            for name, args in script.ops.get(i, []):
                await getattr(risk, name)(*args)
            _set_fault(risk, script, i)
            out.append(await risk.manage_risk(*_inputs(bar)))
    finally:
        await risk.close()
    return out


def replay(entry: str, config: RiskConfig, script: Script) -> list[RiskDecision]:
    if entry == "sync":
        return replay_sync(config, script)
    return asyncio.run(replay_async(config, script))


def both(
    tmp: Path, entry: str, script: Script, **overrides: Any
) -> tuple[list[RiskDecision], list[RiskDecision]]:
    """(straight, restarted) decisions of the script on one entry point."""
    straight = Script(**{**script.__dict__, "restarts": ()})
    tag = f"{id(script)}"
    return (
        replay(entry, config_at(tmp / f"s{tag}.db", **overrides), straight),
        replay(entry, config_at(tmp / f"r{tag}.db", **overrides), script),
    )


# -- comparisons --------------------------------------------------------------------------------------


def _norm(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    if isinstance(value, dict):
        return {k: _norm(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return type(value)(_norm(v) for v in value)
    if hasattr(value, "__dataclass_fields__"):
        return repr(value).replace("nan", "'nan'")
    return value


def full(d: RiskDecision) -> dict[str, Any]:
    """Every field of a decision but its id and latency (NaN == NaN)."""
    return {k: _norm(v) for k, v in d.items() if k not in ("decision_id", "latency_ms")}


def field_diffs(
    straight: list[RiskDecision], restarted: list[RiskDecision], start: int, skip: Sequence[str] = ()
) -> dict[int, dict[str, tuple[Any, Any]]]:
    out = {}
    for i in range(start, len(straight)):
        a, b = full(straight[i]), full(restarted[i])
        diff = {k: (a[k], b[k]) for k in a if k not in skip and a[k] != b[k]}
        if diff:
            out[i] = diff
    return out


def assert_exact(
    straight: list[RiskDecision], restarted: list[RiskDecision], start: int, skip: Sequence[str] = ()
) -> None:
    diffs = field_diffs(straight, restarted, start, skip)
    assert not diffs, f"{len(diffs)} bars differ from {start}; first: {next(iter(diffs.items()))}"


def less_cautious(
    straight: RiskDecision, restarted: RiskDecision, prices: dict[str, float] | None
) -> list[str]:
    """How the restarted decision is less cautious than the straight one (empty: it is not)."""
    out = []
    if SEVERITY[restarted.trading_state] < SEVERITY[straight.trading_state]:
        out.append(f"state {restarted.trading_state.value} < {straight.trading_state.value}")
    if exposure(restarted) > exposure(straight) + 1e-9:
        out.append(f"exposure {exposure(restarted):.4f} > {exposure(straight):.4f}")
    for a, w in restarted.rebalance_weights.items():
        mine, theirs = (
            abs(w * restarted.leverage),
            abs(straight.rebalance_weights.get(a, 0.0) * straight.leverage),
        )
        if a != "cash" and mine > theirs + 1e-9:
            out.append(f"{a} {mine:.4f} vs {theirs:.4f}")
    if prices is not None:
        for a, s in straight.stop_levels.items():
            r = restarted.stop_levels.get(a)
            if r is None:
                continue  # a missing stop is a warm-up, reported as sizes 0 (documented)
            short = s > prices[a]
            if (r > s + 1e-9) if short else (r < s - 1e-9):
                out.append(f"stop {a} {r:.4f} looser than {s:.4f}")
    return out


def assert_not_less_cautious(
    straight: list[RiskDecision], restarted: list[RiskDecision], bars: list[Bar], start: int
) -> None:
    worse = {
        i: w
        for i in range(start, len(straight))
        if (w := less_cautious(straight[i], restarted[i], bars[i].market.get("prices")))
    }
    assert not worse, f"{len(worse)} bars less cautious; first: {next(iter(worse.items()))}"


# == 1. a graceful restart is exact ====================================================================

N, K = 70, 45  # bars, the restart (the tracker window of 30 and the warm-up of 20 are behind)


@pytest.mark.parametrize(
    ("case", "overrides"),
    [
        ("default", {}),
        ("returns_only", {}),
        ("no_high_low", {}),
        ("one_asset", {}),
        ("journal_sync_false", {"journal_sync": False}),
        ("equity_basis", {"drawdown_basis": "equity"}),
        ("strategy_basis_reducing", {"reduce_drawdown": 0.02}),
        ("fake_policy", {}),
    ],
)
@pytest.mark.parametrize("entry", ENTRIES)
def test_graceful_restart_exact(tmp_path: Path, entry: str, case: str, overrides: dict[str, Any]) -> None:
    """The documented case (same universe, same order, same settings, a healthy last decision):
    every field after the restart equals the straight run's."""
    kwargs: dict[str, Any] = {}
    if case == "returns_only":
        kwargs["prices"] = False
    if case == "no_high_low":
        kwargs["hl"] = False
    if case == "one_asset":
        kwargs["assets"] = ("solo",)
    bars = synth(N, **kwargs)
    script = Script(bars, restarts=(K,), policy="fake" if case == "fake_policy" else None)
    straight, restarted = both(tmp_path, entry, script, **overrides)
    if case == "strategy_basis_reducing":
        assert any(d.trading_state is TradingState.REDUCING for d in straight[K:])
    assert_exact(straight, restarted, K)


@pytest.mark.parametrize("restarts", [(K, K), (K, K + 1), (K, K + 1, K + 2, K + 2)])
@pytest.mark.parametrize("entry", ENTRIES)
def test_restart_twice_in_a_row_is_exact(tmp_path: Path, entry: str, restarts: tuple[int, ...]) -> None:
    """Close and reopen twice before one bar (the second close has no bar: the first snapshot must
    survive it), and on consecutive bars."""
    script = Script(synth(N), restarts=restarts)
    straight, restarted = both(tmp_path, entry, script)
    assert_exact(straight, restarted, K)


@pytest.mark.parametrize("entry", ENTRIES)
def test_restart_before_any_bar_changes_nothing(tmp_path: Path, entry: str) -> None:
    """Open, close and open again before the first bar (nothing to save): the same decisions."""
    script = Script(synth(30), restarts=(0, 0))
    straight, restarted = both(tmp_path, entry, script)
    assert_exact(straight, restarted, 0)


EARLY_CFG: dict[str, Any] = {"leverage": {"target_volatility": 0.05}, "tracker": {"method": "fhs_ewma"}}


@pytest.mark.parametrize("k", [1, 10])
@pytest.mark.parametrize("entry", ENTRIES)
def test_early_graceful_restart_is_exact(tmp_path: Path, entry: str, k: int) -> None:
    """Restarted right after the first bar, or at bar 10 (the tracker younger than
    correlation_warmup): the snapshot holds the whole engine state, so the docs' claim is that
    nothing differs. A leverage that rises in the warm-up (target_volatility 0.05) shows it."""
    script = Script(synth(40, seed=1), restarts=(k,), policy="fake")
    straight, restarted = both(tmp_path, entry, script, **EARLY_CFG)
    diffs = field_diffs(straight, restarted, k)
    assert not diffs, next(iter(diffs.items()))


@pytest.mark.parametrize("entry", ENTRIES)
def test_early_graceful_restart_is_not_less_cautious(tmp_path: Path, entry: str) -> None:
    script = Script(synth(40, seed=1), restarts=(10,), policy="fake")
    straight, restarted = both(tmp_path, entry, script, **EARLY_CFG)
    assert_not_less_cautious(straight, restarted, script.bars, 10)


@pytest.mark.parametrize("entry", ENTRIES)
def test_graceful_restart_with_relative_target_is_exact(tmp_path: Path, entry: str) -> None:
    script = Script(synth(N), restarts=(K,))
    straight, restarted = both(tmp_path, entry, script, leverage={"relative_target": 1.0})
    assert_exact(straight, restarted, K)


@pytest.mark.parametrize("entry", ENTRIES)
def test_graceful_restart_with_relative_target_not_less_cautious(tmp_path: Path, entry: str) -> None:
    script = Script(synth(N), restarts=(K,))
    straight, restarted = both(tmp_path, entry, script, leverage={"relative_target": 1.0})
    assert_not_less_cautious(straight, restarted, script.bars, K)


# == 2. the last decision before the restart, and the first after it ===================================


@pytest.mark.parametrize("crash", [False, True], ids=["graceful", "crash"])
@pytest.mark.parametrize("entry", ENTRIES)
def test_degraded_first_bar_after_restart_not_less_cautious(tmp_path: Path, entry: str, crash: bool) -> None:
    bars = synth(N, book={"aaa": 0.2, "bbb": 0.2, "ccc": 0.2, "ddd": 0.2})
    script = Script(bars, restarts=(K,), fail_at=frozenset({K}), policy="fake", crash=crash)
    straight, restarted = both(tmp_path, entry, script, leverage={"target_volatility": 0.02})
    assert straight[K].degraded
    assert restarted[K].degraded
    assert straight[K - 1].leverage < 0.9
    assert_not_less_cautious(straight[: K + 1], restarted[: K + 1], bars, K)


@pytest.mark.parametrize("entry", ENTRIES)
def test_graceful_restart_after_a_degraded_decision_is_exact(tmp_path: Path, entry: str) -> None:
    """The last decision before the close was degraded (the policy raised), the first one after it
    is healthy: the docs' exactness claim covers it (the snapshot is of the engine after the bar)."""
    bars = synth(N)
    script = Script(bars, restarts=(K,), fail_at=frozenset({K - 1}), policy="fake")
    straight, restarted = both(tmp_path, entry, script)
    assert straight[K - 1].degraded
    assert not straight[K].degraded
    assert_exact(straight, restarted, K)


def _breach_bars(n: int = 52, start: int = 40, depth: float = -0.03) -> list[Bar]:
    """Calm bars, then from ``start`` losses on every asset growing by 1.3 a bar (VaR breaches)."""
    return synth(
        n,
        book={"aaa": 0.3, "bbb": 0.3, "ccc": 0.3},
        assets=("aaa", "bbb", "ccc"),
        shift=lambda i: depth * 1.3 ** (i - start) if i >= start else 0.0,
        vol=0.008,
    )


VAR_CFG: dict[str, Any] = {
    "var_breach_streak": 2,
    "loss_streak": 1000,
    "halt_drawdown": 0.9,
    "reduce_drawdown": 0.8,
    "reduce_on_correlation_shock": False,
}


CRASH_VAR = pytest.mark.xfail(
    strict=True,
    reason="after a crash the new tracker's volatility target starts at the cap, so the leverage is "
    "the restart cap (the last journalled decision's, here the degraded one's) while the running "
    "manager's target falls as the breaches raise volatility: bar 41 exposure 0.200 against 0.172, "
    "8 bars more exposed (the streak itself resumes from the last healthy decision's priced book)",
)


@pytest.mark.parametrize("crash", [False, pytest.param(True, marks=CRASH_VAR)], ids=["graceful", "crash"])
@pytest.mark.parametrize("entry", ENTRIES)
def test_restart_mid_var_streak_after_degraded_last_decision(tmp_path: Path, entry: str, crash: bool) -> None:
    """A VaR-breach streak under way, the last decision before the restart degraded (the policy
    raised): the running manager checks the next bar against the book priced before it, and a
    restart reads that book from the journal's last healthy decision. Exact when graceful."""
    bars = _breach_bars()
    k = 41  # breaches from bar 40; bar 40 degraded
    script = Script(bars, restarts=(k,), fail_at=frozenset({k - 1}), policy="fake", crash=crash)
    straight, restarted = both(tmp_path, entry, script, **VAR_CFG)
    assert straight[k - 1].degraded
    assert straight[k - 1].streaks["var_breach"] == 1, straight[k - 1].streaks
    assert straight[k].streaks["var_breach"] == 2, straight[k].streaks
    assert_not_less_cautious(straight, restarted, bars, k)
    firsts = [(s.streaks, r.streaks) for s, r in zip(straight[k : k + 4], restarted[k : k + 4], strict=True)]
    assert all(rs["var_breach"] >= ss["var_breach"] for ss, rs in firsts), firsts
    if not crash:
        assert_exact(straight, restarted, k)


@pytest.mark.parametrize("entry", ENTRIES)
def test_restart_mid_var_streak_resumes(tmp_path: Path, entry: str) -> None:
    """A healthy last decision mid-streak: the streak goes on (graceful: exactly)."""
    bars = _breach_bars()
    k = 41
    straight, restarted = both(tmp_path, entry, Script(bars, restarts=(k,)), **VAR_CFG)
    assert straight[k - 1].streaks["var_breach"] >= 1
    assert_exact(straight, restarted, k)


# == 3. the safety state across a graceful restart ====================================================


@pytest.mark.parametrize(
    "ops",
    [
        {K - 5: [("engage_kill_switch", ("operator: test",))]},
        {K: [("engage_kill_switch", ("operator: at the restart",))]},
        {K - 5: [("engage_kill_switch", ("operator: test",))], K: [("resume", ("operator: done",))]},
        {K: [("reset_peak", (90_000.0, "capital withdrawn"))]},
        {K - 3: [("reset_peak", (90_000.0, "capital withdrawn"))]},
    ],
    ids=["kill_before", "kill_at", "kill_then_resume_at", "reset_peak_at", "reset_peak_before"],
)
@pytest.mark.parametrize("entry", ENTRIES)
def test_graceful_restart_around_operator_calls_is_exact(
    tmp_path: Path, entry: str, ops: dict[int, list[Op]]
) -> None:
    """Operator events journal rows but no decision: the snapshot stays fresh across them."""
    script = Script(synth(N), restarts=(K,), ops=ops)
    straight, restarted = both(tmp_path, entry, script, drawdown_basis="equity")
    assert_exact(straight, restarted, K)


@pytest.mark.parametrize("entry", ENTRIES)
def test_graceful_restart_while_halted_is_exact(tmp_path: Path, entry: str) -> None:
    bars = [Bar(b.market, b.weights, b.equity, 0.35 if 30 <= i < 36 else 0.0) for i, b in enumerate(synth(N))]
    script = Script(bars, restarts=(K,))
    straight, restarted = both(tmp_path, entry, script, drawdown_basis="equity")
    assert straight[K - 1].trading_state is TradingState.HALTED
    assert_exact(straight, restarted, K)


# == 4. a restart on a bar that changes the universe ===================================================

FIVE = ("aaa", "bbb", "ccc", "ddd", "eee")


@pytest.mark.parametrize("change", ["adds", "removes", "reorders"])
@pytest.mark.parametrize("entry", ENTRIES)
def test_restart_on_a_universe_change_not_less_cautious(tmp_path: Path, entry: str, change: str) -> None:
    """The snapshot is not used (another universe): the restart is the crash path's, and must not
    be less cautious than the straight run, which sees the same universe change on the same bar
    (state and exposure; the crash path's looser stops are documented, docs/embedding.md)."""
    book = {"aaa": 0.2, "bbb": 0.2, "ccc": 0.2, "ddd": -0.1, "eee": 0.0 if change == "removes" else 0.1}
    bars = synth(N, assets=FIVE, book=book)
    if change == "adds":
        bars = [cut(b, FIVE[:4]) if i < K else b for i, b in enumerate(bars)]
    elif change == "removes":
        bars = [b if i < K else cut(b, FIVE[:4]) for i, b in enumerate(bars)]
    else:
        rev = FIVE[::-1]
        bars = [
            b
            if i < K
            else Bar(
                {k: {a: v[a] for a in rev} for k, v in b.market.items()},
                {a: b.weights[a] for a in rev},
                b.equity,
            )
            for i, b in enumerate(bars)
        ]
    script = Script(bars, restarts=(K,))
    straight, restarted = both(tmp_path, entry, script)
    no_prices = [Bar({}, b.weights, b.equity) for b in bars]
    assert_not_less_cautious(straight, restarted, no_prices, K)


# == 5. the snapshot row and the state file ============================================================


def _decide(risk: AdvancedRiskManager, bars: list[Bar]) -> list[RiskDecision]:
    return [risk.manage_risk_sync(*_inputs(b)) for b in bars]


def _tamper(
    path: Path, change: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]] | bytes | str
) -> None:
    """Rewrite the snapshot row's payload: ``change`` of its arrays, or raw bytes / text."""
    with sqlite3.connect(path) as conn:
        (payload,) = conn.execute("SELECT payload FROM snapshot WHERE id = 1").fetchone()
        if callable(change):
            with np.load(io.BytesIO(payload), allow_pickle=False) as archive:
                arrays = change({n: archive[n] for n in archive.files})
            out = io.BytesIO()
            np.savez(out, allow_pickle=False, **arrays)
            payload = out.getvalue()
        else:
            payload = change
        conn.execute("UPDATE snapshot SET payload = ? WHERE id = 1", (payload,))
    conn.close()


def _drop(name: str) -> Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]:
    return lambda a: {k: v for k, v in a.items() if k != name}


def _add(name: str, value: np.ndarray) -> Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]:
    return lambda a: {**a, name: value}


def _replace(
    name: str, f: Callable[[np.ndarray], np.ndarray]
) -> Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]:
    return lambda a: {**a, name: f(a[name])}


TAMPERS: dict[str, Any] = {
    "garbage_bytes": b"not an npz archive",
    "text_payload": "a text payload",
    "empty_bytes": b"",
    "older_layout_no_seasoned": _drop("seasoned"),
    "older_layout_no_strategy": lambda a: {k: v for k, v in a.items() if not k.startswith("strategy/")},
    "older_layout_no_tracker_ewma": _drop("tracker/ewma_state"),
    "newer_layout_extra_array": _add("future_thing", np.arange(3.0)),
    "newer_layout_extra_tracker_array": _add("tracker/future_thing", np.arange(3.0)),
    "short_stop_array": _replace("stop", lambda v: v[:-1]),
    "2d_atr": _replace("atr_value", lambda v: np.stack([v, v])),
    "ewma_state_wrong_shape": _replace("tracker/ewma_state", lambda v: np.zeros((2, 2))),
    "tracker_buffer_nan": _replace("tracker/buffer", lambda v: np.full_like(v, np.nan)),
    "age_wrong_length": _replace("tracker/age", lambda v: v[:-1]),
    "other_settings": _replace("settings", lambda v: np.array("tracker=something else")),
    "refit_params_garbage": _add("refit_bar", np.array(3, dtype=np.int64)),
}


@pytest.mark.parametrize("how", list(TAMPERS))
def test_a_damaged_or_foreign_snapshot_never_reaches_the_caller(tmp_path: Path, how: str) -> None:
    """A snapshot row the next open cannot use is dropped (a warning or an event): the manager opens
    and decides healthy decisions, never raising; at worst it is the crash path's restart."""
    bars = synth(N)
    path = tmp_path / "s.db"
    risk = AdvancedRiskManager(config_at(path))
    _decide(risk, bars[:K])
    risk.close_sync()
    _tamper(path, TAMPERS[how])
    risk = AdvancedRiskManager(config_at(path))
    try:
        after = _decide(risk, bars[K:])
    finally:
        risk.close_sync()
    degraded = [i for i, d in enumerate(after) if d.degraded]
    assert not degraded, (degraded[:3], after[degraded[0]].alerts)
    crash_path = tmp_path / "c.db"
    risk = AdvancedRiskManager(config_at(crash_path))
    _decide(risk, bars[:K])
    risk.close_sync()
    _forget_snapshot(str(crash_path))
    risk = AdvancedRiskManager(config_at(crash_path))
    try:
        crashed = _decide(risk, bars[K:])
    finally:
        risk.close_sync()
    worse = {
        i: w for i, (c, d) in enumerate(zip(crashed, after, strict=True)) if (w := less_cautious(c, d, None))
    }
    assert not worse, next(iter(worse.items()))


@pytest.mark.parametrize("entry", ENTRIES)
def test_snapshot_save_failing_at_close_does_not_raise(
    tmp_path: Path, entry: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The disk is full while closing (the save raises): the close does not fail, and the next open
    is the crash path's (no stale snapshot left behind)."""
    bars = synth(N)
    path = tmp_path / "s.db"

    def full_disk(self: StateStore, payload: bytes) -> str | None:
        raise sqlite3.OperationalError("database or disk is full")

    risk = AdvancedRiskManager(config_at(path))
    _decide(risk, bars[:K])
    monkeypatch.setattr(StateStore, "save_snapshot", full_disk)
    if entry == "sync":
        risk.close_sync()
    else:
        asyncio.run(risk.close())
    monkeypatch.undo()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM snapshot").fetchone() == (0,)
    conn.close()
    risk = AdvancedRiskManager(config_at(path))
    try:
        assert not any(d.degraded for d in _decide(risk, bars[K:]))
    finally:
        risk.close_sync()


@pytest.mark.parametrize("entry", ENTRIES)
def test_state_file_deleted_before_close(tmp_path: Path, entry: str) -> None:
    """The state file (and its WAL) deleted under a running manager: the close does not raise; a
    new manager on the path starts afresh and decides."""
    bars = synth(N)
    path = tmp_path / "s.db"
    risk = AdvancedRiskManager(config_at(path))
    _decide(risk, bars[:K])
    for p in tmp_path.iterdir():
        p.unlink()
    if entry == "sync":
        risk.close_sync()
    else:
        asyncio.run(risk.close())
    risk = AdvancedRiskManager(config_at(path))
    try:
        assert not any(d.degraded for d in _decide(risk, bars[K:]))
    finally:
        risk.close_sync()


@pytest.mark.parametrize("entry", ENTRIES)
def test_in_memory_store_restarts_without_error(entry: str) -> None:
    """``state_path=None``: close saves nothing, a new manager starts afresh, nothing breaks."""
    bars = synth(N)
    script = Script(bars, restarts=(K, K, K + 1))
    out = replay(entry, config_at(None), script)
    assert len(out) == N
    assert not any(d.degraded for d in out)
    fresh = replay(entry, config_at(None), Script(bars[K + 1 :]))
    assert [full(d) for d in out[K + 1 :]] == [full(d) for d in fresh]


def _n_obs(path: Path) -> int:
    store = StateStore(str(path))
    try:
        data = store.load_snapshot()
    finally:
        store.close()
    assert data is not None
    snap = decode(data)
    assert snap.tracker is not None
    return int(snap.tracker["ints"][1])


def test_two_managers_on_one_file_never_hand_out_a_stale_snapshot(tmp_path: Path) -> None:
    """Two managers on one file (docs: several processes may open it): A decides bars 0..K-2, B
    decides bar K-1 and closes, then A closes (late). The next open must not get A's engine state
    as if it were the newest: it has not seen bar K-1. A's save is refused (its last decision is
    not the journal's newest), so the snapshot is B's, whose state goes with the newest row."""
    bars = synth(N)
    path = tmp_path / "s.db"
    a = AdvancedRiskManager(config_at(path))
    _decide(a, bars[: K - 1])
    b = AdvancedRiskManager(config_at(path))
    b.manage_risk_sync(*_inputs(bars[K - 1]))
    b.close_sync()
    a.close_sync()
    assert _n_obs(path) == 1, "the snapshot handed out is not the one of the newest journalled decision"


def test_two_managers_on_one_file_newer_decision_makes_it_stale(tmp_path: Path) -> None:
    """A closes, then B (opened before A closed) decides a bar: A's snapshot is stale."""
    bars = synth(N)
    path = tmp_path / "s.db"
    a = AdvancedRiskManager(config_at(path))
    _decide(a, bars[:K])
    b = AdvancedRiskManager(config_at(path))
    a.close_sync()
    b.manage_risk_sync(*_inputs(bars[K]))
    store = StateStore(str(path))
    try:
        assert store.load_snapshot() is None
    finally:
        store.close()
        b.close_sync()


def test_snapshot_round_trips_exactly(tmp_path: Path) -> None:
    """encode/decode of what a close saved is the identity (the arrays bit for bit)."""
    path = tmp_path / "s.db"
    risk = AdvancedRiskManager(config_at(path))
    _decide(risk, synth(N))
    risk.close_sync()
    store = StateStore(str(path))
    try:
        data = store.load_snapshot()
    finally:
        store.close()
    assert data is not None
    assert encode(decode(data)) == data


# == 6. bars without returns or prices, big books, GJR-GARCH, the shipped models ======================


@pytest.mark.parametrize("entry", ENTRIES)
def test_prices_only_bars_restart_not_less_cautious(tmp_path: Path, entry: str) -> None:
    """Prices without returns: the docs allow the first bar after a restart to miss its return (the
    tracker is a bar behind from then on). The restarted run must still not be less cautious."""
    bars = synth(N, returns=False)
    script = Script(bars, restarts=(K,))
    straight, restarted = both(tmp_path, entry, script)
    assert_not_less_cautious(straight, restarted, bars, K)


@pytest.mark.parametrize("entry", ENTRIES)
def test_prices_only_bars_graceful_restart_is_exact(tmp_path: Path, entry: str) -> None:
    """Holds, although docs/embedding.md says the first bar after any restart misses its return."""
    bars = synth(N, returns=False)
    script = Script(bars, restarts=(K,))
    straight, restarted = both(tmp_path, entry, script)
    assert_exact(straight, restarted, K)


@pytest.mark.slow
@pytest.mark.parametrize("entry", ENTRIES)
def test_graceful_restart_300_assets_is_exact(tmp_path: Path, entry: str) -> None:
    assets = tuple(f"a{i:03d}" for i in range(300))
    bars = synth(40, assets=assets)
    script = Script(bars, restarts=(30,))
    straight, restarted = both(tmp_path, entry, script)
    assert_exact(straight, restarted, 30)


@pytest.mark.parametrize("entry", ENTRIES)
def test_graceful_restart_60_assets_is_exact(tmp_path: Path, entry: str) -> None:
    assets = tuple(f"a{i:03d}" for i in range(60))
    bars = synth(40, assets=assets)
    script = Script(bars, restarts=(30,))
    straight, restarted = both(tmp_path, entry, script)
    assert_exact(straight, restarted, 30)


GARCH: dict[str, Any] = {
    "tracker": {"method": "fhs_garch", "window": 30, "correlation_warmup": 20, "garch_refit_every": 20},
    "garch_install_lag": 4,
}


@pytest.mark.parametrize("k", [41, 42, 43, 44, 45])
@pytest.mark.parametrize("entry", ENTRIES)
def test_graceful_restart_across_a_garch_install_bar_is_exact(tmp_path: Path, entry: str, k: int) -> None:
    """fhs_garch with deterministic refits every 20 bars, installed 4 bars later: a close while a
    refit is pending (and on its install bar) goes on exactly."""
    script = Script(synth(60, seed=3), restarts=(k,))
    straight, restarted = both(tmp_path, entry, script, **GARCH)
    assert_exact(straight, restarted, k)


def _stock_bars(n: int, start: int = 0) -> tuple[tuple[str, ...], list[Bar]]:
    from advanced_risk.data import load_sp500_stocks

    frame = load_sp500_stocks().iloc[start : start + n + 1]
    assets = tuple(str(c) for c in frame.columns)
    px = frame.to_numpy(dtype=np.float64)
    out = []
    equity = 1e6
    book = dict.fromkeys(assets, 0.9 / len(assets))
    for t in range(1, n + 1):
        r = px[t] / px[t - 1] - 1.0
        equity *= 1.0 + 0.9 * float(r.mean())
        market = {
            "returns": dict(zip(assets, r.tolist(), strict=True)),
            "prices": dict(zip(assets, px[t].tolist(), strict=True)),
        }
        out.append(Bar(market, dict(book), equity))
    return assets, out


@pytest.mark.parametrize("entry", ENTRIES)
def test_graceful_restart_with_shipped_policy_not_less_cautious(tmp_path: Path, entry: str) -> None:
    _, bars = _stock_bars(100)
    script = Script(bars, restarts=(85,), policy=POLICY)
    straight, restarted = both(tmp_path, entry, script, deadline_ms=20_000.0)
    assert_not_less_cautious(straight, restarted, bars, 85)


@pytest.mark.parametrize("entry", ENTRIES)
def test_graceful_restart_with_shipped_policy_is_exact(tmp_path: Path, entry: str) -> None:
    """The shipped policy (20 stocks): every field after a graceful restart, its MC-dropout draws
    and drift score included."""
    _, bars = _stock_bars(100)
    script = Script(bars, restarts=(85,), policy=POLICY)
    straight, restarted = both(tmp_path, entry, script, deadline_ms=20_000.0)
    assert straight[85].uncertainty is not None
    assert_exact(straight, restarted, 85)


@pytest.mark.skipif(not Path(AGENTS).exists(), reason="no shipped risk agents")
@pytest.mark.parametrize("entry", ENTRIES)
def test_graceful_restart_with_shipped_risk_agents_not_less_cautious(tmp_path: Path, entry: str) -> None:
    _, bars = _stock_bars(100)
    script = Script(bars, restarts=(85,), policy=POLICY, agents=AGENTS)
    straight, restarted = both(tmp_path, entry, script, deadline_ms=20_000.0)
    assert_not_less_cautious(straight, restarted, bars, 85)


@pytest.mark.skipif(not Path(AGENTS).exists(), reason="no shipped risk agents")
@pytest.mark.parametrize("entry", ENTRIES)
def test_graceful_restart_with_shipped_risk_agents_is_exact(tmp_path: Path, entry: str) -> None:
    """The shipped risk agents (and the policy): every field after a graceful restart."""
    _, bars = _stock_bars(100)
    script = Script(bars, restarts=(85,), policy=POLICY, agents=AGENTS)
    straight, restarted = both(tmp_path, entry, script, deadline_ms=20_000.0)
    assert straight[85].risk_agents is not None
    assert_exact(straight, restarted, 85)


# == 7. hypothesis: restarts at drawn bars ============================================================

HYP = settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@st.composite
def scripts(draw: st.DrawFn, crash: bool) -> tuple[str, Script]:
    n = 50
    seed = draw(st.integers(0, 1000))
    low = 1 if crash else 21  # graceful: after correlation_warmup (an earlier one: test_early_*)
    restarts = sorted(draw(st.lists(st.integers(low, n - 1), max_size=3)))
    # faults on bars that are neither a restart's first bar nor the bar before one (the two
    # defects test_degraded_first_bar_* and test_restart_mid_var_streak_* record)
    banned = {r for r in restarts} | {r - 1 for r in restarts}
    fail_at = frozenset(draw(st.lists(st.integers(1, n - 1).filter(lambda i: i not in banned), max_size=4)))
    spike = draw(st.sampled_from([None, 0.22, 0.35]))
    start = draw(st.integers(5, n - 5))
    bars = [
        Bar(b.market, b.weights, b.equity, spike if spike and start <= i < start + 6 else 0.0)
        for i, b in enumerate(synth(n, seed=seed, vol=draw(st.sampled_from([0.005, 0.01, 0.02]))))
    ]
    entry = draw(st.sampled_from(ENTRIES))
    return entry, Script(bars, restarts=tuple(restarts), fail_at=fail_at, policy="fake", crash=crash)


@HYP
@given(case=scripts(crash=False))
def test_hypothesis_graceful_restarts_are_exact(
    tmp_path_factory: pytest.TempPathFactory, case: tuple[str, Script]
) -> None:
    entry, script = case
    tmp = tmp_path_factory.mktemp("hyp")
    straight, restarted = both(tmp, entry, script, drawdown_basis="equity")
    first = min(script.restarts, default=len(script.bars))
    assert_exact(straight, restarted, first)


@HYP
@given(case=scripts(crash=True))
def test_hypothesis_crash_restarts_keep_the_documented_caps(
    tmp_path_factory: pytest.TempPathFactory, case: tuple[str, Script]
) -> None:
    """Without the snapshot the docs promise less (the tracker starts afresh): the state is never
    less severe (the shock rule off: test_crash_restart_misses_a_shock_past_warmup), and until the
    new tracker has correlation_warmup bars the leverage is at most the last journalled decision's
    (a HALTED decision's 0 caps nothing)."""
    entry, script = case
    tmp = tmp_path_factory.mktemp("hyp")
    straight, restarted = both(tmp, entry, script, drawdown_basis="equity", reduce_on_correlation_shock=False)
    warmup = BASE["tracker"]["correlation_warmup"]
    for k in script.restarts:
        cap = restarted[k - 1].leverage
        for i in range(k, min(k + warmup - 1, len(script.bars))):  # the tracker has i - k + 1 bars
            if i in script.restarts[script.restarts.index(k) + 1 :]:
                break
            r, s = restarted[i], straight[i]
            assert SEVERITY[r.trading_state] >= SEVERITY[s.trading_state], (i, r.alerts, s.alerts)
            if cap > 0.0 and not r.degraded:
                assert r.leverage <= cap + 1e-12, (k, i, r.leverage, cap)


@pytest.mark.xfail(
    strict=True,
    reason="a crash restart (no snapshot) at bar 6 misses the correlation shock the running "
    "manager sees at bar 27, 21 bars after the restart, i.e. past correlation_warmup (20): the "
    "docs' limit ('a correlation shock within correlation_warmup bars of such a restart is not "
    "seen') is too narrow: the new tracker's baseline (average 0.175, no shock) is not the running "
    "one's (0.149, shock): ACTIVE against REDUCING, exposure 0.80 against 0.20, 14 bars less "
    "cautious (seed 3, vol 0.005, found by a hypothesis run over crash restarts)",
)
@pytest.mark.parametrize("entry", ENTRIES)
def test_crash_restart_misses_a_shock_past_warmup(tmp_path: Path, entry: str) -> None:
    bars = synth(50, seed=3, vol=0.005)
    script = Script(bars, restarts=(6,), policy="fake", crash=True)
    straight, restarted = both(tmp_path, entry, script, drawdown_basis="equity")
    no_prices = [Bar({}, b.weights, b.equity) for b in bars]
    assert_not_less_cautious(straight, restarted, no_prices, 6)
