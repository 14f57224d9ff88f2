"""Would a compiled MC-dropout pass pay? NumPy's passes against one numba kernel, shipped models.

The MC-dropout samples of the policy and of the risk agents (``NumpyPolicy._samples_from_first``:
the layers after the first, 10 dropout-masked samples as the rows of one matrix, one GEMM per layer)
are the largest single items of a decision with both models (docs/performance.md). This script times
them beside a numba kernel of the same two layers on the same masks (the same uniforms), a
prototype that is not used by the library, and prints how far apart the outputs are: the kernel
sums each dot product in another order than the BLAS GEMM, so it cannot reproduce NumPy's float32
results bit for bit, and the shipped models' outputs are pinned bit for bit
(``tests/integration/test_shipped_models.py``).

Run:  python benchmarks/bench_mc_kernel.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numba as nb
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _harness import median_seconds
from advanced_risk.rl.agents.policy import RiskAgents
from advanced_risk.rl.portfolio.policy import PortfolioPolicy
from advanced_risk.rl.ppo.inference import NumpyPolicy

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = 10


@nb.njit(nogil=True)
def _two_dropout_layers(
    h: np.ndarray,
    w1: np.ndarray,
    b1: np.ndarray,
    w2: np.ndarray,
    b2: np.ndarray,
    uniforms: np.ndarray,
    keep: np.float32,
) -> np.ndarray:  # pragma: no cover - compiled
    """Rows of ``(mask1 * h) @ w1 / keep + b1 -> tanh -> (mask2 * .) @ w2 / keep + b2``, float32."""
    n, d0, d1, d2 = uniforms.shape[0], h.shape[0], w1.shape[1], w2.shape[1]
    out = np.empty((n, d2), np.float32)
    x1 = np.empty(d1, np.float32)
    acc1 = np.empty(d1, np.float32)
    acc2 = np.empty(d2, np.float32)
    for s in range(n):
        acc1[:] = 0.0
        for k in range(d0):  # row k of w1 scaled by the kept input: vectorised over j, in order of k
            if uniforms[s, k] < keep:
                xk = h[k]
                for j in range(d1):
                    acc1[j] += xk * w1[k, j]
        for j in range(d1):
            x1[j] = np.tanh(acc1[j] / keep + b1[j])
        acc2[:] = 0.0
        for k in range(d1):
            if uniforms[s, d0 + k] < keep:
                xk = x1[k]
                for j in range(d2):
                    acc2[j] += xk * w2[k, j]
        for j in range(d2):
            out[s, j] = acc2[j] / keep + b2[j]
    return out


def _row(name: str, net: NumpyPolicy) -> None:
    rng = np.random.default_rng(0)
    h = net._first_layer(rng.normal(size=net.obs_dim)).astype(np.float32)
    w1, w2 = net.weights[1], net.weights[2]
    b1, b2 = net.biases[1], net.biases[2]
    keep = np.float32(1.0 - net.dropout)
    uniforms = np.random.default_rng(1).random((SAMPLES, w1.shape[0] + w2.shape[0]), dtype=np.float32)
    ours = net._samples_from_first(h, SAMPLES, np.random.default_rng(1))  # the same uniforms
    kernel = _two_dropout_layers(h, w1, b1, w2, b2, uniforms, keep)
    diff = float(np.abs(ours - kernel).max())
    draws = np.random.default_rng(2)
    numpy_s = median_seconds(lambda: net._samples_from_first(h, SAMPLES, draws))
    kernel_s = median_seconds(
        lambda: _two_dropout_layers(
            h, w1, b1, w2, b2, draws.random((SAMPLES, w1.shape[0] + w2.shape[0]), dtype=np.float32), keep
        )
    )
    shapes = " -> ".join(str(w.shape[0]) for w in net.weights) + f" -> {net.weights[-1].shape[1]}"
    print(
        f"{name:<8} {shapes:<22} {numpy_s * 1e6:>8.1f} us {kernel_s * 1e6:>8.1f} us "
        f"{numpy_s / kernel_s:>6.2f}x   {diff:.2g}"
    )


def main() -> None:
    policy = PortfolioPolicy.load(ROOT / "models" / "ppo_sp500_2012.armodel").policy
    agents = RiskAgents.load(ROOT / "models" / "risk_agents_sp500.armodel")._fused
    print(f"{SAMPLES} MC-dropout samples of the layers after the first (shipped models), median per pass")
    print(f"{'model':<8} {'layers':<22} {'NumPy':>11} {'kernel':>11} {'ratio':>7}   max |diff|")
    _row("policy", policy)
    _row("agents", agents)


if __name__ == "__main__":
    main()
