"""Two memories run over the same episode must agree: reads, final state and gradients."""

from __future__ import annotations

import torch


def assert_same_episode(
    fused: torch.nn.Module, plain: torch.nn.Module, dtype: torch.dtype, tol: float
) -> None:
    """Six steps of both memories from their initial state on the same controller outputs
    (``[3, 6, 12]``); ``plain`` takes ``fused``'s weights. Reads, the final state and the
    gradients into the controller outputs and the interface layer agree to ``tol``."""
    plain.load_state_dict(fused.state_dict())
    hidden = torch.randn(3, 6, 12, dtype=dtype, requires_grad=True)
    results = []
    for memory in (fused, plain):
        state = memory.initial_state(3, dtype=dtype)
        reads = []
        for t in range(6):
            r, state = memory(hidden[:, t], state)
            reads.append(r)
        loss = torch.stack(reads).square().sum() + state.memory.sum() + state.read_weights.sum()
        grads = torch.autograd.grad(loss, [hidden, *memory.parameters()])
        results.append((torch.stack(reads), state, grads))
    (reads_a, state_a, grads_a), (reads_b, state_b, grads_b) = results
    torch.testing.assert_close(reads_a, reads_b, rtol=tol, atol=tol)
    for a, b in zip(state_a, state_b, strict=True):
        torch.testing.assert_close(a, b, rtol=tol, atol=tol)
    for a, b in zip(grads_a, grads_b, strict=True):
        torch.testing.assert_close(a, b, rtol=tol, atol=tol)
    assert all(torch.isfinite(g).all() for g in grads_a)
