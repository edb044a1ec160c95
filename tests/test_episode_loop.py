"""Tests for the unrolled episode (mann_lightning/episode_loop.py) against a step-by-step
loop written here: the hoisted input projection and output layer compute what one step at a
time does, the kept memory states are each step's, and the final state is the last step's."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mann_lightning import episode_loop
from mann_lightning.memory import LRUAMemory, NTMMemory
from mann_lightning.model import MANN

pytestmark = pytest.mark.usefixtures("one_thread")


def _model(memory: str | None, controller: str = "lstm") -> MANN:
    torch.manual_seed(0)
    memories = {"lrua": LRUAMemory(8, 5, 2), "ntm": NTMMemory(8, 5, 2), None: None}
    return MANN(7, 4, controller=controller, memory=memories[memory], controller_size=9).double()


def _episode(batch: int = 3, time: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(batch, time, 7, generator=gen, dtype=torch.float64)
    labels = torch.randint(0, 4, (batch, time), generator=gen)
    prev = torch.zeros(batch, time, 4, dtype=torch.float64)
    prev[:, 1:] = F.one_hot(labels[:, :-1], 4).double()
    return x, prev


def _reference(model: MANN, x: torch.Tensor, prev: torch.Tensor):
    """One step at a time, nothing hoisted: logits, memory states and the final state."""
    state = model.initial_state(x.shape[0])
    controller_state, memory_state, reads = state
    logits, memory_states = [], []
    for t in range(x.shape[1]):
        projected = model.controller.project_inputs(torch.cat([x[:, t], prev[:, t]], -1))
        h, controller_state = model.controller.step(projected, reads, controller_state)
        features = h
        if model.memory is not None:
            r, memory_state = model.memory(h, memory_state)
            reads = r.flatten(1)
            memory_states.append(memory_state)
            features = torch.cat([h, reads], -1)
        logits.append(model.output(features))
    return torch.stack(logits, 1), memory_states, (controller_state, memory_state, reads)


@pytest.mark.parametrize("controller", ["lstm", "feedforward"])
@pytest.mark.parametrize("memory", ["lrua", "ntm", None])
def test_unroll_equals_step_by_step(controller, memory):
    model = _model(memory, controller)
    x, prev = _episode()
    logits, final, states = episode_loop.unroll(model, x, prev, None, keep_memory_states=True)
    want_logits, want_states, want_final = _reference(model, x, prev)
    torch.testing.assert_close(logits, want_logits, rtol=1e-12, atol=1e-12)
    assert len(states) == len(want_states) == (x.shape[1] if memory else 0)
    for got, want in zip(states, want_states, strict=True):
        for a, b in zip(got, want, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(final.reads, want_final[2], rtol=1e-12, atol=1e-12)
    for a, b in zip(final.controller, want_final[0], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_episode_is_the_model_call_and_keeps_no_states():
    model = _model("lrua")
    x, prev = _episode()
    logits, final = episode_loop.episode(model, x, prev, None)
    same, same_final = model(x, prev)
    torch.testing.assert_close(logits, same, rtol=0, atol=0)
    torch.testing.assert_close(final.reads, same_final.reads, rtol=0, atol=0)
    _, _, states = episode_loop.unroll(model, x, prev, None, keep_memory_states=False)
    assert states == []


def test_carried_state_continues_the_episode():
    """Two halves with the state carried equal the whole episode."""
    model = _model("lrua")
    x, prev = _episode(time=8)
    whole, _ = episode_loop.episode(model, x, prev, None)
    first, state = episode_loop.episode(model, x[:, :4], prev[:, :4], None)
    second, _ = episode_loop.episode(model, x[:, 4:], prev[:, 4:], state)
    torch.testing.assert_close(torch.cat([first, second], 1), whole, rtol=1e-12, atol=1e-12)
