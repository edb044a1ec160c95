"""Tests for the memories' shared checks (mann_lightning/memory/base.py)."""

from __future__ import annotations

import pytest
import torch

from mann_lightning.memory import LRUAMemory, NTMMemory, SparseLRUAMemory
from mann_lightning.memory.base import check_step_shapes, cosine_similarity

MEMORIES = [
    lambda: LRUAMemory(8, 5, 2, fused_kernel=True),
    lambda: LRUAMemory(8, 5, 2, fused_kernel=False),
    lambda: SparseLRUAMemory(8, 5, 2, k=8),
]


@pytest.mark.parametrize("make", MEMORIES)
def test_alpha_without_heads_is_refused(make):
    """With as many heads as batch elements an ``alpha`` of ``[batch]`` would broadcast to
    one gate per head instead of one per element: refused, with the shapes named."""
    memory = make()
    state = memory.initial_state(2)
    keys = torch.tanh(torch.randn(2, 2, 5))
    reads, _ = memory.step(keys, torch.zeros(2, 2), state)
    assert reads.shape == (2, 2, 5)
    with pytest.raises(ValueError, match=r"alpha \[2\], expected \[2, 2\]"):
        memory.step(keys, torch.zeros(2), state)
    with pytest.raises(ValueError, match=r"keys \[2, 10\], expected \[2, 2, 5\]"):
        memory.step(keys.flatten(1), torch.zeros(2, 2), state)


@pytest.mark.parametrize("fused", [True, False])
def test_lrua_state_of_another_memory_is_refused(fused):
    """A state of a 16-slot memory, or a usage of batch 1, used to run (16 slots) or
    broadcast off the kernel."""
    memory = LRUAMemory(8, 5, 2, fused_kernel=fused)
    keys, alpha = torch.tanh(torch.randn(2, 2, 5)), torch.zeros(2, 2)
    bigger = LRUAMemory(16, 5, 2).initial_state(2)
    with pytest.raises(ValueError, match=r"memory \[2, 16, 5\], expected \[2, 8, 5\]"):
        memory.step(keys, alpha, bigger)
    state = memory.initial_state(2)
    with pytest.raises(ValueError, match=r"usage \[1, 8\], expected \[2, 8\]"):
        memory.step(keys, alpha, state._replace(usage=state.usage[:1]))


@pytest.mark.parametrize("fused", [True, False])
def test_ntm_step_checks_every_parameter(fused):
    memory = NTMMemory(8, 4, 1, fused_kernel=fused)
    memory.build(6)
    state = memory.initial_state(2)
    params = memory.split_interface(torch.randn(2, memory.interface_size))
    reads, _ = memory.step(params, state)
    assert reads.shape == (2, 1, 4)
    with pytest.raises(ValueError, match=r"gates \[2, 1\], expected \[2, 2\]"):
        memory.step(params._replace(gates=params.gates[:, :1]), state)
    with pytest.raises(ValueError, match=r"add \[1, 1, 4\], expected \[2, 1, 4\]"):
        memory.step(params._replace(add=params.add[:1]), state)
    other = NTMMemory(8, 4, 2).initial_state(2)
    with pytest.raises(ValueError, match=r"read_weights \[2, 2, 8\], expected \[2, 1, 8\]"):
        memory.step(params, other)


def test_check_step_shapes_names_every_wrong_argument():
    a, b = torch.zeros(3, 2), torch.zeros(4)
    check_step_shapes("M", {"a": (a, (3, 2))})
    with pytest.raises(ValueError, match=r"^M\.step: a \[3, 2\], expected \[3, 3\]; b \[4\]"):
        check_step_shapes("M", {"a": (a, (3, 3)), "b": (b, (5,))})


def test_cosine_similarity_of_zero_memory_is_zero_and_finite():
    keys = torch.randn(2, 3, 4, requires_grad=True)
    memory = torch.zeros(2, 5, 4, requires_grad=True)
    similarity = cosine_similarity(keys, memory)
    assert torch.equal(similarity, torch.zeros(2, 3, 5))
    similarity.sum().backward()
    assert torch.isfinite(keys.grad).all() and torch.isfinite(memory.grad).all()
