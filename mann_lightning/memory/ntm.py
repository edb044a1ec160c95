"""Neural Turing Machine memory (Graves et al. 2014), the NTM baseline of Santoro et al. Table 2.

Each head addresses the memory by content (NTM eqs. 5-6), interpolates with its previous
weighting (eq. 7), shifts it by circular convolution (eq. 8) and sharpens it (eq. 9).
Write heads then erase and add (eqs. 3-4) and read heads read (eq. 2). One step, in order:

1. the write heads address against ``M_{t-1}`` and write it into ``M_t``;
2. the read heads address against ``M_t`` and read from it.

All heads of a kind go through :func:`address` together on a head axis, vectorised over
batch, heads and slots, with no host synchronisation.

Activations of the raw interface outputs: keys ``k`` linear (cosine similarity is
scale-invariant), strength ``beta = 1 + softplus`` (``>= 1``), gate ``g = sigmoid``, shift
``s = softmax`` over ``num_shifts`` offsets centred on 0, sharpening
``gamma = 1 + softplus`` (``>= 1``), erase ``e = sigmoid``, add ``a = tanh``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from .base import Memory, cosine_similarity, resolve_device_dtype

_SHARPEN_EPS = 1e-6  # added to ``w~`` before ``log`` in eq. 9 so one-hot/zero weights stay finite


class NTMState(NamedTuple):
    """Recurrent NTM state after step ``t``.

    Attributes:
        memory: ``M_t``, ``[batch, memory_size, word_size]``.
        read_weights: ``w^r_t``, ``[batch, num_reads, memory_size]``, each row sums to 1.
        write_weights: ``w^w_t``, ``[batch, num_writes, memory_size]``, each row sums to 1.
    """

    memory: Tensor
    read_weights: Tensor
    write_weights: Tensor


class NTMParams(NamedTuple):
    """Raw (pre-activation) interface outputs for one step; heads are write heads first.

    ``heads = num_writes + num_reads``; ``[:, :num_writes]`` are the write heads.

    Attributes:
        keys: raw ``k_t``, ``[batch, heads, word_size]`` (used as is).
        strengths: raw ``beta_t``, ``[batch, heads]``.
        gates: raw ``g_t``, ``[batch, heads]``.
        shifts: raw ``s_t`` logits, ``[batch, heads, num_shifts]``, offsets
            ``-(num_shifts // 2) .. num_shifts // 2``.
        sharpening: raw ``gamma_t``, ``[batch, heads]``.
        erase: raw ``e_t``, ``[batch, num_writes, word_size]``.
        add: raw ``a_t``, ``[batch, num_writes, word_size]``.
    """

    keys: Tensor
    strengths: Tensor
    gates: Tensor
    shifts: Tensor
    sharpening: Tensor
    erase: Tensor
    add: Tensor


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
    return torch.softmax(gamma * torch.log(shifted + _SHARPEN_EPS), dim=-1)


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


class NTMMemory(Memory):
    """NTM memory with content + location addressing and erase/add writes.

    Args:
        memory_size: Number of slots ``N``.
        word_size: Width ``W`` of each slot.
        num_reads: Number of read heads ``H``.
        num_writes: Number of write heads.
        num_shifts: Number of shift offsets, odd, centred on 0, at most ``memory_size``.
        input_size: Controller output size; usually filled in later by :meth:`build`.

    Raises:
        ValueError: on a non-positive size or an even / too large ``num_shifts``.
    """

    def __init__(
        self,
        memory_size: int = 128,
        word_size: int = 40,
        num_reads: int = 4,
        num_writes: int = 1,
        num_shifts: int = 3,
        input_size: int | None = None,
    ) -> None:
        super().__init__(memory_size, word_size, num_reads, input_size=None)
        for name, value in (("num_writes", num_writes), ("num_shifts", num_shifts)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"NTMMemory: {name} must be a positive integer, got {value!r}.")
        if num_shifts % 2 == 0 or num_shifts > memory_size:
            raise ValueError(
                f"NTMMemory: num_shifts must be odd (offsets centred on 0) and at most "
                f"memory_size={memory_size}, got {num_shifts}."
            )
        self.num_writes = num_writes
        self.num_shifts = num_shifts
        if input_size is not None:
            self.build(input_size)

    @property
    def interface_size(self) -> int:
        """Per head ``W + 3 + num_shifts`` (k, beta, g, gamma, s); per write head ``2W`` more."""
        heads = self.num_reads + self.num_writes
        per_head = self.word_size + 3 + self.num_shifts
        return heads * per_head + 2 * self.num_writes * self.word_size

    def split_interface(self, interface: Tensor) -> NTMParams:
        """Split ``[batch, interface_size]`` raw interface outputs into :class:`NTMParams`."""
        b, heads, w = interface.shape[0], self.num_reads + self.num_writes, self.word_size
        sizes = [heads * w, heads, heads, heads * self.num_shifts, heads]
        sizes += [self.num_writes * w] * 2
        k, beta, g, s, gamma, e, a = torch.split(interface, sizes, dim=-1)
        return NTMParams(
            keys=k.reshape(b, heads, w),
            strengths=beta,
            gates=g,
            shifts=s.reshape(b, heads, self.num_shifts),
            sharpening=gamma,
            erase=e.reshape(b, self.num_writes, w),
            add=a.reshape(b, self.num_writes, w),
        )

    def initial_state(
        self,
        batch_size: int,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> NTMState:
        """Zero memory; every read and write head focused one-hot on slot 0.

        One-hot rather than uniform weights break the symmetry between slots: from a zero
        memory and uniform weights every slot would receive identical writes forever.
        """
        device, dtype = resolve_device_dtype(device, dtype)
        n = self.memory_size
        memory = torch.zeros(batch_size, n, self.word_size, device=device, dtype=dtype)
        onehot = torch.zeros(batch_size, 1, n, device=device, dtype=dtype)
        onehot[..., 0] = 1
        return NTMState(
            memory=memory,
            read_weights=onehot.expand(-1, self.num_reads, -1).clone(),
            write_weights=onehot.expand(-1, self.num_writes, -1).clone(),
        )

    def step(self, params: NTMParams, prev_state: NTMState) -> tuple[Tensor, NTMState]:
        """One step from already-split raw parameters: write (eqs. 3-4), then read (eq. 2).

        Returns:
            ``(reads, next_state)``; ``reads`` is ``r_t``, ``[batch, num_reads, word_size]``.
        """
        nw, prev_memory = self.num_writes, prev_state.memory
        head_params = params[:5]  # keys, strengths, gates, shifts, sharpening
        write_params = [p[:, :nw] for p in head_params]
        read_params = [p[:, nw:] for p in head_params]
        write_weights = address(prev_memory, prev_state.write_weights, *write_params)
        ww = write_weights.unsqueeze(-1)  # [B, num_writes, N, 1]
        erase = torch.sigmoid(params.erase).unsqueeze(-2)  # e_t, [B, num_writes, 1, W]
        add = torch.tanh(params.add).unsqueeze(-2)  # a_t, [B, num_writes, 1, W]
        factors = 1 - ww * erase  # eq. 3 per write head, [B, num_writes, N, W]
        keep = factors[:, 0]  # product over write heads, [B, N, W]
        for head in range(1, nw):  # not torch.prod: its backward syncs (.item()) on zeros
            keep = keep * factors[:, head]
        memory = prev_memory * keep + (ww * add).sum(1)  # eq. 4, M_t
        read_weights = address(memory, prev_state.read_weights, *read_params)
        reads = torch.matmul(read_weights, memory)  # eq. 2, [B, H, W]
        return reads, NTMState(memory, read_weights, write_weights)

    def forward(self, controller_output: Tensor, prev_state: NTMState) -> tuple[Tensor, NTMState]:
        """One step from the controller output ``h_t``, ``[batch, input_size]``.

        Returns:
            ``(reads, next_state)`` with ``reads`` of shape ``[batch, num_reads, word_size]``.
        """
        return self.step(self.split_interface(self._interface(controller_output)), prev_state)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, num_writes={self.num_writes}, num_shifts={self.num_shifts}"
