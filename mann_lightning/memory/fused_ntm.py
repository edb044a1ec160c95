"""The NTM-style memory's step (NTM eqs. 2-9) as one C++ kernel per direction (``csrc/``).

The op-by-op step (:meth:`NTMMemory.step <mann_lightning.memory.ntm.NTMMemory.step>`) runs
some forty operators per step over the whole batch, its two addressings each with batched
products of tiny ``[H, W] x [W, N]`` matrices, and autograd records them all. The kernel
does a step's forward in one pass per batch element with its ``[N, W]`` memory in cache
(the write heads address ``M_{t-1}``, erase and add, the read heads address ``M_t`` and
read) and its backward in one more. It takes the activated interface values (``beta``,
``g``, the shift distribution ``s``, ``gamma``, ``e``, ``a``), so PyTorch (or the compiler)
still does the activations and their gradients. Registered as the ``torch.ops.mann_ntm``
operators with fake (shape) implementations and FLOP counts, differentiated by
:class:`FusedNTMFunction`; inside a compiled episode they are extern calls.

Built on first use like the LRUA's kernel (:mod:`~mann_lightning.memory.kernel_build`);
where it cannot be built, one log line says why and the memory runs its op-by-op step, which
computes the same function (``tests/memory/test_fused_ntm.py``). ``MANN_FUSED_NTM=0`` turns
it off.
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

SOURCE = Path(__file__).with_name("csrc") / "ntm_step.cpp"  # includes csrc/ntm_kernels.h
_STATE: dict[str, bool | None] = {"loaded": None}


def fused_ntm_available() -> bool:
    """Whether the fused kernel is loaded, building it on the first call (see module doc)."""
    return kernel_build.available(_STATE, lambda: _load(), "NTM", log)


def use_fused_ntm(keys: Tensor, memory: Tensor) -> bool:
    """Whether a step on these tensors can take the kernel (CPU, float32/64, no autocast;
    while compiling, only if :meth:`~mann_lightning.memory.base.Memory.before_compile` loaded
    it: a build cannot run inside a traced graph)."""
    return kernel_build.usable(_STATE, fused_ntm_available, keys, memory)


def fused_ntm_step(
    keys: Tensor,
    beta: Tensor,
    gate: Tensor,
    shift: Tensor,
    gamma: Tensor,
    erase: Tensor,
    add: Tensor,
    memory: Tensor,
    read_weights: Tensor,
    write_weights: Tensor,
    eps: float,
    sharpen_eps: float,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """One NTM step from activated interface values; differentiable in all tensors.

    Heads are write heads first: ``heads = num_writes + num_reads``.

    Args:
        keys: ``k_t``, ``[batch, heads, word]``.
        beta: ``beta_t >= 1`` (after ``1 + softplus``), ``[batch, heads]`` (eq. 5).
        gate: ``g_t`` (after the sigmoid), ``[batch, heads]`` (eq. 7).
        shift: ``s_t`` (after the softmax), ``[batch, heads, num_shifts]`` (eq. 8).
        gamma: ``gamma_t >= 1``, ``[batch, heads]`` (eq. 9).
        erase: ``e_t`` (after the sigmoid), ``[batch, num_writes, word]`` (eq. 3).
        add: ``a_t`` (after the tanh), ``[batch, num_writes, word]`` (eq. 4).
        memory: ``M_{t-1}``, ``[batch, slots, word]``.
        read_weights: ``w^r_{t-1}``, ``[batch, num_reads, slots]``.
        write_weights: ``w^w_{t-1}``, ``[batch, num_writes, slots]``.
        eps: Stabiliser of the cosine similarity (eq. 5).
        sharpen_eps: Added to ``w~`` before the ``log`` of eq. 9.

    Returns:
        ``(r_t [B, num_reads, W], M_t [B, N, W], w^r_t [B, num_reads, N],
        w^w_t [B, num_writes, N])``.
    """
    dtype = memory.dtype
    tensors = (keys, beta, gate, shift, gamma, erase, add, memory, read_weights, write_weights)
    return FusedNTMFunction.apply(*(t.to(dtype) for t in tensors), eps, sharpen_eps)


class FusedNTMFunction(torch.autograd.Function):
    """The two operators as one autograd node."""

    @staticmethod
    def forward(ctx: Any, *args: Any) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        *inputs, eps, sharpen_eps = args
        reads, memory, read_weights, write_weights, aux, norms = torch.ops.mann_ntm.forward(
            *inputs, eps, sharpen_eps
        )
        ctx.eps, ctx.sharpen_eps = eps, sharpen_eps
        ctx.save_for_backward(*inputs, memory, read_weights, write_weights, aux, norms)
        return reads, memory, read_weights, write_weights

    @staticmethod
    @first_order_only("the fused NTM kernel")
    def backward(ctx: Any, *grads: Tensor | None) -> tuple[Tensor | None, ...]:
        saved = ctx.saved_tensors
        keys, new_memory, new_rw, new_ww = saved[0], saved[10], saved[11], saved[12]
        shapes = (
            (keys.shape[0], new_rw.shape[1], keys.shape[2]),  # reads
            new_memory.shape,
            new_rw.shape,
            new_ww.shape,
        )
        filled = [keys.new_zeros(s) if g is None else g for g, s in zip(grads, shapes, strict=True)]
        outputs = torch.ops.mann_ntm.backward(*filled, *saved, ctx.eps, ctx.sharpen_eps)
        return (*outputs, None, None)


def _load() -> str | None:
    """Build (if needed) and load the kernel; the reason it is unavailable, or None."""
    if os.environ.get("MANN_FUSED_NTM", "1") == "0":
        return "MANN_FUSED_NTM=0"
    if hasattr(torch.ops.mann_ntm, "forward"):
        return None
    reason = kernel_build.load(SOURCE)
    if reason is None:
        _register_python_parts()
    return reason


def _register_python_parts() -> None:
    """Shapes for tracing (fake tensors) and FLOP counts of the C++ operators."""

    @torch.library.register_fake("mann_ntm::forward")
    def _forward_fake(
        keys: Tensor, beta: Tensor, gate: Tensor, shift: Tensor, gamma: Tensor, erase: Tensor,
        add: Tensor, memory: Tensor, read_weights: Tensor, write_weights: Tensor, *rest: Any,
    ) -> tuple[Tensor, ...]:  # fmt: skip
        batch, heads, word = keys.shape
        slots, reads = memory.shape[1], read_weights.shape[1]
        return (
            keys.new_empty(batch, reads, word),
            memory.new_empty(memory.shape),
            keys.new_empty(read_weights.shape),
            keys.new_empty(write_weights.shape),
            keys.new_empty(batch, 5, heads, slots),
            keys.new_empty(batch, 2, slots),
        )

    @torch.library.register_fake("mann_ntm::backward")
    def _backward_fake(*args: Any) -> list[Tensor]:
        return [t.new_empty(t.shape) for t in args[4:14]]

    try:
        from torch.utils.flop_counter import register_flop_formula
    except ImportError:  # pragma: no cover - older torch
        return

    def products(keys: Any, memory: Any, read_weights: Any) -> int:
        """As the op-by-op step's matrix products: ``2 N W`` per head for its similarity
        (eq. 5) and per read head for its read (eq. 2); eqs. 3-4 are pointwise."""
        batch, heads, word = keys
        return 2 * batch * (heads + read_weights[1]) * memory[1] * word

    @register_flop_formula(torch.ops.mann_ntm.forward)
    def _forward_flops(keys: Any, beta: Any, gate: Any, shift: Any, gamma: Any, erase: Any,
                       add: Any, memory: Any, read_weights: Any, *args: Any,
                       **kwargs: Any) -> int:  # fmt: skip
        return products(keys, memory, read_weights)

    @register_flop_formula(torch.ops.mann_ntm.backward)
    def _backward_flops(*args: Any, **kwargs: Any) -> int:
        return 2 * products(args[4], args[11], args[12])
