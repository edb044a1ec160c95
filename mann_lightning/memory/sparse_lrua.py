"""Sparse LRUA memory: top-k reads and sparse writes (Rae et al. 2016) on Santoro et al.'s LRUA.

The step is the LRUA step of :mod:`~mann_lightning.memory.lrua` (eqs. 2-8) with one change:
each head reads only its ``k`` slots of highest cosine similarity (softmax over those ``k``,
zero elsewhere; exact ties go to the lowest index, see ``select``). Read weights are then
``k``-sparse and so are the write weights of eq. 7 (``g w^r_{t-1} + (1 - g) w^lu_{t-1}``
touches at most ``H*k + H`` slots); both are kept as ``(index, values)`` pairs. With ``k = memory_size`` the step is the
dense LRUA step (up to rounding), values and gradients.

Cost per step: ``M_t`` is updated in place and backward saves only the rows read, so the
autograd graph of an episode holds ``O(T H k W)`` numbers instead of ``O(T N W)``. Only the
first ``frontier + k`` slots are scanned for the top ``k`` (the rest are zero and unused),
so an episode that starts from the empty memory costs about the same at 65,536 slots as at
128; a carried, full memory is scanned whole (``O(N W)`` per step, no gradient). The window
needs its size on the host, so it is the CPU default (``scan="auto"``); on a GPU all slots
are scanned and the step never synchronises with the host.

In-place state: a step *overwrites the memory of the state it continues from*. Step from the
latest state only; stepping again from an older state raises an error. A memory this module
did not produce (fresh ``initial_state``, a detached or loaded state, a user tensor) is copied
once on its first step. ``detach_state`` shares the buffer and drops the check: to branch
from a state, clone its memory (``state._replace(memory=state.memory.clone())``).
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import torch
from torch import Tensor

from ..value_checks import is_positive_int
from .base import (
    Memory,
    autocast_off,
    check_eps,
    check_gamma,
    check_sizes,
    check_step_shapes,
    resolve_device_dtype,
)
from .sparse_lrua_function import SparseLRUAStepFunction, select

_TAG = "_sparse_lrua_latest"  # on a memory buffer: (frontier of its latest state, _version)


def _dense(index: Tensor, values: Tensor, slots: int) -> Tensor:
    return values.new_zeros((*values.shape[:-1], slots)).scatter_add_(-1, index, values)


class SparseLRUAState(NamedTuple):
    """Sparse LRUA memory state after step ``t``.

    Attributes:
        memory: ``M_t``, ``[batch, slots, word]``; updated in place by the next step.
        usage: ``w^u_t``, ``[batch, slots]`` (eq. 5); no gradient.
        read_index: Slots of ``w^r_t`` (eq. 3), ``[batch, heads, k]`` int64.
        read_values: ``w^r_t`` on those slots, ``[batch, heads, k]``, summing to 1 per head.
        write_index: Slots of ``w^w_t`` (eq. 7), ``[batch, heads, k + heads]`` int64: the
            read slots of ``t-1``, then the ``heads`` least-used slots of ``t-1``.
        write_values: ``w^w_t`` on those slots, ``[batch, heads, k + heads]`` (repeated slots
            add up).
        least_used: ``w^lu_t`` (eq. 6) as the ``heads`` slots of smallest usage,
            ``[batch, heads]`` int64, sorted by (usage, index); column 0 is erased at ``t+1``.
        frontier: ``[batch]`` int64; every slot ``>= frontier`` is zero with zero usage.
    """

    memory: Tensor
    usage: Tensor
    read_index: Tensor
    read_values: Tensor
    write_index: Tensor
    write_values: Tensor
    least_used: Tensor
    frontier: Tensor

    @property
    def read_weights(self) -> Tensor:
        """Dense ``w^r_t``, ``[batch, heads, slots]`` (for analysis, e.g. memory traces)."""
        return _dense(self.read_index, self.read_values, self.memory.shape[1])

    @property
    def write_weights(self) -> Tensor:
        """Dense ``w^w_t``, ``[batch, heads, slots]`` (for analysis, e.g. memory statistics)."""
        return _dense(self.write_index, self.write_values, self.memory.shape[1])


class SparseLRUAMemory(Memory):
    """LRUA memory with top-``k`` reads and sparse writes.

    Args:
        memory_size: Number of slots ``N``.
        word_size: Slot width ``W`` (paper: 40).
        num_reads: Number of heads ``H``; also the number of least-used slots of eq. 6.
        gamma: Usage decay of eq. 5, in ``(0, 1]`` (paper: 0.95).
        k: Slots each head reads (and, through eq. 7, writes), ``1 <= k <= memory_size``.
        scan: ``"window"``: look for the top ``k`` and the least used only among the slots
            that can hold them (reads two numbers on the host per step); ``"full"``: among
            all slots, without host reads; ``"auto"``: window on CPU, full elsewhere. All
            three compute the same function up to the ties ``select`` describes.
        input_size: Controller output size; normally set by the model via ``build``.
        eps: Stabiliser of the cosine similarity (eq. 2).
    """

    #: updated in place by a hand-written autograd node, with host reads under ``scan:
    #: window``; ``compile="auto"`` keeps it eager
    compiles_well = False

    def __init__(
        self,
        memory_size: int = 128,
        word_size: int = 40,
        num_reads: int = 4,
        gamma: float = 0.95,
        k: int = 8,
        input_size: int | None = None,
        eps: float = 1e-6,
        scan: Literal["auto", "window", "full"] = "auto",
    ) -> None:
        name = type(self).__name__
        check_sizes(name, memory_size, word_size, num_reads)
        if num_reads > memory_size:
            raise ValueError(
                f"{name}: num_reads ({num_reads}) must not exceed memory_size ({memory_size})."
            )
        if not (is_positive_int(k) and k <= memory_size):
            raise ValueError(f"{name}: k must be an integer in [1, memory_size], got {k!r}.")
        if scan not in ("auto", "window", "full"):
            raise ValueError(f"{name}: scan must be 'auto', 'window' or 'full', got {scan!r}.")
        self.gamma = check_gamma(name, gamma)
        self.k = k
        self.scan = scan
        self.eps = check_eps("SparseLRUAMemory", eps)
        super().__init__(memory_size, word_size, num_reads, input_size)

    @property
    def interface_size(self) -> int:
        """One key (``W``) and one gate ``alpha`` (1) per head, as in dense LRUA."""
        return self.num_reads * (self.word_size + 1)

    def initial_state(
        self,
        batch_size: int,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> SparseLRUAState:
        """Empty memory (a broadcast zero: the first step allocates it), zero usage and
        weights; ``w^lu_0`` is slots ``0..H-1`` as in dense LRUA."""
        device, dtype = resolve_device_dtype(device, dtype, batch_size, type(self).__name__)
        b, n, h, k = batch_size, self.memory_size, self.num_reads, self.k
        slots = torch.arange(max(k, h), device=device)
        return SparseLRUAState(
            memory=torch.zeros(1, 1, 1, device=device, dtype=dtype).expand(b, n, self.word_size),
            usage=torch.zeros(b, n, device=device, dtype=dtype),
            read_index=slots[:k].expand(b, h, k).clone(),
            read_values=torch.zeros(b, h, k, device=device, dtype=dtype),
            write_index=torch.cat([slots[:k], slots[:h]]).expand(b, h, k + h).clone(),
            write_values=torch.zeros(b, h, k + h, device=device, dtype=dtype),
            least_used=slots[:h].expand(b, h).clone(),
            frontier=torch.zeros(b, device=device, dtype=torch.long),
        )

    def forward(
        self, controller_output: Tensor, prev_state: SparseLRUAState
    ) -> tuple[Tensor, SparseLRUAState]:
        """Map ``h_t`` to keys (tanh) and gates, then run :meth:`step`."""
        params = self._interface(controller_output)
        h, w = self.num_reads, self.word_size
        keys, alpha = params.split([h * w, h], dim=1)
        return self.step(torch.tanh(keys).view(-1, h, w), alpha, prev_state)

    def step(
        self, keys: Tensor, alpha: Tensor, prev_state: SparseLRUAState
    ) -> tuple[Tensor, SparseLRUAState]:
        """One step (eqs. 2-8 with top-``k`` reads): ``(r_t [batch, heads, word], state_t)``.

        Args:
            keys: ``k_t``, ``[batch, heads, word]``, used both to write and to read.
            alpha: Pre-sigmoid write gates, ``[batch, heads]`` (eq. 7).
            prev_state: The latest state (its memory is updated in place).
        """
        b, h, w, n = keys.shape[0], self.num_reads, self.word_size, self.memory_size
        check_step_shapes("SparseLRUAMemory", {
            "keys": (keys, (b, h, w)), "alpha": (alpha, (b, h)),
            "memory": (prev_state.memory, (b, n, w)), "usage": (prev_state.usage, (b, n)),
            "read_values": (prev_state.read_values, (b, h, self.k)),
        })  # fmt: skip
        dtype = torch.promote_types(keys.dtype, prev_state.memory.dtype)
        memory, frontier = self._writable(prev_state, dtype)
        windowed = self.scan == "window" or (self.scan == "auto" and memory.device.type == "cpu")
        gate = torch.sigmoid(alpha.to(dtype)).unsqueeze(-1)
        with autocast_off(keys.device.type):
            reads, memory, read_values, write_values, read_index, write_index, frontier = (
                SparseLRUAStepFunction.apply(
                    keys.to(dtype), gate, memory, prev_state.read_values.to(dtype),
                    prev_state.read_index, prev_state.least_used, frontier, self.eps, windowed,
                )
            )  # fmt: skip
        # eq. 5 on the touched slots, then eq. 6 on the slots that can be least used. No gradient.
        with torch.no_grad():
            usage = prev_state.usage.to(dtype) * self.gamma
            usage.scatter_add_(1, read_index.flatten(1), read_values.flatten(1))
            usage.scatter_add_(1, write_index.flatten(1), write_values.flatten(1))
            width = self.memory_size
            if windowed and frontier.numel():
                width = min(width, int(frontier.max()) + self.num_reads)
            least_used = select(usage[:, :width], self.num_reads, largest=False, fast=windowed)
            order = torch.sort(usage.gather(1, least_used), dim=-1, stable=True).indices
            least_used = least_used.gather(1, order)
        setattr(memory, _TAG, (frontier, _version(memory)))
        state = SparseLRUAState(
            memory, usage, read_index, read_values, write_index, write_values, least_used, frontier
        )
        return reads, state

    def _writable(self, state: SparseLRUAState, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
        """The buffer this step may update in place, and its frontier.

        The latest state's own buffer is used as it is; any other memory is copied (through
        autograd) and its frontier recomputed; an older state of a buffer is refused.
        """
        memory, tag = state.memory, getattr(state.memory, _TAG, None)
        if tag is not None and tag[0] is not state.frontier:  # in any dtype
            raise RuntimeError(
                "SparseLRUAMemory: this state is stale; a later step has already updated "
                "its memory in place. Step from the latest state; to branch, copy the "
                "state first: state._replace(memory=state.memory.clone())."
            )
        if tag is not None and memory.dtype == dtype:
            if tag[1] == _version(memory):
                return memory, state.frontier
        else:
            memory = memory.to(dtype).clone(memory_format=torch.contiguous_format)
        with torch.no_grad():
            if state.memory.stride(1) == state.memory.stride(2) == 0:  # initial_state: a broadcast
                filled = state.memory[:, :1, 0] != 0
            else:  # amax/amin: no [B, N, W] temporary (a NaN row counts as used)
                filled = (memory.amax(-1) != 0) | (memory.amin(-1) != 0)
            used = filled | (state.usage != 0)
            positions = torch.arange(1, self.memory_size + 1, device=memory.device)
            return memory, (used * positions).amax(-1)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, gamma={self.gamma}, k={self.k}, scan={self.scan!r}"


def _version(tensor: Tensor) -> int | None:
    """Autograd's version counter; None for inference tensors (``torch.inference_mode``,
    as in Lightning's test loop), which keep none and cannot be changed behind our back."""
    return None if tensor.is_inference() else tensor._version
