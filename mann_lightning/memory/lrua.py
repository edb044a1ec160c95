"""Least-recently-used access (LRUA) memory, Santoro et al. 2016, eqs. 2-8.

Per step ``t`` and for each of the ``H`` heads the controller emits one key ``k_t`` and
one write gate ``alpha``. The step runs in this order:

1. write weights from the *previous* step's read and least-used weights (eq. 7),
2. zero the slot that was least used after step ``t-1``, then add the keys (eq. 8),
3. read from ``M_t`` by cosine similarity with the same keys (eqs. 2-4),
4. usage decay and update (eq. 5), then the least-used weights (eq. 6).

Usage only feeds the hard least-used selection, so it carries no gradient; it is
computed on detached tensors.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..value_checks import is_number
from .base import (
    Memory,
    check_eps,
    check_gamma,
    check_sizes,
    check_step_shapes,
    cosine_similarity,
    resolve_device_dtype,
)
from .fused_lrua import fused_lrua_available, fused_step, use_fused
from .least_used import least_used_weights, least_used_weights_by_argmin, least_used_weights_by_sort
from .lrua_function import lrua_function_step
from .lrua_state import LRUAState, initial_lrua_state

__all__ = [
    "LRUAMemory",
    "LRUAState",
    "least_used_weights",
    "least_used_weights_by_argmin",
    "least_used_weights_by_sort",
]


class LRUAMemory(Memory):
    """LRUA memory of the MANN paper.

    Args:
        memory_size: Number of slots ``N`` (paper: 128).
        word_size: Slot width ``W`` (paper: 40).
        num_reads: Number of heads ``H``; also the number ``n`` of least-used slots
            marked by eq. 6 (paper: 4).
        gamma: Usage decay ``gamma`` of eq. 5, in ``(0, 1]`` (paper: 0.95).
        input_size: Controller output size; normally set by the model via ``build``.
        eps: Stabiliser of the cosine similarity (eq. 2).
        write_gate_bias: Initial bias of the pre-sigmoid write gates ``alpha`` (eq. 7);
            ``None`` keeps ``nn.Linear``'s default. Negative values start the heads writing
            mostly to the least-used slots, positive ones to the slots read last.
        fused_kernel: Run a whole CPU step (eqs. 2-8) as one C++ kernel per direction
            (:mod:`~mann_lightning.memory.fused_lrua`; the same function, faster), eager
            or inside a compiled graph. Falls back to the op-by-op step (plain ops when
            compiled), with one log line, where the kernel cannot be built; other devices
            and dtypes, and autocast, always use that step.
    """

    def __init__(
        self,
        memory_size: int = 128,
        word_size: int = 40,
        num_reads: int = 4,
        gamma: float = 0.95,
        input_size: int | None = None,
        eps: float = 1e-6,
        write_gate_bias: float | None = None,
        fused_kernel: bool = True,
    ) -> None:
        check_sizes("LRUAMemory", memory_size, word_size, num_reads)
        if num_reads > memory_size:
            raise ValueError(
                f"LRUAMemory: num_reads ({num_reads}) must not exceed memory_size "
                f"({memory_size}): eq. 6 marks num_reads least-used slots. Use a larger "
                "memory_size or fewer reads."
            )
        self.gamma = check_gamma("LRUAMemory", gamma)
        self.eps = check_eps("LRUAMemory", eps)
        if write_gate_bias is not None and not (
            is_number(write_gate_bias) and abs(write_gate_bias) < float("inf")
        ):
            raise ValueError(
                f"LRUAMemory: write_gate_bias must be a finite number or None, got {write_gate_bias!r}."
            )
        self.write_gate_bias = write_gate_bias
        if not isinstance(fused_kernel, bool):
            raise ValueError(
                f"LRUAMemory: fused_kernel must be true or false, got {fused_kernel!r}."
            )
        self.fused_kernel = fused_kernel
        super().__init__(memory_size, word_size, num_reads, input_size)

    @property
    def interface_size(self) -> int:
        """One key (``W``) and one gate ``alpha`` (1) per head."""
        return self.num_reads * (self.word_size + 1)

    def reset_interface_parameters(self) -> None:
        """Set the write gates' bias (the last ``num_reads`` outputs) when one is given."""
        if self.write_gate_bias is not None and self.interface is not None:
            with torch.no_grad():
                self.interface.bias[-self.num_reads :].fill_(self.write_gate_bias)

    def initial_state(
        self,
        batch_size: int,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> LRUAState:
        """Zero memory, zero usage and reads; ``w^lu_0`` marks slots ``0..n-1``.

        Slots ``0..n-1`` are what eq. 6 selects on an all-zero usage with ties broken
        towards the lower index, the rule every later step follows too.
        """
        device, dtype = resolve_device_dtype(device, dtype, batch_size, type(self).__name__)
        return initial_lrua_state(
            batch_size, self.memory_size, self.word_size, self.num_reads, device, dtype
        )

    def forward(self, controller_output: Tensor, prev_state: LRUAState) -> tuple[Tensor, LRUAState]:
        """Map ``h_t`` to keys (tanh) and gates, then run :meth:`step`.

        Args:
            controller_output: ``h_t``, ``[batch, input_size]``.
            prev_state: State after step ``t-1``.

        Returns:
            ``(r_t [batch, heads, word], state_t)``.
        """
        params = self._interface(controller_output)
        h, w = self.num_reads, self.word_size
        keys, alpha = params.split([h * w, h], dim=1)
        return self.step(torch.tanh(keys).view(-1, h, w), alpha, prev_state)

    def before_compile(self, device: torch.device) -> None:
        """Build the fused kernel before ``torch.compile`` traces a CPU step (no build can
        run inside a traced graph; without the kernel the graph gets the plain ops)."""
        if self.fused_kernel and device.type == "cpu":
            fused_lrua_available()

    def step(self, keys: Tensor, alpha: Tensor, prev_state: LRUAState) -> tuple[Tensor, LRUAState]:
        """The addressing and memory update of one step (eqs. 2-8).

        Args:
            keys: ``k_t``, ``[batch, heads, word]``, used both to write and to read.
            alpha: Pre-sigmoid write gates ``alpha``, ``[batch, heads]`` (eq. 7).
            prev_state: State after step ``t-1``.

        Returns:
            ``(r_t, state_t)``: reads ``[batch, heads, word]`` (eq. 4) and the new state.
        """
        memory, usage, read_weights, least_used, _ = prev_state
        b, h, n, w = keys.shape[0], self.num_reads, self.memory_size, self.word_size
        check_step_shapes("LRUAMemory", {
            "keys": (keys, (b, h, w)), "alpha": (alpha, (b, h)), "memory": (memory, (b, n, w)),
            "usage": (usage, (b, n)), "read_weights": (read_weights, (b, h, n)),
            "least_used": (least_used, (b, n)),
        })  # fmt: skip
        fused = self.fused_kernel and use_fused(keys, memory)
        if torch.compiler.is_compiling() and not fused:
            # Under torch.compile without the kernel (GPU, or not built), the equations as
            # plain ops: the compiler fuses them and derives the backward itself, faster
            # than tracing the hand-written node.
            return self.plain_step(keys, alpha, prev_state)
        if fused:
            # eqs. 2-8 as one C++ kernel per direction (see fused_lrua.py), an extern call
            # inside a compiled graph.
            reads, memory, read_weights, write_weights, usage, least_used = fused_step(
                keys, alpha, memory, read_weights, least_used, usage, self.gamma, self.eps
            )
            return reads, LRUAState(memory, usage, read_weights, least_used, write_weights)
        # Zero the slot of least usage after t-1 (ties: lowest index, as in eq. 6).
        erase = torch.argmin(usage, dim=-1)
        step = lrua_function_step(keys, alpha, memory, read_weights, least_used, erase, self.eps)
        reads, memory, read_weights, write_weights = step
        usage, least_used = self.usage_step(usage, read_weights, write_weights)
        return reads, LRUAState(memory, usage, read_weights, least_used, write_weights)

    def plain_step(
        self, keys: Tensor, alpha: Tensor, prev_state: LRUAState
    ) -> tuple[Tensor, LRUAState]:
        """:meth:`step` as plain tensor ops (eqs. 7, 8, 2-4, 5, 6): what ``torch.compile`` sees
        (``benchmarks/straightforward_lrua.py`` is the same with :meth:`written` as a matmul)."""
        memory, usage, read_weights, least_used, _ = prev_state
        dtype = torch.promote_types(keys.dtype, memory.dtype)
        keys, memory = keys.to(dtype), memory.to(dtype)
        gate = torch.sigmoid(alpha.to(dtype)).unsqueeze(-1)
        lu = least_used.to(dtype).unsqueeze(1)
        write_weights = lu + gate * (read_weights.to(dtype) - lu)  # eq. 7
        erase = torch.argmin(usage, dim=-1)
        keep = torch.arange(memory.shape[1], device=memory.device) != erase.unsqueeze(-1)
        memory = memory * keep.unsqueeze(-1).to(dtype)  # zero the least-used slot
        memory = memory + self.written(write_weights, keys)  # eq. 8
        similarity = cosine_similarity(keys, memory, self.eps)  # eq. 2
        read_weights = torch.softmax(similarity, dim=-1)  # eq. 3
        reads = read_weights @ memory  # eq. 4
        usage, least_used = self.usage_step(usage, read_weights, write_weights)
        return reads, LRUAState(memory, usage, read_weights, least_used, write_weights)

    @torch.no_grad()
    def usage_step(
        self, usage: Tensor, read_weights: Tensor, write_weights: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Eqs. 5 and 6, without gradient: ``(w^u_t, w^lu_t)``, both ``[batch, slots]``.

        ``w^u_t = gamma w^u_{t-1} + sum_h w^r_t + sum_h w^w_t``; then
        :func:`least_used_weights` marks the ``num_reads`` slots of smallest usage. CPU steps
        with the fused kernel compute both inside it (the same function), not here.
        """
        usage = (read_weights + write_weights).sum(1).add_(usage, alpha=self.gamma)
        return usage, least_used_weights(usage, self.num_reads)

    @staticmethod
    def written(write_weights: Tensor, keys: Tensor) -> Tensor:
        """What eq. 8 adds to the memory, ``sum_h w^w_t[h]^T k_t[h]``: ``[batch, slots, word]``.

        A broadcast sum over the heads, which the compiler fuses into one loop with the
        zeroing of the least-used slot; the same rank-``H`` product as a ``[N, H] x [H, W]``
        matmul is slower (``benchmarks/lrua_write.py``).
        """
        return (write_weights.unsqueeze(-1) * keys.unsqueeze(2)).sum(1)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, gamma={self.gamma}"
