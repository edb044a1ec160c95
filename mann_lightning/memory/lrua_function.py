"""The differentiable core of one LRUA step as a single autograd node.

Autograd would record some twenty small nodes per step for eqs. 2-4, 7 and 8; on tensors of
this size (``[16, 128, 40]``) the per-node bookkeeping, not the arithmetic, dominates a
training step. :class:`LRUAStepFunction` computes the same forward and a hand-derived
backward in a few batched ops. ``tests/memory/test_lrua.py`` checks both against a float64
reference loop and with ``torch.autograd.gradcheck``. Double backward is not supported.

Forward, per batch element (``H`` heads, ``N`` slots, ``W`` features)::

    w^w   = w^lu + g (w^r_{t-1} - w^lu)           eq. 7, g = sigmoid(alpha)      [H, N]
    M'    = M_{t-1} with the least-used slot of t-1 zeroed                   [N, W]
    M_t   = M' + (w^w)^T k                         eq. 8                          [N, W]
    K     = (k M_t^T) / (|k| |M_t|^T + eps)        eq. 2                          [H, N]
    w^r_t = softmax(K)                             eq. 3                          [H, N]
    r_t   = w^r_t M_t                              eq. 4                          [H, W]
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .base import autocast_off
from .first_order import first_order_only


class LRUAStepFunction(torch.autograd.Function):
    """``(keys, gate, memory, read_weights, least_used, erase, eps) -> (reads, memory,
    read_weights, write_weights)``; gradients flow to keys, gate, memory and read_weights.

    Shapes: keys ``[B, H, W]``, gate ``[B, H, 1]`` (after the sigmoid), memory ``[B, N, W]``,
    read_weights ``[B, H, N]`` (``w^r_{t-1}``), least_used ``[B, 1, N]``, erase ``[B, 1, W]``
    (int64: the index of the slot to zero, repeated along W). Floating inputs share one dtype.
    """

    @staticmethod
    def forward(
        ctx: Any,
        keys: Tensor,
        gate: Tensor,
        memory: Tensor,
        read_weights: Tensor,
        least_used: Tensor,
        erase: Tensor,
        eps: float,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        delta = read_weights - least_used
        write_weights = torch.addcmul(least_used, gate, delta)
        # M_t = M_{t-1} + (w^w)^T k, then take back the erased row's old content.
        new_memory = torch.baddbmm(memory, write_weights.transpose(1, 2), keys)
        new_memory.scatter_add_(1, erase, -memory.gather(1, erase))
        dots = torch.bmm(keys, new_memory.transpose(1, 2))
        key_norm = torch.linalg.vector_norm(keys, dim=-1, keepdim=True)  # [B, H, 1]
        memory_norm = torch.linalg.vector_norm(new_memory, dim=-1).unsqueeze(1)  # [B, 1, N]
        denominator = key_norm * memory_norm + eps
        similarity = dots / denominator
        new_read_weights = torch.softmax(similarity, dim=-1)
        reads = torch.bmm(new_read_weights, new_memory)
        ctx.save_for_backward(
            keys, gate, delta, erase, write_weights, new_memory, key_norm, memory_norm,
            denominator, similarity, new_read_weights,
        )  # fmt: skip
        return reads, new_memory, new_read_weights, write_weights

    @staticmethod
    @first_order_only("the LRUA step")
    def backward(
        ctx: Any, g_reads: Tensor, g_memory: Tensor, g_read_weights: Tensor, g_write: Tensor
    ) -> tuple[Tensor | None, ...]:
        with torch.autocast(g_reads.device.type, enabled=False):
            return _backward(ctx.saved_tensors, g_reads, g_memory, g_read_weights, g_write)


def _backward(
    saved: tuple[Tensor, ...],
    g_reads: Tensor,
    g_memory: Tensor,
    g_read_weights: Tensor,
    g_write: Tensor,
) -> tuple[Tensor | None, ...]:
    """Gradients of :class:`LRUAStepFunction`, equation by equation in reverse order."""
    (keys, gate, delta, erase, write_weights, memory, key_norm, memory_norm,
     denominator, similarity, read_weights) = saved  # fmt: skip
    # eq. 4 (r = w^r M) into w^r; eqs. 3 and 2 (softmax of dots / (|k||M| + eps)).
    g_read_weights = torch.baddbmm(g_read_weights, g_reads, memory.transpose(1, 2))
    g_sim = read_weights * (g_read_weights - (read_weights * g_read_weights).sum(-1, keepdim=True))
    g_dots = g_sim / denominator
    g_den = -(g_dots * similarity)  # dK/d(den) = -K / den
    tiny = torch.finfo(keys.dtype).tiny
    g_key_norm = (g_den * memory_norm).sum(-1, keepdim=True)  # [B, H, 1]
    g_memory_norm = (g_den * key_norm).sum(1).unsqueeze(-1)  # [B, N, 1]
    g_keys = torch.bmm(g_dots, memory).addcmul_(keys, g_key_norm / key_norm.clamp_min(tiny))
    # Into M_t: eq. 4 and the dots of eq. 2 in one product, then the norms of eq. 2.
    g_memory = torch.baddbmm(
        g_memory,
        torch.cat([read_weights, g_dots], 1).transpose(1, 2),
        torch.cat([g_reads, keys], 1),
    )
    g_memory.addcmul_(memory, g_memory_norm / memory_norm.transpose(1, 2).clamp_min(tiny))
    # eq. 8: M_t = M' + (w^w)^T k, where M' is M_{t-1} with the erased row zeroed.
    g_write = torch.baddbmm(g_write, keys, g_memory.transpose(1, 2))
    g_keys = torch.baddbmm(g_keys, write_weights, g_memory)
    g_memory.scatter_(1, erase, 0.0)
    # eq. 7: w^w = w^lu + g (w^r_{t-1} - w^lu).
    g_gate = (g_write * delta).sum(-1, keepdim=True)
    return g_keys, g_gate, g_memory, g_write * gate, None, None, None


def lrua_function_step(
    keys: Tensor,
    alpha: Tensor,
    memory: Tensor,
    read_weights: Tensor,
    least_used: Tensor,
    erase: Tensor,
    eps: float,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Eqs. 7, 8, 2-4 through :class:`LRUAStepFunction` (any device, dtype, autocast).

    Args:
        keys: ``k_t``, ``[B, H, W]`` (may be bf16 under autocast).
        alpha: Pre-sigmoid write gates, ``[B, H]``.
        memory: ``M_{t-1}``, ``[B, N, W]``.
        read_weights: ``w^r_{t-1}``, ``[B, H, N]``.
        least_used: ``w^lu_{t-1}``, ``[B, N]``.
        erase: Index of the slot to zero before the write, ``[B]`` (int64).
        eps: Stabiliser of eq. 2.

    Returns:
        ``(r_t [B, H, W], M_t, w^r_t, w^w_t)`` in the state's precision.
    """
    # The memory math runs in the state's precision even under autocast (a bf16 memory
    # would lose the small additions of eq. 8); keys may arrive in bf16.
    dtype = torch.promote_types(keys.dtype, memory.dtype)
    gate = torch.sigmoid(alpha.to(dtype)).unsqueeze(-1)
    with autocast_off(keys.device.type):
        return LRUAStepFunction.apply(
            keys.to(dtype),
            gate,
            memory.to(dtype),
            read_weights.to(dtype),
            least_used.to(dtype).unsqueeze(1),
            erase.view(-1, 1, 1).expand(-1, 1, memory.shape[-1]),
            eps,
        )
