"""A whole LRUA step (eqs. 2-8) as one C++ kernel per direction for CPU steps (``csrc/``).

Forward, per batch element: the write gates' sigmoid and the slot of least usage (eqs. 7, 8),
the write, the norms and dots, the softmax and the reads (eqs. 8, 2-4) in one pass over its
memory, then the usage and the least-used slots (eqs. 5, 6). Usage and least-used weights
carry no gradient.

The op-by-op step (:class:`~mann_lightning.memory.lrua_function.LRUAStepFunction`) runs some
fifteen operators per step, each over the whole batch of ``[N, W]`` memories, with batched
products of tiny ``[H, W] x [W, N]`` matrices. The kernel does a step's forward in one pass
over each episode's memory (kept in cache) and its backward in two, with the four heads'
dot products sharing each load of a row. It is registered as the ``torch.ops.mann_lrua``
operators with fake (shape) implementations and FLOP counts, and differentiated by
:class:`FusedLRUAFunction`. Eager
training steps of the paper's MANN got 1.1-1.3x faster, and a compiled episode, where the
operators are extern calls between the loops the compiler fuses, 1.1-1.2x
(docs/performance.md).

The kernel is built on first use (:mod:`~mann_lightning.memory.kernel_build`, 10-20 s once
per machine, with the C++ compiler ``torch.compile`` also needs). Where it cannot be built,
one log line says why and the LRUA runs its op-by-op step, which computes the same function
(``tests/memory/test_fused_lrua.py``). ``MANN_FUSED_LRUA=0`` turns it off.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from . import kernel_build
from .first_order import first_order_only

log = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("csrc") / "lrua_step.cpp"  # includes the csrc/*.h kernels
_STATE: dict[str, bool | None] = {"loaded": None}


def fused_lrua_available() -> bool:
    """Whether the fused kernel is loaded, building it on the first call (see module doc)."""
    return kernel_build.available(_STATE, lambda: _load(), "LRUA", log)


def use_fused(keys: Tensor, memory: Tensor) -> bool:
    """Whether a step on these tensors can take the kernel (CPU, float32/64, no autocast;
    while compiling, only if :meth:`~mann_lightning.memory.base.Memory.before_compile` loaded
    it: a build cannot run inside a traced graph)."""
    return kernel_build.usable(_STATE, fused_lrua_available, keys, memory)


def fused_step(
    keys: Tensor,
    alpha: Tensor,
    memory: Tensor,
    read_weights: Tensor,
    least_used: Tensor,
    usage: Tensor,
    gamma: float,
    eps: float,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Eqs. 2-8 of one step, differentiable in keys, alpha, memory and read_weights.

    Args:
        keys: ``k_t``, ``[batch, heads, word]``.
        alpha: Pre-sigmoid write gates, ``[batch, heads]`` (eq. 7).
        memory: ``M_{t-1}``, ``[batch, slots, word]``.
        read_weights: ``w^r_{t-1}``, ``[batch, heads, slots]``.
        least_used: ``w^lu_{t-1}``, ``[batch, slots]`` (no gradient).
        usage: ``w^u_{t-1}``, ``[batch, slots]`` (no gradient); its least slot (the first of
            equal ones) is zeroed before the write.
        gamma: Usage decay of eq. 5.
        eps: Stabiliser of eq. 2.

    Returns:
        ``(r_t [B, H, W], M_t [B, N, W], w^r_t [B, H, N], w^w_t [B, H, N], w^u_t [B, N],
        w^lu_t [B, N])``; the last two carry no gradient.
    """
    dtype = keys.dtype
    return FusedLRUAFunction.apply(
        keys, alpha.to(dtype), memory, read_weights.to(dtype), least_used.to(dtype),
        usage.to(dtype), gamma, eps,
    )  # fmt: skip


