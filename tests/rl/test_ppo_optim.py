"""``fused_adam_step`` against ``torch.optim.Adam.step`` (the reference): bit for bit, or not taken."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.optim.optimizer import register_optimizer_step_post_hook

import advanced_risk.rl.ppo.agent as agent_module
from advanced_risk.rl.ppo.agent import PPOAgent
from advanced_risk.rl.ppo.optim import fused_adam_step

from .test_ppo import TargetVecEnv
from .test_ppo_fast_paths import fast_config

pytestmark = pytest.mark.skipif(
    getattr(torch, "_fused_adam_", None) is None, reason="this torch has no fused Adam kernel"
)
SHAPES = [(7, 5), (7,), (3, 7), (3,), (1,)]


def _params(seed: int) -> list[torch.nn.Parameter]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.nn.Parameter(torch.randn(shape, generator=gen)) for shape in SHAPES]


def _pair(seed: int, **adam: Any) -> tuple[torch.optim.Adam, torch.optim.Adam]:
    """Two fused Adams over equal copies of the same parameters."""
    kw = {"lr": 1e-2, "eps": 1e-5, "fused": True} | adam
    return torch.optim.Adam(_params(seed), **kw), torch.optim.Adam(_params(seed), **kw)


def _set_grads(opts: tuple[torch.optim.Adam, ...], gen: torch.Generator, scale: float) -> None:
    grads = [scale * torch.randn(shape, generator=gen) for shape in SHAPES]
    for opt in opts:
        for p, g in zip(opt.param_groups[0]["params"], grads, strict=True):
            p.grad = g.clone()


def _same_state(a: torch.optim.Adam, b: torch.optim.Adam) -> None:
    for p, q in zip(a.param_groups[0]["params"], b.param_groups[0]["params"], strict=True):
        assert torch.equal(p, q)
        for key in ("step", "exp_avg", "exp_avg_sq"):
            assert torch.equal(a.state[p][key], b.state[q][key])


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    steps=st.integers(1, 6),
    scale=st.sampled_from([1e-6, 1.0, 1e3]),
    weight_decay=st.sampled_from([0.0, 0.1]),
    maximize=st.booleans(),
    betas=st.sampled_from([(0.9, 0.999), (0.5, 0.9)]),
)
def test_steps_are_bit_for_bit_adams(
    seed: int, steps: int, scale: float, weight_decay: float, maximize: bool, betas: tuple[float, float]
) -> None:
    ours, ref = _pair(seed, weight_decay=weight_decay, maximize=maximize, betas=betas)
    gen = torch.Generator().manual_seed(seed + 1)
    _set_grads((ours, ref), gen, scale)
    ours.step()  # the first step creates the state: the shortcut declines it
    ref.step()
    for i in range(steps):
        _set_grads((ours, ref), gen, scale)
        for opt in (ours, ref):  # an annealed learning rate, as the trainer sets it
            opt.param_groups[0]["lr"] = 1e-2 * (1.0 - i / 10)
        assert fused_adam_step(ours)
        ref.step()
        _same_state(ours, ref)


def _declines(opt: torch.optim.Optimizer) -> None:
    before = [p.detach().clone() for p in opt.param_groups[0]["params"]]
    assert not fused_adam_step(opt)
    assert all(torch.equal(p, q) for p, q in zip(opt.param_groups[0]["params"], before, strict=True))


def _stepped(opt: torch.optim.Adam) -> torch.optim.Adam:
    _set_grads((opt,), torch.Generator().manual_seed(3), 1.0)
    opt.step()
    return opt


@pytest.mark.parametrize(
    "make",
    [
        lambda: torch.optim.Adam(_params(0), fused=True),  # no state yet (first step)
        lambda: _stepped(torch.optim.Adam(_params(0), foreach=True)),
        lambda: _stepped(torch.optim.Adam(_params(0), foreach=False)),
        lambda: _stepped(torch.optim.Adam(_params(0), fused=True, amsgrad=True)),
        lambda: _stepped(torch.optim.Adam(_params(0), fused=True, lr=torch.tensor(1e-3))),
        lambda: _stepped(torch.optim.AdamW(_params(0), fused=True)),
    ],
    ids=["first step", "foreach", "for-loop", "amsgrad", "tensor lr", "AdamW"],
)
def test_declines_where_it_does_not_apply(make: Callable[[], torch.optim.Optimizer]) -> None:
    opt = make()
    _set_grads((opt,), torch.Generator().manual_seed(4), 1.0)  # type: ignore[arg-type]
    _declines(opt)


def test_declines_a_parameter_without_gradient_and_with_hooks() -> None:
    opt = _stepped(torch.optim.Adam(_params(0), fused=True))
    _set_grads((opt,), torch.Generator().manual_seed(4), 1.0)
    seen: list[int] = []
    handle = opt.register_step_pre_hook(lambda *_: seen.append(1))
    _declines(opt)  # the hook must see the step: optimizer.step() runs it
    handle.remove()
    handle = register_optimizer_step_post_hook(lambda *_: seen.append(2))
    try:
        _declines(opt)
    finally:
        handle.remove()
    opt.param_groups[0]["params"][1].grad = None
    _declines(opt)
    assert not seen  # declining runs nothing


def test_training_with_the_shortcut_equals_training_without(monkeypatch: pytest.MonkeyPatch) -> None:
    runs = []
    for shortcut in (True, False):
        if not shortcut:
            monkeypatch.setattr(agent_module, "fused_adam_step", lambda _opt: False)
        agent = PPOAgent(3, 3, fast_config())
        history = agent.train(TargetVecEnv(p_terminate=0.1))
        runs.append((agent, history))
    (a, ha), (b, hb) = runs
    for p, q in zip(a.network.parameters(), b.network.parameters(), strict=True):
        assert torch.equal(p, q)
    assert [h["policy_loss"] for h in ha] == [h["policy_loss"] for h in hb]
    _same_state(a.optimizer, b.optimizer)  # type: ignore[arg-type]
