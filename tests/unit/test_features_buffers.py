"""The policy's market features with per-asset buffers allocated once: bit for bit the formulation
they replaced (a copy, an RSI array, two rolling arrays and every log return per asset).

The reference below is that formulation verbatim (but for the log returns, taken with the C
library's ``log1p`` as the kernel takes them: NumPy's may differ in the last bit), on the public
kernels (``rsi_kernel``, ``rolling_mean_std_kernel``, themselves checked against TA-Lib and pandas
in tests/oracle and
tests/unit/test_indicators.py). The ``*_into`` kernels are also compared with their allocating
twins directly.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from advanced_risk.measures.kernels import (
    rolling_mean_std_into_kernel,
    rolling_mean_std_kernel,
    rsi_into_kernel,
    rsi_kernel,
)
from advanced_risk.measures.validation import PERIODS_PER_YEAR
from advanced_risk.rl.portfolio.accounting import MOMENTUM_PERIOD, RSI_PERIOD, market_features_kernel


def reference_features(returns: np.ndarray, history: int, window: int, steps: int) -> np.ndarray:
    n = returns.shape[1]
    w = window
    out = np.empty((steps + 1, n * (w + 3)))
    annualise = np.sqrt(PERIODS_PER_YEAR)
    close = np.empty(returns.shape[0] + 1)
    for i in range(n):
        r = np.ascontiguousarray(returns[:, i])
        close[0] = 1.0
        for k in range(r.shape[0]):
            close[k + 1] = close[k] * (1.0 + r[k])
        rsi = rsi_kernel(close, RSI_PERIOD)
        vol = rolling_mean_std_kernel(r, w, 1)[1]
        # the C library's log1p, as the kernel calls it: NumPy's own loops (SIMD on AVX-512 hosts)
        # may round the last bit the other way (-0.00026720504620044637 against ...4640)
        log_r = np.array([math.log1p(x) for x in r])
        for t in range(steps + 1):
            now = history + t
            for k in range(w):
                out[t, i * w + k] = log_r[now - w + k]
            out[t, n * w + i] = rsi[now] / 100.0 - 0.5
            out[t, n * w + n + i] = close[now] / close[now - MOMENTUM_PERIOD] - 1.0
            out[t, n * w + 2 * n + i] = vol[now - 1] * annualise
    return out


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and np.array_equal(a.view(np.int64), b.view(np.int64))


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 25),
    window=st.integers(2, 8),
    extra=st.integers(0, 30),
    steps=st.sampled_from([0, 0, 1, 7, 80]),
    scale=st.sampled_from([1e-4, 0.01, 0.2]),
    fortran=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_features_are_the_allocating_formulation_bit_for_bit(
    n: int, window: int, extra: int, steps: int, scale: float, fortran: bool, seed: int
) -> None:
    history = max(window, RSI_PERIOD + 1, MOMENTUM_PERIOD) + extra
    r = np.clip(np.random.default_rng(seed).standard_t(3, (history + steps, n)) * scale, -0.9, 5.0)
    if fortran:
        r = np.asfortranarray(r)
    assert same_bits(
        market_features_kernel(r, history, window, steps), reference_features(r, history, window, steps)
    )


@settings(max_examples=100, deadline=None)
@given(
    size=st.integers(16, 400),
    window=st.integers(2, 30),
    ddof=st.integers(0, 1),
    seed=st.integers(0, 2**32 - 1),
)
def test_into_kernels_write_what_the_allocating_ones_return(
    size: int, window: int, ddof: int, seed: int
) -> None:
    x = np.random.default_rng(seed).standard_normal(size) * 0.01
    window = min(window, size)
    mean, std = np.full(size, 7.0), np.full(size, 7.0)  # stale values must all be overwritten
    rolling_mean_std_into_kernel(x, window, ddof, mean, std)
    want_mean, want_std = rolling_mean_std_kernel(x, window, ddof)
    assert same_bits(mean, want_mean)
    assert same_bits(std, want_std)
    close = 100.0 * np.cumprod(1.0 + x)
    period = min(14, size - 1)
    rsi = np.full(size, 7.0)
    rsi_into_kernel(close, period, rsi)
    assert same_bits(rsi, rsi_kernel(close, period))
