"""The differentiable core of one sparse LRUA step (top-k reads, sparse writes) as one node.

Per batch element, with ``H`` heads, ``k`` slots per head, ``N`` slots and ``W`` features,
the step of :class:`~mann_lightning.memory.sparse_lrua.SparseLRUAMemory` is::

    w^w   = g w^r_{t-1} + (1 - g) w^lu_{t-1}    eq. 7 on H*k + H slots     [H, k+H] sparse
    M_t   = M_{t-1}, least-used slot zeroed, + (w^w)^T k                  eq. 8, in place
    K     = (k M_t^T) / (|k| |M_t|^T + eps)    eq. 2 (no gradient: only picks the top k)
    w^r_t = softmax of K over each head's k most similar slots, 0 elsewhere  eq. 3 [H, k]
    r_t   = w^r_t M_t                          eq. 4 on the k read rows       [H, W]

``M_t`` is updated **in place** (``ctx.mark_dirty``) and only the ``k`` rows each head reads
are saved for backward, so no step keeps a copy of the memory. The backward pass carries
``dL/dM_t`` as one ``[B, N, W]`` tensor from step to step and touches only the rows a step
read, wrote or erased; it is allocated once per backward pass (tagged with :data:`OWNED`),
and a gradient arriving from elsewhere is cloned once. Double backward is not supported.

Slots ``>= frontier[b]`` are known to be all-zero with zero usage; their similarity is exactly
0, so with ties going to the lowest index the top ``k`` of all ``N`` slots lie in the first
``frontier + k`` slots. With ``windowed`` only those are scanned, which needs the window's
size on the host; without it all ``N`` are, and the step reads nothing on the host (the
GPU path).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .first_order import first_order_only

#: Attribute set on gradient tensors this module allocated (safe to update in place).
OWNED = "_sparse_lrua_owned"


def select(values: Tensor, count: int, largest: bool, fast: bool = True) -> Tensor:
    """Indices of the ``count`` largest (or smallest) entries of the last axis, ties going to
    the lowest index, in increasing index order. ``torch.topk`` leaves ties unspecified.

    Fast path (``fast``): one ``topk`` of ``count + 1``; its first ``count`` are the answer
    unless the ``count``-th and next values tie (a host read). Otherwise, or without ``fast``,
    an exact rule of a few passes that never reads a value on the host.

    Ties are ties of the computed values. Eq. 2's dots come from a batched product whose
    rounding can depend on a row's position and on the window's width, so rows equal in exact
    arithmetic (the ``H`` least-used slots after a first write into the empty memory) can get
    similarities one unit in the last place apart, and a higher one of them is read. Which of
    several equal rows a head reads can then differ between ``scan="window"`` and ``"full"``
    (so between CPU and GPU), and the episode from there (a 2026-12-02 audit: word sizes 5-10,
    3-8 of 8 twenty-step episodes; none seen at the paper's 40). An exact rule would need
    eq. 2 as a sum per row, 3-25x slower than the product here.

    Args:
        values: ``[..., L]`` with ``L >= count`` (any strides).
        count: How many to pick.
        largest: Largest (top-k similarity) or smallest (least-used usage) values.
        fast: Allow the fast path's host read.

    Returns:
        ``[..., count]`` int64 indices.
    """
    length = values.shape[-1]
    if count == length:
        return torch.arange(length, device=values.device).expand(values.shape).clone()
    top = values.topk(count + 1, dim=-1, largest=largest)
    if fast and not bool((top.values[..., count - 1] == top.values[..., count]).any()):
        return top.indices[..., :count].sort(dim=-1).values
    kth = top.values[..., count - 1 : count]
    better = values > kth if largest else values < kth
    tie = values == kth
    room = count - better.sum(-1, keepdim=True)
    chosen = better | (tie & (tie.cumsum(-1) <= room))  # exactly `count` per row
    slot = torch.where(chosen, chosen.cumsum(-1) - 1, count)  # rank among chosen, else spare
    positions = torch.arange(length, device=values.device).expand(values.shape)
    out = values.new_zeros((*values.shape[:-1], count + 1), dtype=torch.long)
    return out.scatter_(-1, slot, positions)[..., :count]


def _offsets(batch: int, slots: int, device: torch.device) -> Tensor:
    return (torch.arange(batch, device=device) * slots).view(batch, 1, 1)


class SparseLRUAStepFunction(torch.autograd.Function):
    """``(keys, gate, memory, prev_values, prev_index, least_used, frontier, eps, windowed)
    -> (reads, memory, read_values, write_values, read_index, write_index, frontier)``.

    Shapes: keys ``[B, H, W]``, gate ``[B, H, 1]`` (after the sigmoid), memory ``[B, N, W]``
    (contiguous, updated in place), prev_values / prev_index ``[B, H, k]`` (``w^r_{t-1}``),
    least_used ``[B, H]`` int64 (``w^lu_{t-1}``, column 0 = the slot to erase), frontier
    ``[B]`` int64. Gradients flow to keys, gate, memory and prev_values.
    """

    @staticmethod
    def forward(
        ctx: Any,
        keys: Tensor,
        gate: Tensor,
        memory: Tensor,
        prev_values: Tensor,
        prev_index: Tensor,
        least_used: Tensor,
        frontier: Tensor,
        eps: float,
        windowed: bool,
    ) -> tuple[Tensor, ...]:
        batch, slots, width = memory.shape
        heads, k = prev_index.shape[1:]
        offsets = _offsets(batch, slots, memory.device)
        flat = memory.view(batch * slots, width)
        # eq. 7: each head writes g w^r_{t-1} on its k read slots, (1 - g) on the H least used.
        write_index = torch.cat([prev_index, least_used.unsqueeze(1).expand(-1, heads, -1)], -1)
        write_values = torch.cat([gate * prev_values, (1 - gate).expand(-1, -1, heads)], -1)
        # eq. 8: zero the least-used slot of t-1, then add the keys.
        erase = least_used[:, 0] + offsets.view(batch)
        write_flat = (write_index + offsets).flatten()
        flat.index_fill_(0, erase, 0.0)
        flat.index_add_(
            0, write_flat, (write_values.unsqueeze(-1) * keys.unsqueeze(2)).flatten(0, 2)
        )
        frontier = torch.maximum(frontier, write_index.flatten(1).amax(-1) + 1)
        # eq. 2 on the slots that can be among the top k, then eqs. 3-4 on the chosen rows.
        window = memory
        if windowed and batch:  # (an empty batch has no frontier)
            window = memory[:, : min(slots, int(frontier.max()) + k)]
        key_norm = torch.linalg.vector_norm(keys, dim=-1, keepdim=True)  # [B, H, 1]
        window_norm = torch.linalg.vector_norm(window, dim=-1).unsqueeze(-1)  # [B, L, 1]
        # [B, L, H] layout: the product reads the window once, row by row.
        # (+ eps as a Python number: a tensor made from it would be a host copy on a GPU)
        scale = (window_norm * key_norm.transpose(1, 2)).add_(eps)
        similarity = torch.bmm(window, keys.transpose(1, 2)).div_(scale).transpose(1, 2)
        read_index = select(similarity, k, largest=True, fast=windowed)  # [B, H, k]
        similarity = similarity.gather(-1, read_index)
        denominator = scale.transpose(1, 2).gather(-1, read_index)
        row_norm = window_norm.transpose(1, 2).expand(-1, heads, -1).gather(-1, read_index)
        read_flat = (read_index + offsets).flatten()
        rows = flat.index_select(0, read_flat).view(batch, heads, k, width)
        read_values = torch.softmax(similarity, dim=-1)
        reads = torch.matmul(read_values.unsqueeze(2), rows).squeeze(2)
        frontier = torch.maximum(frontier, read_index.flatten(1).amax(-1) + 1)
        ctx.save_for_backward(
            keys, gate, prev_values, write_values, write_flat, erase, read_flat, rows,
            key_norm, row_norm, denominator, similarity, read_values,
        )  # fmt: skip
        ctx.memory_shape = memory.shape
        ctx.mark_dirty(memory)
        ctx.mark_non_differentiable(read_index, write_index, frontier)
        ctx.set_materialize_grads(False)
        return reads, memory, read_values, write_values, read_index, write_index, frontier

    @staticmethod
    @first_order_only("the sparse LRUA step")
    def backward(
        ctx: Any, g_reads: Tensor | None, g_memory: Tensor | None, g_read_values: Tensor | None,
        g_write_values: Tensor | None, *_: Any,
    ) -> tuple[Tensor | None, ...]:  # fmt: skip
        with torch.autocast(ctx.saved_tensors[0].device.type, enabled=False):
            return _backward(ctx, g_reads, g_memory, g_read_values, g_write_values)


def _backward(
    ctx: Any,
    g_reads: Tensor | None,
    g_memory: Tensor | None,
    g_read_values: Tensor | None,
    g_write_values: Tensor | None,
) -> tuple[Tensor | None, ...]:
    """Gradients of :class:`SparseLRUAStepFunction`, equation by equation in reverse order."""
    (keys, gate, prev_values, write_values, write_flat, erase, read_flat, rows,
     key_norm, row_norm, denominator, similarity, read_values) = ctx.saved_tensors  # fmt: skip
    batch, heads, k, width = rows.shape
    if g_memory is None:
        g_memory = keys.new_zeros(ctx.memory_shape)
    elif not getattr(g_memory, OWNED, False):
        g_memory = g_memory.clone(memory_format=torch.contiguous_format)
    g_flat = g_memory.view(-1, width)
    g_keys = torch.zeros_like(keys)
    if g_reads is not None or g_read_values is not None:
        # eq. 4 (r = w^r rows) into w^r; eqs. 3 and 2 on the k chosen rows.
        g_weights = torch.zeros_like(read_values) if g_read_values is None else g_read_values
        if g_reads is not None:
            g_weights = g_weights + torch.matmul(rows, g_reads.unsqueeze(-1)).squeeze(-1)
        g_sim = read_values * (g_weights - (read_values * g_weights).sum(-1, keepdim=True))
        g_dots = g_sim / denominator
        g_den = -(g_dots * similarity)
        tiny = torch.finfo(keys.dtype).tiny
        g_key_norm = (g_den * row_norm).sum(-1, keepdim=True)
        g_keys = torch.matmul(g_dots.unsqueeze(2), rows).squeeze(2)
        g_keys.addcmul_(keys, g_key_norm / key_norm.clamp_min(tiny))
        g_rows = g_dots.unsqueeze(-1) * keys.unsqueeze(2)
        g_rows.addcmul_(rows, (g_den * key_norm / row_norm.clamp_min(tiny)).unsqueeze(-1))
        if g_reads is not None:
            g_rows.addcmul_(read_values.unsqueeze(-1), g_reads.unsqueeze(2))
        g_flat.index_add_(0, read_flat, g_rows.flatten(0, 2))
    # eq. 8: M_t = M' + (w^w)^T k, where M' is M_{t-1} with the erased row zeroed.
    g_vectors = g_flat.index_select(0, write_flat).view(batch, heads, -1, width)
    g_write = (g_vectors * keys.unsqueeze(2)).sum(-1)
    if g_write_values is not None:
        g_write = g_write + g_write_values
    g_keys += (write_values.unsqueeze(-1) * g_vectors).sum(2)
    g_flat.index_fill_(0, erase, 0.0)
    setattr(g_memory, OWNED, True)
    # eq. 7: w^w = [g w^r_{t-1}, 1 - g].
    g_gate = (g_write[..., :k] * prev_values).sum(-1, keepdim=True)
    g_gate -= g_write[..., k:].sum(-1, keepdim=True)
    return g_keys, g_gate, g_memory, g_write[..., :k] * gate, None, None, None, None, None
