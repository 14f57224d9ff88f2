"""Adversarial checks of ``fused_adam_step``: bit for bit ``optimizer.step()`` when taken, else no change.

Regressions: a sparse gradient (the kernel raised ``NotImplementedError`` after the ``step`` counters
were already incremented, where ``optimizer.step()`` raises its own error before changing anything);
``grad_scale`` / ``found_inf`` set on the optimizer (``Adam.step`` passes them to the kernel, the
shortcut ignored them); a ``step`` replaced on the instance (an LR scheduler's call counter, a user's
wrapper) was bypassed.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

import advanced_risk.rl.ppo.agent as agent_module
from advanced_risk.rl.ppo.agent import PPOAgent
from advanced_risk.rl.ppo.optim import fused_adam_step
from advanced_risk.training.checkpoint import read_checkpoint, write_checkpoint

from .test_ppo import TargetVecEnv
from .test_ppo_fast_paths import fast_config

pytestmark = pytest.mark.skipif(
    getattr(torch, "_fused_adam_", None) is None, reason="this torch has no fused Adam kernel"
)
SHAPES = [(4, 3), (3,), (2, 2)]

Groups = Callable[[], Any]


def _params(dtype: torch.dtype = torch.float32) -> list[torch.nn.Parameter]:
    gen = torch.Generator().manual_seed(0)
    return [torch.nn.Parameter(torch.randn(s, generator=gen).to(dtype)) for s in SHAPES]


def _all(opt: torch.optim.Optimizer) -> list[torch.Tensor]:
    return [p for group in opt.param_groups for p in group["params"]]


def _set_grads(
    opts: tuple[torch.optim.Optimizer, ...], seed: int, edit: Callable[[int, torch.Tensor], Any]
) -> None:
    gen = torch.Generator().manual_seed(seed)
    grads = [edit(i, torch.randn(p.shape, generator=gen)) for i, p in enumerate(_all(opts[0]))]
    for opt in opts:
        for p, g in zip(_all(opt), grads, strict=True):
            p.grad = None if g is None else g.to(p.dtype).clone()


def _bits(t: torch.Tensor) -> torch.Tensor:
    """The tensor's bytes, so NaN positions and payloads compare too."""
    return t.detach().contiguous().reshape(-1).view(torch.uint8)


def _same(a: torch.optim.Optimizer, b: torch.optim.Optimizer) -> None:
    for p, q in zip(_all(a), _all(b), strict=True):
        assert torch.equal(_bits(p), _bits(q))
        assert a.state[p].keys() == b.state[q].keys()
        for key, x in a.state[p].items():
            y = b.state[q][key]
            assert (x.dtype, x.device, x.shape) == (y.dtype, y.device, y.shape), key
            assert torch.equal(_bits(x), _bits(y)), key


def _two_groups() -> list[dict[str, Any]]:
    ps = _params()
    return [
        {"params": ps[:2]},
        {"params": [ps[2]], "lr": 0.5, "weight_decay": 0.3, "betas": (0.5, 0.6)},
        {"params": []},
    ]


def _nan_inf(_i: int, g: torch.Tensor) -> torch.Tensor:
    return torch.where(g > 1, torch.nan, torch.where(g < -1, torch.inf, g))


def _big_step(opt: torch.optim.Optimizer, i: int) -> None:
    if i == 0:  # float32 counts exactly up to 2**24; past it, +1 rounds back
        for state in opt.state.values():
            state["step"].fill_(2**24 - 1)


def _new_lr(opt: torch.optim.Optimizer, i: int) -> None:
    opt.param_groups[0]["lr"] = [0.3, 1, 1e-4][i % 3]


CASES: dict[str, tuple[Groups, dict[str, Any], Callable[[int, torch.Tensor], Any], Any]] = {
    "groups: lr, betas, decay, empty": (_two_groups, {}, lambda _i, g: g, None),
    "tensor betas": (_params, {"betas": (torch.tensor(0.9), torch.tensor([0.99]))}, lambda _i, g: g, None),
    "weight decay, maximize": (_params, {"weight_decay": 0.1, "maximize": True}, lambda _i, g: g, None),
    "nan and inf grads": (_params, {}, _nan_inf, None),
    "step 2**24 - 1": (_params, {}, lambda _i, g: g, _big_step),
    "lr changed between steps": (_params, {}, lambda _i, g: g, _new_lr),
    "transposed grad views": (_params, {}, lambda _i, g: g.t().contiguous().t() if g.dim() == 2 else g, None),
    "float64": (lambda: _params(torch.float64), {}, lambda _i, g: g, None),
    "bfloat16": (lambda: _params(torch.bfloat16), {}, lambda _i, g: g, None),
}


@pytest.mark.parametrize("name", list(CASES))
def test_taken_steps_are_bit_for_bit_optimizer_step(name: str) -> None:
    groups, adam, edit, mutate = CASES[name]
    ours = torch.optim.Adam(groups(), lr=1e-2, fused=True, **adam)
    ref = torch.optim.Adam(groups(), lr=1e-2, fused=True, **adam)
    _set_grads((ours, ref), 1, lambda _i, g: g)
    ours.step()
    ref.step()
    for i in range(3):
        if mutate is not None:
            mutate(ours, i)
            mutate(ref, i)
        _set_grads((ours, ref), 10 + i, edit)
        assert fused_adam_step(ours)
        ref.step()
        _same(ours, ref)


