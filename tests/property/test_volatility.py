"""Property tests of ATR and the indicators: bounds hold and finite bars give finite output."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from advanced_risk.measures import (
    bollinger_bands,
    macd,
    momentum,
    realised_volatility,
    rsi,
    stochastic,
    true_range,
    wilder_atr,
)
from advanced_risk.measures.validation import MAX_ABS_RETURN

_price = st.floats(1e-3, 1e5, allow_nan=False, allow_infinity=False, allow_subnormal=False)
_unit = st.floats(0.0, 1.0)
_spread = st.floats(0.0, 0.5)


@st.composite
def _bars(draw: st.DrawFn, min_len: int = 2, max_len: int = 80) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Valid bars: low > 0, high = low * (1 + spread) >= low, close anywhere in [low, high]."""
    n = draw(st.integers(min_len, max_len))
    low = np.array(draw(st.lists(_price, min_size=n, max_size=n)))
    spread = np.array(draw(st.lists(_spread, min_size=n, max_size=n)))
    where = np.array(draw(st.lists(_unit, min_size=n, max_size=n)))
    high = low * (1.0 + spread)
    close = np.clip(low + where * (high - low), low, high)
    return high, low, close


_closes = st.integers(2, 80).flatmap(lambda n: st.lists(_price, min_size=n, max_size=n)).map(np.array)


@settings(deadline=None, max_examples=50)
@given(bars=_bars(), data=st.data())
def test_wilder_atr_is_nonnegative_and_finite_after_its_prefix(
    bars: tuple[np.ndarray, np.ndarray, np.ndarray], data: st.DataObject
) -> None:
    n = data.draw(st.integers(1, len(bars[0]) - 1))
    atr = wilder_atr(*bars, n=n)
    assert np.isnan(atr[:n]).all()
    assert np.isfinite(atr[n:]).all()
    assert (atr[n:] >= 0.0).all()


@settings(deadline=None, max_examples=50)
@given(bars=_bars())
def test_true_range_is_at_least_the_bars_own_range(bars: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    high, low, _ = bars
    tr = true_range(*bars)
    assert (tr[1:] >= high[1:] - low[1:]).all()


@settings(deadline=None, max_examples=50)
@given(close=_closes, data=st.data())
def test_rsi_stays_in_0_100(close: np.ndarray, data: st.DataObject) -> None:
    n = data.draw(st.integers(2, max(2, len(close) - 1)))
    if len(close) <= n:
        return
    out = rsi(close, n=n)
    assert ((out[n:] >= 0.0) & (out[n:] <= 100.0)).all()


@settings(deadline=None, max_examples=50)
@given(bars=_bars(min_len=40))
def test_finite_input_gives_finite_output_past_the_nan_prefix(
    bars: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    high, low, close = bars
    outputs = {
        14: [rsi(close)],
        33: list(macd(close)),
        19: list(bollinger_bands(close)),
        10: [momentum(close)],
        8: list(stochastic(high, low, close)),
        # returns since the first close, within the accepted |r| <= MAX_ABS_RETURN
        20: [realised_volatility(np.minimum(close / close[0] - 1.0, MAX_ABS_RETURN), 21)],
    }
    for prefix, arrays in outputs.items():
        for out in arrays:
            assert out.shape == close.shape
            assert np.isnan(out[:prefix]).all()
            assert np.isfinite(out[prefix:]).all()


@settings(deadline=None, max_examples=50)
@given(bars=_bars(min_len=9))
def test_stochastic_stays_in_0_100_up_to_rounding_when_close_is_inside_the_bar(
    bars: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    for line in stochastic(*bars):
        values = line[8:]
        # (C - LL) / ((HH - LL) / 100) can round a hair past 100 when C == HH, and the running-sum
        # SMA (TA-Lib's) can leave -5e-15 where the exact mean is 0.
        assert ((values >= -1e-9) & (values <= 100.0 + 1e-9)).all()


@settings(deadline=None, max_examples=50)
@given(close=_closes.filter(lambda c: len(c) >= 3), data=st.data())
def test_bollinger_lower_band_never_exceeds_upper(close: np.ndarray, data: st.DataObject) -> None:
    n = data.draw(st.integers(2, len(close)))
    upper, middle, lower = bollinger_bands(close, n=n, k=2.0)
    assert (lower[n - 1 :] <= middle[n - 1 :]).all()
    assert (middle[n - 1 :] <= upper[n - 1 :]).all()
