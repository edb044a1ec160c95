"""The compiled episode's deferred recurrent-weight gradient against the per-step one.

The deferred loop is run eagerly here (``compiled`` replaced by the plain function), so the
test checks the arithmetic, not the compiler; tests/test_compilation.py compiles it.
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

import mann_lightning.episode_loop as episode_loop
from mann_lightning.controller import LSTMController
from mann_lightning.deferred_weight_grad import DeferredWeightGrad, RecurrentInputs, tap
from mann_lightning.memory import LRUAMemory, NTMMemory
from mann_lightning.model import MANN, MANNState

pytestmark = pytest.mark.usefixtures("one_thread")


def _memory(kind: str | None):
    if kind == "lrua":
        return LRUAMemory(memory_size=8, word_size=5, num_reads=2)
    if kind == "ntm":
        return NTMMemory(memory_size=8, word_size=5, num_reads=2)
    return None


def _batch(batch: int = 3, time: int = 7, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, time, 6, generator=gen, dtype=torch.float64)
    labels = torch.randint(0, 4, (batch, time), generator=gen)
    prev = torch.zeros(batch, time, 4, dtype=torch.float64)
    prev[:, 1:] = F.one_hot(labels[:, :-1], 4).double()
    return x, prev, labels


def _grads(model: MANN, x, prev, labels, state=None) -> tuple[torch.Tensor, dict]:
    logits, final = model(x, prev, state)
    loss = F.cross_entropy(logits.flatten(0, 1), labels.flatten()) + final.reads.square().sum()
    loss.backward()
    return logits.detach(), {n: p.grad for n, p in model.named_parameters() if p.numel()}


@pytest.fixture
def eager_compile(monkeypatch):
    """``compiled(...)`` returns the function itself: the deferred loop runs eagerly."""
    monkeypatch.setattr(episode_loop, "compiled", lambda model, mode, fn: fn)


@pytest.mark.parametrize("controller", ["lstm", "feedforward"])
@pytest.mark.parametrize("memory", ["lrua", "ntm", None])
def test_deferred_gradient_equals_per_step(eager_compile, controller, memory):
    torch.manual_seed(0)
    per_step = MANN(6, 4, controller=controller, memory=_memory(memory), controller_size=9)
    per_step = per_step.double()
    deferred = copy.deepcopy(per_step)
    deferred.compile_mode = "episode"
    x, prev, labels = _batch()
    defers = episode_loop.defers_weight_grad(deferred.controller)
    assert defers == (controller == "lstm" or memory is not None)
    logits, expected = _grads(per_step, x, prev, labels)
    logits_deferred, got = _grads(deferred, x, prev, labels)
    torch.testing.assert_close(logits_deferred, logits, rtol=0, atol=1e-12)
    assert expected.keys() == got.keys()
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], rtol=1e-10, atol=1e-12)
    if defers:
        assert expected["controller.recurrent_weight"].abs().sum() > 0


def test_carried_state_gradient(eager_compile):
    """A state carried in from a previous episode (with its own graph) differentiates alike."""
    torch.manual_seed(1)
    per_step = MANN(6, 4, memory=_memory("lrua"), controller_size=9).double()
    deferred = copy.deepcopy(per_step)
    deferred.compile_mode = "episode"
    x, prev, labels = _batch(seed=2)
    grads = []
    for model in (per_step, deferred):
        _, state = model(x, prev)  # the first episode's graph stays attached
        logits, final = model(x, prev, state)
        loss = F.cross_entropy(logits.flatten(0, 1), labels.flatten())
        loss.backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters()})
    for name in grads[0]:
        torch.testing.assert_close(grads[1][name], grads[0][name], rtol=1e-10, atol=1e-12)


def test_frozen_recurrent_weight_is_not_deferred(eager_compile):
    model = MANN(6, 4, memory=_memory("lrua"), controller_size=9).double()
    model.controller.recurrent_weight.requires_grad_(False)
    assert not episode_loop.defers_weight_grad(model.controller)


def test_custom_step_is_not_deferred():
    class OwnStep(LSTMController):
        def step(self, projected, reads, prev_state):
            return super().step(projected, reads, prev_state)

    model = MANN(6, 4, controller=OwnStep(9), memory=_memory("lrua"))
    assert not episode_loop.defers_weight_grad(model.controller)


def test_second_derivative_raises(eager_compile):
    model = MANN(6, 4, controller_size=9).double()
    model.compile_mode = "episode"
    x, prev, labels = _batch()
    logits, _ = model(x, prev)
    loss = F.cross_entropy(logits.flatten(0, 1), labels.flatten())
    with pytest.raises(RuntimeError, match="first derivatives only"):
        torch.autograd.grad(loss, list(model.parameters()), create_graph=True)


def test_unrecorded_slot_says_so():
    weight = torch.randn(4, 3, requires_grad=True)
    projected = torch.randn(2, 5, 4, requires_grad=True)
    out, _ = tap(projected, weight)
    with pytest.raises(RuntimeError, match="never recorded"):
        out.sum().backward()


def test_tap_gradient_is_the_summed_product():
    gen = torch.Generator().manual_seed(3)
    weight = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    projected = torch.randn(2, 5, 4, dtype=torch.float64, requires_grad=True)
    inputs = torch.randn(2, 5, 3, dtype=torch.float64, generator=gen)
    g = torch.randn(2, 5, 4, dtype=torch.float64, generator=gen)
    slot = RecurrentInputs()
    out = DeferredWeightGrad.apply(projected, weight, slot)
    slot.record(inputs)
    out.backward(g)
    torch.testing.assert_close(projected.grad, g)
    expected = sum(g[b, t, :, None] * inputs[b, t, None, :] for b in range(2) for t in range(5))
    torch.testing.assert_close(weight.grad, expected)


def test_state_type_unchanged(eager_compile):
    model = MANN(6, 4, memory=_memory("ntm"), controller_size=9).double()
    model.compile_mode = "episode"
    x, prev, _ = _batch()
    logits, state = model(x, prev)
    assert isinstance(state, MANNState) and logits.shape == (3, 7, 4)
