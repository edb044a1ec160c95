"""NTM addressing (Graves et al. 2014 eqs. 5-9): content, interpolation, shift, sharpening.

The op-by-op form of one addressing for a stack of heads, used by
:class:`~mann_lightning.memory.ntm.NTMMemory` where its fused kernel
(:mod:`~mann_lightning.memory.fused_ntm`) does not run (GPU, autocast, no C++ compiler) and as
the reference the kernel is tested against.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .base import cosine_similarity

SHARPEN_EPS = 1e-6  # added to ``w~`` before ``log`` in eq. 9 so one-hot/zero weights stay finite


def address(
    memory: Tensor,
    prev_weights: Tensor,
    keys: Tensor,
    strengths: Tensor,
    gates: Tensor,
    shifts: Tensor,
    sharpening: Tensor,
) -> Tensor:
    """NTM addressing (eqs. 5-9) for a stack of heads, from raw interface outputs.

    Args:
        memory: ``M``, ``[batch, slots, word]``.
        prev_weights: ``w_{t-1}``, ``[batch, heads, slots]``.
        keys: raw ``k_t``, ``[batch, heads, word]``.
        strengths: raw ``beta_t``, ``[batch, heads]``.
        gates: raw ``g_t``, ``[batch, heads]``.
        shifts: raw ``s_t`` logits, ``[batch, heads, num_shifts]`` (``num_shifts`` odd).
        sharpening: raw ``gamma_t``, ``[batch, heads]``.

    Returns:
        ``w_t``, ``[batch, heads, slots]``; every row is a distribution.
    """
    beta = 1 + F.softplus(strengths).unsqueeze(-1)  # [B, H, 1]
    content = torch.softmax(beta * cosine_similarity(keys, memory), dim=-1)  # w^c, eqs. 5-6
    g = torch.sigmoid(gates).unsqueeze(-1)  # [B, H, 1]
    gated = g * content + (1 - g) * prev_weights  # w^g, eq. 7
    shift = shift_by_rolls if torch.compiler.is_compiling() else shift_by_gather
    shifted = shift(gated, torch.softmax(shifts, dim=-1))  # w~, eq. 8
    # Eq. 9, stably: w~^gamma / sum w~^gamma = softmax(gamma * log(w~ + eps)).
    gamma = 1 + F.softplus(sharpening).unsqueeze(-1)  # [B, H, 1]
    return torch.softmax(gamma * torch.log(shifted + SHARPEN_EPS), dim=-1)


def shift_by_gather(gated: Tensor, shift: Tensor) -> Tensor:
    """Eq. 8, ``w~(i) = sum_k s(k) w^g(i - k)`` (circular), with one gather of all offsets.

    Args:
        gated: ``w^g``, ``[batch, heads, slots]``.
        shift: ``s`` after its softmax, ``[batch, heads, num_shifts]``, offsets centred on 0.

    Returns:
        ``w~``, ``[batch, heads, slots]``.
    """
    num_slots, num_shifts = gated.shape[-1], shift.shape[-1]
    offsets = torch.arange(num_shifts, device=gated.device) - num_shifts // 2  # [S]
    index = (torch.arange(num_slots, device=gated.device) - offsets[:, None]) % num_slots
    flat = index.flatten().expand(*gated.shape[:-1], -1)  # gather/scatter: no host sync
    rolled = torch.gather(gated, -1, flat).unflatten(-1, index.shape)  # [B, H, S, N]
    return (shift.unsqueeze(-1) * rolled).sum(-2)


def shift_by_rolls(gated: Tensor, shift: Tensor) -> Tensor:
    """:func:`shift_by_gather` as one ``torch.roll`` per offset: what ``torch.compile`` sees.

    The compiler fuses the rolls (and their backward, rolls back) into index arithmetic,
    where the gather's backward stays a separate scatter-add per step.
    """
    half = shift.shape[-1] // 2
    shifted = shift[..., :1] * torch.roll(gated, -half, dims=-1)
    for k in range(1, shift.shape[-1]):
        shifted = shifted + shift[..., k : k + 1] * torch.roll(gated, k - half, dims=-1)
    return shifted
