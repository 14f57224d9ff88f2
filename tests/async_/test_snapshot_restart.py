"""A graceful restart goes on from the engine snapshot; any other restart starts afresh, safely.

The snapshot is used only when it is exact: same universe in the same order, same tracker / ATR /
drawdown settings, and saved with the newest journalled decision. Otherwise (another universe,
other settings, a later run that crashed, a damaged row, a close whose store failed) the restart
behaves as one without a snapshot: the tracker starts afresh and the leverage cap holds, and
nothing raises into the bot.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from advanced_risk.config import RiskConfig
from advanced_risk.engine.state import StateStore
from advanced_risk.manager import AdvancedRiskManager
from advanced_risk.types import MarketState, Portfolio

ASSETS = ("A", "B", "C")


def _bars(n: int, assets: tuple[str, ...] = ASSETS, seed: int = 5) -> list[MarketState]:
    rng = np.random.default_rng(seed)
    returns = rng.normal(0.0003, 0.01, size=(n, len(assets)))
    prices = 100.0 * np.cumprod(1.0 + returns, axis=0)
    return [
        MarketState(
            returns=dict(zip(assets, r.tolist(), strict=True)),
            prices=dict(zip(assets, p.tolist(), strict=True)),
        )
        for r, p in zip(returns, prices, strict=True)
    ]


def _config(path: Path, **overrides: Any) -> RiskConfig:
    values: dict[str, Any] = {
        "state_path": str(path),
        "deadline_ms": 10_000.0,
        "tracker": {"method": "fhs_ewma"},
        "deterministic_refits": True,
    }
    return RiskConfig(**{**values, **overrides})


def _run(config: RiskConfig, bars: list[MarketState]) -> AdvancedRiskManager:
    """A manager that decided ``bars`` (left open)."""
    risk = AdvancedRiskManager(config)
    for bar in bars:
        risk.manage_risk_sync(bar, Portfolio(weights=dict.fromkeys(bar.returns, 0.3)))
    return risk


def _tracked_bars(risk: AdvancedRiskManager) -> int:
    engine = risk._engine
    assert engine is not None
    assert engine.tracker is not None
    return engine.tracker.n_observations


def test_a_graceful_restart_goes_on_from_the_snapshot(tmp_path: Path) -> None:
    config, bars = _config(tmp_path / "s.db"), _bars(90)
    _run(config, bars[:80]).close_sync()
    again = _run(config, bars[80:81])
    try:
        assert _tracked_bars(again) == 81
    finally:
        again.close_sync()


def test_another_universe_or_other_settings_start_afresh(tmp_path: Path) -> None:
    path = tmp_path / "u.db"
    _run(_config(path), _bars(80)).close_sync()
    other = _run(_config(path), _bars(1, ("A", "B", "D")))  # D joined, C left
    try:
        assert _tracked_bars(other) == 1
    finally:
        other.close_sync()
    _run(_config(path), _bars(80)).close_sync()
    changed = _run(_config(path, sizing={"atr_period": 5}), _bars(1))
    try:
        assert _tracked_bars(changed) == 1
    finally:
        changed.close_sync()
    reordered = _run(_config(path), _bars(1, ("C", "B", "A")))
    try:
        assert _tracked_bars(reordered) == 1  # the same assets in another order: not exact, not used
    finally:
        reordered.close_sync()


def test_decisions_after_the_snapshot_make_it_stale(tmp_path: Path) -> None:
    """A run that decided after the close and crashed (no close, no new snapshot): the snapshot
    is older than the journal, so the next open does not read it."""
    path = tmp_path / "c.db"
    _run(_config(path), _bars(80)).close_sync()
    with StateStore(path) as store:
        store.append_decision("a-later-run-1", {"leverage": 0.5, "rebalance_weights": {"A": 0.3}})
    again = _run(_config(path), _bars(1))
    try:
        assert _tracked_bars(again) == 1
    finally:
        again.close_sync()


def test_a_damaged_snapshot_is_not_used_and_the_manager_still_decides(tmp_path: Path) -> None:
    path = tmp_path / "d.db"
    _run(_config(path), _bars(80)).close_sync()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE snapshot SET payload = ?", (b"\x00garbage" * 10,))
    conn.close()
    again = AdvancedRiskManager(_config(path))
    try:
        decision = again.manage_risk_sync(_bars(1)[0], Portfolio(weights=dict.fromkeys(ASSETS, 0.3)))
        assert _tracked_bars(again) == 1
        assert not decision.degraded
    finally:
        again.close_sync()


@pytest.mark.parametrize("entry", ["sync", "async"])
def test_a_close_whose_store_fails_does_not_raise(tmp_path: Path, entry: str) -> None:
    path = tmp_path / "f.db"
    risk = _run(_config(path), _bars(30))
    os.remove(path)  # the file deleted under the running manager: the snapshot cannot be saved
    if entry == "sync":
        risk.close_sync()
    else:
        asyncio.run(risk.close())


def test_a_manager_closed_before_any_bar_saves_nothing(tmp_path: Path) -> None:
    path = tmp_path / "e.db"
    AdvancedRiskManager(_config(path)).close_sync()
    with StateStore(path) as store:
        assert store.load_snapshot() is None


def _replay(config: RiskConfig, bars: list[MarketState], restart_at: int | None) -> list[dict[str, Any]]:
    risk, out = AdvancedRiskManager(config), []
    try:
        for i, bar in enumerate(bars):
            if i == restart_at:
                risk.close_sync()
                risk = AdvancedRiskManager(config)
            decision = risk.manage_risk_sync(bar, Portfolio(weights={"A": 0.5, "B": -0.2, "C": 0.3}))
            out.append({k: v for k, v in decision.items() if k not in ("decision_id", "latency_ms")})
    finally:
        risk.close_sync()
    return out


def test_a_graceful_restart_with_prices_only_bars_is_exact(tmp_path: Path) -> None:
    """A bot that passes closes only: the first bar after the restart derives its return from the
    snapshot's last closes, so the tracker misses no bar and every decision is the straight run's."""
    bars = [MarketState(prices=dict(b.prices)) for b in _bars(100)]
    straight = _replay(_config(tmp_path / "a.db"), bars, None)
    restarted = _replay(_config(tmp_path / "b.db"), bars, 70)
    diffs = [i for i in range(70, len(bars)) if straight[i] != restarted[i]]
    assert not diffs, (diffs[0], straight[diffs[0]], restarted[diffs[0]])


class _OddAllocator:
    """A user's allocator whose saved state is not JSON data: it is left out, the rest is saved."""

    asset_count = 3
    history_length = 5
    asset_names = ASSETS

    def allocate(self, returns: np.ndarray, weights: np.ndarray, drawdown: float) -> Any:
        from advanced_risk.engine.protocols import Allocation

        return Allocation(np.array([0.3, 0.3, 0.3, 0.1]), None)

    def snapshot_state(self) -> dict[str, Any]:
        return {"handle": object()}

    def restore_state(self, state: Any) -> None:
        raise AssertionError("never saved, never restored")


def test_a_component_state_that_is_not_json_is_left_out_and_the_rest_is_saved(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    risk = AdvancedRiskManager(_config(path), policy=_OddAllocator())
    for bar in _bars(40):
        risk.manage_risk_sync(bar, Portfolio(weights=dict.fromkeys(ASSETS, 0.3)))
    risk.close_sync()
    again = AdvancedRiskManager(_config(path), policy=_OddAllocator())
    try:
        again.manage_risk_sync(_bars(41)[40], Portfolio(weights=dict.fromkeys(ASSETS, 0.3)))
        assert _tracked_bars(again) == 41
    finally:
        again.close_sync()
