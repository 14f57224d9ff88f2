"""A frozen NumPy copy of the trained actor for fast inference inside the trading loop.

One observation through torch costs ~50 us of dispatch overhead for three tiny matrix products; the
same forward pass in NumPy costs ~5 us. ``NumpyPolicy`` is a read-only snapshot of the actor's
weights and the observation normaliser, taken by ``PPOAgent`` whenever the weights or statistics
changed (:meth:`~advanced_risk.rl.ppo.network.ActorCriticNetwork.numpy_policy`) or read from a model
file (:meth:`NumpyPolicy.from_state_dict`), and computes exactly the maths of
:class:`~advanced_risk.rl.ppo.network.ActorCriticNetwork` (float32 weights, float64 normalisation);
a parity test keeps the two in step. This module needs NumPy only: the shipped policy and risk
agents run without torch.

MC dropout here shares the first layer across samples (dropout acts after each hidden activation,
so every sample sees the same first-layer output) and draws its masks from a NumPy generator.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from advanced_risk.errors import InvalidInputError

__all__ = ["DropoutGenerator", "NumpyPolicy", "check_obs", "generator_from_state"]

F32 = NDArray[np.float32]


class DropoutGenerator:
    """The MC-dropout mask generator of an inference object (``self._rng``), with its state readable
    and settable as JSON data: a graceful restart's snapshot sets it back, so the next bar draws the
    masks a run that never stopped would draw."""

    _rng: np.random.Generator

    @property
    def rng_state(self) -> dict[str, Any]:
        """The generator's ``bit_generator.state`` (a copy)."""
        return dict(self._rng.bit_generator.state)

    @rng_state.setter
    def rng_state(self, state: dict[str, Any]) -> None:
        self._rng = generator_from_state(state)


def generator_from_state(state: Mapping[str, Any]) -> np.random.Generator:
    """A ``default_rng`` generator set to ``state`` (a ``bit_generator.state``); ``ValueError`` or
    ``TypeError`` for another generator's state or junk."""
    rng = np.random.default_rng()
    rng.bit_generator.state = dict(state)
    return rng


def check_obs(obs: Any, obs_dim: int) -> NDArray[np.float64]:
    """``obs`` as float64 of shape ``(obs_dim,)`` or ``(n, obs_dim)``, finite; else ``InvalidInputError``."""
    if isinstance(obs, np.ndarray) and obs.dtype.kind not in "fiubO":  # complex: no silent cast
        raise InvalidInputError(f"obs must be real numbers, got dtype {obs.dtype}")
    try:
        x = np.asarray(obs, dtype=np.float64)
    except (TypeError, ValueError) as exc:  # strings, complex or ragged lists
        raise InvalidInputError(f"obs must be real numbers: {exc}") from exc
    if x.ndim not in (1, 2) or x.shape[-1] != obs_dim:
        raise InvalidInputError(f"obs must have shape ({obs_dim},) or (n, {obs_dim}), got {x.shape}")
    if not np.isfinite(x).all():
        raise InvalidInputError("obs contains NaN or inf")
    return x


