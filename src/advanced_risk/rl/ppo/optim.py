"""The PPO trainer's optimiser: Adam built for the device, and its step without the per-call Python.

``torch.optim.Adam(fused=True)`` runs the whole update of every parameter in one kernel, but
``Optimizer.step`` wraps that kernel in Python run on every call: the hook chains, a profiler
record, a pass over the parameters to collect their state, and the grouping of six lists by device
and dtype. For the trainer's 13 small parameters that wrapper costs more than the kernel (on a
2-core AMD EPYC: ~500 us of Python around a ~140 us kernel per step, docs/performance.md).
:func:`fused_adam_step` calls the same kernel on the same state tensors directly, so a step is
bit for bit ``optimizer.step()``'s (``tests/rl/test_ppo_optim.py``), and hands back to
``optimizer.step()`` wherever the shortcut does not apply. :func:`clip_grad_norm_` is
``torch.nn.utils.clip_grad_norm_``'s arithmetic on a list of gradients, bit for bit, with the scalar
work of the clip coefficient off torch's dispatch on CPU.
"""

from __future__ import annotations

import math
from typing import Any, cast

import numpy as np
import torch
from torch.optim import optimizer as _torch_optimizer
from torch.utils import _foreach_utils

_GROUP_BY_DEVICE_AND_DTYPE: Any = getattr(_foreach_utils, "_group_tensors_by_device_and_dtype", None)
"""torch's private grouping, which ``clip_grad_norm_`` uses (torch 2.0 to 2.13 at least); None in a
torch that moved it, where :func:`_clip_grouped` groups by hand (the same maths; the norm's last bit
may then differ from torch's)."""


def adam(params: list[torch.nn.Parameter], lr: float) -> torch.optim.Adam:
    """Adam with the fused kernel (one kernel per step instead of ~10 small ops per parameter), or
    the foreach implementation where torch has no fused one for the device (CPU before torch 2.4)."""
    try:
        return torch.optim.Adam(params, lr=lr, eps=1e-5, fused=True)
    except RuntimeError:  # "`fused=True` requires all the params to be ... of supported devices"
        return torch.optim.Adam(params, lr=lr, eps=1e-5, foreach=True)


def clip_grad_norm_(grads: list[torch.Tensor], max_norm: float) -> None:
    """Scale ``grads`` in place so that their global 2-norm is at most ``max_norm``.

    ``torch.nn.utils.clip_grad_norm_(..., foreach=True)``'s arithmetic, bit for bit: the norm of the
    per-tensor 2-norms, then ``g *= clamp(max_norm / (norm + 1e-6), max=1)``. When every gradient is
    CPU float32 the coefficient's scalar operations run on NumPy float32 scalars in torch's order
    (torch's ``scalar / tensor`` is ``tensor.reciprocal() * scalar``, each step rounded to float32),
    ~1 us against ~12 us of three tensor operations, and the multiplication is skipped when the
    coefficient is 1 (``g * 1`` is ``g``, NaN and -0.0 included). A NaN or infinite norm scales by
    NaN or 0 as torch does; a ``max_norm`` beyond float32's range rounds to +-inf as in torch, and
    these non-finite cases emit no NumPy overflow/invalid warning. Elsewhere (CUDA, other dtypes)
    the tensor operations run unchanged, with no device synchronisation; a list mixing dtypes or
    devices takes torch's own grouping (``clip_grad_norm_`` stacks the per-tensor norms group by
    group, so the order of the sum, and the norm's last bit, follow its groups, not the list).
    """
    if not grads:
        return
    if not all(g.is_cpu and g.dtype is torch.float32 for g in grads):
        _clip_grouped(grads, float(max_norm))
        return
    total = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
    norm = total.item()
    one = np.float32(1.0)
    if abs(max_norm) <= 1e32 and norm < math.inf:  # coef <= ~1e6: no overflow, no 0 * inf
        coef = (one / (np.float32(norm) + np.float32(1e-6))) * np.float32(max_norm)
    else:  # max_norm past float32 (the cast overflows to inf), an infinite or NaN norm or max_norm
        with np.errstate(over="ignore", invalid="ignore"):
            coef = (one / (np.float32(norm) + np.float32(1e-6))) * np.float32(max_norm)
    if not coef >= one:  # below 1, or NaN (which clamp keeps)
        # by a 0-dim tensor (the norm's own, refilled): foreach_mul_ with a Python scalar takes a
        # per-tensor path, ~33 us against ~10 for the trainer's 13 gradients
        torch._foreach_mul_(grads, total.fill_(float(coef)))


def _clip_grouped(grads: list[torch.Tensor], max_norm: float) -> None:
    """``torch.nn.utils.clip_grad_norm_(..., foreach=True)`` on gradients of any dtypes and devices:
    its ``_get_total_norm`` and ``_clip_grads_with_norm_`` on a list of gradients, the norms stacked
    in the order of torch's groups by device and dtype."""
    if _GROUP_BY_DEVICE_AND_DTYPE is None:  # see its docstring
        by_key: dict[tuple[torch.device, torch.dtype], list[torch.Tensor]] = {}
        for g in grads:
            by_key.setdefault((g.device, g.dtype), []).append(g)
        groups = [(device, group) for (device, _), group in by_key.items()]
    else:
        tensorlists: list[list[torch.Tensor | None]] = [list(grads)]
        groups = [
            (device, cast(list[torch.Tensor], group))  # no None: every entry is a gradient
            for (device, _), ([group], _) in _GROUP_BY_DEVICE_AND_DTYPE(tensorlists).items()
        ]
    first_device = grads[0].device
    norms: list[torch.Tensor] = []
    for _, device_grads in groups:
        norms.extend(torch._foreach_norm(device_grads, 2.0))
    total = torch.linalg.vector_norm(torch.stack([n.to(first_device) for n in norms]), 2.0)
    coef = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    for device, device_grads in groups:
        torch._foreach_mul_(device_grads, coef.to(device))


