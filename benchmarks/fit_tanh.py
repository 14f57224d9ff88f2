"""Fit and check the rational ``tanh`` of the PPO trainer's kernel (``rl/ppo/kernels.py``).

Usage::

    python benchmarks/fit_tanh.py [--degree 6] [--stride 7]

Fits ``tanh(x) / x = P(x^2) / Q(x^2)`` with ``Q(0) = 1`` on ``[0, 9]`` by iteratively reweighted
linear least squares of the relative error (``f Q - P = 0`` weighted by ``1 / (f |Q|)``, 30 passes,
on a uniform and a Chebyshev-like grid of 40,000 points), prints the coefficients, then rounds
``x P / Q`` (float64) to float32 for every ``stride``-th float32 of ``[2^-20, 9.5]`` and prints the
largest error in ulp against float64 ``np.tanh`` (the reference), beside NumPy's float32 ``tanh``,
and the kernel's own (``TANH_P``, ``TANH_Q`` as shipped). The shipped coefficients came from
``--degree 6``; LAPACK may round the last digits differently on another machine.
"""

from __future__ import annotations

import argparse

import numpy as np
from numpy.typing import NDArray

from advanced_risk.rl.ppo.kernels import TANH_Q, tanh_kernel

CLAMP = 9.0


def fit(degree: int, passes: int = 30) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """``(P, Q)`` coefficients, constant term first, ``Q[0] = 1``."""
    x = np.concatenate([np.linspace(0, CLAMP, 20001), CLAMP * (1 - np.cos(np.linspace(0, np.pi / 2, 20001)))])
    x = x[x > 0]
    u, f = x * x, np.tanh(x) / x
    powers = np.arange(degree + 1)
    weight = np.ones_like(x)
    p = q = np.zeros(degree + 1)
    for _ in range(passes):
        a = np.hstack([-(u[:, None] ** powers), (f * u)[:, None] * u[:, None] ** powers[:-1]])
        scale = weight / f
        sol, *_ = np.linalg.lstsq(a * scale[:, None], -f * scale, rcond=None)
        p, q = sol[: degree + 1], np.concatenate([[1.0], sol[degree + 1 :]])
        weight = 1.0 / np.abs(np.polyval(q[::-1], u))
    return p, q


def grid(stride: int) -> NDArray[np.float32]:
    """Every ``stride``-th float32 of ``[2^-20, 9.5]``."""
    lo, hi = np.float32(2.0**-20).view(np.int32), np.float32(9.5).view(np.int32)
    out: NDArray[np.float32] = np.arange(lo, hi, stride, dtype=np.int32).view(np.float32)
    return out


def max_ulp(values: NDArray[np.float32], x: NDArray[np.float32]) -> float:
    """Largest ``|values - tanh(x)|`` in float32 ulp of the exact value (float64 ``np.tanh``)."""
    exact = np.tanh(x.astype(np.float64))
    ulp = np.spacing(exact.astype(np.float32)).astype(np.float64)
    return float(np.max(np.abs(values.astype(np.float64) - exact) / ulp))


def rational(x: NDArray[np.float32], p: NDArray[np.float64], q: NDArray[np.float64]) -> NDArray[np.float32]:
    v = np.clip(x.astype(np.float64), -CLAMP, CLAMP)
    u = v * v
    out: NDArray[np.float32] = (v * np.polyval(p[::-1], u) / np.polyval(q[::-1], u)).astype(np.float32)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--degree", type=int, default=6, help="degree of P and Q in x^2 (default 6)")
    parser.add_argument("--stride", type=int, default=7, help="check every n-th float32 (default 7)")
    args = parser.parse_args()
    p, q = fit(args.degree)
    print("P =", tuple(float(c) for c in p))
    print("Q =", tuple(float(c) for c in q))
    x = grid(args.stride)
    shipped = x.reshape(-1, 1).copy()
    tanh_kernel(shipped)
    print(f"{x.size:,} float32 in [2^-20, 9.5]; largest error against float64 np.tanh:")
    print(f"  this fit, float64 evaluation   {max_ulp(rational(x, p, q), x):.3f} ulp")
    print(f"  the kernel (TANH_P, TANH_Q)    {max_ulp(shipped.ravel(), x):.3f} ulp")
    print(f"  NumPy float32 np.tanh          {max_ulp(np.tanh(x), x):.3f} ulp")
    u = np.linspace(0.0, CLAMP * CLAMP, 100_001)
    print(f"  min Q on [0, 81]: this fit {np.polyval(q[::-1], u).min():.6f}, "
          f"shipped {np.polyval(np.array(TANH_Q)[::-1], u).min():.6f}")  # fmt: skip


if __name__ == "__main__":
    main()
