"""The state an LRUA step takes and returns (Santoro et al. 2016, eqs. 2-8), and its start.

:class:`~mann_lightning.memory.lrua.LRUAMemory` passes a :class:`LRUAState` in and returns
the next one (``step(x, prev_state) -> (r_t, state_t)``); it holds no state itself.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor


class LRUAState(NamedTuple):
    """LRUA memory state after a step.

    Attributes:
        memory: ``M_t``, ``[batch, slots, word]``.
        usage: ``w^u_t``, ``[batch, slots]`` (eq. 5); no gradient.
        read_weights: ``w^r_t``, ``[batch, heads, slots]`` (eq. 3).
        least_used: ``w^lu_t``, ``[batch, slots]``, 1.0 on the ``num_reads`` slots of
            smallest usage, 0.0 elsewhere (eq. 6); no gradient.
        write_weights: ``w^w_t``, ``[batch, heads, slots]`` (eq. 7); kept for analysis
            (the next step does not read it).
    """

    memory: Tensor
    usage: Tensor
    read_weights: Tensor
    least_used: Tensor
    write_weights: Tensor


def initial_lrua_state(
    batch_size: int,
    memory_size: int,
    word_size: int,
    num_reads: int,
    device: torch.device,
    dtype: torch.dtype,
) -> LRUAState:
    """Zero memory, zero usage and reads; ``w^lu_0`` marks slots ``0..num_reads-1``.

    Slots ``0..n-1`` are what eq. 6 selects on an all-zero usage with ties broken towards
    the lower index, the rule every later step follows too.

    Args:
        batch_size: ``B``.
        memory_size: Slots ``N``.
        word_size: Slot width ``W``.
        num_reads: Heads ``H`` (also the ``n`` least-used slots of eq. 6).
        device: Where the tensors live.
        dtype: Their floating dtype.

    Returns:
        ``M_0 [B, N, W]``, ``w^u_0 [B, N]``, ``w^r_0 [B, H, N]``, ``w^lu_0 [B, N]`` and
        ``w^w_0 [B, H, N]`` (the same zero tensor as ``w^r_0``).
    """
    n, h = memory_size, num_reads
    least_used = torch.zeros(batch_size, n, device=device, dtype=dtype)
    least_used[:, :h] = 1.0
    weights = torch.zeros(batch_size, h, n, device=device, dtype=dtype)
    return LRUAState(
        memory=torch.zeros(batch_size, n, word_size, device=device, dtype=dtype),
        usage=torch.zeros(batch_size, n, device=device, dtype=dtype),
        read_weights=weights,
        least_used=least_used,
        write_weights=weights,
    )