class FusedLRUAFunction(torch.autograd.Function):
    """The two operators as one autograd node (a plain ``autograd.Function``: about 0.1 ms per
    step less than the generated wrapper of ``torch.library.register_autograd``)."""

    @staticmethod
    def forward(
        ctx: Any, keys: Tensor, alpha: Tensor, memory: Tensor, read_weights: Tensor,
        least_used: Tensor, usage: Tensor, gamma: float, eps: float,
    ) -> tuple[Tensor, ...]:  # fmt: skip
        outputs = torch.ops.mann_lrua.forward(
            keys, alpha, memory, read_weights, least_used, usage, gamma, eps
        )
        reads, new_memory, new_rw, write_weights, new_usage, new_lu = outputs[:6]
        gate, erase, similarity, memory_norm = outputs[6:]
        ctx.eps = eps
        ctx.mark_non_differentiable(new_usage, new_lu)
        ctx.save_for_backward(
            keys, gate, read_weights, least_used, erase, new_memory, new_rw, write_weights,
            similarity, memory_norm,
        )  # fmt: skip
        return reads, new_memory, new_rw, write_weights, new_usage, new_lu

    @staticmethod
    @first_order_only("the fused LRUA kernel")
    def backward(
        ctx: Any, g_reads: Tensor | None, g_memory: Tensor | None, g_rw: Tensor | None,
        g_ww: Tensor | None, *_: Tensor | None,
    ) -> tuple[Tensor | None, ...]:  # fmt: skip
        saved = ctx.saved_tensors
        keys, read_weights, new_memory = saved[0], saved[2], saved[5]
        g_keys, g_alpha, g_prev_memory, g_prev_rw = torch.ops.mann_lrua.backward(
            torch.zeros_like(keys) if g_reads is None else g_reads,
            torch.zeros_like(new_memory) if g_memory is None else g_memory,
            torch.zeros_like(read_weights) if g_rw is None else g_rw,
            torch.zeros_like(read_weights) if g_ww is None else g_ww,
            *saved,
            ctx.eps,
        )
        return g_keys, g_alpha, g_prev_memory, g_prev_rw, None, None, None, None


def _load() -> str | None:
    """Build (if needed) and load the kernel; the reason it is unavailable, or None."""
    if os.environ.get("MANN_FUSED_LRUA", "1") == "0":
        return "MANN_FUSED_LRUA=0"
    if hasattr(torch.ops, "mann_lrua") and hasattr(torch.ops.mann_lrua, "forward"):
        return None
    reason = kernel_build.load(SOURCE)
    if reason is not None:
        return reason
    _register_python_parts()
    return None


def _register_python_parts() -> None:
    """Shapes for tracing (fake tensors) and FLOP counts of the C++ operators (the autograd
    formula is :class:`FusedLRUAFunction`)."""

    @torch.library.register_fake("mann_lrua::forward")
    def _forward_fake(
        keys: Tensor, alpha: Tensor, memory: Tensor, read_weights: Tensor, *rest: Any
    ) -> list[Tensor]:
        batch, heads, slots = read_weights.shape
        hn = (batch, heads, slots)
        return [
            keys.new_empty(keys.shape), memory.new_empty(memory.shape), keys.new_empty(hn),
            keys.new_empty(hn), keys.new_empty(batch, slots), keys.new_empty(batch, slots),
            keys.new_empty(batch, heads), keys.new_empty(batch, dtype=torch.long),
            keys.new_empty(hn), keys.new_empty(batch, slots),
        ]  # fmt: skip

    @torch.library.register_fake("mann_lrua::backward")
    def _backward_fake(
        g_reads: Tensor, g_memory: Tensor, g_rw: Tensor, g_ww: Tensor, keys: Tensor,
        gate: Tensor, read_weights: Tensor, *rest: Any,
    ) -> tuple[Tensor, ...]:  # fmt: skip
        return (
            keys.new_empty(keys.shape),
            gate.new_empty(gate.shape),
            g_memory.new_empty(g_memory.shape),
            read_weights.new_empty(read_weights.shape),
        )

    _register_flop_formulas()


def _register_flop_formulas() -> None:
    """Count the kernels' products as the op-by-op step's batched matmuls, for
    ``torch.utils.flop_counter`` (the benchmarks' floor): per step and batch element
    ``2 H N W`` FLOPs for each of eq. 8's write, eq. 2's dots and eq. 4's reads, and six such
    products backward."""
    try:
        from torch.utils.flop_counter import register_flop_formula
    except ImportError:  # pragma: no cover - older torch
        return

    def product(keys_shape: Any, memory_shape: Any) -> int:
        batch, heads, word = keys_shape
        return 2 * batch * heads * memory_shape[1] * word

    @register_flop_formula(torch.ops.mann_lrua.forward)
    def _forward_flops(keys: Any, alpha: Any, memory: Any, *args: Any, **kwargs: Any) -> int:
        return 3 * product(keys, memory)

    @register_flop_formula(torch.ops.mann_lrua.backward)
    def _backward_flops(g_reads: Any, g_memory: Any, *args: Any, **kwargs: Any) -> int:
        return 6 * product(g_reads, g_memory)
