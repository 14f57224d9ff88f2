"""``NumpyPolicy.mc_samples`` against the tiled formulation it replaced (kept here verbatim as the
reference): every output bit for bit, for one observation and for batches, on random networks."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from advanced_risk.rl.ppo.inference import NumpyPolicy


def _tiled(net: NumpyPolicy, obs: np.ndarray, n_samples: int, rng: np.random.Generator) -> np.ndarray:
    h = net._first_layer(obs)
    keep = np.float32(1.0 - net.dropout)
    lead = h.shape[:-1]
    x = np.tile(h.reshape(-1, h.shape[-1]), (n_samples, 1))
    widths = [w.shape[0] for w in net.weights[1:]]
    masks = rng.random((x.shape[0], sum(widths)), dtype=np.float32) < keep
    offset, last = 0, len(net.weights) - 1
    for k, (w, b) in enumerate(zip(net.weights[1:], net.biases[1:], strict=True), start=1):
        kept = masks[:, offset : offset + w.shape[0]]
        offset += w.shape[0]
        x = ((x * kept) @ w) / keep + b
        if k < last:
            x = np.tanh(x)
    return x.reshape(n_samples, *lead, x.shape[-1])


def _network(rng: np.random.Generator, sizes: list[int], dropout: float) -> NumpyPolicy:
    weights = tuple(rng.normal(0, 0.3, (a, b)).astype(np.float32) for a, b in itertools.pairwise(sizes))
    biases = tuple(rng.normal(0, 0.1, b).astype(np.float32) for b in sizes[1:])
    return NumpyPolicy(
        weights=weights,
        biases=biases,
        log_std=np.zeros(sizes[-1], np.float32),
        dropout=dropout,
        obs_mean=None,
        obs_scale=None,
        obs_clip=10.0,
    )


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    hidden=st.lists(st.integers(1, 40), min_size=1, max_size=3),
    lead=st.sampled_from([(), (1,), (3,), (2, 4)]),
    n_samples=st.integers(1, 12),
    dropout=st.sampled_from([0.05, 0.1, 0.5]),
)
def test_mc_samples_equal_the_tiled_formulation_bit_for_bit(
    seed: int, hidden: list[int], lead: tuple[int, ...], n_samples: int, dropout: float
) -> None:
    rng = np.random.default_rng(seed)
    net = _network(rng, [7, *hidden, 5], dropout)
    obs = rng.normal(0, 1, (*lead, 7))
    got = net.mc_samples(obs, n_samples, np.random.default_rng(seed + 1))
    want = _tiled(net, obs, n_samples, np.random.default_rng(seed + 1))
    assert got.dtype == want.dtype
    assert got.shape == want.shape
    assert np.array_equal(got, want)
