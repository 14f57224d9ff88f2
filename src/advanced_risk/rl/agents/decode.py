"""The kernels of :meth:`RiskAgents.act <advanced_risk.rl.agents.policy.RiskAgents.act>`: the three
agents' inputs in one pass and the decoding of their heads in two (issue 14).

Each decision used to run ~80 small NumPy calls here (per agent: normalise, clip, novelty; softmax or
rescaling, mean and std over the MC-dropout samples); inside the flow each first call pays for cold
caches (docs/performance.md). These kernels do the same float64 arithmetic in the same order, so the
outputs are bit for bit NumPy's (``tests/rl/test_agents_fast_decode.py`` compares them with the NumPy
formulation; the shipped models' SHA-256 fixture pins them). What they reproduce of NumPy 2:

- elementwise ``+ - * /``, ``sqrt``, the float32 casts, ``np.maximum`` / ``np.minimum`` against a
  scalar (NaN propagates) and ``max`` / ``argmax`` (NaN wins; the first maximum): exact in any order;
- ``x.sum(axis=0)`` of a C-contiguous ``(n, w)`` array: row after row from 0.0 when ``w > 1``, and
  NumPy's pairwise summation of the column (after 0.0) when ``w == 1``; a row-wise
  ``sum(axis=-1)``: 0.0 plus the pairwise sum of the row (sequential under 8 values);
- ``np.exp`` is *not* reproduced: NumPy's float64 exp is its own SIMD code on AVX-512 machines and
  libm's elsewhere, so the caller applies ``np.exp`` between :func:`shifted_logits_kernel` and
  :func:`decode_kernel`.

``spec`` describes the heads, one row per agent: ``(first output, width, discrete, offset)`` where
``offset`` indexes ``low`` / ``high`` for a continuous agent and the columns of the shifted logits
for a discrete one.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from advanced_risk.measures.jit import jit
from advanced_risk.measures.pairwise import pairwise_sum_kernel

__all__ = [
    "decode_into_kernel",
    "decode_kernel",
    "fused_input_into_kernel",
    "fused_input_kernel",
    "head_logits_kernel",
    "pairwise_sum_kernel",
    "shifted_logits_kernel",
]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


def _column_sum_python(x: FloatArray, j: int) -> float:
    """``x.sum(axis=0)[j]`` of a C-contiguous ``(n, w)`` array as NumPy sums it (module docstring)."""
    if x.shape[1] == 1:
        return 0.0 + pairwise_sum_kernel(x[:, 0])
    s = 0.0
    for i in range(x.shape[0]):
        s += x[i, j]
    return s


def _nan_max_python(a: FloatArray) -> float:
    """``a.max()`` of a non-empty 1-D array: NaN when any entry is NaN."""
    m = a[0]
    for i in range(1, a.shape[0]):
        v = a[i]
        if m == m and not v <= m:
            m = v
    return float(m)


def _fused_input_python(
    obs: tuple[NDArray[np.floating], ...],
    mean: FloatArray, scale: FloatArray, clip: float, normalise: bool,
    template: NDArray[np.float32], positions: IntArray,
) -> tuple[NDArray[np.float32], FloatArray]:  # fmt: skip
    """The fused actor input and each agent's novelty (largest |z|; zeros without ``normalise``).

    ``obs`` are the agents' 1-D observations in order, their values concatenated the entries of
    ``mean`` / ``scale`` / ``positions`` (where each value goes in a copy of ``template``). As
    ``RiskAgents._actor_input``: ``z = (x - mean) / scale``, novelty ``max |z|``, then ``z`` clipped
    to ``[-clip, clip]`` and cast to float32 (without ``normalise``: the cast only).
    """
    x = template.copy()
    novelty = np.zeros(len(obs))
    _fused_input_into_kernel(obs, mean, scale, clip, normalise, positions, x, novelty)
    return x, novelty


def _fused_input_into_python(
    obs: tuple[NDArray[np.floating], ...],
    mean: FloatArray, scale: FloatArray, clip: float, normalise: bool, positions: IntArray,
    x: NDArray[np.float32], novelty: FloatArray,
) -> None:  # fmt: skip
    """:func:`fused_input_kernel` into the caller's buffers: writes the observation columns
    ``positions`` of ``x`` (``(1, width)``; its other columns, a shared actor's padding and ids, are
    left as they are) and ``novelty[agent]`` (left as it is without ``normalise``)."""
    k = 0
    for agent, o in enumerate(obs):
        top = -1.0
        for i in range(o.shape[0]):
            v = float(o[i])
            if normalise:
                v = (v - mean[k]) / scale[k]
                a = abs(v)
                if top == top and not a <= top:  # NaN wins, as in np.abs(z).max()
                    top = a
                if v < -clip:
                    v = -clip
                if v > clip:
                    v = clip
            x[0, positions[k]] = np.float32(v)
            k += 1
        if normalise:
            novelty[agent] = top


def _shifted_logits_python(raw: NDArray[np.float32], spec: IntArray, width: int) -> FloatArray:
    """Every discrete head's float64 logits minus their row maximum, side by side (``width`` columns)."""
    out = np.empty((raw.shape[0], width))
    _shifted_logits_into_kernel(raw, spec, out)
    return out


