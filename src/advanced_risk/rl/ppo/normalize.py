"""Running observation statistics (mean and variance) for PPO's observation normalisation.

``RunningMeanStd`` merges each batch into the running moments with the parallel-variance formula of
Chan, Golub and LeVeque (the same update as gymnasium's ``NormalizeObservation`` and SB3's
``VecNormalize``), in float64. The statistics are part of a trained policy: they are saved with the
model and frozen at inference, so a policy sees the same scaling it was trained with.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["RunningMeanStd"]


class RunningMeanStd:
    """Streaming per-feature mean and (population) variance.

    Parameters
    ----------
    shape : shape of one observation, e.g. ``(obs_dim,)``.
    epsilon : initial pseudo-count; keeps the first division finite (gymnasium's convention, 1e-4).

    Examples
    --------
    >>> rms = RunningMeanStd((1,))
    >>> rms.update(np.array([[1.0], [3.0]]))
    >>> round(float(rms.mean[0]), 3), round(float(rms.var[0]), 3)
    (2.0, 1.0)
    """

    def __init__(self, shape: tuple[int, ...], epsilon: float = 1e-4) -> None:
        self.mean: NDArray[np.float64] = np.zeros(shape, dtype=np.float64)
        self.var: NDArray[np.float64] = np.ones(shape, dtype=np.float64)
        self.count: float = float(epsilon)
        self.version: int = 0
        """Incremented on every change; lets cached inference snapshots notice new statistics."""

    def update(self, batch: NDArray[np.floating]) -> None:
        """Merge a batch of observations, shape ``(n, *shape)``, into the running moments."""
        x = np.asarray(batch, dtype=np.float64)
        n = x.shape[0]
        # np.mean's and np.var's arithmetic (sum / n, then the mean of squared deviations) without
        # their per-call dispatch, which dominates for a few rows
        mean = np.add.reduce(x, axis=0) / n
        dev = x - mean
        self.update_from_moments(mean, np.add.reduce(dev * dev, axis=0) / n, n)

    def update_from_moments(
        self, batch_mean: NDArray[np.float64], batch_var: NDArray[np.float64], batch_count: int
    ) -> None:
        """Parallel merge: ``M2 = M2_a + M2_b + delta^2 * n_a * n_b / n``."""
        delta = batch_mean - self.mean
        total = self.count + batch_count
        new_mean = self.mean + delta * (batch_count / total)
        m2 = self.var * self.count + batch_var * batch_count + delta**2 * (self.count * batch_count / total)
        self.mean, self.var, self.count = new_mean, m2 / total, float(total)
        self.version += 1

    def normalize(self, obs: NDArray[np.floating], clip: float, eps: float = 1e-8) -> NDArray[np.float32]:
        """``clip((obs - mean) / sqrt(var + eps), -clip, clip)`` as float32 (the network's dtype)."""
        z = (np.asarray(obs, dtype=np.float64) - self.mean) / np.sqrt(self.var + eps)
        return np.clip(z, -clip, clip).astype(np.float32)

    def state_dict(self) -> dict[str, NDArray[np.float64] | float]:
        """Copies of the moments (float64 arrays) and the count (a float)."""
        return {"mean": self.mean.copy(), "var": self.var.copy(), "count": self.count}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore moments saved by :meth:`state_dict` (arrays or CPU tensors); the shape must match."""
        mean = np.array(state["mean"], dtype=np.float64)
        var = np.array(state["var"], dtype=np.float64)
        if mean.shape != self.mean.shape or var.shape != self.var.shape:
            raise ValueError(f"obs normaliser shape mismatch: saved {mean.shape}, expected {self.mean.shape}")
        self.mean, self.var = mean, var
        self.count = float(state["count"])
        self.version += 1
