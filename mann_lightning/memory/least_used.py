"""Eq. 6 of the LRUA memory: the ``n`` least-used slots, eagerly by a sort, compiled by argmin."""

from __future__ import annotations

import torch
from torch import Tensor


def least_used_weights(usage: Tensor, n: int) -> Tensor:
    """``w^lu_t`` of eq. 6: 1.0 on the ``n`` slots of smallest usage, 0.0 elsewhere.

    Ties go to the lower slot index. Eagerly one stable sort; under ``torch.compile`` ``n``
    passes of ``argmin`` (which returns the first of equal minima), which the compiler fuses
    into a few loops over ``[batch, slots]`` where a sort stays a library call (1.03x per
    compiled training step at batch 16, ``benchmarks/compile_options.py``). Both give the
    same weights (``tests/memory/test_lrua.py``).

    Ties are ties of the computed usages. The fused CPU kernel gives every slot's similarity
    the same arithmetic, so slots equal in exact arithmetic (e.g. those never written) stay
    exactly tied and the lowest indices are marked. The op-by-op step (GPU,
    ``fused_kernel=False``) and the plain ops under ``torch.compile`` take eq. 2's dots from
    a batched matmul whose rounding can depend on a row's position (2026-12-02 audit: slots
    120-127 of 128 differed by 9e-16 in float64), so such usages can differ in the last bit
    and other slots among the equal ones are marked. Reads, losses and gradients agree to
    rounding (those slots are interchangeable); the memory is then a permutation of the
    kernel's.

    Args:
        usage: ``w^u_t``, ``[batch, slots]``.
        n: Number of slots to mark (``num_reads``).

    Returns:
        ``[batch, slots]``, in ``usage``'s dtype.
    """
    if torch.compiler.is_compiling():
        return least_used_weights_by_argmin(usage, n)
    return least_used_weights_by_sort(usage, n)


def least_used_weights_by_sort(usage: Tensor, n: int) -> Tensor:
    """:func:`least_used_weights` as one stable sort (ties: the lower slot index first)."""
    order = torch.sort(usage, dim=-1, stable=True).indices[:, :n]
    return torch.zeros_like(usage).scatter_(1, order, 1.0)


def least_used_weights_by_argmin(usage: Tensor, n: int) -> Tensor:
    """:func:`least_used_weights` as ``n`` rounds of ``argmin``, each masking the slot it found."""
    marked = torch.zeros_like(usage)
    remaining = usage
    for _ in range(n):
        slot = remaining.argmin(-1, keepdim=True)
        marked = marked.scatter(1, slot, 1.0)
        remaining = remaining.scatter(1, slot, float("inf"))
    return marked
