"""The LSTM cell's pointwise part as a single autograd node.

Given the pre-activations ``z = W_x x_t + W_r [r_{t-1}, h_{t-1}] + b`` (gate order: input,
forget, output, cell candidate), one LSTM step is::

    i, f, o = sigmoid(z_i), sigmoid(z_f), sigmoid(z_o);  g = tanh(z_g)
    c_t = f * c_{t-1} + i * g;   h_t = o * tanh(c_t)

Autograd would record about ten small nodes for this per time step; :class:`LSTMCellFunction`
records one, with the hand-derived backward below. The matmuls that produce ``z`` stay with
autograd. ``tests/test_controller.py`` checks it against a float64 reference and gradcheck.
"""

from __future__ import annotations

from typing import Any

import torch
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
        input_gate, forget_gate, output_gate = sig.split(cell.shape[-1], dim=1)
        # h = o tanh(c): into o and c; c = f c_prev + i g: into f, c_prev, i, g.
        g_cell = torch.addcmul(g_cell, g_hidden * output_gate, 1 - tanh_cell * tanh_cell)
        g_sig = torch.cat([g_cell * candidate, g_cell * cell, g_hidden * tanh_cell], dim=1)
        g_gates = torch.cat(
            [g_sig * sig * (1 - sig), g_cell * input_gate * (1 - candidate * candidate)], dim=1
        )
        return g_gates, g_cell * forget_gate
