"""``checked_allocation``'s one-kernel path (``engine/components.py``, issue 14) against the NumPy
checks it skips, kept verbatim here as the reference: the same answer bit for bit (the clipped
weights, signed zeros included, the uncertainty and the drift), and the same refusals (the kernel
path steps aside and the NumPy checks raise with their message).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from advanced_risk.engine.components import checked_allocation
from advanced_risk.engine.protocols import Allocation
from advanced_risk.types import DriftStatus


def reference_checked_allocation(allocation: Any, n_assets: int) -> Allocation:
    """``checked_allocation`` at f72a634 (the NumPy checks), verbatim: the reference of the fast path."""
    if not isinstance(allocation, Allocation):
        raise ValueError(f"allocate returned {type(allocation).__name__}, not an Allocation")
    weights = np.asarray(allocation.weights, dtype=np.float64)
    if weights.shape != (n_assets + 1,):
        raise ValueError(f"allocation weights have shape {weights.shape}, expected ({n_assets + 1},)")
    if not np.isfinite(weights).all() or weights.min() < -1e-9 or weights.max() > 1.0 + 1e-9:
        raise ValueError(f"allocation weights must be finite and in [0, 1], got {weights.tolist()[:8]}")
    if abs(float(weights.sum()) - 1.0) > 1e-6:
        raise ValueError(f"allocation weights (assets then cash) must sum to 1, got {weights.sum():.6g}")
    u = allocation.uncertainty
    if u is not None and not (
        isinstance(u, int | float | np.floating) and not isinstance(u, bool) and math.isfinite(u) and u >= 0.0
    ):
        raise ValueError(f"allocation uncertainty must be None or finite >= 0, got {u!r}")
    drift = allocation.drift
    if drift is not None and not isinstance(drift, DriftStatus):
        raise ValueError(f"allocation drift must be None or a DriftStatus, got {type(drift).__name__}")
    return Allocation(np.clip(weights, 0.0, 1.0), None if u is None else float(u), drift)


def _outcome(check: Any, allocation: Allocation, n: int) -> tuple[str, Any]:
    try:
        got = check(allocation, n)
    except ValueError as exc:
        return "raised", str(exc)
    return "ok", got


def _weights(rng: np.random.Generator, n: int, case: int) -> np.ndarray:
    w = rng.dirichlet(np.ones(n + 1) * 0.3)
    if case == 1:
        w[0], w[-1] = -0.0, w[-1] + w[0]  # a signed zero: clip keeps it
    elif case == 2:
        w[0] -= 5e-10  # just below 0, within the tolerance: clipped to 0
        w[1] += 5e-10
    elif case == 3:
        w[0] = np.nan
    elif case == 4:
        w[1] = np.inf
    elif case == 5:
        w[0] -= 1e-8  # beyond the tolerance
    elif case == 6:
        w *= 1.001  # sums to 1.001
    elif case == 7:
        w[:] = 0.0
        w[-1] = 1.0 + 5e-10  # just above 1 within the tolerance
    return w


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("case", range(8))
def test_checked_allocation_is_the_numpy_checks(seed: int, case: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 300))
    w = _weights(rng, n, case)
    drift = DriftStatus(0.1, 0.5, False) if seed % 2 else None
    for u in (0.05, 0.0, None, math.nan, -1.0, np.float64(0.2), 1):
        for weights in (w, w.astype(np.float32), w[::-1].copy()[::-1], list(w)):
            allocation = Allocation(weights, u, drift)  # type: ignore[arg-type]
            kind, got = _outcome(checked_allocation, allocation, n)
            ref_kind, ref = _outcome(reference_checked_allocation, allocation, n)
            assert kind == ref_kind
            if kind == "raised":
                assert got == ref
                continue
            assert got.weights.dtype == ref.weights.dtype
            np.testing.assert_array_equal(got.weights, ref.weights)
            np.testing.assert_array_equal(np.signbit(got.weights), np.signbit(ref.weights))
            assert got.uncertainty == ref.uncertainty or (got.uncertainty is None and ref.uncertainty is None)
            assert type(got.uncertainty) is type(ref.uncertainty)
            assert got.drift is ref.drift


def test_wrong_length_still_refused() -> None:
    w = np.full(4, 0.25)
    with pytest.raises(ValueError, match="shape"):
        checked_allocation(Allocation(w, 0.1, None), 4)
