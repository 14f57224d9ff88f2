"""``optim.clip_grad_norm_`` against ``torch.nn.utils.clip_grad_norm_`` (the reference), bit for bit."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from advanced_risk.rl.ppo.optim import clip_grad_norm_

SHAPES = [(64, 242), (64,), (64, 64), (11, 64), (11,), (1, 11), (1,)]


def _grads(seed: int, scale: float, dtype: torch.dtype = torch.float32) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return [scale * torch.randn(shape, generator=gen, dtype=dtype) for shape in SHAPES]


def _reference(grads: list[torch.Tensor], max_norm: float) -> list[torch.Tensor]:
    params = [nn.Parameter(torch.zeros_like(g)) for g in grads]
    for p, g in zip(params, grads, strict=True):
        p.grad = g.clone()
    nn.utils.clip_grad_norm_(params, max_norm, foreach=True)
    return [p.grad for p in params if p.grad is not None]


def _assert_bit_for_bit(ours: list[torch.Tensor], theirs: list[torch.Tensor]) -> None:
    for a, b in zip(ours, theirs, strict=True):
        bits = torch.int32 if a.dtype is torch.float32 else torch.int64
        assert torch.equal(a.view(bits), b.view(bits))


@settings(max_examples=200, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    log_scale=st.floats(-8.0, 4.0),
    max_norm=st.sampled_from([0.5, 0.1, 1.0, 3.7, 1e-3, 0.3]),
)
def test_the_clip_is_torchs_bit_for_bit(seed: int, log_scale: float, max_norm: float) -> None:
    """Norms far below and far above ``max_norm`` and near it: the clipped gradients are
    ``clip_grad_norm_``'s to the bit, whether the coefficient is below 1 or clamped to 1."""
    grads = _grads(seed, 10.0**log_scale)
    reference = _reference(grads, max_norm)
    clip_grad_norm_(grads, max_norm)
    _assert_bit_for_bit(grads, reference)


def test_a_norm_at_the_limit_and_a_zero_gradient() -> None:
    grads = _grads(3, 1.0)
    norm = float(torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads))))
    for max_norm in (norm, math.nextafter(norm, 0.0), norm - 1e-6, norm + 1e-6):
        again = [g.clone() for g in grads]
        reference = _reference(again, max_norm)
        clip_grad_norm_(again, max_norm)
        _assert_bit_for_bit(again, reference)
    zeros = [torch.zeros(shape) for shape in SHAPES]
    clip_grad_norm_(zeros, 0.5)
    assert all(torch.equal(z, torch.zeros_like(z)) for z in zeros)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_a_nan_or_infinite_norm_scales_as_torch_does(bad: float) -> None:
    grads = _grads(4, 1.0)
    grads[2][3, 5] = bad
    reference = _reference(grads, 0.5)
    clip_grad_norm_(grads, 0.5)
    for ours, theirs in zip(grads, reference, strict=True):
        assert torch.equal(ours.isnan(), theirs.isnan())
        assert torch.equal(ours.nan_to_num(), theirs.nan_to_num())


def test_float64_gradients_take_the_tensor_path_and_an_empty_list_is_a_no_op() -> None:
    grads = _grads(5, 3.0, torch.float64)
    reference = _reference(grads, 0.5)
    clip_grad_norm_(grads, 0.5)
    _assert_bit_for_bit(grads, reference)
    clip_grad_norm_([], 0.5)


def test_without_torchs_private_grouping_a_mixed_list_is_grouped_by_hand(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A torch that moved ``_group_tensors_by_device_and_dtype``: the same clip up to the norm's
    rounding (the groups' order may differ from torch's)."""
    from advanced_risk.rl.ppo import optim

    monkeypatch.setattr(optim, "_GROUP_BY_DEVICE_AND_DTYPE", None)
    grads = [*_grads(6, 2.0), *_grads(7, 2.0, torch.float64)]
    reference = _reference(grads, 0.5)
    clip_grad_norm_(grads, 0.5)
    for ours, theirs in zip(grads, reference, strict=True):
        assert ours.dtype == theirs.dtype
        torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=0.0)
