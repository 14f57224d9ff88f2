"""The engine's learnt state, saved at a graceful close and restored at the next open.

What the journal cannot give back (it holds decisions, not market data) is what the engine has
learnt from the bars: the tracker's return history, EWMA covariance and correlation-shock state,
each asset's ATR, the last closes, the stops as they trail and the drawdown of the book asked for
(``RiskConfig.drawdown_basis="strategy"``), the long-run volatility of a relative volatility target,
the learned components' state (the MC-dropout generators, the risk agents' bookkeeping), and a
GJR-GARCH refit under way (a close waits for it,
so that it installs at its own bar after the restart). :class:`EngineSnapshot` holds them;
:func:`encode` writes it as an uncompressed NumPy ``.npz`` archive (no pickle: ``np.load`` with
``allow_pickle=False`` reads it back, and a damaged one is refused, never executed), which
``StateStore.save_snapshot`` keeps beside the journal.

A snapshot is used only where it is exact: the first bar after the restart names the same assets
in the same order, and the tracker and ATR settings are those it was saved with (:func:`settings_key`).
Otherwise it is dropped with a ``snapshot_not_used`` event and the restart starts those states
afresh, as without one (the leverage cap of the restart still applies).
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from advanced_risk.config import RiskConfig
from advanced_risk.errors import InvalidInputError
from advanced_risk.measures.validation import BoolArray, FloatArray, IntArray
from advanced_risk.risk.garch import GarchParams

__all__ = ["EngineSnapshot", "decode", "encode", "settings_key"]

_TRACKER = "tracker/"  # prefix of the tracker's arrays in the archive
_STRATEGY = "strategy/"  # ... and of the strategy drawdown's


@dataclass(frozen=True, slots=True)
class EngineSnapshot:
    """The engine's per-asset state after its last bar, in the universe order ``assets``."""

    assets: tuple[str, ...]
    """The universe, in order."""
    settings: str
    """:func:`settings_key` of the configuration it was saved with."""
    tracker: Mapping[str, np.ndarray] | None
    """``RiskTracker.state()`` (None: no returns seen yet)."""
    atr_counts: IntArray
    """True ranges seen per asset (``StreamingATR.counts``)."""
    atr_total: FloatArray
    """``StreamingATR.total``."""
    atr_value: FloatArray
    """``StreamingATR.value`` (NaN until ready)."""
    atr_prev_close: FloatArray
    """``StreamingATR.prev_close``."""
    last_close: FloatArray
    """The last close per asset (NaN: none seen)."""
    stop: FloatArray
    """The protective stop per asset (NaN: none)."""
    stop_short: BoolArray
    """Whether each stop is a short's."""
    seasoned: bool
    """Every asset had the tracker's window of its own history."""
    strategy: Mapping[str, np.ndarray] | None = None
    """``StrategyDrawdown.state()`` of the book asked for (None: no bar observed)."""
    refit: tuple[int, GarchParams] | None = None
    """A GJR-GARCH refit started and not installed yet: its fit bar and its parameters."""
    long_run: tuple[float, float] | None = None
    """``LongRunVolatility.state()`` of the relative volatility target (None: not configured)."""
    stamp: str = ""
    """The journalled decision it was saved with (set when read back from a store; not encoded)."""
    components: Mapping[str, Any] | None = None
    """``"policy"`` / ``"agents"`` -> the ``snapshot_state()`` of a learned component that has one
    (JSON data: the MC-dropout generators, the agents' bookkeeping)."""


def settings_key(config: RiskConfig) -> str:
    """The settings a snapshot must be restored with: the tracker's, the ATR period, the strategy
    drawdown's window and trend, and the long-run volatility's half-life."""
    return (
        f"{config.tracker!r}; atr_period={config.sizing.atr_period}; "
        f"drawdown_window={config.drawdown_window}; trend_halflife={config.leverage.trend_halflife}; "
        f"relative_halflife={config.leverage.relative_halflife}"
    )


def encode(snapshot: EngineSnapshot) -> bytes:
    """The snapshot as ``.npz`` bytes (see the module docstring)."""
    arrays: dict[str, np.ndarray] = {
        "assets": np.array(snapshot.assets, dtype=np.str_),
        "settings": np.array(snapshot.settings, dtype=np.str_),
        "atr_counts": snapshot.atr_counts,
        "atr_total": snapshot.atr_total,
        "atr_value": snapshot.atr_value,
        "atr_prev_close": snapshot.atr_prev_close,
        "last_close": snapshot.last_close,
        "stop": snapshot.stop,
        "stop_short": snapshot.stop_short,
        "seasoned": np.array(snapshot.seasoned),
    }
    for name, value in (snapshot.tracker or {}).items():
        arrays[_TRACKER + name] = value
    for name, value in (snapshot.strategy or {}).items():
        arrays[_STRATEGY + name] = value
    if snapshot.components:
        arrays["components"] = np.array(json.dumps(snapshot.components), dtype=np.str_)
    if snapshot.long_run is not None:
        arrays["long_run"] = np.array(snapshot.long_run, dtype=np.float64)
    if snapshot.refit is not None:
        arrays["refit_bar"] = np.array(snapshot.refit[0], dtype=np.int64)
        arrays["refit_params"] = snapshot.refit[1].to_array()
    out = io.BytesIO()
    np.savez(out, allow_pickle=False, **arrays)
    return out.getvalue()


def _pair(values: np.ndarray) -> tuple[float, float]:
    first, second = (float(v) for v in values)
    return first, second


def _refit(arrays: Mapping[str, np.ndarray]) -> tuple[int, GarchParams] | None:
    if "refit_bar" not in arrays:
        return None
    return int(arrays["refit_bar"]), GarchParams.from_array(arrays["refit_params"])


def decode(data: bytes) -> EngineSnapshot:
    """The snapshot :func:`encode` wrote.

    Raises
    ------
    InvalidInputError
        ``data`` is not such an archive (damaged, truncated, another format, an array missing or
        of another length than the universe): the message says which.
    """
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
        assets = tuple(str(a) for a in arrays["assets"])
        n = len(assets)
        tracker = {k.removeprefix(_TRACKER): v for k, v in arrays.items() if k.startswith(_TRACKER)}
        strategy = {k.removeprefix(_STRATEGY): v for k, v in arrays.items() if k.startswith(_STRATEGY)}
        snapshot = EngineSnapshot(
            assets=assets,
            settings=str(arrays["settings"]),
            tracker=tracker or None,
            atr_counts=arrays["atr_counts"].astype(np.int64),
            atr_total=arrays["atr_total"].astype(np.float64),
            atr_value=arrays["atr_value"].astype(np.float64),
            atr_prev_close=arrays["atr_prev_close"].astype(np.float64),
            last_close=arrays["last_close"].astype(np.float64),
            stop=arrays["stop"].astype(np.float64),
            stop_short=arrays["stop_short"].astype(bool),
            seasoned=bool(arrays["seasoned"]),
            strategy=strategy or None,
            refit=_refit(arrays),
            long_run=None if "long_run" not in arrays else _pair(arrays["long_run"]),
            components=json.loads(str(arrays["components"])) if "components" in arrays else None,
        )
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as exc:
        raise InvalidInputError(
            f"snapshot is not one the engine saved: {type(exc).__name__}: {exc}"
        ) from None
    per_asset = ("atr_counts", "atr_total", "atr_value", "atr_prev_close", "last_close", "stop", "stop_short")
    wrong = [name for name in per_asset if getattr(snapshot, name).shape != (n,)]
    if wrong:
        raise InvalidInputError(f"snapshot's {wrong[0]} does not have one value per asset ({n})")
    return snapshot