def grad_scaler(device_type: str, enabled: bool) -> Any:
    """``torch.amp.GradScaler`` (torch 2.3 on), else the CUDA one it replaced (only CUDA uses AMP)."""
    scaler = getattr(torch.amp, "GradScaler", None)
    if scaler is not None:
        return scaler(device_type, enabled=enabled)
    return torch.cuda.amp.GradScaler(enabled=enabled)


def _has_hooks(optimizer: torch.optim.Optimizer) -> bool:
    """Whether something around ``optimizer.step()`` must see this step or changes what it does.

    A step hook (the optimizer's own or a global one); a ``step`` replaced on the instance (a
    ``torch.optim.lr_scheduler`` scheduler wraps it to count the calls, a user may wrap it too); or a
    ``grad_scale`` / ``found_inf`` attribute, which ``Adam.step`` passes to the kernel (a
    ``GradScaler`` sets them around its ``optimizer.step()`` call).
    """
    if "step" in vars(optimizer):
        return True
    if (
        getattr(optimizer, "grad_scale", None) is not None
        or getattr(optimizer, "found_inf", None) is not None
    ):
        return True
    own = (optimizer._optimizer_step_pre_hooks, optimizer._optimizer_step_post_hooks)
    global_ = (
        getattr(_torch_optimizer, "_global_optimizer_pre_hooks", None),
        getattr(_torch_optimizer, "_global_optimizer_post_hooks", None),
    )
    return any(own) or any(hooks is None or hooks for hooks in global_)


Lists = tuple[
    list[torch.Tensor], list[torch.Tensor], list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]
]
"""A parameter group's ``(params, grads, exp_avgs, exp_avg_sqs, steps)``, as the fused kernel takes them."""


def _group_lists(optimizer: torch.optim.Optimizer, group: dict[str, Any]) -> Lists | None:
    """The kernel's lists of one group of a fused Adam, or None where the shortcut does not apply."""
    if not group["fused"] or group["amsgrad"] or group["differentiable"]:
        return None
    if group.get("decoupled_weight_decay") or isinstance(group["lr"], torch.Tensor):
        return None
    lists: Lists = ([], [], [], [], [])
    params, grads, exp_avgs, exp_avg_sqs, steps = lists
    for p in group["params"]:
        state, grad = optimizer.state.get(p), p.grad
        if grad is None or not state or (grad.device, grad.dtype) != (p.device, p.dtype):
            return None
        if grad.layout is not torch.strided:  # sparse: optimizer.step() raises before changing anything
            return None
        if params and (p.device, p.dtype) != (params[0].device, params[0].dtype):
            return None  # the kernel takes one device and dtype per call
        params.append(p)
        grads.append(grad)
        exp_avgs.append(state["exp_avg"])
        exp_avg_sqs.append(state["exp_avg_sq"])
        steps.append(state["step"])
    return lists


def fused_adam_step(optimizer: torch.optim.Optimizer) -> bool:
    """One step of a fused ``torch.optim.Adam`` through its kernel, without ``Optimizer.step``.

    The same kernel (``torch._fused_adam_``) with the same arguments on the optimizer's own state
    tensors, after the same increment of each ``step`` counter: the parameters and the state end
    bit for bit as after ``optimizer.step()``.

    Returns
    -------
    bool
        True when the step was taken. False, with nothing changed, where the shortcut does not
        apply and the caller must call ``optimizer.step()``: not a fused ``Adam`` (or torch has no
        fused kernel), AMSGrad, a differentiable optimizer, a learning rate given as a tensor, hooks
        registered or ``step`` replaced on the instance (an LR scheduler attached), a ``grad_scale`` or
        ``found_inf`` set on the optimizer, a parameter without a gradient or with a sparse one,
        parameters of several devices or dtypes in one group, or a parameter whose state
        ``optimizer.step()`` has not created yet (its first step).
    """
    fused = getattr(torch, "_fused_adam_", None)
    if type(optimizer) is not torch.optim.Adam or fused is None or _has_hooks(optimizer):
        return False
    groups = [(group, _group_lists(optimizer, group)) for group in optimizer.param_groups]
    if any(lists is None for _, lists in groups):
        return False
    for group, lists in groups:
        assert lists is not None
        params, grads, exp_avgs, exp_avg_sqs, steps = lists
        if not params:
            continue
        beta1, beta2 = group["betas"]
        torch._foreach_add_(steps, 1)
        fused(
            params, grads, exp_avgs, exp_avg_sqs, [], steps,
            amsgrad=False, lr=group["lr"], beta1=float(beta1), beta2=float(beta2),
            weight_decay=group["weight_decay"], eps=group["eps"], maximize=group["maximize"],
            grad_scale=None, found_inf=None,
        )  # fmt: skip
    return True
