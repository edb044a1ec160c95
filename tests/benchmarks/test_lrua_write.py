"""The benchmarks' straightforward LRUA is the library's LRUA, written the obvious way."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from mann_lightning.memory import LRUAMemory

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from straightforward_lrua import StraightforwardLRUA  # noqa: E402


def test_straightforward_lrua_is_the_same_function_as_the_library_steps() -> None:
    """Float64, random state and inputs, several steps, gradients too: the straightforward
    step (matmul write) against the compile form (fused write) and the hand-written node."""
    torch.manual_seed(0)
    library, straight = LRUAMemory(12, 5, 3).double(), StraightforwardLRUA(12, 5, 3).double()
    straight.load_state_dict(library.state_dict())
    keys = torch.randn(4, 6, 3, 5, dtype=torch.float64, requires_grad=True)
    alpha = torch.randn(4, 6, 3, dtype=torch.float64, requires_grad=True)
    start = torch.randn(4, 12, 5, dtype=torch.float64)
    results = []
    for step in (straight.step, library.plain_step, library.step):
        state = library.initial_state(4, dtype=torch.float64)._replace(memory=start)
        reads = []
        for t in range(6):
            r, state = step(keys[:, t], alpha[:, t], state)
            reads.append(r)
        out = torch.stack(reads).square().sum() + state.memory.sum()
        results.append((out, *torch.autograd.grad(out, (keys, alpha))))
    for other in results[1:]:
        for a, b in zip(results[0], other, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