def test_a_parameter_without_grad_declines_and_optimizer_step_skips_it() -> None:
    ours, ref = (torch.optim.Adam(_params(), fused=True) for _ in range(2))
    for opt in (ours, ref):
        _set_grads((opt,), 1, lambda _i, g: g)
        opt.step()
    _set_grads((ours, ref), 2, lambda i, g: None if i == 1 else g)  # a frozen parameter
    assert not fused_adam_step(ours)
    ours.step()
    ref.step()
    _same(ours, ref)


def _stepped() -> tuple[torch.optim.Adam, list[torch.Tensor]]:
    opt = torch.optim.Adam(_params(), fused=True)
    _set_grads((opt,), 1, lambda _i, g: g)
    opt.step()
    _set_grads((opt,), 2, lambda _i, g: g)
    return opt, [t.clone() for p in _all(opt) for t in (p.detach(), *opt.state[p].values())]


def _unchanged(opt: torch.optim.Adam, before: list[torch.Tensor]) -> bool:
    now = [t for p in _all(opt) for t in (p.detach(), *opt.state[p].values())]
    return all(torch.equal(x, y) for x, y in zip(now, before, strict=True))


def test_a_sparse_grad_declines_with_nothing_changed() -> None:
    opt, before = _stepped()
    p = _all(opt)[0]
    p.grad = p.grad.to_sparse()  # type: ignore[union-attr]
    assert not fused_adam_step(opt)  # was: step counters incremented, then NotImplementedError
    assert _unchanged(opt, before)
    with pytest.raises(RuntimeError, match="sparse"):
        opt.step()
    assert _unchanged(opt, before)


def test_grad_scale_and_found_inf_on_the_optimizer_decline() -> None:
    ours, _ = _stepped()
    ref, _ = _stepped()
    for opt in (ours, ref):  # as GradScaler sets them around its optimizer.step() call
        opt.grad_scale = torch.tensor(4.0)  # type: ignore[attr-defined]
        opt.found_inf = torch.tensor(1.0)  # type: ignore[attr-defined]
    assert not fused_adam_step(ours)
    ours.step()
    ref.step()
    _same(ours, ref)


def test_a_step_replaced_on_the_instance_declines() -> None:
    opt, before = _stepped()
    calls: list[int] = []
    step = opt.step

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return step(*args, **kwargs)

    opt.step = wrapper  # type: ignore[method-assign]
    assert not fused_adam_step(opt)
    assert _unchanged(opt, before)
    assert not calls


def test_an_lr_scheduler_attached_after_the_first_step_sees_the_steps() -> None:
    opt, _ = _stepped()  # e.g. an optimizer restored from a checkpoint
    scheduler = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "Detected call of `lr_scheduler.step()` before `optimizer.step()`"
        for seed in range(3):
            _set_grads((opt,), seed, lambda _i, g: g)
            if not fused_adam_step(opt):
                opt.step()
            scheduler.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(1e-3 / 8)


def test_the_shortcut_keeps_parameters_leaves_under_grad_mode() -> None:
    opt, _ = _stepped()
    with torch.enable_grad():
        assert fused_adam_step(opt)
    assert all(p.is_leaf and p.grad_fn is None and p.requires_grad for p in _all(opt))


def test_a_foreach_checkpoint_trains_on_in_a_fused_agent_bit_for_bit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A checkpoint of a torch without fused CPU Adam (foreach, ``fused`` None in its groups), through
    the checkpoint file, into a fused agent: the shortcut is taken and equals ``optimizer.step()``."""
    adam = torch.optim.Adam

    def no_fused_cpu(params: Any, **kw: Any) -> torch.optim.Adam:
        if kw.get("fused"):
            raise RuntimeError(
                "`fused=True` requires all the params to be floating point Tensors of supported devices"
            )
        return adam(params, **kw)

    cfg = fast_config(total_timesteps=256 * 3)
    monkeypatch.setattr(torch.optim, "Adam", no_fused_cpu)
    saver = PPOAgent(3, 3, cfg)
    env = TargetVecEnv(p_terminate=0.1)
    saver.train(env, callback=lambda update, _stats: update == 1)
    monkeypatch.setattr(torch.optim, "Adam", adam)
    assert not saver.optimizer.param_groups[0]["fused"]
    write_checkpoint(tmp_path / "state.ckpt", saver.state_dict(), {})
    _, state = read_checkpoint(tmp_path / "state.ckpt")

    agents, taken = [], []
    for shortcut in (True, False):
        if shortcut:
            monkeypatch.setattr(
                agent_module, "fused_adam_step", lambda opt: taken.append(fused_adam_step(opt)) or taken[-1]
            )
        else:
            monkeypatch.setattr(agent_module, "fused_adam_step", lambda _opt: False)
        agent = PPOAgent(3, 3, cfg)
        agent.load_state_dict(copy.deepcopy(state))
        assert agent.optimizer.param_groups[0]["fused"]
        for s in agent.optimizer.state.values():
            assert (s["step"].dtype, s["step"].device) == (torch.float32, torch.device("cpu"))
        agent.train(copy.deepcopy(env), reset_num_timesteps=False)
        agents.append(agent)
    assert taken
    assert all(taken)  # every step through the shortcut, the first one included
    a, b = agents
    for p, q in zip(a.network.parameters(), b.network.parameters(), strict=True):
        assert torch.equal(p, q)
    _same(a.optimizer, b.optimizer)
