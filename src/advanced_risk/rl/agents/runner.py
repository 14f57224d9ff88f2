"""The risk agents' act in buffers allocated once: inputs, MC dropout and decoding (issue 14).

:meth:`RiskAgents.act <advanced_risk.rl.agents.policy.RiskAgents.act>` ran ~26 small NumPy calls
and kernels per decision, each allocating its result (22 in ``NumpyPolicy.mc_samples``: masks,
broadcasts, reshapes); inside a decision each pays for cold caches (docs/performance.md).
:class:`AgentsRunner` keeps the NumPy calls whose bits depend on the library (the matrix products
in BLAS, ``np.tanh``, ``np.exp``, the generator's draws) and fuses every elementwise step between
them into a kernel writing to buffers allocated once:

- ``decode.fused_input_into_kernel``: the three observations normalised into the fused input row;
- ``dropout_kernels.masked_first_kernel`` / ``rescale_kernel`` / ``masked_kernel``: the hidden
  layers' dropout masks, inverted-dropout rescaling and bias (``DropoutRunner``'s kernels);
- ``decode.head_logits_kernel``: the head's rescaling and bias, then the discrete heads' shifted
  logits (``np.exp`` of them follows);
- ``decode.decode_into_kernel``: softmax or rescaling, mean and std over the samples, per agent.

Each step does the float operations of ``NumpyPolicy.mc_samples`` and the decoding kernels in the
same order, on operands of the same shapes (the same BLAS calls), and draws the same uniform
stream (``rng.random((n_samples, hidden widths), dtype=np.float32)``): the outputs are bit for bit
the allocating path's (``tests/rl/test_agents_runner.py``). NaN propagates as there.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
from numpy.typing import NDArray

from advanced_risk.rl.agents.decode import decode_into_kernel, fused_input_into_kernel, head_logits_kernel
from advanced_risk.rl.ppo.dropout_kernels import masked_first_kernel, masked_kernel, rescale_kernel
from advanced_risk.rl.ppo.inference import NumpyPolicy

__all__ = ["Acted", "AgentsRunner", "runner_applies"]

F32 = NDArray[np.float32]
F64 = NDArray[np.float64]
I64 = NDArray[np.int64]

Acted = tuple[F32, I64, F64, F64]
"""``(actions, choices, uncertainty, novelty)`` as ``decode.decode_kernel`` and
``decode.fused_input_kernel`` give them (the runner's buffers: read before the next call)."""


def runner_applies(net: NumpyPolicy, n_samples: int) -> bool:
    """Whether :class:`AgentsRunner` computes ``net``'s MC-dropout samples: at least two layers,
    ``0 < dropout < 1`` and at least two samples (otherwise ``RiskAgents.act`` takes NumPy's path)."""
    return len(net.weights) >= 2 and 0.0 < net.dropout < 1.0 and n_samples >= 2


class AgentsRunner:
    """The fused actors' act for one set of observations, into buffers allocated once.

    Parameters
    ----------
    net : the three actors side by side (``RiskAgents``' block-diagonal network, no normaliser).
    inputs : ``(mean, scale, template, positions, clip, normalise)``, the input layout
        ``decode.fused_input_kernel`` reads.
    heads : ``(spec, low, high, logit_width)``, the heads as ``decode.decode_kernel`` reads them.
    n_samples : MC-dropout samples, >= 2 (``runner_applies``).

    :meth:`run` returns views of its buffers, overwritten by the next call. One call at a time:
    a call made while another thread is inside :meth:`run` gets None (the caller then takes the
    allocating path, which draws the same stream).
    """

    def __init__(
        self, net: NumpyPolicy, inputs: tuple[Any, ...], heads: tuple[Any, ...], n_samples: int
    ) -> None:
        if not runner_applies(net, n_samples):
            raise ValueError("AgentsRunner needs >= 2 layers, 0 < dropout < 1 and n_samples >= 2")
        self.net, self.n_samples = net, int(n_samples)
        self.mean, self.scale, template, self.positions, clip, normalise = inputs
        self.clip, self.normalise = float(clip), bool(normalise)
        self.spec, self.low, self.high, logit_width = heads
        self.keep = np.float32(1.0 - net.dropout)
        widths = [int(w.shape[1]) for w in net.weights]
        self.offsets = np.cumsum([0, *widths[:-2]]).tolist()  # each hidden layer's columns of the draws
        self._x: F32 = np.array(template, dtype=np.float32)  # (1, width): padding and ids stay put
        self._novelty = np.zeros(self.spec.shape[0])
        self._h = np.empty((1, widths[0]), dtype=np.float32)
        self._draws = np.empty((n_samples, sum(widths[:-1])), dtype=np.float32)
        self._dropped = [np.empty((n_samples, w), dtype=np.float32) for w in widths[:-1]]
        self._out = [np.empty((n_samples, w), dtype=np.float32) for w in widths[1:]]
        self._raw = self._out[-1].reshape(n_samples, 1, widths[-1])  # mc_samples' shape, a view
        self._logits = np.empty((n_samples, int(logit_width)))
        self._actions = np.empty(self.low.shape[0], dtype=np.float32)
        self._choices = np.empty(self.spec.shape[0], dtype=np.int64)
        self._uncertainty = np.empty(self.spec.shape[0])
        self._busy = threading.Lock()

    def run(self, given: tuple[NDArray[np.floating], ...], rng: np.random.Generator) -> Acted | None:
        """The act of the observations ``given`` (checked 1-D arrays of one float dtype, in
        :data:`~advanced_risk.rl.agents.interface.AGENTS` order), or None while another call runs."""
        if not self._busy.acquire(blocking=False):
            return None
        try:
            x, novelty = self._x, self._novelty
            fused_input_into_kernel(
                given, self.mean, self.scale, self.clip, self.normalise, self.positions, x, novelty
            )
            self._samples(rng)
            logits = self._logits
            head_logits_kernel(self._raw, self.keep, self.net.biases[-1], self.spec, logits)
            np.exp(logits, out=logits)
            actions, choices, uncertainty = self._actions, self._choices, self._uncertainty
            decode_into_kernel(
                self._raw, logits, self.spec, self.low, self.high, actions, choices, uncertainty
            )
            return actions, choices, uncertainty, novelty
        finally:
            self._busy.release()

    def _samples(self, rng: np.random.Generator) -> None:
        """``NumpyPolicy.mc_samples`` of the input row up to the head's matrix product (into
        ``self._raw``; the head's rescaling and bias are ``head_logits_kernel``'s)."""
        weights, biases, keep, h = self.net.weights, self.net.biases, self.keep, self._h
        np.matmul(self._x, weights[0], out=h)
        np.add(h, biases[0], out=h)
        np.tanh(h, out=h)
        draws = self._draws
        rng.random(out=draws, dtype=np.float32)
        masked_first_kernel(draws, 0, keep, h, self._dropped[0])
        last = len(weights) - 1
        for k in range(1, last + 1):
            y = self._out[k - 1]
            np.matmul(self._dropped[k - 1], weights[k], out=y)
            if k < last:
                rescale_kernel(y, keep, biases[k])
                np.tanh(y, out=y)
                masked_kernel(draws, self.offsets[k], keep, y, self._dropped[k])
