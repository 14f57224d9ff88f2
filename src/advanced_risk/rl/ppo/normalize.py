"""Running observation statistics (mean and variance) for PPO's observation normalisation.

``RunningMeanStd`` merges each batch into the running moments with the parallel-variance formula of
Chan, Golub and LeVeque (the same update as gymnasium's ``NormalizeObservation`` and SB3's
``VecNormalize``), in float64. The statistics are part of a trained policy: they are saved with the
model and frozen at inference, so a policy sees the same scaling it was trained with.

During rollout collection each step merges the envs' observations and normalises them;
:meth:`RunningMeanStd.update_normalize` does both in one numba kernel (``_update_normalize_python``:
:meth:`~RunningMeanStd.update`'s and :meth:`~RunningMeanStd.normalize`'s operations in their order,
bit for bit theirs, ``tests/rl/test_ppo_rollout_kernels.py``) instead of ~15 NumPy calls on a few rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from advanced_risk.measures.jit import jit

__all__ = ["RunningMeanStd"]

Moments = tuple[NDArray[np.float64], NDArray[np.float64], float, NDArray[np.float32]]


def _update_normalize_python(
    x: NDArray[np.floating],
    mean: NDArray[np.float64],
    var: NDArray[np.float64],
    count: float,
    clip: float,
    eps: float,
) -> Moments:
    """``(mean, var, count)`` after merging the rows of ``x`` ``(n, d)``, and ``x`` normalised with them.

    The arithmetic of :meth:`RunningMeanStd.update` then :meth:`RunningMeanStd.normalize`, element by
    element in the same order: column sums row by row from the first row (``np.add.reduce`` over
    axis 0), the parallel merge, ``clip((x - mean) / sqrt(var + eps))`` rounded to float32. NaN
    propagates as there.
    """
    n, d = x.shape
    total = count + n
    w_new = n / total
    w_cross = count * n / total
    new_mean = np.empty(d)
    new_var = np.empty(d)
    for j in range(d):
        s = np.float64(x[0, j])
        for i in range(1, n):
            s += np.float64(x[i, j])
        batch_mean = s / n
        dev = np.float64(x[0, j]) - batch_mean
        ss = dev * dev
        for i in range(1, n):
            dev = np.float64(x[i, j]) - batch_mean
            ss += dev * dev
        batch_var = ss / n
        delta = batch_mean - mean[j]
        new_mean[j] = mean[j] + delta * w_new
        new_var[j] = (var[j] * count + batch_var * n + delta * delta * w_cross) / total
    out = np.empty((n, d), dtype=np.float32)
    for j in range(d):
        scale = np.sqrt(new_var[j] + eps)
        for i in range(n):
            z = (np.float64(x[i, j]) - new_mean[j]) / scale
            if z < -clip:
                z = -clip
            elif z > clip:
                z = clip
            out[i, j] = np.float32(z)
    return new_mean, new_var, total, out


_update_normalize = jit(_update_normalize_python)


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

    def update_normalize(
        self, batch: NDArray[np.floating], clip: float, eps: float = 1e-8
    ) -> NDArray[np.float32]:
        """:meth:`update` with ``batch`` ``(n, *shape)`` then :meth:`normalize` it, in one kernel.

        The kernel sums each column row by row, as NumPy does for a C-ordered batch of several
        columns. NumPy sums a column that is contiguous in memory pairwise (one column, or a batch
        not in C order): such a batch, and an empty one, takes :meth:`update` and :meth:`normalize`
        themselves, so the result is theirs bit for bit either way.

        Raises
        ------
        ValueError
            ``batch`` is not ``(n, *shape)`` (the kernel would index the statistics past their end).
        """
        x = np.asarray(batch)
        if x.shape[1:] != self.mean.shape:
            raise ValueError(
                f"obs normaliser shape mismatch: batch {x.shape}, rows of shape {self.mean.shape} expected"
            )
        kernel_order = x.ndim == 2 and x.shape[0] > 0 and x.shape[1] > 1 and x.flags.c_contiguous
        if not kernel_order or x.dtype not in (np.float32, np.float64):
            self.update(x)
            return self.normalize(x, clip, eps)
        self.mean, self.var, self.count, out = _update_normalize(
            x, self.mean, self.var, self.count, float(clip), float(eps)
        )
        self.version += 1
        return out

    def normalize(self, obs: NDArray[np.floating], clip: float, eps: float = 1e-8) -> NDArray[np.float32]:
        """``clip((obs - mean) / sqrt(var + eps), -clip, clip)`` as float32 (the network's dtype)."""
        z = (np.asarray(obs, dtype=np.float64) - self.mean) / np.sqrt(self.var + eps)
        return np.clip(z, -clip, clip).astype(np.float32)

    def state_dict(self) -> dict[str, NDArray[np.float64] | float]:
        """Copies of the moments (float64 arrays) and the count (a float)."""
        return {"mean": self.mean.copy(), "var": self.var.copy(), "count": self.count}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore moments saved by :meth:`state_dict` (arrays or CPU tensors); the shape must match."""
        # asarray then copy: np.array(tensor, dtype=...) asks torch's __array__ for a copy it cannot
        # make (NumPy 2 warns, a later NumPy refuses)
        mean = np.asarray(state["mean"], dtype=np.float64).copy()
        var = np.asarray(state["var"], dtype=np.float64).copy()
        if mean.shape != self.mean.shape or var.shape != self.var.shape:
            raise ValueError(f"obs normaliser shape mismatch: saved {mean.shape}, expected {self.mean.shape}")
        self.mean, self.var = mean, var
        self.count = float(state["count"])
        self.version += 1
