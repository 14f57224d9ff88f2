"""One compat ``jit`` for every kernel in ``measures`` (the arch library's pattern).

Kernels are written as plain Python over arrays and scalars, then compiled with ``jit``. Setting
the environment variable ``ADVANCED_RISK_DISABLE_NUMBA=1`` turns compilation off, so the same
kernels run as plain Python for debugging, coverage and the parity tests. Compiled kernels are
cached on disk (``cache=True``) so only the very first import pays the compile time; where no cache
folder is writable (a read-only install, a user without a home) they compile once per process.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar, cast

from numba import njit

__all__ = ["NUMBA_DISABLED", "jit"]

F = TypeVar("F", bound=Callable[..., Any])

NUMBA_DISABLED: bool = os.environ.get("ADVANCED_RISK_DISABLE_NUMBA", "0") not in ("", "0")


def jit(func: F, *, contract: bool = False, ieee_division: bool = False) -> F:
    """Compile ``func`` with ``numba.njit(cache=True)`` unless numba is disabled.

    ``contract=True`` lets LLVM fuse ``a * b + c`` into one FMA instruction (numba's fastmath flag
    ``contract`` only: NaN/inf semantics and the order of operations are otherwise unchanged). The
    TA-Lib build we test against uses FMA in its recurrences, so this is also what matches it.
    ``ieee_division=True`` compiles a float division by zero to IEEE's inf/NaN instead of Python's
    ``ZeroDivisionError`` (numba's ``error_model="numpy"``): without the check per division LLVM can
    vectorise a loop that divides.
    """
    if NUMBA_DISABLED:
        return func
    options: dict[str, Any] = {"fastmath": {"contract"}} if contract else {}
    if ieee_division:
        options["error_model"] = "numpy"
    try:
        return cast(F, njit(cache=True, **options)(func))
    except RuntimeError:  # "no locator available": neither the package folder nor a user cache
        # folder is writable (a read-only install run by a user without a home): compile per process
        return cast(F, njit(cache=False, **options)(func))
