"""Benchmark cases: our indicators and Wilder ATR against the same TA-Lib functions.

Each case runs ours (the public, validating function) and TA-Lib on the bundled S&P 500 index
OHLCV (5,031 bars, where per-call overhead dominates) and on the same bars tiled to 100,000 (where
the kernels dominate). ratio = TA-Lib time / our time; the target is 0.8 (at most 25% slower).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import talib

from _harness import Row, median_seconds
from advanced_risk.data import load_sp500_index
from advanced_risk.measures import bollinger_bands, macd, momentum, rsi, stochastic, wilder_atr

TARGET = 0.8
LONG_BARS = 100_000


def _bars() -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    df = load_sp500_index()
    hlc = tuple(np.ascontiguousarray(df[col].to_numpy(dtype=np.float64)) for col in ("High", "Low", "Close"))
    reps = -(-LONG_BARS // len(df))
    long = tuple(np.ascontiguousarray(np.tile(a, reps)[:LONG_BARS]) for a in hlc)
    return {f"{len(df):,} bars": hlc, f"{LONG_BARS:,} bars": long}  # type: ignore[dict-item]


def _cases(
    h: np.ndarray, lo: np.ndarray, c: np.ndarray
) -> list[tuple[str, str, Callable[[], Any], Callable[[], Any]]]:
    return [
        ("wilder_atr n=14", "talib.ATR", lambda: wilder_atr(h, lo, c, 14), lambda: talib.ATR(h, lo, c, 14)),
        ("rsi n=14", "talib.RSI", lambda: rsi(c, 14), lambda: talib.RSI(c, 14)),
        ("macd 12/26/9", "talib.MACD", lambda: macd(c, 12, 26, 9), lambda: talib.MACD(c, 12, 26, 9)),
        (
            "bollinger_bands n=20 k=2",
            "talib.BBANDS (SMA)",
            lambda: bollinger_bands(c, 20, 2.0),
            lambda: talib.BBANDS(c, 20, 2.0, 2.0, 0),
        ),
        ("momentum n=10", "talib.MOM", lambda: momentum(c, 10), lambda: talib.MOM(c, 10)),
        (
            "stochastic 5/3/3",
            "talib.STOCH (SMA)",
            lambda: stochastic(h, lo, c, 5, 3, 3),
            lambda: talib.STOCH(h, lo, c, 5, 3, 0, 3, 0),
        ),
    ]


def rows() -> list[Row]:
    """One row per indicator and series length: ours (with validation) against TA-Lib."""
    out = []
    for label, (h, lo, c) in _bars().items():
        for kernel, reference, ours, ref in _cases(h, lo, c):
            ours()  # numba compile / cache load outside the timing
            out.append(
                Row(
                    kernel=f"{kernel}, {label}",
                    reference=reference,
                    ours_s=median_seconds(ours, repeats=9),
                    reference_s=median_seconds(ref, repeats=9),
                    target=TARGET,
                )
            )
    return out


if __name__ == "__main__":
    from _harness import print_table

    print_table(rows())
