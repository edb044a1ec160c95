"""Neural Turing Machine memory (Graves et al. 2014), the NTM baseline of Santoro et al. Table 2.

Each head addresses the memory by content (NTM eqs. 5-6), interpolates with its previous
weighting (eq. 7), shifts it by circular convolution (eq. 8) and sharpens it (eq. 9).
Write heads then erase and add (eqs. 3-4) and read heads read (eq. 2). One step, in order:

1. the write heads address against ``M_{t-1}`` and write it into ``M_t``;
2. the read heads address against ``M_t`` and read from it.

All heads of a kind go through :func:`~mann_lightning.memory.ntm_addressing.address`
together on a head axis, vectorised over batch, heads and slots, with no host
synchronisation. On a CPU (float32/64) the whole step runs as one C++ kernel per direction
instead (:mod:`~mann_lightning.memory.fused_ntm`, ``fused_kernel=True``): the same function.

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

from ..value_checks import is_positive_int
from .base import Memory, check_step_shapes, resolve_device_dtype
from .fused_ntm import fused_ntm_available, fused_ntm_step, use_fused_ntm
from .ntm_addressing import SHARPEN_EPS, address, shift_by_gather, shift_by_rolls

__all__ = ["NTMMemory", "NTMParams", "NTMState", "address", "shift_by_gather", "shift_by_rolls"]


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


class NTMMemory(Memory):
    """NTM memory with content + location addressing and erase/add writes.

    Args:
        memory_size: Number of slots ``N``.
        word_size: Width ``W`` of each slot.
        num_reads: Number of read heads ``H``.
        num_writes: Number of write heads.
        num_shifts: Number of shift offsets, odd, centred on 0, at most ``memory_size``.
        input_size: Controller output size; usually filled in later by :meth:`build`.
        fused_kernel: Run a CPU step (float32/64, no autocast) as one C++ kernel per
            direction (:mod:`~mann_lightning.memory.fused_ntm`; the same function, faster),
            eager and compiled. ``False``: the op-by-op step everywhere.

    Raises:
        ValueError: on a non-positive size, an even / too large ``num_shifts`` or a
            non-boolean ``fused_kernel``.
    """

    def __init__(
        self,
        memory_size: int = 128,
        word_size: int = 40,
        num_reads: int = 4,
        num_writes: int = 1,
        num_shifts: int = 3,
        input_size: int | None = None,
        fused_kernel: bool = True,
    ) -> None:
        super().__init__(memory_size, word_size, num_reads, input_size=None)
        for name, value in (("num_writes", num_writes), ("num_shifts", num_shifts)):
            if not is_positive_int(value):
                raise ValueError(f"NTMMemory: {name} must be a positive integer, got {value!r}.")
        if num_shifts % 2 == 0 or num_shifts > memory_size:
            raise ValueError(
                f"NTMMemory: num_shifts must be odd (offsets centred on 0) and at most "
                f"memory_size={memory_size}, got {num_shifts}."
            )
        if not isinstance(fused_kernel, bool):
            raise ValueError(
                f"NTMMemory: fused_kernel must be true or false, got {fused_kernel!r}."
            )
        self.num_writes = num_writes
        self.num_shifts = num_shifts
        self.fused_kernel = fused_kernel
        if input_size is not None:
            self.build(input_size)

    @property
    def interface_size(self) -> int:
        """Per head ``W + 3 + num_shifts`` (k, beta, g, s, gamma, in that order); per write head ``2W`` more."""
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
        device, dtype = resolve_device_dtype(device, dtype, batch_size, type(self).__name__)
        n = self.memory_size
        memory = torch.zeros(batch_size, n, self.word_size, device=device, dtype=dtype)
        onehot = torch.zeros(batch_size, 1, n, device=device, dtype=dtype)
        onehot[..., 0] = 1
        return NTMState(
            memory=memory,
            read_weights=onehot.expand(-1, self.num_reads, -1).clone(),
            write_weights=onehot.expand(-1, self.num_writes, -1).clone(),
        )

    def before_compile(self, device: torch.device) -> None:
        """Build the fused kernel before ``torch.compile`` traces a CPU step (no build can
        run inside a traced graph; without the kernel the graph gets the plain ops)."""
        if self.fused_kernel and device.type == "cpu":
            fused_ntm_available()

    def step(self, params: NTMParams, prev_state: NTMState) -> tuple[Tensor, NTMState]:
        """One step from already-split raw parameters: write (eqs. 3-4), then read (eq. 2).

        Returns:
            ``(reads, next_state)``; ``reads`` is ``r_t``, ``[batch, num_reads, word_size]``.
        """
        self._check_step(params, prev_state)
        if self.fused_kernel and use_fused_ntm(params.keys, prev_state.memory):
            return self._fused_step(params, prev_state)
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

    def _check_step(self, params: NTMParams, state: NTMState) -> None:
        """Every parameter and state field against this memory's sizes (:func:`check_step_shapes`)."""
        b, nw, w, n = params.keys.shape[0], self.num_writes, self.word_size, self.memory_size
        h = nw + self.num_reads
        want = {"keys": (b, h, w), "strengths": (b, h), "gates": (b, h),
                "shifts": (b, h, self.num_shifts), "sharpening": (b, h), "erase": (b, nw, w),
                "add": (b, nw, w)}  # fmt: skip
        shapes = {name: (getattr(params, name), shape) for name, shape in want.items()}
        shapes["memory"] = (state.memory, (b, n, w))
        shapes["read_weights"] = (state.read_weights, (b, self.num_reads, n))
        shapes["write_weights"] = (state.write_weights, (b, nw, n))
        check_step_shapes("NTMMemory", shapes)

    def _fused_step(self, params: NTMParams, prev_state: NTMState) -> tuple[Tensor, NTMState]:
        """:meth:`step` as the C++ kernel; PyTorch does the activations (module docstring)."""
        reads, memory, read_weights, write_weights = fused_ntm_step(
            params.keys,
            1 + F.softplus(params.strengths),  # beta, eq. 5
            torch.sigmoid(params.gates),  # g, eq. 7
            torch.softmax(params.shifts, dim=-1),  # s, eq. 8
            1 + F.softplus(params.sharpening),  # gamma, eq. 9
            torch.sigmoid(params.erase),  # e, eq. 3
            torch.tanh(params.add),  # a, eq. 4
            *prev_state,
            1e-6,  # cosine_similarity's eps
            SHARPEN_EPS,
        )
        return reads, NTMState(memory, read_weights, write_weights)

    def forward(self, controller_output: Tensor, prev_state: NTMState) -> tuple[Tensor, NTMState]:
        """One step from the controller output ``h_t``, ``[batch, input_size]``.

        Returns:
            ``(reads, next_state)`` with ``reads`` of shape ``[batch, num_reads, word_size]``.
        """
        return self.step(self.split_interface(self._interface(controller_output)), prev_state)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, num_writes={self.num_writes}, num_shifts={self.num_shifts}"
