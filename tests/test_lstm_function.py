"""Tests for the LSTM cell's single autograd node (mann_lightning/lstm_function.py): its
gradient against autograd's (gradcheck, float64), its two forms of ``dL/dz`` against each
other, and the compiled backward taking the form without ``cat``."""

from __future__ import annotations

import pytest
import torch
from functorch.compile import make_boxed_func
from torch._functorch.aot_autograd import aot_module_simplified

from mann_lightning.lstm_function import (
    LSTMCellFunction,
    gate_grads_by_blocks,
    gate_grads_in_one,
)

pytestmark = pytest.mark.usefixtures("one_thread")

UNITS, BATCH = 5, 3


def _inputs(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    gates = torch.randn(BATCH, 4 * UNITS, generator=gen, dtype=torch.float64) * 2
    cell = torch.randn(BATCH, UNITS, generator=gen, dtype=torch.float64)
    return gates.requires_grad_(), cell.requires_grad_()


def _loss(gates: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
    hidden, new_cell = LSTMCellFunction.apply(gates, cell)
    return (hidden * torch.arange(UNITS) + new_cell.square()).sum()


def test_gradient_is_autograds() -> None:
    assert torch.autograd.gradcheck(lambda g, c: LSTMCellFunction.apply(g, c), _inputs())


def test_both_forms_of_the_gate_gradient_agree() -> None:
    gen = torch.Generator().manual_seed(3)
    sig = torch.rand(BATCH, 3 * UNITS, generator=gen, dtype=torch.float64)
    candidate, cell, tanh_cell, g_hidden, g_cell = (
        torch.randn(BATCH, UNITS, generator=gen, dtype=torch.float64) for _ in range(5)
    )
    args = (sig, candidate.tanh(), cell, tanh_cell.tanh(), g_hidden, g_cell)
    by_blocks = gate_grads_by_blocks(*args)
    assert by_blocks.shape == (BATCH, 4 * UNITS)
    torch.testing.assert_close(gate_grads_in_one(*args), by_blocks, rtol=1e-14, atol=1e-15)


def test_compiled_backward_has_no_cat_and_the_same_gradient() -> None:
    """Under ``torch.compile`` the backward is the one broadcast expression (no ``cat``,
    whose buffer Inductor would copy again into the episode's stacked gradient)."""
    backward_ops: set[str] = set()

    def backend(graph: torch.fx.GraphModule, example_inputs: list) -> object:
        def forward_compiler(gm: torch.fx.GraphModule, _: list) -> object:
            return make_boxed_func(gm.forward)

        def backward_compiler(gm: torch.fx.GraphModule, _: list) -> object:
            backward_ops.update(str(node.target) for node in gm.graph.nodes)
            return make_boxed_func(gm.forward)

        return aot_module_simplified(graph, example_inputs, forward_compiler, backward_compiler)

    torch._dynamo.reset()
    gates, cell = _inputs(seed=1)
    compiled = torch.autograd.grad(
        torch.compile(_loss, backend=backend)(gates, cell), [gates, cell]
    )
    eager = torch.autograd.grad(_loss(gates, cell), [gates, cell])
    assert "aten.where.self" in backward_ops and "aten.cat.default" not in backward_ops
    for a, b in zip(compiled, eager, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-13, atol=1e-14)
