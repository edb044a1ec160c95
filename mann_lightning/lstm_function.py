"""The LSTM cell's pointwise part as a single autograd node.

Given the pre-activations ``z = W_x x_t + W_r [r_{t-1}, h_{t-1}] + b`` (gate order: input,
forget, output, cell candidate), one LSTM step is::

    i, f, o = sigmoid(z_i), sigmoid(z_f), sigmoid(z_o);  g = tanh(z_g)
    c_t = f * c_{t-1} + i * g;   h_t = o * tanh(c_t)

Autograd would record about ten small nodes for this per time step; :class:`LSTMCellFunction`
records one, with the hand-derived backward below. The matmuls that produce ``z`` stay with
autograd. ``tests/test_controller.py`` checks the step against a float64 reference,
``tests/test_lstm_function.py`` the gradient (gradcheck) and its two forms.

The backward has two forms of ``dL/dz``, the same numbers: eagerly four gate blocks joined
with ``torch.cat`` (:func:`gate_grads_by_blocks`), and under ``torch.compile`` one
broadcast expression over ``[batch, 4, units]`` (:func:`gate_grads_in_one`). Inductor lowers
a ``cat`` on the CPU to its own buffer, which then has to be copied once more where the
compiled episode stacks every step's ``dL/dz`` into ``dL/dp`` (20 MB at batch 128); the one
expression is written into its slot of that stack directly (docs/performance.md).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor


class LSTMCellFunction(torch.autograd.Function):
    """``(gates [B, 4U], cell [B, U]) -> (hidden [B, U], cell [B, U])``."""

    @staticmethod
    def forward(ctx: Any, gates: Tensor, cell: Tensor) -> tuple[Tensor, Tensor]:
        units = cell.shape[-1]
        sig = torch.sigmoid(gates[:, : 3 * units])
        candidate = torch.tanh(gates[:, 3 * units :])
        input_gate, forget_gate, output_gate = sig.split(units, dim=1)
        new_cell = torch.addcmul(forget_gate * cell, input_gate, candidate)
        tanh_cell = torch.tanh(new_cell)
        hidden = output_gate * tanh_cell
        ctx.save_for_backward(sig, candidate, cell, tanh_cell)
        return hidden, new_cell

    @staticmethod
    def backward(ctx: Any, g_hidden: Tensor, g_cell: Tensor) -> tuple[Tensor, Tensor]:
        sig, candidate, cell, tanh_cell = ctx.saved_tensors
        units = cell.shape[-1]
        forget_gate, output_gate = sig[:, units : 2 * units], sig[:, 2 * units :]
        # h = o tanh(c): into o and c; c = f c_prev + i g: into f, c_prev, i, g.
        g_cell = torch.addcmul(g_cell, g_hidden * output_gate, 1 - tanh_cell * tanh_cell)
        gate_grads = gate_grads_in_one if torch.compiler.is_compiling() else gate_grads_by_blocks
        return gate_grads(sig, candidate, cell, tanh_cell, g_hidden, g_cell), g_cell * forget_gate


def gate_grads_by_blocks(
    sig: Tensor,
    candidate: Tensor,
    cell: Tensor,
    tanh_cell: Tensor,
    g_hidden: Tensor,
    g_cell: Tensor,
) -> Tensor:
    """``dL/dz [B, 4U]`` from ``sig = [i, f, o]`` ``[B, 3U]``, ``candidate`` ``g``, the
    previous ``cell``, ``tanh(c_t)``, ``dL/dh_t`` and the total ``dL/dc_t`` (all ``[B, U]``),
    joined from its four gate blocks."""
    input_gate = sig[:, : cell.shape[-1]]
    g_sig = torch.cat([g_cell * candidate, g_cell * cell, g_hidden * tanh_cell], dim=1)
    return torch.cat(
        [g_sig * sig * (1 - sig), g_cell * input_gate * (1 - candidate * candidate)], dim=1
    )


def gate_grads_in_one(
    sig: Tensor,
    candidate: Tensor,
    cell: Tensor,
    tanh_cell: Tensor,
    g_hidden: Tensor,
    g_cell: Tensor,
) -> Tensor:
    """:func:`gate_grads_by_blocks` as one expression over ``[B, 4, U]``: per gate block
    ``k``, ``dL/dz_k = upstream_k * factor_k * activation'_k`` with ``upstream = (dL/dc_t,
    dL/dc_t, dL/dh_t, dL/dc_t)``, ``factor = (g, c_{t-1}, tanh(c_t), i)`` and the sigmoid's
    or tanh's derivative, chosen by broadcast block masks (no ``cat``)."""
    batch, units = cell.shape
    block = torch.arange(4, device=cell.device).view(1, 4, 1)
    upstream = torch.where(block == 2, g_hidden.unsqueeze(1), g_cell.unsqueeze(1))
    factor = torch.where(
        block == 0,
        candidate.unsqueeze(1),
        torch.where(
            block == 1,
            cell.unsqueeze(1),
            torch.where(block == 2, tanh_cell.unsqueeze(1), sig[:, :units].unsqueeze(1)),
        ),
    )
    sigmoid = F.pad(sig.view(batch, 3, units), (0, 0, 0, 1))  # block 3 zero
    tanh = F.pad(candidate.unsqueeze(1), (0, 0, 3, 0))  # blocks 0-2 zero
    slope = torch.where(block < 3, sigmoid * (1 - sigmoid), 1 - tanh * tanh)
    return (upstream * factor * slope).view(batch, 4 * units)