def _shifted_logits_into_python(raw: NDArray[np.float32], spec: IntArray, out: FloatArray) -> None:
    """:func:`shifted_logits_kernel` of the samples ``raw`` ``(n, 1, outputs)`` into ``out``."""
    n = raw.shape[0]
    row = np.empty(raw.shape[2])
    for a in range(spec.shape[0]):
        start, w, discrete, offset = spec[a, 0], spec[a, 1], spec[a, 2], spec[a, 3]
        if not discrete:
            continue
        for i in range(n):
            for j in range(w):
                row[j] = np.float64(raw[i, 0, start + j])
            m = _nan_max_kernel(row[:w])
            for j in range(w):
                out[i, offset + j] = row[j] - m


def _head_logits_python(
    raw: NDArray[np.float32], keep: np.float32, bias: NDArray[np.float32], spec: IntArray, out: FloatArray
) -> None:
    """The head's inverted-dropout rescaling ``raw = raw / keep + bias`` in place (float32, as
    ``NumpyPolicy.mc_samples``: ``dropout_kernels.rescale_kernel``'s arithmetic), then
    :func:`shifted_logits_kernel` of ``raw`` into ``out``."""
    n, w = raw.shape[0], raw.shape[2]
    for i in range(n):
        for j in range(w):
            raw[i, 0, j] = np.float32(np.float32(raw[i, 0, j] / keep) + bias[j])
    _shifted_logits_into_kernel(raw, spec, out)


def _decode_python(
    raw: NDArray[np.float32], exp_logits: FloatArray, spec: IntArray, low: FloatArray, high: FloatArray
) -> tuple[NDArray[np.float32], IntArray, FloatArray]:
    """Continuous actions (float32, side by side in ``low``'s order), choices and uncertainties.

    Per agent, as ``RiskAgents.act`` did in NumPy: the samples rescaled to the action box (a
    continuous agent) or the softmax of its logits (``exp_logits``: ``np.exp`` of
    :func:`shifted_logits_kernel`), then their mean and population std over the samples; the action
    is the mean (continuous) or its argmax (``choices``; -1 for a continuous agent), the uncertainty
    the largest std (divided by the box's width when continuous).
    """
    actions, choices = np.empty(low.shape[0], np.float32), np.empty(spec.shape[0], np.int64)
    uncertainty = np.empty(spec.shape[0])
    _decode_into_kernel(raw, exp_logits, spec, low, high, actions, choices, uncertainty)
    return actions, choices, uncertainty


def _decode_into_python(
    raw: NDArray[np.float32], exp_logits: FloatArray, spec: IntArray, low: FloatArray, high: FloatArray,
    actions: NDArray[np.float32], choices: IntArray, uncertainty: FloatArray,
) -> None:  # fmt: skip
    """:func:`decode_kernel` into the caller's buffers (every entry of the three is written)."""
    n = raw.shape[0]
    for a in range(spec.shape[0]):
        start, w, discrete, offset = spec[a, 0], spec[a, 1], spec[a, 2], spec[a, 3]
        x = np.empty((n, w))
        for i in range(n):
            if discrete:
                total = 0.0 + pairwise_sum_kernel(exp_logits[i, offset : offset + w])
                for j in range(w):
                    x[i, j] = exp_logits[i, offset + j] / total
            else:
                for j in range(w):
                    v = float(raw[i, 0, start + j])
                    v = v if v >= -1.0 or v != v else -1.0
                    v = v if v <= 1.0 or v != v else 1.0
                    x[i, j] = low[offset + j] + (v + 1.0) / 2.0 * (high[offset + j] - low[offset + j])
        mean, spread = _mean_std_kernel(x)
        choices[a] = -1
        if discrete:
            best = 0
            for j in range(1, w):
                if mean[best] == mean[best] and not mean[j] <= mean[best]:
                    best = j
            choices[a], uncertainty[a] = best, _nan_max_kernel(spread)
        else:
            for j in range(w):
                actions[offset + j] = np.float32(mean[j])
                spread[j] = spread[j] / (high[offset + j] - low[offset + j])
            uncertainty[a] = _nan_max_kernel(spread)


def _mean_std_python(x: FloatArray) -> tuple[FloatArray, FloatArray]:
    """``policy._mean_std``: mean and population std over the first axis, NumPy's sums (module docstring)."""
    n, w = x.shape
    mean, std = np.empty(w), np.empty(w)
    for j in range(w):
        mean[j] = _column_sum_kernel(x, j) / n
    dev = np.empty((n, w))
    for i in range(n):
        for j in range(w):
            d = x[i, j] - mean[j]
            dev[i, j] = d * d
    for j in range(w):
        std[j] = np.sqrt(_column_sum_kernel(dev, j) / n)
    return mean, std


_column_sum_kernel = jit(_column_sum_python)
_nan_max_kernel = jit(_nan_max_python)
_mean_std_kernel = jit(_mean_std_python)
_fused_input_into_kernel = jit(_fused_input_into_python)
_shifted_logits_into_kernel = jit(_shifted_logits_into_python)
_decode_into_kernel = jit(_decode_into_python)
fused_input_kernel = jit(_fused_input_python)
fused_input_into_kernel = _fused_input_into_kernel
shifted_logits_kernel = jit(_shifted_logits_python)
head_logits_kernel = jit(_head_logits_python, ieee_division=True)
decode_kernel = jit(_decode_python)
decode_into_kernel = _decode_into_kernel
