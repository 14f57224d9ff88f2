"""MC dropout of a :class:`~advanced_risk.rl.ppo.inference.NumpyPolicy` with fewer NumPy calls (issue 14).

``NumpyPolicy.mc_dropout`` ran ~35 small NumPy calls per decision (the normalisation, the layers'
``@``/``+``/``tanh``, the masks, the broadcasts, ``_population_std``'s seven); inside a decision each
one pays for cold caches (docs/performance.md). :class:`DropoutRunner` keeps the NumPy calls whose
bits depend on the library (the matrix products in BLAS, ``np.tanh``, the generator's draws) and
fuses every elementwise step between them into a kernel, writing into buffers allocated once:

- :func:`normalize_kernel`: ``np.clip((obs - mean) / scale, -clip, clip).astype(np.float32)``;
- :func:`masked_first_kernel`: the first layer's dropout, ``(u < keep) * h`` broadcast over samples;
- :func:`rescale_kernel`: a hidden layer's ``(x @ w) / keep + b`` before its ``np.tanh``;
- :func:`masked_kernel`: a later layer's dropout ``x * (u < keep)``;
- :func:`head_std_kernel`: the head's ``(x @ w) / keep + b`` and ``_population_std`` of the samples.

They compute the same float32 operations in the same order, so every output is bit for bit the
NumPy formulation's (``tests/rl/test_policy_fast_paths.py`` compares them):

- elementwise ``-``, ``/``, ``*``, ``+``, comparisons, the clip and ``sqrt`` are correctly rounded,
  hence exact in any order; each float32 result is rounded to float32 (``np.float32(...)``) so a
  wider intermediate cannot leak (one float64 operation on float32 operands, rounded once, is the
  float32 operation: the double rounding is innocuous for ``+ - * / sqrt``);
- a mask times a value is ``1.0f * x`` or ``0.0f * x`` (bool -> float32), signed zeros and NaN alike;
- ``x.sum(axis=0)`` of a C-contiguous ``(S, m)`` float32 array with ``m >= 2`` adds the rows in
  order into a float32 accumulator started at ``+0.0`` (the reduction runs along the outer axis, not
  pairwise); an ``m == 1`` column would be summed pairwise, so :class:`DropoutRunner` is not used
  for a one-output head.

NaN policy: NaN propagates as in NumPy (a NaN observation gives NaN actions and std; the clip
keeps NaN). Callers pass finite observations (``check_obs``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from advanced_risk.measures.jit import jit
from advanced_risk.measures.validation import FloatArray

__all__ = [
    "DropoutRunner",
    "RunnerCache",
    "head_std_kernel",
    "masked_first_kernel",
    "masked_kernel",
    "normalize_kernel",
    "rescale_kernel",
]

F32 = NDArray[np.float32]


def _normalize_python(obs: FloatArray, mean: FloatArray, scale: FloatArray, clip: float, out: F32) -> None:
    """``out[i] = float32(clip((obs[i] - mean[i]) / scale[i], -clip, clip))`` (NaN stays NaN)."""
    for i in range(obs.shape[0]):
        z = (obs[i] - mean[i]) / scale[i]
        if z < -clip:
            z = -clip
        elif z > clip:
            z = clip
        out[i] = np.float32(z)


def _masked_first_python(u: F32, offset: int, keep: np.float32, h: F32, out: F32) -> None:
    """``out[s * rows + r, j] = float32(u[s * rows + r, offset + j] < keep) * h[r, j]``: the first
    hidden activation ``h`` ``(rows, width)`` shared by every sample, masked per sample."""
    rows, width = h.shape
    one, zero = np.float32(1.0), np.float32(0.0)
    for i in range(out.shape[0]):
        r = i % rows
        for j in range(width):
            m = one if u[i, offset + j] < keep else zero
            out[i, j] = np.float32(m * h[r, j])


def _rescale_python(x: F32, keep: np.float32, b: F32) -> None:
    """In place: ``x = x / keep + b`` in float32 (inverted dropout's rescaling, then the bias)."""
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            x[i, j] = np.float32(np.float32(x[i, j] / keep) + b[j])


def _masked_python(u: F32, offset: int, keep: np.float32, x: F32, out: F32) -> None:
    """``out[i, j] = x[i, j] * float32(u[i, offset + j] < keep)`` (a later layer's dropout)."""
    one, zero = np.float32(1.0), np.float32(0.0)
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            m = one if u[i, offset + j] < keep else zero
            out[i, j] = np.float32(x[i, j] * m)


def _head_std_python(x: F32, keep: np.float32, b: F32, n_samples: int, out: F32) -> None:
    """The head's ``x = x / keep + b`` (in place, ``x`` of shape ``(n_samples * rows, m)``), then
    ``out[r, j]``: the population std over the samples of ``x[s * rows + r, j]`` as
    ``_population_std`` computes it (sum in row order from +0.0, divide by the count, squared
    deviations, sum, divide, sqrt; every step in float32)."""
    rows = x.shape[0] // n_samples
    m = x.shape[1]
    n = np.float32(n_samples)
    for i in range(x.shape[0]):
        for j in range(m):
            x[i, j] = np.float32(np.float32(x[i, j] / keep) + b[j])
    for r in range(rows):
        for j in range(m):
            total = np.float32(0.0)
            for s in range(n_samples):
                total = np.float32(total + x[s * rows + r, j])
            mean = np.float32(total / n)
            sq = np.float32(0.0)
            for s in range(n_samples):
                d = np.float32(x[s * rows + r, j] - mean)
                sq = np.float32(sq + np.float32(d * d))
            out[r, j] = np.float32(np.sqrt(np.float32(sq / n)))


normalize_kernel = jit(_normalize_python, ieee_division=True)
masked_first_kernel = jit(_masked_first_python)
rescale_kernel = jit(_rescale_python, ieee_division=True)
masked_kernel = jit(_masked_python)
head_std_kernel = jit(_head_std_python, ieee_division=True)


class DropoutRunner:
    """``NumpyPolicy.mc_dropout`` of one observation ``(obs_dim,)`` into buffers allocated once.

    Parameters
    ----------
    weights, biases : the policy's layers (``x @ W + b``, float32; at least two layers).
    dropout : the dropout probability, in ``(0, 1)`` (0 needs no runner: the std is zeros).
    obs_mean, obs_scale, obs_clip : the observation normaliser (None: a plain float32 cast).
    n_samples : dropout masks per call, >= 2.

    :meth:`run` returns views of its buffers (overwritten by the next call): copy what outlives it.
    The draws are ``rng.random((n_samples, sum of hidden widths), dtype=np.float32)``, the same
    stream as ``NumpyPolicy.mc_samples``. Not thread-safe (one set of buffers).
    """

    def __init__(
        self,
        weights: tuple[F32, ...],
        biases: tuple[F32, ...],
        dropout: float,
        obs_mean: FloatArray | None,
        obs_scale: FloatArray | None,
        obs_clip: float,
        n_samples: int,
    ) -> None:
        if len(weights) < 2 or not 0.0 < dropout < 1.0 or n_samples < 2 or weights[-1].shape[1] < 2:
            raise ValueError("DropoutRunner needs >= 2 layers, 0 < dropout < 1, n_samples >= 2, >= 2 outputs")
        self.weights, self.biases, self.n_samples = weights, biases, int(n_samples)
        self.keep = np.float32(1.0 - dropout)
        self.obs_mean, self.obs_scale, self.obs_clip = obs_mean, obs_scale, float(obs_clip)
        widths = [w.shape[1] for w in weights]
        self.offsets = np.cumsum([0, *widths[:-2]]).tolist()  # each hidden layer's columns of the draws
        self._z = np.empty(weights[0].shape[0], dtype=np.float32)
        self._h = np.empty((1, widths[0]), dtype=np.float32)
        self._mean = [np.empty(w, dtype=np.float32) for w in widths[1:]]
        self._draws = np.empty((n_samples, sum(widths[:-1])), dtype=np.float32)
        self._dropped = [np.empty((n_samples, w), dtype=np.float32) for w in widths[:-1]]
        self._out = [np.empty((n_samples, w), dtype=np.float32) for w in widths[1:]]
        self._std = np.empty((1, widths[-1]), dtype=np.float32)

    def run(self, obs: FloatArray, rng: np.random.Generator) -> tuple[F32, F32]:
        """The deterministic action and the MC-dropout std for the float64 observation ``obs``."""
        weights, biases, keep = self.weights, self.biases, self.keep
        z, h = self._z, self._h[0]
        if self.obs_mean is None or self.obs_scale is None:
            z[:] = obs
        else:
            normalize_kernel(obs, self.obs_mean, self.obs_scale, self.obs_clip, z)
        np.matmul(z, weights[0], out=h)
        np.add(h, biases[0], out=h)
        np.tanh(h, out=h)
        x: Any = h
        last = len(weights) - 1
        for k in range(1, last + 1):  # the mean action: dropout off
            y = self._mean[k - 1]
            np.matmul(x, weights[k], out=y)
            np.add(y, biases[k], out=y)
            if k < last:
                np.tanh(y, out=y)
            x = y
        draws = self._draws
        rng.random(out=draws, dtype=np.float32)
        masked_first_kernel(draws, 0, keep, self._h, self._dropped[0])
        for k in range(1, last + 1):
            y = self._out[k - 1]
            np.matmul(self._dropped[k - 1], weights[k], out=y)
            if k < last:
                rescale_kernel(y, keep, biases[k])
                np.tanh(y, out=y)
                masked_kernel(draws, self.offsets[k], keep, y, self._dropped[k])
            else:
                head_std_kernel(y, keep, biases[k], self.n_samples, self._std)
        return x, self._std[0]


class RunnerCache:
    """The :class:`DropoutRunner` of one :class:`~advanced_risk.rl.ppo.inference.NumpyPolicy` at a
    time, built on first use and rebuilt when the policy object or ``n_samples`` changes.

    :meth:`mc_dropout` is ``policy.mc_dropout(obs, n_samples, rng)``, bit for bit and with the same
    draws, through the runner where one applies (one observation, 0 < dropout < 1, at least two
    samples, two layers and two outputs), else through ``NumpyPolicy.mc_dropout`` itself (a batch,
    no dropout, one sample, ...). The runner holds the policy's own arrays: an in-place change of
    its weights is seen. Not thread-safe (one set of buffers).
    """

    def __init__(self) -> None:
        self._runner: DropoutRunner | None = None
        self._key: tuple[Any, int] | None = None

    def mc_dropout(
        self, policy: Any, obs: FloatArray, n_samples: int, rng: np.random.Generator
    ) -> tuple[F32, F32]:
        """The deterministic action and the MC-dropout std (arrays the caller owns)."""
        runner = self.runner_for(policy, n_samples) if obs.ndim == 1 else None
        if runner is None:
            out: tuple[F32, F32] = policy.mc_dropout(obs, n_samples, rng)
            return out
        action, std = runner.run(obs, rng)
        return action.copy(), std.copy()  # the runner's buffers are overwritten by its next call

    def runner_for(self, policy: Any, n_samples: int) -> DropoutRunner | None:
        """The runner of ``policy`` for ``n_samples`` masks, or None where ``policy.mc_dropout``
        itself must run (no dropout, one sample, a one-layer or one-output network)."""
        key = self._key
        if key is not None and key[0] is policy and key[1] == n_samples:
            return self._runner
        usable = (
            0.0 < policy.dropout < 1.0
            and n_samples >= 2
            and len(policy.weights) >= 2
            and policy.action_dim >= 2
        )
        runner = None
        if usable:
            runner = DropoutRunner(
                policy.weights, policy.biases, policy.dropout, policy.obs_mean, policy.obs_scale,
                policy.obs_clip, n_samples,
            )  # fmt: skip
        self._runner, self._key = runner, (policy, n_samples)
        return runner
