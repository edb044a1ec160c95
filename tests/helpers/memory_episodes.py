"""Two memories run over the same episode must agree: reads, final state and gradients."""

from __future__ import annotations

import torch
from torch import Tensor


def matching_slots(memory_a: Tensor, usage_a: Tensor, memory_b: Tensor, usage_b: Tensor) -> Tensor:
    """``[batch, slots]``: for each slot of ``a``, the slot of ``b`` holding the same row and
    usage, each ``b`` slot used once; equal slots are paired in index order (as eq. 6 breaks
    ties). A permutation only when the two states are one up to relabelled slots."""
    a = torch.cat([memory_a, usage_a.unsqueeze(-1)], -1)
    b = torch.cat([memory_b, usage_b.unsqueeze(-1)], -1)
    distance = torch.cdist(a, b)  # [B, N, N]
    order = torch.empty(distance.shape[:2], dtype=torch.long)
    for row in range(distance.shape[0]):
        free = torch.ones(distance.shape[2], dtype=torch.bool)
        for slot in range(distance.shape[1]):
            choice = int(torch.where(free, distance[row, slot], torch.inf).argmin())
            order[row, slot], free[choice] = choice, False
    return order


def assert_same_episode(
    fused: torch.nn.Module,
    plain: torch.nn.Module,
    dtype: torch.dtype,
    tol: float,
    slots_may_permute: bool = False,
) -> None:
    """Six steps of both memories from their initial state on the same controller outputs
    (``[3, 6, 12]``); ``plain`` takes ``fused``'s weights. Reads, the final state and the
    gradients into the controller outputs and the interface layer agree to ``tol``.

    ``slots_may_permute`` (LRUA off its kernel): the state agrees up to relabelled slots. From
    the empty memory the first write puts equal rows into the least-used slots; the op-by-op
    step's batched products round them differently by position (by how much depends on the
    CPU's BLAS: it held on AVX2 machines, not on an AVX-512 one), so eq. 6 can mark other
    slots among equals (``least_used_weights``). Reads, losses and gradients still agree.
    """
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
    if slots_may_permute:
        order = matching_slots(state_a.memory, state_a.usage, state_b.memory, state_b.usage)
        assert all(row.sort().values.equal(torch.arange(row.numel())) for row in order)
        slots = state_b.memory.shape[1]
        permuted = []
        for field in state_b:
            if field.dim() == 3 and field.shape[1] == slots:  # M_t: [B, N, W]
                field = field.gather(1, order.unsqueeze(-1).expand_as(field))
            elif field.shape[-1] == slots:  # [B, N] and [B, H, N]
                field = field.gather(
                    -1,
                    order.view(*order.shape[:1], *[1] * (field.dim() - 2), slots).expand_as(field),
                )
            permuted.append(field)
        state_b = type(state_b)(*permuted)
    for a, b in zip(state_a, state_b, strict=True):
        torch.testing.assert_close(a, b, rtol=tol, atol=tol)
    for a, b in zip(grads_a, grads_b, strict=True):
        torch.testing.assert_close(a, b, rtol=tol, atol=tol)
    assert all(torch.isfinite(g).all() for g in grads_a)
