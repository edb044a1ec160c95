"""Tests for the memories' shared checks (mann_lightning/memory/base.py)."""

from __future__ import annotations

import pytest
import torch

from mann_lightning.memory import LRUAMemory, SparseLRUAMemory
from mann_lightning.memory.base import check_step_inputs, cosine_similarity

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
    with pytest.raises(ValueError, match=r"alpha \[batch, heads\].*alpha \[2\]"):
        memory.step(keys, torch.zeros(2), state)
    with pytest.raises(ValueError, match=r"keys \[2, 10\]"):
        memory.step(keys.flatten(1), torch.zeros(2, 2), state)


def test_check_step_inputs_word_and_batch_must_match():
    keys, alpha = torch.zeros(3, 2, 5), torch.zeros(3, 2)
    check_step_inputs("M", keys, alpha, torch.zeros(3, 8, 5))
    for memory in (torch.zeros(3, 8, 4), torch.zeros(2, 8, 5), torch.zeros(8, 5)):
        with pytest.raises(ValueError, match=r"^M\.step: expected"):
            check_step_inputs("M", keys, alpha, memory)


def test_cosine_similarity_of_zero_memory_is_zero_and_finite():
    keys = torch.randn(2, 3, 4, requires_grad=True)
    memory = torch.zeros(2, 5, 4, requires_grad=True)
    similarity = cosine_similarity(keys, memory)
    assert torch.equal(similarity, torch.zeros(2, 3, 5))
    similarity.sum().backward()
    assert torch.isfinite(keys.grad).all() and torch.isfinite(memory.grad).all()
