"""``benchmarks/lrua_write.py`` compares the fused LRUA write with the same function as a matmul."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from mann_lightning.memory import LRUAMemory

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from lrua_write import MatmulWriteLRUA  # noqa: E402


def test_matmul_write_is_the_same_function_as_the_fused_write() -> None:
    """Float64, random state and inputs, several steps, gradients too."""
    torch.manual_seed(0)
    fused, matmul = LRUAMemory(12, 5, 3).double(), MatmulWriteLRUA(12, 5, 3).double()
    matmul.load_state_dict(fused.state_dict())
    keys = torch.randn(4, 6, 3, 5, dtype=torch.float64, requires_grad=True)
    alpha = torch.randn(4, 6, 3, dtype=torch.float64, requires_grad=True)
    start = torch.randn(4, 12, 5, dtype=torch.float64)
    results = []
    for memory in (fused, matmul):
        state = memory.initial_state(4, dtype=torch.float64)._replace(memory=start)
        reads = []
        for t in range(6):
            r, state = memory.plain_step(keys[:, t], alpha[:, t], state)
            reads.append(r)
        out = torch.stack(reads).square().sum() + state.memory.sum()
        results.append((out, *torch.autograd.grad(out, (keys, alpha))))
    for a, b in zip(*results, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
