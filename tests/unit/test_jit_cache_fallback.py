"""Kernels still compile where numba finds no folder to cache them in (a read-only install run by a
user without a home), instead of failing the import with numba's "no locator available"."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from advanced_risk.measures import jit as jit_module


def test_a_kernel_compiles_without_a_cache_when_no_cache_folder_is_writable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if jit_module.NUMBA_DISABLED:
        pytest.skip("numba is disabled")
    real = jit_module.njit
    calls: list[bool] = []

    def no_locator(**options: Any) -> Any:
        calls.append(options["cache"])
        if options["cache"]:
            raise RuntimeError("cannot cache function 'f': no locator available for file 'x.py'")
        return real(**options)

    monkeypatch.setattr(jit_module, "njit", no_locator)

    def twice(x: np.ndarray) -> np.ndarray:
        return x * 2.0

    compiled = jit_module.jit(twice)
    assert compiled(np.array([1.0, 2.5])).tolist() == [2.0, 5.0]
    assert calls == [True, False]
    contracted = jit_module.jit(twice, contract=True)
    assert contracted(np.array([3.0])).tolist() == [6.0]