@dataclass(frozen=True, slots=True)
class NumpyPolicy:
    """Actor weights (as ``x @ W + b``), log-std and normaliser statistics as NumPy arrays."""

    weights: tuple[F32, ...]
    biases: tuple[F32, ...]
    log_std: F32
    dropout: float
    obs_mean: NDArray[np.float64] | None
    obs_scale: NDArray[np.float64] | None
    obs_clip: float

    @classmethod
    def from_state_dict(
        cls,
        state: Mapping[str, NDArray[Any]],
        *,
        dropout: float,
        obs_mean: NDArray[np.float64] | None = None,
        obs_var: NDArray[np.float64] | None = None,
        obs_clip: float = 10.0,
        eps: float = 1e-8,
        prefix: str = "",
    ) -> NumpyPolicy:
        """The actor of an ``ActorCriticNetwork`` state dict given as NumPy arrays (copied).

        Reads ``{prefix}actor_layers.{k}.weight`` (torch's ``(out, in)`` layout, stored here as
        ``(in, out)``), ``{prefix}actor_layers.{k}.bias`` for ``k = 0, 1, ...`` and
        ``{prefix}actor_logstd``; other entries (the critic) are ignored. ``obs_mean`` / ``obs_var``
        are the normaliser's moments (None: observations are not normalised); the scale is
        ``sqrt(var + eps)``.

        Raises
        ------
        KeyError
            No ``actor_layers.0`` or no ``actor_logstd`` entry.
        ValueError
            Layer shapes that do not chain (a layer's input width is not the previous output width).
        """
        weights: list[F32] = []
        biases: list[F32] = []
        while f"{prefix}actor_layers.{len(weights)}.weight" in state or not weights:
            k = len(weights)
            w = np.asarray(state[f"{prefix}actor_layers.{k}.weight"], dtype=np.float32)
            b = np.asarray(state[f"{prefix}actor_layers.{k}.bias"], dtype=np.float32)
            if w.ndim != 2 or b.shape != (w.shape[0],) or (weights and weights[-1].shape[1] != w.shape[1]):
                raise ValueError(f"actor layer {k}: weight {w.shape} and bias {b.shape} do not fit")
            weights.append(np.ascontiguousarray(w.T))
            biases.append(b.copy())
        if (obs_mean is None) != (obs_var is None):
            raise ValueError("give both obs_mean and obs_var, or neither")
        return cls(
            weights=tuple(weights),
            biases=tuple(biases),
            log_std=np.asarray(state[f"{prefix}actor_logstd"], dtype=np.float32).reshape(-1).copy(),
            dropout=float(dropout),
            obs_mean=None if obs_mean is None else np.array(obs_mean, dtype=np.float64),
            obs_scale=None if obs_var is None else np.sqrt(np.asarray(obs_var, dtype=np.float64) + eps),
            obs_clip=float(obs_clip),
        )

    @property
    def obs_dim(self) -> int:
        """Length of an observation."""
        return int(self.weights[0].shape[0])

    @property
    def action_dim(self) -> int:
        """Length of an action (the head's outputs)."""
        return int(self.weights[-1].shape[1])

    def normalize(self, obs: NDArray[np.floating]) -> F32:
        """The training-time observation transform (identity cast when not normalising)."""
        if self.obs_mean is None or self.obs_scale is None:
            return np.asarray(obs, dtype=np.float32)
        z = (obs - self.obs_mean) / self.obs_scale
        return np.clip(z, -self.obs_clip, self.obs_clip).astype(np.float32)

    def mean_action(self, obs: NDArray[np.floating]) -> F32:
        """Deterministic action (policy mean, dropout off) for ``(obs_dim,)`` or ``(B, obs_dim)``."""
        return self._mean_from_first(self._first_layer(obs))

    def sample_action(self, obs: NDArray[np.floating], rng: np.random.Generator) -> F32:
        """Stochastic action ``mean + exp(log_std) * N(0, 1)``."""
        mean = self.mean_action(obs)
        noise = rng.standard_normal(mean.shape, dtype=np.float32)
        out: F32 = (mean + np.exp(self.log_std) * noise).astype(np.float32, copy=False)
        return out

    def mc_dropout(
        self, obs: NDArray[np.floating], n_samples: int, rng: np.random.Generator
    ) -> tuple[F32, F32]:
        """Deterministic action and the std of ``n_samples`` dropout-masked action means.

        Returns zeros for the std when dropout is 0 or ``n_samples == 1`` (all samples agree). The
        normalisation and the first layer are computed once for both.
        """
        h = self._first_layer(obs)
        action = self._mean_from_first(h)
        if self.dropout == 0.0 or n_samples == 1:
            return action, np.zeros_like(action)
        return action, _population_std(self._samples_from_first(h, n_samples, rng))

    def mc_samples(self, obs: NDArray[np.floating], n_samples: int, rng: np.random.Generator) -> F32:
        """``n_samples`` dropout-masked action means, shape ``(n_samples, *action shape)``.

        The samples are the rows of one 2-D matrix (one GEMM per layer, not a stack of tiny ones),
        and one uniform draw covers every mask: unit ``j`` is kept when its uniform is ``< 1 - p``
        and then scaled by ``1 / (1 - p)`` (inverted dropout).
        """
        return self._samples_from_first(self._first_layer(obs), n_samples, rng)

    # -- the layers --------------------------------------------------------------------------------
    def _first_layer(self, obs: NDArray[np.floating]) -> NDArray[Any]:
        """The first hidden activation: every sample shares it (dropout acts after it)."""
        h: NDArray[Any] = np.tanh(self.normalize(obs) @ self.weights[0] + self.biases[0])
        return h

    def _mean_from_first(self, h: NDArray[Any]) -> F32:
        x = h
        for w, b in zip(self.weights[1:-1], self.biases[1:-1], strict=True):
            x = np.tanh(x @ w + b)
        out: F32 = x @ self.weights[-1] + self.biases[-1]
        return out

    def _samples_from_first(self, h: NDArray[Any], n_samples: int, rng: np.random.Generator) -> F32:
        keep = np.float32(1.0 - self.dropout)
        lead = h.shape[:-1]
        first = h.reshape(-1, h.shape[-1])  # (rows, width): sample s of row r is row s * rows + r
        rows = first.shape[0]
        widths = [w.shape[0] for w in self.weights[1:]]
        masks = rng.random((n_samples * rows, sum(widths)), dtype=np.float32) < keep
        offset, last = 0, len(self.weights) - 1
        x = first
        for k, (w, b) in enumerate(zip(self.weights[1:], self.biases[1:], strict=True), start=1):
            kept = masks[:, offset : offset + w.shape[0]]
            offset += w.shape[0]
            if k == 1:  # the shared first activation, broadcast over the samples (not tiled first)
                dropped = (kept.reshape(n_samples, rows, -1) * first).reshape(n_samples * rows, -1)
            else:
                dropped = x * kept
            x = (dropped @ w) / keep + b
            if k < last:
                x = np.tanh(x)
        out: F32 = x.reshape(n_samples, *lead, x.shape[-1])
        return out


def _population_std(x: F32) -> F32:
    """``x.std(axis=0)`` (population std over the samples), the same float32 operations in the same
    order as NumPy's ``_var`` (sum, divide by the count, squared deviations, sum, divide, sqrt),
    without its Python-level dispatch (most of its cost at 10 x 21)."""
    n = x.shape[0]
    mean = x.sum(axis=0, keepdims=True)
    mean /= n
    dev = x - mean
    dev *= dev
    var = dev.sum(axis=0)
    var /= n
    out: F32 = np.sqrt(var, out=var)
    return out
