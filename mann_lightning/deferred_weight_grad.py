"""The controller's recurrent weight gradient as one product per episode, not one per step.

Every step of an episode computes the controller's pre-activation
``z_t = p_t + W_r u_t`` (``p_t`` the hoisted input projection, ``u_t`` the recurrent input of
:meth:`~mann_lightning.controller.Controller.recurrent_input`: ``[r_{t-1}, h_{t-1}]`` for an
LSTM). Differentiated step by step, autograd adds ``dL/dz_t^T u_t`` into ``dW_r`` at each of
the ``T`` steps: ``T`` products of inner size ``batch`` (16 in the paper), each reading and
writing the whole ``[gates, recurrent]`` gradient (``[800, 360]``, 1.15 MB). Yet
``dL/dz_t = dL/dp_t``, and the input projection's backward already stacks these for all
steps, so ``dW_r = sum_t dL/dp_t^T u_t`` is one ``[gates, batch*T] x [batch*T, recurrent]``
product after the time loop.

:func:`tap` puts an identity node on ``p`` that holds a slot for the stacked ``u``; the time
loop multiplies by ``W_r.detach()`` (no per-step weight gradient) and fills the slot
(:meth:`RecurrentInputs.record`) with the detached ``u`` of all steps; the node's backward
returns ``dL/dp`` unchanged and ``dW_r`` as that one product. The MANN uses it for its
compiled episode on a CPU (``compile="episode"``), which cannot be differentiated twice
anyway; an eager step keeps the per-step gradient (and with it second derivatives through
the controller), and so does a GPU, where the compiled episode is a CUDA graph that would
overwrite the recorded ``u`` on its next replay. ``tests/test_deferred_weight_grad.py`` checks it against the per-step gradient
in float64; ``docs/performance.md`` has the timing.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor


class RecurrentInputs:
    """The slot for ``u`` of an episode: ``[batch, time, recurrent_size]``, detached."""

    def __init__(self) -> None:
        self.inputs: Tensor | None = None

    def record(self, inputs: Tensor) -> None:
        """Keep ``u`` of all steps (detached: its values only) for the backward."""
        self.inputs = inputs.detach()


class DeferredWeightGrad(torch.autograd.Function):
    """``p -> p``, whose backward also returns ``dW_r = dL/dp^T u`` over all steps."""

    @staticmethod
    def forward(ctx: Any, projected: Tensor, weight: Tensor, slot: RecurrentInputs) -> Tensor:
        ctx.slot = slot
        ctx.weight_dtype = weight.dtype
        return projected.view_as(projected)

    @staticmethod
    def backward(ctx: Any, g_projected: Tensor) -> tuple[Tensor, Tensor | None, None]:
        if not ctx.needs_input_grad[1]:
            return g_projected, None, None
        if torch.is_grad_enabled():
            raise RuntimeError(
                "The compiled MANN episode takes first derivatives only (create_graph=True "
                "was asked for); use compile='none' for higher derivatives."
            )
        inputs = ctx.slot.inputs
        if inputs is None:
            raise RuntimeError(
                "DeferredWeightGrad: the time loop never recorded its recurrent inputs, so "
                "the recurrent weight's gradient cannot be formed; call "
                "RecurrentInputs.record after the loop."
            )
        gates = g_projected.reshape(-1, g_projected.shape[-1])
        recurrent = inputs.reshape(-1, inputs.shape[-1]).to(gates.dtype)
        return g_projected, torch.mm(gates.t(), recurrent).to(ctx.weight_dtype), None


def tap(projected: Tensor, weight: Tensor) -> tuple[Tensor, RecurrentInputs]:
    """``(p, slot)``: ``p`` through :class:`DeferredWeightGrad` and the slot its time loop
    must fill with ``u`` (``[batch, time, recurrent_size]``, the layout of ``p``)."""
    slot = RecurrentInputs()
    return DeferredWeightGrad.apply(projected, weight, slot), slot
